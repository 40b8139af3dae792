"""The fulfilment agent's records: every change pushed (or refused), and config backups.

One :class:`ConfigChange` per device of an activation (``batch`` groups them, ``position``
is the order they were pushed in). States:

    planned        rendered and diffed, not pushed (a dry run, or a batch that never ran)
    unchanged      the device already had it: nothing pushed (idempotent)
    applied        committed; a revert timer may still run (``confirm_timeout_s``)
    confirmed      committed and confirmed (or committed without a timer) and verified
    failed         refused or failed; the device was left as it was (``error`` says why)
    rolled-back    was applied, then undone: by a later failure in its batch, or by hand
    rollback-failed undoing it failed: the device needs a person (``error``)
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Field, SQLModel

from topology.inventory import UtcDateTime, utcnow

__all__ = ["ConfigBackup", "ConfigChange", "init_fulfilment_db"]


class ConfigChange(SQLModel, table=True):
    """One device's part of one activation."""

    __tablename__ = "config_change"

    id: int | None = Field(default=None, primary_key=True)
    batch: str = Field(index=True)
    position: int = 0
    service: str
    device: str = Field(index=True)
    device_id: int | None = Field(default=None, foreign_key="device.id")
    driver: str
    platform: str
    params_json: str = "{}"
    rendered: str = ""
    diff: str = Field(default="", description="planned: running -> candidate")
    applied_diff: str = Field(default="", description="real: the config before -> after")
    backup: str = Field(default="", description="the running config before the push")
    state: str = Field(default="planned", index=True)
    who: str = ""
    why: str = Field(default="", description="the order or ticket it serves")
    error: str | None = None
    confirm_timeout_s: int | None = None
    verify_json: str = "[]"
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    duration_s: float | None = None

    def params(self) -> dict[str, Any]:
        loaded = json.loads(self.params_json or "{}")
        return loaded if isinstance(loaded, dict) else {}

    def verify(self) -> list[dict[str, Any]]:
        loaded = json.loads(self.verify_json or "[]")
        return loaded if isinstance(loaded, list) else []


class ConfigBackup(SQLModel, table=True):
    """A device's running config as read at one moment."""

    __tablename__ = "config_backup"

    id: int | None = Field(default=None, primary_key=True)
    device: str = Field(index=True)
    taken_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    reason: str = ""
    text: str = ""


def init_fulfilment_db(engine: Engine) -> None:
    """Create the fulfilment tables (and the inventory's) where missing."""
    from agents.fulfilment.leases import init_lease_db
    from topology.db import init_db

    init_db(engine)
    SQLModel.metadata.create_all(engine, tables=[
        ConfigChange.__table__, ConfigBackup.__table__])  # type: ignore[attr-defined]
    init_lease_db(engine)
