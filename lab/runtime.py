"""Deploy a parsed topology on this machine, and operate and destroy it.

No Docker: each node is a network namespace with a holder process for its mount
and UTS namespaces (see :mod:`lab.pod`); links are veth pairs; the mgmt network
is a bridge in the root namespace holding the gateway address. The lab never
routes outward: no default route via mgmt and no NAT are ever configured.

Every kernel object and process is recorded in the lab's state file the moment
it exists, so a deploy that fails half-way, or a killed run, is undone exactly.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from ipaddress import IPv4Address, ip_network
from pathlib import Path
from typing import Any

from lab import probe
from lab.daemons import (
    RESTARTABLE,
    prepare_node,
    required_binaries,
    start_daemons,
    stop_daemons,
)
from lab.model import LabCredentials, NodeSpec, Role, Topology
from lab.pod import Pod, which
from lab.proc import ProcRef, end_processes, netns_exists, netns_pids, run
from lab.state import (
    STATE_FILE,
    LabState,
    NodeState,
    bridge_name,
    mgmt_veth_name,
    netns_name,
    netns_prefix,
)
from lab.traffic import TRANSIENT_EXIT
from topology.credentials import CredentialProfile, CredentialStore, SnmpV3User
from topology.errors import LabRuntimeError, LabStateError, SwitchboardError
from topology.settings import Settings, get_settings

__all__ = [
    "DestroyReport", "Lab", "NodeStatus", "TrafficReport", "clean_leftovers", "deploy",
    "has_leftovers", "running_labs",
]

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
DEFAULT_TRAP_PORT = 162


def _noop(_: str) -> None:
    pass


@dataclass
class DestroyReport:
    """What destroy removed; ``left`` lists anything it could not remove."""

    lab: str
    processes: int = 0
    namespaces: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)


@dataclass
class NodeStatus:
    """One row of ``lab inspect``; ``None`` means the plane is not served by this role."""

    name: str
    kind: str
    role: str
    mgmt_ipv4: str
    state: str
    snmp: bool | None
    ssh_cli: bool | None
    netconf: bool | None


@dataclass
class TrafficReport:
    """What ``lab traffic`` moved: payload bytes over TCP from ``src`` to ``dst``."""

    src: str
    dst: str
    dst_address: str
    bytes_sent: int
    bytes_received: int
    seconds: float
    attempts: int = 1

    @property
    def rate_mbps(self) -> float:
        return self.bytes_sent * 8 / self.seconds / 1e6 if self.seconds else 0.0


def running_labs(settings: Settings | None = None) -> list[str]:
    """Names of the labs that have a state directory on this machine."""
    labs = (settings or get_settings()).labs_dir
    if not labs.is_dir():
        return []
    return sorted(p.parent.name for p in labs.glob(f"*/{STATE_FILE}"))


def _require_root() -> None:
    if os.geteuid() != 0:
        raise LabRuntimeError("the lab needs root: it creates network namespaces, veth pairs "
                              "and bridges (run as root, or via sudo)", operation="preflight")


def _preflight(topology: Topology) -> None:
    _require_root()
    missing = sorted({b for n in topology.nodes.values() for b in required_binaries(n.role)
                      if which(b) is None and not Path(b).exists()})
    if missing:
        raise LabRuntimeError(
            "missing programs: " + ", ".join(missing) + ". Install them with: apt-get install "
            "snmpd snmp frr frr-snmp lldpd openssh-server netconfd "
            "netconfd-module-ietf-interfaces netconfd-module-ietf-system iproute2",
            lab=topology.name, operation="preflight")
    subnet = topology.mgmt.subnet
    for route in json.loads(run(["ip", "-j", "-4", "route", "show"]).stdout or "[]"):
        dst = route.get("dst", "")
        if dst in ("", "default"):
            continue
        net = ip_network(dst if "/" in dst else f"{dst}/32", strict=False)
        if net.version == 4 and net.overlaps(subnet):
            raise LabRuntimeError(
                f"mgmt subnet {subnet} of lab {topology.name!r} overlaps {net} already routed "
                f"on {route.get('dev', '?')} (another lab or a host network); choose another "
                "mgmt.ipv4-subnet", lab=topology.name, operation="preflight")


def _parse_trap_target(value: str | None, topology: Topology) -> tuple[str, int]:
    if not value:
        return str(topology.mgmt.gateway), DEFAULT_TRAP_PORT
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = value, str(DEFAULT_TRAP_PORT)
    try:
        address, number = IPv4Address(host), int(port)
    except ValueError:
        raise LabRuntimeError(f"trap target {value!r} is not HOST:PORT with an IPv4 address",
                              lab=topology.name, operation="preflight") from None
    if not 0 < number < 65536:
        raise LabRuntimeError(f"trap target port {number} out of range", lab=topology.name,
                              operation="preflight")
    if address in (topology.mgmt.subnet.network_address,
                   topology.mgmt.subnet.broadcast_address):
        raise LabRuntimeError(f"trap target {address} is the mgmt subnet's network or broadcast "
                              "address", lab=topology.name, operation="preflight")
    if address not in topology.mgmt.subnet:
        raise LabRuntimeError(
            f"trap target {address} is outside the lab's mgmt subnet {topology.mgmt.subnet}: "
            f"lab traffic never leaves the lab (the host is {topology.mgmt.gateway})",
            lab=topology.name, operation="preflight")
    return str(address), number


def _require_traversable(lab_dir: Path) -> None:
    """FRR runs as user frr and the SSH user logs in to node files: every parent of the
    lab's directory must let others through."""
    lab_dir.parent.mkdir(parents=True, exist_ok=True)
    for parent in lab_dir.parents:
        if not os.stat(parent).st_mode & 0o001:
            raise LabRuntimeError(
                f"{parent} is not traversable by other users (mode "
                f"{oct(os.stat(parent).st_mode & 0o777)}); the lab's daemons run as users frr "
                f"and the lab's SSH user under {lab_dir}: chmod o+x {parent}, or set "
                "SWITCHBOARD_HOME elsewhere", operation="preflight")


