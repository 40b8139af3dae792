"""Reading alarms and the operators' actions on them (acknowledge, unacknowledge,
comment, clear), for the CLI and the REST API alike.

:func:`tmf_alarm` gives an alarm in the shape of TMF642 (Alarm Management): id,
alarmType, perceivedSeverity, probableCause, specificProblem, alarmedObject, state,
ackState, ackUserId, alarmRaisedTime, alarmChangedTime, alarmClearedTime, isRootCause,
correlatedAlarm, parentAlarm, crossedThresholdInformation, comment, plus the
suite's own fields under names TMF642 does not have (count, flapping, impact, ...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from agents.fault.model import ACTIVE_STATES, Alarm, AlarmComment, AlarmHistory, AlarmState
from topology.errors import SwitchboardError
from topology.inventory import utcnow
from topology.queries import NotFound, Page
from topology.services import services_on

__all__ = [
    "AlarmConflict",
    "AlarmFilter",
    "acknowledge",
    "add_comment",
    "alarm_detail",
    "clear_alarm",
    "get_alarm",
    "list_alarms",
    "tmf_alarm",
    "unacknowledge",
]

MAX_NOTE = 2_000


class AlarmConflict(SwitchboardError):
    """The action does not fit the alarm's state (acknowledging a cleared alarm, ...)."""


@dataclass(frozen=True)
class AlarmFilter:
    """Which alarms a list shows."""

    active: bool = False
    root_only: bool = False
    severity: str | None = None
    device: str | None = None
    problem: str | None = None
    ack_state: str | None = None
    include_archived: bool = False


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


def get_alarm(session: Session, alarm_id: int) -> Alarm:
    """The alarm, or NotFound."""
    alarm = session.get(Alarm, alarm_id)
    if alarm is None:
        raise NotFound(f"no alarm {alarm_id}")
    return alarm


def list_alarms(session: Session, flt: AlarmFilter, *, offset: int = 0,
                limit: int = 100) -> Page[Alarm]:
    """Alarms, worst and newest first."""
    query = select(Alarm)
    if flt.active:
        query = query.where(col(Alarm.state).in_(ACTIVE_STATES))
    elif not flt.include_archived:
        query = query.where(Alarm.state != AlarmState.ARCHIVED.value)
    if flt.root_only:
        query = query.where(col(Alarm.parent_id).is_(None))
    if flt.severity:
        query = query.where(Alarm.severity == flt.severity)
    if flt.device:
        query = query.where(Alarm.device == flt.device)
    if flt.problem:
        query = query.where(Alarm.problem == flt.problem)
    if flt.ack_state:
        query = query.where(Alarm.ack_state == flt.ack_state)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    limit = max(1, min(limit, 1000))
    rank = {"critical": 0, "major": 1, "minor": 2, "warning": 3, "indeterminate": 4}
    rows = list(session.exec(query.order_by(col(Alarm.changed_at).desc(),
                                            col(Alarm.id).desc())
                             .offset(max(0, offset)).limit(limit)).all())
    rows.sort(key=lambda a: (not a.active, rank.get(a.severity, 5)))  # stable: newest first
    return Page(rows, int(total), offset, limit)


def children_of(session: Session, alarm_ids: list[int]) -> dict[int, list[Alarm]]:
    out: dict[int, list[Alarm]] = {i: [] for i in alarm_ids}
    if alarm_ids:
        for child in session.exec(select(Alarm).where(col(Alarm.parent_id).in_(alarm_ids))
                                  .order_by(col(Alarm.id))).all():
            assert child.parent_id is not None
            out[child.parent_id].append(child)
    return out


def _impact(session: Session, alarm: Alarm, descendants: list[Alarm]) -> list[dict[str, Any]]:
    """Services bound to what the alarm (or an alarm under it) is about."""
    from topology.inventory import Link

    device_ids: set[int] = set()
    interface_ids: set[int] = set()
    for a in (alarm, *descendants):
        if a.resource_type == "device" and a.device_id is not None:
            device_ids.add(a.device_id)
        if a.interface_id is not None:
            interface_ids.add(a.interface_id)
        if a.link_id is not None:
            link = session.get(Link, a.link_id)
            if link is not None:
                interface_ids.update((link.a_interface_id, link.b_interface_id))
    return [{"serviceId": s.service_id, "serviceType": s.service_type,
             "customer": s.customer, "customerId": s.customer_id}
            for s in services_on(session, device_ids=device_ids, interface_ids=interface_ids)]


