"""The REST API: the inventory under /api, paged and filtered, errors as RFC 9457
problem details. ``switchboard serve`` runs it; tests use :func:`create_app` directly."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agents.fault.settings import FaultSettings
from topology.db import get_engine, init_db
from topology.errors import ConfigPushError, SwitchboardError
from topology.inventory import (
    ChangePublic,
    DevicePublic,
    HardwareComponentPublic,
    InterfacePublic,
    IpAddressPublic,
    LinkPublic,
)
from topology.queries import (
    NotFound,
    Page,
    device_detail,
    list_changes,
    list_devices,
    list_interfaces,
    list_links,
    parse_since,
)

__all__ = ["create_app"]

PROBLEM = "application/problem+json"


def _session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(_session)]
Offset = Annotated[int, Query(ge=0, description="rows to skip")]
Limit = Annotated[int, Query(ge=1, le=1000, description="rows per page")]
Since = Annotated[str, Query(description="start: 15m, 1h, 2d ago or an ISO time")]
Until = Annotated[str | None, Query(description="end (default now)")]
Step = Annotated[int | None, Query(ge=1, le=86400, description="seconds per point")]


class InterfaceRow(InterfacePublic):
    """An interface with its device's name."""

    device: str


class DeviceDetailPublic(BaseModel):
    """One device with everything the inventory holds on it."""

    device: DevicePublic
    interfaces: list[InterfacePublic]
    addresses: list[IpAddressPublic]
    hardware: list[HardwareComponentPublic]
    links: list[LinkPublic]


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None


def _problem(request: Request, status: int, title: str, detail: str) -> JSONResponse:
    body = Problem(title=title, status=status, detail=detail, instance=str(request.url.path))
    return JSONResponse(body.model_dump(), status_code=status, media_type=PROBLEM)


