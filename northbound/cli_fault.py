"""``switchboard traps listen|stats`` and ``switchboard alarms list|show|ack|unack|comment|
clear|rules``."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import signal
from typing import Annotated, Any

import typer
from rich.markup import escape
from sqlmodel import Session, select

from northbound.output import emit_json, err, out, table
from topology.db import get_engine

traps_app = typer.Typer(help="Receive SNMP traps into the fault agent.", no_args_is_help=True)
alarms_app = typer.Typer(help="Correlated alarms: list, show, acknowledge, comment.",
                         no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
SEVERITY_STYLE = {"critical": "bold red", "major": "red", "minor": "yellow",
                  "warning": "cyan", "indeterminate": "white", "cleared": "green"}


def _user() -> str:
    """Who runs the command: the person behind sudo if any."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


UserOpt = Annotated[str | None, typer.Option("--user", help="Who acts (default: the user "
                                             "running the command, the one behind sudo).")]


def _engine() -> Any:
    from agents.fault.model import init_fault_db

    engine = get_engine()
    init_fault_db(engine)
    return engine


def _sev(severity: str) -> str:
    return f"[{SEVERITY_STYLE.get(severity, 'white')}]{severity}[/]"


# -- traps -----------------------------------------------------------------------------


@traps_app.command("listen")
def listen_cmd(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: "
                                             "fault.listen_host, 0.0.0.0).")] = None,
    port: Annotated[int | None, typer.Option(help="UDP port (default: fault.listen_port, "
                                             "162).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document per alarm "
                                          "event (TMF642 notification shape).")] = False,
) -> None:
    """Receive traps in the foreground, store alarms as the server would, print each
    alarm event. Ctrl-C stops (what was received is processed first)."""
    from agents.fault.service import FaultService
    from agents.fault.settings import load_fault_settings

    def show(documents: list[dict[str, Any]]) -> None:
        for doc in documents:
            if as_json:
                emit_json(doc)
                continue
            a = doc["event"]["alarm"]
            parent = a["parentAlarm"][0]["id"] if a["parentAlarm"] else None
            out.print(f"{doc['eventTime'][11:19]} {doc['x_change']:<12} #{a['id']:<5} "
                      f"{_sev(a['perceivedSeverity'])} {escape(a['alarmedObject']['name'])} "
                      f"{escape(a['x_problem'])} x{a['x_count']}"
                      + (f" [dim](under #{parent})[/]" if parent else "")
                      + (" [magenta]flapping[/]" if a["x_flapping"] else ""),
                      highlight=False)

    async def run() -> None:
        settings = load_fault_settings()
        service = FaultService(_engine(), settings=settings, host=host, port=port,
                               on_documents=show)
        try:
            await service.start()
        except OSError as exc:
            where = f"{host or settings.listen_host}:{port or settings.listen_port}"
            raise typer.BadParameter(f"cannot listen on udp {where}: {exc.strerror}") from None
        bound = service.receiver.address
        err.print(f"listening for traps on udp {bound[0]}:{bound[1]} "
                  f"({len(service.rules.traps)} trap rules from {service.rules.path}); "
                  "Ctrl-C stops")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await service.stop()
        counters = service.counters()
        err.print("stopped: " + ", ".join(f"{k.removeprefix('receiver_')} {v:g}"
                                          for k, v in counters.items()
                                          if k.startswith("receiver_") and v))

    asyncio.run(run())


@traps_app.command("stats")
def stats_cmd(as_json: JsonOpt = False) -> None:
    """The receiver's and the fault agent's counters, as last written by the process that
    runs them (received, malformed, dropped, bad community, unknown source, latency)."""
    from agents.fault.model import FaultCounter

    with Session(_engine()) as session:
        rows = session.exec(select(FaultCounter).order_by(FaultCounter.name)).all()
    if as_json:
        emit_json({r.name: r.value for r in rows})
        return
    plain = [r for r in rows if " " not in r.name]
    table("trap receiver and fault agent", ["counter", "value", "written"],
          [[r.name, f"{r.value:g}", f"{r.updated_at:%Y-%m-%d %H:%M:%S}"] for r in plain],
          caption=None if rows else "nothing yet: run switchboard traps listen or serve")
    unmatched = sorted((r for r in rows if r.name.startswith("agent_no_rule_oid ")),
                       key=lambda r: -r.value)
    if unmatched:
        table("traps no rule matched (add a rule: docs/fault.md)", ["trap OID", "count"],
              [[r.name.split(" ", 1)[1], f"{r.value:g}"] for r in unmatched[:50]])


