"""Facts about one device read over SNMP: system, interfaces, addresses, hardware, LLDP.

The system group (and snmpEngineID) is read with one GET and must answer: if it does not,
the error is raised. Every table after it is walked concurrently (within the client's
per-target bound) column by column with GETBULK (GETNEXT for v1), so only the columns used
are fetched; a table that fails is named in ``SnmpFacts.partial`` and the rest still
returns. A table the agent does not implement (ENTITY-MIB on net-snmp for Linux) is simply
empty.

The OIDs, enumerations and LLDP capability bits are data at the top of this module.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from collectors.snmp import (
    SnmpClient,
    SnmpCredentials,
    SnmpValue,
    SnmpVersion,
    Special,
    row_index,
)
from topology.errors import CollectionError, ProtocolError, StatusCode

__all__ = [
    "EntityFacts",
    "InterfaceFacts",
    "IpAddressFacts",
    "LldpLocal",
    "LldpNeighbor",
    "SnmpFacts",
    "SystemFacts",
    "collect_snmp_facts",
]

# -- what is read (numeric OIDs; names as in the MIBs) ------------------------------------

SYSTEM_OIDS: Final[Mapping[str, str]] = {
    "sysDescr": "1.3.6.1.2.1.1.1.0",
    "sysObjectID": "1.3.6.1.2.1.1.2.0",
    "sysUpTime": "1.3.6.1.2.1.1.3.0",
    "sysContact": "1.3.6.1.2.1.1.4.0",
    "sysName": "1.3.6.1.2.1.1.5.0",
    "sysLocation": "1.3.6.1.2.1.1.6.0",
    "sysServices": "1.3.6.1.2.1.1.7.0",
    "snmpEngineID": "1.3.6.1.6.3.10.2.1.1.0",
}
LLDP_LOCAL_OIDS: Final[Mapping[str, str]] = {
    "lldpLocChassisIdSubtype": "1.0.8802.1.1.2.1.3.1.0",
    "lldpLocChassisId": "1.0.8802.1.1.2.1.3.2.0",
    "lldpLocSysName": "1.0.8802.1.1.2.1.3.3.0",
}
# table -> column -> column OID; rows are indexed by what follows the column OID
TABLES: Final[Mapping[str, Mapping[str, str]]] = {
    "ifTable": {
        "ifIndex": "1.3.6.1.2.1.2.2.1.1",
        "ifDescr": "1.3.6.1.2.1.2.2.1.2",
        "ifType": "1.3.6.1.2.1.2.2.1.3",
        "ifMtu": "1.3.6.1.2.1.2.2.1.4",
        "ifSpeed": "1.3.6.1.2.1.2.2.1.5",
        "ifPhysAddress": "1.3.6.1.2.1.2.2.1.6",
        "ifAdminStatus": "1.3.6.1.2.1.2.2.1.7",
        "ifOperStatus": "1.3.6.1.2.1.2.2.1.8",
    },
    "ifXTable": {
        "ifName": "1.3.6.1.2.1.31.1.1.1.1",
        "ifHighSpeed": "1.3.6.1.2.1.31.1.1.1.15",
        "ifAlias": "1.3.6.1.2.1.31.1.1.1.18",
    },
    "ipAddrTable": {
        "ipAdEntAddr": "1.3.6.1.2.1.4.20.1.1",
        "ipAdEntIfIndex": "1.3.6.1.2.1.4.20.1.2",
        "ipAdEntNetMask": "1.3.6.1.2.1.4.20.1.3",
    },
    "ipAddressTable": {
        "ipAddressIfIndex": "1.3.6.1.2.1.4.34.1.3",
        "ipAddressType": "1.3.6.1.2.1.4.34.1.4",
        "ipAddressPrefix": "1.3.6.1.2.1.4.34.1.5",
    },
    "entPhysicalTable": {
        "entPhysicalDescr": "1.3.6.1.2.1.47.1.1.1.1.2",
        "entPhysicalContainedIn": "1.3.6.1.2.1.47.1.1.1.1.4",
        "entPhysicalClass": "1.3.6.1.2.1.47.1.1.1.1.5",
        "entPhysicalName": "1.3.6.1.2.1.47.1.1.1.1.7",
        "entPhysicalHardwareRev": "1.3.6.1.2.1.47.1.1.1.1.8",
        "entPhysicalFirmwareRev": "1.3.6.1.2.1.47.1.1.1.1.9",
        "entPhysicalSoftwareRev": "1.3.6.1.2.1.47.1.1.1.1.10",
        "entPhysicalSerialNum": "1.3.6.1.2.1.47.1.1.1.1.11",
        "entPhysicalModelName": "1.3.6.1.2.1.47.1.1.1.1.13",
    },
    "lldpLocPortTable": {
        "lldpLocPortIdSubtype": "1.0.8802.1.1.2.1.3.7.1.2",
        "lldpLocPortId": "1.0.8802.1.1.2.1.3.7.1.3",
        "lldpLocPortDesc": "1.0.8802.1.1.2.1.3.7.1.4",
    },
    "lldpRemTable": {  # index: lldpRemTimeMark.lldpRemLocalPortNum.lldpRemIndex
        "lldpRemChassisIdSubtype": "1.0.8802.1.1.2.1.4.1.1.4",
        "lldpRemChassisId": "1.0.8802.1.1.2.1.4.1.1.5",
        "lldpRemPortIdSubtype": "1.0.8802.1.1.2.1.4.1.1.6",
        "lldpRemPortId": "1.0.8802.1.1.2.1.4.1.1.7",
        "lldpRemPortDesc": "1.0.8802.1.1.2.1.4.1.1.8",
        "lldpRemSysName": "1.0.8802.1.1.2.1.4.1.1.9",
        "lldpRemSysDesc": "1.0.8802.1.1.2.1.4.1.1.10",
        "lldpRemSysCapSupported": "1.0.8802.1.1.2.1.4.1.1.11",
        "lldpRemSysCapEnabled": "1.0.8802.1.1.2.1.4.1.1.12",
    },
    "lldpRemManAddrTable": {  # index: the lldpRemTable index, then subtype.length.address
        "lldpRemManAddrIfSubtype": "1.0.8802.1.1.2.1.4.2.1.3",
    },
}

IF_STATUS: Final[Mapping[int, str]] = {
    1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent",
    7: "lowerLayerDown",
}
ENT_PHYSICAL_CLASS: Final[Mapping[int, str]] = {
    1: "other", 2: "unknown", 3: "chassis", 4: "backplane", 5: "container",
    6: "powerSupply", 7: "fan", 8: "sensor", 9: "module", 10: "port", 11: "stack",
    12: "cpu", 13: "energyObject", 14: "battery", 15: "storageDrive",
}
LLDP_CHASSIS_ID_SUBTYPES: Final[Mapping[int, str]] = {
    1: "chassisComponent", 2: "interfaceAlias", 3: "portComponent", 4: "macAddress",
    5: "networkAddress", 6: "interfaceName", 7: "local",
}
LLDP_PORT_ID_SUBTYPES: Final[Mapping[int, str]] = {
    1: "interfaceAlias", 2: "portComponent", 3: "macAddress", 4: "networkAddress",
    5: "interfaceName", 6: "agentCircuitId", 7: "local",
}
# LldpSystemCapabilitiesMap, in BITS order (bit 0 is the first octet's high bit);
# bits 8-10 are LLDP-V2-MIB's additions.
LLDP_CAPABILITY_BITS: Final[tuple[str, ...]] = (
    "other", "repeater", "bridge", "wlanAccessPoint", "router", "telephone",
    "docsisCableDevice", "stationOnly", "cVLAN", "sVLAN", "twoPortMACRelay",
)
IANA_ADDRESS_FAMILY: Final[Mapping[int, int]] = {1: 4, 2: 16}  # ipV4, ipV6 -> octets
INET_ADDRESS_TYPE: Final[Mapping[int, int]] = {1: 4, 2: 16, 3: 8, 4: 20}  # with zones
IP_ADDRESS_TYPE_BROADCAST: Final = 3
_BULK_VARBINDS: Final = 48  # varbinds asked per GETBULK when walking columns side by side


# -- the facts ----------------------------------------------------------------------------

@dataclass(frozen=True)
class SystemFacts:
    """SNMPv2-MIB's system group; text fields are ``""`` when the agent has none."""

    descr: str
    object_id: str
    uptime_s: float
    contact: str
    name: str
    location: str
    services: int | None


