"""host.json, as far as the dev host needs it: the HTTP route prefix and the queue options.

Rule: the defaults are the Functions host's own (Storage extension 5.x), so an app without a
host.json behaves as it would in Azure; tests pass shorter timings as `QueueOptions` instead of
sleeping. TimeSpans are .NET's `[d.]hh:mm:ss[.fffffff]`.
Docs: https://learn.microsoft.com/azure/azure-functions/functions-host-json and
https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue#host-json
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from shared.errors import ConfigError

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,7}))?$")


def parse_timespan(text: str, name: str = "TimeSpan") -> float:
    """Seconds in a .NET TimeSpan string such as "00:00:10" or "1.02:00:00.5"."""
    match = _TIMESPAN.match(text.strip())
    if not match:
        raise ConfigError([f"{name} {text!r} is not a TimeSpan: write it as hh:mm:ss"])
    days, hours, minutes, seconds, fraction = match.groups()
    if int(minutes) > 59 or int(seconds) > 59:
        raise ConfigError([f"{name} {text!r} has minutes or seconds above 59"])
    total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    return total + (float(f"0.{fraction}") if fraction else 0.0)


@dataclass(frozen=True)
class QueueOptions:
    """`extensions.queues` of host.json, in seconds; defaults are the host's."""

    batch_size: int = 16
    new_batch_threshold: int = 8  # the host's default is batchSize / 2
    max_polling_interval: float = 60.0
    min_polling_interval: float = 0.1  # the host's fixed floor for its exponential back-off
    visibility_timeout: float = 0.0
    max_dequeue_count: int = 5
    message_encoding: Literal["base64", "none"] = "base64"
    # How long a received message stays invisible while its function runs (the host's lease).
    lease_seconds: float = 600.0


@dataclass(frozen=True)
class HostOptions:
    """What the dev host reads from host.json."""

    route_prefix: str = "api"
    queues: QueueOptions = field(default_factory=QueueOptions)


def load_host_json(path: Path) -> HostOptions:
    """Read host.json (a missing file means all defaults); ConfigError names each bad key."""
    if not path.exists():
        return HostOptions()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError([f"{path} is not valid JSON ({exc})"]) from None
    if not isinstance(doc, dict):
        raise ConfigError([f"{path} must hold a JSON object"])
    extensions = doc.get("extensions") or {}
    http = extensions.get("http") or {}
    prefix = http.get("routePrefix", "api")
    if not isinstance(prefix, str):
        raise ConfigError([f"{path}: extensions.http.routePrefix must be a string"])
    return HostOptions(
        route_prefix=prefix.strip("/"), queues=_queue_options(extensions.get("queues") or {}, path)
    )


def _queue_options(raw: dict[str, Any], path: Path) -> QueueOptions:
    problems: list[str] = []
    where = f"{path}: extensions.queues"

    def integer(key: str, default: int, low: int, high: int) -> int:
        value = raw.get(key, default)
        if not isinstance(value, int) or not low <= value <= high:
            problems.append(f"{where}.{key} {value!r} must be a whole number {low}..{high}")
            return default
        return value

    def timespan(key: str, default: float) -> float:
        if key not in raw:
            return default
        try:
            return parse_timespan(str(raw[key]), f"{where}.{key}")
        except ConfigError as exc:
            problems.extend(exc.problems)
            return default

    batch = integer("batchSize", 16, 1, 32)  # 32 is the Storage service's receive maximum
    encoding = str(raw.get("messageEncoding", "base64")).lower()
    if encoding not in ("base64", "none"):
        problems.append(f"{where}.messageEncoding {encoding!r} must be base64 or none")
    options = QueueOptions(
        batch_size=batch,
        new_batch_threshold=integer("newBatchThreshold", batch // 2, 0, 10_000),
        max_polling_interval=timespan("maxPollingInterval", 60.0),
        visibility_timeout=timespan("visibilityTimeout", 0.0),
        max_dequeue_count=integer("maxDequeueCount", 5, 1, 10_000),
        message_encoding="none" if encoding == "none" else "base64",
    )
    if problems:
        raise ConfigError(problems)
    return options
