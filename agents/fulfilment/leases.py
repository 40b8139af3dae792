"""Device leases: one change at a time per device, across every process and host that
shares the suite's database.

Why: the CLI driver's rollback restores a whole saved config, so two pushes to one device
that overlap could undo each other; and ``switchboard serve`` (orders, REST pushes) and a
``switchboard config apply`` in a shell are different processes. A thread lock cannot see
across them; a row in the database can.

A lease is a :class:`DeviceLease` row keyed by the device: taken by inserting it (the
primary key makes a second insert fail, on SQLite and PostgreSQL alike), given back by
deleting it. A lease whose holder is gone is taken over: one past its ``expires_at``
(``ttl_s``, far longer than any push), or one held by a process of this host that no
longer runs. A caller that finds the device leased waits (``wait_s``), then gets
:class:`DeviceBusy` naming the holder. Several devices are leased in sorted order, so
two multi-device changes cannot each hold what the other waits for. A thread that holds a
device's lease may take it again (nested use is counted, not deadlocked).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from topology.errors import DeviceError
from topology.inventory import UtcDateTime, utcnow

__all__ = ["DeviceBusy", "DeviceLease", "device_leases", "init_lease_db", "lease_docs"]

log = logging.getLogger(__name__)
HOST = socket.gethostname()


class DeviceBusy(DeviceError):
    """Another change holds the device's lease (``holder`` says whose)."""

    def __init__(self, message: str, *, device: str, holder: str) -> None:
        super().__init__(message, device=device, operation="lease")
        self.holder = holder


class DeviceLease(SQLModel, table=True):
    """Who is changing a device now."""

    __tablename__ = "device_lease"

    device: str = Field(primary_key=True)
    holder: str = ""  # who and why, for the person who waits
    host: str = ""
    pid: int = 0
    thread: int = 0
    acquired_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expires_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


def init_lease_db(engine: Engine) -> None:
    """Create the lease table where missing."""
    SQLModel.metadata.create_all(
        engine, tables=[DeviceLease.__table__])  # type: ignore[attr-defined]


_held = threading.local()  # device -> depth, per thread


def _depths() -> dict[str, int]:
    if not hasattr(_held, "depths"):
        _held.depths = {}
    depths: dict[str, int] = _held.depths
    return depths


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: existence only, nothing is sent
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(lease: DeviceLease, now: datetime) -> str | None:
    """Why ``lease`` may be taken over (None: its holder may still be at work)."""
    if lease.expires_at <= now:
        return f"it expired at {lease.expires_at:%Y-%m-%d %H:%M:%S}Z"
    if lease.host == HOST and lease.pid != os.getpid() and not _pid_alive(lease.pid):
        return f"process {lease.pid} of this host that held it is gone"
    return None


def lease_docs(session: Session) -> list[dict[str, Any]]:
    """Every lease held now, oldest first, as ``config leases`` and the API show them:
    ``stale`` says why the next change may take it over (None: its holder may be at
    work)."""
    now = utcnow()
    rows = session.exec(select(DeviceLease).order_by(
        col(DeviceLease.acquired_at), col(DeviceLease.device))).all()
    return [{"device": r.device, "holder": r.holder, "host": r.host, "pid": r.pid,
             "acquired_at": r.acquired_at, "expires_at": r.expires_at,
             "stale": _stale(r, now)} for r in rows]


_FREED = "freed"  # _try_take: the lease went (given back or stale): try again at once


def _try_take(engine: Engine, device: str, holder: str,
              ttl_s: float) -> DeviceLease | str | None:
    """None: taken. A DeviceLease: the live lease that holds the device now. _FREED: the
    holder's lease went meanwhile (given back, or stale and removed here)."""
    now = utcnow()
    with Session(engine) as s:
        s.add(DeviceLease(device=device, holder=holder, host=HOST, pid=os.getpid(),
                          thread=threading.get_ident(), acquired_at=now,
                          expires_at=now + timedelta(seconds=ttl_s)))
        try:
            s.commit()
            return None
        except IntegrityError:
            s.rollback()
        current = s.get(DeviceLease, device)
        if current is None:
            return _FREED
        why = _stale(current, now)
        if why is None:
            return current
        # compare-and-delete: only the stale holder's lease, never one taken since
        gone = s.exec(delete(DeviceLease).where(
            DeviceLease.device == device,  # type: ignore[arg-type]
            DeviceLease.host == current.host,  # type: ignore[arg-type]
            DeviceLease.pid == current.pid,  # type: ignore[arg-type]
            DeviceLease.thread == current.thread))  # type: ignore[arg-type]
        s.commit()
        if gone.rowcount:
            log.warning("lease on %s taken over from %s: %s", device, current.holder, why)
        return _FREED


def _give_back(engine: Engine, device: str) -> None:
    with Session(engine) as s:
        s.exec(delete(DeviceLease).where(
            DeviceLease.device == device,  # type: ignore[arg-type]
            DeviceLease.host == HOST, DeviceLease.pid == os.getpid(),  # type: ignore[arg-type]
            DeviceLease.thread == threading.get_ident()))  # type: ignore[arg-type]
        s.commit()


@contextmanager
def device_leases(engine: Engine, devices: Iterable[str], *, holder: str,
                  wait_s: float = 120.0, ttl_s: float = 1800.0,
                  poll_s: float = 0.2) -> Iterator[None]:
    """Hold the lease of every one of ``devices`` for the block (see the module
    docstring); :class:`DeviceBusy` when one stays leased for ``wait_s``."""
    depths = _depths()
    taken: list[str] = []
    try:
        for device in sorted(set(devices)):
            if depths.get(device):
                depths[device] += 1
                taken.append(device)
                continue
            deadline = time.monotonic() + wait_s
            while (current := _try_take(engine, device, holder, ttl_s)) is not None:
                if not isinstance(current, DeviceLease):
                    continue  # _FREED
                if time.monotonic() >= deadline:
                    raise DeviceBusy(
                        f"{device} is being changed by {current.holder} (since "
                        f"{current.acquired_at:%Y-%m-%d %H:%M:%S}Z); waited {wait_s:.0f} s, "
                        "nothing was pushed: try again when it is done",
                        device=device, holder=current.holder)
                time.sleep(poll_s)
            depths[device] = 1
            taken.append(device)
        yield
    finally:
        for device in reversed(taken):
            depths[device] -= 1
            if depths[device] == 0:
                del depths[device]
                try:
                    _give_back(engine, device)
                except Exception:
                    log.exception("the lease on %s could not be given back; it expires "
                                  "after %.0f s", device, ttl_s)
