"""What discovery saw in one run: plain frozen records, filled by the discovery agent.

They carry no database identity. :func:`topology.reconcile.reconcile` turns them into
inventory rows and change history; :func:`topology.reconcile.build_links` turns their
neighbours into links. ``None`` means "not reported", never "empty".
"""

from __future__ import annotations

from dataclasses import dataclass

from topology.errors import StatusCode

__all__ = [
    "AddressObservation",
    "DeviceObservation",
    "FailedTarget",
    "HardwareObservation",
    "InterfaceObservation",
    "NeighborObservation",
]


@dataclass(frozen=True)
class InterfaceObservation:
    """One interface (IF-MIB ifTable/ifXTable); ``name`` is ifName (else ifDescr)."""

    name: str
    if_index: int | None = None
    description: str | None = None
    alias: str | None = None
    if_type: int | None = None
    speed_mbps: int | None = None
    mac: str | None = None
    mtu: int | None = None
    admin_status: str | None = None
    oper_status: str | None = None


@dataclass(frozen=True)
class AddressObservation:
    """One IP address of the device, on the named interface when known."""

    address: str
    prefix_length: int | None = None
    interface_name: str | None = None


@dataclass(frozen=True)
class HardwareObservation:
    """One ENTITY-MIB entPhysicalTable row."""

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


@dataclass(frozen=True)
class NeighborObservation:
    """A neighbour seen on ``local_interface`` (an interface name of the reporting device)."""

    local_interface: str
    remote_chassis_id: str | None
    remote_port_id: str | None
    remote_sys_name: str | None = None
    remote_port_description: str | None = None
    remote_mgmt_address: str | None = None
    learnt_via: str = "lldp"


@dataclass(frozen=True)
class DeviceObservation:
    """Everything one run learnt about one device, however many addresses it answered on.

    ``status`` other than ``OK`` or ``PARTIAL`` means nothing useful was read: only the
    status of an already known device is updated from such an observation.
    ``identity_rule`` says how the agent merged several addresses into this observation.
    """

    name: str
    mgmt_address: str
    addresses_answered: tuple[str, ...] = ()
    sys_name: str | None = None
    sys_object_id: str | None = None
    sys_descr: str | None = None
    engine_id: str | None = None
    chassis_id: str | None = None
    serial: str | None = None
    vendor: str | None = None
    model: str | None = None
    os_name: str | None = None
    os_version: str | None = None
    role: str = "unknown"
    role_reason: str = ""
    planes: tuple[str, ...] = ()
    credential_profile: str | None = None
    status: StatusCode = StatusCode.OK
    status_detail: str | None = None
    identity_rule: str | None = None
    interfaces: tuple[InterfaceObservation, ...] = ()
    addresses: tuple[AddressObservation, ...] = ()
    hardware: tuple[HardwareObservation, ...] = ()
    neighbors: tuple[NeighborObservation, ...] = ()


@dataclass(frozen=True)
class FailedTarget:
    """An address where no credential profile got a useful answer (never a device row)."""

    address: str
    status: StatusCode
    detail: str
    profile: str | None = None
