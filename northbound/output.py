"""Tables for people, JSON for scripts: every data-reporting command goes through here."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["emit_json", "err", "out", "table"]

out = Console()
err = Console(stderr=True, soft_wrap=True)


def emit_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout (no colour, no wrapping)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _cell(value: Any) -> str:
    if value is True:
        return "[green]yes[/]"
    if value is False:
        return "[red]no[/]"
    if value is None:
        return "[dim]-[/]"
    return str(value)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
          caption: str | None = None) -> None:
    """Print a table; booleans become yes/no, ``None`` a dash (not served)."""
    tbl = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for col in columns:
        tbl.add_column(col)
    for row in rows:
        tbl.add_row(*(_cell(v) for v in row))
    out.print(tbl)