def deploy(topology: Topology, *, trap_target: str | None = None,
           settings: Settings | None = None, progress: Progress = _noop) -> Lab:
    """Deploy ``topology``; on any failure, remove everything made so far and raise."""
    settings = settings or get_settings()
    trap_host, trap_port = _parse_trap_target(trap_target, topology)
    _require_root()
    lab_dir = settings.labs_dir / topology.name
    if (lab_dir / STATE_FILE).exists():
        old = Lab(LabState.load(lab_dir), settings)
        if old.state.alive():
            raise LabStateError(
                f"lab {topology.name!r} is already running (deployed {old.state.created} from "
                f"{old.state.source_file}); destroy it first: switchboard lab destroy "
                f"{topology.name}", lab=topology.name)
        progress(f"cleaning leftovers of an earlier run of {topology.name}")
        old.destroy()
    elif stray := _stray_objects(topology.name):
        live = [pid for ns in stray for pid in netns_pids(ns)]
        if live:
            raise LabStateError(
                f"lab {topology.name!r} has namespaces on this machine with {len(live)} running "
                f"processes but no state under {settings.labs_dir} (deployed with another "
                f"SWITCHBOARD_HOME?); destroy it there, or end it with: switchboard lab "
                f"destroy {topology.name}", lab=topology.name)
        progress(f"cleaning leftovers of an earlier run of {topology.name}")
        clean_leftovers(topology.name, settings)
    _preflight(topology)
    _require_traversable(lab_dir)
    if lab_dir.exists():
        shutil.rmtree(lab_dir)
    lab_dir.mkdir(parents=True)
    os.chmod(lab_dir, 0o755)  # noqa: S103 - daemons run as frr and the lab's SSH user
    state = LabState(
        name=topology.name, directory=lab_dir, source_file=str(topology.path),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        subnet=str(topology.mgmt.subnet), gateway=str(topology.mgmt.gateway),
        bridge=bridge_name(topology.name), trap_host=trap_host, trap_port=trap_port)
    state.save()
    state.save_credentials(topology.credentials)
    lab = Lab(state, settings)
    try:
        lab._build(topology, progress)
    except BaseException:
        progress("deploy failed: removing what was made")
        lab.destroy()
        raise
    return lab


def _stray_objects(lab: str) -> list[str]:
    prefix = netns_prefix(lab)
    names = [ln.split()[0] for ln in run(["ip", "netns", "list"]).stdout.splitlines() if ln]
    stray = [n for n in names if n.startswith(prefix)]
    if Path("/sys/class/net", bridge_name(lab)).exists():
        stray.append(bridge_name(lab))
    return stray


