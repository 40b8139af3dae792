"""The REST API: the inventory under /api, paged and filtered, errors as RFC 9457
problem details (:mod:`northbound.problems`). ``switchboard serve`` runs it; tests use
:func:`create_app` directly.

The app's lifespan runs, each only when :func:`create_app` is given its settings, the
suite's long-running work in the server's own event loop: the fault service (trap
receiver and fault agent), the poller, and the discovery schedule (runs in a worker
thread). It stops them in the reverse order: the discovery schedule first (a run in
progress gets a grace time, else it is left ``interrupted``: it writes nothing until its
end), then the poller (polls under way finish within their budget, the cycle's stats are
saved), then the fault service (its queue drained into alarms)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agents.fault.settings import FaultSettings
from agents.performance.settings import PerfSettings
from northbound.api_discovery import DiscoveryRunner, DiscoverySchedule
from northbound.console import mount_console
from northbound.problems import (
    MAX_INT,
    PROBLEM,
    Problem,
    complete_openapi,
    install_problem_handlers,
    problem_responses,
)
from northbound.problems import problem as _problem_response
from topology.db import get_engine, init_db
from topology.errors import SwitchboardError
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

__all__ = ["PROBLEM", "Problem", "create_app"]

log = logging.getLogger(__name__)


def _session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(_session)]
Offset = Annotated[int, Query(ge=0, le=MAX_INT, description="rows to skip")]
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


def _problem(request: Request, status: int, title: str, detail: str) -> JSONResponse:
    """A problem-details answer (kept for the modules that import it from here)."""
    return _problem_response(request, status, title, detail)


def create_app(engine: Engine | None = None, *,
               fault: FaultSettings | None = None,
               poll: PerfSettings | None = None,
               discovery: DiscoverySchedule | None = None,
               stop_grace_s: float = 30.0) -> FastAPI:
    """The app, on ``engine`` (default: the suite's database). While it serves, it also
    runs the fault service (trap receiver and fault agent) with ``fault`` settings, the
    poller with ``poll`` settings, and ``discovery``'s schedule when it names a lab or
    seeds. ``stop_grace_s``: how long a discovery run or a poll under way may take to
    finish when the app stops."""
    from agents.fault.model import init_fault_db
    from agents.fulfilment.model import init_fulfilment_db
    from agents.performance.poller import init_poller_db
    from agents.performance.store import init_perf_db
    from bss.model import init_bss_db
    from northbound.api_alarms import router as alarms_router
    from northbound.api_billing import router as billing_router
    from northbound.api_bss import router as bss_router
    from northbound.api_config import router as config_router
    from northbound.api_credentials import router as credentials_router
    from northbound.api_discovery import router as discovery_router
    from northbound.api_orders import router as orders_router

    engine = engine or get_engine()
    init_db(engine)
    init_fault_db(engine)
    init_fulfilment_db(engine)
    init_perf_db(engine)
    init_poller_db(engine)
    init_bss_db(engine)
    app = FastAPI(title="Switchboard", version="0.1.0",
                  lifespan=_lifespan(engine, fault=fault, poll=poll, discovery=discovery,
                                     grace_s=stop_grace_s),
                  description="Network operations suite: inventory and topology "
                              "(discovery), performance series, alarms (TMF642), the BSS "
                              "(TMF620/622/629/637/666/674/678). Every error is an RFC "
                              "9457 problem (application/problem+json); lists take "
                              "offset and limit and answer the total in X-Total-Count.")

    app.state.engine = engine
    # set by ``serve`` when the server is told to stop: long-lived answers (the alarm
    # event stream) end so that the graceful shutdown does not wait for them
    app.state.stopping = threading.Event()
    app.state.discovery = DiscoveryRunner(engine)
    install_problem_handlers(app)

    def paged(response: Response, page: Page[Any]) -> None:
        response.headers["X-Total-Count"] = str(page.total)

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

    @api.get("/interfaces", response_model=list[InterfaceRow], tags=["inventory"],
             responses=problem_responses(404))
    def interfaces(s: SessionDep, response: Response, offset: Offset = 0, limit: Limit = 100,
                   device: str | None = None,
                   oper_status: str | None = None) -> list[InterfaceRow]:
        """Interfaces with their device; filters: device, oper_status."""
        page = list_interfaces(s, device=device, oper_status=oper_status, offset=offset,
                               limit=limit)
        paged(response, page)
        return [InterfaceRow(device=dev, **i.model_dump()) for dev, i in page.items]

    @api.get("/links", response_model=list[LinkPublic], tags=["topology"],
             responses=problem_responses(404))
    def links(s: SessionDep, response: Response, offset: Offset = 0, limit: Limit = 100,
              device: str | None = None, confirmed: bool | None = None) -> list[LinkPublic]:
        """Links; filters: device (either end), confirmed."""
        page = list_links(s, device=device, confirmed=confirmed, offset=offset, limit=limit)
        paged(response, page)
        return page.items

    @api.get("/changes", response_model=list[ChangePublic], tags=["inventory"],
             responses=problem_responses(404))
    def changes(s: SessionDep, response: Response, offset: Offset = 0, limit: Limit = 100,
                since: Annotated[str | None, Query(description="15m, 1h, 2d or ISO time")]
                = None, device: str | None = None, entity: str | None = None,
                run_id: Annotated[int | None, Query(ge=0, le=MAX_INT)] = None,
                ) -> list[ChangePublic]:
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

        auth = getattr(app.state, "auth", None)
        process = dict(auth.failures) if auth is not None else {}
        return Response(generate_latest(registry_for(app.state.engine, process)),
                        media_type=CONTENT_TYPE_LATEST)

    app.include_router(api)
    app.include_router(alarms_router)
    app.include_router(config_router)
    app.include_router(bss_router)
    app.include_router(orders_router)
    app.include_router(billing_router)
    app.include_router(discovery_router)
    app.include_router(credentials_router)
    _document(app)
    mount_console(app)
    return app


def _document(app: FastAPI) -> None:
    """The OpenAPI document with the problem answers and paging headers on every
    operation (:func:`northbound.problems.complete_openapi`)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete_openapi(original())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _lifespan(engine: Engine, *, fault: FaultSettings | None, poll: PerfSettings | None,
              discovery: DiscoverySchedule | None, grace_s: float) -> Any:
    """Start the fault service, the poller and the discovery schedule with the app (each
    when it has settings); stop them in reverse order, each one's work finished or left
    safe to take up again."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if fault is not None:
                await stack.enter_async_context(_fault_service(app, engine, fault))
            if poll is not None:
                await stack.enter_async_context(_poller(app, engine, poll, grace_s))
            runner: DiscoveryRunner = app.state.discovery
            stack.push_async_callback(_stop_discovery, runner, grace_s)
            if discovery is not None and discovery.configured:
                await stack.enter_async_context(_discovery_schedule(runner, discovery))
            yield

    return lifespan


@asynccontextmanager
async def _fault_service(app: FastAPI, engine: Engine,
                         settings: FaultSettings) -> AsyncIterator[None]:
    """The trap receiver and fault agent; stopped with its queue drained."""
    from agents.fault.service import FaultService

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


@asynccontextmanager
async def _poller(app: FastAPI, engine: Engine, settings: PerfSettings,
                  grace_s: float) -> AsyncIterator[None]:
    """The poller in the server's loop. At stop, polls under way finish (each within its
    budget) and the stats are saved; past the grace time the rest is cancelled, which
    loses at most those polls' samples (the next start polls afresh)."""
    from agents.performance.poller import Poller

    poller = Poller(engine, settings)
    app.state.poller = poller
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop), name="poller")

    def ended(t: asyncio.Task[None]) -> None:
        if not t.cancelled() and t.exception() is not None:
            log.error("the poller stopped: %s", t.exception())

    task.add_done_callback(ended)
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(task),
                                   max(grace_s, settings.budget_s + 1.0))
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            log.warning("the poller did not finish within the grace time: cancelled")
        except Exception:  # noqa: S110 - already logged by ended()
            pass


@asynccontextmanager
async def _discovery_schedule(runner: DiscoveryRunner,
                              schedule: DiscoverySchedule) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(runner.schedule(schedule, stop), name="discovery-schedule")
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await task


async def _stop_discovery(runner: DiscoveryRunner, grace_s: float) -> None:
    if not await asyncio.to_thread(runner.stop, grace_s):
        log.warning("a discovery run did not finish within %.0f s: left interrupted "
                    "(it writes nothing until its end; run it again)", grace_s)


def _range(since: str, until: str | None, step: int | None) -> tuple[datetime, datetime, int]:
    end = parse_since(until) if until else datetime.now(UTC)
    start = parse_since(since, end)
    if start >= end:
        raise SwitchboardError(f"since ({start:%Y-%m-%d %H:%M}) must be before until")
    return start, end, step or max(1, int((end - start).total_seconds() / 120))
