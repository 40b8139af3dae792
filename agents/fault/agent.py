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

Speed (a trap storm is thousands of traps a second). The agent keeps the open alarms, and
those cleared within the flap window, in memory (:class:`_Live`, by key): a batch reads
nothing from the database, writes its changes with one bulk statement per kind (new
alarms, changed alarms, history rows), and correlation revisits only what the batch
touched (the links and devices of the alarms that opened, closed or changed severity,
and the alarms that depend on them), which gives what a recomputation over every open
alarm would. The memory is kept true to the database: the agent is the only writer of
alarms but for the operators' actions (acknowledge, comment, clear), which all write a
history row; a batch starts by comparing the newest history row with the newest it wrote
itself, and reloads (then correlates everything) when someone else wrote. Every update
is guarded by the state the agent believes the row has, so an operator's clear that lands
between that check and the write is seen there: the batch is rolled back and done again
on a fresh load.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, func, insert, update
from sqlalchemy import select as core_select
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


_TABLE = Alarm.__table__  # type: ignore[attr-defined]
_HISTORY = AlarmHistory.__table__  # type: ignore[attr-defined]


@dataclass(slots=True, eq=False)
class _Live:
    """An alarm as the agent keeps it in memory: the columns it reads and writes, the
    state the database row has (None: not inserted yet), the last report not yet
    serialised. Compared and hashed by identity."""

    key: str
    device_id: int | None
    device: str
    resource_type: str
    resource: str
    problem: str
    rule: str
    alarm_type: str
    probable_cause: str
    severity: str
    source: str
    raised_at: datetime
    changed_at: datetime
    last_seen: datetime
    id: int | None = None
    interface_id: int | None = None
    link_id: int | None = None
    specific_problem: str = ""
    state: str = AlarmState.RAISED.value
    count: int = 1
    transitions: int = 1
    flapping: bool = False
    held_clear_at: datetime | None = None
    auto_clear_at: datetime | None = None
    cleared_at: datetime | None = None
    parent_id: int | None = None
    correlation: str = ""
    threshold_json: str | None = None
    details_json: str = "{}"
    db_state: str | None = None
    details: FaultEvent | dict[str, Any] | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def serialise(self) -> None:
        if self.details is not None:
            details = self.details
            self.details_json = dumps(details.report() if isinstance(details, FaultEvent)
                                      else details)
            self.details = None


_LOADED = tuple(f for f in _Live.__dataclass_fields__ if f not in ("db_state", "details"))
_INSERTED = tuple(f for f in _LOADED if f != "id")
_WRITTEN = ("specific_problem", "severity", "state", "count", "transitions", "flapping",
            "held_clear_at", "auto_clear_at", "last_seen", "changed_at", "cleared_at",
            "parent_id", "correlation", "threshold_json", "details_json")
"""The columns the agent owns (never the operators' acknowledgement)."""
_REPEATED = ("count", "last_seen", "changed_at", "details_json")
"""What a repeat changes (most of a trap storm): a narrower update, no index touched."""
_UPDATE = update(_TABLE).where(_TABLE.c.id == bindparam("b_id"),
                               _TABLE.c.state == bindparam("b_was"))
_SQLITE_UPDATE: dict[tuple[str, ...], str] = {
    columns: "UPDATE alarm SET " + ", ".join(f'"{c}" = ?' for c in columns)  # noqa: S608
    + " WHERE id = ? AND state = ?" for columns in (_WRITTEN, _REPEATED)}
"""The same as _UPDATE, as SQLite's driver takes it (the column names are ours)."""
_INSERT = insert(_TABLE).returning(_TABLE.c.id, sort_by_parameter_order=True)


class _Stale(Exception):
    """A row was not in the state the agent believed (an operator changed it meanwhile)."""


