"""Storage of interface rates, counter gaps and device health: raw samples, 5-minute and
hourly roll-ups, retention, and the queries charts, reports and billing read.

    perf_sample   one row per interface per poll (a RateLike from the rate engine)
    perf_rollup   period_s 300 (from perf_sample) and 3600 (from the 300 s rows):
                  samples, avg/min/max of bps and utilisation, octet sums, avg errors
    perf_gap      a Discontinuity: where the rate engine could not compute a rate
    perf_health   one row per device per health poll (cpu, memory, storage as JSON)
    perf_event    threshold events for the fault agent (agents.performance.thresholds)

Time is stored twice on purpose. Each row has its instant as a UTC datetime
(:class:`topology.inventory.UtcDateTime`, for people and the API) and the same instant as
whole Unix seconds in a BIGINT column (``t_end_s``, ``bucket_start_s``, ``at_s``; the
floor of the float). Range filters and bucketing use the integer column: a bucket is
``(t_end_s / step) * step`` in integer arithmetic, which SQLite and PostgreSQL compute
identically, so the aggregates run in SQL on both without dialect-specific date
functions. A sample belongs to the bucket that holds its ``t_end``.

Roll-ups are recomputed, not accumulated: :meth:`PerfStore.rollup` deletes and rewrites
the 5-minute buckets from ``late_s`` (default one hour) before the newest one up to the
bucket that holds ``now`` (the open one, updated on every call), then the hours that
contain them. Running it twice writes the same rows. A raw sample that arrives more than
``late_s`` after its bucket closed is kept raw but not rolled up. :meth:`PerfStore.prune`
cuts source rows on bucket boundaries and only where their bucket was rolled up at least
once (a store that was never rolled up loses no raw sample), and a roll-up never rewrites a
bucket before the first one that still has its source rows: retention cannot corrupt or
lose a roll-up. The agent calls ``rollup()`` then ``prune()``.

Sizing, measured on SQLite 3.40 (100,000 raw samples inserted 1,000 per call into an
empty file, WAL checkpointed; 10 devices x 10 interfaces x 1,000 polls; names like
``router-07`` / ``GigabitEthernet0/0/3``; every rate set): **235 bytes per raw sample**
on disk (table 171, index (device, interface, t_end_s) 50, index t_end_s 15); with short
names (``r7`` / ``eth3``) 186 bytes. A roll-up row takes about 275 bytes. Inserts ran at
about 20,000 rows/s. At one poll per 60 s an interface makes 1,440 raw rows a day, so
1,000 interfaces -> 1,440,000 raw rows/day -> about 340 MB/day (680 MB at the default
2-day raw retention), plus 288,000 5-minute rows/day (about 79 MB/day, 2.4 GB over 30
days) and 24,000 hourly rows/day (about 6.6 MB/day, 2.6 GB over 400 days): about 5.7 GB
in steady state. See docs/performance.md.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Index,
    Integer,
    UniqueConstraint,
    case,
    delete,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Field, Session, SQLModel, col
from sqlmodel import select as sm_select

from collectors.counters import HealthSample
from topology.inventory import UtcDateTime, utcnow

if TYPE_CHECKING:
    from agents.performance.thresholds import PerfEvent

__all__ = [
    "RAW_MAX_STEP_S",
    "ROLLUP_1H_S",
    "ROLLUP_5M_S",
    "DevicePoint",
    "DiscontinuityLike",
    "HealthRecord",
    "HealthRecordPublic",
    "PerfGap",
    "PerfGapPublic",
    "PerfRollup",
    "PerfRollupPublic",
    "PerfSample",
    "PerfSamplePublic",
    "PerfStore",
    "PruneResult",
    "RateLike",
    "RollupResult",
    "SeriesPoint",
    "TopEntry",
    "init_perf_db",
]

ROLLUP_5M_S = 300
ROLLUP_1H_S = 3600
RAW_MAX_STEP_S = ROLLUP_5M_S
"""series() reads raw samples for steps below this, 5-minute roll-ups below an hour,
hourly roll-ups above."""

# an auto-increment BIGINT on PostgreSQL (a busy store passes 2**31 rows); SQLite only
# auto-increments a column declared exactly INTEGER PRIMARY KEY
_ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")


# --------------------------------------------------------------------------- inputs


@runtime_checkable
class RateLike(Protocol):
    """What the store and the threshold engine read from a rate
    (``agents.performance.rates.RateSample`` has these attributes)."""

    @property
    def device(self) -> str: ...
    @property
    def interface(self) -> str: ...
    @property
    def if_index(self) -> int: ...
    @property
    def t_start(self) -> float: ...
    @property
    def t_end(self) -> float: ...
    @property
    def in_bps(self) -> float | None: ...
    @property
    def out_bps(self) -> float | None: ...
    @property
    def in_pps(self) -> float | None: ...
    @property
    def out_pps(self) -> float | None: ...
    @property
    def in_errors_ps(self) -> float | None: ...
    @property
    def out_errors_ps(self) -> float | None: ...
    @property
    def in_discards_ps(self) -> float | None: ...
    @property
    def out_discards_ps(self) -> float | None: ...
    @property
    def in_util_pct(self) -> float | None: ...
    @property
    def out_util_pct(self) -> float | None: ...
    @property
    def in_octets_delta(self) -> int | None: ...
    @property
    def out_octets_delta(self) -> int | None: ...
    @property
    def speed_mbps(self) -> int | None: ...
    @property
    def oper_status(self) -> str | None: ...


@runtime_checkable
class DiscontinuityLike(Protocol):
    """An interval the rate engine refused to turn into a rate (``at`` in Unix seconds)
    (``agents.performance.rates.Discontinuity`` has these attributes)."""

    @property
    def device(self) -> str: ...
    @property
    def interface(self) -> str: ...
    @property
    def if_index(self) -> int: ...
    @property
    def at(self) -> float: ...
    @property
    def reason(self) -> str: ...
    @property
    def detail(self) -> str: ...


def _stamp(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def _epoch_s(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: use timezone-aware UTC")
    return math.floor(at.timestamp())


# --------------------------------------------------------------------------- raw sample


class PerfSampleBase(SQLModel):
    device: str
    interface: str
    t_start: datetime = Field(sa_type=UtcDateTime)
    t_end: datetime = Field(sa_type=UtcDateTime)
    t_end_s: int = Field(sa_type=BigInteger, description="t_end as whole Unix seconds")
    in_bps: float | None = None
    out_bps: float | None = None
    in_pps: float | None = None
    out_pps: float | None = None
    in_errors_ps: float | None = None
    out_errors_ps: float | None = None
    in_discards_ps: float | None = None
    out_discards_ps: float | None = None
    in_util_pct: float | None = None
    out_util_pct: float | None = None
    in_octets: int | None = Field(default=None, sa_type=BigInteger,
                                  description="octets received in [t_start, t_end]")
    out_octets: int | None = Field(default=None, sa_type=BigInteger)


class PerfSample(PerfSampleBase, table=True):
    """One interface's rates over one poll interval."""

    __tablename__ = "perf_sample"
    __table_args__ = (
        Index("ix_perf_sample_series", "device", "interface", "t_end_s"),
        Index("ix_perf_sample_t_end_s", "t_end_s"),  # roll-up and prune range scans
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=_ID_TYPE)


