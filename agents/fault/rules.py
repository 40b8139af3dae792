"""Fault rules: traps and the suite's own events to alarm events (data in a YAML file).

The shipped file is ``agents/fault/data/fault_rules.yaml``; its header documents the
format. A file with mistakes is refused as a whole, every problem listed with its rule.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from agents.fault.model import Severity
from topology.errors import ConfigError

__all__ = [
    "DEFAULT_RULES_FILE",
    "EventRule",
    "FaultRules",
    "FaultRulesError",
    "ResourceSpec",
    "TrapRule",
    "load_fault_rules",
]

DEFAULT_RULES_FILE: Final = Path(__file__).parent / "data" / "fault_rules.yaml"
_NAME: Final = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_OID: Final = re.compile(r"^\.?\d+(\.\d+)+$")
_MEANS: Final = ("link-down", "device-down", "peer-down")
_RAISE_SEVERITIES: Final = tuple(s.value for s in Severity if s is not Severity.CLEARED)


class FaultRulesError(ConfigError):
    """A fault rules file was refused; ``problems`` lists every mistake found."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        super().__init__(f"fault rules {path}: " + "; ".join(problems))
        self.path = str(path)
        self.problems = problems


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    """Where a rule finds the alarmed resource in a trap."""

    type: str = "device"
    index_from: str | None = None
    address_from: str | None = None


@dataclass(frozen=True, slots=True)
class TrapRule:
    """One rule of ``traps:`` (see the file format)."""

    name: str
    trap: str
    action: str
    problem: str
    resource: ResourceSpec
    when: tuple[tuple[str, tuple[str, ...]], ...] = ()
    severity: str = Severity.MAJOR.value
    alarm_type: str = "communicationsAlarm"
    probable_cause: str = "unspecified"
    specific_problem: str = ""
    clear_after_s: float | None = None
    means: str | None = None


@dataclass(frozen=True, slots=True)
class EventRule:
    """One rule of ``events:``."""

    name: str
    alarm_type: str = "qualityOfServiceAlarm"
    probable_cause: str = "thresholdCrossed"
    specific_problem: str = ""
    means: str | None = None


@dataclass(frozen=True)
class FaultRules:
    """The rules in force, indexed by trap OID (in file order) and event name."""

    path: str
    traps: tuple[TrapRule, ...]
    events: dict[str, EventRule] = field(default_factory=dict)
    by_trap: dict[str, tuple[TrapRule, ...]] = field(default_factory=dict)

    def means(self, problem: str) -> str | None:
        """What a problem means for correlation (the first rule that says so)."""
        for rule in self.traps:
            if rule.problem == problem and rule.means:
                return rule.means
        event = self.events.get(problem)
        return event.means if event else None


