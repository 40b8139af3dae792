"""The discovery run: targets -> probes with each credential profile -> facts -> one
observation per device -> reconciled into the inventory, links from LLDP.

Every address ends with a status code; one slow or dead device never stalls the run
(each has a time budget, and many are probed at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network, ip_address
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agents.discovery.classify import DeviceEvidence, RoleRules, identify_platform, load_role_rules
from collectors.cli import CliFacts, collect_cli_facts
from collectors.netconf import NetconfFacts, collect_netconf_facts
from collectors.snmp import SnmpClient, SnmpCredentials, SnmpVersion
from collectors.snmp_facts import SnmpFacts, collect_snmp_facts
from collectors.sweep import SweepResult, sweep, sweep_available
from topology.credentials import CredentialProfile
from topology.errors import (
    AuthenticationFailed,
    CollectionError,
    ConnectionRefused,
    DeviceTimeout,
    StatusCode,
)
from topology.inventory import Device, DiscoveryRun, IpAddress, record_run_detail
from topology.observations import (
    AddressObservation,
    DeviceObservation,
    FailedTarget,
    HardwareObservation,
    InterfaceObservation,
    NeighborObservation,
)
from topology.reconcile import ReconcileSummary, build_links, reconcile
from topology.scope import DiscoverySettings, Scope, addresses

__all__ = ["DiscoveryResult", "Progress", "discover", "lab_targets"]

# an address that ends with one of these had nothing there to discover
SILENT = frozenset({StatusCode.TIMEOUT, StatusCode.REFUSED, StatusCode.UNREACHABLE})

log = logging.getLogger(__name__)
Progress = Callable[[int, int, str], None]
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"


def _noop(done: int, total: int, current: str) -> None:
    pass


@dataclass
class AddressResult:
    """What one address gave: facts per plane, or why nothing usable answered."""

    address: str
    status: StatusCode
    detail: str = ""
    profile: str | None = None
    snmp: SnmpFacts | None = None
    netconf: NetconfFacts | None = None
    cli: CliFacts | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def answered(self) -> bool:
        return self.snmp is not None or self.netconf is not None


@dataclass
class DiscoveryResult:
    """The run's summary: what ``switchboard discover`` prints."""

    run_id: int
    targets: list[str]
    addresses_probed: int
    no_answer: int
    found: list[str]
    new: list[str]
    changed: list[str]
    missing: list[str]
    failed: list[FailedTarget]
    partial: list[str]
    links: int
    links_confirmed: int
    unresolved_neighbors: int
    seconds: float
    arp_answered: int = 0
    icmp_answered: int = 0

    def outcome(self) -> dict[str, Any]:
        """What is kept with the run (``discovery_run_detail``) and shown by the API."""
        return {"found": self.found, "new": self.new, "changed": self.changed,
                "missing": self.missing, "partial": self.partial,
                "failed": [{"detail": f.detail, "status": str(f.status)}
                           for f in self.failed],
                "links": self.links, "links_confirmed": self.links_confirmed,
                "addresses_probed": self.addresses_probed, "no_answer": self.no_answer,
                "seconds": round(self.seconds, 3)}


async def _tcp_open(host: str, port: int, timeout_s: float) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _snmp_credentials(profile: CredentialProfile) -> list[SnmpCredentials]:
    """v3 first (it says 'wrong password' instead of staying silent), then v2c."""
    out = []
    for version in (SnmpVersion.V3, SnmpVersion.V2C):
        creds = SnmpCredentials.from_profile(profile, version)
        if creds is not None:
            out.append(creds)
    return out