class PerfSamplePublic(PerfSampleBase):
    """A raw sample as the API shows it."""

    id: int


# --------------------------------------------------------------------------- roll-up

_ROLLED = ("in_bps", "out_bps", "in_util_pct", "out_util_pct")        # avg, min, max
_AVERAGED = ("in_errors_ps", "out_errors_ps", "in_discards_ps", "out_discards_ps")
_SUMMED = ("in_octets", "out_octets")


class PerfRollupBase(SQLModel):
    period_s: int = Field(description="300 or 3600")
    bucket_start: datetime = Field(sa_type=UtcDateTime)
    bucket_start_s: int = Field(sa_type=BigInteger)
    device: str
    interface: str
    samples: int = Field(description="raw samples in the bucket")
    avg_in_bps: float | None = None
    min_in_bps: float | None = None
    max_in_bps: float | None = None
    avg_out_bps: float | None = None
    min_out_bps: float | None = None
    max_out_bps: float | None = None
    avg_in_util_pct: float | None = None
    min_in_util_pct: float | None = None
    max_in_util_pct: float | None = None
    avg_out_util_pct: float | None = None
    min_out_util_pct: float | None = None
    max_out_util_pct: float | None = None
    in_octets: int | None = Field(default=None, sa_type=BigInteger, description="sum")
    out_octets: int | None = Field(default=None, sa_type=BigInteger, description="sum")
    avg_in_errors_ps: float | None = None
    avg_out_errors_ps: float | None = None
    avg_in_discards_ps: float | None = None
    avg_out_discards_ps: float | None = None