def _oid(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text.lstrip(".") if _OID.match(text) else None


def _resource(raw: Any, problems: list[str], where: str) -> ResourceSpec:
    if raw in (None, "device"):
        return ResourceSpec()
    if not isinstance(raw, dict):
        problems.append(f"{where}: resource must be 'device' or a mapping")
        return ResourceSpec()
    unknown = set(raw) - {"type", "index_from", "address_from"}
    if unknown:
        problems.append(f"{where}: resource has unknown keys {sorted(unknown)}")
    kind = str(raw.get("type", ""))
    if not _NAME.match(kind) or kind == "device":
        problems.append(f"{where}: resource type {kind!r} must be a kebab-case name other "
                        "than 'device'")
    index_from, address_from = raw.get("index_from"), raw.get("address_from")
    if (index_from is None) == (address_from is None):
        problems.append(f"{where}: resource needs exactly one of index_from, address_from")
    for key, value in (("index_from", index_from), ("address_from", address_from)):
        if value is not None and _oid(value) is None:
            problems.append(f"{where}: resource {key} {value!r} is not a numeric OID")
    return ResourceSpec(kind, _oid(index_from) if index_from else None,
                        _oid(address_from) if address_from else None)


def _when(raw: Any, problems: list[str], where: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        problems.append(f"{where}: when must map varbind OIDs to lists of values")
        return ()
    out = []
    for key, values in raw.items():
        oid = _oid(key)
        if oid is None:
            problems.append(f"{where}: when key {key!r} is not a numeric OID")
            continue
        listed = values if isinstance(values, list) else [values]
        out.append((oid, tuple(str(v) for v in listed)))
    return tuple(out)


def _text(raw: dict[str, Any], key: str, default: str, problems: list[str],
          where: str) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str | int | float):
        problems.append(f"{where}: {key} must be text")
        return default
    text = str(value)
    if any(ord(c) < 32 for c in text):
        problems.append(f"{where}: {key} holds control characters")
    return text


def _trap_rule(raw: Any, index: int, seen: set[str], problems: list[str]) -> TrapRule | None:
    if not isinstance(raw, dict):
        problems.append(f"traps #{index}: not a mapping")
        return None
    name = str(raw.get("name", ""))
    where = f"trap rule {name}" if name else f"traps #{index}"
    known = {"name", "trap", "when", "action", "problem", "resource", "severity", "alarm_type",
             "probable_cause", "specific_problem", "clear_after_s", "means"}
    if set(raw) - known:
        problems.append(f"{where}: unknown keys {sorted(set(raw) - known)}")
    if not _NAME.match(name):
        problems.append(f"{where}: name must be kebab-case")
    elif name in seen:
        problems.append(f"{where}: name used twice")
    seen.add(name)
    trap = _oid(raw.get("trap"))
    if trap is None:
        problems.append(f"{where}: trap {raw.get('trap')!r} is not a numeric OID")
    action = raw.get("action")
    if action not in ("raise", "clear"):
        problems.append(f"{where}: action must be raise or clear")
    problem = str(raw.get("problem", ""))
    if not _NAME.match(problem):
        problems.append(f"{where}: problem must be a kebab-case name")
    severity = str(raw.get("severity", Severity.MAJOR.value))
    if severity not in _RAISE_SEVERITIES:
        problems.append(f"{where}: severity {severity!r} is not one of {_RAISE_SEVERITIES}")
    means = raw.get("means")
    if means is not None and means not in _MEANS:
        problems.append(f"{where}: means must be one of {_MEANS}")
    clear_after = raw.get("clear_after_s")
    if clear_after is not None and (not isinstance(clear_after, int | float)
                                    or clear_after < 0):
        problems.append(f"{where}: clear_after_s must be a number >= 0")
    resource = _resource(raw.get("resource"), problems, where)
    if means == "peer-down" and resource.address_from is None:
        problems.append(f"{where}: means peer-down needs a resource with address_from")
    if means == "link-down" and resource.type != "interface":
        problems.append(f"{where}: means link-down needs an interface resource")
    return TrapRule(
        name=name, trap=trap or "", action=str(action), problem=problem, resource=resource,
        when=_when(raw.get("when"), problems, where), severity=severity,
        alarm_type=_text(raw, "alarm_type", "communicationsAlarm", problems, where),
        probable_cause=_text(raw, "probable_cause", "unspecified", problems, where),
        specific_problem=_text(raw, "specific_problem", "", problems, where),
        clear_after_s=float(clear_after) if isinstance(clear_after, int | float) else None,
        means=str(means) if means else None)


def _event_rule(raw: Any, index: int, seen: set[str], problems: list[str]) -> EventRule | None:
    if not isinstance(raw, dict):
        problems.append(f"events #{index}: not a mapping")
        return None
    name = str(raw.get("name", ""))
    where = f"event rule {name}" if name else f"events #{index}"
    known = {"name", "alarm_type", "probable_cause", "specific_problem", "means"}
    if set(raw) - known:
        problems.append(f"{where}: unknown keys {sorted(set(raw) - known)}")
    if not _NAME.match(name):
        problems.append(f"{where}: name must be kebab-case")
    elif name in seen:
        problems.append(f"{where}: name used twice")
    seen.add(name)
    means = raw.get("means")
    if means is not None and means not in _MEANS:
        problems.append(f"{where}: means must be one of {_MEANS}")
    return EventRule(
        name=name,
        alarm_type=_text(raw, "alarm_type", "qualityOfServiceAlarm", problems, where),
        probable_cause=_text(raw, "probable_cause", "thresholdCrossed", problems, where),
        specific_problem=_text(raw, "specific_problem", "", problems, where),
        means=str(means) if means else None)


def load_fault_rules(path: Path | None = None) -> FaultRules:
    """Read and check a rules file (default: the shipped one)."""
    path = path or DEFAULT_RULES_FILE
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise FaultRulesError(path, [f"cannot read: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise FaultRulesError(path, [f"not YAML: {exc}"]) from None
    if not isinstance(raw, dict) or set(raw) - {"traps", "events"}:
        raise FaultRulesError(path, ["the file must be a mapping with 'traps' and 'events'"])
    problems: list[str] = []
    seen: set[str] = set()
    traps = [r for i, item in enumerate(raw.get("traps") or [], 1)
             if (r := _trap_rule(item, i, seen, problems)) is not None]
    seen_events: set[str] = set()
    events = [e for i, item in enumerate(raw.get("events") or [], 1)
              if (e := _event_rule(item, i, seen_events, problems)) is not None]
    if problems:
        raise FaultRulesError(path, problems)
    by_trap: dict[str, list[TrapRule]] = {}
    for rule in traps:
        by_trap.setdefault(rule.trap, []).append(rule)
    return FaultRules(str(path), tuple(traps), {e.name: e for e in events},
                      {k: tuple(v) for k, v in by_trap.items()})


def is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True
