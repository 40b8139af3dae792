"""Unit tests for agents.performance.store (SQLite in tmp_path)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from agents.performance.store import (
    DevicePoint,
    HealthRecord,
    PerfRollup,
    PerfSample,
    PerfStore,
    SeriesPoint,
    TopEntry,
    init_perf_db,
)
from agents.performance.thresholds import PerfEvent
from collectors.counters import HealthSample, StorageUse
from topology.db import dispose_engines, get_engine

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)     # on an hour boundary
E0 = T0.timestamp()


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
    in_errors_ps: float | None = None
    out_errors_ps: float | None = None
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


def rate(t_s: float, in_bps: float | None = 100.0, out_bps: float | None = 50.0, *,
         device: str = "r1", interface: str = "eth1", interval_s: float = 60.0,
         **extra: float | int | None) -> Rate:
    """A sample ending ``t_s`` seconds after T0."""
    return Rate(device=device, interface=interface, if_index=1, t_start=E0 + t_s - interval_s,
                t_end=E0 + t_s, in_bps=in_bps, out_bps=out_bps, **extra)  # type: ignore[arg-type]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def _fresh_engines() -> Iterator[None]:
    yield
    dispose_engines()


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    eng = get_engine(f"sqlite:///{tmp_path / 'perf.db'}")
    init_perf_db(eng)
    return eng


@pytest.fixture
def store(engine: Engine) -> PerfStore:
    return PerfStore(engine)


def rollups(engine: Engine, period_s: int) -> list[PerfRollup]:
    with Session(engine) as session:
        return list(session.exec(
            select(PerfRollup).where(col(PerfRollup.period_s) == period_s)
            .order_by(col(PerfRollup.device), col(PerfRollup.interface),
                      col(PerfRollup.bucket_start_s))).all())


def content(rows: list[PerfRollup]) -> list[dict[str, object]]:
    return [r.model_dump(exclude={"id"}) for r in rows]


# --------------------------------------------------------------------------- writing


def test_init_creates_only_the_performance_tables(engine: Engine) -> None:
    from sqlalchemy import inspect

    assert set(inspect(engine).get_table_names()) == {
        "perf_sample", "perf_rollup", "perf_gap", "perf_health", "perf_event"}


def test_add_rates_stores_aware_utc_and_epoch_seconds(store: PerfStore, engine: Engine) -> None:
    assert store.add_rates([rate(60.7, in_bps=1e6, in_octets_delta=7_500_000)]) == 1
    assert store.add_rates([]) == 0
    with Session(engine) as session:
        row = session.exec(select(PerfSample)).one()
    assert row.t_end == at(60.7) and row.t_end.tzinfo is not None
    assert row.t_start == at(0.7)
    assert row.t_end_s == int(E0) + 60
    assert (row.in_bps, row.in_octets, row.out_octets) == (1e6, 7_500_000, None)


def test_add_health_keeps_storage_as_json(store: PerfStore, engine: Engine) -> None:
    store.add_health(HealthSample(host="r1", taken_at=E0, cpu_percent=12.5,
                                  mem_total_bytes=8 << 30, mem_used_bytes=2 << 30,
                                  storage=(StorageUse("/", "disk", 100, 40),)))
    with Session(engine) as session:
        row = session.exec(select(HealthRecord)).one()
    assert (row.device, row.at, row.cpu_percent, row.mem_total_bytes) == ("r1", T0, 12.5, 8 << 30)
    assert '"descr": "/"' in row.storage_json and '"used_bytes": 40' in row.storage_json


def test_add_events_persists_for_the_fault_agent(store: PerfStore, engine: Engine) -> None:
    event = PerfEvent(at=T0, device="r1", resource="eth1", rule="high-utilisation",
                      kind="raise", severity="major", metric="util_pct", value=93.2,
                      threshold=80.0, detail="x")
    store.add_events([event])
    assert event.id is not None
    with Session(engine) as session:
        stored = session.exec(select(PerfEvent)).one()
    assert (stored.rule, stored.consumed, stored.at) == ("high-utilisation", False, T0)


def test_naive_datetimes_and_bad_steps_are_refused(store: PerfStore) -> None:
    with pytest.raises(ValueError, match="naive"):
        store.series("r1", "eth1", datetime(2025, 1, 1), at(600), 60)
    with pytest.raises(ValueError, match="step_s"):
        store.series("r1", "eth1", T0, at(600), 0)


# --------------------------------------------------------------------------- series


def test_raw_series_one_point_per_step_bucket(store: PerfStore) -> None:
    store.add_rates([rate(60 * i + 1, in_bps=10.0 * i, out_bps=5.0) for i in range(6)])
    points = store.series("r1", "eth1", T0, at(360), 60)
    assert [p.t for p in points] == [at(60 * i) for i in range(6)]
    assert all(p.samples == 1 for p in points)
    assert points[3] == SeriesPoint(at(180), 30.0, 5.0, None, None, 30.0, 5.0, 1)

    pairs = store.series("r1", "eth1", T0, at(360), 120)
    assert [(p.t, p.in_bps, p.max_in_bps, p.samples) for p in pairs] == [
        (at(0), 5.0, 10.0, 2), (at(120), 25.0, 30.0, 2), (at(240), 45.0, 50.0, 2)]


def test_series_range_is_half_open_and_per_interface(store: PerfStore) -> None:
    store.add_rates([rate(60), rate(120), rate(180), rate(120, interface="eth2", in_bps=9e9)])
    points = store.series("r1", "eth1", at(60), at(180), 60)
    assert [p.t for p in points] == [at(60), at(120)]
    assert all(p.in_bps == 100.0 for p in points)


def test_a_gap_in_the_data_stays_a_gap_in_the_series(store: PerfStore) -> None:
    minutes = [*range(0, 5), *range(10, 15)]            # nothing from 12:05 to 12:10
    store.add_rates([rate(60 * m + 30) for m in minutes])
    raw = store.series("r1", "eth1", T0, at(900), 60)
    assert [p.t for p in raw] == [at(60 * m) for m in minutes]

    store.rollup(now=at(900))
    five = store.series("r1", "eth1", T0, at(900), 300)
    assert [(p.t, p.samples) for p in five] == [(at(0), 5), (at(600), 5)]


def test_series_picks_raw_5_minute_or_hourly_by_step(store: PerfStore) -> None:
    # 3 hours, one sample a minute; in_bps = the hour's number * 1000 + the minute
    store.add_rates([rate(60 * m + 30, in_bps=1000.0 * (m // 60) + m % 60, out_bps=1.0)
                     for m in range(180)])
    assert store.series("r1", "eth1", T0, at(3 * 3600), 300) == []   # not rolled up yet
    assert store.rollup(now=at(3 * 3600 - 1)).buckets_5m == 36

    raw = store.series("r1", "eth1", T0, at(3 * 3600), 60)
    five = store.series("r1", "eth1", T0, at(3 * 3600), 300)
    quarter = store.series("r1", "eth1", T0, at(3 * 3600), 900)
    hourly = store.series("r1", "eth1", T0, at(3 * 3600), 3600)
    assert (len(raw), len(five), len(quarter), len(hourly)) == (180, 36, 12, 3)
    assert five[1] == SeriesPoint(at(300), 7.0, 1.0, None, None, 9.0, 1.0, 5)
    assert quarter[0].in_bps == pytest.approx(7.0)                       # minutes 0..14
    assert [p.in_bps for p in hourly] == pytest.approx([29.5, 1029.5, 2029.5])
    assert [p.max_in_bps for p in hourly] == [59.0, 1059.0, 2059.0]
    assert all(p.samples == 60 for p in hourly)

    # roll-ups survive the raw samples' retention
    store.prune(now=at(3 * 3600 + 3 * 86400))
    assert store.series("r1", "eth1", T0, at(3 * 3600), 60) == []
    assert store.series("r1", "eth1", T0, at(3 * 3600), 3600) == hourly


# --------------------------------------------------------------------------- roll-ups


def test_5_minute_rollup_avg_min_max_by_hand(store: PerfStore, engine: Engine) -> None:
    store.add_rates([
        rate(60, in_bps=10.0, out_bps=1.0, in_util_pct=1.0, out_util_pct=0.5,
             in_octets_delta=75, out_octets_delta=7, in_errors_ps=1.0, out_errors_ps=0.0,
             in_discards_ps=0.0, out_discards_ps=2.0),
        rate(120, in_bps=20.0, out_bps=3.0, in_util_pct=2.0, out_util_pct=None,
             in_octets_delta=150, out_octets_delta=None, in_errors_ps=3.0, out_errors_ps=0.0,
             in_discards_ps=0.0, out_discards_ps=4.0),
        rate(180, in_bps=60.0, out_bps=None, in_util_pct=6.0, out_util_pct=1.5,
             in_octets_delta=450, out_octets_delta=21),
        rate(300, in_bps=1000.0, out_bps=1000.0),          # the next bucket (12:05)
    ])
    result = store.rollup(now=at(301))
    assert (result.buckets_5m, result.buckets_1h) == (2, 1)
    first, second = rollups(engine, 300)
    assert (first.bucket_start, first.bucket_start_s, first.samples) == (T0, int(E0), 3)
    assert (first.avg_in_bps, first.min_in_bps, first.max_in_bps) == (30.0, 10.0, 60.0)
    assert (first.avg_out_bps, first.min_out_bps, first.max_out_bps) == (2.0, 1.0, 3.0)
    assert (first.avg_in_util_pct, first.min_in_util_pct, first.max_in_util_pct) == (3.0, 1.0,
                                                                                       6.0)
    assert (first.avg_out_util_pct, first.min_out_util_pct, first.max_out_util_pct) == (
        1.0, 0.5, 1.5)
    assert (first.in_octets, first.out_octets) == (675, 28)
    assert (first.avg_in_errors_ps, first.avg_out_errors_ps) == (2.0, 0.0)
    assert (first.avg_in_discards_ps, first.avg_out_discards_ps) == (0.0, 3.0)
    assert (second.bucket_start, second.samples, second.avg_in_bps) == (at(300), 1, 1000.0)


def test_hourly_rollup_weights_5_minute_averages_by_samples(store: PerfStore,
                                                            engine: Engine) -> None:
    store.add_rates([rate(60, in_bps=100.0, in_octets_delta=10)]      # 12:00 bucket: 1
                    + [rate(300 + 60 * i, in_bps=200.0, in_util_pct=20.0,
                            in_octets_delta=5) for i in range(1, 4)])  # 12:05 bucket: 3
    store.rollup(now=at(3599))
    (hour,) = rollups(engine, 3600)
    assert (hour.bucket_start, hour.samples) == (T0, 4)
    assert hour.avg_in_bps == pytest.approx((100.0 + 3 * 200.0) / 4)   # not (100 + 200) / 2
    assert (hour.min_in_bps, hour.max_in_bps) == (100.0, 200.0)
    assert hour.avg_in_util_pct == pytest.approx(20.0)   # the sample without one is left out
    assert hour.in_octets == 25
    assert hour.avg_out_bps == pytest.approx(50.0)


def test_rollup_is_idempotent_and_refreshes_the_open_bucket(store: PerfStore,
                                                            engine: Engine) -> None:
    store.add_rates([rate(60 * m + 30, in_bps=float(m)) for m in range(12)])
    store.rollup(now=at(12 * 60))
    once5, once1h = content(rollups(engine, 300)), content(rollups(engine, 3600))
    store.rollup(now=at(12 * 60))
    assert content(rollups(engine, 300)) == once5
    assert content(rollups(engine, 3600)) == once1h
    assert [r["samples"] for r in once5] == [5, 5, 2]

    store.add_rates([rate(12 * 60 + 30, in_bps=12.0)])      # the open 12:10 bucket grows
    store.rollup(now=at(13 * 60))
    assert [r.samples for r in rollups(engine, 300)] == [5, 5, 3]
    assert rollups(engine, 3600)[0].samples == 13


def test_rollup_takes_late_samples_within_late_s(store: PerfStore, engine: Engine) -> None:
    store.add_rates([rate(30, device="r1"), rate(630, device="r2")])
    store.rollup(now=at(660))
    store.add_rates([rate(90, device="r1")])                # late, for the closed 12:00 bucket
    store.rollup(now=at(700))
    assert [(r.device, r.bucket_start, r.samples) for r in rollups(engine, 300)] == [
        ("r1", T0, 2), ("r2", at(600), 1)]


def test_rollup_of_an_empty_store_writes_nothing(store: PerfStore) -> None:
    result = store.rollup(now=T0)
    assert (result.buckets_5m, result.buckets_1h) == (0, 0)


# --------------------------------------------------------------------------- retention


def test_prune_by_retention(store: PerfStore, engine: Engine) -> None:
    day = 86400
    # one sample every 10 minutes for 3 days; gaps and health at the start and the end
    store.add_rates([rate(600 * i + 30, interval_s=600) for i in range(3 * 144)])
    store.add_gaps([Gap("r1", "eth1", 1, E0 + 10, "agent-restart", "x"),
                    Gap("r1", "eth1", 1, E0 + 3 * day - 10, "gap", "y")])
    for t in (E0 + 10, E0 + 3 * day - 10):
        store.add_health(HealthSample(host="r1", taken_at=t, cpu_percent=1.0))
    now = at(3 * day)
    store.rollup(now=now)
    assert (len(rollups(engine, 300)), len(rollups(engine, 3600))) == (432, 72)

    deleted = store.prune(now=now, raw_retention_s=2 * day, rollup5_retention_s=2.5 * day,
                          rollup1h_retention_s=400 * day)
    assert (deleted.raw, deleted.rollup_5m, deleted.rollup_1h) == (144, 72, 0)
    assert (deleted.gaps, deleted.health) == (1, 1)
    assert deleted.total == 144 + 72 + 2
    with Session(engine) as session:
        oldest = session.exec(select(PerfSample).order_by(col(PerfSample.t_end_s))).first()
    assert oldest is not None and oldest.t_end >= now - timedelta(days=2)
    assert rollups(engine, 300)[0].bucket_start == now - timedelta(days=2.5)

    again = store.prune(now=now, raw_retention_s=2 * day, rollup5_retention_s=2.5 * day)
    assert again.total == 0
    everything = store.prune(now=at(500 * day))
    assert everything.rollup_1h == 72


def test_prune_keeps_raw_samples_that_were_never_rolled_up(store: PerfStore) -> None:
    store.add_rates([rate(30), rate(90)])
    assert store.prune(now=at(10 * 86400)).raw == 0
    store.rollup(now=at(10 * 86400))
    assert store.prune(now=at(10 * 86400)).raw == 2


# --------------------------------------------------------------------------- top, latest


def test_top_orders_by_latest_sample(store: PerfStore) -> None:
    store.add_rates([
        rate(60, 9e9, 0.0, interface="eth1"), rate(120, 1e6, 2e6, interface="eth1",
                                                    in_util_pct=0.1, out_util_pct=0.2),
        rate(120, 5e8, 1e8, interface="eth2", in_util_pct=50.0, out_util_pct=10.0),
        rate(120, 1e3, 3e8, interface="eth3", device="r2"),
        rate(120, 1e3, 3e8, interface="eth4", device="r2", in_util_pct=0.0,
             out_util_pct=30.0),
        rate(-3600, 7e9, 7e9, interface="old", device="r3"),
    ])
    top = store.top(n=10, since=T0)
    assert top == [
        TopEntry("r1", "eth2", 5e8, 1e8, 50.0),
        TopEntry("r2", "eth4", 1e3, 3e8, 30.0),          # same bps, higher utilisation first
        TopEntry("r2", "eth3", 1e3, 3e8, None),
        TopEntry("r1", "eth1", 1e6, 2e6, 0.2),           # its earlier 9 Gb/s does not count
    ]
    assert store.top(n=2, since=T0) == top[:2]
    assert store.top()[0] == TopEntry("r3", "old", 7e9, 7e9, None)   # since None: any age
    device, interface, in_bps, out_bps, util = top[0]
    assert (device, interface, in_bps, out_bps, util) == ("r1", "eth2", 5e8, 1e8, 50.0)


def test_latest_per_interface(store: PerfStore) -> None:
    store.add_rates([rate(60, 1.0, interface="eth1"), rate(120, 2.0, interface="eth1"),
                     rate(60, 3.0, interface="eth2"), rate(180, 4.0, device="r2")])
    latest = store.latest("r1")
    assert [(s.interface, s.in_bps, s.t_end) for s in latest] == [
        ("eth1", 2.0, at(120)), ("eth2", 3.0, at(60))]
    assert [s.in_bps for s in store.latest("r1", "eth2")] == [3.0]
    assert store.latest("r9") == []


# --------------------------------------------------------------------------- device, gaps


def test_device_series_sums_interfaces_and_adds_health(store: PerfStore) -> None:
    store.add_rates([
        rate(30, 100.0, 10.0, interface="eth1"), rate(90, 300.0, 30.0, interface="eth1"),
        rate(30, 1000.0, None, interface="eth2"),
        rate(30, 5e9, 5e9, interface="eth1", device="r2"),
    ])
    store.add_health(HealthSample(host="r1", taken_at=E0 + 40, cpu_percent=10.0,
                                  mem_total_bytes=1000, mem_used_bytes=400))
    store.add_health(HealthSample(host="r1", taken_at=E0 + 100, cpu_percent=30.0,
                                  mem_total_bytes=1000, mem_used_bytes=600))
    store.add_health(HealthSample(host="r1", taken_at=E0 + 200, cpu_percent=50.0))

    per_minute = store.device_series("r1", T0, at(300), 60)
    assert per_minute == [
        DevicePoint(at(0), 1100.0, 10.0, 2, 10.0, 400, 1000),
        DevicePoint(at(60), 300.0, 30.0, 1, 30.0, 600, 1000),
        DevicePoint(at(180), None, None, 0, 50.0, None, None),   # health only
    ]
    # two samples of eth1 in one bucket count as its average, not twice
    two_minutes = store.device_series("r1", T0, at(120), 120)
    assert two_minutes == [DevicePoint(at(0), 200.0 + 1000.0, 20.0, 2, 20.0, 500, 1000)]

    store.rollup(now=at(300))
    five = store.device_series("r1", T0, at(300), 300)
    assert [(p.in_bps, p.out_bps, p.interfaces, p.cpu_percent) for p in five] == [
        (1200.0, 20.0, 2, 30.0)]


def test_gaps_are_stored_and_queried(store: PerfStore) -> None:
    assert store.add_gaps([
        Gap("r1", "eth1", 1, E0 + 60, "counter-backwards", "in_octets went from 9 to 3"),
        Gap("r1", "eth2", 2, E0 + 30, "agent-restart", "sysUpTime went back"),
        Gap("r1", "eth1", 1, E0 + 7200, "gap", "outside the range"),
        Gap("r2", "eth1", 1, E0 + 60, "gap", "other device"),
    ]) == 4
    eth1 = store.gaps("r1", "eth1", T0, at(3600))
    assert [(g.at, g.reason, g.detail) for g in eth1] == [
        (at(60), "counter-backwards", "in_octets went from 9 to 3")]
    assert [g.interface for g in store.gaps("r1", None, T0, at(3600))] == ["eth2", "eth1"]


# --------------------------------------------------------------------------- sizing


def test_raw_sample_size_stays_near_the_documented_figure(tmp_path: Path) -> None:
    """The module docstring and docs/performance.md quote 235 bytes per raw sample."""
    path = tmp_path / "size.db"
    eng = get_engine(f"sqlite:///{path}")
    init_perf_db(eng)
    perf = PerfStore(eng)
    with eng.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    empty = path.stat().st_size
    rows = 20_000
    perf.add_rates([
        rate(60 * (i // 100) + 30, in_bps=123456.789 * i, out_bps=98765.4321 * i,
             device=f"router-{i % 100 // 10:02d}", interface=f"GigabitEthernet0/0/{i % 10}",
             in_pps=1234.5, out_pps=987.6, in_errors_ps=0.0, out_errors_ps=0.0,
             in_discards_ps=0.0, out_discards_ps=0.0, in_util_pct=12.34, out_util_pct=5.67,
             in_octets_delta=926_000 + i, out_octets_delta=740_000 + i)
        for i in range(rows)])
    with eng.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    per_row = (path.stat().st_size - empty) / rows
    assert 150 < per_row < 300


def test_rollup_after_prune_keeps_buckets_whose_raw_samples_are_gone(engine: Engine) -> None:
    store = PerfStore(engine, late_s=10 * 86400)          # a window reaching past retention
    store.add_rates([rate(600 * i + 30, interval_s=600) for i in range(3 * 144)])
    store.rollup(now=at(3 * 86400))
    before5, before1h = content(rollups(engine, 300)), content(rollups(engine, 3600))
    assert store.prune(now=at(3 * 86400)).raw == 144
    store.rollup(now=at(3 * 86400))
    assert content(rollups(engine, 300)) == before5
    assert content(rollups(engine, 3600)) == before1h


def test_prune_only_takes_raw_samples_already_rolled_up(store: PerfStore,
                                                        engine: Engine) -> None:
    store.add_rates([rate(600 * i + 30, interval_s=600) for i in range(144)])   # day 1
    store.rollup(now=at(86400))
    store.add_rates([rate(600 * i + 30, interval_s=600) for i in range(144, 3 * 144)])
    # the roll-up lagged for two days: the raw samples of days 2 and 3 are all kept
    deleted = store.prune(now=at(3 * 86400), raw_retention_s=0)
    assert deleted.raw == 144
    store.rollup(now=at(3 * 86400))
    assert len(rollups(engine, 300)) == 3 * 144
    assert sum(r.samples for r in rollups(engine, 3600)) == 3 * 144


def test_a_gap_in_the_last_partial_second_of_the_range_is_found(tmp_path: Path) -> None:
    """at is stored as whole seconds: an end 0.3 s after the gap must still include it."""
    from datetime import UTC, datetime

    from agents.performance.rates import Discontinuity
    from agents.performance.store import PerfStore, init_perf_db
    from topology.db import get_engine

    engine = get_engine(f"sqlite:///{tmp_path}/gap.db")
    init_perf_db(engine)
    store = PerfStore(engine)
    at = 1_800_000_000.5
    store.add_gaps([Discontinuity("r1", "eth1", 3, at, "agent-restart", "sysUpTime went back")])
    found = store.gaps("r1", "eth1", datetime.fromtimestamp(at - 0.2, UTC),
                       datetime.fromtimestamp(at + 0.3, UTC))
    assert [g.reason for g in found] == ["agent-restart"]
