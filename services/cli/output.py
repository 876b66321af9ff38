"""How results reach the terminal: rich tables for people, stable JSON for scripts.

Every command builds plain records first and then hands them here, so `--json` prints exactly
the data the table shows (and more), never a rendering of it.
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from trainhouse.cli.errors import CliError
from trainhouse.gateway.convert import finite


def stdout() -> Console:
    # Resolved at call time: test runners swap sys.stdout per invocation. When the output is a
    # pipe or a log, rich would assume 80 columns and fold ids; use COLUMNS or a wide default.
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS") or 200)
    return Console(file=sys.stdout, highlight=False, soft_wrap=False, width=width)


def stderr() -> Console:
    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def dumps(value: Any, indent: int | None = 2) -> str:
    """Stable JSON: NaN/inf as null, non-ASCII kept, keys in the records' own order."""
    return json.dumps(finite(value), indent=indent, ensure_ascii=False, allow_nan=False, default=str)


def print_json(value: Any) -> None:
    sys.stdout.write(dumps(value) + "\n")
    sys.stdout.flush()


def print_json_line(value: Any) -> None:
    """One compact object per line (NDJSON), for streams such as `watch --json`."""
    sys.stdout.write(dumps(value, indent=None) + "\n")
    sys.stdout.flush()


def emit(as_json: bool, value: Any, render: Callable[[Console], None]) -> None:
    if as_json:
        print_json(value)
    else:
        render(stdout())


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    t = Table(title=title, title_justify="left", header_style="bold")
    for i, column in enumerate(columns):
        t.add_column(column, overflow="fold", no_wrap=i == 0)  # ids stay whole, copy-pasteable
    for row in rows:
        t.add_row(*("" if cell is None else str(cell) for cell in row))
    return t


def num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def when(value: str | None) -> str:
    """An ISO timestamp as "YYYY-MM-DD HH:MM:SS" (UTC) for tables; JSON keeps the full value."""
    return value[:19].replace("T", " ") if value else "-"


def metrics_text(metrics: dict[str, Any], names: Sequence[str] = ("loss", "accuracy", "validation_accuracy")) -> str:
    return "  ".join(f"{n}={num(metrics[n])}" for n in names if metrics.get(n) is not None)


def state_text(state: str | None) -> str:
    colour = {"completed": "green", "failed": "red", "cancelled": "yellow", "paused": "magenta",
              "running": "cyan"}.get(state or "")
    return f"[{colour}]{state}[/{colour}]" if colour else str(state)


def report_error(error: CliError, as_json: bool) -> None:
    """The message (and field) on stderr; with --json also the error object on stdout, on one
    line so that it also ends an NDJSON stream (`watch --json`) readably."""
    field = f" (field: {error.field})" if error.field else ""
    stderr().print(f"[bold red]error:[/bold red] {_escape(error.message)}{_escape(field)}")
    if as_json:
        print_json_line(error.to_json())


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