class _Prober:
    def __init__(self, profiles: Sequence[CredentialProfile], settings: DiscoverySettings,
                 client: SnmpClient, remembered: dict[str, str] | None = None) -> None:
        self.profiles = profiles
        self.settings = settings
        self.client = client
        self.remembered = remembered or {}

    def order(self, address: str) -> list[CredentialProfile]:
        """The profiles for ``address``: the one that worked last time first."""
        first = self.remembered.get(address)
        return sorted(self.profiles, key=lambda p: p.name != first)

    async def probe(self, address: str) -> AddressResult:
        try:
            return await asyncio.wait_for(self._probe(address), self.settings.device_budget_s)
        except TimeoutError:
            return AddressResult(address, StatusCode.TIMEOUT,
                                 f"over its time budget of {self.settings.device_budget_s:.0f} s")

    async def _probe(self, address: str) -> AddressResult:
        auth_failures: list[str] = []
        for profile in self.order(address):
            for creds in _snmp_credentials(profile):
                try:
                    await self.client.get(address, creds, [SYS_OBJECT_ID])
                except AuthenticationFailed as exc:
                    auth_failures.append(f"profile {profile.name!r} SNMPv{creds.version}: {exc}")
                    continue
                except (DeviceTimeout, ConnectionRefused):
                    continue  # no agent there (or a v2c community it ignores)
                except CollectionError as exc:
                    auth_failures.append(f"profile {profile.name!r}: {exc}")
                    continue
                return await self._collect(address, profile, creds)
        # no SNMP: a NETCONF-only device still counts
        result = await self._netconf_only(address)
        if result is not None:
            return result
        if auth_failures:
            return AddressResult(address, StatusCode.AUTH_FAILED, "; ".join(auth_failures),
                                 profile=self.profiles[0].name if self.profiles else None)
        return AddressResult(address, StatusCode.TIMEOUT, "no SNMP or NETCONF answer")

    async def _collect(self, address: str, profile: CredentialProfile,
                       creds: SnmpCredentials) -> AddressResult:
        result = AddressResult(address, StatusCode.OK, profile=profile.name)
        try:
            result.snmp = await collect_snmp_facts(self.client, address, creds)
        except CollectionError as exc:
            return AddressResult(address, exc.status, str(exc), profile=profile.name)
        if result.snmp.partial:
            result.problems.append("SNMP tables failed: " + ", ".join(result.snmp.partial))
        await asyncio.gather(self._add_netconf(result, profile), self._add_cli(result, profile))
        if result.problems:
            result.status = StatusCode.PARTIAL
            result.detail = "; ".join(result.problems)
        return result

    async def _add_netconf(self, result: AddressResult, profile: CredentialProfile) -> None:
        if not profile.netconf_username or profile.netconf_password is None:
            return
        if not await _tcp_open(result.address, 830, self.settings.timeout_s):
            return
        try:
            result.netconf = await asyncio.to_thread(
                collect_netconf_facts, result.address, profile.netconf_username,
                profile.netconf_password.get_secret_value(), profile=profile.name)
        except CollectionError as exc:
            result.problems.append(f"NETCONF: {exc}")

    async def _add_cli(self, result: AddressResult, profile: CredentialProfile) -> None:
        if not profile.ssh_username or profile.ssh_password is None or result.snmp is None:
            return
        platform = identify_platform(result.snmp.system.descr, result.snmp.system.object_id)
        if platform.os_name != "FRRouting":  # the CLI platforms we have parsers for
            return
        if not await _tcp_open(result.address, 22, self.settings.timeout_s):
            return
        try:
            result.cli = await asyncio.to_thread(
                collect_cli_facts, result.address, profile.ssh_username,
                profile.ssh_password.get_secret_value(), platform="frr", profile=profile.name)
        except CollectionError as exc:
            result.problems.append(f"CLI: {exc}")

    async def _netconf_only(self, address: str) -> AddressResult | None:
        if not await _tcp_open(address, 830, self.settings.timeout_s):
            return None
        problems = []
        for profile in self.profiles:
            if not profile.netconf_username or profile.netconf_password is None:
                continue
            try:
                facts = await asyncio.to_thread(
                    collect_netconf_facts, address, profile.netconf_username,
                    profile.netconf_password.get_secret_value(), profile=profile.name)
            except CollectionError as exc:
                problems.append(f"profile {profile.name!r} NETCONF: {exc}")
                continue
            return AddressResult(address, StatusCode.OK, profile=profile.name, netconf=facts)
        if problems:
            return AddressResult(address, StatusCode.AUTH_FAILED, "; ".join(problems))
        return None


# -- facts -> observations ---------------------------------------------------------

