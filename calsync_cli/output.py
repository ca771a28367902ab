"""Output for people and for scripts: `-o table` (rich tables with headers) or `-o json`."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table

FORMATS = ("table", "json")
output_option = click.option(
    "-o",
    "--output",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="table for people, json for scripts",
)


def console() -> Console:
    """A terminal's own width; wide when piped, so no cell is cut for a script or a test."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 240)


def show_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def show_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str = "") -> None:
    table = Table(*columns, title=title or None, show_lines=False)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    console().print(table)


def show_mapping(data: dict[str, Any], title: str = "") -> None:
    """A nested JSON object as a two-column table (nested keys joined with dots)."""
    flat: list[tuple[str, Any]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            flat.append((prefix, value))

    walk("", data)
    table = Table("field", "value", title=title or None)
    for name, value in flat:
        table.add_row(name, "" if value is None else str(value))
    console().print(table)


def show(data: Any, output: str, *, title: str = "") -> None:
    if output == "json":
        show_json(data)
    elif isinstance(data, dict):
        show_mapping(data, title)
    else:
        show_json(data)
