"""Every tunable of the simulator in one place, with Graph's documented value as the default.

Rule: a default is the number the docs give (the comment says where), or, where the docs are
silent, the harsher choice (README.md lists those). Tests scale the numbers down through the
control API (`POST /_sim/knobs`); an unknown knob name or a value of the wrong type is refused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass
class Knobs:
    # Outlook limits per app ID and mailbox: 4 concurrent, 10,000 requests per 10 minutes.
    # https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits
    concurrent_per_mailbox: int = 4
    budget_requests: int = 10_000
    budget_window_s: float = 600.0
    # Subscription writes: 500 per 20 s per app per tenant; reauthorize 1,000 per 20 s per
    # tenant; GET list 25 per 20 s per tenant (throttling-limits#subscription-service-limits).
    subscription_writes_per_window: int = 500
    reauthorize_per_window: int = 1_000
    subscription_list_per_window: int = 25
    subscription_window_s: float = 20.0
    # Injected faults on Graph requests (probabilities per request) and added latency.
    latency_ms: float = 0.0
    fault_rate_503: float = 0.0
    fault_rate_504: float = 0.0
    fault_retry_after_s: float = 1.0
    # Entra: access token lifetime (expires_in 3599 for client credentials).
    token_lifetime_s: int = 3599
    # Delta: tokens older than this (virtual seconds) answer 410; 0 means no age limit.
    delta_token_max_age_s: float = 0.0
    delta_replay_rate: float = 0.0
    # Graph may answer a page with an empty `value`, and pages larger or smaller than asked.
    delta_empty_page_rate: float = 0.0
    delta_page_size_jitter: bool = False
    # calendarView/delta of a calendar other than the default one: v1.0 documents it for the
    # primary calendar only (beta for others); True answers it 400 ErrorInvalidRequest, as a
    # Graph that keeps to v1.0's word might.
    calendar_delta_refused: bool = False
    # Page size when the client sends no Prefer: odata.maxpagesize (undocumented: harsh, small).
    default_page_size: int = 10
    # Subscriptions (api/resources/subscription, subscription-post-subscriptions).
    max_subscriptions_per_mailbox: int = 1_000
    subscription_max_minutes: int = 10_080
    subscription_min_minutes: int = 45
    validation_timeout_s: float = 10.0
    allow_http_notification_urls: bool = False
    subscription_list_page_size: int = 100
    reauthorize_patch_gap_s: float = 600.0
    # Delivery (change-notifications-delivery-webhooks): 3 s to answer, slow/drop windows.
    delivery_time_scale: float = 1.0
    delivery_batch_max: int = 50
    delivery_batch_window_ms: float = 20.0
    delivery_delay_ms: float = 0.0
    duplicate_rate: float = 0.0
    reorder: bool = False
    drop_rate: float = 0.0
    slow_threshold_s: float = 3.0
    drop_threshold_s: float = 10.0
    request_timeout_s: float = 10.0
    slow_fraction: float = 0.10
    drop_fraction: float = 0.15
    health_window_s: float = 600.0
    health_penalty_s: float = 600.0
    health_min_samples: int = 1
    retry_base_s: float = 10.0
    retry_horizon_s: float = 4 * 3600.0
    send_missed_on_drop: bool = True
    # $batch (json-batching): 20 requests at most; Outlook runs 4 at a time per mailbox.
    batch_max_requests: int = 20
    batch_parallel_per_mailbox: int = 4
    # Seed of every random choice (faults, duplicates, reordering, replays).
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def update(self, values: dict[str, Any]) -> list[str]:
        """Apply `values`; returns the list of problems (nothing is applied if any)."""
        by_name = {f.name: f for f in fields(self)}
        problems: list[str] = []
        cleaned: dict[str, Any] = {}
        for name, value in values.items():
            current = getattr(self, name, None) if name in by_name else None
            if name not in by_name:
                problems.append(f"unknown knob {name!r}; known: {', '.join(sorted(by_name))}")
            elif isinstance(current, bool):
                if not isinstance(value, bool):
                    problems.append(f"knob {name!r} takes true or false")
                else:
                    cleaned[name] = value
            elif isinstance(current, int):
                if isinstance(value, bool) or not isinstance(value, int):
                    problems.append(f"knob {name!r} takes an integer")
                else:
                    cleaned[name] = value
            elif isinstance(value, bool) or not isinstance(value, int | float):
                problems.append(f"knob {name!r} takes a number")
            elif name.endswith("_rate") and not 0.0 <= value <= 1.0:
                problems.append(f"knob {name!r} is a probability: 0 to 1")
            elif name.startswith("delta_") and name.endswith("_rate") and value >= 1.0:
                problems.append(f"knob {name!r} must be below 1 (a delta round must end)")
            else:
                cleaned[name] = float(value)
        if not problems:
            for name, value in cleaned.items():
                setattr(self, name, value)
        return problems