def _identity_key(r: AddressResult) -> tuple[str, str]:
    if r.snmp is not None and r.snmp.engine_id:
        return "engine-id", r.snmp.engine_id
    if r.snmp is not None and r.snmp.lldp_local is not None and r.snmp.lldp_local.chassis_id:
        return "chassis-id", r.snmp.lldp_local.chassis_id
    if r.snmp is not None and r.snmp.system.name:
        return "sys-name", r.snmp.system.name
    if r.netconf is not None and r.netconf.system.hostname:
        return "sys-name", r.netconf.system.hostname
    return "address", r.address


def merge_by_identity(results: Sequence[AddressResult]) -> list[tuple[AddressResult, list[str],
                                                                      str | None]]:
    """One entry per device however many addresses answered for it: (the result kept,
    every address that answered, the rule that merged them or None)."""
    groups: dict[tuple[str, str], list[AddressResult]] = {}
    for r in results:
        groups.setdefault(_identity_key(r), []).append(r)
    out = []
    for (rule, value), members in groups.items():
        keep = next((m for m in members if m.status is StatusCode.OK), members[0])
        answered = [m.address for m in members]
        merged = (f"{rule} {value}: answered on {', '.join(answered)}"
                  if len(members) > 1 else None)
        out.append((keep, answered, merged))
    return out


