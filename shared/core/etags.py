"""Pure: strong ETags over an answer's bytes, and If-None-Match (RFC 9110 §8.8.3, §13.1.2).

A strong ETag is a digest of the exact bytes sent, so two answers share one only when they are
byte for byte the same; If-None-Match compares weakly (a `W/` prefix is ignored) and `*` matches
any current answer. A match means 304 Not Modified with no body.
"""

from __future__ import annotations

import hashlib


def strong_etag(body: bytes) -> str:
    """`"<32 hex digits>"`: the first 128 bits of SHA-256 over the body."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def none_match(header: str | None, etag: str) -> bool:
    """True when the If-None-Match header value names `etag` (or is `*`)."""
    if not header:
        return False
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False
