"""The inventory as SQLModel tables, one family per entity (after full-stack-fastapi-template).

Each entity has a ``...Base`` (the shared fields), the table class, a ``...Public`` read
model for the REST API and the CLI's JSON, and a list envelope (``DevicesPublic`` ...).
There are no ``Create``/``Update`` models: inventory rows are written by
:mod:`topology.reconcile` from what discovery saw, not by API clients.

Rows are never deleted: what disappears is flagged (``missing`` or status ``"missing"``)
and every difference is a :class:`Change` row. Datetimes are timezone-aware UTC, also on
SQLite (which stores them naive; :class:`UtcDateTime` re-attaches UTC when reading).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, Session, SQLModel, col, select

__all__ = [
    "DEVICE_STATUS_MISSING",
    "Change",
    "ChangePublic",
    "ChangesPublic",
    "Device",
    "DevicePublic",
    "DevicesPublic",
    "DiscoveryRun",
    "DiscoveryRunDetail",
    "DiscoveryRunPublic",
    "HardwareComponent",
    "HardwareComponentPublic",
    "Interface",
    "InterfacePublic",
    "InterfacesPublic",
    "IpAddress",
    "IpAddressPublic",
    "Link",
    "LinkPublic",
    "LinksPublic",
    "UtcDateTime",
    "link_publics",
    "record_run_detail",
    "utcnow",
]

DEVICE_STATUS_MISSING = "missing"
"""Device.status when an in-scope run no longer saw the device (the other values are
:class:`topology.errors.StatusCode` values)."""


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A datetime column that refuses naive values and always reads back aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: use timezone-aware UTC")
        value = value.astimezone(UTC)
        # SQLite has no time zone type: store naive UTC, re-attached on read
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stamp = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


# --------------------------------------------------------------------------- discovery run


class DiscoveryRunBase(SQLModel):
    started_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    targets: str = Field(default="", description="seeds as given, comma-separated: CIDRs, "
                         "addresses, lab names")
    profiles: str = Field(default="", description="credential profile names tried, "
                          "comma-separated")
    status: str = Field(default="running", description="running | ok | partial | failed")
    # set by reconcile()
    devices_new: int = 0
    devices_changed: int = 0
    devices_unchanged: int = 0
    devices_missing: int = 0
    devices_failed: int = 0
    changes_count: int = 0
    # set by build_links()
    links_count: int = 0
    neighbors_unresolved: int = 0
    # set by the discovery agent (FailedTarget records)
    targets_failed: int = 0


class DiscoveryRun(DiscoveryRunBase, table=True):
    """One discovery run: its seeds, its outcome counts; changes point at it."""

    __tablename__ = "discovery_run"

    id: int | None = Field(default=None, primary_key=True)


class DiscoveryRunDetail(SQLModel, table=True):
    """What a run found, beyond its counts (names found, new, changed, missing, the
    failed targets with why), or why it failed: kept with the run, whichever process
    ran it (a table of its own, so databases made before it need no migration)."""

    __tablename__ = "discovery_run_detail"

    run_id: int = Field(foreign_key="discovery_run.id", primary_key=True)
    outcome_json: str = ""
    error: str | None = None


def record_run_detail(session: Session, run_id: int, *,
                      outcome: dict[str, Any] | None = None,
                      error: str | None = None) -> None:
    """Keep (or replace) run ``run_id``'s detail; the caller commits."""
    row = session.get(DiscoveryRunDetail, run_id) or DiscoveryRunDetail(run_id=run_id)
    row.outcome_json = json.dumps(outcome, default=str) if outcome is not None else ""
    row.error = error
    session.add(row)


class DiscoveryRunPublic(DiscoveryRunBase):
    """A discovery run as the API shows it."""

    id: int


# --------------------------------------------------------------------------- device


class DeviceBase(SQLModel):
    name: str = Field(index=True, unique=True)
    sys_name: str | None = Field(default=None, index=True)
    sys_object_id: str | None = None
    sys_descr: str | None = None
    vendor: str | None = None
    model: str | None = None
    os_name: str | None = None
    os_version: str | None = None
    serial: str | None = Field(default=None, index=True)
    role: str = "unknown"
    role_reason: str = ""
    mgmt_address: str | None = Field(default=None, index=True)
    planes: str = Field(default="", description='management planes that answered: "snmp,cli"')
    credential_profile: str | None = None
    status: str = Field(default="ok", description="a StatusCode value, or 'missing'")
    status_detail: str | None = None
    identity_rule: str | None = Field(
        default=None, description="how observations were matched or merged into this device")
    engine_id: str | None = Field(default=None, index=True)
    chassis_id: str | None = Field(default=None, index=True)
    first_seen: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_seen: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_run_id: int | None = Field(default=None, foreign_key="discovery_run.id")


class Device(DeviceBase, table=True):
    """A network element, one row however many addresses it answers on."""

    __tablename__ = "device"

    id: int | None = Field(default=None, primary_key=True)


class DevicePublic(DeviceBase):
    """A device as the API shows it."""

    id: int


class DevicesPublic(SQLModel):
    """A page of devices."""

    data: list[DevicePublic]
    count: int


# --------------------------------------------------------------------------- interface


class InterfaceBase(SQLModel):
    device_id: int = Field(foreign_key="device.id", index=True)
    if_index: int | None = None
    name: str
    description: str | None = None
    alias: str | None = None
    if_type: int | None = Field(default=None, description="IANAifType number")
    speed_mbps: int | None = None
    mac: str | None = None
    mtu: int | None = None
    admin_status: str | None = None
    oper_status: str | None = None
    missing: bool = False
    first_seen: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_seen: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Interface(InterfaceBase, table=True):
    """A device's interface, keyed by its name on that device."""

    __tablename__ = "interface"
    __table_args__ = (UniqueConstraint("device_id", "name", name="uq_interface_device_name"),)

    id: int | None = Field(default=None, primary_key=True)


