"""Turn what one discovery run saw into inventory rows and change history, then links.

:func:`reconcile` matches each :class:`DeviceObservation` to a stored :class:`Device`
(engine id, chassis id, serial, sysName, then any address it answered on, then its name),
adds what is new, writes one :class:`Change` per changed attribute, and flags what
disappeared. :func:`build_links` turns the run's LLDP neighbours into :class:`Link` rows.
Nothing is ever deleted. Both functions flush but never commit: the caller owns the
transaction (see :func:`topology.db.session_scope`).

Values compared and stored in Change rows are strings (``None`` stays ``None``, booleans
are ``"true"``/``"false"``). Presence rows use ``attribute="presence"`` and the values
``"absent"``, ``"present"`` and ``"missing"``.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, SQLModel, col, or_, select

from topology.errors import StatusCode
from topology.inventory import (
    DEVICE_STATUS_MISSING,
    Change,
    Device,
    DiscoveryRun,
    HardwareComponent,
    Interface,
    IpAddress,
    Link,
    utcnow,
)
from topology.observations import DeviceObservation, NeighborObservation

__all__ = ["ABSENT", "MISSING", "PRESENT", "LinkResult", "ReconcileSummary", "build_links",
           "reconcile"]

log = logging.getLogger(__name__)

ABSENT, PRESENT, MISSING = "absent", "present", "missing"

_SEEN = frozenset({StatusCode.OK, StatusCode.PARTIAL})
# identity values too common to tell devices apart
_JUNK_SERIALS = frozenset({"", "0", "none", "n/a", "na", "unknown", "not specified",
                           "default string", "to be filled by o.e.m.", "0123456789"})
_JUNK_SYS_NAMES = frozenset({"", "localhost", "localhost.localdomain", "router", "switch"})
_MAC_COLON = re.compile(r"^[0-9a-f]{1,2}([:-][0-9a-f]{1,2}){5}$")
_MAC_DOTTED = re.compile(r"^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$")
_MAC_BARE = re.compile(r"^(0x)?[0-9a-f]{12}$")

Network = IPv4Network | IPv6Network
_T = TypeVar("_T")
_M = TypeVar("_M", bound=SQLModel)
_Row = Interface | IpAddress | HardwareComponent


@dataclass
class ReconcileSummary:
    """What :func:`reconcile` did; device lists hold inventory names, in observation order.

    ``failed`` counts observations with a failure status (their known devices get a status
    change, unknown ones are not created). ``device_ids`` maps each observation's name to
    its device's id, for :func:`build_links`.
    """

    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    failed: int = 0
    changes: list[Change] = field(default_factory=list)
    device_ids: dict[str, int] = field(default_factory=dict)


class LinkResult(NamedTuple):
    """What :func:`build_links` returns: ``links, unresolved = build_links(...)``.

    ``links`` are the links seen in this run; links that went missing and the Change rows
    are in the database (``Link.missing``, ``Change.entity == "link"`` for the run).
    """

    links: list[Link]
    unresolved: int


# --------------------------------------------------------------------------- normalising


@lru_cache(maxsize=1 << 16)
def _norm_mac(value: str | None) -> str | None:
    """``aa:bb:cc:dd:ee:ff`` when ``value`` spells a MAC address in a common way."""
    if not value:
        return None
    v = value.strip().lower()
    if _MAC_COLON.match(v):
        return ":".join(part.zfill(2) for part in re.split(r"[:-]", v))
    if _MAC_DOTTED.match(v) or _MAC_BARE.match(v):
        digits = v.removeprefix("0x").replace(".", "")
        return ":".join(digits[i:i + 2] for i in range(0, 12, 2))
    return None


def _norm_id(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    return _norm_mac(value) or value.strip().lower()


def _norm_serial(value: str | None) -> str | None:
    v = (value or "").strip().lower()
    return None if v in _JUNK_SERIALS else v


def _norm_sys_name(value: str | None) -> str | None:
    v = (value or "").strip().lower()
    return None if v in _JUNK_SYS_NAMES else v


@lru_cache(maxsize=1 << 16)
def _split_address(value: str) -> tuple[str, int | None]:
    """``("10.0.0.1", 24)`` from ``"10.0.0.1/24"``; unparsable text comes back stripped."""
    text = value.strip()
    try:
        iface = ipaddress.ip_interface(text.split("%", 1)[0])
    except ValueError:
        return text, None
    return iface.ip.compressed, (iface.network.prefixlen if "/" in text else None)


@lru_cache(maxsize=1 << 16)
def _addr(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return ipaddress.ip_address(value.strip().split("/", 1)[0].split("%", 1)[0]).compressed
    except ValueError:
        return None


@lru_cache(maxsize=1 << 16)
def _identity_addr(value: str | None) -> str | None:
    """The address if it can identify one device (not loopback, link-local, multicast)."""
    key = _addr(value)
    if key is None:
        return None
    ip = ipaddress.ip_address(key)
    if ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast:
        return None
    return key


def _fmt(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _first_by(items: Iterable[_T], key: Callable[[_T], Hashable], what: str) -> list[_T]:
    seen: set[Hashable] = set()
    out = []
    for item in items:
        k = key(item)
        if k in seen:
            log.warning("duplicate %s %r in one observation: first one kept", what, k)
            continue
        seen.add(k)
        out.append(item)
    return out


def _scope_from_targets(targets: str) -> list[Network]:
    nets: list[Network] = []
    for target in re.split(r"[,\s]+", targets.strip()):
        if not target:
            continue
        try:
            nets.append(ipaddress.ip_network(target.strip(), strict=False))
        except ValueError:
            continue  # a host name or a lab name: not an address range
    return nets


def _in_scope(address: str | None, scope: Sequence[Network]) -> bool:
    key = _addr(address)
    if key is None:
        return False
    ip = ipaddress.ip_address(key)
    return any(ip in net for net in scope)


def _unique(items: Sequence[_T] | None) -> _T | None:
    return items[0] if items and len(items) == 1 else None


# --------------------------------------------------------------------------- change log


class _Log:
    """Collects the Change rows of one pass (same run, same time); written in one INSERT."""

    def __init__(self, session: Session, run_id: int, at: datetime) -> None:
        self.session = session
        self.run_id = run_id
        self.at = at
        self.rows: list[dict[str, Any]] = []

    def add(self, device_id: int | None, entity: str, key: str, attribute: str,
            old: object, new: object) -> None:
        self.rows.append({"run_id": self.run_id, "at": self.at, "device_id": device_id,
                          "entity": entity, "entity_key": key, "attribute": attribute,
                          "old_value": _fmt(old), "new_value": _fmt(new)})

    def diff(self, row: Any, values: Mapping[str, object], *, keep_unknown: bool,
             device_id: int | None, entity: str, key: str) -> None:
        """Set ``values`` on ``row``, logging each difference; ``keep_unknown`` skips Nones."""
        for attr, new in values.items():
            if keep_unknown and new is None:
                continue
            old = getattr(row, attr)
            if old != new:
                self.add(device_id, entity, key, attr, old, new)
                setattr(row, attr, new)

    def write(self) -> list[Change]:
        """Insert the collected rows; the Change objects come back in recording order."""
        return _insert(self.session, Change, self.rows, returning=True)


def _insert(session: Session, entity: type[_M], rows: list[dict[str, Any]], *,
            returning: bool = False) -> list[_M]:
    """Bulk INSERT (batched, no per-object SQLModel construction); ``returning``: the rows
    as objects, in id order (= the order of ``rows``)."""
    if not rows:
        return []
    if not returning:
        session.execute(insert(entity), rows)
        return []
    out = list(session.scalars(insert(entity).returning(entity), rows))
    out.sort(key=lambda row: row.id)  # type: ignore[attr-defined]  # every inventory table has id
    return out


def _touch(session: Session, entity: type[_M], rows: Sequence[_M], now: datetime) -> None:
    """Set ``last_seen`` on ``rows`` in one UPDATE (and in memory, without dirtying them)."""
    if not rows:
        return
    ids = [row.id for row in rows]  # type: ignore[attr-defined]  # every inventory table has id
    for row in rows:
        set_committed_value(row, "last_seen", now)
    id_col: Any = entity.id  # type: ignore[attr-defined]  # every inventory table has id
    session.execute(update(entity).where(id_col.in_(ids)).values(last_seen=now),
                    execution_options={"synchronize_session": False})


# --------------------------------------------------------------------------- identity


class _DeviceIndex:
    """Every stored device by each identity key, loaded in two queries."""

    def __init__(self, devices: Sequence[Device], addresses: Iterable[tuple[int, str]]) -> None:
        self.devices: dict[int, Device] = {}
        self.by_engine: dict[str, list[Device]] = defaultdict(list)
        self.by_chassis: dict[str, list[Device]] = defaultdict(list)
        self.by_serial: dict[str, list[Device]] = defaultdict(list)
        self.by_sys_name: dict[str, list[Device]] = defaultdict(list)
        self.by_short_name: dict[str, list[Device]] = defaultdict(list)
        self.by_name: dict[str, Device] = {}
        self.by_address: dict[str, set[int]] = defaultdict(set)
        for device in devices:
            self.add(device)
        for device_id, address in addresses:
            key = _identity_addr(address)
            if key is not None and device_id in self.devices:
                self.by_address[key].add(device_id)

    @classmethod
    def load(cls, session: Session) -> _DeviceIndex:
        devices = session.exec(select(Device).order_by(col(Device.id))).all()
        addresses = session.exec(
            select(IpAddress.device_id, IpAddress.address)
            .where(col(IpAddress.missing).is_(False))
        ).all()
        return cls(devices, addresses)

    def add(self, device: Device) -> None:
        assert device.id is not None, "device not flushed"
        self.devices[device.id] = device
        self.by_name[device.name] = device
        for table, key in ((self.by_engine, _norm_id(device.engine_id)),
                           (self.by_chassis, _norm_id(device.chassis_id)),
                           (self.by_serial, _norm_serial(device.serial)),
                           (self.by_sys_name, _norm_sys_name(device.sys_name))):
            if key is not None:
                table[key].append(device)
        sys_name = _norm_sys_name(device.sys_name)
        if sys_name is not None:
            self.by_short_name[sys_name.split(".", 1)[0]].append(device)
        mgmt = _identity_addr(device.mgmt_address)
        if mgmt is not None:
            self.by_address[mgmt].add(device.id)

    def _by_address(self, raw: str | None, claimed: set[int]) -> Device | None:
        key = _identity_addr(raw)
        if key is None:
            return None
        ids = sorted(i for i in self.by_address.get(key, ()) if i not in claimed)
        if len(ids) > 1:  # shared address: only the device managed through it qualifies
            ids = [i for i in ids if _addr(self.devices[i].mgmt_address) == key]
        return self.devices[ids[0]] if len(ids) == 1 else None

    def match(self, obs: DeviceObservation, claimed: set[int]) -> tuple[Device, str] | None:
        """The stored device ``obs`` describes and the rule that said so, skipping ``claimed``."""
        keyed = (("engine-id", self.by_engine, _norm_id(obs.engine_id)),
                 ("chassis-id", self.by_chassis, _norm_id(obs.chassis_id)),
                 ("serial", self.by_serial, _norm_serial(obs.serial)),
                 ("sys-name", self.by_sys_name, _norm_sys_name(obs.sys_name)))
        for rule, table, key in keyed:
            if key is None:
                continue
            for device in table.get(key, ()):
                if device.id not in claimed:
                    return device, rule
        for raw in (obs.mgmt_address, *obs.addresses_answered):
            by_address = self._by_address(raw, claimed)
            if by_address is not None:
                return by_address, f"address {_addr(raw)}"
        named = self.by_name.get(obs.name)
        if named is not None and named.id not in claimed:
            return named, "name"
        return None

    def remote(self, neighbor: NeighborObservation) -> Device | None:
        """The device a neighbour report names: chassis id, sysName, then address."""
        chassis = _norm_id(neighbor.remote_chassis_id)
        if chassis is not None and (hit := _unique(self.by_chassis.get(chassis))):
            return hit
        sys_name = _norm_sys_name(neighbor.remote_sys_name)
        if sys_name is not None:
            for candidates in (self.by_sys_name.get(sys_name),
                               self.by_short_name.get(sys_name.split(".", 1)[0])):
                if (hit := _unique(candidates)) is not None:
                    return hit
            if (named := self.by_name.get(neighbor.remote_sys_name or "")) is not None:
                return named
        return self._by_address(neighbor.remote_mgmt_address, set())


# --------------------------------------------------------------------------- reconcile


def _device_facts(obs: DeviceObservation) -> dict[str, object]:
    return {
        "sys_name": obs.sys_name, "sys_object_id": obs.sys_object_id,
        "sys_descr": obs.sys_descr, "vendor": obs.vendor, "model": obs.model,
        "os_name": obs.os_name, "os_version": obs.os_version, "serial": obs.serial,
        "engine_id": obs.engine_id, "chassis_id": obs.chassis_id, "role": obs.role,
        "planes": ",".join(obs.planes), "credential_profile": obs.credential_profile,
        "mgmt_address": obs.mgmt_address, "status": obs.status.value,
    }


def _sticky_mgmt(stored: str | None, obs: DeviceObservation) -> str:
    """Keep the stored management address while the device still has it (no flapping)."""
    key = _addr(stored)
    if stored is None or key is None:
        return obs.mgmt_address
    known = {_addr(a) for a in (obs.mgmt_address, *obs.addresses_answered)}
    known |= {_addr(a.address) for a in obs.addresses}
    return stored if key in known else obs.mgmt_address


class _Reconciler:
    def __init__(self, session: Session, run: DiscoveryRun, now: datetime) -> None:
        assert run.id is not None
        self.session = session
        self.run_id = run.id
        self.now = now
        self.log = _Log(session, run.id, now)
        self.index = _DeviceIndex.load(session)

    def _unique_name(self, obs: DeviceObservation) -> str:
        name = obs.name
        n = 1
        while name in self.index.by_name:
            n += 1
            name = f"{obs.name}@{obs.mgmt_address}" + (f"#{n}" if n > 2 else "")
        if name != obs.name:
            log.warning("device name %r taken by another device: stored as %r", obs.name, name)
        return name

    def create(self, obs: DeviceObservation) -> Device:
        device = Device(name=self._unique_name(obs), role_reason=obs.role_reason,
                        status_detail=obs.status_detail, identity_rule=obs.identity_rule,
                        first_seen=self.now, last_seen=self.now, last_run_id=self.run_id)
        for attr, value in _device_facts(obs).items():
            setattr(device, attr, value)
        self.session.add(device)
        self.session.flush()
        self.index.add(device)
        assert device.id is not None
        self.log.add(device.id, "device", device.name, "presence", ABSENT, PRESENT)
        return device

    def update(self, device: Device, obs: DeviceObservation, rule: str) -> None:
        partial = obs.status is StatusCode.PARTIAL
        facts = _device_facts(obs)
        facts["mgmt_address"] = _sticky_mgmt(device.mgmt_address, obs)
        if partial:  # a partial read says nothing about what it could not read
            facts = {k: v for k, v in facts.items()
                     if v not in (None, "") and not (k == "role" and v == "unknown")}
        if device.status == DEVICE_STATUS_MISSING:
            self.log.add(device.id, "device", device.name, "presence", MISSING, PRESENT)
            device.status = obs.status.value
        self.log.diff(device, facts, keep_unknown=False, device_id=device.id, entity="device",
                      key=device.name)
        if device.role == obs.role:
            device.role_reason = obs.role_reason
        device.status_detail = obs.status_detail
        device.identity_rule = rule + (f"; {obs.identity_rule}" if obs.identity_rule else "")
        device.last_seen = self.now
        device.last_run_id = self.run_id

    def failure(self, device: Device, obs: DeviceObservation) -> None:
        """A known device that answered nothing useful: only its status changes."""
        if device.status != obs.status.value:
            self.log.add(device.id, "device", device.name, "status", device.status,
                         obs.status.value)
            device.status = obs.status.value
        device.status_detail = obs.status_detail
        device.last_run_id = self.run_id

    def children(self, device: Device, obs: DeviceObservation, *, fresh: bool) -> None:
        """Interfaces, addresses and hardware of an observed device (``fresh``: just added)."""
        assert device.id is not None
        complete = obs.status is StatusCode.OK
        interfaces = self._interfaces(device, obs, fresh=fresh, complete=complete)
        self._addresses(device, obs, interfaces, fresh=fresh, complete=complete)
        self._hardware(device, obs, fresh=fresh, complete=complete)

    def _seen_again(self, rows: Sequence[_Row], device_id: int, entity: str,
                    key: Callable[[Any], str]) -> None:
        for row in rows:
            if row.missing:
                row.missing = False
                self.log.add(device_id, entity, key(row), "presence", MISSING, PRESENT)

    def _gone(self, rows: Iterable[_Row], seen: set[int], device_id: int, entity: str,
              key: Callable[[Any], str]) -> None:
        for row in rows:
            if row.id not in seen and not row.missing:
                row.missing = True
                self.log.add(device_id, entity, key(row), "presence", PRESENT, MISSING)

    def _interfaces(self, device: Device, obs: DeviceObservation, *, fresh: bool,
                    complete: bool) -> dict[str, int]:
        """Reconcile interfaces; returns every interface id of the device by name."""
        assert device.id is not None
        rows: Sequence[Interface] = () if fresh else self.session.exec(
            select(Interface).where(Interface.device_id == device.id)
            .order_by(col(Interface.missing), col(Interface.id))).all()
        by_name = {row.name: row for row in rows}
        by_index: dict[int, Interface] = {}
        for stored in rows:
            if stored.if_index is not None:
                by_index.setdefault(stored.if_index, stored)
        observed = _first_by(obs.interfaces, lambda i: i.name, "interface")
        observed_names = {i.name for i in observed}
        seen: list[Interface] = []
        seen_ids: set[int] = set()
        new: list[dict[str, Any]] = []
        for io in observed:
            key = f"{device.name}:{io.name}"
            values: dict[str, object] = {
                "if_index": io.if_index, "description": io.description, "alias": io.alias,
                "if_type": io.if_type, "speed_mbps": io.speed_mbps,
                "mac": _norm_mac(io.mac) or io.mac, "mtu": io.mtu,
                "admin_status": io.admin_status, "oper_status": io.oper_status,
            }
            row = by_name.get(io.name)
            if row is None and io.if_index is not None:  # renamed, same ifIndex
                cand = by_index.get(io.if_index)
                if (cand is not None and cand.id not in seen_ids
                        and cand.name not in observed_names):
                    row = cand
                    self.log.add(device.id, "interface", key, "name", cand.name, io.name)
                    del by_name[cand.name]
                    cand.name = io.name
                    by_name[io.name] = cand
            if row is None:
                new.append({"device_id": device.id, "name": io.name, "missing": False,
                            "first_seen": self.now, "last_seen": self.now, **values})
                self.log.add(device.id, "interface", key, "presence", ABSENT, PRESENT)
                continue
            assert row.id is not None
            seen.append(row)
            seen_ids.add(row.id)
            self.log.diff(row, values, keep_unknown=not complete, device_id=device.id,
                          entity="interface", key=key)
        self._seen_again(seen, device.id, "interface", lambda r: f"{device.name}:{r.name}")
        if complete:
            self._gone(rows, seen_ids, device.id, "interface",
                       lambda r: f"{device.name}:{r.name}")
        _touch(self.session, Interface, seen, self.now)
        ids = {name: row.id for name, row in by_name.items() if row.id is not None}
        if new:  # only (id, name) back: no ORM objects for the new rows
            ids.update((name, iface_id) for iface_id, name in self.session.execute(
                insert(Interface).returning(col(Interface.id), col(Interface.name)), new))
        return ids

    def _addresses(self, device: Device, obs: DeviceObservation, interfaces: Mapping[str, int],
                   *, fresh: bool, complete: bool) -> None:
        assert device.id is not None
        rows: Sequence[IpAddress] = () if fresh else self.session.exec(
            select(IpAddress).where(IpAddress.device_id == device.id)
            .order_by(col(IpAddress.id))).all()
        by_address = {row.address: row for row in rows}
        iface_names = {iface_id: name for name, iface_id in interfaces.items()}
        seen: list[IpAddress] = []
        seen_ids: set[int] = set()
        new: list[dict[str, Any]] = []
        for ao in _first_by(obs.addresses, lambda a: _split_address(a.address)[0], "address"):
            address, prefix = _split_address(ao.address)
            prefix = ao.prefix_length if ao.prefix_length is not None else prefix
            iface_id = interfaces.get(ao.interface_name) if ao.interface_name else None
            key = f"{device.name}:{address}"
            row = by_address.get(address)
            if row is None:
                new.append({"device_id": device.id, "interface_id": iface_id,
                            "address": address, "prefix_length": prefix, "missing": False,
                            "first_seen": self.now, "last_seen": self.now})
                self.log.add(device.id, "address", key, "presence", ABSENT, PRESENT)
                continue
            assert row.id is not None
            seen.append(row)
            seen_ids.add(row.id)
            self.log.diff(row, {"prefix_length": prefix}, keep_unknown=not complete,
                          device_id=device.id, entity="address", key=key)
            if row.interface_id != iface_id and (complete or iface_id is not None):
                old = iface_names.get(row.interface_id) if row.interface_id else None
                self.log.add(device.id, "address", key, "interface", old,
                             iface_names.get(iface_id) if iface_id else None)
                row.interface_id = iface_id
        self._seen_again(seen, device.id, "address", lambda r: f"{device.name}:{r.address}")
        if complete:
            self._gone(rows, seen_ids, device.id, "address",
                       lambda r: f"{device.name}:{r.address}")
        _touch(self.session, IpAddress, seen, self.now)
        _insert(self.session, IpAddress, new)

    def _hardware(self, device: Device, obs: DeviceObservation, *, fresh: bool,
                  complete: bool) -> None:
        assert device.id is not None
        rows: Sequence[HardwareComponent] = () if fresh else self.session.exec(
            select(HardwareComponent).where(HardwareComponent.device_id == device.id)
            .order_by(col(HardwareComponent.id))).all()
        by_index = {row.ent_index: row for row in rows}
        seen: list[HardwareComponent] = []
        seen_ids: set[int] = set()
        new: list[dict[str, Any]] = []
        for ho in _first_by(obs.hardware, lambda h: h.ent_index, "hardware entity"):
            key = f"{device.name}:entity-{ho.ent_index}"
            values: dict[str, object] = {
                "name": ho.name, "description": ho.description, "hw_class": ho.hw_class,
                "serial": ho.serial, "model": ho.model, "firmware_rev": ho.firmware_rev,
                "software_rev": ho.software_rev, "hardware_rev": ho.hardware_rev,
                "parent_index": ho.parent_index,
            }
            row = by_index.get(ho.ent_index)
            if row is None:
                new.append({"device_id": device.id, "ent_index": ho.ent_index,
                            "missing": False, "first_seen": self.now, "last_seen": self.now,
                            **values})
                self.log.add(device.id, "hardware", key, "presence", ABSENT, PRESENT)
                continue
            assert row.id is not None
            seen.append(row)
            seen_ids.add(row.id)
            self.log.diff(row, values, keep_unknown=not complete, device_id=device.id,
                          entity="hardware", key=key)
        def key_of(row: HardwareComponent) -> str:
            return f"{device.name}:entity-{row.ent_index}"

        self._seen_again(seen, device.id, "hardware", key_of)
        if complete:
            self._gone(rows, seen_ids, device.id, "hardware", key_of)
        _touch(self.session, HardwareComponent, seen, self.now)
        _insert(self.session, HardwareComponent, new)

    def mark_missing(self, claimed: set[int], scope: Sequence[Network]) -> list[str]:
        names = []
        for device_id in sorted(self.index.devices):
            device = self.index.devices[device_id]
            if (device_id in claimed or device.status == DEVICE_STATUS_MISSING
                    or not _in_scope(device.mgmt_address, scope)):
                continue
            self.log.add(device_id, "device", device.name, "presence", PRESENT, MISSING)
            device.status = DEVICE_STATUS_MISSING
            device.status_detail = f"not seen by discovery run {self.run_id}"
            names.append(device.name)
        return names


def _ensure_run_id(session: Session, run: DiscoveryRun) -> int:
    if run.id is None:
        session.add(run)
        session.flush()
    assert run.id is not None
    return run.id


def reconcile(
    session: Session,
    run: DiscoveryRun,
    observations: Sequence[DeviceObservation],
    *,
    scope: Sequence[Network] | None = None,
    now: datetime | None = None,
) -> ReconcileSummary:
    """Bring the inventory in line with ``observations`` and log every difference.

    Devices not observed whose management address lies in ``scope`` (default: the run's
    targets that parse as address ranges) become ``"missing"``; others are untouched.
    Interfaces, addresses and hardware not seen are flagged missing only when the device's
    observation is ``OK`` (a ``PARTIAL`` one also keeps stored values it did not report).
    One observation per device is expected; a device already matched in this run is not
    matched again. Flushes, never commits. Fills the run's ``devices_*`` counters.
    """
    _ensure_run_id(session, run)
    rec = _Reconciler(session, run, now or utcnow())
    networks = list(scope) if scope is not None else _scope_from_targets(run.targets)
    summary = ReconcileSummary()
    claimed: set[int] = set()
    for obs in observations:
        before = len(rec.log.rows)
        found = rec.index.match(obs, claimed)
        if obs.status not in _SEEN:
            summary.failed += 1
            if found is None:
                log.info("no device known for failed observation %s (%s): not created",
                         obs.name, obs.status.value)
                continue
            device, _rule = found
            assert device.id is not None
            claimed.add(device.id)
            summary.device_ids[obs.name] = device.id
            rec.failure(device, obs)
            continue
        if found is None:
            device = rec.create(obs)
        else:
            device, rule = found
            rec.update(device, obs, rule)
        assert device.id is not None
        claimed.add(device.id)
        summary.device_ids[obs.name] = device.id
        rec.children(device, obs, fresh=found is None)
        if found is None:
            summary.new.append(device.name)
        elif len(rec.log.rows) > before:
            summary.changed.append(device.name)
        else:
            summary.unchanged.append(device.name)
    summary.missing = rec.mark_missing(claimed, networks)
    session.flush()
    summary.changes = rec.log.write()
    run.devices_new = len(summary.new)
    run.devices_changed = len(summary.changed)
    run.devices_unchanged = len(summary.unchanged)
    run.devices_missing = len(summary.missing)
    run.devices_failed = summary.failed
    run.changes_count += len(summary.changes)
    session.add(run)
    log.info("run %s reconciled: %d new, %d changed, %d unchanged, %d missing, %d failed, "
             "%d change row(s)", run.id, len(summary.new), len(summary.changed),
             len(summary.unchanged), len(summary.missing), summary.failed,
             len(summary.changes))
    return summary


# --------------------------------------------------------------------------- links


@dataclass(frozen=True)
class _Port:
    """The interface columns link resolution needs (cheaper than ORM objects)."""

    id: int
    name: str
    if_index: int | None
    description: str | None
    alias: str | None
    mac: str | None
    missing: bool


class _Ports:
    """One device's interfaces, indexed the ways LLDP may name them (live rows first)."""

    def __init__(self, rows: Sequence[_Port]) -> None:
        self.by_name: dict[str, _Port] = {}
        self.by_index: dict[int, _Port] = {}
        self.by_text: dict[str, list[_Port]] = defaultdict(list)
        self.by_mac: dict[str, list[_Port]] = defaultdict(list)
        for row in sorted(rows, key=lambda r: (r.missing, r.id)):
            self.by_name.setdefault(row.name, row)
            if row.if_index is not None:
                self.by_index.setdefault(row.if_index, row)
            for text in {row.description, row.alias} - {None, ""}:
                assert text is not None
                self.by_text[text].append(row)
            mac = _norm_mac(row.mac)
            if mac is not None:
                self.by_mac[mac].append(row)

    def local(self, name: str) -> _Port | None:
        hit = self.by_name.get(name)
        if hit is None and name.isdigit():
            hit = self.by_index.get(int(name))
        return hit if hit is not None else _unique(self.by_text.get(name))

    def remote(self, neighbor: NeighborObservation) -> _Port | None:
        port_id, port_descr = neighbor.remote_port_id, neighbor.remote_port_description
        for name in (port_id, port_descr):
            if name and (hit := self.by_name.get(name)) is not None:
                return hit
        if port_descr and (hit := _unique(self.by_text.get(port_descr))) is not None:
            return hit
        mac = _norm_mac(port_id)
        return _unique(self.by_mac.get(mac)) if mac is not None else None


