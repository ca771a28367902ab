"""Reading a FunctionApp's declarations through azure.functions' public API (no servers)."""

from __future__ import annotations

import azure.functions as func
import pytest

from devhost.discovery import QueueOutputSpec, discover, load_app, resolve_setting_refs
from shared.errors import ConfigError


def build_app() -> func.FunctionApp:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.function_name("renamed")
    @app.route(route="/things/{id}/", methods=["get", "POST"], auth_level=func.AuthLevel.ADMIN)
    def http_fn(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse()

    @app.route()  # no route, methods or level: the function name, any method, the app's level
    def defaults(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse()

    @app.timer_trigger(arg_name="t", schedule="%RENEW_SCHEDULE%", run_on_startup=True)
    async def renew(t: func.TimerRequest) -> None:
        return None

    @app.queue_trigger(arg_name="m", queue_name="sync-requests", connection="AzureWebJobsStorage")
    @app.queue_output(arg_name="out", queue_name="changes", connection="AzureWebJobsStorage")
    def sync(m: func.QueueMessage, out: func.Out[str]) -> None:
        return None

    @app.blob_trigger(arg_name="b", path="c/{name}", connection="AzureWebJobsStorage")
    def blob(b: func.InputStream) -> None:
        return None

    @app.route(route="withtable")
    @app.table_input(arg_name="row", table_name="t", connection="AzureWebJobsStorage")
    def with_table(req: func.HttpRequest, row: str) -> func.HttpResponse:
        return func.HttpResponse()

    return app


def test_each_trigger_is_read_with_its_parameters() -> None:
    """Name, trigger type, argument, route, methods, auth level, schedule and queue are read."""
    specs = {s.name: s for s in discover(build_app())}
    http = specs["renamed"]
    assert (http.trigger_type, http.trigger_arg, http.route) == (
        "httpTrigger",
        "req",
        "things/{id}",
    )
    assert (http.methods, http.auth_level, http.unsupported) == (("GET", "POST"), "admin", None)
    defaults = specs["defaults"]
    assert (defaults.route, defaults.methods, defaults.auth_level) == ("defaults", None, "function")
    renew = specs["renew"]
    assert (renew.trigger_type, renew.schedule, renew.run_on_startup) == (
        "timerTrigger",
        "%RENEW_SCHEDULE%",
        True,
    )
    assert renew.is_async
    sync = specs["sync"]
    assert (sync.queue_name, sync.connection, sync.trigger_arg) == (
        "sync-requests",
        "AzureWebJobsStorage",
        "m",
    )
    assert sync.outputs == (QueueOutputSpec("out", "changes", "AzureWebJobsStorage"),)


def test_what_the_dev_host_cannot_run_is_marked_with_the_reason() -> None:
    """Other triggers and other bindings are listed as not run, saying why, never guessed at."""
    specs = {s.name: s for s in discover(build_app())}
    assert "only HTTP, timer and queue triggers" in (specs["blob"].unsupported or "")
    assert "table binding 'row'" in (specs["with_table"].unsupported or "")
    assert "not run by the dev host" in specs["blob"].describe()


def test_discovering_twice_gives_the_same_functions() -> None:
    """A second DevHost on the same app works although get_functions() may be called once."""
    app = build_app()
    assert [s.name for s in discover(app)] == [s.name for s in discover(app)]


def test_setting_references_are_resolved() -> None:
    """%NAME% takes the app setting's value; an unset one is a ConfigError naming it."""
    assert resolve_setting_refs("%Q%-x", {"Q": "work"}, "queue") == "work-x"
    with pytest.raises(ConfigError, match="app setting %MISSING%, which is not set"):
        resolve_setting_refs("%MISSING%", {}, "timer renew")


def test_load_app_refuses_what_is_not_a_function_app() -> None:
    """--app must name a FunctionApp; anything else is a ConfigError with the fix."""
    with pytest.raises(ConfigError, match=r"is not a func\.FunctionApp"):
        load_app("json:dumps")
    assert isinstance(load_app("tests.devhost.sample_app:app"), func.FunctionApp)