def _descendants(session: Session, alarm: Alarm) -> list[Alarm]:
    out: list[Alarm] = []
    frontier = [alarm.id]
    seen: set[int] = {alarm.id} if alarm.id is not None else set()
    while frontier:
        kids = session.exec(select(Alarm).where(col(Alarm.parent_id).in_(frontier))).all()
        frontier = []
        for k in kids:
            if k.id not in seen and k.id is not None:
                seen.add(k.id)
                out.append(k)
                frontier.append(k.id)
    return out


def tmf_alarm(alarm: Alarm, *, children: list[Alarm] | None = None,
              comments: list[AlarmComment] | None = None, impact: list[dict[str, Any]] |
              None = None, base_url: str = "") -> dict[str, Any]:
    """The alarm in the shape of TMF642."""
    href = f"{base_url}/tmf-api/alarmManagement/v4/alarm/{alarm.id}"
    kids = children or []
    threshold = json.loads(alarm.threshold_json) if alarm.threshold_json else None
    out: dict[str, Any] = {
        "id": str(alarm.id),
        "href": href,
        "alarmType": alarm.alarm_type,
        "perceivedSeverity": "cleared" if not alarm.active else alarm.severity,
        "probableCause": alarm.probable_cause,
        "specificProblem": alarm.specific_problem,
        "alarmedObjectType": alarm.resource_type,
        "alarmedObject": {"id": alarm.resource,
                          "name": alarm.device if alarm.resource_type == "device" else
                          alarm.resource if alarm.resource_type == "link" else
                          f"{alarm.device}:{alarm.resource}",
                          "@referredType": alarm.resource_type},
        "sourceSystemId": "switchboard",
        "state": alarm.state,
        "ackState": alarm.ack_state,
        "ackUserId": alarm.ack_user,
        "ackSystemId": "switchboard" if alarm.ack_user else None,
        "alarmRaisedTime": _iso(alarm.raised_at),
        "alarmChangedTime": _iso(alarm.changed_at),
        "alarmClearedTime": _iso(alarm.cleared_at),
        "alarmReportingTime": _iso(alarm.last_seen),
        "isRootCause": alarm.parent_id is None and bool(kids),
        "correlatedAlarm": [{"id": str(k.id), "href": f"{base_url}/tmf-api/alarmManagement"
                             f"/v4/alarm/{k.id}"} for k in kids],
        "parentAlarm": ([{"id": str(alarm.parent_id), "href": f"{base_url}/tmf-api/"
                          f"alarmManagement/v4/alarm/{alarm.parent_id}"}]
                        if alarm.parent_id is not None else []),
        "crossedThresholdInformation": threshold,
        "comment": [{"userId": c.user, "time": _iso(c.at), "comment": c.text,
                     "systemId": "switchboard"} for c in (comments or [])],
        "x_device": alarm.device,
        "x_problem": alarm.problem,
        "x_rule": alarm.rule,
        "x_count": alarm.count,
        "x_flapping": alarm.flapping,
        "x_transitions": alarm.transitions,
        "x_correlation": alarm.correlation or None,
        "x_ackTime": _iso(alarm.ack_time),
        "x_ackNote": alarm.ack_note,
        "x_source": alarm.source,
        "@type": "Alarm",
    }
    if impact is not None:
        out["x_impact"] = impact
    return out


def alarm_detail(session: Session, alarm_id: int, *, base_url: str = "") -> dict[str, Any]:
    """The alarm with its children, comments, history and impacted services."""
    alarm = get_alarm(session, alarm_id)
    kids = children_of(session, [alarm_id])[alarm_id]
    comments = list(session.exec(select(AlarmComment).where(
        AlarmComment.alarm_id == alarm_id).order_by(col(AlarmComment.at))).all())
    out = tmf_alarm(alarm, children=kids, comments=comments,
                    impact=_impact(session, alarm, _descendants(session, alarm)),
                    base_url=base_url)
    out["x_children"] = [{"id": str(k.id), "device": k.device, "resource": k.resource,
                          "problem": k.problem, "state": k.state,
                          "correlation": k.correlation} for k in kids]
    out["x_history"] = [{"time": _iso(h.at), "action": h.action, "userId": h.user,
                         "note": h.note, "before": h.before, "after": h.after}
                        for h in session.exec(select(AlarmHistory).where(
                            AlarmHistory.alarm_id == alarm_id).order_by(
                            col(AlarmHistory.at), col(AlarmHistory.id))).all()]
    return out


