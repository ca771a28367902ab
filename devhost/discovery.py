"""Read what a `func.FunctionApp` declares, through azure.functions' public API only.

Rule: the app's decorators are the one registry of functions. For each function this module
records its name, trigger (HTTP route, methods, auth level; timer schedule, run_on_startup;
queue name, connection) and queue output bindings; anything else it marks as not run by the dev
host, with the reason, instead of guessing. `%NAME%` in a schedule or queue name is resolved
from the app settings, as the host does (binding expressions).
"""

from __future__ import annotations

import importlib
import inspect
import re
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from azure.functions.decorators.http import HttpOutput, HttpTrigger
from azure.functions.decorators.queue import QueueOutput, QueueTrigger
from azure.functions.decorators.timer import TimerTrigger

from shared.errors import ConfigError

_SETTING_REF = re.compile(r"%([^%]+)%")
_DISCOVERED: weakref.WeakKeyDictionary[func.FunctionApp, list[FunctionSpec]] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
class QueueOutputSpec:
    """A queue output binding: the argument (or `$return`) whose value is enqueued."""

    arg_name: str
    queue_name: str
    connection: str


@dataclass(frozen=True)
class FunctionSpec:
    """One declared function as the dev host serves it."""

    name: str
    trigger_type: str  # the binding type, e.g. "httpTrigger"
    trigger_arg: str
    user_function: Callable[..., Any]
    route: str | None = None
    methods: tuple[str, ...] | None = None  # None: every method, as in Functions
    auth_level: str = "function"
    schedule: str | None = None
    run_on_startup: bool = False
    queue_name: str | None = None
    connection: str | None = None
    outputs: tuple[QueueOutputSpec, ...] = ()
    unsupported: str | None = None  # why the dev host does not run it, if it does not

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.user_function)

    def describe(self, base_url: str = "") -> str:
        """One line for the start-up listing; HTTP routes are shown under `base_url`."""
        if self.unsupported:
            return f"{self.name}: {self.trigger_type} (not run by the dev host: {self.unsupported})"
        if self.trigger_type == "httpTrigger":
            methods = ",".join(self.methods) if self.methods else "any method"
            return f"{self.name}: [{methods}] {base_url}/{self.route} (auth: {self.auth_level})"
        if self.trigger_type == "timerTrigger":
            startup = ", runs on startup" if self.run_on_startup else ""
            return f"{self.name}: timer {self.schedule!r}{startup}"
        return f"{self.name}: queue {self.queue_name!r} (connection {self.connection})"


def load_app(target: str) -> func.FunctionApp:
    """Import `module:attribute` (default attribute `app`) and check it is a FunctionApp."""
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    app = getattr(module, attr or "app", None)
    if not isinstance(app, func.FunctionApp):
        raise ConfigError([f"{target} is not a func.FunctionApp; pass --app module:attribute"])
    return app


def discover(app: func.FunctionApp) -> list[FunctionSpec]:
    """Every function the app declares, in declaration order (read once per app object:
    `get_functions()` refuses a second call, as it records the names to keep them unique)."""
    if app not in _DISCOVERED:
        _DISCOVERED[app] = [_spec(f) for f in app.get_functions()]
    return list(_DISCOVERED[app])


def _spec(function: func.Function) -> FunctionSpec:
    user_function = function.get_user_function()
    name = function.get_function_name() or user_function.__name__
    trigger = function.get_trigger()
    if trigger is None:  # get_functions() refuses this already; kept for the type checker
        raise ConfigError([f"function {name} has no trigger"])
    base: dict[str, Any] = {
        "name": name,
        "trigger_type": str(trigger.type),
        "trigger_arg": trigger.name,
        "user_function": user_function,
    }
    outputs: list[QueueOutputSpec] = []
    unsupported: list[str] = []
    for binding in function.get_bindings():
        if binding is trigger or isinstance(binding, HttpOutput):
            continue
        if isinstance(binding, QueueOutput):
            outputs.append(QueueOutputSpec(binding.name, binding.queue_name, binding.connection))
        else:
            unsupported.append(f"{binding.type} binding {binding.name!r}")
    if isinstance(trigger, HttpTrigger):
        methods = tuple(str(m).upper() for m in trigger.methods) if trigger.methods else None
        level = trigger.auth_level
        base |= {
            "route": (trigger.route or name).strip("/"),
            "methods": methods,
            "auth_level": str(level.value if level is not None else "function").lower(),
        }
    elif isinstance(trigger, TimerTrigger):
        base |= {"schedule": trigger.schedule, "run_on_startup": bool(trigger.run_on_startup)}
    elif isinstance(trigger, QueueTrigger):
        base |= {"queue_name": trigger.queue_name, "connection": trigger.connection}
    else:
        unsupported.insert(0, "only HTTP, timer and queue triggers are served")
    if unsupported:
        base["unsupported"] = "; ".join(unsupported)
    return FunctionSpec(outputs=tuple(outputs), **base)


def resolve_setting_refs(text: str, settings: Mapping[str, str], what: str) -> str:
    """Replace each `%NAME%` with that app setting; ConfigError if one is not set."""

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in settings:
            raise ConfigError([f"{what} refers to app setting %{key}%, which is not set"])
        return settings[key]

    return _SETTING_REF.sub(value, text)
