"""The discovered topology as data: a graph (networkx), JSON, Graphviz dot, and a
containerlab topology file that is itself deployable (``switchboard lab deploy``).

The clab export carries what discovery knows: devices, their roles and mgmt
addresses, the links LLDP confirmed, and for routers an FRR config with the
hostname, interface descriptions and addresses. Routing protocol configuration
is not reconstructed (discovery does not read it); the file says so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import networkx as nx
import yaml
from sqlmodel import Session, col, select

from topology.inventory import Device, Interface, IpAddress, Link

__all__ = ["TopologySnapshot", "clab_node_names", "load_snapshot", "to_clab", "to_dot",
           "to_graph", "to_json"]

_ROLE_IMAGES = {"router": "frrouting/frr:v8.4.1"}
_DEFAULT_IMAGE = "alpine:3.20"
_CLAB_NAME = re.compile(r"[^a-z0-9-]+")
_NODE_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


def clab_node_names(names: list[str]) -> dict[str, str]:
    """Device name -> a containerlab node name the lab's parser accepts
    (``r1.lab.example`` -> ``r1-lab-example``; ``r1@10.0.0.9`` -> ``r1-10-0-0-9``), unique."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        base = _NODE_CHARS.sub("-", name).strip("-_")[:30] or "node"
        candidate, n = base, 2
        while candidate in taken:
            suffix = f"-{n}"
            candidate, n = base[: 30 - len(suffix)] + suffix, n + 1
        taken.add(candidate)
        out[name] = candidate
    return out


@dataclass
class TopologySnapshot:
    """Devices (present ones), their interfaces and addresses, and links, read once."""

    devices: list[Device]
    interfaces: dict[int, Interface]
    addresses: list[IpAddress]
    links: list[Link]
    by_device: dict[int, list[Interface]] = field(default_factory=dict)

    def end(self, interface_id: int) -> tuple[Device, Interface] | None:
        iface = self.interfaces.get(interface_id)
        if iface is None:
            return None
        dev = next((d for d in self.devices if d.id == iface.device_id), None)
        return (dev, iface) if dev is not None else None


def load_snapshot(session: Session, *, include_missing: bool = False) -> TopologySnapshot:
    """Read the inventory once (no per-device queries)."""
    devices = list(session.exec(select(Device).order_by(col(Device.name))).all())
    if not include_missing:
        devices = [d for d in devices if d.status != "missing"]
    ids = {d.id for d in devices}
    interfaces = {i.id: i for i in session.exec(select(Interface)).all()
                  if i.device_id in ids and i.id is not None}
    addresses = [a for a in session.exec(select(IpAddress)).all()
                 if a.device_id in ids and not a.missing]
    links = [lk for lk in session.exec(select(Link)).all()
             if (include_missing or not lk.missing)
             and lk.a_interface_id in interfaces and lk.b_interface_id in interfaces]
    snap = TopologySnapshot(devices, interfaces, addresses, links)
    for iface in interfaces.values():
        snap.by_device.setdefault(iface.device_id, []).append(iface)
    return snap


def to_graph(snap: TopologySnapshot) -> nx.MultiGraph[str]:
    """Devices as nodes, links as edges keyed by their interface names."""
    graph: nx.MultiGraph[str] = nx.MultiGraph()
    for dev in snap.devices:
        graph.add_node(dev.name, role=dev.role, mgmt=dev.mgmt_address, status=dev.status)
    for link in snap.links:
        a, b = snap.end(link.a_interface_id), snap.end(link.b_interface_id)
        if a is None or b is None:
            continue
        graph.add_edge(a[0].name, b[0].name, a_iface=a[1].name, b_iface=b[1].name,
                       confirmed=link.confirmed, learnt_via=link.learnt_via,
                       disagreement=link.disagreement)
    return graph


def to_json(snap: TopologySnapshot) -> str:
    """Nodes and links as JSON (what `topology export --format json` prints)."""
    nodes = [{"name": d.name, "role": d.role, "mgmt_address": d.mgmt_address,
              "vendor": d.vendor, "os": d.os_name, "os_version": d.os_version,
              "status": d.status} for d in snap.devices]
    links = []
    for link in snap.links:
        a, b = snap.end(link.a_interface_id), snap.end(link.b_interface_id)
        if a and b:
            links.append({"a": f"{a[0].name}:{a[1].name}", "b": f"{b[0].name}:{b[1].name}",
                          "confirmed": link.confirmed, "learnt_via": link.learnt_via,
                          "disagreement": link.disagreement})
    return json.dumps({"nodes": nodes, "links": links}, indent=2)


