"""The CLI's commands, each a thin call of the admin API plus its output."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import click
from rich.progress import Progress

from calsync_cli.api import Api, CliError, mailbox_path
from calsync_cli.output import console, output_option, show, show_json, show_rows

OPTION_NAMES = {
    "weeks_back": "weeksBack",
    "weeks_ahead": "weeksAhead",
    "mode": "mode",
    "poll_seconds": "pollSeconds",
    "private": "private",
    "body_type": "bodyType",
    "time_zone": "timeZone",
}
CSV_COLUMNS = ("tenantId", "user", *OPTION_NAMES.values())
_INTS = {"weeksBack", "weeksAhead", "pollSeconds"}


@click.command()
@click.argument("tenant")
@click.argument("user")
@click.option("--weeks-back", type=click.IntRange(0, 26), help="Weeks before today (default 4).")
@click.option("--weeks-ahead", type=click.IntRange(1, 104), help="Weeks after today (default 52).")
@click.option("--mode", type=click.Choice(["webhook", "poll"]))
@click.option("--poll-seconds", type=click.IntRange(min=1), help="Poll interval, at least 60.")
@click.option("--private", type=click.Choice(["mirror", "mask"]))
@click.option("--body-type", type=click.Choice(["html", "text"]))
@click.option("--time-zone", help="IANA or Windows time zone name.")
@click.option(
    "--calendar-name",
    help="With USER as user:handle: the mailbox's calendar to enrol under that handle.",
)
@click.option("--calendar-id", help="With USER as user:handle: that calendar's Graph id.")
@output_option
@click.pass_obj
def enrol(
    api: Api,
    /,
    tenant: str,
    user: str,
    output: str,
    calendar_name: str | None,
    calendar_id: str | None,
    **options: Any,
) -> None:
    """Enrol a mailbox (tenant id + user id or UPN), or change its options; user:handle enrols
    another calendar of it (by --calendar-name or --calendar-id, else the name the handle
    slugs)."""
    body = {OPTION_NAMES[k]: v for k, v in options.items() if v is not None}
    for key, value in (("calendarName", calendar_name), ("calendarId", calendar_id)):
        if value:
            body[key] = value
    show(api.call("PUT", mailbox_path(tenant, user), json=body), output, title=user)


@click.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@output_option
@click.pass_obj
def import_csv(api: Api, path: Path, output: str) -> None:
    """Enrol every mailbox of a CSV file (header: tenantId,user and any of weeksBack,
    weeksAhead, mode, pollSeconds, private, bodyType, timeZone), with a progress bar."""
    rows = list(_csv_rows(path))
    results: list[dict[str, Any]] = []
    with Progress(console=console(), transient=True) as progress:
        task = progress.add_task("enrolling", total=len(rows))
        for line, tenant, user, body in rows:
            try:
                api.call("PUT", mailbox_path(tenant, user), json=body)
                results.append({"line": line, "user": user, "result": "enrolled"})
            except CliError as exc:
                results.append({"line": line, "user": user, "result": f"failed: {exc.message}"})
            progress.advance(task)
    if output == "json":
        show_json(results)
    else:
        show_rows(results, ("line", "user", "result"), title=str(path))
    if any(r["result"] != "enrolled" for r in results):
        raise SystemExit(1)


def _csv_rows(path: Path) -> Iterator[tuple[int, str, str, dict[str, Any]]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        unknown = set(reader.fieldnames or ()) - set(CSV_COLUMNS)
        if not reader.fieldnames or {"tenantId", "user"} - set(reader.fieldnames):
            raise CliError(
                f"{path}: the header must name tenantId and user (got {reader.fieldnames})"
            )
        if unknown:
            raise CliError(
                f"{path}: unknown column(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(CSV_COLUMNS)}"
            )
        for line, row in enumerate(reader, start=2):
            tenant, user = (row.get("tenantId") or "").strip(), (row.get("user") or "").strip()
            if not tenant or not user:
                raise CliError(f"{path}:{line}: tenantId and user are required")
            body: dict[str, Any] = {}
            for name in OPTION_NAMES.values():
                value = (row.get(name) or "").strip()
                if not value:
                    continue
                if name in _INTS:
                    if not value.isdigit():
                        raise CliError(
                            f"{path}:{line}: {name} must be a whole number, got {value!r}"
                        )
                    body[name] = int(value)
                else:
                    body[name] = value
            yield line, tenant, user, body


@click.command()
@click.argument("tenant")
@click.argument("user")
@click.option("--purge", is_flag=True, help="Also delete the mirrored events.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@output_option
@click.pass_obj
def remove(api: Api, tenant: str, user: str, purge: bool, yes: bool, output: str) -> None:
    """Stop syncing a mailbox and delete its subscription (asks first unless --yes)."""
    what = "and DELETE its mirrored events" if purge else "(its mirror is kept)"
    if not yes:
        click.confirm(f"Stop syncing {user} of {tenant} {what}?", abort=True)
    params = {"purge": "true" if purge else "false"}
    show(api.call("DELETE", mailbox_path(tenant, user), params=params), output)


@click.command("list")
@output_option
@click.pass_obj
def list_(api: Api, output: str) -> None:
    """Every enrolled mailbox with a one-line health."""
    rows = api.call("GET", "/mailboxes")["value"]
    if output == "json":
        show_json(rows)
        return
    for row in rows:
        row["user"] = row.get("upn") or row.get("userId")
        if row.get("calendar") not in (None, "calendar"):  # another calendar: user:handle
            row["user"] = f"{row['user']}:{row['calendar']}"
    show_rows(rows, ("tenantId", "user", "health"))


@click.command()
@click.argument("tenant")
@click.argument("user")
@output_option
@click.pass_obj
def status(api: Api, tenant: str, user: str, output: str) -> None:
    """Status of one mailbox: state, subscription, last notification, last sync, last error."""
    show(api.call("GET", mailbox_path(tenant, user)), output, title=user)


@click.command()
@click.argument("tenant", required=False)
@click.argument("user", required=False)
@click.option("--all", "every", is_flag=True, help="Resync every enrolled mailbox.")
@click.option("--wait", is_flag=True, help="Wait until each resync has run.")
@click.option("--timeout", type=click.FloatRange(min=1), default=300, show_default=True)
@click.option("--yes", is_flag=True, help="Do not ask before resyncing all.")
@output_option
@click.pass_obj
def resync(
    api: Api,
    tenant: str | None,
    user: str | None,
    every: bool,
    wait: bool,
    timeout: float,
    yes: bool,
    output: str,
) -> None:
    """Queue a full resync of one mailbox (TENANT USER) or of all (--all)."""
    if every == bool(tenant or user) or (not every and not (tenant and user)):
        raise click.UsageError("give TENANT and USER, or --all")
    if every:
        targets = [(m["tenantId"], m["userId"]) for m in api.call("GET", "/mailboxes")["value"]]
        if not yes:
            click.confirm(f"Resync all {len(targets)} mailboxes?", abort=True)
    else:
        targets = [(tenant or "", user or "")]
    before = {t: api.call("GET", mailbox_path(*t))["status"].get("lastSync") for t in targets}
    results: list[dict[str, Any]] = []
    with Progress(console=console(), transient=True) as progress:
        queued = progress.add_task("queueing", total=len(targets))
        for target in targets:
            api.call("POST", mailbox_path(*target) + "/resync")
            progress.advance(queued)
        if wait:
            done = progress.add_task("syncing", total=len(targets))
            pending, deadline = set(targets), time.monotonic() + timeout
            while pending and time.monotonic() < deadline:
                for target in sorted(pending):
                    state = api.call("GET", mailbox_path(*target))["status"]
                    if state.get("lastSync") != before[target]:
                        pending.discard(target)
                        progress.advance(done)
                        results.append(
                            {
                                "user": target[1],
                                "events": state.get("eventCount"),
                                "result": state.get("lastSyncResult"),
                            }
                        )
                if pending:
                    time.sleep(0.5)
            results += [
                {"user": t[1], "events": None, "result": "not finished in time"} for t in pending
            ]
    if not wait:
        results = [{"user": t[1], "events": None, "result": "queued"} for t in targets]
    if output == "json":
        show_json(results)
    else:
        show_rows(results, ("user", "events", "result"))
    if any(r["result"] == "not finished in time" for r in results):
        raise SystemExit(1)


@click.command()
@click.argument("tenant")
@click.argument("user")
@click.option("--start", help="ISO 8601 lower bound.")
@click.option("--end", help="ISO 8601 upper bound.")
@output_option
@click.pass_obj
def events(
    api: Api, tenant: str, user: str, start: str | None, end: str | None, output: str
) -> None:
    """The mirrored events as stored."""
    params = {k: v for k, v in (("start", start), ("end", end)) if v}
    found = api.call("GET", mailbox_path(tenant, user) + "/events", params=params)
    if output == "json":
        show_json(found)
    else:
        show_rows(found["value"], ("start", "end", "subject", "show_as", "event_id"))


_MARK = {"ok": "ok", "warning": "warn", "failed": "FAIL", "skipped": "skip"}


@click.command("test-connection")
@click.argument("tenant")
@click.option("--mailbox", default="", help="Also check this mailbox (user id or UPN).")
@output_option
@click.pass_obj
def test_connection(api: Api, tenant: str, mailbox: str, output: str) -> None:
    """Check settings, credential, token, permissions, a mailbox and the callback URL; exit 1
    when a step failed."""
    report = api.call(
        "POST", "/diagnostics/test-connection", json={"tenantId": tenant, "mailbox": mailbox}
    )
    if output == "json":
        show_json(report)
    else:
        rows = [
            {
                "status": _MARK[s["status"]],
                "step": s["name"],
                "ms": s["durationMs"],
                "detail / cause → fix": " → ".join(
                    x for x in (s["detail"], s["cause"], s["fix"]) if x
                ),
            }
            for s in report["steps"]
        ]
        show_rows(rows, ("status", "step", "ms", "detail / cause → fix"))
        click.echo("passed" if report["ok"] else "failed")
    if not report["ok"]:
        raise SystemExit(1)


@click.command()
@output_option
@click.pass_obj
def health(api: Api, output: str) -> None:
    """The app's health probe (settings, storage); exit 1 when unhealthy."""
    try:
        report = api.call("GET", "/health")
    except CliError as exc:
        if not exc.message.startswith("503"):
            raise
        raise CliError(f"unhealthy: {exc.message}") from None
    show(report, output, title="health")


