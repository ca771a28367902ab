"""Binding contracts: what function_app declares is what Graph, operators and infra rely on."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import function_app

ROOT = Path(__file__).parents[1]


@functools.cache
def _functions() -> list[Any]:
    """The app's functions (the SDK builds them once: a second call fails)."""
    return list(function_app.app.get_functions())


@functools.cache
def _declared() -> dict[str, dict[str, Any]]:
    out = {}
    for fn in _functions():
        trigger = fn.get_trigger().get_dict_repr()
        out[fn.get_function_name()] = {
            k: str(getattr(v, "value", v))
            if not isinstance(v, list)
            else [str(getattr(m, "value", m)) for m in v]
            for k, v in trigger.items()
            if k not in ("direction", "name")
        }
    return out


EXPECTED = {
    "health": {
        "type": "httpTrigger",
        "route": "health",
        "methods": ["GET"],
        "authLevel": "anonymous",
    },
    "openapi": {
        "type": "httpTrigger",
        "route": "openapi.json",
        "methods": ["GET"],
        "authLevel": "anonymous",
    },
    "notifications": {
        "type": "httpTrigger",
        "route": "notifications",
        "methods": ["POST"],
        "authLevel": "anonymous",
    },
    "lifecycle": {
        "type": "httpTrigger",
        "route": "lifecycle",
        "methods": ["POST"],
        "authLevel": "anonymous",
    },
    "ews_notifications": {
        "type": "httpTrigger",
        "route": "ews/notifications/{tenant}/{user}",
        "methods": ["POST"],
        "authLevel": "anonymous",
    },
    "mailboxes_list": {
        "type": "httpTrigger",
        "route": "mailboxes",
        "methods": ["GET"],
        "authLevel": "function",
    },
    "mailbox": {
        "type": "httpTrigger",
        "route": "mailboxes/{tenant}/{user}",
        "methods": ["GET", "PUT", "DELETE"],
        "authLevel": "function",
    },
    "mailbox_changes": {
        "type": "httpTrigger",
        "route": "mailboxes/{tenant}/{user}/changes",
        "methods": ["GET"],
        "authLevel": "function",
    },
    "tenant_changes": {
        "type": "httpTrigger",
        "route": "tenants/{tenant}/changes",
        "methods": ["GET"],
        "authLevel": "function",
    },
    "mailbox_resync": {
        "type": "httpTrigger",
        "route": "mailboxes/{tenant}/{user}/resync",
        "methods": ["POST"],
        "authLevel": "function",
    },
    "mailbox_events": {
        "type": "httpTrigger",
        "route": "mailboxes/{tenant}/{user}/events",
        "methods": ["GET"],
        "authLevel": "function",
    },
    "mailbox_agenda": {
        "type": "httpTrigger",
        "route": "mailboxes/{tenant}/{user}/agenda",
        "methods": ["GET"],
        "authLevel": "function",
    },
    "mailbox_freebusy": {
        "type": "httpTrigger",
        "route": "mailboxes/{tenant}/{user}/freebusy",
        "methods": ["GET"],
        "authLevel": "function",
    },
    "subscriptions_list": {
        "type": "httpTrigger",
        "route": "subscriptions",
        "methods": ["GET"],
        "authLevel": "function",
    },
    "subscriptions_renew": {
        "type": "httpTrigger",
        "route": "subscriptions/renew",
        "methods": ["POST"],
        "authLevel": "function",
    },
    "events_by_ical_uid": {
        "type": "httpTrigger",
        "route": "events",
        "methods": ["GET"],
        "authLevel": "function",
    },
    "now": {
        "type": "httpTrigger",
        "route": "now",
        "methods": ["POST"],
        "authLevel": "function",
    },
    "test_connection": {
        "type": "httpTrigger",
        "route": "diagnostics/test-connection",
        "methods": ["POST"],
        "authLevel": "function",
    },
    "status_page": {
        "type": "httpTrigger",
        "route": "status",
        "methods": ["GET"],
        "authLevel": "function",
    },
    "operations_log": {
        "type": "httpTrigger",
        "route": "log",
        "methods": ["GET"],
        "authLevel": "function",
    },
    "webhooks": {
        "type": "httpTrigger",
        "route": "webhooks",
        "methods": ["GET", "POST"],
        "authLevel": "function",
    },
    "webhook": {
        "type": "httpTrigger",
        "route": "webhooks/{id}",
        "methods": ["GET", "DELETE"],
        "authLevel": "function",
    },
    "webhook_replay": {
        "type": "httpTrigger",
        "route": "webhooks/{id}/replay",
        "methods": ["POST"],
        "authLevel": "function",
    },
    "webhook_worker": {
        "type": "queueTrigger",
        "queueName": "webhook-deliveries",
        "connection": "AzureWebJobsStorage",
    },
    "sweep_deliveries": {
        "type": "timerTrigger",
        "schedule": "20 */5 * * * *",
        "runOnStartup": "False",
    },
    "mailbox_calendars": {
        "type": "httpTrigger",
        "route": "mailboxes/{tenant}/{user}/calendars",
        "methods": ["GET"],
        "authLevel": "function",
    },
    "mailbox_live": {
        "type": "httpTrigger",
        "route": "mailboxes/{tenant}/{user}/live",
        "methods": ["GET"],
        "authLevel": "function",
    },
    "mailbox_live_event": {
        "type": "httpTrigger",
        "route": "mailboxes/{tenant}/{user}/live/{event}",
        "methods": ["GET"],
        "authLevel": "function",
    },
    "mailbox_graph": {
        "type": "httpTrigger",
        "route": "mailboxes/{tenant}/{user}/graph",
        "methods": ["POST"],
        "authLevel": "function",
    },
    "mailbox_writes": {
        "type": "httpTrigger",
        "route": "mailboxes/{tenant}/{user}/writes",
        "methods": ["POST"],
        "authLevel": "function",
    },
    "write_status": {
        "type": "httpTrigger",
        "route": "writes/{id}",
        "methods": ["GET"],
        "authLevel": "function",
    },
    "write_worker": {
        "type": "queueTrigger",
        "queueName": "calendar-writes",
        "connection": "AzureWebJobsStorage",
    },
    "sync_worker": {
        "type": "queueTrigger",
        "queueName": "sync-requests",
        "connection": "AzureWebJobsStorage",
    },
    "poll_mailboxes": {
        "type": "timerTrigger",
        "schedule": "*/30 * * * * *",
        "runOnStartup": "False",
    },
    "renew_subscriptions": {
        "type": "timerTrigger",
        "schedule": "0 */15 * * * *",
        "runOnStartup": "False",
    },
    "daily_roll": {"type": "timerTrigger", "schedule": "0 5 0 * * *", "runOnStartup": "False"},
}


