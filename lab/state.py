"""What a deployed lab made, written down as it is made, so destroy can undo exactly that.

The state file (``<labs_dir>/<lab>/state.json``) holds no secrets; the lab's
credentials sit beside it in ``credentials.json`` (mode 0600).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lab.model import LabCredentials, Role
from lab.proc import ProcRef

__all__ = [
    "LabState", "NodeState", "bridge_name", "mgmt_veth_name", "netns_name", "netns_prefix",
]

STATE_FILE = "state.json"
CREDENTIALS_FILE = "credentials.json"


def netns_prefix(lab: str) -> str:
    """Every namespace of ``lab`` starts with this; no other lab's does, because lab
    and node names cannot hold a '.'."""
    return f"sb-{lab}."


def netns_name(lab: str, node: str) -> str:
    """The network namespace of a node: ``sb-<lab>.<node>``."""
    return f"{netns_prefix(lab)}{node}"


def _short(lab: str) -> str:
    return hashlib.sha1(lab.encode()).hexdigest()[:8]  # noqa: S324 - a name, not security


def bridge_name(lab: str) -> str:
    """The mgmt bridge in the root namespace (kernel names hold at most 15 characters)."""
    name = f"sb-{lab}"
    # the hashed form starts "sbh", which no readable "sb-..." name can
    return name if len(name) <= 15 else f"sbh{_short(lab)}"


def mgmt_veth_name(lab: str, index: int) -> str:
    """The root-namespace end of node ``index``'s mgmt veth."""
    return f"sb{_short(lab)[:6]}m{index}"


@dataclass
class NodeState:
    """One node as deployed."""

    name: str
    kind: str
    image: str
    role: Role
    mgmt_ipv4: str
    netns: str
    host_veth: str
    interfaces: list[str] = field(default_factory=list)
    exec: list[str] = field(default_factory=list)
    frr_daemons: list[str] = field(default_factory=list)
    holder: ProcRef | None = None
    daemons: dict[str, ProcRef] = field(default_factory=dict)
    stopped: bool = False

    def to_json(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["role"] = self.role.value
        raw["holder"] = self.holder.to_json() if self.holder else None
        raw["daemons"] = {k: v.to_json() for k, v in self.daemons.items()}
        return raw

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> NodeState:
        raw = dict(raw)
        raw["role"] = Role(raw["role"])
        raw["holder"] = ProcRef.from_json(raw["holder"]) if raw.get("holder") else None
        raw["daemons"] = {k: ProcRef.from_json(v) for k, v in raw.get("daemons", {}).items()}
        return cls(**raw)

    def processes(self) -> list[ProcRef]:
        return [*self.daemons.values(), *([self.holder] if self.holder else [])]


@dataclass
class LabState:
    """A lab as deployed: written after every step of deploy."""

    name: str
    directory: Path
    source_file: str
    created: str
    subnet: str
    gateway: str
    bridge: str
    trap_host: str
    trap_port: int
    status: str = "deploying"
    bridge_created: bool = False
    nodes: dict[str, NodeState] = field(default_factory=dict)
    links: list[list[str]] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.directory / STATE_FILE

    def node_dir(self, node: str) -> Path:
        return self.directory / "nodes" / node

    def save(self) -> None:
        raw = {k: v for k, v in asdict(self).items() if k not in ("nodes", "directory")}
        raw["nodes"] = {n: s.to_json() for n, s in self.nodes.items()}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(raw, indent=2))
        os.replace(tmp, self.path)

    @classmethod
    def load(cls, directory: Path) -> LabState:
        raw = json.loads((directory / STATE_FILE).read_text())
        nodes = {n: NodeState.from_json(s) for n, s in raw.pop("nodes").items()}
        return cls(directory=directory, nodes=nodes, **raw)

    def save_credentials(self, creds: LabCredentials) -> None:
        path = self.directory / CREDENTIALS_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(creds), fh, indent=2)

    def load_credentials(self) -> LabCredentials:
        raw = json.loads((self.directory / CREDENTIALS_FILE).read_text())
        return LabCredentials(**raw)

    def processes(self) -> list[ProcRef]:
        return [p for n in self.nodes.values() for p in n.processes()]

    def alive(self) -> bool:
        """True when any process this lab started still runs."""
        return any(p.alive() for p in self.processes())
