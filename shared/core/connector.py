"""Pure: the rules of the connector operations' raw Graph request ("universal operation").

Rules: a raw call names a method from RAW_METHODS and a path of the enrolled mailbox only:
`/users/{id or UPN}/<resource>...` where the user is that mailbox and `<resource>` is one of
RAW_RESOURCES (calendar data, never mail, files or directory objects); no other host (no
scheme), no other user, no `..` or empty segment, no query or fragment in the path (the query is
its own field), and the checks read the path decoded (an id may hold an encoded `/`, but
`%2e%2e` is a `..` segment all the same; double encoding is refused). Each refusal is a
ForbiddenError naming the rule; a malformed field is an InputError naming it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from shared.errors import ForbiddenError, InputError

RAW_METHODS = ("GET", "POST", "PATCH", "DELETE")
RAW_RESOURCES = (
    "calendar",
    "calendars",
    "calendarGroups",
    "calendarView",
    "events",
    "findMeetingTimes",
    "getSchedule",
)
MAX_PATH = 2048
MAX_QUERY = 20
MAX_CALLER = 64
_SEGMENT = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@%-]+$")


def raw_method(value: Any) -> str:
    """The method, upper case; ForbiddenError when not allowed."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"method is required: one of {', '.join(RAW_METHODS)}")
    method = value.strip().upper()
    if method not in RAW_METHODS:
        raise ForbiddenError(
            f"method {method} is not allowed for raw Graph requests: use {', '.join(RAW_METHODS)}"
        )
    return method


def raw_path(value: Any, *, user_id: str, upn: str) -> str:
    """`users/{user_id}/...` for a path of this mailbox; ForbiddenError naming the rule."""
    if not isinstance(value, str) or not value.strip():
        raise InputError("path is required: /users/{id}/<resource>... of the enrolled mailbox")
    path = value.strip()
    if len(path) > MAX_PATH:
        raise InputError(f"path is longer than {MAX_PATH} characters")
    if "://" in path or path.startswith("//"):
        raise ForbiddenError("path must be relative to Graph (/users/{id}/...): no other host")
    if "?" in path or "#" in path:
        raise InputError("path must not hold a query or fragment: pass the query as `query`")
    decoded = unquote(path)
    if unquote(decoded) != decoded or "\\" in decoded or "\x00" in decoded:
        raise ForbiddenError("path must not hide characters with percent-encoding")
    segments = decoded.lstrip("/").split("/")
    if any(seg in ("", ".", "..") for seg in segments):
        raise ForbiddenError("path must not hold empty, '.' or '..' segments")
    if len(segments) < 3 or segments[0].lower() != "users":
        raise ForbiddenError(
            "path must be /users/{id}/<resource>... of the enrolled mailbox, "
            f"with <resource> one of {', '.join(RAW_RESOURCES)}"
        )
    allowed = {user_id.lower()} | ({upn.lower()} if upn else set())
    if segments[1].lower() not in allowed:
        raise ForbiddenError(
            f"path names user {segments[1]!r}: a raw request may only address the enrolled "
            "mailbox it is sent for"
        )
    resource = segments[2].split("(", 1)[0]
    if resource not in RAW_RESOURCES:
        raise ForbiddenError(
            f"path addresses {resource!r}: raw requests may only reach "
            f"{', '.join(RAW_RESOURCES)} of the mailbox"
        )
    if not all(_SEGMENT.match(seg) for seg in segments[2:]):
        raise InputError("path holds characters Graph paths do not use")
    return "/".join(["users", user_id, *path.lstrip("/").split("/")[2:]])


def raw_query(value: Any) -> tuple[tuple[str, str], ...]:
    """The query as pairs (an object of strings); InputError naming the bad key."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise InputError('query must be an object of strings, e.g. {"$top": "10"}')
    if len(value) > MAX_QUERY:
        raise InputError(f"query holds more than {MAX_QUERY} parameters")
    pairs = []
    for key, item in value.items():
        if not isinstance(key, str) or not re.fullmatch(r"\$?[A-Za-z][A-Za-z0-9]*", key):
            raise InputError(f"query key {key!r} is not a Graph query parameter name")
        if not isinstance(item, str):
            raise InputError(f"query.{key} must be a string")
        pairs.append((key, item))
    return tuple(pairs)


def raw_caller(value: Any) -> str:
    """Who makes the raw call, as it names itself (logged with the call): absent, or 1 to 64
    printable characters; InputError naming `caller` otherwise."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise InputError("caller must be a string: your own name for yourself, e.g. flow-7")
    caller = value.strip()
    if not caller or len(caller) > MAX_CALLER or not caller.isprintable():
        raise InputError(f"caller must be 1 to {MAX_CALLER} printable characters")
    return caller
