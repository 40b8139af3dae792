"""Unit tests for agents.performance.thresholds: the rules file and the engine."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent

import pytest
from sqlmodel import Session, select

from agents.performance.store import PerfStore, init_perf_db
from agents.performance.thresholds import (
    DEFAULT_RULES_FILE,
    ActiveCondition,
    Condition,
    PerfEvent,
    ThresholdEngine,
    ThresholdRulesError,
    load_rules,
)
from topology.db import dispose_engines, get_engine
from topology.errors import ConfigError, StatusCode

E0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class Rate:
    """Stands in for agents.performance.rates.RateSample (same attributes)."""

    device: str
    interface: str
    if_index: int
    t_start: float
    t_end: float
    in_bps: float | None = None
    out_bps: float | None = None
    in_pps: float | None = None
    out_pps: float | None = None
    in_errors_ps: float | None = 0.0
    out_errors_ps: float | None = 0.0
    in_discards_ps: float | None = None
    out_discards_ps: float | None = None
    in_util_pct: float | None = None
    out_util_pct: float | None = None
    in_octets_delta: int | None = None
    out_octets_delta: int | None = None
    speed_mbps: int | None = 1000
    oper_status: str | None = "up"


@dataclass(frozen=True)
class Gap:
    device: str
    interface: str
    if_index: int
    at: float
    reason: str
    detail: str


class Feed:
    """Samples one minute apart for one interface."""

    def __init__(self, device: str = "r1", interface: str = "eth1") -> None:
        self.device, self.interface, self.t = device, interface, E0

    def __call__(self, **values: float | None) -> Rate:
        self.t += 60
        return Rate(self.device, self.interface, 1, self.t - 60, self.t, **values)  # type: ignore[arg-type]


@pytest.fixture
def engine() -> ThresholdEngine:
    return ThresholdEngine(load_rules())


def util(feed: Feed, engine: ThresholdEngine, *values: float | None,
         out: float | None = 1.0) -> list[list[PerfEvent]]:
    """Feed one sample per value, one evaluate call each; the events of each call."""
    return [engine.evaluate_rates([feed(in_util_pct=v, out_util_pct=out)]) for v in values]


# --------------------------------------------------------------------------- shipped rules


def test_shipped_rules_say_what_the_brief_says() -> None:
    rules = {r.name: r for r in load_rules().rules}
    assert list(rules) == ["high-utilisation", "interface-errors", "device-unreachable",
                           "counter-backwards"]
    high = rules["high-utilisation"]
    assert (high.metric, high.severity, high.kind) == ("util_pct", "major", "rate")
    assert high.raise_when == Condition(3, "above", 80.0)
    assert high.clear_when == Condition(2, "below", 70.0)
    errors = rules["interface-errors"]
    assert (errors.raise_when, errors.clear_when, errors.severity) == (
        Condition(2, "above", 1.0), Condition(2, "at_most", 0.0), "minor")
    down = rules["device-unreachable"]
    assert (down.kind, down.raise_when.samples, down.clear_when.samples, down.severity) == (
        "poll", 3, 1, "critical")
    backwards = rules["counter-backwards"]
    assert (backwards.kind, backwards.reason, backwards.severity) == (
        "discontinuity", "counter-backwards", "warning")
    assert load_rules(DEFAULT_RULES_FILE).rules == load_rules().rules
    assert ThresholdEngine().rules.rules == load_rules().rules


# --------------------------------------------------------------------------- rate rules


def test_high_utilisation_raises_after_exactly_3_samples(engine: ThresholdEngine) -> None:
    feed = Feed()
    first, second, third = util(feed, engine, 85.0, 90.0, 93.2)
    assert first == [] and second == []
    (event,) = third
    assert (event.kind, event.rule, event.severity, event.device, event.resource) == (
        "raise", "high-utilisation", "major", "r1", "eth1")
    assert (event.metric, event.value, event.threshold) == ("util_pct", 93.2, 80.0)
    assert event.at == datetime.fromtimestamp(feed.t, UTC)
    assert event.detail == "high-utilisation: r1:eth1 in 93.2 % > 80 % for 3 samples"
    assert (event.consumed, event.status_code, event.id) == (False, None, None)
    assert engine.active() == [ActiveCondition("r1", "eth1", "high-utilisation")]


def test_no_second_raise_while_active(engine: ThresholdEngine) -> None:
    feed = Feed()
    events = util(feed, engine, *[95.0] * 10)
    assert [len(e) for e in events] == [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]


def test_the_samples_must_be_consecutive(engine: ThresholdEngine) -> None:
    feed = Feed()
    assert not any(util(feed, engine, 85.0, 85.0, 50.0, 85.0, 85.0))
    assert len(util(feed, engine, 85.0)[0]) == 1


def test_unknown_utilisation_counts_for_nothing(engine: ThresholdEngine) -> None:
    feed = Feed()
    assert not any(util(feed, engine, 85.0, 85.0, None, 85.0, 85.0, out=None))
    assert engine.active() == []


def test_high_utilisation_clears_after_2_samples_below_70(engine: ThresholdEngine) -> None:
    feed = Feed()
    util(feed, engine, 90.0, 90.0, 90.0)
    # 75 is neither above 80 nor below 70: it keeps the alarm and restarts the clear count
    events = util(feed, engine, 65.0, 75.0, 65.0, 60.5)
    assert [len(e) for e in events] == [0, 0, 0, 1]
    (event,) = events[-1]
    assert (event.kind, event.severity, event.value, event.threshold) == (
        "clear", "major", 60.5, 70.0)
    assert event.detail == "high-utilisation cleared: r1:eth1 in 60.5 % < 70 % for 2 samples"
    assert engine.active() == []
    # and it can raise again, once more after 3 samples
    assert [len(e) for e in util(feed, engine, 81.0, 81.0, 81.0)] == [0, 0, 1]


def test_utilisation_names_the_busier_direction(engine: ThresholdEngine) -> None:
    feed = Feed()
    events = [engine.evaluate_rates([feed(in_util_pct=10.0, out_util_pct=97.25)])
              for _ in range(3)]
    assert events[2][0].detail == "high-utilisation: r1:eth1 out 97.2 % > 80 % for 3 samples"


def test_state_is_per_interface_and_device(engine: ThresholdEngine) -> None:
    a, b, c = Feed("r1", "eth1"), Feed("r1", "eth2"), Feed("r2", "eth1")
    events: list[PerfEvent] = []
    for _ in range(3):   # one batch per poll, three interfaces in each
        events += engine.evaluate_rates([a(in_util_pct=90.0), b(in_util_pct=90.0),
                                         c(in_util_pct=10.0)])
    assert [(e.device, e.resource) for e in events] == [("r1", "eth1"), ("r1", "eth2")]
    assert engine.active() == [ActiveCondition("r1", "eth1", "high-utilisation"),
                               ActiveCondition("r1", "eth2", "high-utilisation")]


def test_interface_errors_raise_after_2_and_clear_at_0(engine: ThresholdEngine) -> None:
    feed = Feed()

    def errors(in_ps: float, out_ps: float = 0.0) -> list[PerfEvent]:
        return engine.evaluate_rates([feed(in_errors_ps=in_ps, out_errors_ps=out_ps)])

    assert errors(1.0) == []                       # 1 is not above 1
    assert errors(0.0, 2.5) == []
    (raised,) = errors(0.0, 3.0)
    assert (raised.rule, raised.severity, raised.value, raised.threshold) == (
        "interface-errors", "minor", 3.0, 1.0)
    assert raised.detail == "interface-errors: r1:eth1 out 3.0 errors/s > 1 errors/s for 2 samples"
    assert errors(0.0) == []
    assert errors(0.5) == []                      # not at most 0: the clear count restarts
    assert errors(0.0) == []
    (cleared,) = errors(0.0)
    assert cleared.kind == "clear"
    assert cleared.detail == ("interface-errors cleared: r1:eth1 in 0.0 errors/s <= 0 "
                              "errors/s for 2 samples")


# --------------------------------------------------------------------------- poll rule


def test_unreachable_after_3_failed_polls_clears_on_the_first_good(
        engine: ThresholdEngine) -> None:
    timeout = StatusCode.TIMEOUT.value
    assert engine.poll_result("r1", False, timeout, "no answer after 2 retries") == []
    assert engine.poll_result("r1", False, timeout, "no answer after 2 retries") == []
    (raised,) = engine.poll_result("r1", False, StatusCode.AUTH_FAILED.value, "bad community")
    assert (raised.kind, raised.rule, raised.severity, raised.resource) == (
        "raise", "device-unreachable", "critical", None)
    assert (raised.status_code, raised.metric, raised.value, raised.threshold) == (
        "auth_failed", "poll_failed", 3.0, 3.0)
    assert raised.detail == ("device-unreachable: r1 3 consecutive failed polls, last "
                             "auth_failed (bad community)")
    assert engine.active() == [ActiveCondition("r1", None, "device-unreachable")]
    assert engine.poll_result("r1", False, timeout) == []       # never twice while active

    (cleared,) = engine.poll_result("r1", True, StatusCode.OK.value, "")
    assert (cleared.kind, cleared.status_code, cleared.severity) == ("clear", "ok", "critical")
    assert cleared.detail == ("device-unreachable cleared: r1 answered 1 poll (ok) after 4 "
                              "failed polls")
    assert engine.active() == []
    assert engine.poll_result("r1", True, "ok") == []


def test_unreachable_needs_consecutive_failures(engine: ThresholdEngine) -> None:
    outcomes = [False, False, True, False, False]
    assert not any(engine.poll_result("r1", ok, "ok" if ok else "timeout") for ok in outcomes)
    assert len(engine.poll_result("r1", False, "timeout")) == 1
    assert engine.poll_result("r2", False, "timeout") == []     # per device


def test_poll_events_carry_the_given_time(engine: ThresholdEngine) -> None:
    when = datetime(2025, 1, 1, 12, 3, tzinfo=UTC)
    for _ in range(2):
        engine.poll_result("r1", False, "timeout", at=when)
    (event,) = engine.poll_result("r1", False, "timeout", at=when)
    assert event.at == when


# --------------------------------------------------------------------------- discontinuities


def test_counter_backwards_raises_and_clears_on_the_next_normal_rate(
        engine: ThresholdEngine) -> None:
    feed = Feed()
    engine.evaluate_rates([feed(in_util_pct=1.0)])
    at = feed.t + 60
    gap = Gap("r1", "eth1", 1, at, "counter-backwards", "in_octets went from 900 to 300")
    (raised,) = engine.evaluate_gaps([gap, Gap("r1", "eth2", 2, at, "gap", "missed poll")])
    assert (raised.kind, raised.rule, raised.severity, raised.resource, raised.metric) == (
        "raise", "counter-backwards", "warning", "eth1", "discontinuity")
    assert raised.at == datetime.fromtimestamp(at, UTC)
    assert raised.detail == ("counter-backwards: r1:eth1 discontinuity counter-backwards: "
                             "in_octets went from 900 to 300")
    assert engine.evaluate_gaps([gap]) == []                     # once while active
    assert engine.active() == [ActiveCondition("r1", "eth1", "counter-backwards")]

    # a rate of another interface, or one that ended before the discontinuity, does not clear
    assert engine.evaluate_rates([Feed("r1", "eth2")(in_util_pct=1.0)]) == []
    feed.t = at - 60
    assert engine.evaluate_rates([feed(in_util_pct=1.0)]) == []
    (cleared,) = engine.evaluate_rates([feed(in_util_pct=1.0)])
    assert (cleared.kind, cleared.resource, cleared.severity) == ("clear", "eth1", "warning")
    assert cleared.detail == ("counter-backwards cleared: r1:eth1 1 normal rate since the "
                              "counter-backwards at 2025-01-01T12:02:00+00:00")
    assert engine.active() == []


def test_other_discontinuities_raise_nothing(engine: ThresholdEngine) -> None:
    reasons = ["agent-restart", "discontinuity", "gap", "first-sample", "index-changed"]
    assert engine.evaluate_gaps([Gap("r1", "eth1", 1, E0, r, "") for r in reasons]) == []
    assert engine.active() == []


# --------------------------------------------------------------------------- rule files


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "thresholds.yaml"
    path.write_text(dedent(text))
    return path


def test_a_custom_rule_file(tmp_path: Path) -> None:
    path = write(tmp_path, """
        rules:
          - name: fat-pipe
            metric: in_bps
            raise_when: {at_least: 1000000000}
            clear_when: {below: 500000000, samples: 2}
            severity: warning
          - name: quiet
            enabled: false
            metric: util_pct
            raise_when: {above: 0}
            clear_when: {at_most: 0}
            severity: minor
    """)
    rules = load_rules(path)
    assert rules.source == str(path)
    engine = ThresholdEngine(rules)
    feed = Feed()
    (event,) = engine.evaluate_rates([feed(in_bps=1.5e9, out_bps=9e9, in_util_pct=99.0)])
    assert event.detail == "fat-pipe: r1:eth1 in 1.5 Gbit/s >= 1 Gbit/s for 1 sample"
    assert engine.active() == [ActiveCondition("r1", "eth1", "fat-pipe")]


def test_an_empty_file_has_no_rules(tmp_path: Path) -> None:
    assert load_rules(write(tmp_path, "")).rules == ()
    assert ThresholdEngine(load_rules(write(tmp_path, "rules: []"))).poll_result(
        "r1", False, "timeout") == []


GOOD = """
    rules:
      - name: hot
        metric: util_pct
        raise_when: {above: 80, samples: 3}
        clear_when: {below: 70, samples: 2}
        severity: major
