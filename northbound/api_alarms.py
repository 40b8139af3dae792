"""Alarms over REST in the shape of TMF642 (Alarm Management v4), and a live stream.

    GET   /tmf-api/alarmManagement/v4/alarm            list: filters, offset/limit,
                                                         X-Total-Count / X-Result-Count
    GET   /tmf-api/alarmManagement/v4/alarm/{id}       one alarm, its children, history,
                                                         impacted services
    PATCH /tmf-api/alarmManagement/v4/alarm/{id}       ackState, state=cleared, comment
    POST  /tmf-api/alarmManagement/v4/ackAlarms        the TMF642 task operations, on a
    POST  /tmf-api/alarmManagement/v4/unAckAlarms      list of alarm ids (alarmPattern)
    POST  /tmf-api/alarmManagement/v4/clearAlarms
    POST  /tmf-api/alarmManagement/v4/commentAlarms
    GET   /api/alarms/events                           server-sent events: every change
                                                         of an alarm, as it is stored

Until the server has users (the northbound issue), the acting user is the request's
``ackUserId`` / ``userId``; it is required and stored with every action.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from agents.fault.alarms import (
    AlarmConflict,
    AlarmFilter,
    acknowledge,
    add_comment,
    alarm_detail,
    children_of,
    clear_alarm,
    list_alarms,
    tmf_alarm,
    unacknowledge,
)
from agents.fault.model import Alarm, AlarmComment
from northbound.auth import current_user, note_audit
from northbound.problems import MAX_INT, RowId, problem_responses
from topology.inventory import utcnow
from topology.queries import NotFound

__all__ = ["router"]

BASE = "/tmf-api/alarmManagement/v4"
router = APIRouter(responses=problem_responses(400, 404, 409, 422))


def _session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(_session)]


class CommentIn(BaseModel):
    """A TMF642 Comment."""

    comment: str = Field(min_length=1, max_length=2000)
    userId: str = Field(min_length=1, max_length=128)


class AlarmPatch(BaseModel):
    """The fields of an alarm an operator may change."""

    ackState: str | None = Field(default=None, pattern="^(acknowledged|unacknowledged)$")
    ackUserId: str | None = Field(default=None, max_length=128)
    state: str | None = Field(default=None, pattern="^cleared$")
    comment: list[CommentIn] = Field(default_factory=list)
    x_note: str | None = Field(default=None, max_length=2000,
                               description="why (required to acknowledge or clear)")


class AlarmRef(BaseModel):
    """A reference to an alarm."""

    id: str


class AlarmTask(BaseModel):
    """ackAlarms / unAckAlarms / clearAlarms / commentAlarms."""

    alarmPattern: list[AlarmRef] = Field(min_length=1, max_length=1000)
    ackUserId: str | None = Field(default=None, max_length=128)
    clearUserId: str | None = Field(default=None, max_length=128)
    comment: CommentIn | None = None
    x_note: str | None = Field(default=None, max_length=2000)


def _id(ref: str) -> int:
    if not (ref.isascii() and ref.isdigit()) or int(ref) > MAX_INT:
        raise NotFound(f"no alarm {ref!r}: an alarm id is a number")
    return int(ref)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get(f"{BASE}/alarm", tags=["alarms (TMF642)"])
def alarms(request: Request, s: SessionDep, response: Response,
           offset: Annotated[int, Query(ge=0, le=MAX_INT, description="rows to skip")] = 0,
           limit: Annotated[int, Query(ge=1, le=1000)] = 100,
           state: Annotated[str | None, Query(description="raised, updated, cleared; "
                                              "'active' for raised or updated")] = None,
           perceivedSeverity: str | None = None,
           ackState: str | None = None,
           isRootCause: bool | None = None,
           device: Annotated[str | None, Query(alias="x_device")] = None,
           problem: Annotated[str | None, Query(alias="x_problem")] = None,
           ) -> list[dict[str, Any]]:
    """Alarms, open and worst first. ``isRootCause=true`` lists the top of each
    correlation tree (roots and alarms that stand alone)."""
    flt = AlarmFilter(active=state == "active", root_only=bool(isRootCause),
                      severity=perceivedSeverity, device=device, problem=problem,
                      ack_state=ackState, include_archived=state == "archived")
    page = list_alarms(s, flt, offset=offset, limit=limit)
    rows = page.items
    if state and state not in ("active", "archived"):
        rows = [a for a in rows if a.state == state]
    kids = children_of(s, [a.id for a in rows if a.id is not None])
    response.headers["X-Total-Count"] = str(page.total)
    response.headers["X-Result-Count"] = str(len(rows))
    base = _base(request)
    return [tmf_alarm(a, children=kids[a.id or 0], base_url=base) for a in rows]


@router.get(f"{BASE}/alarm/{{alarm_id}}", tags=["alarms (TMF642)"])
def alarm(request: Request, alarm_id: RowId, s: SessionDep) -> dict[str, Any]:
    """One alarm with its children (and why they are under it), comments, history and
    the services and customers it hits."""
    return alarm_detail(s, alarm_id, base_url=_base(request))


@router.patch(f"{BASE}/alarm/{{alarm_id}}", tags=["alarms (TMF642)"])
def patch_alarm(request: Request, alarm_id: RowId, body: AlarmPatch,
                s: SessionDep) -> dict[str, Any]:
    """Acknowledge (``ackState``, ``ackUserId``, ``x_note``), unacknowledge, clear
    (``state: cleared``) or comment. Refused with 409 where the state does not allow it."""
    me = current_user(request)  # logged in: that is who did it, whatever the body says
    before = _audit_view(s, [alarm_id])
    user = me or body.ackUserId or (body.comment[0].userId if body.comment else None)
    if body.ackState == "acknowledged":
        acknowledge(s, alarm_id, user=me or body.ackUserId or "", note=body.x_note or "")
    elif body.ackState == "unacknowledged":
        unacknowledge(s, alarm_id, user=me or body.ackUserId or "")
    if body.state == "cleared":
        clear_alarm(s, alarm_id, user=user or "", note=body.x_note or "")
    for c in body.comment:
        add_comment(s, alarm_id, user=me or c.userId, text=c.comment)
    note_audit(request, target_type="alarm", target_id=str(alarm_id), before=before,
               after=_audit_view(s, [alarm_id]))
    return alarm_detail(s, alarm_id, base_url=_base(request))


def _audit_view(s: Session, ids: list[int]) -> dict[str, Any]:
    """What an operator's action may change on each alarm: for the audit log's before
    and after."""
    out: dict[str, Any] = {}
    for aid in ids:
        a = s.get(Alarm, aid)
        if a is not None:
            s.refresh(a)
            out[str(aid)] = {"state": a.state, "ackState": a.ack_state, "ackUser": a.ack_user,
                             "ackNote": a.ack_note,
                             "comments": s.exec(select(func.count()).select_from(
                                 AlarmComment).where(AlarmComment.alarm_id == aid)).one()}
    return out


def _task(request: Request, s: SessionDep, body: AlarmTask, kind: str) -> dict[str, Any]:
    done: list[dict[str, str]] = []
    refused: list[dict[str, str]] = []
    me = current_user(request)
    ids = [int(r.id) for r in body.alarmPattern if r.id.isascii() and r.id.isdigit()
           and int(r.id) <= MAX_INT]
    before = _audit_view(s, ids)
    for ref in body.alarmPattern:
        try:
            aid = _id(ref.id)
            if kind == "ack":
                acknowledge(s, aid, user=me or body.ackUserId or "", note=body.x_note or "")
            elif kind == "unack":
                unacknowledge(s, aid, user=me or body.ackUserId or "")
            elif kind == "clear":
                clear_alarm(s, aid, user=me or body.clearUserId or "", note=body.x_note or "")
            else:
                if body.comment is None:
                    raise AlarmConflict("commentAlarms needs a comment")
                add_comment(s, aid, user=me or body.comment.userId, text=body.comment.comment)
            done.append({"id": ref.id, "href": f"{_base(request)}{BASE}/alarm/{ref.id}"})
        except (AlarmConflict, NotFound) as exc:
            s.rollback()
            refused.append({"id": ref.id, "reason": str(exc)})
    note_audit(request, target_type="alarm", target_id=",".join(str(i) for i in ids),
               before=before, after=_audit_view(s, ids))
    names = {"ack": "ackedAlarm", "unack": "unAckedAlarm", "clear": "clearedAlarm",
             "comment": "commentedAlarm"}
    return {"id": f"{kind}-{utcnow():%Y%m%d%H%M%S%f}",
            "state": "done" if not refused else ("inProgress" if done else "failed"),
            "alarmPattern": [r.model_dump() for r in body.alarmPattern],
            names[kind]: done, "x_refused": refused}


@router.post(f"{BASE}/ackAlarms", tags=["alarms (TMF642)"])
def ack_alarms(request: Request, body: AlarmTask, s: SessionDep) -> dict[str, Any]:
    """Acknowledge alarms (``ackUserId`` and ``x_note`` required); each refusal is listed
    with its reason in ``x_refused``, the others are done."""
    return _task(request, s, body, "ack")


@router.post(f"{BASE}/unAckAlarms", tags=["alarms (TMF642)"])
def unack_alarms(request: Request, body: AlarmTask, s: SessionDep) -> dict[str, Any]:
    """Take acknowledgements back."""
    return _task(request, s, body, "unack")


@router.post(f"{BASE}/clearAlarms", tags=["alarms (TMF642)"])
def clear_alarms(request: Request, body: AlarmTask, s: SessionDep) -> dict[str, Any]:
    """Clear alarms by hand (``clearUserId`` and ``x_note`` required)."""
    return _task(request, s, body, "clear")


@router.post(f"{BASE}/commentAlarms", tags=["alarms (TMF642)"])
def comment_alarms(request: Request, body: AlarmTask, s: SessionDep) -> dict[str, Any]:
    """Add one comment to several alarms."""
    return _task(request, s, body, "comment")


@router.get("/api/alarms/events", tags=["alarms (TMF642)"])
async def alarm_events(request: Request,
                       poll_s: Annotated[float, Query(ge=0.2, le=10)] = 1.0,
                       once: Annotated[bool, Query(description="end after the first batch "
                                                   "(for scripts and tests)")] = False,
                       ) -> StreamingResponse:
    """Server-sent events: one ``alarm`` event per change of an alarm (TMF642 shape),
    from any process that stores alarms (server, ``traps listen``). Starts with the
    alarms changed in the last minute. When the server stops, the stream ends with a
    ``stopping`` event (a browser's EventSource reconnects after ``retry``)."""
    engine = request.app.state.engine
    stopping = getattr(request.app.state, "stopping", None)
    base = _base(request)

    def changed_since(since: datetime, last_id: int) -> list[dict[str, Any]]:
        with Session(engine) as s:
            rows = s.exec(select(Alarm).where(col(Alarm.changed_at) >= since)
                          .order_by(col(Alarm.changed_at), col(Alarm.id)).limit(500)).all()
            kids = children_of(s, [a.id for a in rows if a.id is not None])
            return [tmf_alarm(a, children=kids[a.id or 0], base_url=base) for a in rows
                    if (a.changed_at, a.id or 0) > (since, last_id)]

    async def stream() -> AsyncIterator[bytes]:
        since = utcnow() - timedelta(minutes=1)
        last_id = -1
        ticks = max(1, round(poll_s / 0.2))
        yield b": switchboard alarm stream\nretry: 3000\n\n"
        while True:
            docs = await asyncio.to_thread(changed_since, since, last_id)
            for doc in docs:
                yield (f"event: alarm\nid: {doc['id']}-{doc['alarmChangedTime']}\n"
                       f"data: {json.dumps(doc, default=str)}\n\n").encode()
                since = datetime.fromisoformat(doc["alarmChangedTime"].replace("Z", "+00:00"))
                last_id = int(doc["id"])
            if once or await request.is_disconnected():
                return
            for _ in range(ticks):  # a stop is seen within 0.2 s
                if stopping is not None and stopping.is_set():
                    yield b"event: stopping\ndata: {}\n\n"
                    return
                await asyncio.sleep(poll_s / ticks)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})
