"""Parse a containerlab topology file into a resolved :class:`lab.model.Topology`.

Only the part of the containerlab schema the lab runtime deploys is read (see
``docs/topology-files.md``); unknown keys are ignored. Every problem in the file
is collected, each with the 1-based line it sits on, and reported at once as a
:class:`topology.errors.TopologyFileError`. Parsing never touches the disk
beyond reading the file and checking that the files it names exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

from lab.model import (
    CREDENTIAL_LABELS,
    DEFAULT_CREDENTIALS,
    FRR_CONF_TARGET,
    ROLE_LABEL,
    Bind,
    Endpoint,
    LabCredentials,
    LinkSpec,
    MgmtNetwork,
    NodeSpec,
    Role,
    Topology,
)
from topology.errors import Problem, TopologyFileError

__all__ = ["load_topology", "parse_topology"]

SUPPORTED_KINDS = ("linux",)
DEFAULT_MGMT_NETWORK = "clab"
DEFAULT_MGMT_SUBNET = IPv4Network("172.20.20.0/24")
MAX_MGMT_PREFIX = 29
RESERVED_IFACES = ("mgmt0", "lo")
BIND_MODES = ("ro", "rw")
FRR_REPOSITORY = "frrouting/frr"

_LAB_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,19}")
_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,29}")
_IFACE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,14}")
_NETWORK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_COMMUNITY = re.compile(r"[A-Za-z0-9_.@%+=-]{1,32}")
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,30}")
_SECRET_FORBIDDEN = frozenset("'\"`#")
_ROLE_VALUES = tuple(r.value for r in Role)
_ROLES = ", ".join(_ROLE_VALUES)

T = TypeVar("T")


# --------------------------------------------------------------------------- YAML with lines


class _Map(dict[Any, Any]):
    """A YAML mapping that remembers its own line and the line of each key (1-based)."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}

    def line_of(self, key: object) -> int:
        """Return the line of ``key``, or of the mapping itself when the key is absent."""
        return self.key_lines.get(key, self.line)


class _Seq(list[Any]):
    """A YAML sequence that remembers its own line and the line of each item (1-based)."""

    def __init__(self, line: int, item_lines: list[int]) -> None:
        super().__init__()
        self.line = line
        self.item_lines = item_lines

    def line_at(self, index: int) -> int:
        """Return the line of item ``index``."""
        return self.item_lines[index] if index < len(self.item_lines) else self.line