@click.command("version")
@output_option
@click.pass_obj
def version_(api: Api, output: str) -> None:
    """This CLI's version, and the app's (from its health probe)."""
    try:
        mine = version("calsync")
    except PackageNotFoundError:
        mine = "unknown"
    try:
        app = str(api.call("GET", "/health").get("version", "unknown"))
    except CliError as exc:
        app = f"unreachable ({exc.message})"
    show({"cli": mine, "app": app}, output, title="version")


@click.command()
@click.option("--tenant", help="Only this tenant's records.")
@click.option("--user", help="Only this mailbox's records (user id; needs --tenant).")
@click.option(
    "--direction", type=click.Choice(["in", "out"]), help="in: POSTs received; out: Graph calls."
)
@click.option("--since", help="ISO 8601 lower bound (default: 24 hours ago).")
@click.option("--until", help="ISO 8601 upper bound (default: now).")
@click.option("--top", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new records (Ctrl-C stops).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.5),
    default=2.0,
    show_default=True,
    help="Seconds between polls with --follow.",
)
@click.option("--polls", type=click.IntRange(min=1), hidden=True, help="Stop after N polls.")
@output_option
@click.pass_obj
def logs(
    api: Api,
    tenant: str | None,
    user: str | None,
    direction: str | None,
    since: str | None,
    until: str | None,
    top: int,
    follow: bool,
    interval: float,
    polls: int | None,
    output: str,
) -> None:
    """The operations log: notification POSTs received and Graph calls made, newest first;
    with --follow, oldest first as they arrive (JSON Lines with -o json)."""
    if user and not tenant:
        raise click.UsageError("--user needs --tenant")
    if follow and until:
        raise click.UsageError("--follow reads up to now: drop --until")
    wanted = (("tenant", tenant), ("user", user), ("direction", direction), ("since", since))
    params = {k: v for k, v in wanted if v}
    if follow:
        _follow(api, params, interval, polls, output)
        return
    params |= {"until": until} if until else {}
    found = api.call("GET", "/log", params=params | {"top": str(top)})
    if output == "json":
        show_json(found)
        return
    show_rows([_log_row(r) for r in found["value"]], LOG_COLUMNS)


