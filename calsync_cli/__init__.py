"""Operator CLI over the admin HTTP API. Installed as `calsync` (pyproject's [project.scripts]);
`python -m calsync_cli` runs the same. Not part of the deployed app.

    calsync mailboxes enrol <tenant> <user> [--weeks-ahead 8]     (or: calsync enrol ...)
    calsync mailboxes import mailboxes.csv                         (progress bar)
    calsync resync --all --wait
    calsync test-connection <tenant> --mailbox <user>              (exit 1 when a step failed)
    calsync webhooks add https://hooks.example.com/in --types deleted   (prints the secret once)
    calsync writes create <tenant> <user> --subject X --start 2026-12-02T09:00 --end ...
    calsync feed <tenant> [<user>] [--after CURSOR] [--follow]     (a mailbox's, or the tenant's)

`--url`, `--key`, `--ca` default to CALSYNC_URL, CALSYNC_FUNCTION_KEY and CALSYNC_CA_BUNDLE.
Every command takes `-o table|json`; destructive ones ask first unless `--yes`. Errors are one
line saying what went wrong and what to do; `--debug` shows tracebacks of unexpected ones.
"""

from __future__ import annotations

import sys

import click

from calsync_cli import commands
from calsync_cli.api import Api
from calsync_cli.webhooks import webhooks
from calsync_cli.writes import feed, writes


@click.group()
@click.option(
    "--url",
    envvar="CALSYNC_URL",
    default="http://localhost:7071",
    show_default=True,
    help="Base URL of the calsync app (env CALSYNC_URL).",
)
@click.option(
    "--key",
    envvar="CALSYNC_FUNCTION_KEY",
    default="",
    help="A function key (env CALSYNC_FUNCTION_KEY).",
)
@click.option(
    "--ca",
    envvar="CALSYNC_CA_BUNDLE",
    default=None,
    help="CA bundle for TLS (env CALSYNC_CA_BUNDLE).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks of unexpected errors.")
@click.pass_context
def cli(ctx: click.Context, url: str, key: str, ca: str | None, debug: bool) -> None:
    """Operate calsync: enrol mailboxes, see how their sync is doing, test the connection."""
    ctx.obj = Api(url, key, ca)
    ctx.meta["debug"] = debug


mailboxes = click.Group("mailboxes", help="Enrol, remove, list and inspect mailboxes.")
for command in commands.MAILBOX_COMMANDS:
    mailboxes.add_command(command)
    cli.add_command(command)  # the short forms: `calsync enrol`, `calsync list`, ...
cli.add_command(mailboxes)
for command in commands.OTHER_COMMANDS:
    cli.add_command(command)
cli.add_command(webhooks)
cli.add_command(writes)
cli.add_command(feed)


def main() -> None:
    """The console script: click's own errors as they are; anything unexpected in one line."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except Exception as exc:
        if "--debug" in sys.argv:
            raise
        click.echo(f"Error: unexpected {type(exc).__name__}: {exc} (run with --debug)", err=True)
        sys.exit(1)
