"""pytest plugin: deploy a lab once per test session and hand tests node handles.

Fixtures:
  ``mini_lab`` / ``core_lab``  the shipped topologies, deployed once per session
                               under test names (``t-mini``, ``t-core``) and their own
                               mgmt subnets, so they run beside a user's own labs
                               (``SWITCHBOARD_TEST_SLOT=N`` moves a session to slot N)
  ``lab_factory``              deploy any topology file once per session
  ``lab_home``                 the session's private SWITCHBOARD_HOME

Every lab deployed here is destroyed at the end of the session, even when tests
fail. Tests that need a lab are marked ``lab``; where the machine cannot run one
(not root, missing Debian packages) they are skipped with the reason, or fail
when ``SWITCHBOARD_REQUIRE_LAB=1`` (CI sets it: there the lab must run).
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from lab.daemons import required_binaries
from lab.model import LabCredentials, Role
from lab.parser import load_topology
from lab.pod import which
from lab.runtime import Lab, deploy
from topology.settings import Settings, get_settings

TOPOLOGIES = Path(__file__).parent / "topologies"
REQUIRE_ENV = "SWITCHBOARD_REQUIRE_LAB"
SLOT_ENV = "SWITCHBOARD_TEST_SLOT"


def current_slot() -> int:
    """Which slot this test session uses (``SWITCHBOARD_TEST_SLOT``, 0 to 9): sessions in
    different slots run side by side with their own lab names and mgmt subnets."""
    slot = int(os.environ.get(SLOT_ENV, "0"))
    if not 0 <= slot <= 9:
        raise ValueError(f"{SLOT_ENV} must be 0..9, not {slot}")
    return slot


def slot_lab_name(base: str) -> str:
    """``t-core`` in slot 0, ``t3-core`` in slot 3."""
    slot = current_slot()
    return f"t-{base}" if slot == 0 else f"t{slot}-{base}"


def slot_subnet(offset: int) -> str:
    """Test labs live in 172.31.0.0/16, away from the shipped files' 172.20.x.0/24:
    slot N uses 172.31.(20 + 20N + offset).0/24, offset 0..19."""
    return f"172.31.{20 + 20 * current_slot() + offset}.0/24"


def lab_unavailable() -> str | None:
    """Why this machine cannot run a lab, or ``None`` when it can."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, veth pairs)"
    missing = sorted({b for role in Role for b in required_binaries(role)
                      if which(b) is None and not Path(b).exists()})
    if missing:
        return "missing lab programs: " + ", ".join(missing) + " (run scripts/install.sh)"
    return None


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``lab`` marker."""
    config.addinivalue_line(
        "markers", "lab: needs root and the lab's Debian packages (deploys real daemons)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``lab`` tests, with the reason, where the machine cannot run a lab."""
    reason = lab_unavailable()
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        return  # not skipped: pytest_runtest_setup fails each lab test with the reason
    for item in items:
        if "lab" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=f"lab unavailable: {reason}"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail ``lab`` tests that cannot run when the lab is required (CI)."""
    if "lab" in item.keywords and os.environ.get(REQUIRE_ENV) == "1":
        reason = lab_unavailable()
        if reason is not None:
            pytest.fail(f"{REQUIRE_ENV}=1 but the lab cannot run: {reason}", pytrace=False)


@dataclass
class NodeHandle:
    """What a test needs of one node."""

    lab: Lab
    name: str
    role: Role
    mgmt_ipv4: str
    interfaces: list[str]
    credentials: LabCredentials

    def run(self, *argv: str, check: bool = True,
            timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run a command inside the node; raise on a non-zero exit when ``check``."""
        proc = self.lab.exec(self.name, argv, timeout_s=timeout_s)
        if check and proc.returncode != 0:
            raise AssertionError(f"{self.name}: {' '.join(argv)} -> {proc.returncode}: "
                                 f"{proc.stderr or proc.stdout}")
        return proc


@dataclass
class LabHandle:
    """A deployed lab: its runtime object, node handles, and the trap port it sends to."""

    lab: Lab
    trap_host: str
    trap_port: int
    nodes: dict[str, NodeHandle] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.lab.name

    @property
    def credentials(self) -> LabCredentials:
        return self.lab.credentials

    def managed(self) -> list[NodeHandle]:
        return [n for n in self.nodes.values() if n.role.managed]

    def by_role(self, role: Role) -> list[NodeHandle]:
        return [n for n in self.nodes.values() if n.role is role]


def free_udp_port() -> int:
    """A UDP port nobody listens on right now (for the lab's trap target)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def lab_home() -> Iterator[Settings]:
    """A private SWITCHBOARD_HOME for the session (the user's own labs are never touched)."""
    previous = os.environ.get("SWITCHBOARD_HOME")
    with tempfile.TemporaryDirectory(prefix="switchboard-test-") as home:
        os.chmod(home, 0o755)  # noqa: S103 - the lab's daemons run as frr and the lab's SSH user
        os.environ["SWITCHBOARD_HOME"] = home
        try:
            yield get_settings(home)
        finally:
            if previous is None:
                os.environ.pop("SWITCHBOARD_HOME", None)
            else:
                os.environ["SWITCHBOARD_HOME"] = previous


LabFactory = Callable[..., LabHandle]


@pytest.fixture(scope="session")
def lab_factory(lab_home: Settings, request: pytest.FixtureRequest) -> Iterator[LabFactory]:
    """Deploy a topology file once per session (by name); all are destroyed at the end."""
    deployed: dict[str, LabHandle] = {}

    def make(path: Path | str, *, name: str, subnet: str | IPv4Network) -> LabHandle:
        if name in deployed:
            return deployed[name]
        reason = lab_unavailable()
        if reason is not None:
            pytest.skip(f"lab unavailable: {reason}")
        topology = load_topology(path).relocate(name, subnet)
        trap_port = free_udp_port()
        trap_host = str(topology.mgmt.gateway)
        lab = deploy(topology, trap_target=f"{trap_host}:{trap_port}", settings=lab_home)
        handle = LabHandle(lab=lab, trap_host=trap_host, trap_port=trap_port)
        for node in lab.state.nodes.values():
            handle.nodes[node.name] = NodeHandle(lab, node.name, node.role, node.mgmt_ipv4,
                                                 list(node.interfaces), lab.credentials)
        deployed[name] = handle
        return handle

    try:
        yield make
    finally:
        failures = []
        for handle in deployed.values():
            report = handle.lab.destroy()
            if report.left:
                failures.append(f"{handle.name}: {report.left}")
        if failures:
            pytest.fail(f"lab destroy left objects behind: {failures}", pytrace=False)


@pytest.fixture(scope="session")
def mini_lab(lab_factory: LabFactory) -> LabHandle:
    """lab/topologies/mini.clab.yml, deployed as ``t-mini``."""
    return lab_factory(TOPOLOGIES / "mini.clab.yml", name=slot_lab_name("mini"),
                       subnet=slot_subnet(1))


@pytest.fixture(scope="session")
def core_lab(lab_factory: LabFactory) -> LabHandle:
    """lab/topologies/core.clab.yml, deployed as ``t-core``."""
    return lab_factory(TOPOLOGIES / "core.clab.yml", name=slot_lab_name("core"),
                       subnet=slot_subnet(0))