LOG_COLUMNS = (
    "at",
    "direction",
    "method",
    "path",
    "status",
    "ms",
    "mailbox",
    "caller",
    "ids / counts",
)


def _log_row(r: dict[str, Any]) -> dict[str, Any]:
    return r | {
        "mailbox": r.get("userId") or r.get("tenantId") or "-",
        "ms": r.get("durationMs"),
        "ids / counts": r.get("requestId")
        or r.get("error")
        or f"items {r.get('items', 0)}, queued {r.get('queued', 0)}",
    }


def _follow(
    api: Api, params: dict[str, str], interval: float, polls: int | None, output: str
) -> None:
    """Poll the log with a since-cursor (the newest `at` seen); records of that same instant
    come again and are told apart by their content, so none is shown twice."""
    seen: dict[str, None] = {}
    cursor = params.get("since")
    done = 0
    try:
        while polls is None or done < polls:
            if done:
                time.sleep(interval)
            query = params | ({"since": cursor} if cursor else {}) | {"top": "1000"}
            records = list(reversed(api.call("GET", "/log", params=query)["value"]))
            for record in records:
                mark = json.dumps(record, sort_keys=True)
                if mark in seen:
                    continue
                seen[mark] = None
                if output == "json":
                    click.echo(json.dumps(record, sort_keys=True))
                else:
                    row = _log_row(record)
                    click.echo("  ".join(str(row.get(c, "")) for c in LOG_COLUMNS))
            if records:
                cursor = max(str(r.get("at", "")) for r in records) or cursor
            while len(seen) > 5000:  # keep the memory of the newest marks only
                seen.pop(next(iter(seen)))
            done += 1
    except KeyboardInterrupt:
        return


