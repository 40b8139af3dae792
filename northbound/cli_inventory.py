"""``switchboard discover``, ``switchboard inventory ...`` and ``switchboard topology ...``."""

from __future__ import annotations

import asyncio
import dataclasses
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlmodel import Session

from lab import Lab, running_labs
from northbound.output import emit_json, err, out, table
from topology.credentials import CredentialStore
from topology.db import get_engine, init_db
from topology.errors import CredentialError
from topology.export import load_snapshot, to_clab, to_dot, to_graph, to_json
from topology.queries import (
    device_detail,
    list_changes,
    list_devices,
    list_interfaces,
    list_links,
    parse_since,
)
from topology.scope import Scope, expand_targets, load_discovery_settings
from topology.settings import get_settings

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
LimitOpt = Annotated[int, typer.Option("--limit", min=1, max=1000, help="Rows per page.")]
OffsetOpt = Annotated[int, typer.Option("--offset", min=0, help="Rows to skip.")]

inventory_app = typer.Typer(help="The inventory: devices, interfaces, links, changes.",
                            no_args_is_help=True)
topology_app = typer.Typer(help="The discovered topology: show it, export it.",
                           no_args_is_help=True)


def _engine() -> Any:
    engine = get_engine()
    init_db(engine)
    return engine


def discover_cmd(
    targets: Annotated[list[str] | None, typer.Argument(
        metavar="TARGET...", help="CIDRs, addresses or host names (a lab's mgmt subnet with "
        "--lab).")] = None,
    profile: Annotated[list[str] | None, typer.Option(
        "--profile", help="Credential profile, tried in the order given (repeatable).")] = None,
    lab: Annotated[str | None, typer.Option(
        "--lab", help="A deployed lab: its mgmt subnet and its credential profile.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Discover devices over SNMP, NETCONF and SSH into the inventory and map their links."""
    from agents.discovery import discover, lab_targets  # the protocol stacks load only here

    settings = get_settings()
    dsettings = load_discovery_settings(settings)
    extra: list[IPv4Network] = []
    nets = expand_targets(targets or [])
    names = list(profile or [])
    label = ", ".join(targets or [])
    for running in running_labs():  # a deployed lab's own mgmt subnet is ours to probe
        extra.append(IPv4Network(Lab.load(running).state.subnet))
    if lab is not None or (not targets and not names):
        deployed = Lab.load(lab)
        subnet = IPv4Network(deployed.state.subnet)
        extra.append(subnet)
        if not targets:
            nets = lab_targets(subnet, IPv4Address(deployed.state.gateway))
            label = f"{subnet} (lab {deployed.name})"
        if not names:
            names = [deployed.name]
    names = names or list(dsettings.profiles)
    if not names:
        raise CredentialError("no credential profile: pass --profile NAME (or --lab NAME), "
                              "or list profiles under discovery.profiles in settings.yaml")
    store = CredentialStore(settings)
    profiles = [store.load(n) for n in names]
    scope = Scope.build(dsettings, extra)
    scope.check(nets)  # refused before a single packet
    engine = _engine()
    with Progress(TextColumn("[bold]discover[/] {task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                  transient=True, disable=as_json) as bar:
        task = bar.add_task(label, total=None)

        def progress(done: int, total: int, current: str) -> None:
            bar.update(task, completed=done, total=total)

        result = asyncio.run(discover(nets, profiles=profiles, scope=scope, settings=dsettings,
                                      engine=engine, progress=progress))
    if as_json:
        raw = dataclasses.asdict(result)
        raw["targets"] = [label]
        emit_json(raw)
        return
    rows: list[list[Any]] = [
        ["found", len(result.found), ", ".join(result.found)],
        ["new", len(result.new), ", ".join(result.new)],
        ["changed", len(result.changed), ", ".join(result.changed)],
        ["missing", len(result.missing), ", ".join(result.missing)],
        ["partial", len(result.partial), ", ".join(result.partial)],
        ["failed", len(result.failed), "; ".join(f"{f.detail} [{f.status}]"
                                                 for f in result.failed)],
        ["links", result.links, f"{result.links_confirmed} confirmed by both ends"],
        ["no answer", result.no_answer, f"of {result.addresses_probed} addresses probed"],
        ["swept", result.arp_answered, f"answered ARP ({result.icmp_answered} answered "
                                       "ICMP; ARP-silent addresses were not probed)"],
    ]
    table(f"discovery run {result.run_id}: {label}", ["", "count", "which"], rows,
          caption=f"{result.seconds:.1f} s · profiles {', '.join(names)}")


@inventory_app.command("devices")
def devices_cmd(
    role: Annotated[str | None, typer.Option(help="router, switch, vnf, host")] = None,
    status: Annotated[str | None, typer.Option(help="ok, partial, missing, auth_failed...")]
    = None,
    offset: OffsetOpt = 0, limit: LimitOpt = 100, as_json: JsonOpt = False,
) -> None:
    """The devices in the inventory."""
    with Session(_engine()) as session:
        page = list_devices(session, role=role, status=status, offset=offset, limit=limit)
    if as_json:
        emit_json({"count": page.total, "data": [d.model_dump(mode="json") for d in page.items]})
        return
    table(f"devices ({page.total})", ["name", "role", "mgmt", "vendor", "os", "planes",
                                     "status", "last seen"],
          [[d.name, d.role, d.mgmt_address, d.vendor, f"{d.os_name or ''} {d.os_version or ''}",
            d.planes, d.status, f"{d.last_seen:%m-%d %H:%M}"] for d in page.items])


@inventory_app.command("interfaces")
def interfaces_cmd(
    device: Annotated[str | None, typer.Option(help="only this device's")] = None,
    offset: OffsetOpt = 0, limit: LimitOpt = 1000, as_json: JsonOpt = False,
) -> None:
    """Interfaces of every device (or one)."""
    with Session(_engine()) as session:
        page = list_interfaces(session, device=device, offset=offset, limit=limit)
    if as_json:
        emit_json({"count": page.total,
                   "data": [{"device": dev, **i.model_dump(mode="json")} for dev, i in
                            page.items]})
        return
    table(f"interfaces ({page.total})", ["device", "ifIndex", "name", "description", "speed",
                                        "mac", "admin", "oper", "missing"],
          [[dev, i.if_index, i.name, i.alias, f"{i.speed_mbps} Mb/s"
            if i.speed_mbps else None, i.mac, i.admin_status, i.oper_status, i.missing]
           for dev, i in page.items])


@inventory_app.command("links")
def links_cmd(as_json: JsonOpt = False) -> None:
    """Links between interfaces, how they were learnt and whether both ends confirm them."""
    with Session(_engine()) as session:
        page = list_links(session, limit=1000)
    if as_json:
        emit_json({"count": page.total, "data": [lk.model_dump(mode="json")
                                                 for lk in page.items]})
        return
    table(f"links ({page.total})", ["a", "b", "via", "confirmed", "disagreement", "missing"],
          [[lk.a, lk.b, lk.learnt_via, lk.confirmed, lk.disagreement, lk.missing]
           for lk in page.items])


@inventory_app.command("show")
def show_cmd(device: Annotated[str, typer.Argument(metavar="DEVICE")],
             as_json: JsonOpt = False) -> None:
    """One device: its facts, interfaces, addresses, hardware and links."""
    with Session(_engine()) as session:
        detail = device_detail(session, device)
    if as_json:
        emit_json({"device": detail.device.model_dump(mode="json"),
                   "interfaces": [i.model_dump(mode="json") for i in detail.interfaces],
                   "addresses": [a.model_dump(mode="json") for a in detail.addresses],
                   "hardware": [h.model_dump(mode="json") for h in detail.hardware],
                   "links": [lk.model_dump(mode="json") for lk in detail.links]})
        return
    d = detail.device
    table(f"device {d.name}", ["attribute", "value"], [
        ["sysName", d.sys_name], ["role", f"{d.role} ({d.role_reason})"],
        ["mgmt address", d.mgmt_address], ["vendor", d.vendor], ["model", d.model],
        ["OS", f"{d.os_name or ''} {d.os_version or ''}".strip() or None],
        ["serial", d.serial],
        ["sysObjectID", d.sys_object_id], ["sysDescr", d.sys_descr],
        ["SNMP engine id", d.engine_id], ["LLDP chassis id", d.chassis_id],
        ["planes", d.planes], ["credential profile", d.credential_profile],
        ["status", f"{d.status} {d.status_detail or ''}".strip()],
        ["identity", d.identity_rule], ["first / last seen", f"{d.first_seen:%Y-%m-%d %H:%M} / "
                                                              f"{d.last_seen:%Y-%m-%d %H:%M}"]])
    by_iface: dict[int | None, list[str]] = {}
    for a in detail.addresses:
        by_iface.setdefault(a.interface_id, []).append(f"{a.address}/{a.prefix_length}")
    table("interfaces", ["ifIndex", "name", "description", "speed", "mac", "mtu", "admin",
                         "oper", "addresses"],
          [[i.if_index, i.name, i.alias, i.speed_mbps, i.mac, i.mtu, i.admin_status,
            i.oper_status, " ".join(by_iface.get(i.id, []))] for i in detail.interfaces])
    if detail.links:
        table("links", ["a", "b", "confirmed"],
              [[lk.a, lk.b, lk.confirmed] for lk in detail.links])


@inventory_app.command("changes")
def changes_cmd(
    since: Annotated[str | None, typer.Option(help="15m, 1h, 2d or an ISO time")] = None,
    device: Annotated[str | None, typer.Option(help="only this device's")] = None,
    offset: OffsetOpt = 0, limit: LimitOpt = 1000, as_json: JsonOpt = False,
) -> None:
    """What discovery saw change: one row per attribute, with the run that saw it."""
    with Session(_engine()) as session:
        page = list_changes(session, since=parse_since(since) if since else None,
                            device=device, offset=offset, limit=limit)
    if as_json:
        emit_json({"count": page.total, "data": [c.model_dump(mode="json")
                                                 for c in page.items]})
        return
    table(f"changes ({page.total})", ["when", "run", "entity", "what", "attribute", "old",
                                     "new"],
          [[f"{c.at:%Y-%m-%d %H:%M:%S}", c.run_id, c.entity, c.entity_key, c.attribute,
            c.old_value, c.new_value] for c in page.items])


class ExportFormat(StrEnum):
    """Export formats."""

    json = "json"
    dot = "dot"
    clab = "clab"


@topology_app.command("show")
def topology_show_cmd(as_json: JsonOpt = False) -> None:
    """Each device with its neighbours, port to port."""
    with Session(_engine()) as session:
        snap = load_snapshot(session)
    graph = to_graph(snap)
    if as_json:
        emit_json({"nodes": [{"name": n, **graph.nodes[n]} for n in graph.nodes],
                   "links": [{"a": f"{a}:{d['a_iface']}", "b": f"{b}:{d['b_iface']}",
                              "confirmed": d["confirmed"]}
                             for a, b, d in graph.edges(data=True)]})
        return
    ports: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for link in snap.links:
        a, b = snap.end(link.a_interface_id), snap.end(link.b_interface_id)
        if a is None or b is None:
            continue
        mark = "" if link.confirmed else " (one end only)"
        (da, ia), (db, ib) = a, b
        ports[da.name].append(f"{ia.name} -> {db.name}:{ib.name}{mark}")
        ports[db.name].append(f"{ib.name} -> {da.name}:{ia.name}{mark}")
    rows = [[n, graph.nodes[n]["role"], graph.nodes[n]["mgmt"],
             "\n".join(sorted(ports[n])) or "-"] for n in sorted(graph.nodes)]
    table(f"topology ({graph.number_of_nodes()} devices, {graph.number_of_edges()} links)",
          ["device", "role", "mgmt", "neighbours"], rows)


@topology_app.command("export")
def topology_export_cmd(
    fmt: Annotated[ExportFormat, typer.Option("--format", help="json, dot or clab")],
    output: Annotated[Path | None, typer.Option(
        "--output", help="Directory for the clab file and router configs (clab; default .)"
    )] = None,
    name: Annotated[str, typer.Option(help="Lab name in the clab export")] = "discovered",
) -> None:
    """Export the discovered topology: JSON, Graphviz dot, or a deployable containerlab file."""
    with Session(_engine()) as session:
        snap = load_snapshot(session)
    if fmt is ExportFormat.json:
        out.print(to_json(snap), highlight=False, soft_wrap=True)
    elif fmt is ExportFormat.dot:
        out.print(to_dot(snap), highlight=False, soft_wrap=True, markup=False)
    else:
        path = to_clab(snap, output or Path.cwd(), name=name)
        out.print(f"wrote {path} (deploy it: switchboard lab deploy {path})")
