"""The ``switchboard`` command line."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from northbound import (
    cli_bill,
    cli_bss,
    cli_config,
    cli_fault,
    cli_inventory,
    cli_lab,
    cli_order,
    cli_perf,
    cli_users,
)
from northbound.output import err, out
from topology.errors import SwitchboardError

app = typer.Typer(help="Switchboard: network operations suite (discovery, performance, "
                  "fault, fulfilment) with a slim BSS and an emulated lab.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(cli_lab.app, name="lab")
app.command("discover")(cli_inventory.discover_cmd)
app.add_typer(cli_inventory.inventory_app, name="inventory")
app.add_typer(cli_inventory.topology_app, name="topology")
app.command("poll")(cli_perf.poll_cmd)
app.add_typer(cli_perf.perf_app, name="perf")
app.add_typer(cli_fault.traps_app, name="traps")
app.add_typer(cli_fault.alarms_app, name="alarms")
app.add_typer(cli_config.config_app, name="config")
app.add_typer(cli_bss.bss_app, name="bss")
app.add_typer(cli_order.order_app, name="order")
app.add_typer(cli_bill.bill_app, name="bill")
app.add_typer(cli_bill.assurance_app, name="assurance")
app.add_typer(cli_users.users_app, name="users")
app.add_typer(cli_users.audit_app, name="audit")


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    traps: Annotated[bool, typer.Option(help="Run the trap receiver and fault agent too.")]
    = True,
    traps_host: Annotated[str | None, typer.Option(help="Trap address (default: "
                                                   "fault.listen_host).")] = None,
    traps_port: Annotated[int | None, typer.Option(help="Trap UDP port (default: "
                                                   "fault.listen_port, 162).")] = None,
) -> None:
    """Serve the REST API (/api: inventory, performance series, alarm events;
    /tmf-api/alarmManagement/v4: alarms; /metrics; OpenAPI at /docs) and, unless
    --no-traps, receive traps into the fault agent."""
    import dataclasses

    import uvicorn

    from agents.fault.settings import load_fault_settings
    from northbound.api import create_app

    fault = None
    if traps:
        fault = load_fault_settings()
        fault = dataclasses.replace(
            fault, listen_host=traps_host or fault.listen_host,
            listen_port=traps_port or fault.listen_port)
    from agents.fulfilment import FulfilmentAgent
    from topology.db import get_engine

    try:  # changes a previous process left unconfirmed: settle them from the devices
        for c in FulfilmentAgent(get_engine()).reconcile_pending():
            err.print(f"change {c.id} on {c.device} was never confirmed: now {c.state}")
    except SwitchboardError as exc:
        err.print(f"[yellow]could not settle unconfirmed changes:[/] {escape(str(exc))}")
    from bss.model import init_bss_db
    from bss.orders import resume_interrupted

    init_bss_db(get_engine())
    try:  # orders a previous process left in progress: resumed or compensated, never left
        for o in resume_interrupted(get_engine()):
            err.print(f"order {o.id} was interrupted: now {o.state}", highlight=False)
    except SwitchboardError as exc:
        err.print(f"[yellow]could not settle interrupted orders:[/] {escape(str(exc))}")
    from northbound.auth import install_auth

    engine = get_engine()
    web = install_auth(create_app(engine, fault=fault), engine)
    _first_admin(engine, host, port)
    uvicorn.run(web, host=host, port=port, log_level="info")


def _first_admin(engine: Any, host: str, port: int) -> None:
    """With no user yet, make ``admin`` and print its password here, once (it is stored
    hashed only); then say where the server listens."""
    from sqlmodel import Session

    from topology.users import create_user, generate_password, init_users_db, list_users

    init_users_db(engine)
    with Session(engine) as session:
        if not list_users(session):
            password = generate_password()
            create_user(session, "admin", "admin", password)
            out.print("[bold]first start: user admin (role admin) was created with password "
                      f"[/]{password}[bold] (shown this once; add users with `switchboard "
                      "users add`)[/]", highlight=False)
    out.print(f"Switchboard at http://{host}:{port}/ (API docs at /docs)", highlight=False)


def main() -> None:
    """Console entry point: the suite's own errors print as one clear message, exit 1."""
    try:
        app()
    except SwitchboardError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, markup=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
