"""A read-only snapshot of the inventory for the fault agent: who a trap's source is,
which interface an ifIndex names, which link an interface is on, whose an address is.

Loaded in one go (a few queries) and replaced when stale, so the per-trap path never
touches the database.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from topology.inventory import Device, Interface, IpAddress, Link

__all__ = ["InterfaceRef", "LinkRef", "TopologyView"]


@dataclass(frozen=True, slots=True)
class InterfaceRef:
    """An interface as the fault agent needs it."""

    id: int
    device_id: int
    name: str
    if_index: int | None


@dataclass(frozen=True, slots=True)
class LinkRef:
    """A link and its two ends."""

    id: int
    a: InterfaceRef
    b: InterfaceRef

    def label(self, devices: dict[int, str]) -> str:
        return (f"{devices.get(self.a.device_id, '?')}:{self.a.name}--"
                f"{devices.get(self.b.device_id, '?')}:{self.b.name}")

    def other(self, interface_id: int) -> InterfaceRef:
        return self.b if self.a.id == interface_id else self.a


@dataclass
class TopologyView:
    """The snapshot (see the module docstring)."""

    devices: dict[int, str] = field(default_factory=dict)
    """device id -> name"""
    device_by_name: dict[str, int] = field(default_factory=dict)
    device_by_address: dict[str, int] = field(default_factory=dict)
    interfaces: dict[int, InterfaceRef] = field(default_factory=dict)
    by_if_index: dict[tuple[int, int], InterfaceRef] = field(default_factory=dict)
    by_if_name: dict[tuple[int, str], InterfaceRef] = field(default_factory=dict)
    interface_by_address: dict[str, InterfaceRef] = field(default_factory=dict)
    links: dict[int, LinkRef] = field(default_factory=dict)
    link_of_interface: dict[int, LinkRef] = field(default_factory=dict)
    links_of_device: dict[int, list[LinkRef]] = field(default_factory=dict)
    loaded_mono: float = 0.0

    @classmethod
    def load(cls, engine: Engine) -> TopologyView:
        view = cls(loaded_mono=time.monotonic())
        with Session(engine) as session:
            for dev in session.exec(select(Device)).all():
                assert dev.id is not None
                view.devices[dev.id] = dev.name
                view.device_by_name[dev.name] = dev.id
                if dev.sys_name:
                    view.device_by_name.setdefault(dev.sys_name, dev.id)
                if dev.mgmt_address:
                    view.device_by_address[dev.mgmt_address] = dev.id
            for itf in session.exec(select(Interface).where(
                    col(Interface.missing).is_(False))).all():
                assert itf.id is not None
                ref = InterfaceRef(itf.id, itf.device_id, itf.name, itf.if_index)
                view.interfaces[itf.id] = ref
                view.by_if_name[(itf.device_id, itf.name)] = ref
                if itf.if_index is not None:
                    view.by_if_index[(itf.device_id, itf.if_index)] = ref
            for ip in session.exec(select(IpAddress).where(
                    col(IpAddress.missing).is_(False))).all():
                # the mgmt address wins for a device; any address names its device
                view.device_by_address.setdefault(ip.address, ip.device_id)
                if ip.interface_id is not None and ip.interface_id in view.interfaces:
                    view.interface_by_address[ip.address] = view.interfaces[ip.interface_id]
            for link in session.exec(select(Link).where(col(Link.missing).is_(False))).all():
                a = view.interfaces.get(link.a_interface_id)
                b = view.interfaces.get(link.b_interface_id)
                if link.id is None or a is None or b is None:
                    continue
                lref = LinkRef(link.id, a, b)
                view.links[link.id] = lref
                view.link_of_interface[a.id] = lref
                view.link_of_interface[b.id] = lref
                view.links_of_device.setdefault(a.device_id, []).append(lref)
                if b.device_id != a.device_id:
                    view.links_of_device.setdefault(b.device_id, []).append(lref)
        return view

    def same_topology(self, other: TopologyView) -> bool:
        """Whether correlation would see the same network in ``other`` (devices, their
        addresses, interfaces and links)."""
        return (self.devices == other.devices and self.links == other.links
                and self.interfaces == other.interfaces
                and self.device_by_address == other.device_by_address
                and self.interface_by_address == other.interface_by_address)

    def age_s(self) -> float:
        return time.monotonic() - self.loaded_mono
