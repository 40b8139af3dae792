"""Discovery from the server: runs started over REST, and the periodic schedule of
``switchboard serve``.

    POST /api/discovery/runs        {lab} | {seeds, profiles}  -> 202 {id, status, href}
    GET  /api/discovery/runs        ?status=&offset=&limit=    (X-Total-Count)
    GET  /api/discovery/runs/{id}   the run: status, counts, and (while the server that
                                    ran it is up) what it found and why it failed

A request is checked before the 202 (the lab is deployed, every seed parses and is inside
the discovery scope, every credential profile loads): a refusal is a 400 problem and no
run is recorded. The run itself goes on in a worker thread (one run at a time, so the
event loop never waits on SNMP) and its record is the inventory's ``discovery_run`` row.

The schedule (``discovery.schedule`` in settings.yaml, or ``serve --discover-lab``)
queues the same kind of run every ``interval_s``, the first one an interval after the
start; a run still going when the next is due makes that one skipped (counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from northbound.problems import MAX_INT, RowId, problem_responses
from topology.credentials import CredentialProfile, CredentialStore
from topology.errors import ConfigError, CredentialError, SwitchboardError
from topology.inventory import (
    DiscoveryRun,
    DiscoveryRunDetail,
    DiscoveryRunPublic,
    record_run_detail,
)
from topology.queries import NotFound
from topology.scope import DiscoverySettings, Scope, expand_targets, load_discovery_settings
from topology.settings import Settings, get_settings, settings_section

__all__ = ["DiscoveryJob", "DiscoveryRunner", "DiscoverySchedule", "load_discovery_schedule",
           "router"]

log = logging.getLogger(__name__)
INTERRUPTED = "interrupted"


# --------------------------------------------------------------------------- what to run


@dataclass(frozen=True)
class DiscoveryJob:
    """One run, checked and ready: targets inside the scope, profiles loaded."""

    label: str
    targets: tuple[IPv4Network, ...]
    profiles: tuple[CredentialProfile, ...] = field(repr=False)
    scope: Scope
    settings: DiscoverySettings

    @classmethod
    def build(cls, *, lab: str | None = None, seeds: list[str] | None = None,
              profiles: list[str] | None = None,
              settings: Settings | None = None) -> DiscoveryJob:
        """Check and resolve a request (what ``switchboard discover`` does with its
        arguments); refused with one of the suite's errors before any packet."""
        from lab import Lab, running_labs

        settings = settings or get_settings()
        dsettings = load_discovery_settings(settings)
        extra: list[IPv4Network] = []
        nets = expand_targets(seeds or [])
        names = list(profiles or [])
        label = ", ".join(seeds or [])
        for running in running_labs():  # a deployed lab's own mgmt subnet is ours to probe
            extra.append(IPv4Network(Lab.load(running).state.subnet))
        if lab is not None:
            deployed = Lab.load(lab)
            subnet = IPv4Network(deployed.state.subnet)
            extra.append(subnet)
            if not seeds:
                from agents.discovery import lab_targets

                nets = lab_targets(subnet, IPv4Address(deployed.state.gateway))
                label = f"{subnet} (lab {deployed.name})"
            if not names:
                names = [deployed.name]
        if not nets:
            raise ConfigError("nothing to discover: give a lab or seeds")
        names = names or list(dsettings.profiles)
        if not names:
            raise CredentialError("no credential profile: give profiles (or a lab), or list "
                                  "them under discovery.profiles in settings.yaml")
        store = CredentialStore(settings)
        loaded = tuple(store.load(n) for n in names)
        scope = Scope.build(dsettings, extra)
        scope.check(nets)  # refused before a single packet
        return cls(label=label, targets=tuple(nets), profiles=loaded, scope=scope,
                   settings=dsettings)


@dataclass(frozen=True)
class DiscoverySchedule:
    """``discovery.schedule`` in settings.yaml: a lab or seeds, every ``interval_s``."""

    interval_s: float = 900.0
    lab: str | None = None
    seeds: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()

    @property
    def configured(self) -> bool:
        return self.lab is not None or bool(self.seeds)

    def job(self) -> DiscoveryJob:
        return DiscoveryJob.build(lab=self.lab, seeds=list(self.seeds) or None,
                                  profiles=list(self.profiles) or None)


