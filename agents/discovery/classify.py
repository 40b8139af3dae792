"""Role and platform of a device, decided by rules kept as data (data/roles.yaml,
data/platforms.yaml); every decision carries its reason."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from topology.errors import ConfigError

__all__ = ["DeviceEvidence", "Platform", "RoleRules", "identify_platform", "load_role_rules"]

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class DeviceEvidence:
    """What the rules may look at."""

    sys_descr: str = ""
    sys_object_id: str = ""
    sys_services: int | None = None
    netconf: bool = False
    lldp_capabilities: frozenset[str] = frozenset()  # as the device's neighbours see it

    def facts(self) -> dict[str, Any]:
        return {"sys_services": self.sys_services, "sys_descr": self.sys_descr,
                "sys_object_id": self.sys_object_id,
                "lldp_capabilities": ",".join(sorted(self.lldp_capabilities))}


def _layers(sys_services: int | None) -> set[int]:
    if sys_services is None:
        return set()
    return {layer for layer in range(1, 8) if sys_services & (1 << (layer - 1))}


_CONDITIONS = {"lldp_capability", "sys_services_layer", "sys_services_only", "netconf",
               "sys_object_id_prefix", "sys_descr_regex"}


@dataclass(frozen=True)
class RoleRule:
    role: str
    when: Mapping[str, Any]
    reason: str

    def matches(self, ev: DeviceEvidence) -> bool:
        for key, want in self.when.items():
            if key == "lldp_capability" and str(want).lower() not in ev.lldp_capabilities:
                return False
            if key == "sys_services_layer" and int(want) not in _layers(ev.sys_services):
                return False
            if key == "sys_services_only" and (
                    ev.sys_services is None or not _layers(ev.sys_services)
                    or not _layers(ev.sys_services) <= {int(v) for v in want}):
                return False
            if key == "netconf" and bool(want) != ev.netconf:
                return False
            if key == "sys_object_id_prefix" and not ev.sys_object_id.startswith(str(want)):
                return False
            if key == "sys_descr_regex" and not re.search(str(want), ev.sys_descr):
                return False
        return True


@dataclass(frozen=True)
class RoleRules:
    """Ordered role rules: the first that matches decides."""

    rules: tuple[RoleRule, ...]
    source: str = field(default="")

    def decide(self, ev: DeviceEvidence) -> tuple[str, str]:
        """The role and the reason, with the evidence filled into the reason."""
        for rule in self.rules:
            if rule.matches(ev):
                return rule.role, rule.reason.format(**ev.facts())
        return "unknown", "no role rule matched"


def load_role_rules(path: Path | None = None) -> RoleRules:
    """Rules from ``path`` (a user's file) or the shipped data/roles.yaml."""
    path = path or DATA / "roles.yaml"
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"role rules {path}: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("rules") or [], list):
        raise ConfigError(f"role rules {path}: expected a mapping with a 'rules' list")
    rules = []
    for i, item in enumerate(raw.get("rules") or [], 1):
        rules.append(_rule(item, f"role rules {path}: rule {i}"))
    return RoleRules(tuple(rules), str(path))


def _rule(item: Any, where: str) -> RoleRule:
    """One rule, checked completely now (not half-way through a discovery run)."""
    if not isinstance(item, dict) or "role" not in item:
        raise ConfigError(f"{where}: needs a mapping with 'role'")
    when = item.get("when") or {}
    if not isinstance(when, dict):
        raise ConfigError(f"{where}: 'when' must be a mapping of conditions")
    unknown = set(when) - _CONDITIONS
    if unknown:
        raise ConfigError(f"{where}: unknown conditions {sorted(unknown)} (known: "
                          f"{', '.join(sorted(_CONDITIONS))})")
    try:
        if "sys_services_only" in when:
            when["sys_services_only"] = [int(v) for v in when["sys_services_only"]]
        if "sys_services_layer" in when:
            when["sys_services_layer"] = int(when["sys_services_layer"])
        if "sys_descr_regex" in when:
            re.compile(str(when["sys_descr_regex"]))
    except (TypeError, ValueError, re.error) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    reason = str(item.get("reason", ""))
    try:
        reason.format(**DeviceEvidence().facts())
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"{where}: reason refers to an unknown fact {exc} (known: "
                          f"{', '.join(sorted(DeviceEvidence().facts()))})") from None
    return RoleRule(str(item["role"]), when, reason)


@dataclass(frozen=True)
class Platform:
    """Vendor, OS name and version, model: what is known of a device's platform."""

    vendor: str | None = None
    os_name: str | None = None
    os_version: str | None = None
    model: str | None = None


@cache
def _platforms() -> tuple[dict[str, Any], ...]:
    raw = yaml.safe_load((DATA / "platforms.yaml").read_text()) or {}
    return tuple(raw.get("platforms") or ())


def identify_platform(sys_descr: str, sys_object_id: str,
                      table: Sequence[Mapping[str, Any]] | None = None) -> Platform:
    """Vendor, OS, version and model from sysDescr / sysObjectID (first match wins)."""
    for entry in table if table is not None else _platforms():
        match = None
        if "sys_descr" in entry:
            match = re.search(entry["sys_descr"], sys_descr)
            if match is None:
                continue
        elif "sys_object_id" in entry:
            if not sys_object_id.startswith(entry["sys_object_id"]):
                continue
        else:
            continue
        groups = match.groupdict() if match else {}
        version = groups.get("version")
        if "version_from" in entry:
            extra = re.search(entry["version_from"], sys_descr)
            version = extra.group("version") if extra else version
        return Platform(entry.get("vendor"), entry.get("os_name"), version, groups.get("model"))
    return Platform()