"""


@pytest.mark.parametrize(("change", "message"), [
    (("severity: major", "severity: major\n    colour: red"),
     "rule hot: unknown keys ['colour']"),
    (("metric: util_pct", "metric: temperature"), "rule hot: unknown metric 'temperature'"),
    (("severity: major", "severity: urgent"), "rule hot: severity must be one of"),
    (("raise_when: {above: 80, samples: 3}", "raise_when: {over: 80}"),
     "rule hot: raise_when: unknown keys ['over']"),
    (("raise_when: {above: 80, samples: 3}", "raise_when: {above: 80, below: 90}"),
     "rule hot: raise_when needs exactly one of"),
    (("raise_when: {above: 80, samples: 3}", "raise_when: {samples: 3}"),
     "rule hot: raise_when needs exactly one of"),
    (("raise_when: {above: 80, samples: 3}", "raise_when: {above: high}"),
     "rule hot: raise_when: above must be a number"),
    (("samples: 3", "samples: 0"), "rule hot: raise_when: samples must be a whole number"),
    (("clear_when: {below: 70, samples: 2}", "clear_when: {below: 85}"),
     "rule hot: clear_when below 85 overlaps raise_when above 80"),
    (("clear_when: {below: 70, samples: 2}", "clear_when: {above: 90}"),
     "rule hot: clear_when above must point the other way"),
    (("    clear_when: {below: 70, samples: 2}\n", ""), "rule hot: needs clear_when"),
    (("name: hot", "name: ''"), "rule #1: needs a name"),
    (("name: hot", "name: off"), "rule #1: needs a name (YAML reads off"),
    (("metric: util_pct", "metric: util_pct\n    reason: counter-backwards"),
     "rule hot: reason is only for metric discontinuity"),
    (("metric: util_pct", "metric: util_pct\n    enabled: sometimes"),
     "rule hot: enabled must be true or false"),
])
def test_rule_file_errors_name_the_rule(tmp_path: Path, change: tuple[str, str],
                                        message: str) -> None:
    old, new = change
    text = dedent(GOOD)
    assert old in text
    path = write(tmp_path, text.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_rule_errors_carry_their_context(tmp_path: Path) -> None:
    path = write(tmp_path, dedent(GOOD).replace("metric: util_pct", "metric: temperature"))
    with pytest.raises(ThresholdRulesError) as info:
        load_rules(path)
    assert (info.value.rule, info.value.path) == ("hot", str(path))
    assert "unknown metric" in info.value.problem


@pytest.mark.parametrize(("text", "message"), [
    (dedent(GOOD) + dedent(GOOD).split("rules:\n", 1)[1], "rule hot: name used twice"),
    ("""
     rules:
       - name: down
         metric: poll_failed
         raise_when: {above: 3}
         clear_when: {samples: 1}
         severity: critical
     """, "rule down: raise_when: unknown keys ['above']"),
    ("""
     rules:
       - name: backwards
         metric: discontinuity
         severity: warning
     """, "rule backwards: metric discontinuity needs a reason"),
    ("""
     rules:
       - name: backwards
         metric: discontinuity
         reason: counter-backwards
         raise_when: {samples: 2}
         severity: warning
     """, "rule backwards: metric discontinuity raises on each matching discontinuity"),
    ("thresholds: []", "the file must be a mapping with one key, 'rules'"),
    ("rules: {hot: {}}", "'rules' must be a list"),
    ("rules:\n  - just a string", "rule #1: must be a mapping"),
    ("rules: [unclosed", "while parsing"),
])
def test_rule_file_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="threshold rules") as info:
        load_rules(write(tmp_path, text))
    assert message in str(info.value)


def test_missing_rule_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_rules(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------- storage


@pytest.fixture
def _fresh_engines() -> Iterator[None]:
    yield
    dispose_engines()


@pytest.mark.usefixtures("_fresh_engines")
def test_events_are_stored_for_the_fault_agent(tmp_path: Path,
                                               engine: ThresholdEngine) -> None:
    db = get_engine(f"sqlite:///{tmp_path / 'perf.db'}")
    init_perf_db(db)
    feed = Feed()
    events = [e for batch in util(feed, engine, 95.0, 95.0, 95.0) for e in batch]
    events += [e for _ in range(3) for e in engine.poll_result("r2", False, "timeout", "x")]
    PerfStore(db).add_events(events)
    with Session(db) as session:
        stored = session.exec(select(PerfEvent).order_by(PerfEvent.id)).all()  # type: ignore[arg-type]
    assert [(e.rule, e.resource, e.kind, e.status_code, e.consumed) for e in stored] == [
        ("high-utilisation", "eth1", "raise", None, False),
        ("device-unreachable", None, "raise", "timeout", False)]
    assert stored[0].at.tzinfo is not None


def test_the_operator_docs_show_the_shipped_rules() -> None:
    import yaml

    docs = (Path(__file__).parents[2] / "docs" / "performance.md").read_text()
    block = docs.split("### The shipped file", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(block) == yaml.safe_load(DEFAULT_RULES_FILE.read_text())
