"""The ``switchboard`` command line."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from northbound import (
    cli_bill,
    cli_bss,
    cli_config,
    cli_credentials,
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
app.add_typer(cli_credentials.credentials_app, name="credentials")


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
    poll: Annotated[bool, typer.Option(help="Run the poller (performance: settings).")]
    = True,
    discover_lab: Annotated[str | None, typer.Option(
        help="Discover this deployed lab again every --discover-interval seconds "
             "(default: discovery.schedule in settings.yaml; off when neither).")] = None,
    discover_interval: Annotated[float | None, typer.Option(
        min=10, help="Seconds between scheduled discovery runs (default: "
                     "discovery.schedule.interval_s, 900).")] = None,
    grace: Annotated[int, typer.Option(
        min=1, help="Seconds that requests, orders, polls and a discovery run under way get "
                    "to finish when the server stops (SIGTERM, Ctrl-C).")] = 30,
) -> None:
    """Serve the whole suite in one process: the REST API (/api, the TMF APIs, /metrics,
    OpenAPI at /docs), the trap receiver and fault agent (unless --no-traps), the poller
    (unless --no-poll), the discovery schedule (--discover-lab or settings) and order
    processing. SIGTERM or Ctrl-C stops it gracefully."""
    import dataclasses

    import uvicorn

    from agents.fault.settings import load_fault_settings
    from agents.performance.settings import load_perf_settings
    from northbound.api import create_app
    from northbound.api_discovery import DiscoveryRunner, load_discovery_schedule

    fault = None
    if traps:
        fault = load_fault_settings()
        fault = dataclasses.replace(
            fault, listen_host=traps_host or fault.listen_host,
            listen_port=traps_port or fault.listen_port)
    perf = load_perf_settings() if poll else None
    schedule = load_discovery_schedule()
    if discover_lab is not None:
        schedule = dataclasses.replace(schedule, lab=discover_lab, seeds=())
    if discover_interval is not None:
        schedule = dataclasses.replace(schedule, interval_s=discover_interval)
    if schedule.configured:  # refuse a lab that is not deployed now, not in 15 minutes
        schedule.job()
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
    web = install_auth(create_app(engine, fault=fault, poll=perf, discovery=schedule,
                                  stop_grace_s=grace), engine)
    runner = web.state.discovery
    assert isinstance(runner, DiscoveryRunner)
    for run_id in runner.settle_interrupted():
        err.print(f"discovery run {run_id} was interrupted by the last stop", highlight=False)
    _first_admin(engine, host, port)
    parts = ["REST API", "order processing"]
    parts += ["trap receiver on udp "
              f"{fault.listen_host}:{fault.listen_port}"] if fault is not None else []
    parts += ["poller"] if perf is not None else []
    parts += [f"discovery of {schedule.lab or ', '.join(schedule.seeds)} every "
              f"{schedule.interval_s:.0f} s"] if schedule.configured else []
    out.print(f"running: {', '.join(parts)}; Ctrl-C or SIGTERM stops", highlight=False,
              soft_wrap=True)
    stopping = web.state.stopping

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            stopping.set()  # event streams end instead of holding the shutdown
            super().handle_exit(sig, frame)

    Server(uvicorn.Config(web, host=host, port=port, log_level="info",
                          timeout_graceful_shutdown=grace)).run()


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
                      "users add`)[/]", highlight=False, soft_wrap=True)
    out.print(f"Switchboard at http://{host}:{port}/ (API docs at /docs)", highlight=False,
              soft_wrap=True)


def main() -> None:
    """Console entry point: the suite's own errors print as one clear message, exit 1."""
    try:
        app()
    except SwitchboardError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, markup=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
