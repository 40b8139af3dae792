"""The poller: every device at its interval, with jitter, a time budget, and never two
polls of one device at once. A poll that starts late, or a cycle that overruns, is
counted and reported, not hidden.

One poll of a device: counters (SNMP, or NETCONF for devices that only speak NETCONF)
and health -> the rate engine -> storage -> threshold rules -> events for the fault
agent. The previous sample of each device is kept in the database, so one-shot
cycles (``switchboard poll --once``) run apart still give rates.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, select

from agents.performance.rates import RateEngine
from agents.performance.settings import PerfSettings
from agents.performance.store import PerfStore, init_perf_db
from agents.performance.thresholds import PerfEvent, ThresholdEngine, load_rules
from collectors.counters import CounterSample, HealthSample, InterfaceCounters
from collectors.netconf_counters import netconf_counters
from collectors.snmp import SnmpClient, SnmpCredentials, SnmpVersion
from collectors.snmp_counters import CounterCollector
from topology.credentials import CredentialProfile, CredentialStore
from topology.errors import CollectionError, CredentialError, StatusCode
from topology.inventory import Device

__all__ = ["PollOutcome", "PollTarget", "Poller", "PollerStat", "init_poller_db"]

log = logging.getLogger(__name__)


class LastSample(SQLModel, table=True):
    """The last counter sample of each device (JSON), so rates survive restarts."""

    __tablename__ = "perf_last_sample"

    device: str = Field(primary_key=True)
    sample_json: str
    interval_s: float


class PollerStat(SQLModel, table=True):
    """The poller's own health, for /metrics: one row per counter or gauge."""

    __tablename__ = "perf_poller_stat"

    name: str = Field(primary_key=True)
    value: float = 0.0


def init_poller_db(engine: Engine) -> None:
    """Create the poller's tables (the store and thresholds create their own)."""
    SQLModel.metadata.create_all(engine, tables=[
        LastSample.__table__, PollerStat.__table__])  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PollTarget:
    """A device to poll and how."""

    device: str
    host: str
    role: str
    interval_s: float
    snmp: SnmpCredentials | None = None
    netconf: tuple[str, str, str] | None = None   # user, password, profile name

    def __repr__(self) -> str:  # no secrets
        plane = "snmp" if self.snmp else "netconf" if self.netconf else "none"
        return f"PollTarget({self.device} {self.host} via {plane} every {self.interval_s}s)"


@dataclass
class PollOutcome:
    """How one poll of one device ended."""

    device: str
    status: StatusCode
    detail: str = ""
    interfaces: int = 0
    rates: int = 0
    gaps: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    seconds: float = 0.0
    late_s: float = 0.0


def _sample_to_json(sample: CounterSample) -> str:
    return json.dumps(asdict(sample))


def _sample_from_json(raw: str) -> CounterSample:
    data = json.loads(raw)
    data["interfaces"] = tuple(InterfaceCounters(**i) for i in data["interfaces"])
    return CounterSample(**data)


def _snmp_creds(profile: CredentialProfile) -> SnmpCredentials | None:
    for version in (SnmpVersion.V3, SnmpVersion.V2C):
        creds = SnmpCredentials.from_profile(profile, version)
        if creds is not None:
            return creds
    return None