@dataclass(frozen=True)
class InterfaceFacts:
    """One IF-MIB interface; ``name`` is ifName, else ifDescr."""

    if_index: int
    name: str
    descr: str
    alias: str
    if_type: int | None
    mtu: int | None
    speed_mbps: float | None
    mac: str | None
    admin_status: str
    oper_status: str


@dataclass(frozen=True)
class IpAddressFacts:
    """An address on an interface; ``prefix_length`` is ``None`` when the agent hides it."""

    address: str
    prefix_length: int | None
    if_index: int | None


@dataclass(frozen=True)
class EntityFacts:
    """One ENTITY-MIB physical entity; ``parent`` is entPhysicalContainedIn (None at top)."""

    index: int
    descr: str
    physical_class: str
    name: str
    hardware_rev: str
    firmware_rev: str
    software_rev: str
    serial_num: str
    model_name: str
    parent: int | None


@dataclass(frozen=True)
class LldpLocal:
    """The device's own LLDP identity; ``ports`` maps lldpLocPortNum to its port id."""

    chassis_id: str
    chassis_id_subtype: str
    ports: dict[int, str]
    sys_name: str = ""


@dataclass(frozen=True)
class LldpNeighbor:
    """One LLDP neighbour as this device sees it; ``local_port`` is this device's own port
    id (resolved through lldpLocPortTable), ``port_id`` the neighbour's."""

    local_port: str
    chassis_id: str
    chassis_id_subtype: str
    port_id: str
    port_id_subtype: str
    port_descr: str
    sys_name: str
    sys_descr: str
    capabilities_enabled: list[str]
    mgmt_address: str | None
    capabilities_supported: list[str] = field(default_factory=list)
    local_port_num: int = 0


