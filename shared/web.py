"""HTTP responses for the triggers: JSON bodies and RFC 9457 problem bodies, in one place.
Project errors map to a status and a problem body; anything else is a 500 that hides details."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import azure.functions as func

from shared.core.etags import none_match, strong_etag
from shared.core.times import iso_utc
from shared.errors import CalsyncError, InputError, WriteConflict

log = logging.getLogger("calsync.web")


def _jsonable(value: Any) -> Any:
    """Datetimes as ISO 8601 UTC (`2026-11-21T09:00:00Z`); anything else as its text."""
    if isinstance(value, datetime):
        return iso_utc(value)
    return str(value)


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, default=_jsonable, separators=(",", ":")),
        status_code=status,
        mimetype="application/json",
        headers=headers,
    )


def read_response(req: func.HttpRequest, body: Any) -> func.HttpResponse:
    """A read's JSON answer with a strong ETag over its bytes; 304 with no body when the
    request's If-None-Match names it (a console refreshing every few seconds costs a hash)."""
    raw = json.dumps(body, default=_jsonable, separators=(",", ":")).encode()
    etag = strong_etag(raw)
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if none_match(req.headers.get("if-none-match"), etag):
        return func.HttpResponse(status_code=304, headers=headers)
    return func.HttpResponse(raw, status_code=200, mimetype="application/json", headers=headers)


def problem(status: int, title: str, detail: str, code: str, **extra: Any) -> func.HttpResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, "code": code}
    body |= extra
    return func.HttpResponse(
        json.dumps(body), status_code=status, mimetype="application/problem+json"
    )


def error_response(exc: Exception) -> func.HttpResponse:
    """Map a project error to its problem response (a write conflict with the event as it is
    now); log and hide anything unexpected."""
    if isinstance(exc, WriteConflict):
        return problem(409, "WriteConflict", exc.message, exc.code, current=exc.current)
    if isinstance(exc, CalsyncError):
        if exc.http_status >= 500:  # ours, but the caller cannot fix it: the operator must see it
            log.error("answering %d %s: %r", exc.http_status, exc.code, exc.message)
        return problem(exc.http_status, type(exc).__name__, exc.message, exc.code)
    log.exception("unexpected error while handling a request")
    return problem(500, "InternalError", "unexpected error; see the app's logs", "internal_error")


def answered(
    handler: Callable[[func.HttpRequest], func.HttpResponse],
) -> Callable[[func.HttpRequest], func.HttpResponse]:
    """An HTTP trigger whose errors are answered by `error_response` (the one try/except of
    every admin, read and write route). `functools.wraps` keeps the handler's name, signature
    and annotations, which the Functions worker reads to bind `req`."""

    @functools.wraps(handler)
    def answer(req: func.HttpRequest) -> func.HttpResponse:
        try:
            return handler(req)
        except Exception as exc:
            return error_response(exc)

    return answer


def json_body(req: func.HttpRequest, *, max_bytes: int = 1_048_576) -> Any:
    """The request body parsed as JSON, or InputError saying what is wrong with it."""
    raw = req.get_body()
    if len(raw) > max_bytes:
        raise InputError(f"request body is {len(raw)} bytes; the limit is {max_bytes}")
    if not raw:
        raise InputError("request body is empty; send a JSON object")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"request body is not valid JSON ({exc}); send a JSON object") from None
    except RecursionError:
        raise InputError("request body is nested too deeply; send a flat JSON object") from None


def text_response(text: str) -> func.HttpResponse:
    """A plain-text answer (the validation handshake echo): text/plain, never sniffed as HTML."""
    return func.HttpResponse(
        text, status_code=200, mimetype="text/plain", headers={"X-Content-Type-Options": "nosniff"}
    )


def html_response(page: str) -> func.HttpResponse:
    """A page of our own: no script or style from elsewhere may run in it, never framed."""
    headers = {
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
        "script-src 'unsafe-inline'; frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }
    return func.HttpResponse(page, status_code=200, mimetype="text/html", headers=headers)


def intake_error(exc: Exception) -> func.HttpResponse:
    """For Graph's callbacks: bad input is a 400 (Graph must not retry it) and never a 5xx; a
    notification we could not queue is a 5xx, so that Graph retries it."""
    if isinstance(exc, InputError):
        log.warning("notification rejected: %r", exc.message)
        return problem(400, type(exc).__name__, exc.message, exc.code)
    return error_response(exc)


def mailbox_ref(req: func.HttpRequest) -> str:
    """The `{user}` of a mailbox route, with the `calendar` query parameter folded in as
    `user:handle` (core.calendars); InputError when the two name different calendars."""
    from shared.core.calendars import split_ref

    user, handle = split_ref(req.route_params.get("user", ""), req.params.get("calendar"))
    return f"{user}:{handle}" if handle else user


def flag(req: func.HttpRequest, name: str) -> bool:
    """A boolean query parameter: true/1/yes, false/0/no/absent; anything else is an InputError."""
    value = (req.params.get(name) or "false").strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no", ""):
        return False
    raise InputError(f"query parameter {name}={value!r} must be true or false")
