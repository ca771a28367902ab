"""`calsync webhooks ...`: the change feed's webhook subscribers, over the admin API."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click

from calsync_cli.api import Api, CliError
from calsync_cli.output import console, output_option, show, show_json, show_rows

TYPES = ("created", "updated", "deleted")


def _path(subscriber_id: str, tail: str = "") -> str:
    return f"/webhooks/{quote(subscriber_id, safe='')}{tail}"


def _names(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


@click.command("add")
@click.argument("url")
@click.option("--tenant", "tenants", multiple=True, help="Only this tenant (repeatable).")
@click.option("--mailbox", "mailboxes", multiple=True, help="Only this user id (repeatable).")
@click.option("--types", "types", multiple=True, help="created, updated, deleted (comma list).")
@click.option("--description", default=None, help="What the subscriber is for.")
@output_option
@click.pass_obj
def add(
    api: Api,
    url: str,
    tenants: tuple[str, ...],
    mailboxes: tuple[str, ...],
    types: tuple[str, ...],
    description: str | None,
    output: str,
) -> None:
    """Register a receiver of the change feed; prints its signing secret, this once only."""
    wanted = _names(types)
    unknown = [t for t in wanted if t not in TYPES]
    if unknown:
        raise CliError(f"--types has {', '.join(unknown)}: use {', '.join(TYPES)}")
    body: dict[str, Any] = {
        "url": url,
        "filter": {"tenants": _names(tenants), "mailboxes": _names(mailboxes), "types": wanted},
    }
    if description is not None:
        body["description"] = description
    created = api.call("POST", "/webhooks", json=body)
    if output == "json":
        show_json(created)
        return
    show({k: v for k, v in created.items() if k != "secret"}, output, title=created["id"])
    console().print(
        f"signing secret (shown once, keep it in your receiver): [bold]{created['secret']}[/]"
    )


@click.command("list")
@output_option
@click.pass_obj
def list_(api: Api, output: str) -> None:
    """Every subscriber with its status (ok, failing, disabled); never a secret."""
    rows = api.call("GET", "/webhooks")["value"]
    if output == "json":
        show_json(rows)
        return
    show_rows(rows, ("id", "url", "status", "lastDeliveredAt", "lastError"))


@click.command("show")
@click.argument("subscriber_id")
@output_option
@click.pass_obj
def show_(api: Api, subscriber_id: str, output: str) -> None:
    """A subscriber with its delivery state per mailbox."""
    found = api.call("GET", _path(subscriber_id))
    if output == "json":
        show_json(found)
        return
    pairs = found.pop("deliveries")
    show(found, output, title=subscriber_id)
    show_rows(
        pairs,
        ("tenantId", "mailboxId", "deliveredSequence", "attempt", "nextAttemptAt", "lastError"),
        title="deliveries",
    )


@click.command("remove")
@click.argument("subscriber_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@output_option
@click.pass_obj
def remove(api: Api, subscriber_id: str, yes: bool, output: str) -> None:
    """Remove a subscriber, its delivery state and dead letters (asks first unless --yes)."""
    if not yes:
        click.confirm(f"Remove webhook subscriber {subscriber_id}?", abort=True)
    show(api.call("DELETE", _path(subscriber_id)), output)


@click.command("replay")
@click.argument("subscriber_id")
@click.option("--tenant", help="With --mailbox: replay a range of this mailbox's feed.")
@click.option("--mailbox", help="The mailbox (user id) whose feed to replay.")
@click.option("--from", "low", help="First sequence of the range (default: the start).")
@click.option("--to", "high", help="Last sequence of the range (default: the end).")
@output_option
@click.pass_obj
def replay(
    api: Api,
    subscriber_id: str,
    tenant: str | None,
    mailbox: str | None,
    low: str | None,
    high: str | None,
    output: str,
) -> None:
    """Deliver again: the dead letters, or (--tenant --mailbox [--from] [--to]) a range."""
    body: dict[str, Any] = {}
    if tenant or mailbox:
        if not (tenant and mailbox):
            raise CliError("a range replay needs both --tenant and --mailbox")
        body = {"tenantId": tenant, "mailboxId": mailbox}
        if low is not None:
            body["fromSequence"] = low
        if high is not None:
            body["toSequence"] = high
    elif low is not None or high is not None:
        raise CliError("--from and --to need --tenant and --mailbox")
    show(api.call("POST", _path(subscriber_id, "/replay"), json=body), output)


webhooks = click.Group("webhooks", help="Receivers of the change feed: add, list, remove, replay.")
for _command in (add, list_, show_, remove, replay):
    webhooks.add_command(_command)