def has_leftovers(lab: str) -> bool:
    """True when namespaces or the bridge of ``lab`` exist on this machine."""
    return bool(_stray_objects(lab))


def clean_leftovers(lab: str, settings: Settings | None = None) -> DestroyReport:
    """Remove a lab's namespaces and bridge when its state file is gone (a killed run).

    Processes are found through the lab's own namespaces (``ip netns pids``), never
    by name.
    """
    _require_root()
    report = DestroyReport(lab=lab)
    bridge = bridge_name(lab)
    for name in _stray_objects(lab):
        if name == bridge:
            continue
        refs = [r for r in (ProcRef.of(p) for p in netns_pids(name)) if r is not None]
        report.processes += len(refs)
        report.left += [f"pid {r.pid}" for r in end_processes(refs)]
        run(["ip", "netns", "delete", name], check=False)
        report.namespaces.append(name)
    if Path("/sys/class/net", bridge).exists():
        run(["ip", "link", "delete", bridge], check=False)
        report.links.append(bridge)
    _drop_profile(lab, settings)
    return report


def _drop_profile(lab: str, settings: Settings | None) -> None:
    store = CredentialStore(settings)
    try:
        if store.load(lab).source == f"lab:{lab}":
            store.delete(lab)
    except SwitchboardError as exc:  # absent or unreadable: nothing of ours to drop
        log.debug("no lab profile to drop for %s: %s", lab, exc)


