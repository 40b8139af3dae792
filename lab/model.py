"""The parsed form of a containerlab topology file, as the lab runtime deploys it.

Everything here is validated and resolved: precedence applied
(node > group > kind > defaults), paths absolute, roles decided, mgmt
addresses assigned. The parser (:mod:`lab.parser`) is the only producer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

__all__ = [
    "DEFAULT_CREDENTIALS",
    "ROLE_LABEL",
    "Bind",
    "Endpoint",
    "LabCredentials",
    "LinkSpec",
    "MgmtNetwork",
    "NodeSpec",
    "Role",
    "Topology",
]

ROLE_LABEL = "switchboard.role"
FRR_CONF_TARGET = "/etc/frr/frr.conf"


class Role(StrEnum):
    """What a node is in the network; decides which daemons it runs."""

    ROUTER = "router"
    SWITCH = "switch"
    VNF = "vnf"
    HOST = "host"

    @property
    def managed(self) -> bool:
        """Managed nodes run snmpd and lldpd and are discovered; hosts are endpoints."""
        return self is not Role.HOST


@dataclass(frozen=True)
class Endpoint:
    """One end of a link: ``node:iface``."""

    node: str
    iface: str

    def __str__(self) -> str:
        return f"{self.node}:{self.iface}"


@dataclass(frozen=True)
class LinkSpec:
    """A point-to-point link (a veth pair). ``line`` is where it sits in the file."""

    a: Endpoint
    b: Endpoint
    line: int | None = None


@dataclass(frozen=True)
class Bind:
    """A containerlab bind ``source:target[:mode]``; ``source`` resolved against the file."""

    source: Path
    target: str
    mode: str = "rw"


@dataclass(frozen=True)
class MgmtNetwork:
    """The management network: a bridge in the root namespace holding the gateway address."""

    network: str
    subnet: IPv4Network
    gateway: IPv4Address


@dataclass(frozen=True)
class LabCredentials:
    """The lab's own credentials: every managed node accepts exactly these.

    Set in a topology file with labels under ``topology.defaults.labels``
    (``switchboard.snmp-community``, ``switchboard.snmpv3-user``,
    ``switchboard.snmpv3-auth-key``, ``switchboard.snmpv3-priv-key``,
    ``switchboard.ssh-user``, ``switchboard.ssh-password``); the protocols are
    fixed at SHA and AES-128. The repr hides the secrets.
    """

    snmp_community: str = field(repr=False)
    snmpv3_user: str
    snmpv3_auth_key: str = field(repr=False)
    snmpv3_priv_key: str = field(repr=False)
    ssh_user: str
    ssh_password: str = field(repr=False)
    snmpv3_auth_protocol: str = "SHA"
    snmpv3_priv_protocol: str = "AES"


DEFAULT_CREDENTIALS = LabCredentials(
    snmp_community="switchboard-lab",
    snmpv3_user="sbv3",
    snmpv3_auth_key="sb-auth-key-1",
    snmpv3_priv_key="sb-priv-key-1",
    ssh_user="admin",
    ssh_password="switchboard",  # noqa: S106 - the lab's documented default
)

# label -> LabCredentials attribute
CREDENTIAL_LABELS: dict[str, str] = {
    "switchboard.snmp-community": "snmp_community",
    "switchboard.snmpv3-user": "snmpv3_user",
    "switchboard.snmpv3-auth-key": "snmpv3_auth_key",
    "switchboard.snmpv3-priv-key": "snmpv3_priv_key",
    "switchboard.ssh-user": "ssh_user",
    "switchboard.ssh-password": "ssh_password",
}


@dataclass(frozen=True)
class NodeSpec:
    """A node after precedence is applied (node > group > kind > defaults)."""

    name: str
    kind: str
    image: str
    role: Role
    mgmt_ipv4: IPv4Address
    startup_config: Path | None = None
    binds: tuple[Bind, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    exec: tuple[str, ...] = ()
    group: str | None = None
    line: int | None = None

    @property
    def frr_config(self) -> Path | None:
        """The FRR config file: ``startup-config``, else a bind mounted at /etc/frr/frr.conf."""
        if self.startup_config is not None:
            return self.startup_config
        for bind in self.binds:
            if bind.target == FRR_CONF_TARGET:
                return bind.source
        return None


@dataclass(frozen=True)
class Topology:
    """A whole lab: its name, mgmt network, nodes in file order, links and credentials."""

    name: str
    path: Path
    mgmt: MgmtNetwork
    nodes: dict[str, NodeSpec]
    links: tuple[LinkSpec, ...]
    credentials: LabCredentials = DEFAULT_CREDENTIALS

    def interfaces(self, node: str) -> list[str]:
        """The data interfaces of ``node``, in link order."""
        out = []
        for link in self.links:
            for end in (link.a, link.b):
                if end.node == node:
                    out.append(end.iface)
        return out

    def peer(self, end: Endpoint) -> Endpoint | None:
        """The other end of the link that ``end`` sits on."""
        for link in self.links:
            if link.a == end:
                return link.b
            if link.b == end:
                return link.a
        return None

    def relocate(self, name: str, subnet: IPv4Network | str) -> Topology:
        """The same lab under another name and mgmt subnet, every node keeping its host
        offset (172.20.20.11 -> 172.31.20.11). Lets tests run beside a user's own lab."""
        new = IPv4Network(subnet)
        if new.prefixlen > self.mgmt.subnet.prefixlen:
            raise ValueError(f"{new} is smaller than {self.mgmt.subnet}")
        base, old = int(new.network_address), int(self.mgmt.subnet.network_address)
        nodes = {n: replace(s, mgmt_ipv4=IPv4Address(base + int(s.mgmt_ipv4) - old))
                 for n, s in self.nodes.items()}
        mgmt = MgmtNetwork(f"{self.mgmt.network}-{name}", new,
                           IPv4Address(base + int(self.mgmt.gateway) - old))
        return replace(self, name=name, mgmt=mgmt, nodes=nodes)