def load_discovery_schedule(settings: Settings | None = None) -> DiscoverySchedule:
    """Read ``discovery: {schedule: {interval_s, lab, seeds, profiles}}`` (absent: off)."""
    path, raw = settings_section("discovery", settings or get_settings())
    sched = raw.get("schedule") or {}
    if not isinstance(sched, dict):
        raise ConfigError(f"{path}: discovery.schedule: expected a mapping")

    def strings(key: str) -> tuple[str, ...]:
        value = sched.get(key) or []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{path}: discovery.schedule.{key}: expected a list")
        return tuple(str(v) for v in value)

    try:
        interval = float(sched.get("interval_s", 900.0))
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: discovery.schedule.interval_s: a number of seconds"
                          ) from None
    if interval < 10:
        raise ConfigError(f"{path}: discovery.schedule.interval_s: at least 10 s")
    lab = sched.get("lab")
    return DiscoverySchedule(interval_s=interval, lab=str(lab) if lab else None,
                             seeds=strings("seeds"), profiles=strings("profiles"))


# --------------------------------------------------------------------------- the runner


class DiscoveryRunner:
    """Runs discovery jobs one at a time in a worker thread, each recorded in its
    ``discovery_run`` row from the moment it is queued."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._queue: list[tuple[int, DiscoveryJob]] = []
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.stats = {"runs_total": 0, "runs_failed_total": 0, "schedule_skipped_total": 0}

    def settle_interrupted(self) -> list[int]:
        """Runs a previous process left queued or running: marked ``interrupted`` (a run
        writes the inventory only at its end, so nothing half-done is left)."""
        with Session(self.engine) as s:
            rows = s.exec(select(DiscoveryRun).where(
                col(DiscoveryRun.status).in_(("queued", "running")))).all()
            for row in rows:
                row.status, row.finished_at = INTERRUPTED, datetime.now(UTC)
                s.add(row)
            s.commit()
            return [r.id for r in rows if r.id is not None]

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._queue) or (self._thread is not None and self._thread.is_alive())

    def submit(self, job: DiscoveryJob) -> int:
        """Record the run as queued and start it in the worker; its id."""
        if self._stopping:
            raise SwitchboardError("the server is stopping: no new discovery run")
        with Session(self.engine) as s:
            run = DiscoveryRun(targets=job.label or ",".join(map(str, job.targets)),
                               profiles=",".join(p.name for p in job.profiles),
                               status="queued")
            s.add(run)
            s.commit()
            s.refresh(run)
            assert run.id is not None
            run_id = run.id
        with self._lock:
            self._queue.append((run_id, job))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="discovery",
                                                daemon=True)
                self._thread.start()
        return run_id

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._queue or self._stopping:
                    return
                run_id, job = self._queue.pop(0)
            self._run(run_id, job)

    def _run(self, run_id: int, job: DiscoveryJob) -> None:
        from agents.discovery import discover

        started = time.monotonic()
        self.stats["runs_total"] += 1
        try:
            result = asyncio.run(discover(list(job.targets), profiles=list(job.profiles),
                                          scope=job.scope, settings=job.settings,
                                          engine=self.engine, run_id=run_id))
            log.info("discovery run %s (%s): %d found, %d new, %d missing in %.1f s",
                     run_id, job.label, len(result.found), len(result.new),
                     len(result.missing), result.seconds)
        except Exception as exc:
            self.stats["runs_failed_total"] += 1
            detail = str(exc) if isinstance(exc, SwitchboardError) else type(exc).__name__
            log.warning("discovery run %s (%s) failed after %.1f s: %s", run_id, job.label,
                        time.monotonic() - started, detail)
            with Session(self.engine) as s:
                row = s.get(DiscoveryRun, run_id)
                if row is not None:
                    row.status, row.finished_at = "failed", datetime.now(UTC)
                    s.add(row)
                    record_run_detail(s, run_id, error=detail)
                    s.commit()

    def stop(self, timeout_s: float = 30.0) -> bool:
        """No new run; queued ones are dropped (marked interrupted); a run in progress
        gets ``timeout_s`` to finish. True when nothing is left running."""
        with self._lock:
            self._stopping = True
            dropped = [rid for rid, _ in self._queue]
            self._queue.clear()
            thread = self._thread
        if dropped:
            with Session(self.engine) as s:
                for rid in dropped:
                    row = s.get(DiscoveryRun, rid)
                    if row is not None:
                        row.status, row.finished_at = INTERRUPTED, datetime.now(UTC)
                        s.add(row)
                s.commit()
        if thread is not None:
            thread.join(timeout_s)
            return not thread.is_alive()
        return True

    async def schedule(self, schedule: DiscoverySchedule, stop: asyncio.Event) -> None:
        """Queue ``schedule``'s run every interval until ``stop``; a run not finished when
        the next is due makes that one skipped. A refused job (lab gone) is logged and
        tried again at the next interval."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), schedule.interval_s)
            if stop.is_set():
                return
            if self.busy:
                self.stats["schedule_skipped_total"] += 1
                log.warning("scheduled discovery skipped: the previous run is not finished")
                continue
            try:
                job = await asyncio.to_thread(schedule.job)
                self.submit(job)
            except SwitchboardError as exc:
                log.warning("scheduled discovery not run: %s", exc)


