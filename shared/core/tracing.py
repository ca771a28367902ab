"""Pure: W3C Trace Context `traceparent` values, parsed, checked and made; no I/O, no SDK.

A notification's trace is carried on the sync request (`SyncRequest.traceparent`) from the
intake (or a timer) through the queue to the round, which continues it as a child span; so one
operation id in Application Insights joins the POST, every re-queue and the round that ran.
Only version 00 is written; a later version is read by its first four fields, as the spec asks.

https://www.w3.org/TR/trace-context/#traceparent-header
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

_FORMAT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_INVALID_TRACE = "0" * 32
_INVALID_SPAN = "0" * 16
SAMPLED = 0x01


@dataclass(frozen=True)
class TraceParent:
    """The fields of a traceparent: 32 hex trace id, 16 hex parent (span) id, flags."""

    trace_id: str
    span_id: str
    flags: int = SAMPLED

    def __str__(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags:02x}"


def parse_traceparent(value: str) -> TraceParent | None:
    """The value's fields, or None if it is not a valid traceparent (version ff, an all-zero
    trace or span id, upper case, a version 00 with extra fields: all invalid per the spec)."""
    match = _FORMAT.fullmatch(value)  # not match(): `$` would let a trailing newline in
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _INVALID_TRACE or span_id == _INVALID_SPAN:
        return None
    return TraceParent(trace_id, span_id, int(flags, 16))


def traceparent_problem(value: str) -> str | None:
    """Why `value` cannot be a sync request's traceparent, or None if it can ('' = none)."""
    if value == "" or parse_traceparent(value) is not None:
        return None
    return f"traceparent: not a W3C traceparent: {value[:60]!r}"


def new_span_id(rng: random.Random) -> str:
    """16 hex digits, never all zero."""
    return f"{rng.getrandbits(64) or 1:016x}"


def new_traceparent(rng: random.Random) -> TraceParent:
    """The root of a new trace (sampled)."""
    return TraceParent(f"{rng.getrandbits(128) or 1:032x}", new_span_id(rng))


def child_of(value: str, rng: random.Random) -> TraceParent:
    """A span continuing the trace of `value`, or the root of a new trace if `value` is empty
    or invalid (a request from an older writer, say)."""
    parent = parse_traceparent(value)
    if parent is None:
        return new_traceparent(rng)
    return TraceParent(parent.trace_id, new_span_id(rng), parent.flags)