def _dot_id(text: str) -> str:
    """A quoted Graphviz id; a newline becomes Graphviz's line break."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + escaped + '"'


def to_dot(snap: TopologySnapshot) -> str:
    """Graphviz: `topology export --format dot | dot -Tsvg > net.svg`."""
    shapes = {"router": "ellipse", "switch": "box", "vnf": "hexagon"}
    lines = ["graph switchboard {", "  node [fontname=Helvetica];"]
    for d in snap.devices:
        label = f"{d.name}\n{d.role} {d.mgmt_address or ''}"
        lines.append(f"  {_dot_id(d.name)} [shape={shapes.get(d.role, 'note')}, "
                     f"label={_dot_id(label)}];")
    for link in snap.links:
        a, b = snap.end(link.a_interface_id), snap.end(link.b_interface_id)
        if a and b:
            style = "solid" if link.confirmed else "dashed"
            lines.append(f"  {_dot_id(a[0].name)} -- {_dot_id(b[0].name)} "
                         f"[taillabel={_dot_id(a[1].name)}, headlabel={_dot_id(b[1].name)}, "
                         f"style={style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _frr_config(dev: Device, ifaces: list[Interface], addrs: list[IpAddress]) -> str:
    by_iface: dict[int | None, list[IpAddress]] = {}
    for addr in addrs:
        by_iface.setdefault(addr.interface_id, []).append(addr)
    lines = ["! exported by switchboard from the discovered inventory:",
             "! hostname, interface descriptions and addresses only; routing protocol",
             "! configuration is not reconstructed by discovery.",
             "frr defaults traditional", f"hostname {dev.name}", "!"]
    for iface in sorted(ifaces, key=lambda i: i.name):
        if iface.name == "mgmt0" or iface.missing:
            continue
        own = [a for a in by_iface.get(iface.id, []) if ":" not in a.address]
        if iface.name != "lo" and not iface.description and not own:
            continue
        lines.append(f"interface {iface.name}")
        if iface.description:
            lines.append(f" description {iface.description}")
        for addr in own:
            if iface.name == "lo" and IPv4Address(addr.address).is_loopback:
                continue
            lines.append(f" ip address {addr.address}/{addr.prefix_length or 32}")
        lines.append("!")
    return "\n".join(lines) + "\n"


def to_clab(snap: TopologySnapshot, directory: Path, *, name: str = "discovered") -> Path:
    """Write ``<directory>/<name>.clab.yml`` (and router configs beside it); return its path.

    Only confirmed links whose both ends are data interfaces are exported. The mgmt
    subnet is the smallest /24 holding every device's mgmt address when there is one.
    """
    name = _CLAB_NAME.sub("-", name.lower()).strip("-")[:20] or "discovered"
    directory.mkdir(parents=True, exist_ok=True)
    config_dir = directory / name
    nodes: dict[str, Any] = {}
    mgmt = [IPv4Address(d.mgmt_address) for d in snap.devices if d.mgmt_address]
    subnets = {IPv4Network(f"{a}/24", strict=False) for a in mgmt}
    subnet = subnets.pop() if len(subnets) == 1 else None
    node_name = clab_node_names([d.name for d in snap.devices])
    links_out = []
    for link in snap.links:
        a, b = snap.end(link.a_interface_id), snap.end(link.b_interface_id)
        if not (a and b and link.confirmed):
            continue
        if "mgmt0" in (a[1].name, b[1].name):
            continue
        links_out.append({"endpoints": [f"{node_name[a[0].name]}:{a[1].name}",
                                        f"{node_name[b[0].name]}:{b[1].name}"]})
    addrs_by_dev: dict[int, list[IpAddress]] = {}
    for addr in snap.addresses:
        addrs_by_dev.setdefault(addr.device_id, []).append(addr)
    for dev in snap.devices:
        node: dict[str, Any] = {"kind": "linux",
                                "image": _ROLE_IMAGES.get(dev.role, _DEFAULT_IMAGE),
                                "labels": {"switchboard.role": dev.role
                                           if dev.role in ("router", "switch", "vnf")
                                           else "host"}}
        if subnet is not None and dev.mgmt_address:
            node["mgmt-ipv4"] = dev.mgmt_address
        if dev.role == "router":
            config_dir.mkdir(parents=True, exist_ok=True)
            conf = config_dir / f"{node_name[dev.name]}.conf"
            conf.write_text(_frr_config(dev, snap.by_device.get(dev.id or -1, []),
                                        addrs_by_dev.get(dev.id or -1, [])))
            node["startup-config"] = f"{name}/{node_name[dev.name]}.conf"
        nodes[node_name[dev.name]] = node
    doc: dict[str, Any] = {"name": name}
    if subnet is not None:
        doc["mgmt"] = {"network": f"clab-{name}", "ipv4-subnet": str(subnet)}
    doc["topology"] = {"nodes": nodes, "links": links_out}
    path = directory / f"{name}.clab.yml"
    header = ("# exported by `switchboard topology export --format clab` from the discovered\n"
              "# inventory; deployable with `switchboard lab deploy` or containerlab.\n")
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False))
    return path