@dataclass(frozen=True)
class SnmpFacts:
    """Everything read from one device; ``partial`` names the tables that failed."""

    system: SystemFacts
    engine_id: str | None
    interfaces: list[InterfaceFacts]
    addresses: list[IpAddressFacts]
    entities: list[EntityFacts]
    lldp_local: LldpLocal | None
    lldp_neighbors: list[LldpNeighbor]
    partial: list[str]

    @property
    def status(self) -> StatusCode:
        return StatusCode.PARTIAL if self.partial else StatusCode.OK


# -- helpers (pure) -----------------------------------------------------------------------

def _text(value: SnmpValue | None) -> str:
    if value is None or isinstance(value, Special):
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").rstrip("\x00")
    return str(value)


def _int(value: SnmpValue | None) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _mac(raw: bytes) -> str:
    """Octets as ``aa:bb:cc:dd:ee:ff``."""
    return ":".join(f"{b:02x}" for b in raw)


def _prefix_length(netmask: str) -> int | None:
    """``255.255.255.252`` -> 30; ``None`` for a mask that is not contiguous."""
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen
    except ValueError:
        return None


def _printable(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8").rstrip("\x00")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() else None


def _lldp_id(subtype: str, raw: SnmpValue | None) -> str:
    """An LLDP chassis or port id rendered by its subtype: MACs as ``aa:bb:..``, network
    addresses as IP text, names as text (hex when not printable)."""
    if not isinstance(raw, bytes):
        return _text(raw)
    if subtype == "macAddress" and len(raw) == 6:
        return _mac(raw)
    if subtype == "networkAddress" and raw and IANA_ADDRESS_FAMILY.get(raw[0]) == len(raw) - 1:
        return str(ipaddress.ip_address(raw[1:]))
    text = _printable(raw)
    return text if text is not None else _mac(raw)


def _capabilities(raw: SnmpValue | None) -> list[str]:
    """LLDP capability BITS as names, e.g. ``["bridge", "router"]``."""
    if not isinstance(raw, bytes):
        return []
    names = []
    for bit, name in enumerate(LLDP_CAPABILITY_BITS):
        octet = bit // 8
        if octet < len(raw) and raw[octet] & (0x80 >> (bit % 8)):
            names.append(name)
    return names


def _inet_address(index: tuple[int, ...]) -> tuple[str, tuple[int, ...]] | None:
    """An ``InetAddressType.InetAddress`` OID index (length-prefixed) -> (address, rest)."""
    if len(index) < 2 or INET_ADDRESS_TYPE.get(index[0]) != index[1]:
        return None
    size = index[1]
    raw = index[2:2 + size]
    if len(raw) != size or not all(0 <= b <= 255 for b in raw):
        return None
    octets = bytes(raw)
    address = ipaddress.ip_address(octets[:4] if size in (4, 8) else octets[:16])
    return str(address), index[2 + size:]


def _man_address(subtype: int, rest: tuple[int, ...]) -> str | None:
    """The address in an lldpRemManAddrTable index: length-prefixed octets (or IMPLIED)."""
    size = IANA_ADDRESS_FAMILY.get(subtype)
    if size is None:
        return None
    if len(rest) == size + 1 and rest[0] == size:
        rest = rest[1:]
    if len(rest) != size or any(not 0 <= b <= 255 for b in rest):
        return None
    return str(ipaddress.ip_address(bytes(rest)))



# -- walking columns side by side ---------------------------------------------------------

Column = dict[tuple[int, ...], SnmpValue]
Table = dict[str, Column]


async def _walk_columns(client: SnmpClient, host: str, creds: SnmpCredentials,
                        columns: Mapping[str, str]) -> Table:
    """Every row of ``columns`` (name -> column OID), as name -> {row index: value}."""
    cursor = dict(columns)
    last: dict[str, tuple[int, ...]] = {name: () for name in columns}
    out: Table = {name: {} for name in columns}
    active = list(columns)
    while active:
        if creds.version is SnmpVersion.V1:
            varbinds = await client.get_next(host, creds, [cursor[n] for n in active])
        else:
            varbinds = await client.get_bulk(
                host, creds, [cursor[n] for n in active],
                max_repetitions=max(1, _BULK_VARBINDS // len(active)))
        done: set[str] = set()
        moved = False
        for position, vb in enumerate(varbinds):
            name = active[position % len(active)]
            if name in done:
                continue
            index = None if isinstance(vb.value, Special) else row_index(vb.oid, columns[name])
            if index is None:
                done.add(name)
                continue
            if index <= last[name]:
                raise ProtocolError(
                    f"snmp walk {host}: OID not increasing in {name} at {vb.oid} "
                    f"(credential profile {creds.profile!r})",
                    device=host, operation="snmp walk", profile=creds.profile)
            out[name][index] = vb.value
            last[name] = index
            cursor[name] = vb.oid
            moved = True
        if not moved and not done:
            raise ProtocolError(
                f"snmp walk {host}: the agent returned nothing usable for "
                f"{', '.join(active)} (credential profile {creds.profile!r})",
                device=host, operation="snmp walk", profile=creds.profile)
        active = [n for n in active if n not in done]
    return out


# -- building the facts from what was read ------------------------------------------------

def _system(values: Mapping[str, SnmpValue]) -> SystemFacts:
    uptime = _int(values.get("sysUpTime"))
    return SystemFacts(
        descr=_text(values.get("sysDescr")),
        object_id=_text(values.get("sysObjectID")),
        uptime_s=(uptime or 0) / 100.0,
        contact=_text(values.get("sysContact")),
        name=_text(values.get("sysName")),
        location=_text(values.get("sysLocation")),
        services=_int(values.get("sysServices")),
    )


def _interfaces(if_table: Table, if_x_table: Table) -> list[InterfaceFacts]:
    def col(table: Table, name: str, row: tuple[int, ...]) -> SnmpValue | None:
        return table.get(name, {}).get(row)

    rows = {row for table in (if_table, if_x_table) for c in table.values() for row in c
            if len(row) == 1}
    out = []
    for row in sorted(rows):
        descr = _text(col(if_table, "ifDescr", row))
        high = _int(col(if_x_table, "ifHighSpeed", row))
        speed = _int(col(if_table, "ifSpeed", row))
        speed_mbps = float(high) if high else (speed / 1e6 if speed is not None else None)
        phys = col(if_table, "ifPhysAddress", row)
        admin = _int(col(if_table, "ifAdminStatus", row))
        oper = _int(col(if_table, "ifOperStatus", row))
        out.append(InterfaceFacts(
            if_index=row[0],
            name=_text(col(if_x_table, "ifName", row)) or descr,
            descr=descr,
            alias=_text(col(if_x_table, "ifAlias", row)),
            if_type=_int(col(if_table, "ifType", row)),
            mtu=_int(col(if_table, "ifMtu", row)),
            speed_mbps=speed_mbps,
            mac=_mac(phys) if isinstance(phys, bytes) and phys else None,
            admin_status=IF_STATUS.get(admin, str(admin)) if admin is not None else "",
            oper_status=IF_STATUS.get(oper, str(oper)) if oper is not None else "",
        ))
    return out


def _addresses(ip_addr_table: Table, ip_address_table: Table) -> list[IpAddressFacts]:
    found: dict[str, IpAddressFacts] = {}
    for row, if_index in ip_addr_table.get("ipAdEntIfIndex", {}).items():
        if len(row) != 4 or not all(0 <= b <= 255 for b in row):
            continue
        address = str(ipaddress.IPv4Address(bytes(row)))
        mask = ip_addr_table.get("ipAdEntNetMask", {}).get(row)
        found[address] = IpAddressFacts(
            address=address,
            prefix_length=_prefix_length(mask) if isinstance(mask, str) else None,
            if_index=_int(if_index))
    types = ip_address_table.get("ipAddressType", {})
    prefixes = ip_address_table.get("ipAddressPrefix", {})
    for row, if_index in ip_address_table.get("ipAddressIfIndex", {}).items():
        parsed = _inet_address(row)
        if parsed is None or types.get(row) == IP_ADDRESS_TYPE_BROADCAST:
            continue
        address = parsed[0]
        if address in found:  # ipAddrTable's netmask is exact; net-snmp's prefix may not be
            continue
        prefix = prefixes.get(row)
        length = int(prefix.rsplit(".", 1)[1]) if isinstance(prefix, str) and \
            prefix not in ("0.0", "") else None
        found[address] = IpAddressFacts(address=address, prefix_length=length,
                                        if_index=_int(if_index))
    return sorted(found.values(), key=lambda a: (a.if_index or 0,
                                                 ipaddress.ip_address(a.address).version,
                                                 ipaddress.ip_address(a.address)))


def _entities(table: Table) -> list[EntityFacts]:
    rows = sorted({row for c in table.values() for row in c if len(row) == 1})
    out = []
    for row in rows:
        def text(name: str, row: tuple[int, ...] = row) -> str:
            return _text(table.get(name, {}).get(row))
        klass = _int(table.get("entPhysicalClass", {}).get(row))
        parent = _int(table.get("entPhysicalContainedIn", {}).get(row))
        out.append(EntityFacts(
            index=row[0],
            descr=text("entPhysicalDescr"),
            physical_class=ENT_PHYSICAL_CLASS.get(klass, str(klass)) if klass else "",
            name=text("entPhysicalName"),
            hardware_rev=text("entPhysicalHardwareRev"),
            firmware_rev=text("entPhysicalFirmwareRev"),
            software_rev=text("entPhysicalSoftwareRev"),
            serial_num=text("entPhysicalSerialNum"),
            model_name=text("entPhysicalModelName"),
            parent=parent or None,
        ))
    return out


def _lldp_local(values: Mapping[str, SnmpValue], ports: Table) -> LldpLocal | None:
    subtype_n = _int(values.get("lldpLocChassisIdSubtype"))
    if subtype_n is None and not ports.get("lldpLocPortId"):
        return None  # no LLDP-MIB on this agent
    subtype = LLDP_CHASSIS_ID_SUBTYPES.get(subtype_n or 0, str(subtype_n))
    port_ids: dict[int, str] = {}
    for row, raw in ports.get("lldpLocPortId", {}).items():
        if len(row) == 1:
            port_subtype = _int(ports.get("lldpLocPortIdSubtype", {}).get(row))
            port_ids[row[0]] = _lldp_id(LLDP_PORT_ID_SUBTYPES.get(port_subtype or 0, ""), raw)
    return LldpLocal(
        chassis_id=_lldp_id(subtype, values.get("lldpLocChassisId")),
        chassis_id_subtype=subtype,
        ports=port_ids,
        sys_name=_text(values.get("lldpLocSysName")),
    )


def _lldp_neighbors(remote: Table, man_addr: Table, local: LldpLocal | None,
                    interfaces: list[InterfaceFacts]) -> list[LldpNeighbor]:
    addresses: dict[tuple[int, int], list[str]] = {}
    for row in sorted(man_addr.get("lldpRemManAddrIfSubtype", {})):
        if len(row) >= 5:
            address = _man_address(row[3], row[4:])
            if address is not None:
                addresses.setdefault((row[1], row[2]), []).append(address)
    names = {i.if_index: i.name for i in interfaces}
    rows = sorted({row for c in remote.values() for row in c if len(row) == 3},
                  key=lambda r: (r[1], r[2], r[0]))
    out = []
    for row in rows:
        def value(name: str, row: tuple[int, ...] = row) -> SnmpValue | None:
            return remote.get(name, {}).get(row)
        port_num, rem_index = row[1], row[2]
        chassis_subtype = LLDP_CHASSIS_ID_SUBTYPES.get(
            _int(value("lldpRemChassisIdSubtype")) or 0, "")
        port_subtype = LLDP_PORT_ID_SUBTYPES.get(_int(value("lldpRemPortIdSubtype")) or 0, "")
        local_port = (local.ports.get(port_num) if local else None) or \
            names.get(port_num) or str(port_num)
        mgmt = sorted(addresses.get((port_num, rem_index), []),
                      key=lambda a: ipaddress.ip_address(a).version)
        out.append(LldpNeighbor(
            local_port=local_port,
            chassis_id=_lldp_id(chassis_subtype, value("lldpRemChassisId")),
            chassis_id_subtype=chassis_subtype,
            port_id=_lldp_id(port_subtype, value("lldpRemPortId")),
            port_id_subtype=port_subtype,
            port_descr=_text(value("lldpRemPortDesc")),
            sys_name=_text(value("lldpRemSysName")),
            sys_descr=_text(value("lldpRemSysDesc")),
            capabilities_enabled=_capabilities(value("lldpRemSysCapEnabled")),
            mgmt_address=mgmt[0] if mgmt else None,
            capabilities_supported=_capabilities(value("lldpRemSysCapSupported")),
            local_port_num=port_num,
        ))
    return out


# -- the collector ------------------------------------------------------------------------

async def collect_snmp_facts(client: SnmpClient, host: str,
                             creds: SnmpCredentials) -> SnmpFacts:
    """Read ``host``'s facts. Raises the client's CollectionError when the system group
    cannot be read; a table that fails after it only lands in ``partial``."""
    names = list(SYSTEM_OIDS)
    answer = await client.get(host, creds, [SYSTEM_OIDS[n] for n in names])
    system_values = dict(zip(names, (vb.value for vb in answer), strict=True))
    if all(isinstance(system_values[n], Special) for n in names if n != "snmpEngineID"):
        raise ProtocolError(
            f"snmp get {host}: the system group is not readable with these credentials "
            f"(credential profile {creds.profile!r})",
            device=host, operation="snmp get", profile=creds.profile)
    engine_raw = system_values.get("snmpEngineID")
    engine_id = engine_raw.hex() if isinstance(engine_raw, bytes) and engine_raw else None

    async def lldp_local_values() -> Table:
        lldp_names = list(LLDP_LOCAL_OIDS)
        got = await client.get(host, creds, [LLDP_LOCAL_OIDS[n] for n in lldp_names])
        return {n: {(): vb.value} for n, vb in zip(lldp_names, got, strict=True)}

    jobs = {name: _walk_columns(client, host, creds, columns)
            for name, columns in TABLES.items()}
    jobs["lldpLocal"] = lldp_local_values()
    results = await asyncio.gather(*jobs.values(), return_exceptions=True)
    tables: dict[str, Table] = {}
    partial: list[str] = []
    for name, result in zip(jobs, results, strict=True):
        if isinstance(result, CollectionError):
            partial.append(name)
            tables[name] = {}
        elif isinstance(result, BaseException):
            raise result
        else:
            tables[name] = result

    local_values = {n: v[()] for n, v in tables["lldpLocal"].items() if () in v}
    interfaces = _interfaces(tables["ifTable"], tables["ifXTable"])
    local = _lldp_local(local_values, tables["lldpLocPortTable"])
    return SnmpFacts(
        system=_system(system_values),
        engine_id=engine_id,
        interfaces=interfaces,
        addresses=_addresses(tables["ipAddrTable"], tables["ipAddressTable"]),
        entities=_entities(tables["entPhysicalTable"]),
        lldp_local=local,
        lldp_neighbors=_lldp_neighbors(tables["lldpRemTable"], tables["lldpRemManAddrTable"],
                                       local, interfaces),
        partial=partial,
    )