class _LineLoader(yaml.SafeLoader):
    """A safe loader building :class:`_Map` and :class:`_Seq`; notes repeated keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.repeated_keys: list[Problem] = []


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> Iterator[_Map]:
    data = _Map(node.start_mark.line + 1)
    yield data
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
            continue
        key = loader.construct_object(key_node)
        line = key_node.start_mark.line + 1
        if key in seen:
            loader.repeated_keys.append(Problem(
                f"key {key!r} appears twice in one mapping (first at line {seen[key]}); "
                "YAML would silently keep only the last one", line))
        else:
            seen[key] = line
    data.update(loader.construct_mapping(node))
    for key_node, _ in node.value:  # flattened: merged (<<) keys first, own keys override
        data.key_lines[loader.construct_object(key_node)] = key_node.start_mark.line + 1


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> Iterator[_Seq]:
    data = _Seq(node.start_mark.line + 1, [item.start_mark.line + 1 for item in node.value])
    yield data
    data.extend(loader.construct_sequence(node))


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def _load_yaml(text: str) -> tuple[object, list[Problem]]:
    """Return the document in ``text`` and the problems found while reading it."""
    loader = _LineLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        context = exc.context
        if context and exc.context_mark is not None and exc.context_mark.line + 1 != line:
            context = f"{context} (line {exc.context_mark.line + 1})"
        message = ": ".join(str(part) for part in (context, exc.problem) if part)
        return None, [Problem(f"YAML syntax error: {message or 'unreadable YAML'}", line)]
    except yaml.YAMLError as exc:
        return None, [Problem(f"YAML error: {exc}")]
    finally:
        loader.dispose()
    return data, loader.repeated_keys


# --------------------------------------------------------------------------- levels


@dataclass(frozen=True)
class _Val(Generic[T]):
    """A setting found at one level; ``value`` is None when it was set but invalid."""

    value: T | None
    line: int
    where: str


@dataclass
class _Level:
    """The settings of one precedence level: defaults, a kind, a group or a node."""

    where: str
    line: int
    kind: _Val[str] | None = None
    image: _Val[str] | None = None
    mgmt_ipv4: _Val[IPv4Address] | None = None
    startup_config: _Val[Path] | None = None
    exec: _Val[tuple[str, ...]] | None = None
    labels: dict[str, _Val[str]] = field(default_factory=dict)
    binds: list[Bind] = field(default_factory=list)


@dataclass
class _Pending:
    """A node whose settings are resolved, waiting for its mgmt address.

    ``kind``, ``image`` or ``role`` is None when the node has a problem; such a node
    still takes part in the mgmt address checks so that every problem is reported.
    """

    name: str
    kind: str | None
    image: str | None
    role: Role | None
    line: int
    group: str | None
    startup_config: Path | None
    binds: tuple[Bind, ...]
    labels: dict[str, str]
    exec: tuple[str, ...]
    mgmt: _Val[IPv4Address] | None
    address: IPv4Address | None = None


def _first(*values: _Val[T] | None) -> _Val[T] | None:
    """Return the highest-precedence setting (values are given highest first)."""
    for value in values:
        if value is not None:
            return value
    return None


def _repository(image: str) -> str:
    """Strip registry, tag and digest: ``quay.io/frrouting/frr:v8`` -> ``frrouting/frr``."""
    name = image.split("@", 1)[0]
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name = name[:colon]
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    return "/".join(parts)


def _is_frr_image(image: str) -> bool:
    repo = _repository(image)
    return repo == FRR_REPOSITORY or repo.endswith("/" + FRR_REPOSITORY)


def _secret_ok(value: str) -> bool:
    return 8 <= len(value) <= 64 and all(
        33 <= ord(c) <= 126 and c not in _SECRET_FORBIDDEN for c in value)


def _credential_reason(attr: str, value: str) -> str | None:
    """Why ``value`` is refused for credential ``attr``; never quotes a secret."""
    if attr == "snmp_community":
        if not _COMMUNITY.fullmatch(value):
            return "must be 1 to 32 characters of A-Z a-z 0-9 and _ . @ % + = -"
    elif attr in ("snmpv3_user", "ssh_user"):
        if not _USER.fullmatch(value):
            return (f"value {value!r} must be a user name: 1 to 31 characters of a-z 0-9 _ -, "
                    "starting with a letter or '_'")
        if attr == "ssh_user" and value == "root":
            return "must not be 'root': the lab creates this user on every managed node"
    elif not _secret_ok(value):
        return ("must be 8 to 64 printable ASCII characters without spaces, "
                "quotes (' \" `) or '#'")
    return None


# --------------------------------------------------------------------------- the parser


class _Parser:
    """One parse of one file: collects problems instead of stopping at the first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.parent
        self.problems: list[Problem] = []
        self.subnet: IPv4Network | None = DEFAULT_MGMT_SUBNET
        self.credentials: dict[str, str] = {}

    def problem(self, reason: str, line: int | None) -> None:
        self.problems.append(Problem(reason, line))

    def resolve(self, relative: str) -> Path:
        return (self.base / Path(relative).expanduser()).resolve()

    # ---- top level

    def parse(self, data: object) -> Topology | None:
        if not isinstance(data, _Map):
            self.problem("the top level must be a mapping (name, mgmt, topology)",
                         getattr(data, "line", None))
            return None
        name = self.lab_name(data)
        mgmt = self.mgmt(data)
        topo = data.get("topology")
        nodes: dict[str, NodeSpec] = {}
        links: tuple[LinkSpec, ...] = ()
        if "topology" not in data:
            self.problem("'topology' is missing: a lab needs topology.nodes", None)
        elif not isinstance(topo, _Map):
            self.problem("'topology' must be a mapping", data.line_of("topology"))
        else:
            known, pending = self.nodes(topo, data.line_of("topology"))
            self.assign_addresses(pending)
            links = self.links(topo, known)
            nodes = {p.name: spec for p in pending if (spec := self.build(p)) is not None}
        if self.problems or name is None or mgmt is None:
            return None
        credentials: LabCredentials = replace(DEFAULT_CREDENTIALS, **self.credentials)
        return Topology(name=name, path=self.path, mgmt=mgmt, nodes=nodes, links=links,
                        credentials=credentials)

    def lab_name(self, data: _Map) -> str | None:
        if "name" not in data:
            self.problem("'name' is missing: the lab needs a name", None)
            return None
        name, line = data["name"], data.line_of("name")
        if not isinstance(name, str) or not _LAB_NAME.fullmatch(name):
            self.problem(
                f"name {name!r} is invalid: it must be 1 to 20 characters of a-z, 0-9 and '-', "
                "starting with a lower-case letter or digit, because it is used in the names "
                "of the lab's network namespaces and interfaces", line)
            return None
        return name

    def mgmt(self, data: _Map) -> MgmtNetwork | None:
        block = data.get("mgmt")
        network, subnet = DEFAULT_MGMT_NETWORK, DEFAULT_MGMT_SUBNET
        if block is None:
            return MgmtNetwork(network, subnet, subnet.network_address + 1)
        if not isinstance(block, _Map):
            self.problem("'mgmt' must be a mapping", data.line_of("mgmt"))
            self.subnet = None
            return None
        ok = True
        if block.get("network") is not None:
            value, line = block["network"], block.line_of("network")
            if isinstance(value, str) and _NETWORK_NAME.fullmatch(value):
                network = value
            else:
                ok = False
                self.problem(f"mgmt network {value!r} is invalid: it must be 1 to 64 "
                             "characters of A-Z a-z 0-9 _ . -", line)
        if block.get("ipv4-subnet") is not None:
            value, line = block["ipv4-subnet"], block.line_of("ipv4-subnet")
            parsed = self.subnet_of(value, line)
            if parsed is None:
                ok = False
                self.subnet = None
            else:
                subnet = self.subnet = parsed
        if not ok:
            return None
        return MgmtNetwork(network, subnet, subnet.network_address + 1)

    def subnet_of(self, value: object, line: int) -> IPv4Network | None:
        if not isinstance(value, str):
            self.problem(f"mgmt ipv4-subnet {value!r} must be a string like 172.20.20.0/24",
                         line)
            return None
        try:
            subnet = IPv4Network(value)
        except ValueError as exc:
            self.problem(f"mgmt ipv4-subnet {value!r} is not a valid IPv4 network ({exc})", line)
            return None
        if subnet.prefixlen > MAX_MGMT_PREFIX:
            self.problem(f"mgmt ipv4-subnet {value!r} is too small: the prefix length must be "
                         f"at most /{MAX_MGMT_PREFIX}", line)
            return None
        return subnet

    # ---- settings of one level

    def level(self, settings: object, where: str, line: int, *,
              defaults: bool = False) -> _Level:
        level = _Level(where, line)
        if settings is None:
            return level
        if not isinstance(settings, _Map):
            self.problem(f"{where} must be a mapping of settings", line)
            return level
        level.kind = self.string(settings, "kind", where)
        level.image = self.string(settings, "image", where)
        level.mgmt_ipv4 = self.address(settings, where)
        level.startup_config = self.startup_config(settings, where)
        level.exec = self.exec(settings, where)
        level.labels = self.labels(settings, where, defaults=defaults)
        level.binds = self.binds(settings, where)
        return level

    def string(self, settings: _Map, key: str, where: str) -> _Val[str] | None:
        value = settings.get(key)
        if value is None:
            return None
        line = settings.line_of(key)
        if not isinstance(value, str) or not value or any(c.isspace() for c in value):
            self.problem(f"{where}: {key} {value!r} must be a non-empty string without spaces",
                         line)
            return _Val(None, line, where)
        return _Val(value, line, where)

    def address(self, settings: _Map, where: str) -> _Val[IPv4Address] | None:
        value = settings.get("mgmt-ipv4")
        if value is None:
            return None
        line = settings.line_of("mgmt-ipv4")
        try:
            address = IPv4Address(value if isinstance(value, str) else "-")
        except ValueError:
            self.problem(f"{where}: mgmt-ipv4 {value!r} is not an IPv4 address", line)
            return _Val(None, line, where)
        subnet = self.subnet
        if subnet is not None:
            reason = None
            if address not in subnet:
                reason = f"is outside the mgmt subnet {subnet}"
            elif address == subnet.network_address:
                reason = f"is the network address of the mgmt subnet {subnet}"
            elif address == subnet.broadcast_address:
                reason = f"is the broadcast address of the mgmt subnet {subnet}"
            elif address == subnet.network_address + 1:
                reason = "is the mgmt gateway (the first host address of the subnet)"
            if reason is not None:
                self.problem(f"{where}: mgmt-ipv4 {address} {reason}", line)
                return _Val(None, line, where)
        return _Val(address, line, where)

    def startup_config(self, settings: _Map, where: str) -> _Val[Path] | None:
        value = settings.get("startup-config")
        if value is None:
            return None
        line = settings.line_of("startup-config")
        if not isinstance(value, str) or not value:
            self.problem(f"{where}: startup-config {value!r} must be a file path", line)
            return _Val(None, line, where)
        path = self.resolve(value)
        if not path.is_file():
            self.problem(f"{where}: startup-config {value!r} is not a file (looked for {path})",
                         line)
        return _Val(path, line, where)

    def exec(self, settings: _Map, where: str) -> _Val[tuple[str, ...]] | None:
        value = settings.get("exec")
        if value is None:
            return None
        line = settings.line_of("exec")
        if not isinstance(value, _Seq):
            self.problem(f"{where}: exec must be a list of commands (strings)", line)
            return _Val(None, line, where)
        commands: list[str] = []
        for index, command in enumerate(value):
            if isinstance(command, str):
                commands.append(command)
            else:
                self.problem(f"{where}: exec item {index + 1} must be a string "
                             "(quote the command)", value.line_at(index))
        if len(commands) != len(value):
            return _Val(None, line, where)
        return _Val(tuple(commands), line, where)

    def labels(self, settings: _Map, where: str, *, defaults: bool) -> dict[str, _Val[str]]:
        value = settings.get("labels")
        out: dict[str, _Val[str]] = {}
        if value is None:
            return out
        if not isinstance(value, _Map):
            self.problem(f"{where}: labels must be a mapping of strings",
                         settings.line_of("labels"))
            return out
        for key, item in value.items():
            line = value.line_of(key)
            if not isinstance(key, str):
                self.problem(f"{where}: label key {key!r} must be a string", line)
                continue
            if not isinstance(item, str):
                # never echo the value: it may be a credential
                self.problem(f"{where}: label {key!r} must be a string (containerlab requires "
                             "string label values; quote it)", line)
                out[key] = _Val(None, line, where)
                continue
            out[key] = _Val(item, line, where)
            if key == ROLE_LABEL and item not in _ROLE_VALUES:
                self.problem(f"{where}: label {ROLE_LABEL!r} is {item!r}; it must be one of "
                             f"{_ROLES}", line)
                out[key] = _Val(None, line, where)
            elif key in CREDENTIAL_LABELS:
                if not defaults:
                    self.problem(f"{where}: label {key!r} is only read from "
                                 "topology.defaults.labels: the lab's credentials are the same "
                                 "on every node", line)
                    continue
                reason = _credential_reason(CREDENTIAL_LABELS[key], item)
                if reason is None:
                    self.credentials[CREDENTIAL_LABELS[key]] = item
                else:
                    self.problem(f"{where}: label {key!r} {reason}", line)
        return out

    def binds(self, settings: _Map, where: str) -> list[Bind]:
        value = settings.get("binds")
        if value is None:
            return []
        if not isinstance(value, _Seq):
            self.problem(f"{where}: binds must be a list of 'source:target[:mode]' strings",
                         settings.line_of("binds"))
            return []
        out: dict[str, Bind] = {}
        for index, spec in enumerate(value):
            line = value.line_at(index)
            bind = self.bind(spec, where, line)
            if bind is None:
                continue
            if bind.target in out:
                self.problem(f"{where}: bind target {bind.target!r} is mounted twice", line)
            out[bind.target] = bind
        return list(out.values())

    def bind(self, spec: object, where: str, line: int) -> Bind | None:
        parts = spec.split(":") if isinstance(spec, str) else []
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            self.problem(f"{where}: bind {spec!r} is not 'source:target' or "
                         "'source:target:mode'", line)
            return None
        source, target = parts[0], parts[1]
        mode = parts[2] if len(parts) == 3 else "rw"
        ok = True
        if mode not in BIND_MODES:
            self.problem(f"{where}: bind {spec!r} has mode {mode!r}; it must be ro or rw", line)
            ok = False
        if not target.startswith("/"):
            self.problem(f"{where}: bind {spec!r} has target {target!r}; the target must be "
                         "an absolute path inside the node", line)
            ok = False
        path = self.resolve(source)
        if not path.exists():
            self.problem(f"{where}: bind {spec!r}: source {source!r} does not exist "
                         f"(looked for {path})", line)
        return Bind(path, target, mode) if ok else None

    # ---- nodes

    def nodes(self, topo: _Map, topo_line: int) -> tuple[set[str], list[_Pending]]:
        """Resolve every node; return all node names seen and the nodes that resolved."""
        defaults = self.level(topo.get("defaults"), "topology.defaults",
                              topo.line_of("defaults"), defaults=True)
        kinds = self.named_levels(topo, "kinds", "kind")
        groups = self.named_levels(topo, "groups", "group")
        raw = topo.get("nodes")
        known: set[str] = set()
        pending: list[_Pending] = []
        if not isinstance(raw, _Map) or not raw:
            line = topo.line_of("nodes") if "nodes" in topo else topo_line
            what = "missing" if "nodes" not in topo else (
                "empty" if not raw else "not a mapping of node names to settings")
            self.problem(f"topology.nodes is {what}: a lab needs at least one node", line)
            return known, pending
        for name, settings in raw.items():
            line = raw.line_of(name)
            if not isinstance(name, str):
                self.problem(f"node name {name!r} must be a string (quote it)", line)
                known.add(str(name))
                continue
            known.add(name)
            if not _NODE_NAME.fullmatch(name):
                self.problem(f"node name {name!r} is invalid: it must be 1 to 30 characters of "
                             "A-Z a-z 0-9 _ -, starting with a letter or digit", line)
            pending.append(self.node(name, settings, line, defaults, kinds, groups))
        return known, pending

    def named_levels(self, topo: _Map, key: str, what: str) -> dict[str, _Level]:
        raw = topo.get(key)
        out: dict[str, _Level] = {}
        if raw is None:
            return out
        if not isinstance(raw, _Map):
            self.problem(f"topology.{key} must be a mapping of {what} names to settings",
                         topo.line_of(key))
            return out
        for name, settings in raw.items():
            out[str(name)] = self.level(settings, f"{what} {name!r}", raw.line_of(name))
        return out

    def node(self, name: str, settings: object, line: int, defaults: _Level,
             kinds: dict[str, _Level], groups: dict[str, _Level]) -> _Pending:
        where = f"node {name!r}"
        own = self.level(settings, where, line)
        group_name: str | None = None
        group: _Level | None = None
        broken = False
        if isinstance(settings, _Map) and settings.get("group") is not None:
            value, gline = settings["group"], settings.line_of("group")
            group = groups.get(value) if isinstance(value, str) else None
            if group is None:
                known = ", ".join(groups) or "none defined"
                self.problem(f"{where}: group {value!r} is not defined in topology.groups "
                             f"(groups: {known})", gline)
                broken = True
            else:
                group_name = value

        def at(val: _Val[Any] | None) -> int:
            """Where a per-node problem points: the node's own key, else the node."""
            return val.line if val is not None and val.where == where else line

        def origin(val: _Val[Any]) -> str:
            return "" if val.where == where else f" (from {val.where})"

        kind_val = _first(own.kind, group.kind if group else None, defaults.kind)
        kind: str | None = None
        if kind_val is None:
            if not broken:  # an unknown group might have set it: say nothing more
                self.problem(f"{where} has no kind; set kind on the node, its group or in "
                             "topology.defaults (supported kinds: "
                             f"{', '.join(SUPPORTED_KINDS)})", line)
        elif kind_val.value is not None:
            if kind_val.value in SUPPORTED_KINDS:
                kind = kind_val.value
            else:
                self.problem(f"{where} has kind {kind_val.value!r}{origin(kind_val)}, which is "
                             f"not supported; supported kinds: {', '.join(SUPPORTED_KINDS)}",
                             at(kind_val))
        kind_level = kinds.get(kind_val.value) if kind_val and kind_val.value else None
        levels = [lvl for lvl in (own, group, kind_level, defaults) if lvl is not None]

        image_val = _first(*(lvl.image for lvl in levels))
        image = image_val.value if image_val else None
        if image_val is None and not broken and kind is not None:
            self.problem(f"{where} has no image; set image on the node, its group, its kind "
                         "or in topology.defaults", line)

        labels: dict[str, _Val[str]] = {}
        for lvl in reversed(levels):
            labels.update(lvl.labels)
        binds: dict[str, Bind] = {}
        for lvl in reversed(levels):
            binds.update((b.target, b) for b in lvl.binds)
        startup_val = _first(*(lvl.startup_config for lvl in levels))
        exec_val = _first(*(lvl.exec for lvl in levels))
        mgmt_val = _first(*(lvl.mgmt_ipv4 for lvl in levels))

        role: Role | None = None
        why = ""
        role_val = labels.get(ROLE_LABEL)
        if role_val is not None:
            if role_val.value is not None:
                role = Role(role_val.value)
                why = f"label {ROLE_LABEL}={role.value}{origin(role_val)}"
        elif image is not None:
            role = Role.ROUTER if _is_frr_image(image) else Role.HOST
            why = f"image {image}"
        if (role is Role.ROUTER and not broken and startup_val is None
                and FRR_CONF_TARGET not in binds):
            self.problem(f"{where} is a router ({why}) but has no FRR config: set "
                         f"startup-config or bind a file to {FRR_CONF_TARGET}", line)

        if (broken
                or (exec_val is not None and exec_val.value is None)
                or (startup_val is not None and startup_val.value is None)
                or any(v.value is None for v in labels.values())):
            role = None  # a problem is already recorded; keep the node for the mgmt checks
        return _Pending(
            name=name, kind=kind, image=image, role=role, line=line, group=group_name,
            startup_config=startup_val.value if startup_val else None,
            binds=tuple(binds.values()),
            labels={k: v.value for k, v in labels.items()
                    if v.value is not None and k not in CREDENTIAL_LABELS},
            exec=exec_val.value if exec_val and exec_val.value is not None else (),
            mgmt=mgmt_val,
        )

    def assign_addresses(self, pending: list[_Pending]) -> None:
        """Reserve explicit mgmt addresses, then give the others the lowest free ones."""
        used: dict[IPv4Address, str] = {}
        for node in pending:
            if node.mgmt is None or node.mgmt.value is None:
                continue
            address = node.mgmt.value
            if address in used:
                where = f"node {node.name!r}"
                line = node.mgmt.line if node.mgmt.where == where else node.line
                self.problem(f"{where}: mgmt-ipv4 {address} is already used by node "
                             f"{used[address]!r}", line)
                continue
            used[address] = node.name
            node.address = address
        subnet = self.subnet
        if subnet is None:
            return
        candidate = int(subnet.network_address) + 2
        last = int(subnet.broadcast_address) - 1
        for node in pending:
            if node.mgmt is not None:
                continue
            while candidate <= last and IPv4Address(candidate) in used:
                candidate += 1
            if candidate > last:
                self.problem(f"node {node.name!r}: no free address left in the mgmt subnet "
                             f"{subnet} to assign as mgmt-ipv4", node.line)
                continue
            node.address = IPv4Address(candidate)
            used[node.address] = node.name
            candidate += 1

    def build(self, node: _Pending) -> NodeSpec | None:
        """Return the node's spec, or None when it has a problem (already recorded)."""
        if node.kind is None or node.image is None or node.role is None or node.address is None:
            return None
        return NodeSpec(
            name=node.name, kind=node.kind, image=node.image, role=node.role,
            mgmt_ipv4=node.address, startup_config=node.startup_config, binds=node.binds,
            labels=node.labels, exec=node.exec, group=node.group, line=node.line,
        )

    # ---- links

    def links(self, topo: _Map, known: set[str]) -> tuple[LinkSpec, ...]:
        raw = topo.get("links")
        if raw is None:
            return ()
        if not isinstance(raw, _Seq):
            self.problem("topology.links must be a list of links", topo.line_of("links"))
            return ()
        out: list[LinkSpec] = []
        first_use: dict[Endpoint, tuple[int, int]] = {}
        for index, item in enumerate(raw):
            number, line = index + 1, raw.line_at(index)
            ends = item.get("endpoints") if isinstance(item, _Map) else None
            if (not isinstance(ends, _Seq) or len(ends) != 2
                    or not all(isinstance(e, str) for e in ends)):
                self.problem(f"link {number} must have 'endpoints': a list of exactly two "
                             "'node:iface' strings", line)
                continue
            parsed = [self.endpoint(number, end, known, line) for end in ends]
            for end in parsed:
                if end is None:
                    continue
                if end in first_use:
                    other, other_line = first_use[end]
                    self.problem(f"link {number} endpoint '{end}' is already used by link "
                                 f"{other} (line {other_line})", line)
                else:
                    first_use[end] = (number, line)
            a, b = parsed
            if a is not None and b is not None:
                out.append(LinkSpec(a, b, line))
        return tuple(out)

    def endpoint(self, number: int, text: str, known: set[str], line: int) -> Endpoint | None:
        node, sep, iface = text.partition(":")
        if not sep or not node or not iface or ":" in iface:
            self.problem(f"link {number} endpoint {text!r} is not 'node:iface'", line)
            return None
        if node not in known:
            self.problem(f"link {number} endpoint {text!r} names unknown node {node!r}", line)
            return None
        if iface in RESERVED_IFACES:
            self.problem(f"link {number} endpoint {text!r} uses {iface!r}, which is reserved "
                         "(mgmt0 is the management interface, lo the loopback)", line)
            return None
        if not _IFACE.fullmatch(iface):
            self.problem(f"link {number} endpoint {text!r} has an invalid interface name "
                         f"{iface!r}: 1 to 15 characters of A-Z a-z 0-9 _ . -, starting "
                         "with a letter", line)
            return None
        return Endpoint(node, iface)


# --------------------------------------------------------------------------- public


def parse_topology(text: str, path: Path) -> Topology:
    """Parse topology ``text`` as if read from ``path``; relative paths resolve against its dir.

    Raises :class:`TopologyFileError` listing every problem found.
    """
    absolute = Path(path).expanduser().resolve()
    data, problems = _load_yaml(text)
    parser = _Parser(absolute)
    parser.problems.extend(problems)
    topology = None if problems and data is None else parser.parse(data)
    if topology is None or parser.problems:
        ordered = sorted(parser.problems, key=lambda p: p.line or 0)
        raise TopologyFileError(path, ordered)
    return topology


def load_topology(path: str | Path) -> Topology:
    """Read and parse the containerlab topology file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        problem = Problem(f"the file is not UTF-8 text ({exc.reason})")
        raise TopologyFileError(path, [problem]) from exc
    except OSError as exc:
        raise TopologyFileError(path, [Problem(f"cannot read the file: {exc.strerror}")]) from exc
    return parse_topology(text, path)
