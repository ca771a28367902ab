"""`calsync writes ...` (create, update, delete, cancel an event through the write API; show a
write) and `calsync feed` (a mailbox's change feed, or the whole tenant's, once or --follow).

An event is given as JSON (`--event FILE`, `-` for stdin, Graph's event shape) and/or flags for
the common fields; a flag wins over the same field of the file. Times are local date-times
(`2026-12-02T09:00`) in `--time-zone` (else the mailbox's `writeTimeZone`); a time with an
offset (`...Z`, `+01:00`) is taken as that instant, in UTC.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from calsync_cli.api import Api, CliError, mailbox_path
from calsync_cli.output import output_option, show, show_json, show_rows

ATTENDEE_TYPES = ("required", "optional", "resource")


def _json_file(path: str, what: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{what} {path}: cannot be read ({exc.strerror or exc})") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CliError(f"{what} {path}: not JSON ({exc})") from None


def _when(text: str, zone: str | None, flag: str) -> dict[str, str]:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"{flag} {text!r} is not a date-time like 2026-12-02T09:00") from None
    if moment.tzinfo is not None:
        if zone:
            raise CliError(f"{flag} {text!r} has an offset: drop it or drop --time-zone")
        wall = moment.astimezone(UTC).replace(tzinfo=None)
        return {"dateTime": wall.isoformat(timespec="seconds"), "timeZone": "UTC"}
    out = {"dateTime": moment.isoformat(timespec="seconds")}
    return out | ({"timeZone": zone} if zone else {})


def _attendee(text: str) -> dict[str, Any]:
    address, _, kind = text.partition(":")
    kind = kind or "required"
    if "@" not in address or kind not in ATTENDEE_TYPES:
        raise CliError(
            f"--attendee {text!r}: give an address, optionally :{'|:'.join(ATTENDEE_TYPES)}"
        )
    return {"emailAddress": {"address": address.strip()}, "type": kind}


def _event(options: dict[str, Any]) -> dict[str, Any]:
    """The event from --event and the field flags (a flag wins)."""
    event: dict[str, Any] = {}
    if options.get("event_file"):
        loaded = _json_file(options["event_file"], "--event")
        if not isinstance(loaded, dict):
            raise CliError("--event: the file must hold one JSON object (Graph's event shape)")
        event = loaded
    zone = options.get("time_zone")
    for flag, name in (("subject", "subject"), ("location", "location"), ("show_as", "showAs")):
        if options.get(flag) is not None:
            event[name] = options[flag]
    if options.get("body") is not None:
        event["body"] = options["body"]
    for flag in ("start", "end"):
        if options.get(flag):
            event[flag] = _when(options[flag], zone, f"--{flag}")
        elif zone and isinstance(event.get(flag), dict):
            event[flag] = dict(event[flag]) | {"timeZone": zone}
    if options.get("attendees"):
        event["attendees"] = [_attendee(a) for a in options["attendees"]]
    if options.get("recurrence_file"):
        event["recurrence"] = _json_file(options["recurrence_file"], "--recurrence")
    return event


def _event_options(command: Any) -> Any:
    for option in reversed(
        [
            click.option("--event", "event_file", help="JSON file with the event (- for stdin)."),
            click.option("--subject"),
            click.option("--start", help="Local date-time, e.g. 2026-12-02T09:00."),
            click.option("--end", help="Local date-time, e.g. 2026-12-02T09:30."),
            click.option("--time-zone", help="IANA or Windows zone of --start/--end."),
            click.option("--body", help="The body (its type: the mailbox's writeBodyType)."),
            click.option("--location"),
            click.option("--show-as", type=click.Choice(["free", "tentative", "busy", "oof"])),
            click.option(
                "--attendee",
                "attendees",
                multiple=True,
                help="address[:required|optional|resource] (repeatable; sends invitations).",
            ),
            click.option("--recurrence", "recurrence_file", help="JSON file: the recurrence."),
        ]
    ):
        command = option(command)
    return command


def _write_options(command: Any) -> Any:
    command = click.option("--writer", help="Who writes (default calsync): in the origin marker.")(
        command
    )
    command = click.option(
        "--idempotency-key", "key", help="Retrying with the same key makes no second write."
    )(command)
    command = click.option(
        "--wait", is_flag=True, help="If the write is queued (pending), wait until it is done."
    )(command)
    command = click.option(
        "--timeout", type=click.FloatRange(min=1), default=120, show_default=True
    )(command)
    return output_option(command)


def _send(
    api: Api,
    tenant: str,
    user: str,
    body: dict[str, Any],
    key: str | None,
    writer: str | None,
    wait: bool,
    timeout: float,
    output: str,
) -> None:
    if writer:
        body["writer"] = writer
    headers = {"Idempotency-Key": key} if key else {}
    write = api.call("POST", mailbox_path(tenant, user) + "/writes", json=body, headers=headers)
    if wait and write.get("status") == "pending":
        deadline = time.monotonic() + timeout
        while write.get("status") == "pending" and time.monotonic() < deadline:
            time.sleep(1.0)
            write = api.call("GET", f"/writes/{quote(write['id'], safe='')}")
    _show_write(write, output)
    if write.get("status") == "failed" or (wait and write.get("status") == "pending"):
        raise SystemExit(1)


def _show_write(write: dict[str, Any], output: str) -> None:
    if output == "json":
        show_json(write)
        return
    shown = {k: v for k, v in write.items() if k != "event"}
    event = write.get("event") or {}
    shown |= {f"event.{k}": event.get(k) for k in ("subject", "start", "end") if k in event}
    show(shown, output, title=f"write {write.get('id', '')}")


writes = click.Group("writes", help="Create, change, delete or cancel events through calsync.")


@writes.command("create")
@click.argument("tenant")
@click.argument("user")
@_event_options
@_write_options
@click.pass_obj
def create(api: Api, /, tenant: str, user: str, **options: Any) -> None:
    """Create an event in the mailbox's calendar (no invitations unless --attendee)."""
    body = {"action": "create", "event": _event(options)}
    _send(api, tenant, user, body, *_common(options))