def test_every_function_is_pinned() -> None:
    """The app declares exactly the pinned functions, nothing more or less."""
    assert set(_declared()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_function_binding_is_pinned(name: str) -> None:
    """Each function's trigger type, route, methods, auth level, schedule or queue is pinned."""
    assert _declared()[name] == EXPECTED[name]


def test_graph_callbacks_are_anonymous_and_admin_api_is_keyed() -> None:
    """Graph cannot send keys (anonymous callbacks); every mailbox route needs a function key."""
    declared = _declared()
    for name, binding in declared.items():
        if binding.get("route", "").startswith("mailboxes"):
            assert binding["authLevel"] == "function", name


def test_import_loads_no_sdk() -> None:
    """Importing function_app (fresh interpreter) loads none of the heavy SDKs: they are imported
    on first use, which is what keeps cold starts short (figure: bench/import_time.py)."""
    heavy = [
        "azure.data.tables",
        "azure.storage.queue",
        "azure.keyvault",
        "azure.identity",
        "msal",
        "httpx",
        "shared.compose",
        "opentelemetry",
        "azure.monitor",
    ]
    code = (
        "import sys, json, function_app; "
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    assert loaded.strip() == "[]", f"imported at start-up: {loaded}"


def test_http_routes_answer_their_errors_through_one_helper() -> None:
    """Every HTTP route but health (no error to answer) and Graph's two callbacks (which map
    theirs for Graph: web.intake_error) answers its errors through `web.answered`."""
    own_mapping = {"health", "notifications", "lifecycle"}
    for fn in _functions():
        if fn.get_trigger().get_dict_repr()["type"] != "httpTrigger":
            continue
        handler = fn.get_user_function()
        wrapped = hasattr(handler, "__wrapped__")
        assert wrapped == (fn.get_function_name() not in own_mapping), fn.get_function_name()


def test_answered_maps_project_errors_and_hides_unexpected_ones() -> None:
    """A handler's InputError is a 400 problem saying what is wrong, a write conflict a 409
    with the current event, anything else a 500 that shows nothing of the error."""
    import json

    import azure.functions as func

    from shared import web
    from shared.errors import InputError, WriteConflict

    def failing(exc: Exception) -> Any:
        def handler(req: func.HttpRequest) -> func.HttpResponse:
            raise exc

        return web.answered(handler)

    req = func.HttpRequest("GET", "http://localhost/api/x", body=b"")
    bad = failing(InputError("limit='x' must be a whole number"))(req)
    assert bad.status_code == 400
    assert "limit='x'" in json.loads(bad.get_body())["detail"]
    conflict = WriteConflict("the event changed")
    conflict.current = {"subject": "now"}
    answer = failing(conflict)(req)
    assert answer.status_code == 409
    assert json.loads(answer.get_body())["current"] == {"subject": "now"}
    hidden = failing(RuntimeError("secret-ish detail"))(req)
    assert hidden.status_code == 500
    assert b"secret-ish" not in hidden.get_body()
