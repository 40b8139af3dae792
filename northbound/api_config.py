"""Service activation over REST: plans (the diff, nothing pushed), changes (apply as a
transaction), rollbacks.

    POST /api/config/plans                  {service, device, params}        -> the diff
    POST /api/config/changes                {service, device, params, why, confirm_timeout_s,
                                             verify_from, verify_to, lab, dry_run, who}
    GET  /api/config/changes?device=&state=&offset=&limit=
    GET  /api/config/changes/{id}
    POST /api/config/changes/{id}/rollback  {who}
    GET  /api/config/leases                 devices being changed now, and by whom

A refused parameter is a 400 problem naming every refused parameter (nothing was
contacted); a device that refused or failed is a 502 problem; an activation that failed
and was rolled back is a 200 with ``state: failed`` and every device's record.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from agents.fulfilment import ConfigChange, FulfilmentAgent, ServiceRequest
from northbound.auth import note_audit
from northbound.problems import MAX_INT, RowId, problem_responses
from topology.queries import NotFound

__all__ = ["router"]

router = APIRouter(prefix="/api/config", tags=["fulfilment"],
                   responses=problem_responses(400, 404, 409, 422, 502))


def _session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(_session)]


class PlanIn(BaseModel):
    """A service on a device."""

    service: str = Field(max_length=64)
    device: str = Field(max_length=128)
    params: dict[str, str] = Field(default_factory=dict)


class ChangeIn(PlanIn):
    """An activation."""

    who: str = Field(min_length=1, max_length=128)
    why: str = Field(default="", max_length=500)
    confirm_timeout_s: int | None = Field(default=None, ge=5, le=3600)
    verify_from: str | None = Field(default=None, max_length=64)
    verify_to: str | None = Field(default=None, max_length=64)
    lab: str | None = Field(default=None, max_length=64, description="the lab whose node "
                            "verify_from names")
    dry_run: bool = False


class RollbackIn(BaseModel):
    """Who rolls back."""

    who: str = Field(min_length=1, max_length=128)


def change_doc(c: ConfigChange) -> dict[str, Any]:
    """A change record as the API shows it."""
    return {"id": c.id, "batch": c.batch, "position": c.position, "service": c.service,
            "device": c.device, "driver": c.driver, "platform": c.platform,
            "state": c.state, "who": c.who, "why": c.why, "params": c.params(),
            "diff": c.diff, "applied_diff": c.applied_diff, "verify": c.verify(),
            "error": c.error, "confirm_timeout_s": c.confirm_timeout_s,
            "created_at": c.created_at, "started_at": c.started_at,
            "finished_at": c.finished_at, "duration_s": c.duration_s}


def _agent(request: Request, lab: str | None = None, probe: bool = False) -> FulfilmentAgent:
    reach = None
    if probe:
        from lab.reach import LabReachProbe

        reach = LabReachProbe(lab)
    return FulfilmentAgent(request.app.state.engine, probe=reach)


@router.post("/plans")
def plan(request: Request, body: PlanIn) -> dict[str, Any]:
    """What the activation would change, device by device; nothing is pushed."""
    p = _agent(request).plan([ServiceRequest(body.service, body.device, body.params)])
    return {"changes_anything": p.changes_anything,
            "steps": [{"device": s.request.device, "driver": s.driver,
                       "platform": s.platform, "params": s.params,
                       "config": s.rendered.config, "diff": s.diff} for s in p.steps]}


@router.post("/changes")
def apply(request: Request, body: ChangeIn) -> dict[str, Any]:
    """Apply as one transaction: on any failure every device is put back as it was."""
    agent = _agent(request, body.lab, probe=body.verify_from is not None)
    result = agent.apply([ServiceRequest(body.service, body.device, body.params)],
                         who=body.who, why=body.why,
                         confirm_timeout_s=body.confirm_timeout_s,
                         verify_from=body.verify_from, verify_to=body.verify_to,
                         dry_run=body.dry_run)
    note_audit(request, target_type="config-batch", target_id=result.batch, after={
        "state": result.state, "error": result.error,
        "changes": [{"id": c.id, "device": c.device, "service": c.service, "state": c.state,
                     "diff": c.applied_diff or c.diff} for c in result.changes]})
    return {"batch": result.batch, "state": result.state, "error": result.error,
            "changes": [change_doc(c) for c in result.changes]}


@router.get("/changes")
def changes(s: SessionDep, response: Response,
            offset: Annotated[int, Query(ge=0, le=MAX_INT, description="rows to skip")] = 0,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100,
            device: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
    """Change records, newest first (X-Total-Count has the total)."""
    q = select(ConfigChange)
    if device:
        q = q.where(ConfigChange.device == device)
    if state:
        q = q.where(ConfigChange.state == state)
    response.headers["X-Total-Count"] = str(
        s.exec(select(func.count()).select_from(q.subquery())).one())
    rows = s.exec(q.order_by(col(ConfigChange.id).desc()).offset(offset).limit(limit)).all()
    return [change_doc(c) for c in rows]


@router.get("/changes/{change_id}")
def change(change_id: RowId, s: SessionDep) -> dict[str, Any]:
    """One change with its diffs, verification and result."""
    c = s.get(ConfigChange, change_id)
    if c is None:
        raise NotFound(f"no change {change_id}")
    return change_doc(c)


@router.get("/leases")
def leases(s: SessionDep, response: Response,
           offset: Annotated[int, Query(ge=0, le=MAX_INT, description="rows to skip")] = 0,
           limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """Devices being changed now: who holds each one's lease and why, since when, until
    when; ``stale`` says why the next change may take it over (its holder is gone)."""
    from agents.fulfilment.leases import lease_docs

    docs = lease_docs(s)
    response.headers["X-Total-Count"] = str(len(docs))
    return docs[offset:offset + limit]


@router.post("/changes/{change_id}/rollback")
def rollback(request: Request, change_id: RowId, body: RollbackIn) -> dict[str, Any]:
    """Put the device back to the config saved before the change."""
    with Session(request.app.state.engine) as s:
        was = s.get(ConfigChange, change_id)
        before = {"state": was.state} if was is not None else None
    done = _agent(request).rollback(change_id, who=body.who)
    note_audit(request, target_type="config-change", target_id=str(change_id), before=before,
               after={"state": done.state, "device": done.device})
    return change_doc(done)