class Lab:
    """A deployed lab: operate its nodes and links, inspect it, destroy it."""

    def __init__(self, state: LabState, settings: Settings | None = None) -> None:
        self.state = state
        self.settings = settings or get_settings()

    @property
    def name(self) -> str:
        return self.state.name

    @classmethod
    def load(cls, name: str | None = None, settings: Settings | None = None) -> Lab:
        """The lab called ``name``; without a name, the only lab there is."""
        settings = settings or get_settings()
        labs = running_labs(settings)
        if name is None:
            if not labs:
                raise LabStateError("no lab is deployed (switchboard lab deploy FILE)")
            if len(labs) > 1:
                raise LabStateError(f"several labs are deployed ({', '.join(labs)}): name one")
            name = labs[0]
        if name not in labs:
            known = f" (deployed: {', '.join(labs)})" if labs else ""
            raise LabStateError(f"no lab named {name!r} is deployed{known}", lab=name)
        return cls(LabState.load(settings.labs_dir / name), settings)

    @property
    def credentials(self) -> LabCredentials:
        return self.state.load_credentials()

    def node(self, name: str) -> NodeState:
        try:
            return self.state.nodes[name]
        except KeyError:
            raise LabStateError(f"lab {self.name!r} has no node {name!r} (nodes: "
                                f"{', '.join(self.state.nodes)})", lab=self.name) from None

    def pod(self, name: str) -> Pod:
        return Pod(self.state, self.node(name))

    # -- deploy ---------------------------------------------------------------
    def _build(self, topology: Topology, progress: Progress) -> None:
        st = self.state
        progress(f"mgmt bridge {st.bridge} {st.gateway}/{topology.mgmt.subnet.prefixlen}")
        run(["ip", "link", "add", st.bridge, "type", "bridge"], operation="mgmt bridge")
        st.bridge_created = True
        st.save()
        run(["ip", "addr", "add", f"{st.gateway}/{topology.mgmt.subnet.prefixlen}",
             "dev", st.bridge], operation="mgmt bridge address")
        run(["ip", "link", "set", st.bridge, "up"], operation="mgmt bridge up")
        for index, spec in enumerate(topology.nodes.values()):
            progress(f"node {spec.name} ({spec.role})")
            self._create_node(index, spec, topology)
        for link in topology.links:
            a, b = self.node(link.a.node), self.node(link.b.node)
            run(["ip", "link", "add", link.a.iface, "netns", a.netns, "type", "veth",
                 "peer", "name", link.b.iface, "netns", b.netns],
                operation=f"link {link.a} -- {link.b}")
            st.links.append([str(link.a), str(link.b)])
            st.save()
            for end, node in ((link.a, a), (link.b, b)):
                run(["ip", "-n", node.netns, "link", "set", end.iface, "up"],
                    node=node.name, operation=f"{end.iface} up")
        creds = topology.credentials
        for spec in topology.nodes.values():
            pod = self.pod(spec.name)
            prepare_node(pod, spec, creds, st.trap_host, st.trap_port)
            st.save()
        for spec in topology.nodes.values():
            if spec.role.managed:
                progress(f"daemons on {spec.name}")
            start_daemons(self.pod(spec.name), creds)
        for spec in topology.nodes.values():
            self._run_exec(spec.name, check=True)
        progress("waiting for every node to answer")
        self._wait_ready(timeout_s=30.0)
        CredentialStore(self.settings).save(self.profile())
        st.status = "running"
        st.save()

    def _create_node(self, index: int, spec: NodeSpec, topology: Topology) -> None:
        st, subnet = self.state, topology.mgmt.subnet
        node = NodeState(name=spec.name, kind=spec.kind, image=spec.image, role=spec.role,
                         mgmt_ipv4=str(spec.mgmt_ipv4), netns=netns_name(st.name, spec.name),
                         host_veth=mgmt_veth_name(st.name, index),
                         interfaces=topology.interfaces(spec.name), exec=list(spec.exec))
        st.nodes[spec.name] = node
        run(["ip", "netns", "add", node.netns], node=spec.name, operation="netns")
        st.save()
        run(["ip", "-n", node.netns, "link", "set", "lo", "up"], node=spec.name, operation="lo")
        st.node_dir(spec.name).mkdir(parents=True, exist_ok=True)
        Pod(st, node).start_holder()
        run(["ip", "link", "add", node.host_veth, "type", "veth", "peer", "name", "mgmt0",
             "netns", node.netns], node=spec.name, operation="mgmt veth")
        run(["ip", "link", "set", node.host_veth, "master", st.bridge, "up"],
            node=spec.name, operation="mgmt veth up")
        run(["ip", "-n", node.netns, "addr", "add", f"{spec.mgmt_ipv4}/{subnet.prefixlen}",
             "dev", "mgmt0"], node=spec.name, operation="mgmt address")
        run(["ip", "-n", node.netns, "link", "set", "mgmt0", "up"], node=spec.name,
            operation="mgmt0 up")

    def _run_exec(self, name: str, *, check: bool) -> list[str]:
        """Run the node's ``exec`` commands (containerlab: after its links are up)."""
        failures = []
        pod = self.pod(name)
        for command in pod.node.exec:
            proc = pod.run(shlex.split(command), operation=f"exec {command!r}", check=False)
            if proc.returncode != 0:
                reason = (proc.stderr or proc.stdout).strip()
                if check:
                    raise LabRuntimeError(f"node {name}: exec {command!r} failed: {reason}",
                                          lab=self.name, node=name, operation="exec")
                failures.append(f"{command}: {reason}")
        return failures

    def _wait_ready(self, timeout_s: float) -> None:
        creds = self.credentials
        deadline = time.monotonic() + timeout_s
        pending = [n for n in self.state.nodes.values() if n.role.managed and not n.stopped]
        while pending:
            with ThreadPoolExecutor(max_workers=8) as pool:
                ready = list(pool.map(lambda n: probe.node_ready(n, creds), pending))
            pending = [n for n, ok in zip(pending, ready, strict=True) if not ok]
            if pending and time.monotonic() > deadline:
                names = ", ".join(n.name for n in pending)
                raise LabRuntimeError(
                    f"nodes not answering after {timeout_s:.0f} s: {names} (logs under "
                    f"{self.state.directory}/nodes/NODE/log)", lab=self.name,
                    operation="wait ready")
            if pending:
                time.sleep(0.5)

    def profile(self) -> CredentialProfile:
        """The lab's credentials as the credential profile named after the lab."""
        c = self.credentials
        return CredentialProfile.model_validate({
            "name": self.name, "source": f"lab:{self.name}",
            "snmp_community": c.snmp_community,
            "snmp_v3": SnmpV3User.model_validate({
                "user": c.snmpv3_user, "auth_protocol": c.snmpv3_auth_protocol,
                "auth_key": c.snmpv3_auth_key, "priv_protocol": c.snmpv3_priv_protocol,
                "priv_key": c.snmpv3_priv_key}),
            "ssh_username": c.ssh_user, "ssh_password": c.ssh_password,
            "netconf_username": c.ssh_user, "netconf_password": c.ssh_password})

    # -- destroy --------------------------------------------------------------
    def destroy(self) -> DestroyReport:
        """End exactly this lab's processes and remove every kernel object it made."""
        _require_root()
        st = self.state
        report = DestroyReport(lab=st.name)
        refs = st.processes()
        for node in st.nodes.values():
            for pid in netns_pids(node.netns):
                ref = ProcRef.of(pid)
                if ref is not None and ref not in refs:
                    refs.append(ref)
        report.processes = sum(1 for r in refs if r.alive())
        report.left += [f"pid {r.pid}" for r in end_processes(refs)]
        for node in st.nodes.values():
            if netns_exists(node.netns):
                run(["ip", "netns", "delete", node.netns], check=False)
                report.namespaces.append(node.netns)
            if Path("/sys/class/net", node.host_veth).exists():
                run(["ip", "link", "delete", node.host_veth], check=False)
        if Path("/sys/class/net", st.bridge).exists():
            run(["ip", "link", "delete", st.bridge], check=False)
            report.links.append(st.bridge)
        report.left += [n.netns for n in st.nodes.values() if netns_exists(n.netns)]
        if Path("/sys/class/net", st.bridge).exists():
            report.left.append(st.bridge)
        _drop_profile(st.name, self.settings)
        if not report.left:
            shutil.rmtree(st.directory, ignore_errors=True)
        return report

    # -- fault injection ----------------------------------------------------------
    def set_link(self, node: str, iface: str, *, up: bool) -> None:
        """Set a node's interface administratively up or down (its peer loses carrier)."""
        n = self.node(node)
        if iface not in (*n.interfaces, "mgmt0"):
            raise LabStateError(f"node {node} has no interface {iface!r} (interfaces: "
                                f"{', '.join([*n.interfaces, 'mgmt0'])})", lab=self.name)
        run(["ip", "-n", n.netns, "link", "set", iface, "up" if up else "down"],
            node=node, operation=f"link {'up' if up else 'down'} {iface}")

    def restart_daemon(self, node: str, daemon: str) -> None:
        """End one daemon of a node (by its recorded PID) and start it again, as an agent
        restart on a real device (its sysUpTime starts over)."""
        if daemon not in RESTARTABLE:
            raise LabStateError(f"restarting {daemon!r} is not supported (supported: "
                                f"{', '.join(RESTARTABLE)})", lab=self.name)
        n = self.node(node)
        ref = n.daemons.get(daemon)
        if ref is not None and end_processes([ref]):
            raise LabRuntimeError(f"{daemon} (pid {ref.pid}) would not end", lab=self.name,
                                  node=node, operation=f"restart {daemon}")
        RESTARTABLE[daemon](self.pod(node))

    def stop_node(self, name: str) -> None:
        """Power a node off: end its daemons and take all its interfaces down."""
        n = self.node(name)
        left = stop_daemons(self.pod(name))
        for iface in (*n.interfaces, "mgmt0"):
            run(["ip", "-n", n.netns, "link", "set", iface, "down"], node=name,
                operation=f"{iface} down", check=False)
        n.stopped = True
        self.state.save()
        if left:
            raise LabRuntimeError(f"processes would not end: {[r.pid for r in left]}",
                                  lab=self.name, node=name, operation="stop")

    def start_node(self, name: str, *, timeout_s: float = 30.0) -> list[str]:
        """Power a node back on; returns exec commands that failed on re-run (if any)."""
        n = self.node(name)
        pod = self.pod(name)
        for iface in ("mgmt0", *n.interfaces):
            run(["ip", "-n", n.netns, "link", "set", iface, "up"], node=name,
                operation=f"{iface} up")
        if n.role is Role.SWITCH:
            run(["ip", "-n", n.netns, "link", "set", "br0", "up"], node=name,
                operation="br0 up")
        if not n.daemons:
            start_daemons(pod, self.credentials)
        n.stopped = False
        self.state.save()
        failures = self._run_exec(name, check=False) if n.role is Role.HOST else []
        self._wait_ready(timeout_s)
        return failures

    # -- use ---------------------------------------------------------------------
    def exec(self, node: str, argv: Sequence[str], *, timeout_s: float = 60.0,
             capture: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command inside a node (its network, mount and UTS namespaces)."""
        pod = self.pod(node)
        return subprocess.run(pod.enter(argv), capture_output=capture, text=True,
                              timeout=timeout_s, check=False)

    def data_address(self, node: str) -> str:
        """The node's address on the data plane: its loopback /32 when it has one
        (routers), else its first address on a data interface. Never mgmt."""
        n = self.node(node)
        raw = run(["ip", "-n", n.netns, "-j", "-4", "addr", "show"]).stdout
        loopback: list[str] = []
        data: list[str] = []
        for link in json.loads(raw or "[]"):
            for addr in link.get("addr_info", []):
                ip = IPv4Address(addr["local"])
                if ip.is_loopback or link["ifname"] == "mgmt0":
                    continue
                (loopback if link["ifname"] == "lo" else data).append(str(ip))
        found = loopback + data
        if not found:
            raise LabStateError(f"node {node} has no data-plane address", lab=self.name)
        return str(found[0])

    def traffic(self, src: str, dst: str, nbytes: int, *, port: int = 5201,
                timeout_s: float = 120.0, wait_s: float = 30.0,
                attempts: int = 3) -> TrafficReport:
        """Send ``nbytes`` of TCP payload from node ``src`` to node ``dst`` over the data plane,
        waiting up to ``wait_s`` for a route (routing converges after deploy or restart).

        A transfer cut by a route that flaps mid-way is retried whole, up to ``attempts``
        times; the report says how many it took (the counters saw every attempt)."""
        if nbytes <= 0:
            raise LabStateError("--bytes must be positive", lab=self.name)
        address = self.data_address(dst)
        for attempt in range(1, attempts + 1):
            result = self._transfer(src, dst, address, nbytes, port, timeout_s, wait_s)
            if result is not None:
                sent, got = result
                return TrafficReport(src=src, dst=dst, dst_address=address,
                                     bytes_sent=sent["sent"], bytes_received=got["received"],
                                     seconds=sent["seconds"], attempts=attempt)
        raise LabRuntimeError(f"traffic from {src} to {dst} ({address}): the route kept "
                              f"flapping in {attempts} attempts", lab=self.name, node=src,
                              operation="traffic")

    def _transfer(self, src: str, dst: str, address: str, nbytes: int, port: int,
                  timeout_s: float, wait_s: float) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """One transfer; ``None`` when a flapping route cut it (worth another attempt)."""
        tool = [sys.executable, "-m", "lab.traffic"]
        receiver = subprocess.Popen(
            self.pod(dst).enter([*tool, "recv", "--port", str(port)]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert receiver.stdout is not None
            ready = receiver.stdout.readline()
            if not ready.startswith("ready"):
                raise LabRuntimeError(f"traffic receiver on {dst} failed: "
                                      f"{receiver.stderr.read() if receiver.stderr else ''}",
                                      lab=self.name, node=dst, operation="traffic")
            sender = self.pod(src).run([*tool, "send", address, str(port), str(nbytes),
                                        "--wait", str(wait_s)],
                                       operation="traffic send", check=False,
                                       timeout_s=timeout_s)
            if sender.returncode == TRANSIENT_EXIT:
                log.info("traffic %s -> %s: %s", src, dst, sender.stderr.strip())
                return None
            if sender.returncode != 0:
                raise LabRuntimeError(f"traffic from {src} to {dst} ({address}) failed: "
                                      f"{sender.stderr.strip()}", lab=self.name, node=src,
                                      operation="traffic")
            out, _ = receiver.communicate(timeout=timeout_s)
        finally:
            if receiver.poll() is None:
                receiver.kill()
                receiver.wait()
        return json.loads(sender.stdout), json.loads(out)

    # -- inspect -------------------------------------------------------------------
    def inspect(self) -> list[NodeStatus]:
        """One row per node: what runs and which management planes answer right now."""
        creds = self.credentials

        def row(n: NodeState) -> NodeStatus:
            holder = n.holder is not None and n.holder.alive()
            daemons_up = all(r.alive() for r in n.daemons.values())
            state = ("stopped" if n.stopped else "running" if holder and daemons_up
                     else "degraded" if holder else "dead")
            planes = probe.planes(n, creds) if holder and not n.stopped else \
                probe.Planes(None if not n.role.managed else False,
                             False if n.role is Role.ROUTER else None,
                             False if n.role is Role.VNF else None)
            return NodeStatus(n.name, n.kind, n.role.value, n.mgmt_ipv4, state,
                              planes.snmp, planes.ssh_cli, planes.netconf)

        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(row, self.state.nodes.values()))