# --------------------------------------------------------------------------- REST


class DiscoveryRunIn(BaseModel):
    """A run: a deployed lab (its mgmt subnet and credential profile), or seeds."""

    lab: str | None = Field(default=None, min_length=1, max_length=64)
    seeds: list[str] | None = Field(default=None, min_length=1, max_length=256,
                                    description="CIDRs, addresses or host names")
    profiles: list[str] | None = Field(default=None, max_length=16,
                                       description="credential profiles, tried in order")

    @model_validator(mode="after")
    def _one_source(self) -> DiscoveryRunIn:
        if self.lab is None and not self.seeds:
            raise ValueError("give a lab or seeds")
        return self


class DiscoveryRunQueued(BaseModel):
    """The answer to a run request."""

    id: int
    status: str
    href: str


class FailedTargetOut(BaseModel):
    """An address that answered but could not be discovered."""

    detail: str | None
    status: str


class DiscoveryOutcome(BaseModel):
    """What the run found (kept with the run, whichever process ran it)."""

    found: list[str] = []
    new: list[str] = []
    changed: list[str] = []
    missing: list[str] = []
    partial: list[str] = []
    failed: list[FailedTargetOut] = []
    links: int = 0
    links_confirmed: int = 0
    addresses_probed: int = 0
    no_answer: int = 0
    seconds: float = 0.0


class DiscoveryRunOut(DiscoveryRunPublic):
    """A discovery run: queued, running, ok, partial, failed or interrupted."""

    result: DiscoveryOutcome | None = None
    error: str | None = None


router = APIRouter(prefix="/api/discovery", tags=["discovery"])


def _session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(_session)]


def runner_of(request: Request) -> DiscoveryRunner:
    """The app's runner (made on first use)."""
    runner = getattr(request.app.state, "discovery", None)
    if runner is None:
        runner = request.app.state.discovery = DiscoveryRunner(request.app.state.engine)
    assert isinstance(runner, DiscoveryRunner)
    return runner


def _out(session: Session, row: DiscoveryRun) -> DiscoveryRunOut:
    detail = session.get(DiscoveryRunDetail, row.id) if row.id is not None else None
    outcome = json.loads(detail.outcome_json) if detail and detail.outcome_json else None
    return DiscoveryRunOut(**row.model_dump(), result=outcome,
                           error=detail.error if detail else None)


@router.post("/runs", status_code=202, response_model=DiscoveryRunQueued,
             responses=problem_responses(400))
async def start_run(request: Request, body: DiscoveryRunIn,
                    response: Response) -> DiscoveryRunQueued:
    """Queue a discovery run and answer at once (202); follow it at ``href``. Checked
    first: the lab is deployed, the seeds are inside the scope, the profiles load."""
    runner = runner_of(request)
    job = await asyncio.to_thread(DiscoveryJob.build, lab=body.lab, seeds=body.seeds,
                                  profiles=body.profiles)
    run_id = runner.submit(job)
    href = f"/api/discovery/runs/{run_id}"
    response.headers["Location"] = href
    return DiscoveryRunQueued(id=run_id, status="queued", href=href)


@router.get("/runs", response_model=list[DiscoveryRunOut])
def runs(request: Request, s: SessionDep, response: Response,
         offset: Annotated[int, Query(ge=0, le=MAX_INT, description="rows to skip")] = 0,
         limit: Annotated[int, Query(ge=1, le=1000, description="rows per page")] = 100,
         status: Annotated[str | None, Query(description="queued, running, ok, partial, "
                                             "failed, interrupted")] = None,
         ) -> list[DiscoveryRunOut]:
    """Discovery runs, newest first (X-Total-Count has the total); filter: status."""
    q = select(DiscoveryRun)
    if status:
        q = q.where(DiscoveryRun.status == status)
    response.headers["X-Total-Count"] = str(
        s.exec(select(func.count()).select_from(q.subquery())).one())
    rows = s.exec(q.order_by(col(DiscoveryRun.id).desc()).offset(offset).limit(limit)).all()
    return [_out(s, r) for r in rows]


@router.get("/runs/{run_id}", response_model=DiscoveryRunOut)
def run(request: Request, run_id: RowId, s: SessionDep) -> DiscoveryRunOut:
    """One run: its status and counts, and what it found (names found, new, changed,
    missing, the failed targets and why) or why it failed."""
    row = s.get(DiscoveryRun, run_id)
    if row is None:
        raise NotFound(f"no discovery run {run_id}")
    return _out(s, row)
