"""The fulfilment agent: plan an activation, push it as a transaction, prove it, or undo it.

    plan(requests)    validate every parameter (no connection before that), pick each
                      device's driver from the inventory, render, and ask each device for
                      the diff (load candidate, compare, discard): nothing changes
    apply(requests)   the plan, then per device in order: save the running config, commit
                      (with a revert timer when ``confirm_timeout_s``), read back and check
                      the config; then prove the service on the network (a reach probe);
                      then confirm every commit. Any failure rolls back the devices
                      already changed, in reverse order, and the batch is failed
    rollback(id)      put a device back to the config saved before that change

Changes to one device never overlap, whichever process makes them: apply, rollback and
restore hold the device's lease (:mod:`agents.fulfilment.leases`, a row in the database)
and wait up to ``lease_wait_s`` for another change to finish, else refuse with
:class:`~agents.fulfilment.leases.DeviceBusy` before anything is pushed.

Every device's part is a :class:`~agents.fulfilment.model.ConfigChange` row (who, why,
the diffs, the result, timings), written before the push and updated as it goes, so a
crash leaves a record of what was in flight. Applying the same service twice changes
nothing the second time: the diff is empty and the change is recorded as ``unchanged``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from adapters.base import ConfigDriver, DriverTarget, unified_diff
from adapters.registry import choose_driver, netconf_builders
from adapters.services import (
    ParameterError,
    Rendered,
    ServiceSpec,
    load_services,
    render,
    validate_params,
)
from agents.fulfilment.leases import device_leases
from agents.fulfilment.model import ConfigBackup, ConfigChange, init_fulfilment_db
from topology.credentials import CredentialStore
from topology.errors import ConfigPushError, RollbackFailed, SwitchboardError
from topology.inventory import Device, Interface, utcnow

__all__ = [
    "ApplyResult",
    "FulfilmentAgent",
    "Plan",
    "PlanStep",
    "ReachProbe",
    "ServiceRequest",
    "VerificationFailed",
]

log = logging.getLogger(__name__)
DriverFactory = Callable[[DriverTarget], ConfigDriver]


class VerificationFailed(SwitchboardError):
    """The pushed config did not prove itself (read back or on the network)."""


class ReachProbe(Protocol):
    """Sends real traffic from one place to an address (the lab's probe runs ping inside
    a node)."""

    def reach(self, source: str, destination: str) -> tuple[bool, str]:
        """(whether it got through, what happened)."""


@dataclass(frozen=True)
class ServiceRequest:
    """One service on one device with its parameters as given; ``action`` "add" puts
    the service on the device, "remove" takes it off again (given the parameters it was
    added with: the service's ``remove`` templates in services.yaml)."""

    service: str
    device: str
    params: Mapping[str, str]
    action: str = "add"


@dataclass
class PlanStep:
    """One device's part of a plan."""

    request: ServiceRequest
    device_id: int
    driver: str
    platform: str
    params: dict[str, str]
    rendered: Rendered
    factory: DriverFactory
    target: DriverTarget
    diff: str = ""


@dataclass
class Plan:
    """What an activation would do, device by device."""

    steps: list[PlanStep]

    @property
    def changes_anything(self) -> bool:
        return any(s.diff for s in self.steps)


@dataclass
class ApplyResult:
    """How an activation ended."""

    batch: str
    state: str
    """"confirmed", "unchanged", "failed" or "planned" (dry run)."""
    changes: list[ConfigChange] = field(default_factory=list)
    error: str | None = None


class FulfilmentAgent:
    """Plans, applies and rolls back service activations (see the module docstring)."""

    def __init__(self, engine: Engine, *, store: CredentialStore | None = None,
                 services: Mapping[str, ServiceSpec] | None = None,
                 drivers: Mapping[str, DriverFactory] | None = None,
                 probe: ReachProbe | None = None, timeout_s: float = 30.0,
                 lease_wait_s: float = 120.0) -> None:
        self.engine = engine
        self.lease_wait_s = lease_wait_s
        """How long a change waits for another change of the same device to finish
        (:mod:`agents.fulfilment.leases`) before it is refused with DeviceBusy."""
        init_fulfilment_db(engine)
        self.store = store or CredentialStore()
        self.services = dict(services or load_services())
        self.drivers = dict(drivers or {})
        """Override the driver class per kind ("cli", "netconf"), for tests."""
        self.probe = probe
        self.timeout_s = timeout_s

    # -- planning ------------------------------------------------------------------------

    def validate(self, requests: Sequence[ServiceRequest]) -> list[PlanStep]:
        """Check every request against the catalogue and the inventory; nothing is
        contacted. ``ParameterError`` or ``ConfigPushError`` say what is wrong."""
        if not requests:
            raise ParameterError("-", ["nothing to do: no service request"])
        steps = []
        with Session(self.engine) as session:
            for req in requests:
                spec = self.services.get(req.service)
                if spec is None:
                    raise ParameterError(req.service, [
                        f"no such service (known: {', '.join(sorted(self.services))})"])
                device = session.exec(select(Device).where(Device.name == req.device)).first()
                if device is None or device.id is None:
                    raise ParameterError(req.service, [f"device {req.device!r} is not in "
                                                       "the inventory (run discovery)"])
                names = set(session.exec(select(Interface.name).where(
                    Interface.device_id == device.id,
                    col(Interface.missing).is_(False))).all())
                params = validate_params(spec, req.params, interfaces=names)
                kind, platform, factory, target = choose_driver(device, self.store,
                                                                timeout_s=self.timeout_s)
                factory = self.drivers.get(kind, factory)
                rendered = render(spec, platform, params,
                                  netconf_builders() if kind == "netconf" else None,
                                  action=req.action)
                steps.append(PlanStep(req, device.id, kind, platform, params, rendered,
                                      factory, target))
        return steps

    def plan(self, requests: Sequence[ServiceRequest]) -> Plan:
        """Validate, then ask each device for the diff; nothing is changed."""
        steps = self.validate(requests)
        for step in steps:
            driver = step.factory(step.target)
            driver.open()
            try:
                driver.load_merge_candidate(step.rendered.config)
                step.diff = driver.compare_config()
                driver.discard_config()
            finally:
                driver.close()
        return Plan(steps)

    # -- applying ------------------------------------------------------------------------

    def apply(self, requests: Sequence[ServiceRequest], *, who: str, why: str = "",
              confirm_timeout_s: int | None = None, verify_from: str | None = None,
              verify_to: str | None = None, dry_run: bool = False) -> ApplyResult:
        """Push the plan as one transaction (see the module docstring), holding the
        lease of every device it touches (a dry run only reads: no lease)."""
        steps = self.validate(requests)
        held = (contextlib.nullcontext() if dry_run
                else self._leased([s.request.device for s in steps], who, why))
        with held:
            return self._apply(steps, who=who, why=why, confirm_timeout_s=confirm_timeout_s,
                               verify_from=verify_from, verify_to=verify_to, dry_run=dry_run)

    def _leased(self, devices: Sequence[str], who: str,
                why: str) -> contextlib.AbstractContextManager[None]:
        return device_leases(self.engine, devices, wait_s=self.lease_wait_s,
                             holder=f"{who}{f' ({why})' if why else ''}, process "
                                    f"{os.getpid()} on {socket.gethostname()}")

    def _apply(self, steps: list[PlanStep], *, who: str, why: str,
               confirm_timeout_s: int | None, verify_from: str | None,
               verify_to: str | None, dry_run: bool) -> ApplyResult:
        batch = f"{utcnow():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
        records = [self._record(batch, i, s, who, why, confirm_timeout_s)
                   for i, s in enumerate(steps)]
        opened: list[tuple[PlanStep, ConfigChange, ConfigDriver]] = []
        committed: list[tuple[PlanStep, ConfigChange, ConfigDriver]] = []
        try:
            for step, rec in zip(steps, records, strict=True):
                started = time.monotonic()
                self._update(rec, state="planned", started_at=utcnow())
                driver = step.factory(step.target)
                driver.open()
                opened.append((step, rec, driver))
                before = driver.get_config()
                driver.load_merge_candidate(step.rendered.config)
                diff = driver.compare_config()
                self._update(rec, diff=diff, backup=before)
                if not diff:
                    driver.discard_config()
                    self._update(rec, state="unchanged", finished_at=utcnow(),
                                 duration_s=time.monotonic() - started)
                    continue
                if dry_run:
                    driver.discard_config()
                    continue
                self._backup(step.request.device, before, f"before change {rec.id}")
                driver.commit_config(revert_in_s=confirm_timeout_s)
                committed.append((step, rec, driver))
                after = driver.get_config()
                checks = [{"check": f"running config contains {c!r}", "ok": c in after}
                          for c in step.rendered.checks]
                lines = {line.strip() for line in after.splitlines()}
                checks += [{"check": f"running config no longer holds {c!r}",
                            "ok": c.strip() not in lines} for c in step.rendered.absent]
                self._update(rec, state="applied", verify_json=json.dumps(checks),
                             applied_diff=unified_diff(
                                 before, after, device=step.request.device,
                                 labels=("running before", "running after")),
                             duration_s=time.monotonic() - started)
                missing = [str(c["check"]) for c in checks if not c["ok"]]
                if missing:
                    raise VerificationFailed(f"{step.request.device}: read back failed: "
                                             + "; ".join(missing))
            if dry_run:
                return ApplyResult(batch, "planned", self._reload(records))
            if not committed:
                return ApplyResult(batch, "unchanged", self._reload(records))
            self._verify_network(steps, records, verify_from, verify_to)
            for _, rec, driver in committed:
                if confirm_timeout_s is not None:
                    driver.confirm_commit()
                self._update(rec, state="confirmed", finished_at=utcnow())
            return ApplyResult(batch, "confirmed", self._reload(records))
        except (SwitchboardError, OSError) as exc:
            self._undo(committed, records, exc)
            return ApplyResult(batch, "failed", self._reload(records), error=str(exc))
        finally:
            for _, _, driver in opened:
                driver.close()

    def _verify_network(self, steps: Sequence[PlanStep], records: Sequence[ConfigChange],
                        source: str | None, destination: str | None) -> None:
        wants = any(self.services[s.request.service].reach for s in steps
                    if s.request.action == "add")
        if not wants:
            return
        if source is None or destination is None or self.probe is None:
            for rec in records:
                self._add_check(rec, {"check": "reach", "ok": None,
                                      "detail": "not run: no probe source and destination "
                                                "given (--verify-from, --verify-to)"})
            return
        ok, detail = self.probe.reach(source, destination)
        for rec in records:
            self._add_check(rec, {"check": f"reach {destination} from {source}", "ok": ok,
                                  "detail": detail})
        if not ok:
            raise VerificationFailed(f"the service does not work on the network: {source} "
                                     f"cannot reach {destination} ({detail})")

    def _undo(self, committed: list[tuple[PlanStep, ConfigChange, ConfigDriver]],
              records: Sequence[ConfigChange], exc: BaseException) -> None:
        """Roll back what was committed, newest first; mark everything."""
        reason = f"{type(exc).__name__}: {exc}"
        undone = {id(rec) for _, rec, _ in committed}
        for step, rec, driver in reversed(committed):
            try:
                driver.rollback()
                self._update(rec, state="rolled-back", finished_at=utcnow(),
                             error=f"rolled back because: {reason}")
            except ConfigPushError as err:
                log.error("rollback of change %s on %s failed: %s", rec.id,
                          step.request.device, err)
                self._update(rec, state="rollback-failed", finished_at=utcnow(),
                             error=f"{reason}; then the rollback failed: {err}")
        for rec in records:
            if id(rec) not in undone and rec.state in ("planned",):
                self._update(rec, state="failed", finished_at=utcnow(), error=reason)

    # -- after the fact ------------------------------------------------------------------

    def rollback(self, change_id: int, *, who: str) -> ConfigChange:
        """Put the device back to the config saved before change ``change_id``."""
        with Session(self.engine) as session:
            rec = session.get(ConfigChange, change_id)
        if rec is None:
            raise ParameterError("rollback", [f"no change {change_id}"])
        if rec.state not in ("applied", "confirmed"):
            raise ParameterError("rollback", [f"change {change_id} is {rec.state}: only an "
                                              "applied or confirmed change can be rolled "
                                              "back"])
        step = self.validate([ServiceRequest(rec.service, rec.device, rec.params())])[0]
        with self._leased([rec.device], who, f"rollback of change {change_id}"):
            driver = step.factory(step.target)
            driver.open()
            try:
                now = driver.get_config()
                driver.restore(rec.backup)
                after = driver.get_config()
            finally:
                driver.close()
        if after != rec.backup:
            self._update(rec, state="rollback-failed", error=f"rolled back by {who}, but the "
                         "config differs from the backup:\n" +
                         unified_diff(rec.backup, after, device=rec.device,
                                      labels=("backup", "running now")))
            raise RollbackFailed(f"{rec.device}: after the rollback the config is not the "
                                 "saved one", device=rec.device, operation="rollback")
        self._backup(rec.device, now, f"before rollback of change {change_id}")
        self._update(rec, state="rolled-back", error=f"rolled back by {who}")
        return self._reload([rec])[0]

    def reconcile_pending(self) -> list[ConfigChange]:
        """Settle changes a process left ``applied`` with a revert timer that has run out
        (it ended before confirming): the device's own timer put the config back, so each
        is recorded as ``failed`` once the device's running config is seen equal to the
        backup, else as ``rollback-failed`` with the difference. Run at start-up."""
        now = utcnow()
        with Session(self.engine) as session:
            rows = session.exec(select(ConfigChange).where(
                ConfigChange.state == "applied",
                col(ConfigChange.confirm_timeout_s).is_not(None))).all()
        settled = []
        for rec in rows:
            assert rec.confirm_timeout_s is not None
            started = rec.started_at or rec.created_at
            if (now - started).total_seconds() < rec.confirm_timeout_s + 5:
                continue  # its timer may still run; look again later
            driver = self._driver_for(rec.device)
            driver.open()
            try:
                current = driver.get_config()
            finally:
                driver.close()
            if current == rec.backup:
                self._update(rec, state="failed", finished_at=now, error=(
                    "not confirmed: the process that applied it ended before confirming, "
                    "and the device's revert timer put the saved config back"))
            else:
                self._update(rec, state="rollback-failed", finished_at=now, error=(
                    "not confirmed, and the device's config is not the saved one:\n"
                    + unified_diff(rec.backup, current, device=rec.device,
                                   labels=("backup", "running now"))))
            settled.append(rec)
        return self._reload(settled)

    def backup(self, device: str) -> ConfigBackup:
        """Read and keep the device's running config."""
        driver = self._driver_for(device)
        driver.open()
        try:
            text = driver.get_config()
        finally:
            driver.close()
        return self._backup(device, text, "switchboard config backup")

    def restore(self, backup_id: int, *, who: str) -> ConfigBackup:
        """Put a device back to one of its backups, to the byte (``RollbackFailed`` with
        what is left when it cannot); the config it replaced is kept as a new backup."""
        with Session(self.engine) as session:
            saved = session.get(ConfigBackup, backup_id)
        if saved is None:
            raise ParameterError("restore", [f"no backup {backup_id}"])
        with self._leased([saved.device], who, f"restore of backup {backup_id}"):
            driver = self._driver_for(saved.device)
            driver.open()
            try:
                now = driver.get_config()
                if now != saved.text:
                    driver.restore(saved.text)
            finally:
                driver.close()
        return self._backup(saved.device, now, f"before {who} restored backup {backup_id}")

    def diff(self, device: str) -> tuple[ConfigBackup | None, str]:
        """The device's last backup and the diff from it to the running config now."""
        with Session(self.engine) as session:
            last = session.exec(select(ConfigBackup).where(ConfigBackup.device == device)
                                .order_by(col(ConfigBackup.taken_at).desc())).first()
        driver = self._driver_for(device)
        driver.open()
        try:
            now = driver.get_config()
        finally:
            driver.close()
        return last, unified_diff(last.text if last else "", now, device=device,
                                  labels=("last backup", "running now"))

    def _driver_for(self, device: str) -> ConfigDriver:
        with Session(self.engine) as session:
            dev = session.exec(select(Device).where(Device.name == device)).first()
        if dev is None:
            raise ParameterError("config", [f"device {device!r} is not in the inventory"])
        kind, _, factory, target = choose_driver(dev, self.store, timeout_s=self.timeout_s)
        return self.drivers.get(kind, factory)(target)

    # -- records -------------------------------------------------------------------------

    def _record(self, batch: str, position: int, step: PlanStep, who: str, why: str,
                confirm_timeout_s: int | None) -> ConfigChange:
        rec = ConfigChange(batch=batch, position=position, service=step.request.service,
                           device=step.request.device, device_id=step.device_id,
                           driver=step.driver, platform=step.platform,
                           params_json=json.dumps(step.params), rendered=step.rendered.config,
                           who=who, why=why, confirm_timeout_s=confirm_timeout_s)
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(rec)
            session.commit()
        return rec

    def _update(self, rec: ConfigChange, **values: Any) -> None:
        for key, value in values.items():
            setattr(rec, key, value)
        with Session(self.engine, expire_on_commit=False) as session:
            session.merge(rec)
            session.commit()

    def _add_check(self, rec: ConfigChange, check: dict[str, Any]) -> None:
        self._update(rec, verify_json=json.dumps([*rec.verify(), check]))

    def _backup(self, device: str, text: str, reason: str) -> ConfigBackup:
        row = ConfigBackup(device=device, text=text, reason=reason)
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(row)
            session.commit()
        return row

    def _reload(self, records: Sequence[ConfigChange]) -> list[ConfigChange]:
        with Session(self.engine, expire_on_commit=False) as session:
            return [session.get(ConfigChange, r.id) or r for r in records]
