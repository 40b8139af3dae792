"""``switchboard config plan|apply|rollback|backup|diff|changes|leases``."""

from __future__ import annotations

import getpass
import os
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.syntax import Syntax
from sqlmodel import Session, col, select

from northbound.output import emit_json, err, out, table
from topology.db import get_engine

config_app = typer.Typer(help="Service activation: plan (the diff), apply as a transaction, "
                         "roll back; config backups and diffs.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
ParamOpt = Annotated[list[str], typer.Option("--param", help="k=v, repeatable (see "
                                             "adapters/data/services.yaml).")]
DeviceOpt = Annotated[str, typer.Option("--device", help="The device, by its inventory name.")]


def _agent(lab: str | None = None, *, probe: bool = False) -> Any:
    """The agent; with ``probe``, proving reach from a node of ``lab`` (default: the only
    lab running)."""
    from agents.fulfilment import FulfilmentAgent

    reach = None
    if probe:
        from lab.reach import LabReachProbe

        reach = LabReachProbe(lab)
    return FulfilmentAgent(get_engine(), probe=reach)


def _settle(agent: Any) -> None:
    """Record changes left unconfirmed by a process that ended (the device reverted)."""
    for c in agent.reconcile_pending():
        err.print(f"change {c.id} on {c.device} was never confirmed: now {c.state}",
                  highlight=False)


def parse_params(items: list[str]) -> dict[str, str]:
    """``--param k=v`` options as a mapping (a key given twice is refused)."""
    out_: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--param {item!r}: expected k=v")
        if key in out_:
            raise typer.BadParameter(f"--param {key} given twice")
        out_[key] = value
    return out_


def _diff(text: str) -> None:
    if not text:
        out.print("[green]no change: the device already has this[/]")
        return
    out.print(Syntax(text, "diff", theme="ansi_dark", background_color="default"))


def _change_json(c: Any) -> dict[str, Any]:
    return {"id": c.id, "batch": c.batch, "position": c.position, "service": c.service,
            "device": c.device, "driver": c.driver, "state": c.state, "who": c.who,
            "why": c.why, "params": c.params(), "diff": c.diff,
            "applied_diff": c.applied_diff, "verify": c.verify(), "error": c.error,
            "confirm_timeout_s": c.confirm_timeout_s,
            "started_at": c.started_at, "finished_at": c.finished_at,
            "duration_s": c.duration_s}


@config_app.command("plan")
def plan_cmd(service: Annotated[str, typer.Argument(metavar="SERVICE")], device: DeviceOpt,
             param: ParamOpt, as_json: JsonOpt = False) -> None:
    """What applying SERVICE would change on the device (nothing is pushed)."""
    from agents.fulfilment import ServiceRequest

    plan = _agent().plan([ServiceRequest(service, device, parse_params(param))])
    if as_json:
        emit_json({"steps": [{"device": s.request.device, "driver": s.driver,
                              "platform": s.platform, "params": s.params,
                              "config": s.rendered.config, "diff": s.diff}
                             for s in plan.steps]})
        return
    for s in plan.steps:
        out.print(f"[bold]{s.request.device}[/] via {s.driver} ({s.platform}):")
        _diff(s.diff)


@config_app.command("apply")
def apply_cmd(
    service: Annotated[str, typer.Argument(metavar="SERVICE")], device: DeviceOpt,
    param: ParamOpt,
    confirm_timeout: Annotated[int | None, typer.Option(
        "--confirm-timeout", min=5, max=3600,
        help="Commit with a revert timer of S seconds, confirmed only once verified.")]
    = None,
    why: Annotated[str, typer.Option(help="The order or ticket this serves.")] = "",
    verify_from: Annotated[str | None, typer.Option(help="Lab node to send real traffic "
                                                    "from, to prove the service.")] = None,
    verify_to: Annotated[str | None, typer.Option(help="Address it must reach.")] = None,
    lab: Annotated[str | None, typer.Option(help="The lab whose node --verify-from names "
                                            "(default: the only one).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan and record, push "
                                          "nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Push SERVICE to the device as a transaction; roll back on any failure."""
    from agents.fulfilment import ServiceRequest

    if (verify_from is None) != (verify_to is None):
        raise typer.BadParameter("--verify-from and --verify-to go together")
    agent = _agent(lab, probe=verify_from is not None)
    _settle(agent)
    who = os.environ.get("SUDO_USER") or getpass.getuser()
    result = agent.apply([ServiceRequest(service, device, parse_params(param))], who=who, why=why,
                         confirm_timeout_s=confirm_timeout, verify_from=verify_from,
                         verify_to=verify_to, dry_run=dry_run)
    if as_json:
        emit_json({"batch": result.batch, "state": result.state, "error": result.error,
                   "changes": [_change_json(c) for c in result.changes]})
    else:
        for c in result.changes:
            out.print(f"change {c.id}: [bold]{c.device}[/] {c.service} -> {c.state}",
                      highlight=False)
            _diff(c.applied_diff or c.diff)
            for check in c.verify():
                mark = {True: "[green]ok[/]", False: "[red]FAILED[/]",
                        None: "[yellow]not run[/]"}[check["ok"]]
                out.print(f"  verify: {escape(check['check'])}: {mark} "
                          f"{escape(check.get('detail', ''))}", highlight=False)
        if result.error:
            err.print(f"[red]failed, everything rolled back:[/] {escape(result.error)}")
    if result.state == "failed":
        raise typer.Exit(1)


@config_app.command("rollback")
def rollback_cmd(change_id: Annotated[int, typer.Argument(metavar="CHANGE_ID")],
                 as_json: JsonOpt = False) -> None:
    """Put the device back to the config saved before that change."""
    who = os.environ.get("SUDO_USER") or getpass.getuser()
    c = _agent().rollback(change_id, who=who)
    if as_json:
        emit_json(_change_json(c))
        return
    out.print(f"change {c.id} on {c.device}: {c.state}; the running config equals the "
              "backup taken before it", highlight=False)


@config_app.command("backup")
def backup_cmd(device: Annotated[str, typer.Argument(metavar="DEVICE")],
               as_json: JsonOpt = False) -> None:
    """Read the device's running config and keep it."""
    b = _agent().backup(device)
    if as_json:
        emit_json({"id": b.id, "device": b.device, "taken_at": b.taken_at,
                   "reason": b.reason, "text": b.text})
        return
    out.print(f"backup {b.id} of {device}: {len(b.text.splitlines())} lines at "
              f"{b.taken_at:%Y-%m-%d %H:%M:%S} UTC", highlight=False)


@config_app.command("diff")
def diff_cmd(device: Annotated[str, typer.Argument(metavar="DEVICE")],
             as_json: JsonOpt = False) -> None:
    """What changed on the device since its last backup."""
    last, text = _agent().diff(device)
    if as_json:
        emit_json({"device": device, "since_backup": last.id if last else None,
                   "since": last.taken_at if last else None, "diff": text})
        return
    if last is None:
        err.print(f"no backup of {device} yet (switchboard config backup {device}); "
                  "showing the whole running config as added")
    else:
        out.print(f"since backup {last.id} ({last.taken_at:%Y-%m-%d %H:%M:%S} UTC, "
                  f"{escape(last.reason)}):", highlight=False)
    _diff(text)


@config_app.command("changes")
def changes_cmd(device: Annotated[str | None, typer.Option(help="Only this device.")] = None,
                limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
                as_json: JsonOpt = False) -> None:
    """Recorded changes, newest first: who, why, result."""
    from agents.fulfilment import ConfigChange

    agent = _agent()
    _settle(agent)
    engine = agent.engine
    with Session(engine) as s:
        q = select(ConfigChange)
        if device:
            q = q.where(ConfigChange.device == device)
        rows = s.exec(q.order_by(col(ConfigChange.id).desc()).limit(limit)).all()
    if as_json:
        emit_json([_change_json(c) for c in rows])
        return
    table("config changes", ["id", "device", "service", "state", "who", "why", "when",
                             "error"],
          [[c.id, c.device, c.service, c.state, c.who, escape(c.why),
            f"{c.created_at:%H:%M:%S}", escape((c.error or "")[:80])] for c in rows],
          caption="times UTC; config changes --json has the diffs, checks and batches")


@config_app.command("leases")
def leases_cmd(as_json: JsonOpt = False) -> None:
    """Devices being changed now (their leases): who, why, since when. A change of a
    device listed here waits for it, then is refused naming the holder."""
    from agents.fulfilment import init_fulfilment_db
    from agents.fulfilment.leases import lease_docs

    engine = get_engine()
    init_fulfilment_db(engine)
    with Session(engine) as s:
        docs = lease_docs(s)
    if as_json:
        emit_json(docs)
        return
    table("device leases", ["device", "holder", "since", "expires", "stale"],
          [[d["device"], escape(d["holder"]), f"{d['acquired_at']:%H:%M:%S}",
            f"{d['expires_at']:%H:%M:%S}", escape(d["stale"] or "")] for d in docs],
          caption="times UTC; none: no device is being changed" if not docs
          else "times UTC; a stale lease is taken over by the next change")