@dataclass(frozen=True)
class _Report:
    device: Device
    local: _Port
    neighbor: NeighborObservation
    remote: _Port | None

    @property
    def local_id(self) -> int:
        return self.local.id


class _LinkBuilder:
    def __init__(self, session: Session, run_id: int, now: datetime) -> None:
        self.session = session
        self.now = now
        self.log = _Log(session, run_id, now)
        self.index = _DeviceIndex.load(session)
        self.ports: dict[int, _Ports] = {}
        self.labels: dict[int, str] = {}
        self.owner: dict[int, int] = {}  # interface id -> device id

    def ports_of(self, device: Device) -> _Ports:
        assert device.id is not None
        ports = self.ports.get(device.id)
        if ports is None:
            rows = [_Port(*row) for row in self.session.execute(
                sa_select(col(Interface.id), col(Interface.name), col(Interface.if_index),
                          col(Interface.description), col(Interface.alias),
                          col(Interface.mac), col(Interface.missing))
                .where(col(Interface.device_id) == device.id)).all()]
            ports = self.ports[device.id] = _Ports(rows)
            for port in rows:
                self.labels[port.id] = f"{device.name}:{port.name}"
                self.owner[port.id] = device.id
        return ports

    def label_ids(self, ids: Iterable[int]) -> None:
        wanted = sorted(set(ids) - self.labels.keys())
        if not wanted:
            return
        rows = self.session.exec(
            select(Interface.id, Interface.device_id, Device.name, Interface.name)
            .join(Device, col(Device.id) == col(Interface.device_id))
            .where(col(Interface.id).in_(wanted))).all()
        for iface_id, device_id, device_name, iface_name in rows:
            assert iface_id is not None
            self.labels[iface_id] = f"{device_name}:{iface_name}"
            self.owner[iface_id] = device_id

    def describe(self, report: _Report) -> str:
        if report.remote is not None and report.remote.id is not None:
            return self.labels[report.remote.id]
        n = report.neighbor
        who = n.remote_sys_name or n.remote_chassis_id or n.remote_mgmt_address or "?"
        return f"{who}:{n.remote_port_id or n.remote_port_description or '?'}"

    def key_text(self, a: int, b: int) -> str:
        return f"{self.labels[a]}--{self.labels[b]}"


