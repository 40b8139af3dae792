"""The ``switchboard`` command line."""

from __future__ import annotations

import typer
from rich.markup import escape

from northbound import cli_lab
from northbound.output import err
from topology.errors import SwitchboardError

app = typer.Typer(help="Switchboard: network operations suite (discovery, performance, "
                  "fault, fulfilment) with a slim BSS and an emulated lab.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(cli_lab.app, name="lab")


def main() -> None:
    """Console entry point: the suite's own errors print as one clear message, exit 1."""
    try:
        app()
    except SwitchboardError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, markup=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