def _observation(r: AddressResult, answered: list[str], rule: str | None,
                 capabilities: frozenset[str], roles: RoleRules) -> DeviceObservation:
    snmp, nc, cli = r.snmp, r.netconf, r.cli
    planes = tuple(p for p, facts in (("snmp", snmp), ("netconf", nc), ("cli", cli)) if facts)
    sys_descr = snmp.system.descr if snmp else ""
    sys_oid = snmp.system.object_id if snmp else ""
    platform = identify_platform(sys_descr, sys_oid)
    os_name, os_version = platform.os_name, platform.os_version
    if cli is not None and cli.os_version:
        os_name, os_version = cli.os_name or os_name, cli.os_version
    elif nc is not None and nc.system.os_name and not os_name:
        os_name, os_version = nc.system.os_name, nc.system.os_release
    evidence = DeviceEvidence(sys_descr=sys_descr, sys_object_id=sys_oid,
                              sys_services=snmp.system.services if snmp else None,
                              netconf=nc is not None, lldp_capabilities=capabilities)
    role, reason = roles.decide(evidence)
    name = (snmp.system.name if snmp and snmp.system.name else
            nc.system.hostname if nc and nc.system.hostname else r.address)
    interfaces: list[InterfaceObservation] = []
    addrs: list[AddressObservation] = []
    hardware: list[HardwareObservation] = []
    neighbors: list[NeighborObservation] = []
    serial = None
    if snmp is not None:
        by_index = {i.if_index: i.name for i in snmp.interfaces}
        cli_descr = cli.descriptions if cli is not None else {}
        interfaces = [InterfaceObservation(
            name=i.name, if_index=i.if_index, description=i.descr or None,
            # the operator's description: ifAlias, else the CLI's (FRR keeps it out of the
            # kernel, so its snmpd cannot see it)
            alias=i.alias or cli_descr.get(i.name) or None,
            if_type=i.if_type,
            speed_mbps=round(i.speed_mbps) if i.speed_mbps is not None else None,
            mac=i.mac or None, mtu=i.mtu, admin_status=i.admin_status or None,
            oper_status=i.oper_status or None) for i in snmp.interfaces]
        addrs = [AddressObservation(a.address, a.prefix_length,
                                    by_index.get(a.if_index) if a.if_index is not None else None)
                 for a in snmp.addresses if _inventory_address(a.address)]
        hardware = [HardwareObservation(
            ent_index=e.index, name=e.name or None, description=e.descr or None,
            hw_class=e.physical_class or None, serial=e.serial_num or None,
            model=e.model_name or None, firmware_rev=e.firmware_rev or None,
            software_rev=e.software_rev or None, hardware_rev=e.hardware_rev or None,
            parent_index=e.parent) for e in snmp.entities]
        serial = next((e.serial_num for e in snmp.entities if e.serial_num), None)
        neighbors = [NeighborObservation(
            local_interface=n.local_port, remote_chassis_id=n.chassis_id,
            remote_port_id=n.port_id, remote_sys_name=n.sys_name or None,
            remote_port_description=n.port_descr or None, remote_mgmt_address=n.mgmt_address)
            for n in snmp.lldp_neighbors]
    elif nc is not None:
        interfaces = [InterfaceObservation(
            name=i.name, mac=i.phys_address, oper_status=i.oper_status,
            admin_status=i.admin_status,
            speed_mbps=(i.speed_bps // 1_000_000) if i.speed_bps else None)
            for i in nc.interfaces]
    return DeviceObservation(
        name=name, mgmt_address=answered[0], addresses_answered=tuple(answered),
        sys_name=snmp.system.name if snmp else (nc.system.hostname if nc else None),
        sys_object_id=sys_oid or None, sys_descr=sys_descr or None,
        engine_id=snmp.engine_id if snmp else None,
        chassis_id=snmp.lldp_local.chassis_id if snmp and snmp.lldp_local else None,
        serial=serial, vendor=platform.vendor, model=platform.model, os_name=os_name,
        os_version=os_version, role=role, role_reason=reason, planes=planes,
        credential_profile=r.profile, status=r.status, status_detail=r.detail or None,
        identity_rule=rule, interfaces=tuple(interfaces), addresses=tuple(addrs),
        hardware=tuple(hardware), neighbors=tuple(neighbors))


def _inventory_address(text: str) -> bool:
    """Loopback and link-local addresses say nothing about a device: left out."""
    try:
        addr = ip_address(text)
    except ValueError:
        return False
    return not (addr.is_loopback or addr.is_link_local or addr.is_unspecified)


def _capabilities_seen(results: Sequence[AddressResult]) -> dict[str, frozenset[str]]:
    """Chassis id -> capabilities enabled, as neighbours report them over LLDP."""
    seen: dict[str, set[str]] = {}
    for r in results:
        for n in r.snmp.lldp_neighbors if r.snmp else ():
            if n.chassis_id:
                seen.setdefault(n.chassis_id, set()).update(
                    c.lower() for c in n.capabilities_enabled)
    return {k: frozenset(v) for k, v in seen.items()}


def _remembered_profiles(session: Session) -> dict[str, str]:
    """Address -> the credential profile that worked for the device holding it."""
    out: dict[str, str] = {}
    devices = {d.id: d for d in session.exec(select(Device)).all() if d.credential_profile}
    for addr in session.exec(select(IpAddress)).all():
        dev = devices.get(addr.device_id)
        if dev is not None and dev.credential_profile:
            out[addr.address] = dev.credential_profile
    for dev in devices.values():
        if dev.mgmt_address and dev.credential_profile:
            out[dev.mgmt_address] = dev.credential_profile
    return out


def _known_name(session: Session, address: str) -> str | None:
    dev = session.exec(select(Device).where(Device.mgmt_address == address)).first()
    if dev is not None:
        return dev.name
    ip = session.exec(select(IpAddress).where(IpAddress.address == address)).first()
    if ip is not None:
        owner = session.get(Device, ip.device_id)
        return owner.name if owner else None
    return None


async def discover(targets: Sequence[IPv4Network], *, profiles: Sequence[CredentialProfile],
                   scope: Scope, settings: DiscoverySettings, engine: Engine,
                   progress: Progress = _noop, roles: RoleRules | None = None,
                   client: SnmpClient | None = None,
                   run_id: int | None = None) -> DiscoveryResult:
    """Discover ``targets`` and reconcile what answered into the inventory.

    The scope is checked before any packet is sent (:class:`ScopeError`). ``run_id``:
    a :class:`DiscoveryRun` row made beforehand (a run queued over REST) to record this
    run in, instead of a new one.
    """
    scope.check(targets)
    started = time.monotonic()
    roles = roles or load_role_rules(settings.roles_file)
    hosts = [str(a) for a in addresses(targets)]
    own_client = client is None
    client = client or SnmpClient(timeout_s=settings.timeout_s, retries=settings.retries,
                                  max_in_flight=settings.concurrency)
    with Session(engine) as session:
        remembered = _remembered_profiles(session)
    prober = _Prober(profiles, settings, client, remembered)
    gate = asyncio.Semaphore(settings.concurrency)
    done = 0
    swept = SweepResult()
    if settings.sweep and sweep_available():
        progress(0, len(hosts), "ARP/ICMP sweep")
        swept = await asyncio.to_thread(sweep, [IPv4Address(h) for h in hosts],
                                        rate_pps=settings.sweep_rate_pps)

    async def one(address: str) -> AddressResult:
        nonlocal done
        if swept.absent(address):  # ARP proves nothing is there: no SNMP timeouts to wait
            result = AddressResult(address, StatusCode.UNREACHABLE, "no ARP answer")
        else:
            async with gate:
                result = await prober.probe(address)
        done += 1
        progress(done, len(hosts), address)
        return result

    try:
        results = list(await asyncio.gather(*(one(h) for h in hosts)))
    finally:
        if own_client:
            await client.close()
    answered = [r for r in results if r.answered]
    capabilities = _capabilities_seen(answered)
    observations = []
    for keep, addrs, rule in merge_by_identity(answered):
        chassis = keep.snmp.lldp_local.chassis_id if keep.snmp and keep.snmp.lldp_local else None
        observations.append(_observation(keep, addrs, rule,
                                         capabilities.get(chassis or "", frozenset()), roles))
    with Session(engine) as session:
        failed = [FailedTarget(r.address, r.status,
                               _failure_detail(session, r), r.profile)
                  for r in results if not r.answered and r.status not in SILENT]
        failed_obs = [_failed_observation(session, r) for r in results
                      if not r.answered and r.status not in SILENT]
        run = (session.get(DiscoveryRun, run_id) if run_id is not None else None) \
            or DiscoveryRun(started_at=datetime.now(UTC))
        run.targets = run.targets or ",".join(map(str, targets))
        run.profiles = ",".join(p.name for p in profiles)
        run.status = "running"
        session.add(run)
        session.commit()
        session.refresh(run)
        summary: ReconcileSummary = reconcile(
            session, run, [*observations, *(o for o in failed_obs if o is not None)],
            scope=list(targets))
        links, unresolved = build_links(session, run, observations,
                                        device_ids=summary.device_ids)
        link_count = len(links)
        confirmed = sum(1 for link in links if link.confirmed)
        run.finished_at = datetime.now(UTC)
        run.status = "ok" if not failed else "partial"
        session.add(run)
        result = DiscoveryResult(
            run_id=run.id or 0, targets=[str(t) for t in targets],
            addresses_probed=len(hosts),
            no_answer=sum(1 for r in results if not r.answered and r.status in SILENT),
            found=sorted(o.name for o in observations), new=summary.new,
            changed=summary.changed, missing=summary.missing, failed=failed,
            partial=sorted(o.name for o in observations if o.status is StatusCode.PARTIAL),
            links=link_count, links_confirmed=confirmed,
            unresolved_neighbors=unresolved, seconds=time.monotonic() - started,
            arp_answered=len(swept.arp), icmp_answered=len(swept.icmp))
        record_run_detail(session, result.run_id, outcome=result.outcome())
        session.commit()
    return result


def _failure_detail(session: Session, r: AddressResult) -> str:
    name = _known_name(session, r.address)
    who = f"{name} ({r.address})" if name else r.address
    return f"{who}: {r.detail}"


def _failed_observation(session: Session, r: AddressResult) -> DeviceObservation | None:
    """A known device that now fails (auth, refused) keeps its record, with the new status."""
    name = _known_name(session, r.address)
    if name is None:
        return None
    return replace(DeviceObservation(name=name, mgmt_address=r.address),
                   status=r.status, status_detail=r.detail, credential_profile=r.profile,
                   addresses_answered=(r.address,))


def lab_targets(subnet: IPv4Network, gateway: IPv4Address) -> list[IPv4Network]:
    """A deployed lab's mgmt subnet as targets (the gateway is the host itself)."""
    return [IPv4Network(f"{a}/32") for a in subnet.hosts() if a != gateway]
