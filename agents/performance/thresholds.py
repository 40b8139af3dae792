"""Threshold rules kept as data (data/thresholds.yaml) and the engine that turns rates,
discontinuities and poll outcomes into raise and clear events for the fault agent.

The engine keeps one state per (device, resource, rule), ``resource`` being the interface
name or ``None`` for the device itself. A rule raises once, when its raise condition has
held for ``raise_when.samples`` consecutive samples; while active it never raises again;
it clears once, when its clear condition has held for ``clear_when.samples`` consecutive
samples. The state lives in memory: after a restart a condition that still holds raises
again, and the fault agent's de-duplication (alarms keyed by device, resource, problem)
absorbs it.

Errors: a rules file that cannot be used raises :class:`ThresholdRulesError`, a
:class:`topology.errors.ConfigError` that names the file and the rule.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from sqlmodel import Field, SQLModel

from agents.performance.store import DiscontinuityLike, RateLike
from topology.errors import ConfigError
from topology.inventory import UtcDateTime, utcnow

__all__ = [
    "DEFAULT_RULES_FILE",
    "METRICS",
    "SEVERITIES",
    "ActiveCondition",
    "Condition",
    "PerfEvent",
    "PerfEventPublic",
    "Rule",
    "ThresholdEngine",
    "ThresholdRules",
    "ThresholdRulesError",
    "load_rules",
]

DEFAULT_RULES_FILE = Path(__file__).parent / "data" / "thresholds.yaml"

SEVERITIES = ("critical", "major", "minor", "warning", "indeterminate")  # X.733

POLL_METRIC = "poll_failed"
DISCONTINUITY_METRIC = "discontinuity"

# metric -> (attribute of the in direction, of the out direction, unit); a metric named
# without a direction is the larger of the two
_PAIRED: dict[str, tuple[str, str, str]] = {
    "util_pct": ("in_util_pct", "out_util_pct", "%"),
    "bps": ("in_bps", "out_bps", "bit/s"),
    "pps": ("in_pps", "out_pps", "packets/s"),
    "errors_ps": ("in_errors_ps", "out_errors_ps", "errors/s"),
    "discards_ps": ("in_discards_ps", "out_discards_ps", "discards/s"),
}
_SINGLE: dict[str, tuple[str, str]] = {
    attr: (direction, unit)
    for in_attr, out_attr, unit in _PAIRED.values()
    for attr, direction in ((in_attr, "in"), (out_attr, "out"))
}
RATE_METRICS = frozenset(_PAIRED) | frozenset(_SINGLE)
METRICS = RATE_METRICS | {POLL_METRIC, DISCONTINUITY_METRIC}

_COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "above": (operator.gt, ">"),
    "below": (operator.lt, "<"),
    "at_least": (operator.ge, ">="),
    "at_most": (operator.le, "<="),
}
_RULE_KEYS = frozenset({"name", "description", "enabled", "severity", "metric",
                        "raise_when", "clear_when", "reason"})


# --------------------------------------------------------------------------- events


class PerfEventBase(SQLModel):
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, index=True)
    device: str = Field(index=True)
    resource: str | None = Field(default=None, description="interface name; None: the device")
    rule: str
    kind: str = Field(description='"raise" | "clear"')
    severity: str = Field(description="critical | major | minor | warning | indeterminate")
    metric: str
    value: float | None = None
    threshold: float | None = None
    detail: str = Field(default="", description="for people: the rule, the values")
    status_code: str | None = Field(default=None, description="device-unreachable: the "
                                    "poll's StatusCode value")
    consumed: bool = Field(default=False, index=True,
                           description="the fault agent has taken this event")


class PerfEvent(PerfEventBase, table=True):
    """A threshold rule raised or cleared, for the fault agent."""

    __tablename__ = "perf_event"

    id: int | None = Field(default=None, primary_key=True)


class PerfEventPublic(PerfEventBase):
    """A threshold event as the API shows it."""

    id: int


# --------------------------------------------------------------------------- rules


class ThresholdRulesError(ConfigError):
    """A threshold rules file was refused; ``rule`` is the rule's name (or ``#n``, its
    position, when it has none), ``None`` for a problem of the whole file."""

    def __init__(self, path: Path | str, problem: str, *, rule: str | None = None) -> None:
        where = f"threshold rules {path}" + (f": rule {rule}" if rule else "")
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.rule = rule
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Condition:
    """``samples`` consecutive samples where ``value <op> threshold`` (rate rules), or
    simply ``samples`` consecutive samples (poll and discontinuity rules: ``op`` None)."""

    samples: int = 1
    op: str | None = None
    threshold: float | None = None

    def holds(self, value: float) -> bool:
        if self.op is None or self.threshold is None:
            return True
        return _COMPARISONS[self.op][0](value, self.threshold)

    @property
    def symbol(self) -> str:
        return _COMPARISONS[self.op][1] if self.op else ""


@dataclass(frozen=True, slots=True)
class Rule:
    """One threshold rule, as validated by :func:`load_rules`."""

    name: str
    metric: str
    severity: str
    raise_when: Condition
    clear_when: Condition
    reason: str | None = None
    description: str = ""
    enabled: bool = True

    @property
    def kind(self) -> str:
        """``"rate"``, ``"poll"`` or ``"discontinuity"``: what the rule reads."""
        if self.metric == POLL_METRIC:
            return "poll"
        if self.metric == DISCONTINUITY_METRIC:
            return "discontinuity"
        return "rate"


@dataclass(frozen=True, slots=True)
class ThresholdRules:
    """The enabled and disabled rules of one file, in file order."""

    rules: tuple[Rule, ...]
    source: str = ""

    def of_kind(self, kind: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.enabled and r.kind == kind)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _condition(path: Path | str, rule: str, key: str, raw: Any,
               comparisons: bool) -> Condition:
    if not isinstance(raw, Mapping):
        raise ThresholdRulesError(path, f"{key} must be a mapping, not {raw!r}", rule=rule)
    allowed = {"samples", *_COMPARISONS} if comparisons else {"samples"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ThresholdRulesError(path, f"{key}: unknown keys {unknown} (allowed: "
                                  f"{sorted(allowed)})", rule=rule)
    samples = raw.get("samples", 1)
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise ThresholdRulesError(path, f"{key}: samples must be a whole number >= 1, "
                                  f"not {samples!r}", rule=rule)
    ops = [k for k in raw if k in _COMPARISONS]
    if not comparisons:
        return Condition(samples)
    if len(ops) != 1:
        raise ThresholdRulesError(path, f"{key} needs exactly one of "
                                  f"{sorted(_COMPARISONS)}, got {ops or 'none'}", rule=rule)
    threshold = raw[ops[0]]
    if not _number(threshold):
        raise ThresholdRulesError(path, f"{key}: {ops[0]} must be a number, not "
                                  f"{threshold!r}", rule=rule)
    return Condition(samples, ops[0], float(threshold))


def _check_hysteresis(path: Path | str, rule: str, up: Condition, down: Condition) -> None:
    """The clear condition must point the other way, at or inside the raise threshold."""
    assert up.threshold is not None and down.threshold is not None
    rising = up.op in ("above", "at_least")
    if rising != (down.op in ("below", "at_most")):
        raise ThresholdRulesError(path, f"clear_when {down.op} must point the other way "
                                  f"from raise_when {up.op}", rule=rule)
    overlap = down.threshold > up.threshold if rising else down.threshold < up.threshold
    if overlap:
        raise ThresholdRulesError(
            path, f"clear_when {down.op} {down.threshold:g} overlaps raise_when {up.op} "
            f"{up.threshold:g}: a value could raise and clear", rule=rule)


def _rule(path: Path | str, position: int, raw: Any, seen: set[str]) -> Rule:
    if not isinstance(raw, Mapping):
        raise ThresholdRulesError(path, f"must be a mapping, not {raw!r}", rule=f"#{position}")
    name = raw.get("name")
    if isinstance(name, bool):
        raise ThresholdRulesError(path, f"needs a name (YAML reads off/on/yes/no as "
                                  f"{str(name).lower()}: quote it)", rule=f"#{position}")
    if not isinstance(name, str) or not name.strip():
        raise ThresholdRulesError(path, "needs a name", rule=f"#{position}")
    if name in seen:
        raise ThresholdRulesError(path, "name used twice", rule=name)
    unknown = sorted(set(raw) - _RULE_KEYS)
    if unknown:
        raise ThresholdRulesError(path, f"unknown keys {unknown} (allowed: "
                                  f"{sorted(_RULE_KEYS)})", rule=name)
    metric = raw.get("metric")
    if metric not in METRICS:
        raise ThresholdRulesError(path, f"unknown metric {metric!r} (known: "
                                  f"{sorted(METRICS)})", rule=name)
    severity = raw.get("severity")
    if severity not in SEVERITIES:
        raise ThresholdRulesError(path, f"severity must be one of {list(SEVERITIES)}, not "
                                  f"{severity!r}", rule=name)
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ThresholdRulesError(path, f"enabled must be true or false, not {enabled!r}",
                                  rule=name)
    reason = raw.get("reason")
    if metric == DISCONTINUITY_METRIC:
        if not isinstance(reason, str) or not reason:
            raise ThresholdRulesError(path, "metric discontinuity needs a reason (the rate "
                                      "engine's, e.g. counter-backwards)", rule=name)
        if "raise_when" in raw:
            raise ThresholdRulesError(path, "metric discontinuity raises on each matching "
                                      "discontinuity: raise_when is not allowed", rule=name)
        up = Condition(1)
    else:
        if reason is not None:
            raise ThresholdRulesError(path, "reason is only for metric discontinuity",
                                      rule=name)
        if "raise_when" not in raw:
            raise ThresholdRulesError(path, "needs raise_when", rule=name)
        up = _condition(path, name, "raise_when", raw["raise_when"], metric in RATE_METRICS)
    if "clear_when" not in raw and metric != DISCONTINUITY_METRIC:
        raise ThresholdRulesError(path, "needs clear_when", rule=name)
    down = _condition(path, name, "clear_when", raw.get("clear_when", {}),
                      metric in RATE_METRICS)
    if metric in RATE_METRICS:
        _check_hysteresis(path, name, up, down)
    seen.add(name)
    return Rule(name=name, metric=metric, severity=severity, raise_when=up, clear_when=down,
                reason=reason, description=str(raw.get("description") or ""),
                enabled=enabled)


def load_rules(path: Path | str | None = None) -> ThresholdRules:
    """Rules from ``path`` (an operator's file) or the shipped data/thresholds.yaml,
    validated: unknown keys, metrics, comparisons or severities are refused with a
    :class:`ThresholdRulesError` naming the rule."""
    path = Path(path) if path is not None else DEFAULT_RULES_FILE
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ThresholdRulesError(path, str(exc)) from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping) or set(raw) - {"rules"}:
        raise ThresholdRulesError(path, "the file must be a mapping with one key, 'rules'")
    items = raw.get("rules") or []
    if not isinstance(items, list):
        raise ThresholdRulesError(path, "'rules' must be a list")
    seen: set[str] = set()
    return ThresholdRules(tuple(_rule(path, i, item, seen) for i, item in enumerate(items, 1)),
                          str(path))


# --------------------------------------------------------------------------- formatting

_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def _scaled(value: float, unit: str, digits: str) -> str:
    if unit in ("bit/s", "packets/s"):
        for factor, prefix in _SI:
            if abs(value) >= factor:
                return f"{value / factor:{digits}} {prefix}{unit}"
    return f"{value:{digits}} {unit}"


def _value_text(value: float, unit: str) -> str:
    return _scaled(value, unit, ".3f" if 0 < abs(value) < 0.1 else ".1f")


def _threshold_text(value: float, unit: str) -> str:
    return _scaled(value, unit, "g")


def _rate_value(sample: RateLike, metric: str) -> tuple[float | None, str, str]:
    """(value, direction, unit) of ``metric`` in ``sample``."""
    if metric in _PAIRED:
        in_attr, out_attr, unit = _PAIRED[metric]
        in_v, out_v = getattr(sample, in_attr), getattr(sample, out_attr)
        if in_v is None and out_v is None:
            return None, "", unit
        if out_v is None or (in_v is not None and in_v >= out_v):
            return float(in_v), "in", unit
        return float(out_v), "out", unit
    direction, unit = _SINGLE[metric]
    value = getattr(sample, metric)
    return (None if value is None else float(value)), direction, unit


# --------------------------------------------------------------------------- engine


class ActiveCondition(NamedTuple):
    """A rule that raised and has not cleared yet."""

    device: str
    resource: str | None
    rule: str


@dataclass(slots=True)
class _State:
    active: bool = False
    raise_count: int = 0
    clear_count: int = 0
    since_s: float = 0.0        # discontinuity rules: when it raised
    failures: int = 0           # poll rules: failed polls in a row


_Key = tuple[str, str | None, str]


class ThresholdEngine:
    """Evaluates rules on what the poller produced (the shipped rules when ``rules`` is
    None); one instance per poller, not thread-safe (feed it from one task)."""

    def __init__(self, rules: ThresholdRules | None = None) -> None:
        self.rules = rules if rules is not None else load_rules()
        self._states: dict[_Key, _State] = {}

    def active(self) -> list[ActiveCondition]:
        """Active conditions, sorted by device, resource, rule."""
        keys = [k for k, st in self._states.items() if st.active]
        return [ActiveCondition(*k) for k in sorted(keys, key=lambda k: (k[0], k[1] or "",
                                                                         k[2]))]

    def _event(self, rule: Rule, kind: str, at: datetime, device: str,
               resource: str | None, detail: str, *, value: float | None = None,
               threshold: float | None = None, status_code: str | None = None) -> PerfEvent:
        return PerfEvent(at=at, device=device, resource=resource, rule=rule.name, kind=kind,
                         severity=rule.severity, metric=rule.metric, value=value,
                         threshold=threshold, detail=detail, status_code=status_code)

    def _forget_if_idle(self, key: _Key, state: _State) -> None:
        if not state.active and not state.raise_count and not state.failures:
            self._states.pop(key, None)

    def evaluate_rates(self, samples: Iterable[RateLike]) -> list[PerfEvent]:
        """Events from a batch of rates, in sample order (feed samples oldest first)."""
        events: list[PerfEvent] = []
        rate_rules = self.rules.of_kind("rate")
        gap_rules = self.rules.of_kind("discontinuity")
        for sample in samples:
            at = datetime.fromtimestamp(sample.t_end, UTC)
            for rule in rate_rules:
                event = self._rate(rule, sample, at)
                if event is not None:
                    events.append(event)
            for rule in gap_rules:
                event = self._normal_rate(rule, sample, at)
                if event is not None:
                    events.append(event)
        return events

    def _rate(self, rule: Rule, sample: RateLike, at: datetime) -> PerfEvent | None:
        key = (sample.device, sample.interface, rule.name)
        state = self._states.setdefault(key, _State())
        value, direction, unit = _rate_value(sample, rule.metric)
        if value is None:  # no evidence either way: both runs restart
            state.raise_count = state.clear_count = 0
            self._forget_if_idle(key, state)
            return None
        cond = rule.clear_when if state.active else rule.raise_when
        held = cond.holds(value)
        if not state.active:
            state.raise_count = state.raise_count + 1 if held else 0
            if state.raise_count < cond.samples:
                self._forget_if_idle(key, state)
                return None
            state.active, state.raise_count, state.clear_count = True, 0, 0
            kind, label = "raise", rule.name
        else:
            state.clear_count = state.clear_count + 1 if held else 0
            if state.clear_count < cond.samples:
                return None
            state.active, state.raise_count, state.clear_count = False, 0, 0
            self._forget_if_idle(key, state)
            kind, label = "clear", f"{rule.name} cleared"
        assert cond.threshold is not None
        plural = "sample" if cond.samples == 1 else "samples"
        detail = (f"{label}: {sample.device}:{sample.interface} {direction} "
                  f"{_value_text(value, unit)} {cond.symbol} "
                  f"{_threshold_text(cond.threshold, unit)} for {cond.samples} {plural}")
        return self._event(rule, kind, at, sample.device, sample.interface, detail,
                           value=value, threshold=cond.threshold)

    def _normal_rate(self, rule: Rule, sample: RateLike, at: datetime) -> PerfEvent | None:
        key = (sample.device, sample.interface, rule.name)
        state = self._states.get(key)
        if state is None or not state.active or sample.t_end <= state.since_s:
            return None
        state.clear_count += 1
        if state.clear_count < rule.clear_when.samples:
            return None
        del self._states[key]
        since = datetime.fromtimestamp(state.since_s, UTC).isoformat(timespec="seconds")
        plural = "rate" if state.clear_count == 1 else "rates"
        detail = (f"{rule.name} cleared: {sample.device}:{sample.interface} "
                  f"{state.clear_count} normal {plural} since the {rule.reason} at {since}")
        return self._event(rule, "clear", at, sample.device, sample.interface, detail)

    def evaluate_gaps(self, discontinuities: Iterable[DiscontinuityLike]) -> list[PerfEvent]:
        """Raise events for discontinuities a rule watches (once while active)."""
        events: list[PerfEvent] = []
        for gap in discontinuities:
            for rule in self.rules.of_kind("discontinuity"):
                if gap.reason != rule.reason:
                    continue
                key = (gap.device, gap.interface, rule.name)
                state = self._states.setdefault(key, _State())
                state.since_s = max(state.since_s, gap.at)  # normal rates count from here
                state.clear_count = 0
                if state.active:
                    continue
                state.active = True
                detail = (f"{rule.name}: {gap.device}:{gap.interface} discontinuity "
                          f"{gap.reason}" + (f": {gap.detail}" if gap.detail else ""))
                events.append(self._event(rule, "raise", datetime.fromtimestamp(gap.at, UTC),
                                          gap.device, gap.interface, detail))
        return events

    def poll_result(self, device: str, ok: bool, status_code: str, detail: str = "", *,
                    at: datetime | None = None) -> list[PerfEvent]:
        """Events from one poll of ``device``: ``ok`` False counts a failed poll
        (``status_code`` a :class:`topology.errors.StatusCode` value, ``detail`` why)."""
        when = at or utcnow()
        events: list[PerfEvent] = []
        for rule in self.rules.of_kind("poll"):
            key: _Key = (device, None, rule.name)
            state = self._states.setdefault(key, _State())
            why = f" ({detail})" if detail else ""
            if not ok:
                state.failures += 1
                state.clear_count = 0
                if state.active or state.failures < rule.raise_when.samples:
                    continue
                state.active = True
                text = (f"{rule.name}: {device} {state.failures} consecutive failed polls, "
                        f"last {status_code}{why}")
                events.append(self._event(rule, "raise", when, device, None, text,
                                          value=float(state.failures),
                                          threshold=float(rule.raise_when.samples),
                                          status_code=status_code))
                continue
            if not state.active:
                state.failures = 0
                self._forget_if_idle(key, state)
                continue
            state.clear_count += 1
            if state.clear_count < rule.clear_when.samples:
                continue
            failures = state.failures
            del self._states[key]
            plural = "poll" if rule.clear_when.samples == 1 else "polls"
            text = (f"{rule.name} cleared: {device} answered {rule.clear_when.samples} "
                    f"{plural} ({status_code}) after {failures} failed polls")
            events.append(self._event(rule, "clear", when, device, None, text,
                                      value=float(failures),
                                      threshold=float(rule.raise_when.samples),
                                      status_code=status_code))
        return events