class Poller:
    """Polls the inventory's devices; see the module docstring."""

    def __init__(self, engine: Engine, settings: PerfSettings, *,
                 store: CredentialStore | None = None, client: SnmpClient | None = None,
                 thresholds: ThresholdEngine | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.credentials = store or CredentialStore()
        self.client = client or SnmpClient(timeout_s=settings.timeout_s,
                                           retries=settings.retries)
        self.collector = CounterCollector(self.client)
        self.rates = RateEngine()
        self.store = PerfStore(engine)
        self.thresholds = thresholds or ThresholdEngine(load_rules(settings.thresholds_file))
        self.stats: dict[str, float] = {}
        self._busy: set[str] = set()
        self._seeded = False
        init_perf_db(engine)
        init_poller_db(engine)
        with Session(engine) as session:
            self.stats = {s.name: s.value for s in session.exec(select(PollerStat)).all()}

    # -- what to poll --------------------------------------------------------------
    def targets(self) -> list[PollTarget]:
        """Devices in the inventory that answered SNMP or NETCONF, with their profile."""
        with Session(self.engine) as session:
            devices = session.exec(select(Device).where(Device.status != "missing")).all()
        out = []
        for dev in devices:
            planes = set(dev.planes.split(",")) if dev.planes else set()
            if not dev.mgmt_address or not dev.credential_profile:
                continue
            try:
                profile = self.credentials.load(dev.credential_profile)
            except CredentialError as exc:
                log.warning("not polling %s: %s", dev.name, exc)
                continue
            interval = self.settings.interval_for(dev.name, dev.role)
            snmp = _snmp_creds(profile) if "snmp" in planes else None
            netconf = None
            if snmp is None and "netconf" in planes and profile.netconf_username \
                    and profile.netconf_password is not None:
                netconf = (profile.netconf_username,
                           profile.netconf_password.get_secret_value(), profile.name)
            if snmp is None and netconf is None:
                continue
            out.append(PollTarget(dev.name, dev.mgmt_address, dev.role, interval, snmp,
                                  netconf))
        return sorted(out, key=lambda t: t.device)

    def _seed(self) -> None:
        """Give the rate engine each device's last sample from the database."""
        if self._seeded:
            return
        with Session(self.engine) as session:
            for row in session.exec(select(LastSample)).all():
                try:
                    self.rates.update(row.device, _sample_from_json(row.sample_json),
                                      expected_interval_s=row.interval_s)
                except (ValueError, TypeError, KeyError) as exc:
                    log.warning("last sample of %s unreadable, starting afresh: %s",
                                row.device, exc)
        self._seeded = True

    # -- one poll --------------------------------------------------------------------
    async def poll(self, target: PollTarget, *, late_s: float = 0.0) -> PollOutcome:
        """Poll one device within its budget; never raises for the device's failures."""
        self._seed()
        started = time.monotonic()
        outcome = PollOutcome(target.device, StatusCode.OK, late_s=late_s)
        if target.device in self._busy:  # never two polls of one device at once
            outcome.status, outcome.detail = StatusCode.ERROR, "previous poll still running"
            self._count("overlaps_skipped_total")
            return outcome
        self._busy.add(target.device)
        sample: CounterSample | None = None
        health: HealthSample | None = None
        try:
            sample, health = await asyncio.wait_for(self._fetch(target),
                                                    self.settings.budget_s)
        except TimeoutError:
            outcome.status = StatusCode.TIMEOUT
            outcome.detail = f"over its budget of {self.settings.budget_s:.0f} s"
        except CollectionError as exc:
            outcome.status, outcome.detail = exc.status, str(exc)
        finally:
            self._busy.discard(target.device)
        events: list[PerfEvent] = []
        if sample is None:
            self._count("failures_total")
            self._count(f"failures_{outcome.status.value}_total")
            events += self.thresholds.poll_result(target.device, False,
                                                  outcome.status.value, outcome.detail)
        else:
            events += self.thresholds.poll_result(target.device, True, "ok", "")
            rates, gaps = self.rates.update(target.device, sample,
                                            expected_interval_s=target.interval_s)
            outcome.interfaces = len(sample.interfaces)
            outcome.rates = len(rates)
            outcome.gaps = sorted({f"{g.interface}: {g.reason}" for g in gaps
                                   if g.reason != "first-sample"})
            self.store.add_rates(rates)
            self.store.add_gaps(gaps)
            if health is not None:
                self.store.add_health(health)
            events += self.thresholds.evaluate_gaps(gaps)
            events += self.thresholds.evaluate_rates(rates)
            self._remember(target, sample)
        if events:
            with Session(self.engine) as session:
                session.add_all(events)
                session.commit()
                outcome.events = [e.detail for e in events]
        outcome.seconds = time.monotonic() - started
        self._count("polls_total")
        if late_s > 1.0:
            self._count("late_polls_total")
        return outcome

    async def _fetch(self, target: PollTarget) -> tuple[CounterSample, HealthSample | None]:
        if target.snmp is not None:
            sample = await self.collector.poll(target.host, target.snmp)
            health: HealthSample | None = None
            try:
                health = await self.collector.poll_health(target.host, target.snmp)
            except CollectionError as exc:  # health is a bonus, counters are the poll
                log.info("no health from %s: %s", target.device, exc)
            return sample, health
        assert target.netconf is not None
        user, password, profile = target.netconf
        sample = await asyncio.to_thread(netconf_counters, target.host, user, password,
                                         profile=profile)
        return sample, None

    def _remember(self, target: PollTarget, sample: CounterSample) -> None:
        with Session(self.engine) as session:
            session.merge(LastSample(device=target.device, sample_json=_sample_to_json(sample),
                                     interval_s=target.interval_s))
            session.commit()

    def _count(self, name: str, by: float = 1.0) -> None:
        self.stats[name] = self.stats.get(name, 0.0) + by

    def _set(self, name: str, value: float) -> None:
        self.stats[name] = value

    def save_stats(self) -> None:
        """Write the poller's own counters for /metrics."""
        with Session(self.engine) as session:
            for name, value in self.stats.items():
                session.merge(PollerStat(name=name, value=value))
            session.commit()

    # -- a cycle, and the schedule ---------------------------------------------------------
    async def cycle(self, targets: Sequence[PollTarget] | None = None) -> list[PollOutcome]:
        """Poll every target once (bounded concurrency); what ``poll --once`` runs."""
        targets = list(targets if targets is not None else self.targets())
        gate = asyncio.Semaphore(self.settings.concurrency)
        started = time.monotonic()

        async def one(t: PollTarget) -> PollOutcome:
            async with gate:
                return await self.poll(t)

        outcomes = list(await asyncio.gather(*(one(t) for t in targets)))
        took = time.monotonic() - started
        self._set("cycle_seconds", took)
        self._set("devices", len(targets))
        shortest = min((t.interval_s for t in targets), default=self.settings.interval_s)
        if took > shortest:
            self._count("cycle_overruns_total")
            log.warning("poll cycle took %.1f s, longer than the %.0f s interval", took,
                        shortest)
        self.store.rollup()
        self.save_stats()
        return outcomes

    async def run(self, stop: asyncio.Event,
                  report: Callable[[PollOutcome], None] | None = None, *,
                  refresh_s: float = 60.0) -> None:
        """Poll every device at its interval until ``stop`` is set.

        Each device's first poll is spread over ``jitter_s``; after each poll its next
        is due one interval after the previous due time. A device whose poll is still
        running when its next is due is not polled twice: the late start is counted.
        The targets are read again from the inventory every ``refresh_s`` (a device
        discovered meanwhile joins, one gone missing leaves). When ``stop`` is set, no
        poll starts and the polls under way finish (each within its budget).
        """
        targets = {t.device: t for t in self.targets()}
        now = time.monotonic()
        due = {d: now + random.uniform(0, self.settings.jitter_s)
               for d in targets}
        gate = asyncio.Semaphore(self.settings.concurrency)
        running: set[asyncio.Task[None]] = set()
        last_housekeeping = last_refresh = now

        async def one(t: PollTarget, late_s: float) -> None:
            async with gate:
                outcome = await self.poll(t, late_s=late_s)
            if report is not None:
                report(outcome)

        while not stop.is_set():
            now = time.monotonic()
            if now - last_refresh >= refresh_s:
                last_refresh = now
                fresh = {t.device: t for t in await asyncio.to_thread(self.targets)}
                for device in set(targets) - set(fresh):
                    due.pop(device, None)
                for device in set(fresh) - set(targets):
                    due[device] = now + random.uniform(0, self.settings.jitter_s)
                targets = fresh
            for device, at in list(due.items()):
                if at > now:
                    continue
                target = targets[device]
                if device in self._busy:
                    self._count("overlaps_skipped_total")
                    due[device] = now + target.interval_s
                    continue
                task = asyncio.create_task(one(target, now - at))
                running.add(task)
                task.add_done_callback(running.discard)
                due[device] = max(at + target.interval_s, now)
            if now - last_housekeeping >= 300:
                self.store.rollup()
                self.store.prune(raw_retention_s=self.settings.raw_retention_s)
                last_housekeeping = now
            self.save_stats()
            nearest = min(due.values(), default=now + 1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.05, min(nearest - now, 1.0)))
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        self.save_stats()