# -- alarms ----------------------------------------------------------------------------


@alarms_app.command("list")
def list_cmd(
    active: Annotated[bool, typer.Option("--active", help="Only open alarms.")] = False,
    root_only: Annotated[bool, typer.Option("--root-only", help="Only alarms not under "
                                            "another (root causes and lone alarms).")] = False,
    severity: Annotated[str | None, typer.Option(help="critical, major, ...")] = None,
    device: Annotated[str | None, typer.Option(help="Only this device's.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Alarms, open and worst first (cleared ones too unless --active)."""
    from agents.fault.alarms import AlarmFilter, children_of, list_alarms, tmf_alarm

    with Session(_engine()) as session:
        page = list_alarms(session, AlarmFilter(active=active, root_only=root_only,
                                                severity=severity, device=device), limit=limit)
        kids = children_of(session, [a.id for a in page.items if a.id is not None])
        if as_json:
            emit_json({"total": page.total, "alarms": [
                tmf_alarm(a, children=kids[a.id or 0]) for a in page.items]})
            return
        rows = []
        for a in page.items:
            under = kids[a.id or 0]
            rows.append([
                a.id, _sev(a.severity if a.active else "cleared"), a.device,
                escape(a.resource),
                a.problem + (" [magenta](flapping)[/]" if a.flapping else ""), a.count,
                "yes" if a.ack_state == "acknowledged" else "",
                (f"root of {len(under)}: " + ",".join(str(k.id) for k in under)) if under
                else (f"under {a.parent_id}" if a.parent_id else ""),
                f"{a.changed_at:%H:%M:%S}"])
    table("alarms", ["id", "severity", "device", "resource", "problem", "count", "ack",
                     "correlation", "changed"], rows,
          caption=f"{len(rows)} of {page.total} (times UTC); alarms show ID for the why")


@alarms_app.command("show")
def show_cmd(alarm_id: Annotated[int, typer.Argument(metavar="ID")],
             as_json: JsonOpt = False) -> None:
    """One alarm: its children, why they are under it, history and impacted customers."""
    from agents.fault.alarms import alarm_detail

    with Session(_engine()) as session:
        d = alarm_detail(session, alarm_id)
    if as_json:
        emit_json(d)
        return
    out.print(f"[bold]alarm {d['id']}[/] {_sev(d['perceivedSeverity'])} {d['state']}, "
              f"{d['ackState']}" + (f" by {escape(d['ackUserId'])} at {d['x_ackTime']}: "
                                    f"{escape(d['x_ackNote'] or '')}" if d["ackUserId"]
                                    else ""), highlight=False)
    out.print(f"  {escape(d['alarmedObject']['name'])}: {escape(d['specificProblem'])}",
              highlight=False)
    out.print(f"  {d['alarmType']} / {d['probableCause']}, problem {d['x_problem']} "
              f"(rule {d['x_rule']}), reported {d['x_count']}x"
              + (", [magenta]flapping[/]" if d["x_flapping"] else ""), highlight=False)
    out.print(f"  raised {d['alarmRaisedTime']}, changed {d['alarmChangedTime']}"
              + (f", cleared {d['alarmClearedTime']}" if d["alarmClearedTime"] else ""),
              highlight=False)
    if d["parentAlarm"]:
        out.print(f"  under alarm {d['parentAlarm'][0]['id']}: {escape(d['x_correlation'])}",
                  highlight=False)
    if d["x_children"]:
        table("symptoms under it", ["id", "device", "resource", "problem", "state", "why"],
              [[c["id"], c["device"], escape(c["resource"]), c["problem"], c["state"],
                escape(c["correlation"])] for c in d["x_children"]])
    if d["x_impact"]:
        table("impacted services", ["service", "type", "customer"],
              [[s["serviceId"], s["serviceType"], s["customer"]] for s in d["x_impact"]])
    else:
        out.print("  impacted services: none bound to what this alarm hits", highlight=False)
    if d["comment"]:
        table("comments", ["time", "user", "comment"],
              [[c["time"], c["userId"], escape(c["comment"])] for c in d["comment"]])
    table("history", ["time", "action", "user", "note"],
          [[h["time"], h["action"], h["userId"], escape(h["note"])] for h in d["x_history"]])


@alarms_app.command("ack")
def ack_cmd(alarm_id: Annotated[int, typer.Argument(metavar="ID")],
            note: Annotated[str, typer.Option("--note", help="Why (stored and shown).")],
            user: UserOpt = None) -> None:
    """Acknowledge an open alarm with a note."""
    from agents.fault.alarms import acknowledge

    with Session(_engine()) as session:
        a = acknowledge(session, alarm_id, user=user or _user(), note=note)
        out.print(f"alarm {a.id} acknowledged by {escape(a.ack_user or '')} at "
                  f"{a.ack_time:%Y-%m-%d %H:%M:%S} UTC", highlight=False)


@alarms_app.command("unack")
def unack_cmd(alarm_id: Annotated[int, typer.Argument(metavar="ID")],
              user: UserOpt = None) -> None:
    """Take an acknowledgement back (the history keeps who had acknowledged it)."""
    from agents.fault.alarms import unacknowledge

    with Session(_engine()) as session:
        a = unacknowledge(session, alarm_id, user=user or _user())
        out.print(f"alarm {a.id} is unacknowledged again", highlight=False)


@alarms_app.command("comment")
def comment_cmd(alarm_id: Annotated[int, typer.Argument(metavar="ID")],
                text: Annotated[str, typer.Argument(metavar="TEXT")],
                user: UserOpt = None) -> None:
    """Add a comment to an alarm."""
    from agents.fault.alarms import add_comment

    with Session(_engine()) as session:
        c = add_comment(session, alarm_id, user=user or _user(), text=text)
        out.print(f"comment added to alarm {c.alarm_id}", highlight=False)


@alarms_app.command("clear")
def clear_cmd(alarm_id: Annotated[int, typer.Argument(metavar="ID")],
              note: Annotated[str, typer.Option("--note", help="Why it is cleared by hand.")],
              user: UserOpt = None) -> None:
    """Clear an open alarm by hand (its symptoms stand alone again)."""
    from agents.fault.alarms import clear_alarm

    with Session(_engine()) as session:
        a = clear_alarm(session, alarm_id, user=user or _user(), note=note)
        out.print(f"alarm {a.id} cleared", highlight=False)


@alarms_app.command("rules")
def rules_cmd(as_json: JsonOpt = False) -> None:
    """The fault rules in force (trap and event rules)."""
    import dataclasses

    from agents.fault.rules import load_fault_rules
    from agents.fault.settings import load_fault_settings

    rules = load_fault_rules(load_fault_settings().rules_file)
    if as_json:
        emit_json({"path": rules.path,
                   "traps": [dataclasses.asdict(r) for r in rules.traps],
                   "events": [dataclasses.asdict(r) for r in rules.events.values()]})
        return
    table(f"trap rules ({rules.path})", ["name", "trap", "when", "action", "problem",
                                         "resource", "severity", "means"],
          [[r.name, r.trap, ", ".join(f"{k} in {list(v)}" for k, v in r.when), r.action,
            r.problem, r.resource.type, r.severity if r.action == "raise" else "",
            r.means] for r in rules.traps])
    table("event rules", ["name", "alarm type", "probable cause", "means"],
          [[r.name, r.alarm_type, r.probable_cause, r.means] for r in rules.events.values()])
