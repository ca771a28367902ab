"""Operator CLI over the admin HTTP API: enrol, remove, list, status, resync, events,
test-connection.

    calsync --url http://localhost:7071 --key <function key> enrol <tenant> <user>

`--url`/`--key` default to CALSYNC_URL / CALSYNC_FUNCTION_KEY. Problems from the API are printed
as their `detail` and the command exits non-zero. Installed as `calsync` (pyproject's
[project.scripts]); `python -m calsync_cli` runs the same. Not part of the deployed app.
"""

from __future__ import annotations

import json
import ssl
from typing import Any
from urllib.parse import quote

import click
import httpx


class Api:
    def __init__(self, url: str, key: str, ca: str | None) -> None:
        self._http = httpx.Client(
            base_url=url.rstrip("/") + "/api",
            headers={"x-functions-key": key} if key else {},
            verify=ssl.create_default_context(cafile=ca) if ca else True,
            timeout=60,
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        body: Any = response.json() if response.content else None
        if response.status_code >= 400:
            detail = body.get("detail") if isinstance(body, dict) else response.text
            raise click.ClickException(f"{response.status_code}: {detail}")
        return body


def _mailbox_path(tenant: str, user: str) -> str:
    return f"/mailboxes/{quote(tenant, safe='')}/{quote(user, safe='@')}"


def _show(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


@click.group()
@click.option(
    "--url",
    envvar="CALSYNC_URL",
    default="http://localhost:7071",
    show_default=True,
    help="Base URL of the calsync app.",
)
@click.option("--key", envvar="CALSYNC_FUNCTION_KEY", default="", help="A function key.")
@click.option("--ca", envvar="CALSYNC_CA_BUNDLE", default=None, help="CA bundle (local TLS).")
@click.pass_context
def cli(ctx: click.Context, url: str, key: str, ca: str | None) -> None:
    """Operate calsync: enrol mailboxes and see how their sync is doing."""
    ctx.obj = Api(url, key, ca)


@cli.command()
@click.argument("tenant")
@click.argument("user")
@click.option("--weeks-back", type=int, help="Sync window: weeks before today (default 4).")
@click.option("--weeks-ahead", type=int, help="Sync window: weeks after today (default 52).")
@click.option("--mode", type=click.Choice(["webhook", "poll"]))
@click.option("--poll-seconds", type=int, help="Poll interval, at least 60.")
@click.option("--private", type=click.Choice(["mirror", "mask"]))
@click.option("--body-type", type=click.Choice(["html", "text"]))
@click.option("--time-zone")
@click.pass_obj
def enrol(api: Api, /, tenant: str, user: str, **options: Any) -> None:
    """Enrol a mailbox (tenant id + user id or UPN), or change its options."""
    names = {
        "weeks_back": "weeksBack",
        "weeks_ahead": "weeksAhead",
        "mode": "mode",
        "poll_seconds": "pollSeconds",
        "private": "private",
        "body_type": "bodyType",
        "time_zone": "timeZone",
    }
    body = {names[k]: v for k, v in options.items() if v is not None}
    _show(api.call("PUT", _mailbox_path(tenant, user), json=body))


@cli.command()
@click.argument("tenant")
@click.argument("user")
@click.option("--purge", is_flag=True, help="Also delete the mirrored events.")
@click.pass_obj
def remove(api: Api, tenant: str, user: str, purge: bool) -> None:
    """Stop syncing a mailbox and delete its subscription."""
    params = {"purge": "true" if purge else "false"}
    _show(api.call("DELETE", _mailbox_path(tenant, user), params=params))


@cli.command("list")
@click.pass_obj
def list_(api: Api) -> None:
    """Every enrolled mailbox with a one-line health."""
    for m in api.call("GET", "/mailboxes")["value"]:
        click.echo(f"{m['tenantId']}  {m['upn'] or m['userId']}  {m['health']}")


@cli.command()
@click.argument("tenant")
@click.argument("user")
@click.pass_obj
def status(api: Api, tenant: str, user: str) -> None:
    """Status of one mailbox: mode, subscription, last notification, last sync, last error."""
    _show(api.call("GET", _mailbox_path(tenant, user)))


@cli.command()
@click.argument("tenant")
@click.argument("user")
@click.pass_obj
def resync(api: Api, tenant: str, user: str) -> None:
    """Queue a full resync of the mailbox's window."""
    _show(api.call("POST", _mailbox_path(tenant, user) + "/resync"))


@cli.command()
@click.argument("tenant")
@click.argument("user")
@click.option("--start", help="ISO 8601 lower bound.")
@click.option("--end", help="ISO 8601 upper bound.")
@click.pass_obj
def events(api: Api, tenant: str, user: str, start: str | None, end: str | None) -> None:
    """The mirrored events as stored."""
    params = {k: v for k, v in (("start", start), ("end", end)) if v}
    _show(api.call("GET", _mailbox_path(tenant, user) + "/events", params=params))


_MARK = {"ok": "ok", "warning": "warn", "failed": "FAIL", "skipped": "skip"}


@cli.command("test-connection")
@click.argument("tenant")
@click.option("--mailbox", default="", help="Also check this mailbox (user id or UPN).")
@click.option(
    "-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.pass_obj
def test_connection(api: Api, tenant: str, mailbox: str, output: str) -> None:
    """Check settings, credential, token, permissions, a mailbox and the callback URL; exit 1
    when a step failed."""
    report = api.call(
        "POST", "/diagnostics/test-connection", json={"tenantId": tenant, "mailbox": mailbox}
    )
    if output == "json":
        _show(report)
    else:
        for step in report["steps"]:
            click.echo(
                f"{_MARK[step['status']]:<5} {step['name']:<13} {step['durationMs']:>6} ms  "
            )
            for label in ("detail", "cause", "fix"):
                if step[label]:
                    click.echo(f"{'':<5} {label + ':':<13} {step[label]}")
        click.echo("passed" if report["ok"] else "failed")
    if not report["ok"]:
        raise SystemExit(1)


def main() -> None:
    cli()  # click names the program as it was started: `calsync` or `python -m calsync_cli`