def create_app(engine: Engine | None = None, *,
               fault: FaultSettings | None = None) -> FastAPI:
    """The app, on ``engine`` (default: the suite's database). With ``fault`` settings the
    app also runs the fault service (trap receiver and fault agent) while it serves."""
    from agents.fault.alarms import AlarmConflict
    from agents.fault.model import init_fault_db
    from agents.fulfilment.model import init_fulfilment_db
    from agents.performance.poller import init_poller_db
    from agents.performance.store import init_perf_db
    from bss.model import init_bss_db
    from northbound.api_alarms import router as alarms_router
    from northbound.api_billing import router as billing_router
    from northbound.api_bss import router as bss_router
    from northbound.api_config import router as config_router
    from northbound.api_orders import router as orders_router

    engine = engine or get_engine()
    init_db(engine)
    init_fault_db(engine)
    init_fulfilment_db(engine)
    init_perf_db(engine)
    init_poller_db(engine)
    init_bss_db(engine)
    app = FastAPI(title="Switchboard", version="0.1.0",
                  lifespan=_fault_lifespan(engine, fault) if fault is not None else None,
                  description="Network operations suite: inventory and topology "
                              "(discovery), performance series, alarms (TMF642).",
                  responses={404: {"model": Problem, "description": "not found"},
                             409: {"model": Problem, "description": "not in this state"},
                             422: {"model": Problem, "description": "invalid request"}})

    app.state.engine = engine

    def paged(response: Response, page: Page[Any]) -> None:
        response.headers["X-Total-Count"] = str(page.total)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return _problem(request, 404, "Not found", str(exc))

    @app.exception_handler(AlarmConflict)
    async def conflict(request: Request, exc: AlarmConflict) -> JSONResponse:
        return _problem(request, 409, "Conflict", str(exc))

    @app.exception_handler(ConfigPushError)
    async def device_failed(request: Request, exc: ConfigPushError) -> JSONResponse:
        return _problem(request, 502, "The device refused or failed", str(exc))

    @app.exception_handler(SwitchboardError)
    async def refused(request: Request, exc: SwitchboardError) -> JSONResponse:
        return _problem(request, 400, "Request refused", str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                           for e in exc.errors())
        return _problem(request, 422, "Invalid request", detail)

    api = APIRouter(prefix="/api")

    @api.get("/devices", response_model=list[DevicePublic], tags=["inventory"])
    def devices(s: SessionDep, response: Response, offset: Offset = 0, limit: Limit = 100,
                role: str | None = None, status: str | None = None) -> list[DevicePublic]:
        """Devices by name; filters: role, status. The total is in X-Total-Count."""
        page = list_devices(s, role=role, status=status, offset=offset, limit=limit)
        paged(response, page)
        return page.items

    @api.get("/devices/{name}", response_model=DeviceDetailPublic, tags=["inventory"])
    def device(name: str, s: SessionDep) -> DeviceDetailPublic:
        """One device with its interfaces, addresses, hardware and links."""
        d = device_detail(s, name)
        return DeviceDetailPublic(device=d.device, interfaces=d.interfaces,
                                  addresses=d.addresses, hardware=d.hardware, links=d.links)

    @api.get("/interfaces", response_model=list[InterfaceRow], tags=["inventory"])
    def interfaces(s: SessionDep, response: Response, offset: Offset = 0, limit: Limit = 100,
                   device: str | None = None,
                   oper_status: str | None = None) -> list[InterfaceRow]:
        """Interfaces with their device; filters: device, oper_status."""
        page = list_interfaces(s, device=device, oper_status=oper_status, offset=offset,
                               limit=limit)
        paged(response, page)
        return [InterfaceRow(device=dev, **i.model_dump()) for dev, i in page.items]

    @api.get("/links", response_model=list[LinkPublic], tags=["topology"])
    def links(s: SessionDep, response: Response, offset: Offset = 0, limit: Limit = 100,
              device: str | None = None, confirmed: bool | None = None) -> list[LinkPublic]:
        """Links; filters: device (either end), confirmed."""
        page = list_links(s, device=device, confirmed=confirmed, offset=offset, limit=limit)
        paged(response, page)
        return page.items

    @api.get("/changes", response_model=list[ChangePublic], tags=["inventory"])
    def changes(s: SessionDep, response: Response, offset: Offset = 0, limit: Limit = 100,
                since: Annotated[str | None, Query(description="15m, 1h, 2d or ISO time")]
                = None, device: str | None = None, entity: str | None = None,
                run_id: int | None = None) -> list[ChangePublic]:
        """Change records, oldest first; filters: since, device, entity, run_id."""
        page = list_changes(s, since=parse_since(since) if since else None, device=device,
                            entity=entity, run_id=run_id, offset=offset, limit=limit)
        paged(response, page)
        return page.items

    @api.get("/perf/interfaces/{device}/{interface}", tags=["performance"])
    def interface_series(device: str, interface: str, since: Since = "1h",
                         until: Until = None, step: Step = None) -> dict[str, Any]:
        """An interface's rates and utilisation from ``since`` to ``until`` in ``step``-second
        points (raw, 5-minute or hourly data chosen by the step). Gaps stay gaps."""
        from agents.performance.store import PerfStore

        start, end, step_s = _range(since, until, step)
        store = PerfStore(app.state.engine)
        points = store.series(device, interface, start, end, step_s)
        if not points and not store.latest(device, interface):
            raise NotFound(f"no samples for {device}:{interface}")
        return {"device": device, "interface": interface, "start": start, "end": end,
                "step_s": step_s, "points": [dataclasses.asdict(p) for p in points],
                "gaps": [{"at": g.at, "reason": g.reason, "detail": g.detail}
                         for g in store.gaps(device, interface, start, end)]}

    @api.get("/perf/devices/{device}", tags=["performance"])
    def device_series(device: str, since: Since = "1h", until: Until = None,
                      step: Step = None) -> dict[str, Any]:
        """A device's total traffic over its interfaces, with health where it has it."""
        from agents.performance.store import PerfStore

        start, end, step_s = _range(since, until, step)
        store = PerfStore(app.state.engine)
        if not store.latest(device):
            raise NotFound(f"no samples for {device}")
        points = store.device_series(device, start, end, step_s)
        return {"device": device, "start": start, "end": end, "step_s": step_s,
                "points": [dataclasses.asdict(p) if dataclasses.is_dataclass(p) else p
                           for p in points]}

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Prometheus exposition."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        from northbound.metrics import registry_for

        return Response(generate_latest(registry_for(app.state.engine)),
                        media_type=CONTENT_TYPE_LATEST)

    app.include_router(api)
    app.include_router(alarms_router)
    app.include_router(config_router)
    app.include_router(bss_router)
    app.include_router(orders_router)
    app.include_router(billing_router)
    return app


def _fault_lifespan(engine: Engine, settings: FaultSettings) -> Any:
    """Start the fault service with the app, stop it (queue drained) with the app."""
    from agents.fault.service import FaultService

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = FaultService(engine, settings=settings)
        try:
            await service.start()
        except OSError as exc:
            raise SwitchboardError(
                f"trap receiver cannot listen on udp {settings.listen_host}:"
                f"{settings.listen_port}: {exc.strerror} (serve --no-traps to run without "
                "it, or --traps-port)") from None
        app.state.fault = service
        try:
            yield
        finally:
            await service.stop()

    return lifespan


def _range(since: str, until: str | None, step: int | None) -> tuple[datetime, datetime, int]:
    end = parse_since(until) if until else datetime.now(UTC)
    start = parse_since(since, end)
    if start >= end:
        raise SwitchboardError(f"since ({start:%Y-%m-%d %H:%M}) must be before until")
    return start, end, step or max(1, int((end - start).total_seconds() / 120))