def _check_text(text: str, what: str) -> str:
    text = text.strip()
    if not text:
        raise AlarmConflict(f"{what} must not be empty")
    if len(text) > MAX_NOTE:
        raise AlarmConflict(f"{what} is longer than {MAX_NOTE} characters")
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise AlarmConflict(f"{what} holds control characters")
    return text


def _check_user(user: str) -> str:
    user = user.strip()
    if not user or len(user) > 128 or any(ord(c) < 32 for c in user):
        raise AlarmConflict("a user name (1-128 printable characters) is required")
    return user


def acknowledge(session: Session, alarm_id: int, *, user: str, note: str) -> Alarm:
    """Acknowledge an open alarm with a note; refused for cleared or acknowledged ones."""
    user, note = _check_user(user), _check_text(note, "the note")
    alarm = get_alarm(session, alarm_id)
    if not alarm.active:
        raise AlarmConflict(f"alarm {alarm_id} is {alarm.state}: only an open alarm can be "
                            "acknowledged")
    if alarm.ack_state == "acknowledged":
        raise AlarmConflict(f"alarm {alarm_id} was already acknowledged by {alarm.ack_user} "
                            f"at {_iso(alarm.ack_time)}")
    now = utcnow()
    alarm.ack_state, alarm.ack_user, alarm.ack_time, alarm.ack_note = (
        "acknowledged", user, now, note)
    session.add(alarm)
    session.add(AlarmHistory(alarm_id=alarm_id, at=now, action="acknowledged", user=user,
                             note=note, before="unacknowledged", after="acknowledged"))
    session.commit()
    return alarm


def unacknowledge(session: Session, alarm_id: int, *, user: str) -> Alarm:
    """Take an acknowledgement back (the history keeps it)."""
    user = _check_user(user)
    alarm = get_alarm(session, alarm_id)
    if alarm.ack_state != "acknowledged":
        raise AlarmConflict(f"alarm {alarm_id} is not acknowledged")
    if alarm.state == AlarmState.ARCHIVED.value:
        raise AlarmConflict(f"alarm {alarm_id} is archived")
    now = utcnow()
    note = f"was acknowledged by {alarm.ack_user}: {alarm.ack_note or ''}".strip()
    alarm.ack_state, alarm.ack_user, alarm.ack_time, alarm.ack_note = (
        "unacknowledged", None, None, None)
    session.add(alarm)
    session.add(AlarmHistory(alarm_id=alarm_id, at=now, action="unacknowledged", user=user,
                             note=note, before="acknowledged", after="unacknowledged"))
    session.commit()
    return alarm


def add_comment(session: Session, alarm_id: int, *, user: str, text: str) -> AlarmComment:
    """Comment on an alarm in any state (the history records it too)."""
    user, text = _check_user(user), _check_text(text, "the comment")
    get_alarm(session, alarm_id)
    comment = AlarmComment(alarm_id=alarm_id, user=user, text=text)
    session.add(comment)
    session.add(AlarmHistory(alarm_id=alarm_id, at=comment.at, action="commented", user=user,
                             note=text))
    session.commit()
    return comment


def clear_alarm(session: Session, alarm_id: int, *, user: str, note: str) -> Alarm:
    """An operator clears an alarm by hand (TMF642 clearAlarms); its children stand
    alone again."""
    user, note = _check_user(user), _check_text(note, "the note")
    alarm = get_alarm(session, alarm_id)
    if not alarm.active:
        raise AlarmConflict(f"alarm {alarm_id} is already {alarm.state}")
    now = utcnow()
    before = alarm.state
    alarm.state, alarm.cleared_at, alarm.changed_at = AlarmState.CLEARED.value, now, now
    alarm.held_clear_at = alarm.auto_clear_at = None
    session.add(alarm)
    session.add(AlarmHistory(alarm_id=alarm_id, at=now, action="cleared", user=user,
                             note=note, before=before, after="cleared"))
    for child in session.exec(select(Alarm).where(Alarm.parent_id == alarm_id,
                                                  col(Alarm.state).in_(ACTIVE_STATES))).all():
        child.parent_id, child.correlation = None, ""
        session.add(child)
        session.add(AlarmHistory(alarm_id=child.id or 0, at=now, action="uncorrelated",
                                 user=user, before=str(alarm_id),
                                 note=f"its parent {alarm_id} was cleared by hand"))
    session.commit()
    return alarm