subscriptions = click.Group("subscriptions", help="List and renew Graph subscriptions.")


@subscriptions.command("list")
@click.option("--tenant", help="Only this tenant's subscriptions.")
@click.option("--mailbox", help="Only this mailbox's (user id or UPN; needs --tenant).")
@click.option("--graph", "compare", is_flag=True, help="Compare with Graph's own list.")
@output_option
@click.pass_obj
def subscriptions_list(
    api: Api, tenant: str | None, mailbox: str | None, compare: bool, output: str
) -> None:
    """Stored subscriptions with expiry and state (active, renewDue, expired)."""
    if mailbox and not tenant:
        raise click.UsageError("--mailbox needs --tenant")
    wanted = (("tenant", tenant), ("mailbox", mailbox), ("graph", "true" if compare else ""))
    found = api.call("GET", "/subscriptions", params={k: v for k, v in wanted if v})
    if output == "json":
        show_json(found)
        return
    columns = ["subscriptionId", "tenantId", "upn", "expiresOn", "state", "lastRenewed"]
    if compare:
        columns += ["inGraph", "graphExpiresOn"]
    show_rows(found["value"], columns, title="subscriptions")
    if compare:
        for tenant_id, why in sorted(found.get("graphErrors", {}).items()):
            click.echo(f"Graph could not be asked for tenant {tenant_id}: {why}")
        if found.get("graphOnly"):
            show_rows(
                found["graphOnly"],
                ["subscriptionId", "tenantId", "resource", "expiresOn", "ours"],
                title="listed by Graph, not stored",
            )


@subscriptions.command("renew")
@click.option("--tenant", help="Only this tenant's subscriptions.")
@click.option("--mailbox", help="Only this mailbox's (user id or UPN; needs --tenant).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@output_option
@click.pass_obj
def subscriptions_renew(
    api: Api, tenant: str | None, mailbox: str | None, yes: bool, output: str
) -> None:
    """Renew subscriptions now (all of them unless --tenant / --mailbox); exit 1 if one failed."""
    if mailbox and not tenant:
        raise click.UsageError("--mailbox needs --tenant")
    body = {k: v for k, v in (("tenant", tenant), ("mailbox", mailbox)) if v}
    if not yes:
        scope = mailbox or tenant or "every tenant"
        click.confirm(f"Renew the subscriptions of {scope} now?", abort=True)
    result = api.call("POST", "/subscriptions/renew", json=body)
    if output == "json":
        show_json(result)
    else:
        show_rows(result["value"], ["subscriptionId", "tenantId", "userId", "result", "expiresOn"])
        counts = ("renewed", "recreated", "failed", "deferred", "skipped")
        click.echo(", ".join(f"{name} {result[name]}" for name in counts))
    if result["failed"]:
        raise CliError(f"{result['failed']} subscription(s) could not be renewed; see the log")


MAILBOX_COMMANDS = (enrol, import_csv, remove, list_, status, resync, events)
OTHER_COMMANDS = (test_connection, health, version_, logs, subscriptions)
