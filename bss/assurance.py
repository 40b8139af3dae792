"""Revenue assurance: what the network carries against what is billed.

What the network carries is read from the routers' running configs (the fulfilment
agent's backup: the same CLI driver that pushes reads the config, and keeps it as a
:class:`agents.fulfilment.ConfigBackup`); what is billed is the active products
(:class:`bss.model.Product` with status ``active``), each bound to a device and an
interface.

The rule for "a customer-facing service is configured on DEVICE:IFACE":
    - DEVICE is in the inventory with role ``router`` and answered the SSH CLI (the FRR
      routers; other devices' products are reported as ``unchecked``, with the reason);
    - its running config has an ``interface IFACE`` block with an ``ip address`` (or
      ``ipv6 address``) line and no ``shutdown``;
    - IFACE is not a loopback (``lo``, ``lo*``, ``loopback*``) and does not carry the
      device's management address;
    - IFACE is not an end of an inventory link (``topology.inventory.Link``, learnt by
      LLDP) whose other end is on a device of an infrastructure role (``router`` or
      ``switch``): router-to-router links are the core, a link to a switch is the
      operator's own LAN. Customer equipment runs no LLDP for us, so a port towards a
      customer has no such link.

Then, by (device, interface): configured and billed -> ``matched``; configured and not
billed -> ``leakage`` (revenue lost: a service given away, e.g. configured by hand);
billed and not configured -> ``billed_not_configured`` (a customer charged for a service
the network does not carry). A router whose config could not be read is listed with its
error and its products are ``unchecked``: nothing is concluded from a failed read.

The config reader is injectable (``read_config``: device name -> config text) so tests
and other tools can feed recorded configs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bss.model import Product
from topology.errors import SwitchboardError
from topology.inventory import Device, Interface, Link, utcnow

__all__ = [
    "INFRASTRUCTURE_ROLES",
    "AssuranceReport",
    "BilledService",
    "ConfigReader",
    "ConfiguredInterface",
    "assurance_report",
    "configured_interfaces",
]

ConfigReader = Callable[[str], str]
"""A device's name -> its running config text."""

INFRASTRUCTURE_ROLES = frozenset({"router", "switch"})


@dataclass(frozen=True)
class ConfiguredInterface:
    """An interface block of a running config with its addresses."""

    device: str
    interface: str
    addresses: tuple[str, ...]
    description: str = ""
    shutdown: bool = False


@dataclass(frozen=True)
class BilledService:
    """An active product: what the customer pays for, where."""

    product_id: str
    customer_id: str
    billing_account_id: str
    offering_id: str
    service: str
    device: str
    interface: str
    activated_at: datetime | None