class PerfRollup(PerfRollupBase, table=True):
    """One interface's rates summarised over a 5-minute or hourly bucket."""

    __tablename__ = "perf_rollup"
    __table_args__ = (
        # bucket_start_s is bucket_start in whole seconds: the same key, usable in ranges
        UniqueConstraint("period_s", "device", "interface", "bucket_start_s",
                         name="uq_perf_rollup_bucket"),
        Index("ix_perf_rollup_period_start", "period_s", "bucket_start_s"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=_ID_TYPE)


class PerfRollupPublic(PerfRollupBase):
    """A roll-up bucket as the API shows it."""

    id: int


# --------------------------------------------------------------------------- gap


class PerfGapBase(SQLModel):
    device: str
    interface: str
    if_index: int | None = None
    at: datetime = Field(sa_type=UtcDateTime)
    at_s: int = Field(sa_type=BigInteger)
    reason: str = Field(description='the rate engine\'s reason, e.g. "counter-backwards"')
    detail: str = ""


class PerfGap(PerfGapBase, table=True):
    """A discontinuity: no rate for this interface at ``at``, and why."""

    __tablename__ = "perf_gap"
    __table_args__ = (Index("ix_perf_gap_series", "device", "interface", "at_s"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=_ID_TYPE)


class PerfGapPublic(PerfGapBase):
    """A discontinuity as the API shows it."""

    id: int


# --------------------------------------------------------------------------- health


class HealthRecordBase(SQLModel):
    device: str
    at: datetime = Field(sa_type=UtcDateTime)
    at_s: int = Field(sa_type=BigInteger)
    cpu_percent: float | None = None
    mem_total_bytes: int | None = Field(default=None, sa_type=BigInteger)
    mem_used_bytes: int | None = Field(default=None, sa_type=BigInteger)
    storage_json: str = Field(default="[]", description="[{descr, kind, size_bytes, "
                              "used_bytes}, ...] from hrStorageTable")


class HealthRecord(HealthRecordBase, table=True):
    """A device's CPU, memory and storage at one poll."""

    __tablename__ = "perf_health"
    __table_args__ = (Index("ix_perf_health_device_at", "device", "at_s"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=_ID_TYPE)


class HealthRecordPublic(HealthRecordBase):
    """A health record as the API shows it."""

    id: int


def init_perf_db(engine: Engine) -> None:
    """Create the performance tables (samples, roll-ups, gaps, health, threshold events)
    that do not exist yet; other tables are left alone."""
    import agents.performance.thresholds  # noqa: F401  (registers perf_event; it imports us)

    names = ("perf_sample", "perf_rollup", "perf_gap", "perf_health", "perf_event")
    SQLModel.metadata.create_all(engine, tables=[SQLModel.metadata.tables[n] for n in names])


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One bucket of an interface's series: averages over the bucket (``t`` is its
    start), the highest sample in it, and how many raw samples it summarises."""

    t: datetime
    in_bps: float | None
    out_bps: float | None
    in_util_pct: float | None
    out_util_pct: float | None
    max_in_bps: float | None
    max_out_bps: float | None
    samples: int


@dataclass(frozen=True, slots=True)
class DevicePoint:
    """One bucket of a device's series: bps summed over its interfaces (each interface's
    bucket average), and its health averaged over the bucket; ``None`` where missing."""

    t: datetime
    in_bps: float | None
    out_bps: float | None
    interfaces: int
    cpu_percent: float | None
    mem_used_bytes: int | None
    mem_total_bytes: int | None


class TopEntry(NamedTuple):
    """An interface in the busiest list: its latest rates; ``util_pct`` the larger of
    in and out utilisation (``None`` when the speed is unknown)."""

    device: str
    interface: str
    in_bps: float | None
    out_bps: float | None
    util_pct: float | None


@dataclass(frozen=True, slots=True)
class RollupResult:
    """How many buckets one :meth:`PerfStore.rollup` call (re)wrote."""

    buckets_5m: int
    buckets_1h: int


@dataclass(frozen=True, slots=True)
class PruneResult:
    """Rows deleted by one :meth:`PerfStore.prune` call, per table."""

    raw: int = 0
    rollup_5m: int = 0
    rollup_1h: int = 0
    gaps: int = 0
    health: int = 0

    @property
    def total(self) -> int:
        return self.raw + self.rollup_5m + self.rollup_1h + self.gaps + self.health


# --------------------------------------------------------------------------- the store


def _bucket(column: Any, step_s: int) -> ColumnElement[int]:
    """``(column / step) * step`` in integer arithmetic; the step is rendered inline so
    the SELECT and GROUP BY expressions are the same text on PostgreSQL."""
    step = literal_column(str(int(step_s)), BigInteger)
    return (column // step) * step  # type: ignore[no-any-return]


def _floor(epoch_s: int, period_s: int) -> int:
    return epoch_s // period_s * period_s


def _max(a: float | None, b: float | None) -> float | None:
    values = [v for v in (a, b) if v is not None]
    return max(values) if values else None


def _ratio(num: Any, den: Any) -> float | None:
    return None if num is None or not den else float(num) / float(den)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else round(float(value))


class PerfStore:
    """Interface rates, gaps and health in the suite's database (SQLite or PostgreSQL).

    Every ``add_*`` is one transaction and one bulk INSERT. Datetimes in and out are
    timezone-aware UTC; naive ones are refused with ``ValueError``.
    """

    def __init__(self, engine: Engine, *, late_s: int = 3600) -> None:
        self.engine = engine
        self.late_s = late_s

    # ------------------------------------------------------------------ writing

    def add_rates(self, samples: Iterable[RateLike]) -> int:
        """Store raw samples; returns how many."""
        rows = [{
            "device": s.device, "interface": s.interface,
            "t_start": _stamp(s.t_start), "t_end": _stamp(s.t_end),
            "t_end_s": math.floor(s.t_end),
            "in_bps": s.in_bps, "out_bps": s.out_bps, "in_pps": s.in_pps,
            "out_pps": s.out_pps, "in_errors_ps": s.in_errors_ps,
            "out_errors_ps": s.out_errors_ps, "in_discards_ps": s.in_discards_ps,
            "out_discards_ps": s.out_discards_ps, "in_util_pct": s.in_util_pct,
            "out_util_pct": s.out_util_pct, "in_octets": s.in_octets_delta,
            "out_octets": s.out_octets_delta,
        } for s in samples]
        return self._insert(PerfSample, rows)

    def add_gaps(self, discontinuities: Iterable[DiscontinuityLike]) -> int:
        """Store discontinuities so charts can mark them; returns how many."""
        rows = [{"device": d.device, "interface": d.interface, "if_index": d.if_index,
                 "at": _stamp(d.at), "at_s": math.floor(d.at), "reason": d.reason,
                 "detail": d.detail} for d in discontinuities]
        return self._insert(PerfGap, rows)

    def add_health(self, sample: HealthSample) -> None:
        """Store one device's health poll."""
        storage = [{"descr": s.descr, "kind": s.kind, "size_bytes": s.size_bytes,
                    "used_bytes": s.used_bytes} for s in sample.storage]
        self._insert(HealthRecord, [{
            "device": sample.host, "at": _stamp(sample.taken_at),
            "at_s": math.floor(sample.taken_at), "cpu_percent": sample.cpu_percent,
            "mem_total_bytes": sample.mem_total_bytes, "mem_used_bytes": sample.mem_used_bytes,
            "storage_json": json.dumps(storage),
        }])

    def add_events(self, events: Sequence[PerfEvent]) -> None:
        """Store threshold events (``PerfEvent``) for the fault agent; their ids are set."""
        if not events:
            return
        with Session(self.engine, expire_on_commit=False) as session:
            session.add_all(events)
            session.commit()

    def _insert(self, model: type[SQLModel], rows: list[dict[str, Any]]) -> int:
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(model), rows)
        return len(rows)

    # ------------------------------------------------------------------ roll-up

    def rollup(self, now: datetime | None = None) -> RollupResult:
        """Compute or refresh the 5-minute buckets from raw samples and the hourly ones
        from the 5-minute buckets, up to the (open) bucket that holds ``now``.

        Idempotent: the window (see the module docstring) is deleted and rewritten in one
        transaction.
        """
        now_s = _epoch_s(now or utcnow())
        with self.engine.begin() as conn:
            first_raw = self._first(conn, col(PerfSample.t_end_s))
            start5 = self._window_start(conn, ROLLUP_5M_S, first_raw, None)
            rows5: list[dict[str, Any]] = []
            if start5 is not None:
                end5 = _floor(now_s, ROLLUP_5M_S) + ROLLUP_5M_S
                rows5 = self._aggregate_raw(conn, start5, end5)
                self._replace(conn, ROLLUP_5M_S, start5, end5, rows5)
            first5 = self._first(conn, col(PerfRollup.bucket_start_s),
                                 col(PerfRollup.period_s) == ROLLUP_5M_S)
            start1h = self._window_start(conn, ROLLUP_1H_S, first5, start5)
            rows1h: list[dict[str, Any]] = []
            if start1h is not None:
                end1h = _floor(now_s, ROLLUP_1H_S) + ROLLUP_1H_S
                rows1h = self._aggregate_5m(conn, start1h, end1h)
                self._replace(conn, ROLLUP_1H_S, start1h, end1h, rows1h)
        return RollupResult(len(rows5), len(rows1h))

    @staticmethod
    def _first(conn: Connection, column: Any, *where: Any) -> int | None:
        first = conn.execute(select(func.min(column)).where(*where)).scalar()
        return None if first is None else int(first)

    def _last_bucket(self, conn: Connection, period_s: int) -> int | None:
        last = conn.execute(select(func.max(col(PerfRollup.bucket_start_s)))
                            .where(col(PerfRollup.period_s) == period_s)).scalar()
        return None if last is None else int(last)

    def _window_start(self, conn: Connection, period_s: int, first_source: int | None,
                      dirty_from: int | None) -> int | None:
        """The first bucket of ``period_s`` the next roll-up rewrites; None: no source.

        From ``late_s`` before the newest bucket (5-minute), or the hour holding the first
        rewritten 5-minute bucket (hourly); everything when nothing was rolled up yet;
        never before the first bucket that still has its source rows (prune cuts source
        rows on bucket boundaries, so that bucket is whole).
        """
        if first_source is None:
            return None
        first = _floor(first_source, period_s)
        last = self._last_bucket(conn, period_s)
        if last is None:
            return first
        if dirty_from is None:
            dirty_from = last - self.late_s
        return max(_floor(dirty_from, period_s), first)

    def _aggregate_raw(self, conn: Connection, start_s: int, end_s: int) -> list[dict[str, Any]]:
        t = col(PerfSample.t_end_s)
        bucket = _bucket(t, ROLLUP_5M_S).label("bucket")
        columns: list[Any] = [col(PerfSample.device), col(PerfSample.interface), bucket,
                              func.count().label("samples")]
        for name in _ROLLED:
            c = getattr(PerfSample, name)
            columns += [func.avg(c).label(f"avg_{name}"), func.min(c).label(f"min_{name}"),
                        func.max(c).label(f"max_{name}")]
        columns += [func.avg(getattr(PerfSample, n)).label(f"avg_{n}") for n in _AVERAGED]
        columns += [func.sum(getattr(PerfSample, n)).label(n) for n in _SUMMED]
        query = (select(*columns).where(t >= start_s, t < end_s)
                 .group_by(col(PerfSample.device), col(PerfSample.interface), bucket))
        out = []
        for row in conn.execute(query).mappings():
            rec = dict(row)
            start = int(rec.pop("bucket"))
            rec.update(period_s=ROLLUP_5M_S, bucket_start_s=start, bucket_start=_stamp(start))
            out.append(self._typed(rec))
        return out

    def _aggregate_5m(self, conn: Connection, start_s: int, end_s: int) -> list[dict[str, Any]]:
        r = PerfRollup
        t = col(r.bucket_start_s)
        bucket = _bucket(t, ROLLUP_1H_S).label("bucket")
        n = col(r.samples)
        columns: list[Any] = [col(r.device), col(r.interface), bucket,
                              func.sum(n).label("samples")]
        for name in (*_ROLLED, *_AVERAGED):
            avg = getattr(r, f"avg_{name}")
            columns += [func.sum(avg * n).label(f"num_{name}"),
                        func.sum(case((avg.is_not(None), n))).label(f"den_{name}")]
        for name in _ROLLED:
            columns += [func.min(getattr(r, f"min_{name}")).label(f"min_{name}"),
                        func.max(getattr(r, f"max_{name}")).label(f"max_{name}")]
        columns += [func.sum(getattr(r, name)).label(name) for name in _SUMMED]
        query = (select(*columns)
                 .where(col(r.period_s) == ROLLUP_5M_S, t >= start_s, t < end_s)
                 .group_by(col(r.device), col(r.interface), bucket))
        out = []
        for row in conn.execute(query).mappings():
            rec = dict(row)
            for name in (*_ROLLED, *_AVERAGED):  # averages weighted by samples
                rec[f"avg_{name}"] = _ratio(rec.pop(f"num_{name}"), rec.pop(f"den_{name}"))
            start = int(rec.pop("bucket"))
            rec.update(period_s=ROLLUP_1H_S, bucket_start_s=start, bucket_start=_stamp(start))
            out.append(self._typed(rec))
        return out

    @staticmethod
    def _typed(rec: dict[str, Any]) -> dict[str, Any]:
        """Plain Python numbers (PostgreSQL's avg and sum answer Decimal)."""
        rec["samples"] = int(rec["samples"])
        for key, value in rec.items():
            if key in _SUMMED:
                rec[key] = _opt_int(value)
            elif key.startswith(("avg_", "min_", "max_")):
                rec[key] = _opt_float(value)
        return rec

    def _replace(self, conn: Connection, period_s: int, start_s: int, end_s: int,
                 rows: list[dict[str, Any]]) -> None:
        t = col(PerfRollup.bucket_start_s)
        conn.execute(delete(PerfRollup).where(col(PerfRollup.period_s) == period_s,
                                              t >= start_s, t < end_s))
        if rows:
            conn.execute(insert(PerfRollup), rows)

    # ------------------------------------------------------------------ retention

    def prune(self, now: datetime | None = None, raw_retention_s: float = 2 * 86400,
              rollup5_retention_s: float = 30 * 86400,
              rollup1h_retention_s: float = 400 * 86400) -> PruneResult:
        """Delete rows older than their retention; returns the counts per table.

        Raw samples and 5-minute buckets that the next :meth:`rollup` would still read are
        kept whatever their age (nothing is lost when roll-ups lag). Gaps are kept as
        long as 5-minute roll-ups, health records as long as raw samples.
        """
        now_s = _epoch_s(now or utcnow())
        with self.engine.begin() as conn:
            # source rows go on bucket boundaries (a bucket keeps all its rows or none),
            # and only once their bucket was rolled up: a store never rolled up keeps all
            last5 = self._last_bucket(conn, ROLLUP_5M_S)
            raw_cut = None if last5 is None else min(
                _floor(math.floor(now_s - raw_retention_s), ROLLUP_5M_S), last5 + ROLLUP_5M_S)
            last1h = self._last_bucket(conn, ROLLUP_1H_S)
            r5_cut = None if last1h is None else min(
                _floor(math.floor(now_s - rollup5_retention_s), ROLLUP_1H_S),
                last1h + ROLLUP_1H_S)
            r1h_cut = math.floor(now_s - rollup1h_retention_s)
            gap_cut = math.floor(now_s - rollup5_retention_s)
            health_cut = math.floor(now_s - raw_retention_s)
            t = col(PerfRollup.bucket_start_s)
            p = col(PerfRollup.period_s)
            counts = PruneResult(
                raw=self._delete(conn, PerfSample, col(PerfSample.t_end_s), raw_cut),
                rollup_5m=self._delete(conn, PerfRollup, t, r5_cut, p == ROLLUP_5M_S),
                rollup_1h=self._delete(conn, PerfRollup, t, r1h_cut, p == ROLLUP_1H_S),
                gaps=self._delete(conn, PerfGap, col(PerfGap.at_s), gap_cut),
                health=self._delete(conn, HealthRecord, col(HealthRecord.at_s), health_cut),
            )
        return counts

    @staticmethod
    def _delete(conn: Connection, model: type[SQLModel], column: Any, before_s: int | None,
                *where: Any) -> int:
        if before_s is None:
            return 0
        return int(conn.execute(delete(model).where(column < before_s, *where)).rowcount)

    # ------------------------------------------------------------------ reading

    def series(self, device: str, interface: str, start: datetime, end: datetime,
               step_s: int) -> list[SeriesPoint]:
        """An interface's rates in ``[start, end)``, one point per ``step_s`` bucket
        (aligned on the Unix epoch) that has data: a bucket without data has no point.

        Reads raw samples for steps below 300 s, 5-minute roll-ups below 3600 s and hourly
        roll-ups above; a source bucket falls wholly into the step bucket holding its
        start, so steps should be multiples of the source period.
        """
        start_s, end_s = _epoch_s(start), _epoch_s(end)
        if step_s <= 0:
            raise ValueError(f"step_s must be positive, not {step_s}")
        points = []
        with self.engine.connect() as conn:
            if step_s < RAW_MAX_STEP_S:
                s = PerfSample
                bucket = _bucket(col(s.t_end_s), step_s).label("bucket")
                query = (select(bucket, func.avg(s.in_bps), func.avg(s.out_bps),
                                func.avg(s.in_util_pct), func.avg(s.out_util_pct),
                                func.max(s.in_bps), func.max(s.out_bps), func.count())
                         .where(col(s.device) == device, col(s.interface) == interface,
                                col(s.t_end_s) >= start_s, col(s.t_end_s) < end_s)
                         .group_by(bucket).order_by(bucket))
                for b, in_b, out_b, in_u, out_u, max_in, max_out, n in conn.execute(query):
                    points.append(SeriesPoint(
                        _stamp(int(b)), _opt_float(in_b), _opt_float(out_b), _opt_float(in_u),
                        _opt_float(out_u), _opt_float(max_in), _opt_float(max_out), int(n)))
                return points
            r = PerfRollup
            period = ROLLUP_5M_S if step_s < ROLLUP_1H_S else ROLLUP_1H_S
            bucket = _bucket(col(r.bucket_start_s), step_s).label("bucket")
            n_col = col(r.samples)
            columns: list[Any] = [bucket]
            for name in _ROLLED:
                avg = getattr(r, f"avg_{name}")
                columns += [func.sum(avg * n_col), func.sum(case((avg.is_not(None), n_col)))]
            columns += [func.max(r.max_in_bps), func.max(r.max_out_bps), func.sum(n_col)]
            query = (select(*columns)
                     .where(col(r.period_s) == period, col(r.device) == device,
                            col(r.interface) == interface, col(r.bucket_start_s) >= start_s,
                            col(r.bucket_start_s) < end_s)
                     .group_by(bucket).order_by(bucket))
            for row in conn.execute(query):
                in_b, out_b, in_u, out_u = (_ratio(row[i], row[i + 1]) for i in (1, 3, 5, 7))
                points.append(SeriesPoint(
                    _stamp(int(row[0])), in_b, out_b, in_u, out_u, _opt_float(row[9]),
                    _opt_float(row[10]), int(row[11])))
        return points

    def device_series(self, device: str, start: datetime, end: datetime,
                      step_s: int) -> list[DevicePoint]:
        """A device's traffic (each interface's bucket average, summed over its
        interfaces) and health (averaged) in ``[start, end)``, one point per ``step_s``
        bucket with data. Traffic comes from the same source :meth:`series` picks;
        health always from the health records (kept as long as raw samples)."""
        start_s, end_s = _epoch_s(start), _epoch_s(end)
        if step_s <= 0:
            raise ValueError(f"step_s must be positive, not {step_s}")
        traffic: dict[int, list[float | None]] = {}
        counts: dict[int, int] = defaultdict(int)
        with self.engine.connect() as conn:
            for b, in_bps, out_bps in self._interface_buckets(conn, device, start_s, end_s,
                                                              step_s):
                sums = traffic.setdefault(b, [None, None])
                for i, value in enumerate((in_bps, out_bps)):
                    if value is not None:
                        sums[i] = (sums[i] or 0.0) + value
                counts[b] += 1
            h = HealthRecord
            bucket = _bucket(col(h.at_s), step_s).label("bucket")
            health = {int(b): (cpu, used, total) for b, cpu, used, total in conn.execute(
                select(bucket, func.avg(h.cpu_percent), func.avg(h.mem_used_bytes),
                       func.avg(h.mem_total_bytes))
                .where(col(h.device) == device, col(h.at_s) >= start_s, col(h.at_s) < end_s)
                .group_by(bucket))}
        points = []
        for b in sorted(set(traffic) | set(health)):
            in_bps, out_bps = traffic.get(b, [None, None])
            cpu, used, total = health.get(b, (None, None, None))
            points.append(DevicePoint(_stamp(b), in_bps, out_bps, counts.get(b, 0),
                                      _opt_float(cpu), _opt_int(used), _opt_int(total)))
        return points

    def _interface_buckets(self, conn: Connection, device: str, start_s: int, end_s: int,
                           step_s: int) -> list[tuple[int, float | None, float | None]]:
        """(bucket, avg in_bps, avg out_bps) per interface and bucket."""
        if step_s < RAW_MAX_STEP_S:
            s = PerfSample
            bucket = _bucket(col(s.t_end_s), step_s).label("bucket")
            query = (select(bucket, func.avg(s.in_bps), func.avg(s.out_bps))
                     .where(col(s.device) == device, col(s.t_end_s) >= start_s,
                            col(s.t_end_s) < end_s)
                     .group_by(col(s.interface), bucket))
            return [(int(b), _opt_float(i), _opt_float(o)) for b, i, o in conn.execute(query)]
        r = PerfRollup
        period = ROLLUP_5M_S if step_s < ROLLUP_1H_S else ROLLUP_1H_S
        bucket = _bucket(col(r.bucket_start_s), step_s).label("bucket")
        n = col(r.samples)
        query = (select(bucket, func.sum(r.avg_in_bps * n),
                        func.sum(case((col(r.avg_in_bps).is_not(None), n))),
                        func.sum(r.avg_out_bps * n),
                        func.sum(case((col(r.avg_out_bps).is_not(None), n))))
                 .where(col(r.period_s) == period, col(r.device) == device,
                        col(r.bucket_start_s) >= start_s, col(r.bucket_start_s) < end_s)
                 .group_by(col(r.interface), bucket))
        return [(int(b), _ratio(ni, di), _ratio(no, do))
                for b, ni, di, no, do in conn.execute(query)]

    def _latest_rows(self, device: str | None, interface: str | None,
                     since: datetime | None) -> list[PerfSample]:
        s = PerfSample
        latest = select(col(s.device), col(s.interface),
                        func.max(col(s.t_end_s)).label("t"))
        if device is not None:
            latest = latest.where(col(s.device) == device)
        if interface is not None:
            latest = latest.where(col(s.interface) == interface)
        if since is not None:
            latest = latest.where(col(s.t_end_s) >= _epoch_s(since))
        sub = latest.group_by(col(s.device), col(s.interface)).subquery()
        query = (sm_select(s).join(sub, (col(s.device) == sub.c.device)
                                & (col(s.interface) == sub.c.interface)
                                & (col(s.t_end_s) == sub.c.t)))
        with Session(self.engine) as session:
            rows = session.exec(query).all()
        best: dict[tuple[str, str], PerfSample] = {}
        for row in rows:  # two samples in the same second: the later t_end wins
            key = (row.device, row.interface)
            if key not in best or row.t_end > best[key].t_end:
                best[key] = row
        return [best[k] for k in sorted(best)]

    def top(self, n: int = 10, since: datetime | None = None) -> list[TopEntry]:
        """The ``n`` busiest interfaces by their latest sample (at or after ``since``;
        ``None``: any retained sample), ordered by the larger of in and out bps, then by
        utilisation; ties by name."""
        entries = [TopEntry(r.device, r.interface, r.in_bps, r.out_bps,
                            _max(r.in_util_pct, r.out_util_pct))
                   for r in self._latest_rows(None, None, since)]
        entries.sort(key=lambda e: (-(_max(e.in_bps, e.out_bps) or 0.0),
                                    -(e.util_pct or 0.0), e.device, e.interface))
        return entries[:n]

    def latest(self, device: str, interface: str | None = None) -> list[PerfSamplePublic]:
        """The latest raw sample of each of the device's interfaces (only ``interface``
        when given), ordered by interface name; empty when there is none."""
        return [PerfSamplePublic.model_validate(r)
                for r in self._latest_rows(device, interface, None)]

    def gaps(self, device: str, interface: str | None, start: datetime,
             end: datetime) -> list[PerfGapPublic]:
        """Discontinuities in ``[start, end)`` for one interface (all the device's
        interfaces when ``interface`` is ``None``), oldest first."""
        g = PerfGap
        # at_s is whole seconds: an end inside a second must still take that second in
        query = sm_select(g).where(col(g.device) == device, col(g.at_s) >= _epoch_s(start),
                                col(g.at_s) < math.ceil(end.timestamp()))
        if interface is not None:
            query = query.where(col(g.interface) == interface)
        with Session(self.engine) as session:
            rows = session.exec(query.order_by(col(g.at_s), col(g.id))).all()
        return [PerfGapPublic.model_validate(r) for r in rows]