class InterfacePublic(InterfaceBase):
    """An interface as the API shows it."""

    id: int


class InterfacesPublic(SQLModel):
    """A page of interfaces."""

    data: list[InterfacePublic]
    count: int


# --------------------------------------------------------------------------- address


class IpAddressBase(SQLModel):
    device_id: int = Field(foreign_key="device.id", index=True)
    interface_id: int | None = Field(default=None, foreign_key="interface.id")
    address: str = Field(index=True)
    prefix_length: int | None = None
    missing: bool = False
    first_seen: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_seen: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class IpAddress(IpAddressBase, table=True):
    """An IP address of a device (IP-MIB), on one of its interfaces when known."""

    __tablename__ = "ip_address"
    __table_args__ = (UniqueConstraint("device_id", "address", name="uq_ip_address_device"),)

    id: int | None = Field(default=None, primary_key=True)


class IpAddressPublic(IpAddressBase):
    """An address as the API shows it."""

    id: int


# --------------------------------------------------------------------------- hardware


class HardwareComponentBase(SQLModel):
    device_id: int = Field(foreign_key="device.id", index=True)
    ent_index: int
    name: str | None = None
    description: str | None = None
    hw_class: str | None = None
    serial: str | None = None
    model: str | None = None
    firmware_rev: str | None = None
    software_rev: str | None = None
    hardware_rev: str | None = None
    parent_index: int | None = None
    missing: bool = False
    first_seen: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_seen: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class HardwareComponent(HardwareComponentBase, table=True):
    """One ENTITY-MIB physical entity of a device, keyed by its entPhysicalIndex."""

    __tablename__ = "hardware_component"
    __table_args__ = (
        UniqueConstraint("device_id", "ent_index", name="uq_hardware_device_index"),)

    id: int | None = Field(default=None, primary_key=True)


class HardwareComponentPublic(HardwareComponentBase):
    """A hardware component as the API shows it."""

    id: int


# --------------------------------------------------------------------------- link


class LinkBase(SQLModel):
    learnt_via: str = "lldp"
    confirmed: bool = Field(default=False, description="both ends report each other")
    disagreement: str | None = Field(
        default=None, description="why the two ends' reports do not agree, when they do not")
    missing: bool = False
    first_seen: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_seen: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Link(LinkBase, table=True):
    """A link between two interfaces, stored once with ``a_interface_id < b_interface_id``."""

    __tablename__ = "link"
    __table_args__ = (
        UniqueConstraint("a_interface_id", "b_interface_id", name="uq_link_ends"),
        CheckConstraint("a_interface_id < b_interface_id", name="ck_link_order"),
    )

    id: int | None = Field(default=None, primary_key=True)
    a_interface_id: int = Field(foreign_key="interface.id", index=True)
    b_interface_id: int = Field(foreign_key="interface.id", index=True)


class LinkPublic(LinkBase):
    """A link as the API shows it: both ends as ``"device:interface"``."""

    id: int
    a_interface_id: int
    b_interface_id: int
    a: str
    b: str


class LinksPublic(SQLModel):
    """A page of links."""

    data: list[LinkPublic]
    count: int


def link_publics(session: Session, links: Sequence[Link]) -> list[LinkPublic]:
    """Public models for ``links``, their ends named in one query."""
    ids = {i for link in links for i in (link.a_interface_id, link.b_interface_id)}
    names: dict[int, str] = {}
    if ids:
        rows = session.exec(
            select(Interface.id, Device.name, Interface.name)
            .join(Device, col(Device.id) == col(Interface.device_id))
            .where(col(Interface.id).in_(ids))
        ).all()
        names = {iface_id: f"{dev}:{iface}" for iface_id, dev, iface in rows if iface_id}
    out = []
    for link in links:
        assert link.id is not None, "link not flushed"
        out.append(LinkPublic(
            id=link.id, a_interface_id=link.a_interface_id, b_interface_id=link.b_interface_id,
            a=names.get(link.a_interface_id, f"?:{link.a_interface_id}"),
            b=names.get(link.b_interface_id, f"?:{link.b_interface_id}"),
            learnt_via=link.learnt_via, confirmed=link.confirmed,
            disagreement=link.disagreement, missing=link.missing,
            first_seen=link.first_seen, last_seen=link.last_seen,
        ))
    return out


# --------------------------------------------------------------------------- change


class ChangeBase(SQLModel):
    run_id: int | None = Field(default=None, foreign_key="discovery_run.id", index=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, index=True)
    device_id: int | None = Field(default=None, foreign_key="device.id", index=True)
    entity: str = Field(description="device | interface | address | hardware | link")
    entity_key: str = Field(description='e.g. "r1", "r1:eth1", "r1:eth1--r2:eth1"')
    attribute: str = Field(description='the attribute, or "presence" for added/missing')
    old_value: str | None = Field(default=None, description='for presence: "absent", '
                                  '"present" or "missing"')
    new_value: str | None = None


class Change(ChangeBase, table=True):
    """One changed attribute of one inventory entity, seen by one run."""

    __tablename__ = "inventory_change"

    id: int | None = Field(default=None, primary_key=True)


class ChangePublic(ChangeBase):
    """A change as the API shows it."""

    id: int


class ChangesPublic(SQLModel):
    """A page of changes."""

    data: list[ChangePublic]
    count: int