@dataclass
class AssuranceReport:
    """The comparison; :meth:`to_dict` is what the CLI and the API print."""

    generated_at: datetime
    rule: str
    devices: list[dict[str, Any]] = field(default_factory=list)
    leakage: list[ConfiguredInterface] = field(default_factory=list)
    billed_not_configured: list[BilledService] = field(default_factory=list)
    matched: list[tuple[ConfiguredInterface, BilledService]] = field(default_factory=list)
    unchecked: list[tuple[BilledService, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        def conf(c: ConfiguredInterface) -> dict[str, Any]:
            return {"device": c.device, "interface": c.interface,
                    "addresses": list(c.addresses), "description": c.description}

        def billed(b: BilledService) -> dict[str, Any]:
            out = asdict(b)
            out["activated_at"] = b.activated_at.isoformat() if b.activated_at else None
            return out

        return {
            "generated_at": self.generated_at.isoformat(),
            "rule": self.rule,
            "summary": {"leakage": len(self.leakage),
                        "billed_not_configured": len(self.billed_not_configured),
                        "matched": len(self.matched), "unchecked": len(self.unchecked),
                        "devices_read": sum(1 for d in self.devices if d["status"] == "read"),
                        "devices_failed": sum(1 for d in self.devices
                                              if d["status"] == "failed")},
            "devices": self.devices,
            "leakage": [conf(c) for c in self.leakage],
            "billed_not_configured": [billed(b) for b in self.billed_not_configured],
            "matched": [{**conf(c), "product": billed(b)} for c, b in self.matched],
            "unchecked": [{**billed(b), "reason": why} for b, why in self.unchecked],
        }


RULE = ("customer-facing = an interface of an FRR router (role router, SSH CLI) whose "
        "running config gives it an ip/ipv6 address, not shut down, not a loopback, not "
        "the management address, and not an end of an inventory link to a router or a "
        "switch")


def configured_interfaces(device: str, config: str) -> list[ConfiguredInterface]:
    """The ``interface`` blocks of an FRR running config (or frr.conf), in order.

    A block starts at ``interface NAME`` and ends at ``exit``, ``!`` or the next line
    that is not indented.
    """
    out: list[ConfiguredInterface] = []
    name: str | None = None
    addresses: list[str] = []
    description = ""
    shutdown = False

    def close() -> None:
        if name is not None:
            out.append(ConfiguredInterface(device, name, tuple(addresses), description,
                                           shutdown))

    for raw in config.splitlines():
        line = raw.rstrip()
        if line.startswith("interface "):
            close()
            words = line.split()
            name, addresses, description, shutdown = words[1], [], "", False
            continue
        if name is None:
            continue
        if not line.startswith((" ", "\t")) or line.strip() in ("exit", "!"):
            close()
            name = None
            continue
        words = line.split()
        if words[:2] in (["ip", "address"], ["ipv6", "address"]) and len(words) >= 3:
            addresses.append(words[2])
        elif words[0] == "description":
            description = line.strip()[len("description"):].strip()
        elif words == ["shutdown"]:
            shutdown = True
    close()
    return out


def _is_loopback(name: str) -> bool:
    low = name.lower()
    return low == "lo" or low.startswith(("lo:", "loopback")) or (
        low.startswith("lo") and low[2:].isdigit())


def _carries(addresses: Sequence[str], mgmt: str | None) -> bool:
    if not mgmt:
        return False
    for a in addresses:
        try:
            if str(ipaddress.ip_interface(a).ip) == mgmt:
                return True
        except ValueError:
            continue
    return False


def _default_reader(engine: Engine) -> ConfigReader:
    from agents.fulfilment import FulfilmentAgent

    agent = FulfilmentAgent(engine)

    def read(device: str) -> str:
        return agent.backup(device).text

    return read


def _infrastructure_ports(s: Session) -> set[tuple[str, str]]:
    """(device, interface) pairs that are an end of a link to a router or a switch."""
    devices = {d.id: d for d in s.exec(select(Device)).all()}
    ifaces = {i.id: i for i in s.exec(select(Interface)).all()}
    out: set[tuple[str, str]] = set()
    for link in s.exec(select(Link).where(col(Link.missing).is_(False))).all():
        a, b = ifaces.get(link.a_interface_id), ifaces.get(link.b_interface_id)
        if a is None or b is None:
            continue
        da, db = devices.get(a.device_id), devices.get(b.device_id)
        if da is None or db is None:
            continue
        if db.role in INFRASTRUCTURE_ROLES:
            out.add((da.name, a.name))
        if da.role in INFRASTRUCTURE_ROLES:
            out.add((db.name, b.name))
    return out


def _is_frr_router(d: Device) -> bool:
    planes = set(d.planes.split(",")) if d.planes else set()
    return d.role == "router" and "cli" in planes and d.status != "missing"


def assurance_report(engine: Engine, *, read_config: ConfigReader | None = None,
                     devices: Sequence[str] | None = None,
                     now: datetime | None = None) -> AssuranceReport:
    """Read the routers' configs and compare them with the active products."""
    report = AssuranceReport(generated_at=now or utcnow(), rule=RULE)
    with Session(engine) as s:
        routers = [d for d in s.exec(select(Device).order_by(col(Device.name))).all()
                   if _is_frr_router(d)]
        if devices is not None:
            wanted = set(devices)
            unknown = wanted - {d.name for d in routers}
            if unknown:
                raise SwitchboardError(f"not FRR routers in the inventory: "
                                       f"{', '.join(sorted(unknown))}")
            routers = [d for d in routers if d.name in wanted]
        infra = _infrastructure_ports(s)
        products = s.exec(select(Product).where(Product.status == "active").order_by(
            col(Product.device), col(Product.interface), col(Product.id))).all()
        billed = [BilledService(p.id, p.customer_id, p.billing_account_id, p.offering_id,
                                p.service, p.device, p.interface, p.activated_at)
                  for p in products]
    reader = read_config or _default_reader(engine)
    configured: dict[tuple[str, str], ConfiguredInterface] = {}
    read_ok: set[str] = set()
    failed: dict[str, str] = {}
    for d in routers:
        try:
            text = reader(d.name)
        except SwitchboardError as exc:
            failed[d.name] = str(exc)
            report.devices.append({"device": d.name, "status": "failed", "error": str(exc)})
            continue
        read_ok.add(d.name)
        found = 0
        for c in configured_interfaces(d.name, text):
            if (not c.addresses or c.shutdown or _is_loopback(c.interface)
                    or _carries(c.addresses, d.mgmt_address)
                    or (d.name, c.interface) in infra):
                continue
            configured[(d.name, c.interface)] = c
            found += 1
        report.devices.append({"device": d.name, "status": "read", "customer_facing": found})
    billed_at = {}
    for b in billed:
        key = (b.device, b.interface)
        if b.device in failed:
            report.unchecked.append((b, f"the config of {b.device} could not be read: "
                                        f"{failed[b.device]}"))
        elif b.device not in read_ok:
            report.unchecked.append((b, f"{b.device} is not an FRR router the report reads"))
        elif key in configured:
            report.matched.append((configured[key], b))
            billed_at[key] = b
        else:
            report.billed_not_configured.append(b)
    report.leakage = [c for key, c in sorted(configured.items()) if key not in billed_at]
    return report
