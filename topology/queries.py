"""Reading the inventory: one place for the CLI and the REST API, with filters and paging."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from sqlalchemy import func
from sqlmodel import Session, col, select

from topology.errors import SwitchboardError
from topology.inventory import (
    Change,
    ChangePublic,
    Device,
    DevicePublic,
    HardwareComponent,
    HardwareComponentPublic,
    Interface,
    InterfacePublic,
    IpAddress,
    IpAddressPublic,
    Link,
    LinkPublic,
    link_publics,
)

__all__ = ["DeviceDetail", "NotFound", "Page", "device_detail", "devices_using_profile",
           "list_changes", "list_devices", "list_interfaces", "list_links", "parse_since"]

T = TypeVar("T")
MAX_LIMIT = 1000


class NotFound(SwitchboardError):
    """The named inventory entity does not exist."""


@dataclass
class Page(Generic[T]):
    """One page of results and the total number matching the filters."""

    items: list[T]
    total: int
    offset: int
    limit: int


def _limit(limit: int) -> int:
    return max(1, min(limit, MAX_LIMIT))


def list_devices(session: Session, *, role: str | None = None, status: str | None = None,
                 offset: int = 0, limit: int = 100) -> Page[DevicePublic]:
    """Devices by name, filtered by role and status."""
    query = select(Device)
    if role:
        query = query.where(Device.role == role)
    if status:
        query = query.where(Device.status == status)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Device.name)).offset(offset)
                        .limit(_limit(limit))).all()
    return Page([DevicePublic.model_validate(r) for r in rows], total, offset, _limit(limit))


def devices_using_profile(session: Session, profile: str) -> list[str]:
    """The devices whose working credential profile is ``profile``, by name."""
    query = select(Device.name).where(Device.credential_profile == profile)
    return sorted(session.exec(query).all())


def _device(session: Session, name: str) -> Device:
    dev = session.exec(select(Device).where(Device.name == name)).first()
    if dev is None:
        raise NotFound(f"no device named {name!r} in the inventory")
    return dev


def list_interfaces(session: Session, *, device: str | None = None,
                    oper_status: str | None = None, offset: int = 0,
                    limit: int = 100) -> Page[tuple[str, InterfacePublic]]:
    """Interfaces with their device's name."""
    query = select(Interface, Device.name).join(Device, col(Device.id) == col(Interface.device_id))
    if device:
        query = query.where(Device.name == device)
    if oper_status:
        query = query.where(Interface.oper_status == oper_status)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Device.name), col(Interface.if_index),
                                       col(Interface.name))
                        .offset(offset).limit(_limit(limit))).all()
    return Page([(dev, InterfacePublic.model_validate(i)) for i, dev in rows], total, offset,
                _limit(limit))


def list_links(session: Session, *, device: str | None = None, confirmed: bool | None = None,
               offset: int = 0, limit: int = 100) -> Page[LinkPublic]:
    """Links, optionally only those touching ``device`` or only (un)confirmed ones."""
    query = select(Link)
    if confirmed is not None:
        query = query.where(Link.confirmed == confirmed)
    if device:
        ids = select(Interface.id).join(Device, col(Device.id) == col(Interface.device_id)) \
            .where(Device.name == device)
        query = query.where(col(Link.a_interface_id).in_(ids) | col(Link.b_interface_id).in_(ids))
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Link.id)).offset(offset).limit(_limit(limit))).all()
    return Page(link_publics(session, rows), total, offset, _limit(limit))


_SINCE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """'90s', '15m', '1h', '2d', '1w' ago, or an ISO-8601 time (UTC if no zone)."""
    now = now or datetime.now(UTC)
    match = _SINCE.match(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise SwitchboardError(f"--since {text!r}: use 15m, 1h, 2d or an ISO time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def list_changes(session: Session, *, since: datetime | None = None, device: str | None = None,
                 entity: str | None = None, run_id: int | None = None, offset: int = 0,
                 limit: int = 100) -> Page[ChangePublic]:
    """Change records, oldest first."""
    query = select(Change)
    if since is not None:
        query = query.where(Change.at >= since)
    if device:
        query = query.where(Change.device_id == _device(session, device).id)
    if entity:
        query = query.where(Change.entity == entity)
    if run_id is not None:
        query = query.where(Change.run_id == run_id)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Change.id)).offset(offset).limit(_limit(limit))).all()
    return Page([ChangePublic.model_validate(r) for r in rows], total, offset, _limit(limit))


@dataclass
class DeviceDetail:
    """A device page: the device, its interfaces, addresses, hardware and links."""

    device: DevicePublic
    interfaces: list[InterfacePublic]
    addresses: list[IpAddressPublic]
    hardware: list[HardwareComponentPublic]
    links: list[LinkPublic]


def device_detail(session: Session, name: str) -> DeviceDetail:
    """Everything the inventory holds on one device (NotFound when it has none)."""
    dev = _device(session, name)
    ifaces: Sequence[Interface] = session.exec(
        select(Interface).where(Interface.device_id == dev.id)
        .order_by(col(Interface.if_index), col(Interface.name))).all()
    addrs = session.exec(select(IpAddress).where(IpAddress.device_id == dev.id)
                         .order_by(col(IpAddress.address))).all()
    hw = session.exec(select(HardwareComponent).where(HardwareComponent.device_id == dev.id)
                      .order_by(col(HardwareComponent.ent_index))).all()
    return DeviceDetail(DevicePublic.model_validate(dev),
                        [InterfacePublic.model_validate(i) for i in ifaces],
                        [IpAddressPublic.model_validate(a) for a in addrs],
                        [HardwareComponentPublic.model_validate(h) for h in hw],
                        list_links(session, device=name, limit=MAX_LIMIT).items)