def build_links(
    session: Session,
    run: DiscoveryRun,
    observations: Sequence[DeviceObservation],
    *,
    device_ids: Mapping[str, int] | None = None,
    now: datetime | None = None,
) -> LinkResult:
    """Links from the neighbours in ``observations``; call after :func:`reconcile`.

    Returns the links seen in this run and how many neighbours could not be resolved.
    Each resolved neighbour gives one interface pair, stored once (``a < b``). A link is
    ``confirmed`` when both ends report each other; ``disagreement`` says when an end's
    own report names someone else. Known links touching a device observed ``OK`` but not
    reported now become missing. Unresolvable neighbours are counted (``unresolved``),
    never invented. ``device_ids`` (``ReconcileSummary.device_ids``) pins observations to
    devices; without it they are matched again. Flushes, never commits.
    """
    run_id = _ensure_run_id(session, run)
    b = _LinkBuilder(session, run_id, now or utcnow())
    seen_links: list[Link] = []
    went_missing = 0
    unresolved = 0

    reports: list[_Report] = []
    reporters: set[int] = set()
    complete: set[int] = set()
    for obs in observations:
        if obs.status not in _SEEN:
            continue
        device: Device | None = None
        if device_ids is not None and obs.name in device_ids:
            device = b.index.devices.get(device_ids[obs.name])
        if device is None and (found := b.index.match(obs, set())) is not None:
            device = found[0]
        if device is None or device.id is None:
            log.warning("run %s: no device for observation %s: %d neighbour(s) unresolved",
                        run_id, obs.name, len(obs.neighbors))
            unresolved += len(obs.neighbors)
            continue
        reporters.add(device.id)
        if obs.status is StatusCode.OK:
            complete.add(device.id)
        for neighbor in obs.neighbors:
            local = b.ports_of(device).local(neighbor.local_interface)
            if local is None:
                log.debug("%s: no local interface %r", device.name, neighbor.local_interface)
                unresolved += 1
                continue
            remote_device = b.index.remote(neighbor)
            remote = b.ports_of(remote_device).remote(neighbor) if remote_device else None
            if remote is not None and remote.id == local.id:
                remote = None
            if remote is None:
                log.debug("%s:%s: neighbour %s/%s unresolved", device.name, local.name,
                          neighbor.remote_sys_name or neighbor.remote_chassis_id,
                          neighbor.remote_port_id)
                unresolved += 1
            reports.append(_Report(device, local, neighbor, remote))

    by_local: dict[int, list[_Report]] = defaultdict(list)
    pairs: dict[tuple[int, int], list[_Report]] = defaultdict(list)
    for report in reports:
        by_local[report.local_id].append(report)
        if report.remote is not None and report.remote.id is not None:
            ends = sorted((report.local_id, report.remote.id))
            pairs[(ends[0], ends[1])].append(report)

    existing: dict[tuple[int, int], Link] = {}
    if reporters:
        touched = select(Interface.id).where(col(Interface.device_id).in_(sorted(reporters)))
        for known in session.exec(select(Link).where(or_(
                col(Link.a_interface_id).in_(touched),
                col(Link.b_interface_id).in_(touched))).order_by(col(Link.id))).all():
            existing[(known.a_interface_id, known.b_interface_id)] = known
    b.label_ids(i for key in (*pairs, *existing) for i in key)

    new_links: list[dict[str, Any]] = []
    for key in sorted(pairs):
        a, z = key
        group = pairs[key]
        directions = {(r.local_id, r.remote.id) for r in group if r.remote is not None}
        confirmed = (a, z) in directions and (z, a) in directions
        complaints = []
        for r in group:
            assert r.remote is not None and r.remote.id is not None
            back = by_local.get(r.remote.id, [])
            if back and not any(x.remote is not None and x.remote.id == r.local_id
                                for x in back):
                complaints.append(
                    f"{b.labels[r.local_id]} says {b.labels[r.remote.id]} but "
                    f"{b.labels[r.remote.id]} sees {', '.join(b.describe(x) for x in back)}")
        values: dict[str, object] = {
            "confirmed": confirmed,
            "disagreement": "; ".join(complaints) or None,
            "learnt_via": ",".join(sorted({r.neighbor.learnt_via for r in group})),
        }
        text = b.key_text(a, z)
        owner = b.owner.get(a)
        link = existing.get(key)
        if link is None:
            new_links.append({"a_interface_id": a, "b_interface_id": z, "missing": False,
                              "first_seen": b.now, "last_seen": b.now, **values})
            b.log.add(owner, "link", text, "presence", ABSENT, PRESENT)
            continue
        if link.missing:
            link.missing = False
            b.log.add(owner, "link", text, "presence", MISSING, PRESENT)
        b.log.diff(link, values, keep_unknown=False, device_id=owner, entity="link", key=text)
        seen_links.append(link)

    for key, link in existing.items():
        if key in pairs or link.missing:
            continue
        if not ({b.owner.get(key[0]), b.owner.get(key[1])} & complete):
            continue  # neither end was read completely: absence proves nothing
        link.missing = True
        b.log.add(b.owner.get(key[0]), "link", b.key_text(*key), "presence", PRESENT, MISSING)
        went_missing += 1

    _touch(session, Link, seen_links, b.now)
    seen_links += _insert(session, Link, new_links, returning=True)
    seen_links.sort(key=lambda link: (link.a_interface_id, link.b_interface_id))
    b.log.write()
    session.flush()
    run.links_count = len(seen_links)
    run.neighbors_unresolved = unresolved
    run.changes_count += len(b.log.rows)
    session.add(run)
    log.info("run %s links: %d seen, %d gone missing, %d neighbour(s) unresolved, "
             "%d change row(s)", run_id, len(seen_links), went_missing, unresolved,
             len(b.log.rows))
    return LinkResult(seen_links, unresolved)
