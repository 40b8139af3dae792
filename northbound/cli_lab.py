"""``switchboard lab ...``: deploy, inspect, operate and destroy the emulated lab."""

from __future__ import annotations

import dataclasses
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from lab import Lab, deploy, load_topology, running_labs
from lab.runtime import NodeStatus, clean_leftovers, has_leftovers
from northbound.output import emit_json, err, out, table

app = typer.Typer(help="The emulated lab: real network daemons in network namespaces.",
                  no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
LabOpt = Annotated[str | None, typer.Option("--lab", help="Lab name (may be left out when "
                                            "exactly one lab runs).")]
NameArg = Annotated[str | None, typer.Argument(help="Lab name (may be left out when exactly "
                                               "one lab runs).")]


class UpDown(StrEnum):
    """Link actions."""

    down = "down"
    up = "up"


class StopStart(StrEnum):
    """Node actions."""

    stop = "stop"
    start = "start"


def _status_rows(rows: list[NodeStatus]) -> list[list[object]]:
    return [[r.name, r.kind, r.role, r.mgmt_ipv4, r.state, r.snmp, r.ssh_cli, r.netconf]
            for r in rows]


def _print_status(lab: Lab, rows: list[NodeStatus], as_json: bool) -> None:
    if as_json:
        emit_json({"lab": lab.name, "subnet": lab.state.subnet, "gateway": lab.state.gateway,
                   "trap_target": f"{lab.state.trap_host}:{lab.state.trap_port}",
                   "credential_profile": lab.name, "source_file": lab.state.source_file,
                   "nodes": [dataclasses.asdict(r) for r in rows]})
        return
    table(f"lab {lab.name}",
          ["node", "kind", "role", "mgmt", "state", "snmp", "ssh cli", "netconf"],
          _status_rows(rows),
          caption=f"mgmt {lab.state.subnet} · traps to {lab.state.trap_host}:"
                  f"{lab.state.trap_port} · credential profile '{lab.name}'")


@app.command("deploy")
def deploy_cmd(
    file: Annotated[Path, typer.Argument(help="containerlab topology file (*.clab.yml)")],
    trap_target: Annotated[str | None, typer.Option(
        "--trap-target", metavar="HOST:PORT",
        help="Where the nodes send traps (default: the mgmt gateway, UDP 162).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Deploy a topology file with namespaces, veth pairs and real daemons."""
    topology = load_topology(file)
    with err.status(f"deploying {topology.name}") as status:
        lab = deploy(topology, trap_target=trap_target,
                     progress=lambda msg: status.update(f"deploying {topology.name}: {msg}"))
    _print_status(lab, lab.inspect(), as_json)


@app.command("inspect")
def inspect_cmd(name: NameArg = None, as_json: JsonOpt = False) -> None:
    """One row per node: role, mgmt address, and which planes answer right now."""
    lab = Lab.load(name)
    _print_status(lab, lab.inspect(), as_json)


@app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """The labs deployed on this machine."""
    labs = [Lab.load(n) for n in running_labs()]
    rows = [[lab.name, len(lab.state.nodes), lab.state.subnet, lab.state.created,
             lab.state.source_file] for lab in labs]
    if as_json:
        emit_json([dict(zip(["lab", "nodes", "subnet", "created", "source_file"], r,
                            strict=True)) for r in rows])
    else:
        table("labs", ["lab", "nodes", "mgmt", "deployed", "file"], rows)


@app.command("destroy")
def destroy_cmd(name: NameArg = None, as_json: JsonOpt = False) -> None:
    """End the lab's processes (by PID) and remove its namespaces, veths and bridge."""
    if name is not None and name not in running_labs() and has_leftovers(name):
        report = clean_leftovers(name)  # a killed run: kernel objects without a state file
    else:
        report = Lab.load(name).destroy()
    if as_json:
        emit_json(dataclasses.asdict(report))
    else:
        out.print(f"lab {report.lab} destroyed: {report.processes} processes ended, "
                  f"{len(report.namespaces)} namespaces and {len(report.links)} bridge removed")
    if report.left:
        err.print(f"[red]could not remove: {', '.join(report.left)}[/]")
        raise typer.Exit(1)


def _endpoint(value: str) -> tuple[str, str]:
    node, sep, iface = value.partition(":")
    if not sep or not node or not iface:
        raise typer.BadParameter(f"{value!r} is not NODE:IFACE")
    return node, iface


@app.command("link")
def link_cmd(
    action: Annotated[UpDown, typer.Argument(help="down or up")],
    endpoint: Annotated[str, typer.Argument(metavar="NODE:IFACE")],
    lab_name: LabOpt = None,
) -> None:
    """Take a node's interface down or up on the real kernel object (its peer loses carrier)."""
    node, iface = _endpoint(endpoint)
    Lab.load(lab_name).set_link(node, iface, up=action is UpDown.up)
    out.print(f"{node}:{iface} {action.value}")


@app.command("node")
def node_cmd(
    action: Annotated[StopStart, typer.Argument(help="stop or start")],
    node: Annotated[str, typer.Argument(metavar="NODE")],
    lab_name: LabOpt = None,
) -> None:
    """Stop a node (its daemons end, its interfaces go down) or start it again."""
    lab = Lab.load(lab_name)
    if action is StopStart.stop:
        lab.stop_node(node)
    else:
        for failure in lab.start_node(node):
            err.print(f"[yellow]exec on restart: {failure}[/]")
    out.print(f"{node} {action.value}ed" if action is StopStart.start else f"{node} stopped")


@app.command("traffic")
def traffic_cmd(
    src: Annotated[str, typer.Argument(metavar="SRC", help="sending node")],
    dst: Annotated[str, typer.Argument(metavar="DST", help="receiving node")],
    nbytes: Annotated[int, typer.Option("--bytes", min=1, help="TCP payload bytes to send")],
    wait: Annotated[float, typer.Option("--wait", min=0, help="Seconds to wait for a route "
                                        "(routing converges after a deploy).")] = 30.0,
    lab_name: LabOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send real packets from one node to another across the lab's routers."""
    report = Lab.load(lab_name).traffic(src, dst, nbytes, wait_s=wait)
    row = {**dataclasses.asdict(report), "rate_mbps": round(report.rate_mbps, 1)}
    if as_json:
        emit_json(row)
    else:
        table("traffic", ["src", "dst", "dst address", "bytes sent", "bytes received",
                          "seconds", "Mbit/s"],
              [[report.src, report.dst, report.dst_address, report.bytes_sent,
                report.bytes_received, f"{report.seconds:.3f}", row["rate_mbps"]]])


@app.command("exec", context_settings={"allow_extra_args": True,
                                       "ignore_unknown_options": True})
def exec_cmd(
    node: Annotated[str, typer.Argument(metavar="NODE")],
    command: Annotated[list[str], typer.Argument(metavar="-- CMD...")],
    lab_name: LabOpt = None,
) -> None:
    """Run a command inside a node (its network, mount and UTS namespaces)."""
    proc = Lab.load(lab_name).exec(node, command, capture=False)
    raise typer.Exit(proc.returncode)


@app.command("credentials")
def credentials_cmd(name: NameArg = None, as_json: JsonOpt = False) -> None:
    """The lab's own credentials, for engineers who reach the lab with their own tools."""
    lab = Lab.load(name)
    c = lab.credentials
    rows = [
        ["snmp v2c community", c.snmp_community],
        ["snmpv3 user", c.snmpv3_user],
        ["snmpv3 auth", f"{c.snmpv3_auth_protocol} {c.snmpv3_auth_key}"],
        ["snmpv3 priv", f"{c.snmpv3_priv_protocol} {c.snmpv3_priv_key}"],
        ["ssh / netconf user", c.ssh_user],
        ["ssh / netconf password", c.ssh_password],
    ]
    if as_json:
        emit_json({"lab": lab.name, "profile": lab.name, **dataclasses.asdict(c)})
    else:
        if sys.stdout.isatty():
            err.print("[yellow]these are the lab's secrets: do not paste them anywhere[/]")
        table(f"lab {lab.name} credentials (profile '{lab.name}')", ["what", "value"], rows)
