"""The fault agent: events to alarms, de-duplicated, flap-damped and correlated.

Everything here is synchronous and runs in one worker thread (the service hands it
batches), so the receiver's event loop never waits for the database.

De-duplication. An alarm's key is (device, resource, problem). A raise with the key of
an open alarm adds to its count; a clear closes it. A raise within ``flap_window_s`` of
the close reopens the same alarm instead of making a new one; ``flap_count``
transitions inside the window make the alarm *flapping*: from then on a clear is held
(the alarm stays open, its transitions counted) until the resource has stayed clear for
``flap_quiet_s``. One flapping interface is one alarm.

Correlation, recomputed over every open alarm after any raise or close, the reason kept
on each child (``correlation``):

1. interface alarms whose problem *means link-down*, on an interface the inventory knows
   a link for, go under one alarm for that link (made here, ``source="correlation"``),
   seen from one end or both; the link alarm clears when no end reports it down;
2. a link alarm with an end on a device whose alarm *means device-down* (it stopped
   answering its polls) goes under that device's alarm, and so does every other alarm
   of that device;
3. an alarm that *means peer-down* (an OSPF or BGP neighbour at an address) goes under
   the link alarm of the link that address is across, or else under the device-down
   alarm of the device that owns the address.

An alarm whose parent has cleared stands alone again (its parent is removed, with the
reason in its history).
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert
from sqlmodel import Session, col, select

from agents.fault.events import FaultEvent, Unmatched, dumps, event_from_perf, event_from_trap
from agents.fault.model import (
    ACTIVE_STATES,
    Alarm,
    AlarmHistory,
    AlarmState,
    FaultCounter,
    Severity,
)
from agents.fault.rules import FaultRules
from agents.fault.settings import FaultSettings
from agents.fault.view import LinkRef, TopologyView
from collectors.traps import Trap
from topology.inventory import utcnow

__all__ = ["AgentStats", "FaultAgent", "Notice"]

log = logging.getLogger(__name__)

LINK_PROBLEM = "link-down"


class _Notices:
    """The last change of each alarm in a batch, keyed by the alarm object (a new alarm
    has no id until the batch is flushed)."""

    def __init__(self) -> None:
        self._by: dict[int, tuple[Alarm, str]] = {}

    def __setitem__(self, alarm: Alarm, kind: str) -> None:
        self._by[id(alarm)] = (alarm, kind)

    def setdefault(self, alarm: Alarm, kind: str) -> None:
        self._by.setdefault(id(alarm), (alarm, kind))

    def result(self) -> list[Notice]:
        return [Notice(kind, FaultAgent._id(alarm)) for alarm, kind in self._by.values()]


@dataclass(frozen=True, slots=True)
class Notice:
    """An alarm changed: what happened to it (the last change in a batch)."""

    kind: str
    alarm_id: int


@dataclass
class AgentStats:
    """What the agent did, and how long traps took from receipt to stored alarm."""

    events: int = 0
    raised: int = 0
    repeats: int = 0
    cleared: int = 0
    reopened: int = 0
    flapping: int = 0
    clears_unmatched: int = 0
    unknown_source: int = 0
    no_rule: int = 0
    correlations: int = 0
    batches: int = 0
    latency_s: deque[float] = field(default_factory=lambda: deque(maxlen=200_000))
    no_rule_oids: Counter[str] = field(default_factory=Counter)
    """Trap OIDs no rule matched, and how often (the first 1,000 distinct ones)."""

    def counters(self) -> dict[str, float]:
        out: dict[str, float] = {k: float(getattr(self, k)) for k in self.__dataclass_fields__
                                 if k not in ("latency_s", "no_rule_oids")}
        if self.latency_s:
            ordered = sorted(self.latency_s)
            out["latency_p50_s"] = statistics.median(ordered)
            out["latency_p99_s"] = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return out


def _worst(severities: Iterable[str]) -> str:
    ranked = [Severity(s) for s in severities if s in Severity.__members__.values()]
    return min(ranked, key=lambda s: s.rank).value if ranked else Severity.MAJOR.value


class FaultAgent:
    """Turns events into alarms in the database (see the module docstring)."""

    def __init__(self, engine: Engine, rules: FaultRules, settings: FaultSettings | None = None,
                 *, view_max_age_s: float = 30.0) -> None:
        self.engine = engine
        self.rules = rules
        self.settings = settings or FaultSettings()
        self.stats = AgentStats()
        self.view_max_age_s = view_max_age_s
        self._view: TopologyView | None = None
        self._transitions: dict[str, deque[float]] = {}
        self._unknown_reload_mono = 0.0
        self._unknown_seen: dict[str, float] = {}
        self._pending: list[tuple[Alarm, dict[str, Any]]] = []

    # -- the inventory snapshot ---------------------------------------------------------

    def view(self, *, refresh: bool = False) -> TopologyView:
        if refresh or self._view is None or self._view.age_s() > self.view_max_age_s:
            self._view = TopologyView.load(self.engine)
        return self._view

    # -- inputs -------------------------------------------------------------------------

    def handle_traps(self, traps: Sequence[Trap]) -> list[Notice]:
        """Normalise and process a batch of traps."""
        events: list[FaultEvent] = []
        view = self.view()
        for trap in traps:
            made = event_from_trap(trap, self.rules, view)
            if isinstance(made, Unmatched) and made.reason == "unknown-source":
                # a device discovered since the snapshot? look again, at most every 5 s,
                # and for one source at most once a minute (a stranger's flood must not
                # reload the inventory over and over)
                now = time.monotonic()
                if (now - self._unknown_reload_mono > 5.0
                        and now - self._unknown_seen.get(trap.source, -60.0) > 60.0):
                    self._unknown_reload_mono = now
                    view = self.view(refresh=True)
                    made = event_from_trap(trap, self.rules, view)
                    if isinstance(made, Unmatched):
                        if len(self._unknown_seen) > 10_000:
                            self._unknown_seen.clear()
                        self._unknown_seen[trap.source] = now
            if isinstance(made, Unmatched):
                self._unmatched(made, trap, events)
                continue
            events.append(made)
        return self.handle_events(events)

    def _unmatched(self, made: Unmatched, trap: Trap, events: list[FaultEvent]) -> None:
        if made.reason == "no-rule":
            self.stats.no_rule += 1
            oids = self.stats.no_rule_oids
            if made.trap_oid in oids or len(oids) < 1_000:
                oids[made.trap_oid] += 1
            return
        self.stats.unknown_source += 1
        log.info("trap %s from %s: not a device of the inventory (counted as unknown_source)",
                 made.trap_oid, made.source)
        if self.settings.unknown_source_alarm:
            events.append(FaultEvent(
                action="raise", device=made.source, device_id=None, resource_type="device",
                resource=made.source, problem="unknown-trap-source", rule="unknown-source",
                source="trap", at=utcnow(), severity=Severity.WARNING.value,
                alarm_type="communicationsAlarm", probable_cause="unknownSource",
                specific_problem=f"traps from {made.source}, which is not in the inventory",
                clear_after_s=3600.0, details={"trap_oid": made.trap_oid},
                received_mono=trap.received_mono))

    def consume_perf_events(self, limit: int = 5_000) -> list[Notice]:
        """Take the performance agent's threshold events not yet taken, in order."""
        from agents.performance.thresholds import PerfEvent

        view = self.view()
        notices = _Notices()
        self._pending.clear()  # what a failed batch noted is not history
        with Session(self.engine, expire_on_commit=False) as session:
            rows = session.exec(select(PerfEvent).where(col(PerfEvent.consumed).is_(False))
                                .order_by(col(PerfEvent.id)).limit(limit)).all()
            if not rows:
                return []
            events = [event_from_perf(
                rule_name=r.rule, kind=r.kind, device=r.device, resource=r.resource,
                severity=r.severity, at=r.at, metric=r.metric, value=r.value,
                threshold=r.threshold, detail=r.detail, status_code=r.status_code,
                rules=self.rules, view=view) for r in rows]
            for r in rows:
                r.consumed = True
                session.add(r)
            self._process(session, events, notices)
            self._flush(session)
            session.commit()
        return notices.result()

    def handle_events(self, events: Sequence[FaultEvent]) -> list[Notice]:
        """Process a batch of events in one transaction; the notices of what changed."""
        if not events:
            return []
        notices = _Notices()
        self._pending.clear()  # what a failed batch noted is not history
        with Session(self.engine, expire_on_commit=False) as session:
            self._process(session, events, notices)
            self._flush(session)
            session.commit()
        done = time.monotonic()
        for ev in events:
            if ev.received_mono is not None:
                self.stats.latency_s.append(done - ev.received_mono)
        return notices.result()

    def tick(self) -> list[Notice]:
        """Time-driven changes: rule timers, flapping alarms that went quiet, archiving."""
        now = utcnow()
        notices = _Notices()
        self._pending.clear()  # what a failed batch noted is not history
        closed = False
        with Session(self.engine, expire_on_commit=False) as session:
            for alarm in session.exec(select(Alarm).where(
                    col(Alarm.state).in_(ACTIVE_STATES),
                    col(Alarm.auto_clear_at).is_not(None))).all():
                assert alarm.auto_clear_at is not None
                if alarm.auto_clear_at <= now:
                    self._close(session, alarm, now, "cleared by the rule's timer", notices)
                    closed = True
            quiet = timedelta(seconds=self.settings.flap_quiet_s)
            for alarm in session.exec(select(Alarm).where(
                    col(Alarm.state).in_(ACTIVE_STATES),
                    col(Alarm.held_clear_at).is_not(None))).all():
                assert alarm.held_clear_at is not None
                if now - alarm.held_clear_at >= quiet:
                    self._close(session, alarm, now, f"stable for {quiet.total_seconds():g} s "
                                "after flapping", notices)
                    closed = True
            if closed:
                self._correlate(session, now, notices)
            cut = now - timedelta(seconds=self.settings.archive_after_s)
            for alarm in session.exec(select(Alarm).where(
                    Alarm.state == AlarmState.CLEARED.value,
                    col(Alarm.cleared_at) < cut)).all():
                alarm.state = AlarmState.ARCHIVED.value
                alarm.archived_at = now
                session.add(alarm)
                self._history(session, alarm, "archived", now, before="cleared",
                              after="archived")
                notices[alarm] = "archived"
            self._flush(session)
            session.commit()
        return notices.result()

    def save_counters(self, extra: dict[str, float] | None = None,
                      prefix: str = "agent_") -> None:
        """Write the agent's counters (and the receiver's, as ``extra``) for other
        processes to read."""
        now = utcnow()
        values = {f"{prefix}{k}": v for k, v in self.stats.counters().items()}
        values.update({f"{prefix}no_rule_oid {oid}": float(n)
                       for oid, n in self.stats.no_rule_oids.items()})
        values.update(extra or {})
        with Session(self.engine) as session:
            for name, value in values.items():
                row = session.get(FaultCounter, name) or FaultCounter(name=name)
                row.value = float(value)
                row.updated_at = now
                session.add(row)
            session.commit()

    # -- de-duplication and flapping -----------------------------------------------------

    def _process(self, session: Session, events: Sequence[FaultEvent],
                 notices: _Notices) -> None:
        self.stats.batches += 1
        keys = {ev.key for ev in events}
        open_by_key: dict[str, Alarm] = {}
        recent: dict[str, Alarm] = {}
        for chunk in _chunks(sorted(keys), 500):
            for alarm in session.exec(select(Alarm).where(
                    col(Alarm.key).in_(chunk), col(Alarm.state).in_(ACTIVE_STATES))).all():
                open_by_key[alarm.key] = alarm
            cut = utcnow() - timedelta(seconds=self.settings.flap_window_s)
            for alarm in session.exec(select(Alarm).where(
                    col(Alarm.key).in_(chunk), Alarm.state == AlarmState.CLEARED.value,
                    col(Alarm.cleared_at) >= cut).order_by(col(Alarm.cleared_at))).all():
                recent[alarm.key] = alarm  # the latest wins
        structural = False
        latest = utcnow()
        for ev in events:
            self.stats.events += 1
            latest = max(latest, ev.at)
            if ev.action == "raise":
                structural |= self._raise(session, ev, open_by_key, recent, notices)
            else:
                structural |= self._clear(session, ev, open_by_key, recent, notices)
        if structural:
            session.flush()
            self._correlate(session, latest, notices)

    def _transition(self, key: str, at: datetime) -> int:
        """Record a raise/clear transition of ``key``; how many are inside the window."""
        t = at.timestamp()
        window = self._transitions.setdefault(key, deque())
        window.append(t)
        while window and window[0] < t - self.settings.flap_window_s:
            window.popleft()
        if len(self._transitions) > 100_000:  # forget the oldest keys, not the open ones
            for old in list(self._transitions)[:50_000]:
                del self._transitions[old]
        return len(window)

    def _raise(self, session: Session, ev: FaultEvent, open_by_key: dict[str, Alarm],
               recent: dict[str, Alarm], notices: _Notices) -> bool:
        key = ev.key
        transient = ev.clear_after_s == 0
        alarm = open_by_key.get(key)
        if alarm is not None:
            self.stats.repeats += 1
            alarm.count += 1
            alarm.last_seen = max(alarm.last_seen, ev.at)
            alarm.details_json = dumps(ev.details)
            if ev.threshold is not None:
                alarm.threshold_json = dumps(ev.threshold)
            if alarm.held_clear_at is not None:  # flapping, and down again
                alarm.held_clear_at = None
                alarm.transitions += 1
                self._transition(key, ev.at)
            if ev.severity != alarm.severity and alarm.source != "correlation":
                self._history(session, alarm, "severity", ev.at, before=alarm.severity,
                              after=ev.severity)
                alarm.severity = ev.severity
            alarm.state = AlarmState.UPDATED.value
            alarm.changed_at = ev.at
            session.add(alarm)
            notices.setdefault(alarm, "updated")
            return False
        previous = recent.get(key)
        if previous is not None and transient:  # a repeated record: count it
            self.stats.repeats += 1
            previous.count += 1
            previous.last_seen = max(previous.last_seen, ev.at)
            previous.details_json = dumps(ev.details)
            session.add(previous)
            notices.setdefault(previous, "updated")
            return False
        if previous is not None:  # back within the flap window: the same alarm again
            self.stats.reopened += 1
            n = self._transition(key, ev.at)
            previous.state = AlarmState.UPDATED.value
            previous.cleared_at = None
            previous.count += 1
            previous.transitions += 1
            previous.last_seen = previous.changed_at = ev.at
            previous.details_json = dumps(ev.details)
            previous.auto_clear_at = (ev.at + timedelta(seconds=ev.clear_after_s)
                                      if ev.clear_after_s else None)
            session.add(previous)
            self._history(session, previous, "reopened", ev.at, before="cleared",
                          after="updated", note=f"raised again by {ev.rule}")
            if n >= self.settings.flap_count and not previous.flapping:
                self._mark_flapping(session, previous, ev.at, n)
            notices[previous] = "reopened"
            open_by_key[key] = previous
            del recent[key]
            return True
        self.stats.raised += 1
        alarm = Alarm(
            key=key, device_id=ev.device_id, device=ev.device, resource_type=ev.resource_type,
            resource=ev.resource, interface_id=ev.interface_id, problem=ev.problem,
            rule=ev.rule, alarm_type=ev.alarm_type, probable_cause=ev.probable_cause,
            specific_problem=ev.specific_problem, severity=ev.severity, source=ev.source,
            raised_at=ev.at, changed_at=ev.at, last_seen=ev.at,
            details_json=dumps(ev.details),
            threshold_json=dumps(ev.threshold) if ev.threshold is not None else None)
        if transient:
            alarm.state = AlarmState.CLEARED.value
            alarm.cleared_at = ev.at
        elif ev.clear_after_s:
            alarm.auto_clear_at = ev.at + timedelta(seconds=ev.clear_after_s)
        session.add(alarm)
        self._history(session, alarm, "raised", ev.at, after=alarm.state,
                      note=f"by rule {ev.rule} ({ev.source})")
        if transient:
            self._history(session, alarm, "cleared", ev.at, before="raised", after="cleared",
                          note="a record: the rule clears it as it is raised")
            recent[key] = alarm
            notices[alarm] = "cleared"
            return False
        self._transition(key, ev.at)
        open_by_key[key] = alarm
        notices[alarm] = "raised"
        return True

    def _clear(self, session: Session, ev: FaultEvent, open_by_key: dict[str, Alarm],
               recent: dict[str, Alarm], notices: _Notices) -> bool:
        alarm = open_by_key.get(ev.key)
        if alarm is None:
            self.stats.clears_unmatched += 1
            return False
        if alarm.held_clear_at is not None:  # a repeated clear while held
            return False
        n = self._transition(ev.key, ev.at)
        alarm.transitions += 1
        alarm.last_seen = max(alarm.last_seen, ev.at)
        if alarm.flapping or n >= self.settings.flap_count:
            if not alarm.flapping:
                self._mark_flapping(session, alarm, ev.at, n)
            alarm.held_clear_at = ev.at
            alarm.state = AlarmState.UPDATED.value
            alarm.changed_at = ev.at
            session.add(alarm)
            notices.setdefault(alarm, "updated")
            return False
        self._close(session, alarm, ev.at, f"by rule {ev.rule} ({ev.source})", notices)
        del open_by_key[ev.key]
        recent[ev.key] = alarm
        return True

    def _mark_flapping(self, session: Session, alarm: Alarm, at: datetime, n: int) -> None:
        self.stats.flapping += 1
        alarm.flapping = True
        session.add(alarm)
        self._history(session, alarm, "flapping", at, after="flapping",
                      note=f"{n} transitions within {self.settings.flap_window_s:g} s; "
                           f"clears are held until it is quiet for "
                           f"{self.settings.flap_quiet_s:g} s")

    def _close(self, session: Session, alarm: Alarm, at: datetime, note: str,
               notices: _Notices) -> None:
        self.stats.cleared += 1
        before = alarm.state
        alarm.state = AlarmState.CLEARED.value
        alarm.cleared_at = alarm.changed_at = at
        alarm.held_clear_at = alarm.auto_clear_at = None
        session.add(alarm)
        self._history(session, alarm, "cleared", at, before=before, after="cleared", note=note)
        notices[alarm] = "cleared"

    # -- correlation ---------------------------------------------------------------------

    def _correlate(self, session: Session, at: datetime, notices: _Notices) -> None:
        view = self.view()
        active = list(session.exec(select(Alarm).where(col(Alarm.state).in_(ACTIVE_STATES))))
        means = {self._id(a): self.rules.means(a.problem) for a in active
                 if a.source != "correlation"}
        down: dict[int, Alarm] = {}
        for a in active:
            if (means.get(self._id(a)) == "device-down" and a.resource_type == "device"
                    and a.device_id is not None):
                down.setdefault(a.device_id, a)
        ends: dict[int, list[Alarm]] = {}
        for a in active:
            if (means.get(self._id(a)) == "link-down" and a.interface_id is not None
                    and a.interface_id in view.link_of_interface):
                ends.setdefault(view.link_of_interface[a.interface_id].id, []).append(a)
        link_alarms = {a.link_id: a for a in active
                       if a.source == "correlation" and a.resource_type == "link"
                       and a.link_id is not None}
        for link_id, alarm in list(link_alarms.items()):
            if link_id not in ends:
                self._close(session, alarm, at, "no end of the link reports it down now",
                            notices)
                del link_alarms[link_id]
        for link_id, members in ends.items():
            link_alarms[link_id] = self._link_alarm(session, view, view.links[link_id],
                                                    members, link_alarms.get(link_id), at,
                                                    notices)
        if any(la.id is None for la in link_alarms.values()):
            session.flush()  # the new link alarms' ids, once for all of them
        parents: dict[int, tuple[Alarm, str]] = {}
        for link_id, members in ends.items():
            label = view.links[link_id].label(view.devices)
            for m in members:
                parents[self._id(m)] = (link_alarms[link_id],
                                        f"{m.device}:{m.resource} is an end of link {label}")
        for link_id, la in link_alarms.items():
            link = view.links[link_id]
            for end in (link.a, link.b):
                if end.device_id in down:
                    name = view.devices.get(end.device_id, "?")
                    parents[self._id(la)] = (down[end.device_id],
                                             f"the link leads to {name}, which does not "
                                             "answer its polls")
                    break
        for a in active:
            if means.get(self._id(a)) != "peer-down":
                continue
            owner = view.interface_by_address.get(a.resource)
            owner_device = owner.device_id if owner else view.device_by_address.get(a.resource)
            across = view.link_of_interface.get(owner.id) if owner else None
            if across is not None and across.id in link_alarms:
                parents[self._id(a)] = (link_alarms[across.id],
                                        f"neighbour {a.resource} is across link "
                                        f"{across.label(view.devices)}, which is down")
            elif owner_device is not None and owner_device in down:
                parents[self._id(a)] = (down[owner_device],
                                        f"neighbour {a.resource} is on "
                                        f"{view.devices.get(owner_device, '?')}, which does "
                                        "not answer its polls")
        for a in active:
            if (a.device_id in down and self._id(a) not in parents
                    and means.get(self._id(a)) != "device-down"
                    and a.source != "correlation"):
                assert a.device_id is not None
                parents[self._id(a)] = (down[a.device_id], f"{a.device} does not answer its "
                                        "polls")
        seen_ids = {id(a) for a in active}
        for a in [*active, *(la for la in link_alarms.values() if id(la) not in seen_ids)]:
            if not a.active:
                continue
            want = parents.get(self._id(a))
            want_id = self._id(want[0]) if want else None
            if a.parent_id == want_id:
                if want is not None and a.correlation != want[1]:
                    a.correlation = want[1]
                    session.add(a)
                continue
            before = str(a.parent_id) if a.parent_id is not None else None
            if want is None:
                self._history(session, a, "uncorrelated", at, before=before,
                              note="its parent cleared: it stands alone again")
                a.parent_id, a.correlation = None, ""
            else:
                self.stats.correlations += 1
                a.parent_id, a.correlation = want_id, want[1]
                self._history(session, a, "correlated", at, before=before, after=str(want_id),
                              note=want[1])
            a.changed_at = at
            session.add(a)
            notices.setdefault(a, "correlated")

    def _link_alarm(self, session: Session, view: TopologyView, link: LinkRef,
                    members: list[Alarm], alarm: Alarm | None, at: datetime,
                    notices: _Notices) -> Alarm:
        label = link.label(view.devices)
        seen = sorted({f"{m.device}:{m.resource}" for m in members})
        text = (f"link {label} is down, seen from both ends" if len(seen) > 1
                else f"link {label} is down, seen from {seen[0]} only")
        severity = _worst(m.severity for m in members)
        if alarm is None:
            self.stats.raised += 1
            alarm = Alarm(
                key=f"link:{link.id}|link:{label}|{LINK_PROBLEM}",
                device_id=link.a.device_id, device=view.devices.get(link.a.device_id, "?"),
                resource_type="link", resource=label, link_id=link.id, problem=LINK_PROBLEM,
                rule="correlation", alarm_type="communicationsAlarm",
                probable_cause="lossOfSignal", specific_problem=text, severity=severity,
                source="correlation", raised_at=at, changed_at=at, last_seen=at,
                details_json=dumps({"ends": seen}))
            session.add(alarm)
            self._history(session, alarm, "raised", at, after="raised",
                          note=f"correlation: {text}")
            notices[alarm] = "raised"
            return alarm
        if alarm.specific_problem != text or alarm.severity != severity:
            alarm.specific_problem, alarm.severity = text, severity
            alarm.details_json = dumps({"ends": seen})
            alarm.state = AlarmState.UPDATED.value
            alarm.changed_at = at
            session.add(alarm)
            notices.setdefault(alarm, "updated")
        return alarm

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _id(alarm: Alarm) -> int:
        assert alarm.id is not None, "alarm not flushed"
        return alarm.id

    def _history(self, session: Session, alarm: Alarm, action: str, at: datetime, *,
                 before: str | None = None, after: str | None = None, note: str = "",
                 user: str | None = None) -> None:
        """Note a change of ``alarm``; written by :meth:`_flush` in one bulk insert (the
        alarm may have no id yet: one flush per new alarm was half the agent's CPU)."""
        self._pending.append((alarm, {"at": at, "action": action, "before": before,
                                      "after": after, "note": note, "user": user}))

    def _flush(self, session: Session) -> None:
        """Flush the alarms, then insert the history noted since the last flush."""
        session.flush()
        if self._pending:
            session.execute(insert(AlarmHistory), [
                {"alarm_id": self._id(alarm), **row} for alarm, row in self._pending])
            self._pending.clear()


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
