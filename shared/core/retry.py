"""Pure: how long to wait before retrying a Graph call that was throttled or failed transiently.

Rule (learn.microsoft.com/graph/throttling): when Graph sends Retry-After (seconds, possibly
fractional, on 429 and sometimes 503/504) wait exactly that; otherwise back off exponentially with
"full jitter" (a uniform draw between 0 and min(cap, base * 2**(attempt - 1))), which spreads the
retries of many workers instead of synchronising them. `attempt` counts failures so far: 1 before
the first retry.
"""

from __future__ import annotations

import math
import random

from shared.errors import InputError

BASE_SECONDS = 1.0
CAP_SECONDS = 60.0


def plan_backoff(attempt: int, retry_after: float | None, rng: random.Random) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, ...)."""
    if attempt < 1:
        raise InputError(f"attempt counts failures so far and starts at 1, got {attempt}")
    if retry_after is not None and math.isfinite(retry_after) and retry_after >= 0:
        return float(retry_after)
    # 2**6 already exceeds the cap; bounding the exponent keeps huge attempts cheap.
    ceiling = min(CAP_SECONDS, BASE_SECONDS * 2 ** min(attempt - 1, 16))
    return rng.uniform(0, ceiling)
