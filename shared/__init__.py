"""calsync: a live, complete mirror of Microsoft 365 calendars, as an Azure Functions app.

Layout: `core/` is pure (no I/O, no httpx/azure/msal imports, `now` passed in); `adapters/` wrap
one library each (Graph over httpx, Tables, Queues, Key Vault, MSAL); `services/` are the steps the
triggers call; `compose.py` builds them from `settings.Settings`; `errors.py` is the one hierarchy.
This package and `function_app.py` are all that deploys: every module here is imported from
`function_app`, and none imports the dev tools beside it (`devhost/`, `calsync_cli/`, the simulator
`graphsim/`), `tests/` or `bench/` (tests/test_packaging.py holds both rules).
"""

__version__ = "0.1.0"