class _Notices:
    """The last change of each alarm in a batch, keyed by the alarm object (a new alarm
    has no id until the batch is written)."""

    def __init__(self) -> None:
        self._by: dict[int, tuple[_Live, str]] = {}
        self._ids: list[Notice] = []

    def __setitem__(self, alarm: _Live, kind: str) -> None:
        self._by[id(alarm)] = (alarm, kind)

    def setdefault(self, alarm: _Live, kind: str) -> None:
        self._by.setdefault(id(alarm), (alarm, kind))

    def extend_ids(self, alarm_ids: Iterable[int], kind: str) -> None:
        """Alarms the agent does not keep in memory (archived ones)."""
        self._ids.extend(Notice(kind, i) for i in alarm_ids)

    def result(self) -> list[Notice]:
        return [*(Notice(kind, FaultAgent._id(alarm)) for alarm, kind in self._by.values()),
                *self._ids]


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
        # the memory of alarms (see the module docstring)
        self._open: dict[str, _Live] = {}
        self._recent: dict[str, _Live] = {}
        self._loaded = False
        self._history_mark: int | None = None
        self._full = True
        """Correlate every open alarm next time (after a load, or a new topology)."""
        self._means_of: dict[str, str | None] = {}
        # one batch's work
        self._pending: list[tuple[_Live, dict[str, Any]]] = []
        self._history_written = 0
        self._new: list[_Live] = []
        self._dirty: set[_Live] = set()
        self._repeated: set[_Live] = set()
        self._touched: set[_Live] = set()
        self._undo: dict[str, deque[float] | None] = {}

    # -- the inventory snapshot ---------------------------------------------------------

    def view(self, *, refresh: bool = False) -> TopologyView:
        if refresh or self._view is None or self._view.age_s() > self.view_max_age_s:
            old, self._view = self._view, TopologyView.load(self.engine)
            if old is None or not old.same_topology(self._view):
                self._full = True
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

        def work(session: Session, notices: _Notices) -> None:
            rows = session.exec(select(PerfEvent).where(col(PerfEvent.consumed).is_(False))
                                .order_by(col(PerfEvent.id)).limit(limit)).all()
            if not rows:
                return
            events = [event_from_perf(
                rule_name=r.rule, kind=r.kind, device=r.device, resource=r.resource,
                severity=r.severity, at=r.at, metric=r.metric, value=r.value,
                threshold=r.threshold, detail=r.detail, status_code=r.status_code,
                rules=self.rules, view=view) for r in rows]
            for r in rows:
                r.consumed = True
                session.add(r)
            self._process(session, events, notices)

        return self._batch(work).result()

    def handle_events(self, events: Sequence[FaultEvent]) -> list[Notice]:
        """Process a batch of events in one transaction; the notices of what changed."""
        if not events:
            return []
        notices = self._batch(lambda session, n: self._process(session, events, n))
        done = time.monotonic()
        for ev in events:
            if ev.received_mono is not None:
                self.stats.latency_s.append(done - ev.received_mono)
        return notices.result()

    def tick(self) -> list[Notice]:
        """Time-driven changes: rule timers, flapping alarms that went quiet, archiving."""
        now = utcnow()

        def work(session: Session, notices: _Notices) -> None:
            quiet = timedelta(seconds=self.settings.flap_quiet_s)
            for alarm in list(self._open.values()):
                if alarm.auto_clear_at is not None and alarm.auto_clear_at <= now:
                    self._close(alarm, now, "cleared by the rule's timer", notices)
                elif alarm.held_clear_at is not None and now - alarm.held_clear_at >= quiet:
                    self._close(alarm, now, f"stable for {quiet.total_seconds():g} s "
                                "after flapping", notices)
            self._insert_new(session)
            if self._touched or self._full:
                self._correlate(session, now, notices)
            cut = now - timedelta(seconds=self.settings.flap_window_s)
            for key in [k for k, a in self._recent.items()
                        if a.cleared_at is None or a.cleared_at < cut]:
                del self._recent[key]
            cut = now - timedelta(seconds=self.settings.archive_after_s)
            archived = [i for i in session.execute(core_select(_TABLE.c.id).where(
                _TABLE.c.state == AlarmState.CLEARED.value, _TABLE.c.cleared_at < cut))
                .scalars()]
            for chunk in _chunks(archived, 500):
                session.execute(update(_TABLE).where(
                    _TABLE.c.id.in_(chunk), _TABLE.c.state == AlarmState.CLEARED.value)
                    .values(state=AlarmState.ARCHIVED.value, archived_at=now))
            if archived:
                gone = set(archived)
                for key in [k for k, a in self._recent.items() if a.id in gone]:
                    del self._recent[key]
                rows = [{"alarm_id": i, "at": now, "action": "archived", "before": "cleared",
                         "after": "archived", "note": "", "user": None} for i in archived]
                session.execute(insert(AlarmHistory), rows)
                self._history_written += len(rows)
                notices.extend_ids(archived, "archived")

        return self._batch(work).result()

    def save_counters(self, extra: dict[str, float] | None = None,
                      prefix: str = "agent_") -> None:
        """Write the agent's counters (and the receiver's, as ``extra``) for other
        processes to read."""
        now = utcnow()
        values = {f"{prefix}{k}": v for k, v in self.stats.counters().items()}
        values.update({f"{prefix}no_rule_oid {oid}": float(n)
                       for oid, n in self.stats.no_rule_oids.items()})
        values.update(extra or {})
        table = FaultCounter.__table__  # type: ignore[attr-defined]
        rows = [{"b_name": name, "value": float(value), "updated_at": now}
                for name, value in values.items()]
        with Session(self.engine) as session:  # two statements, not one query per counter
            have = set(session.execute(core_select(table.c.name)).scalars())
            old = [r for r in rows if r["b_name"] in have]
            if old:
                session.execute(update(table).where(table.c.name == bindparam("b_name")), old)
            new = [{"name": r["b_name"], "value": r["value"], "updated_at": now}
                   for r in rows if r["b_name"] not in have]
            if new:
                session.execute(insert(table), new)
            session.commit()

    # -- one batch: memory and database together -----------------------------------------

    def _batch(self, work: Callable[[Session, _Notices], None]) -> _Notices:
        """Run ``work`` in one transaction on memory true to the database; done again on
        a fresh load if a row turned out to have been changed by someone else."""
        for attempt in range(2):
            notices = _Notices()
            counters = {k: v for k, v in vars(self.stats).items() if isinstance(v, int)}
            self._pending.clear()
            self._new.clear()
            self._dirty.clear()
            self._repeated.clear()
            self._touched.clear()
            self._undo.clear()
            self._history_written = 0
            try:
                with Session(self.engine, expire_on_commit=False) as session:
                    self._sync(session)
                    work(session, notices)
                    self._write(session)
                    session.commit()
                return notices
            except _Stale:
                self._loaded = False
                for k, v in counters.items():
                    setattr(self.stats, k, v)
                for key, window in self._undo.items():
                    if window is None:
                        self._transitions.pop(key, None)
                    else:
                        self._transitions[key] = window
                if attempt:
                    raise
                log.info("alarms changed by someone else during a batch: done again")
            except BaseException:
                self._loaded = False  # the memory may be ahead of what was rolled back
                raise
        raise AssertionError("unreachable")

    def _sync(self, session: Session) -> None:
        """Load the open and recently cleared alarms if the memory is not known true."""
        mark = session.execute(core_select(func.max(_HISTORY.c.id))).scalar()
        if self._loaded and mark == self._history_mark:
            return
        columns = [_TABLE.c[name] for name in _LOADED]
        self._open = {}
        for row in session.execute(core_select(*columns).where(
                _TABLE.c.state.in_(ACTIVE_STATES)).order_by(_TABLE.c.id)):
            alarm = _Live(**row._mapping)
            alarm.db_state = alarm.state
            self._open[alarm.key] = alarm
        cut = utcnow() - timedelta(seconds=self.settings.flap_window_s)
        self._recent = {}
        for row in session.execute(core_select(*columns).where(
                _TABLE.c.state == AlarmState.CLEARED.value, _TABLE.c.cleared_at >= cut,
                _TABLE.c.source != "correlation").order_by(_TABLE.c.cleared_at)):
            alarm = _Live(**row._mapping)
            alarm.db_state = alarm.state
            self._recent[alarm.key] = alarm  # the latest wins
        self._history_mark = mark
        self._loaded = True
        self._full = True

    def _insert_new(self, session: Session) -> None:
        """Insert the alarms made since the last call, in one statement: their ids."""
        if not self._new:
            return
        rows = []
        for alarm in self._new:
            alarm.serialise()
            rows.append({name: getattr(alarm, name) for name in _INSERTED})
        ids = session.execute(_INSERT, rows).scalars().all()
        for alarm, alarm_id in zip(self._new, ids, strict=True):
            alarm.id = alarm_id
            alarm.db_state = alarm.state
            self._dirty.discard(alarm)
            self._repeated.discard(alarm)
        self._new.clear()

    def _write(self, session: Session) -> None:
        """Write the batch: new alarms, changed ones (each guarded by the state the
        memory believes its row has), the history; then where the history stands."""
        self._insert_new(session)
        for alarms, columns in ((self._dirty, _WRITTEN),
                                (self._repeated - self._dirty, _REPEATED)):
            changed = [a for a in alarms if a.db_state is not None]
            if not changed:
                continue
            for alarm in changed:
                alarm.serialise()
            count = self._update(session, columns, changed)
            if count is not None and count != len(changed):
                raise _Stale(f"{len(changed) - count} alarm rows changed meanwhile")
            for alarm in changed:
                alarm.db_state = alarm.state
        if self._pending:
            session.execute(insert(AlarmHistory), [
                {"alarm_id": self._id(alarm), **row} for alarm, row in self._pending])
            self._history_written += len(self._pending)
            self._pending.clear()
        if self._history_written:
            # inside the write transaction: only our rows are newer than the mark, unless
            # someone else wrote since (then the next batch loads again)
            before = self._history_mark or 0
            newer, mark = session.execute(core_select(
                func.count(), func.max(_HISTORY.c.id)).where(_HISTORY.c.id > before)).one()
            if newer == self._history_written:
                self._history_mark = mark
            else:
                self._loaded = False

    def _update(self, session: Session, columns: tuple[str, ...],
                alarms: list[_Live]) -> int | None:
        """Update ``columns`` of the rows of ``alarms`` still in the state the memory
        believes (``db_state``); how many rows were updated (None: the driver cannot say).
        On SQLite the statement goes to the driver as it is: SQLAlchemy's processing of
        each parameter cost more than SQLite's update of the row."""
        connection = session.connection()
        if connection.dialect.name == "sqlite":
            rows: list[tuple[Any, ...]]
            if columns is _REPEATED:  # the hot path, spelt out
                rows = [(a.count, _sqlite_time(a.last_seen), _sqlite_time(a.changed_at),
                         a.details_json, a.id, a.db_state) for a in alarms]
            else:
                rows = [(*(_sqlite_time(v) if isinstance(v, datetime) else v
                           for v in (getattr(a, c) for c in columns)), a.id, a.db_state)
                        for a in alarms]
            result = connection.exec_driver_sql(_SQLITE_UPDATE[columns], rows)
        else:
            result = connection.execute(_UPDATE, [
                {**{c: getattr(a, c) for c in columns}, "b_id": a.id, "b_was": a.db_state}
                for a in alarms])
        if not connection.dialect.supports_sane_multi_rowcount:
            return None
        return int(result.rowcount)

    def _changed(self, alarm: _Live) -> None:
        if alarm.db_state is not None:
            self._dirty.add(alarm)

    # -- de-duplication and flapping -----------------------------------------------------

    def _process(self, session: Session, events: Sequence[FaultEvent],
                 notices: _Notices) -> None:
        self.stats.batches += 1
        latest = now = utcnow()
        cut = now - timedelta(seconds=self.settings.flap_window_s)
        for ev in events:
            self.stats.events += 1
            if ev.at > latest:
                latest = ev.at
            if ev.action == "raise":
                self._raise(ev, cut, notices)
            else:
                self._clear(ev, notices)
        self._insert_new(session)
        if self._touched or self._full:
            self._correlate(session, latest, notices)

    def _transition(self, key: str, at: datetime) -> int:
        """Record a raise/clear transition of ``key``; how many are inside the window."""
        t = at.timestamp()
        window = self._transitions.get(key)
        if key not in self._undo:
            self._undo[key] = deque(window) if window is not None else None
        if window is None:
            window = self._transitions[key] = deque()
        window.append(t)
        while window and window[0] < t - self.settings.flap_window_s:
            window.popleft()
        if len(self._transitions) > 100_000:  # forget the oldest keys, not the open ones
            for old in list(self._transitions)[:50_000]:
                del self._transitions[old]
        return len(window)

    def _raise(self, ev: FaultEvent, cut: datetime, notices: _Notices) -> None:
        key = ev.key
        transient = ev.clear_after_s == 0
        alarm = self._open.get(key)
        if alarm is not None:
            self.stats.repeats += 1
            alarm.count += 1
            if ev.at > alarm.last_seen:
                alarm.last_seen = ev.at
            alarm.details = ev
            if ev.threshold is not None:
                alarm.threshold_json = dumps(ev.threshold)
            if alarm.held_clear_at is not None:  # flapping, and down again
                alarm.held_clear_at = None
                alarm.transitions += 1
                self._transition(key, ev.at)
                self._changed(alarm)
            if ev.severity != alarm.severity and alarm.source != "correlation":
                self._history(alarm, "severity", ev.at, before=alarm.severity,
                              after=ev.severity)
                alarm.severity = ev.severity
                self._touched.add(alarm)  # a link alarm takes its ends' worst severity
                self._changed(alarm)
            elif ev.threshold is not None or alarm.db_state != AlarmState.UPDATED.value:
                self._changed(alarm)
            alarm.state = AlarmState.UPDATED.value
            alarm.changed_at = ev.at
            self._repeated.add(alarm)
            notices.setdefault(alarm, "updated")
            return
        previous = self._recent.get(key)
        if previous is not None and (previous.cleared_at is None
                                     or previous.cleared_at < cut):
            del self._recent[key]  # cleared longer ago than the flap window
            previous = None
        if previous is not None and transient:  # a repeated record: count it
            self.stats.repeats += 1
            previous.count += 1
            if ev.at > previous.last_seen:
                previous.last_seen = ev.at
            previous.details = ev
            self._repeated.add(previous)
            notices.setdefault(previous, "updated")
            return
        if previous is not None:  # back within the flap window: the same alarm again
            self.stats.reopened += 1
            n = self._transition(key, ev.at)
            previous.state = AlarmState.UPDATED.value
            previous.cleared_at = None
            previous.count += 1
            previous.transitions += 1
            previous.last_seen = previous.changed_at = ev.at
            previous.details = ev
            previous.auto_clear_at = (ev.at + timedelta(seconds=ev.clear_after_s)
                                      if ev.clear_after_s else None)
            self._changed(previous)
            self._history(previous, "reopened", ev.at, before="cleared",
                          after="updated", note=f"raised again by {ev.rule}")
            if n >= self.settings.flap_count and not previous.flapping:
                self._mark_flapping(previous, ev.at, n)
            notices[previous] = "reopened"
            self._open[key] = previous
            del self._recent[key]
            self._touched.add(previous)
            return
        self.stats.raised += 1
        alarm = _Live(
            key=key, device_id=ev.device_id, device=ev.device, resource_type=ev.resource_type,
            resource=ev.resource, interface_id=ev.interface_id, problem=ev.problem,
            rule=ev.rule, alarm_type=ev.alarm_type, probable_cause=ev.probable_cause,
            specific_problem=ev.specific_problem, severity=ev.severity, source=ev.source,
            raised_at=ev.at, changed_at=ev.at, last_seen=ev.at, details=ev,
            threshold_json=dumps(ev.threshold) if ev.threshold is not None else None)
        if transient:
            alarm.state = AlarmState.CLEARED.value
            alarm.cleared_at = ev.at
        elif ev.clear_after_s:
            alarm.auto_clear_at = ev.at + timedelta(seconds=ev.clear_after_s)
        self._new.append(alarm)
        self._history(alarm, "raised", ev.at, after=alarm.state,
                      note=f"by rule {ev.rule} ({ev.source})")
        if transient:
            self._history(alarm, "cleared", ev.at, before="raised", after="cleared",
                          note="a record: the rule clears it as it is raised")
            self._recent[key] = alarm
            notices[alarm] = "cleared"
            return
        self._transition(key, ev.at)
        self._open[key] = alarm
        self._touched.add(alarm)
        notices[alarm] = "raised"

    def _clear(self, ev: FaultEvent, notices: _Notices) -> None:
        alarm = self._open.get(ev.key)
        if alarm is None:
            self.stats.clears_unmatched += 1
            return
        if alarm.held_clear_at is not None:  # a repeated clear while held
            return
        n = self._transition(ev.key, ev.at)
        alarm.transitions += 1
        if ev.at > alarm.last_seen:
            alarm.last_seen = ev.at
        if alarm.flapping or n >= self.settings.flap_count:
            if not alarm.flapping:
                self._mark_flapping(alarm, ev.at, n)
            alarm.held_clear_at = ev.at
            alarm.state = AlarmState.UPDATED.value
            alarm.changed_at = ev.at
            self._changed(alarm)
            notices.setdefault(alarm, "updated")
            return
        self._close(alarm, ev.at, f"by rule {ev.rule} ({ev.source})", notices)

    def _mark_flapping(self, alarm: _Live, at: datetime, n: int) -> None:
        self.stats.flapping += 1
        alarm.flapping = True
        self._changed(alarm)
        self._history(alarm, "flapping", at, after="flapping",
                      note=f"{n} transitions within {self.settings.flap_window_s:g} s; "
                           f"clears are held until it is quiet for "
                           f"{self.settings.flap_quiet_s:g} s")

    def _close(self, alarm: _Live, at: datetime, note: str, notices: _Notices) -> None:
        self.stats.cleared += 1
        before = alarm.state
        alarm.state = AlarmState.CLEARED.value
        alarm.cleared_at = alarm.changed_at = at
        alarm.held_clear_at = alarm.auto_clear_at = None
        self._changed(alarm)
        self._history(alarm, "cleared", at, before=before, after="cleared", note=note)
        notices[alarm] = "cleared"
        if self._open.get(alarm.key) is alarm:
            del self._open[alarm.key]
        if alarm.source != "correlation":
            self._recent[alarm.key] = alarm
        self._touched.add(alarm)

    # -- correlation ---------------------------------------------------------------------

    def _means(self, alarm: _Live) -> str | None:
        if alarm.source == "correlation":
            return None
        problem = alarm.problem
        if problem not in self._means_of:
            self._means_of[problem] = self.rules.means(problem)
        return self._means_of[problem]

    def _correlate(self, session: Session, at: datetime, notices: _Notices) -> None:
        """Put alarms under their causes: over every open alarm after a load (or a new
        topology), else over what this batch touched and what depends on it."""
        view = self.view()
        full, self._full = self._full, False
        touched = list(self._touched)
        self._touched.clear()
        down: dict[int, _Live] = {}
        ends: dict[int, list[_Live]] = {}
        link_alarms: dict[int, _Live] = {}
        peers: list[_Live] = []
        by_device: dict[int, list[_Live]] = {}
        link_of = view.link_of_interface
        for a in self._open.values():
            if a.source == "correlation":
                if a.resource_type == "link" and a.link_id is not None:
                    link_alarms[a.link_id] = a
                continue
            if a.device_id is not None:
                by_device.setdefault(a.device_id, []).append(a)
            means = self._means(a)
            if means == "link-down":
                if a.interface_id is not None and a.interface_id in link_of:
                    ends.setdefault(link_of[a.interface_id].id, []).append(a)
            elif means == "device-down":
                if a.resource_type == "device" and a.device_id is not None:
                    first = down.get(a.device_id)
                    if first is None or self._id(a) < self._id(first):
                        down[a.device_id] = a
            elif means == "peer-down":
                peers.append(a)
        # what to look at again
        if full:
            links = set(ends) | set(link_alarms)
            devices: set[int] = set(by_device)
        else:
            links, devices = set(), set()
            for a in touched:
                means = self._means(a)
                if a.source == "correlation" and a.link_id is not None:
                    links.add(a.link_id)
                elif (means == "link-down" and a.interface_id is not None
                        and a.interface_id in link_of):
                    links.add(link_of[a.interface_id].id)
                elif (means == "device-down" and a.resource_type == "device"
                        and a.device_id is not None):
                    devices.add(a.device_id)
            for d in devices:
                links.update(link.id for link in view.links_of_device.get(d, ()))
        # link alarms: one per link seen down from either end
        made: list[_Live] = []
        for link_id in links:
            alarm = link_alarms.get(link_id)
            members = ends.get(link_id)
            if not members:
                if alarm is not None:
                    self._close(alarm, at, "no end of the link reports it down now", notices)
                    del link_alarms[link_id]
                continue
            link = view.links.get(link_id)
            if link is None:
                continue
            new = self._link_alarm(view, link, members, alarm, at, notices)
            if alarm is None:
                link_alarms[link_id] = new
                made.append(new)
        if made:
            self._insert_new(session)  # their ids, once for all of them
        self._touched.clear()  # what this correlation closed is accounted for here
        # the alarms whose parent may have changed
        scope: dict[int, _Live] = {}
        if full:
            scope = {id(a): a for a in self._open.values()}
        else:
            for a in touched:
                scope[id(a)] = a
            for link_id in links:
                for a in ends.get(link_id, ()):
                    scope[id(a)] = a
                la = link_alarms.get(link_id)
                if la is not None:
                    scope[id(la)] = la
            for d in devices:
                for a in by_device.get(d, ()):
                    scope[id(a)] = a
            for a in peers:
                owner = view.interface_by_address.get(a.resource)
                owner_device = (owner.device_id if owner
                                else view.device_by_address.get(a.resource))
                across = link_of.get(owner.id) if owner else None
                if (owner_device in devices or a.device_id in devices
                        or (across is not None and across.id in links)):
                    scope[id(a)] = a
        for a in scope.values():
            if not a.active:
                continue
            want = self._parent(a, view, down, link_alarms)
            want_id = self._id(want[0]) if want else None
            if a.parent_id == want_id:
                if want is not None and a.correlation != want[1]:
                    a.correlation = want[1]
                    self._changed(a)
                continue
            before = str(a.parent_id) if a.parent_id is not None else None
            if want is None:
                self._history(a, "uncorrelated", at, before=before,
                              note="its parent cleared: it stands alone again")
                a.parent_id, a.correlation = None, ""
            else:
                self.stats.correlations += 1
                a.parent_id, a.correlation = want_id, want[1]
                self._history(a, "correlated", at, before=before, after=str(want_id),
                              note=want[1])
            a.changed_at = at
            self._changed(a)
            notices.setdefault(a, "correlated")

    def _parent(self, a: _Live, view: TopologyView, down: dict[int, _Live],
                link_alarms: dict[int, _Live]) -> tuple[_Live, str] | None:
        """The alarm ``a`` belongs under, and why (None: it stands alone)."""
        means = self._means(a)
        if means == "device-down":
            return None
        if a.source == "correlation":
            link = view.links.get(a.link_id) if a.link_id is not None else None
            if link is None:
                return None
            for end in (link.a, link.b):
                if end.device_id in down:
                    name = view.devices.get(end.device_id, "?")
                    return (down[end.device_id], f"the link leads to {name}, which does not "
                            "answer its polls")
            return None
        if means == "link-down" and a.interface_id is not None:
            link = view.link_of_interface.get(a.interface_id)
            if link is not None and link.id in link_alarms:
                return (link_alarms[link.id], f"{a.device}:{a.resource} is an end of link "
                        f"{link.label(view.devices)}")
        if means == "peer-down":
            owner = view.interface_by_address.get(a.resource)
            owner_device = owner.device_id if owner else view.device_by_address.get(a.resource)
            across = view.link_of_interface.get(owner.id) if owner else None
            if across is not None and across.id in link_alarms:
                return (link_alarms[across.id], f"neighbour {a.resource} is across link "
                        f"{across.label(view.devices)}, which is down")
            if owner_device is not None and owner_device in down:
                return (down[owner_device], f"neighbour {a.resource} is on "
                        f"{view.devices.get(owner_device, '?')}, which does not answer "
                        "its polls")
        if a.device_id is not None and a.device_id in down:
            return down[a.device_id], f"{a.device} does not answer its polls"
        return None

    def _link_alarm(self, view: TopologyView, link: LinkRef, members: list[_Live],
                    alarm: _Live | None, at: datetime, notices: _Notices) -> _Live:
        label = link.label(view.devices)
        seen = sorted({f"{m.device}:{m.resource}" for m in members})
        text = (f"link {label} is down, seen from both ends" if len(seen) > 1
                else f"link {label} is down, seen from {seen[0]} only")
        severity = _worst(m.severity for m in members)
        if alarm is None:
            self.stats.raised += 1
            alarm = _Live(
                key=f"link:{link.id}|link:{label}|{LINK_PROBLEM}",
                device_id=link.a.device_id, device=view.devices.get(link.a.device_id, "?"),
                resource_type="link", resource=label, link_id=link.id, problem=LINK_PROBLEM,
                rule="correlation", alarm_type="communicationsAlarm",
                probable_cause="lossOfSignal", specific_problem=text, severity=severity,
                source="correlation", raised_at=at, changed_at=at, last_seen=at,
                details={"ends": seen})
            self._new.append(alarm)
            self._open[alarm.key] = alarm
            self._history(alarm, "raised", at, after="raised", note=f"correlation: {text}")
            notices[alarm] = "raised"
            return alarm
        if alarm.specific_problem != text or alarm.severity != severity:
            alarm.specific_problem, alarm.severity = text, severity
            alarm.details = {"ends": seen}
            alarm.state = AlarmState.UPDATED.value
            alarm.changed_at = at
            self._changed(alarm)
            notices.setdefault(alarm, "updated")
        return alarm

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _id(alarm: _Live) -> int:
        assert alarm.id is not None, "alarm not inserted"
        return alarm.id

    def _history(self, alarm: _Live, action: str, at: datetime, *,
                 before: str | None = None, after: str | None = None, note: str = "",
                 user: str | None = None) -> None:
        """Note a change of ``alarm``; written by :meth:`_write` in one bulk insert (the
        alarm may have no id yet)."""
        self._pending.append((alarm, {"at": at, "action": action, "before": before,
                                      "after": after, "note": note, "user": user}))


def _sqlite_time(value: datetime) -> str:
    """A time as SQLAlchemy's UtcDateTime stores it in SQLite (naive UTC text)."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