@writes.command("update")
@click.argument("tenant")
@click.argument("user")
@click.argument("event_id")
@click.option("--change-key", help="The version you saw: refused (409) if the event changed.")
@_event_options
@_write_options
@click.pass_obj
def update(api: Api, /, tenant: str, user: str, event_id: str, **options: Any) -> None:
    """Change the given fields of an event (an occurrence's id: that occurrence only)."""
    event = _event(options)
    if not event:
        raise click.UsageError("nothing to change: give --event or a field flag (--subject, ...)")
    body: dict[str, Any] = {"action": "update", "eventId": event_id, "event": event}
    if options.get("change_key"):
        body["changeKey"] = options["change_key"]
    _send(api, tenant, user, body, *_common(options))


@writes.command("delete")
@click.argument("tenant")
@click.argument("user")
@click.argument("event_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_write_options
@click.pass_obj
def delete(api: Api, /, tenant: str, user: str, event_id: str, yes: bool, **options: Any) -> None:
    """Delete an event (a series master's id: the whole series); asks first unless --yes."""
    if not yes:
        click.confirm(f"Delete event {event_id} of {user}?", abort=True)
    _send(api, tenant, user, {"action": "delete", "eventId": event_id}, *_common(options))


@writes.command("cancel")
@click.argument("tenant")
@click.argument("user")
@click.argument("event_id")
@click.option("--comment", default="", help="What the attendees are told.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_write_options
@click.pass_obj
def cancel(
    api: Api, /, tenant: str, user: str, event_id: str, comment: str, yes: bool, **options: Any
) -> None:
    """Cancel a meeting as its organizer (attendees are told); asks first unless --yes."""
    if not yes:
        click.confirm(f"Cancel event {event_id} of {user} (attendees are told)?", abort=True)
    body: dict[str, Any] = {"action": "cancel", "eventId": event_id}
    if comment:
        body["comment"] = comment
    _send(api, tenant, user, body, *_common(options))


@writes.command("show")
@click.argument("write_id")
@output_option
@click.pass_obj
def show_write(api: Api, write_id: str, output: str) -> None:
    """A write: pending (with retryAt and the last error), done (with the event) or failed."""
    _show_write(api.call("GET", f"/writes/{quote(write_id, safe='')}"), output)


def _common(options: dict[str, Any]) -> tuple[str | None, str | None, bool, float, str]:
    return (
        options.get("key"),
        options.get("writer"),
        bool(options.get("wait")),
        float(options.get("timeout") or 120),
        str(options.get("output") or "table"),
    )


FEED_COLUMNS = ("sequence", "type", "occurredAt", "mailbox", "eventId", "subject", "writer")


def _feed_row(change: dict[str, Any]) -> dict[str, Any]:
    event = change.get("event") or {}
    origin = change.get("origin") or {}
    return {
        "sequence": change.get("sequence"),
        "type": change.get("type"),
        "occurredAt": change.get("occurredAt"),
        "mailbox": change.get("mailboxId"),
        "eventId": change.get("eventId"),
        "subject": event.get("subject"),
        "writer": origin.get("writer") if isinstance(origin, dict) else None,
    }


@click.command("feed")
@click.argument("tenant")
@click.argument("user", required=False)
@click.option("--after", help="The `next` cursor of an earlier read (default: the oldest kept).")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("-f", "--follow", is_flag=True, help="Keep reading new changes (Ctrl-C stops).")
@click.option("--interval", type=click.FloatRange(min=0.5), default=2.0, show_default=True)
@click.option("--polls", type=click.IntRange(min=1), hidden=True, help="Stop after N polls.")
@output_option
@click.pass_obj
def feed(
    api: Api,
    tenant: str,
    user: str | None,
    after: str | None,
    limit: int,
    follow: bool,
    interval: float,
    polls: int | None,
    output: str,
) -> None:
    """The change feed of a mailbox (TENANT USER) or of every mailbox of a tenant (TENANT),
    oldest first; prints the cursor to read on with. With --follow, one line per change as
    they come (JSON Lines with -o json)."""
    path = mailbox_path(tenant, user) + "/changes" if user else f"/tenants/{quote(tenant)}/changes"
    cursor, done = after, 0
    try:
        while True:
            params = {"limit": str(limit)} | ({"after": cursor} if cursor else {})
            page = api.call("GET", path, params=params)
            cursor = page.get("next") or cursor
            done += 1
            if not follow:
                if output == "json":
                    show_json(page)
                else:
                    show_rows([_feed_row(c) for c in page["value"]], FEED_COLUMNS)
                    more = "  (more: read on)" if page["more"] else ""
                    click.echo(f"next: {cursor or ''}{more}")
                return
            for change in page["value"]:
                if output == "json":
                    click.echo(json.dumps(change, sort_keys=True))
                else:
                    row = _feed_row(change)
                    click.echo("  ".join(str(row.get(c) or "") for c in FEED_COLUMNS))
            if polls is not None and done >= polls:
                if output != "json":
                    click.echo(f"next: {cursor or ''}", err=True)
                return
            if not page["more"]:
                time.sleep(interval)
    except KeyboardInterrupt:
        click.echo(f"next: {cursor or ''}", err=True)
