"""The fault agent's tables: alarms, their history and comments, and the receiver's counters.

An alarm is keyed by (device, resource, problem): ``key`` is unique among the alarms that
are not cleared, so a repeat updates the open alarm (count, last seen) and a clear closes
it. Correlation puts an alarm under another (``parent_id``) with the reason kept on the
child; a root (no parent) that has children is the root cause of them.

States follow TMF642 (raised, updated, cleared) plus ``archived``: a cleared alarm that
has been kept long enough leaves the default lists but stays in the database with its
history. Every change an operator or the agent makes is one :class:`AlarmHistory` row.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Field, SQLModel

from topology.inventory import UtcDateTime, utcnow

__all__ = [
    "ACTIVE_STATES",
    "Alarm",
    "AlarmComment",
    "AlarmHistory",
    "AlarmState",
    "FaultCounter",
    "Severity",
    "init_fault_db",
]


class AlarmState(StrEnum):
    """An alarm's life cycle."""

    RAISED = "raised"
    UPDATED = "updated"
    CLEARED = "cleared"
    ARCHIVED = "archived"


ACTIVE_STATES = (AlarmState.RAISED.value, AlarmState.UPDATED.value)


class Severity(StrEnum):
    """X.733 perceived severities, worst first."""

    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"
    INDETERMINATE = "indeterminate"
    CLEARED = "cleared"

    @property
    def rank(self) -> int:
        """0 for critical ... 5 for cleared (lower is worse)."""
        return list(Severity).index(self)


class Alarm(SQLModel, table=True):
    """One alarm: a problem of one resource of one device (or of a link)."""

    __tablename__ = "alarm"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True, description="device|resource_type:resource|problem")
    device_id: int | None = Field(default=None, foreign_key="device.id", index=True)
    device: str = Field(description="the device's name (or the source address if unknown)")
    resource_type: str = Field(description="device | interface | link | ospf-neighbor | "
                                           "bgp-peer | ...")
    resource: str = Field(description="the resource's name: eth1, r1:eth1--r2:eth1, an "
                                      "address; the device's name for the device itself")
    interface_id: int | None = Field(default=None, foreign_key="interface.id")
    link_id: int | None = Field(default=None, foreign_key="link.id")
    problem: str = Field(index=True, description="the rule's problem name: link-down, ...")
    rule: str = Field(description="the rule that raised it")
    alarm_type: str = Field(description="TMF642/X.733: communicationsAlarm, "
                                        "qualityOfServiceAlarm, processingErrorAlarm, ...")
    probable_cause: str
    specific_problem: str = ""
    severity: str = Field(description="a Severity value")
    state: str = Field(default=AlarmState.RAISED.value, index=True)
    ack_state: str = Field(default="unacknowledged")
    ack_user: str | None = None
    ack_time: datetime | None = Field(default=None, sa_type=UtcDateTime)
    ack_note: str | None = None
    count: int = Field(default=1, description="how many times it was reported")
    transitions: int = Field(default=1, description="raise/clear transitions while open")
    flapping: bool = False
    held_clear_at: datetime | None = Field(
        default=None, sa_type=UtcDateTime,
        description="a clear arrived while flapping: it closes once quiet long enough")
    auto_clear_at: datetime | None = Field(
        default=None, sa_type=UtcDateTime, description="the rule's clear_after_s ends here")
    source: str = Field(description="trap | poller | correlation")
    raised_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    changed_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_seen: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    cleared_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    archived_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    parent_id: int | None = Field(default=None, foreign_key="alarm.id", index=True)
    correlation: str = Field(default="", description="why it sits under its parent")
    threshold_json: str | None = Field(default=None, description="crossedThresholdInformation")
    details_json: str = Field(default="{}", description="the last report: varbinds, values")

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def details(self) -> dict[str, Any]:
        loaded = json.loads(self.details_json or "{}")
        return loaded if isinstance(loaded, dict) else {}


class AlarmHistory(SQLModel, table=True):
    """One change of an alarm: raised, repeated, updated, cleared, reopened, flapping,
    correlated, uncorrelated, acknowledged, unacknowledged, commented, archived."""

    __tablename__ = "alarm_history"

    id: int | None = Field(default=None, primary_key=True)
    alarm_id: int = Field(foreign_key="alarm.id", index=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    action: str
    user: str | None = Field(default=None, description="who; None: the fault agent")
    note: str = ""
    before: str | None = Field(default=None, description="the state or value before")
    after: str | None = Field(default=None, description="the state or value after")


class AlarmComment(SQLModel, table=True):
    """An operator's comment on an alarm."""

    __tablename__ = "alarm_comment"

    id: int | None = Field(default=None, primary_key=True)
    alarm_id: int = Field(foreign_key="alarm.id", index=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    user: str
    text: str


class FaultCounter(SQLModel, table=True):
    """A counter of the trap receiver or the fault agent (received, malformed, dropped,
    bad community, unknown source, ...), written by the process that runs them so any
    other process (``/metrics``, ``switchboard traps stats``) can show it."""

    __tablename__ = "fault_counter"

    name: str = Field(primary_key=True)
    value: float = 0
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


def init_fault_db(engine: Engine) -> None:
    """Create the fault agent's tables (and the inventory's, and the performance agent's
    events it reads) where missing."""
    from agents.performance.store import init_perf_db
    from topology.db import init_db

    init_db(engine)
    init_perf_db(engine)
    SQLModel.metadata.create_all(engine, tables=[
        Alarm.__table__, AlarmHistory.__table__, AlarmComment.__table__,  # type: ignore[attr-defined]
        FaultCounter.__table__])  # type: ignore[attr-defined]
