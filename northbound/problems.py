"""One error shape for the whole REST API: RFC 9457 problem details
(``application/problem+json``), and the OpenAPI that documents it.

    {"type": "about:blank", "title": "Not found", "status": 404,
     "detail": "no device 'r9'", "instance": "/api/devices/r9",
     "problems": ["..."]}            # only where the refusal has several reasons

How the suite's errors map (the first matching class wins; the tree is in
``topology/errors.py``):

    NotFound (any family)                          404 Not found
    AlarmConflict, LifecycleError, CrmConflict,    409 Conflict
    BillImmutable, TransitionRefused, DeviceBusy
    IdempotencyConflict                            422 Idempotency-Key reused
    ConfigPushError                                502 The device refused or failed
    any other SwitchboardError                     400 Request refused
    a malformed request (FastAPI validation)       422 Invalid request
    no route for the path / the method             404 / 405 (with Allow)
    anything else                                  500 Internal error (no detail leaks)

:func:`install_problem_handlers` puts the handlers on an app; :func:`complete_openapi`
documents the problem answers, the paging header and the security errors on every
operation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Final

from fastapi import FastAPI, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from topology.errors import ConfigPushError, SwitchboardError
from topology.queries import NotFound

__all__ = ["MAX_INT", "PROBLEM", "Problem", "ProblemRoute", "RowId", "complete_openapi",
           "error_status",
           "install_problem_handlers", "problem", "problem_responses", "validation_detail"]

log = logging.getLogger(__name__)

PROBLEM: Final = "application/problem+json"
MAX_INT: Final = 2**63 - 1
"""The largest integer the database stores: ids and offsets are bounded by it."""
PROBLEM_REF: Final = {"$ref": "#/components/schemas/Problem"}
TITLES: Final = {400: "Request refused", 401: "Unauthorized", 403: "Forbidden",
                 404: "Not found", 405: "Method not allowed", 409: "Conflict",
                 422: "Invalid request", 429: "Too Many Requests", 500: "Internal error",
                 502: "The device refused or failed", 503: "Unavailable"}
WHY: Final = {400: "refused: the detail says why (nothing changed)",
              401: "no, bad, expired or revoked credentials",
              403: "the caller's role may not do this",
              404: "no such resource",
              409: "not allowed in the resource's present state",
              422: "malformed request: the detail names each field",
              429: "too many failed attempts: wait the Retry-After seconds",
              502: "a device refused or failed (nothing left half-done)",
              503: "the service is not running in this server"}


RowId = Annotated[int, PathParam(ge=0, le=MAX_INT, description="the row's id")]
"""An integer id in a path (bounded: a larger one cannot exist)."""


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    problems: list[str] | None = Field(default=None, description="every reason, where a "
                                       "refusal has several")


def problem(request: Request, status: int, title: str | None = None, detail: str = "",
            problems: list[str] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    """A problem-details answer for ``request``."""
    body: dict[str, Any] = {"type": "about:blank", "title": title or TITLES.get(status, ""),
                            "status": status, "detail": detail or title or "",
                            "instance": str(request.url.path)}
    if problems:
        body["problems"] = [str(p) for p in problems]
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def validation_detail(exc: RequestValidationError) -> str:
    """FastAPI's validation errors as one readable line: ``body.name: Field required``."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                     for e in exc.errors()) or "invalid request"


def error_status(exc: SwitchboardError) -> tuple[int, str]:
    """The HTTP status and title for one of the suite's errors."""
    from agents.fault.alarms import AlarmConflict
    from agents.fulfilment.leases import DeviceBusy
    from bss.billing import BillImmutable
    from bss.catalogue import LifecycleError
    from bss.crm import CrmConflict
    from bss.orders import IdempotencyConflict, TransitionRefused

    if isinstance(exc, NotFound):
        return 404, TITLES[404]
    if isinstance(exc, AlarmConflict | LifecycleError | CrmConflict | BillImmutable
                  | TransitionRefused | DeviceBusy):
        return 409, TITLES[409]
    if isinstance(exc, IdempotencyConflict):
        return 422, "Idempotency-Key reused with another body"
    if isinstance(exc, ConfigPushError):
        return 502, TITLES[502]
    return 400, TITLES[400]


def error_problem(request: Request, exc: SwitchboardError) -> JSONResponse:
    """The problem answer for one of the suite's errors."""
    status, title = error_status(exc)
    problems = getattr(exc, "problems", None)
    return problem(request, status, title, str(exc),
                   problems if isinstance(problems, list) and problems else None)


def install_problem_handlers(app: FastAPI) -> None:
    """Every error of ``app`` answers as problem details, unknown paths and methods too."""

    @app.exception_handler(SwitchboardError)
    async def suite_error(request: Request, exc: SwitchboardError) -> JSONResponse:
        return error_problem(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(request, 422, TITLES[422], validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 404 and exc.detail == "Not Found":
            detail = f"no resource at {request.url.path}"
        elif exc.status_code == 405:
            allowed = headers.get("Allow") or headers.get("allow") or ""
            detail = f"{request.method} is not allowed on {request.url.path}" + (
                f"; allowed: {allowed}" if allowed else "")
        else:
            detail = str(exc.detail)
        return problem(request, exc.status_code, TITLES.get(exc.status_code), detail,
                       headers=headers or None)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed: %s", request.method, request.url.path,
                  type(exc).__name__)
        return problem(request, 500, TITLES[500], "the server failed on this request; "
                       "its log has the cause")


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these problem statuses (for ``responses=``)."""
    return {code: {"description": WHY.get(code, TITLES.get(code, "error")),
                   "content": {PROBLEM: {"schema": PROBLEM_REF}}} for code in codes}


PAGED_HEADERS: Final = {
    "X-Total-Count": {"description": "rows matching the filters, over every page",
                      "schema": {"type": "integer", "minimum": 0}}}


def complete_openapi(schema: dict[str, Any],
                     needs_role: Callable[[str, str], bool] | None = None) -> dict[str, Any]:
    """Document on every operation: problem answers (422 for a malformed request, 400
    where the request carries input, 404 where the path names a resource), the
    ``X-Total-Count`` header of paged lists, and with ``needs_role`` (method, path ->
    whether credentials are needed) 401 and 403. FastAPI's own 422 shape is replaced by
    the problem it really answers."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema()
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    for path, item in schema.get("paths", {}).items():
        for method, op in item.items():
            if method not in ("get", "put", "post", "patch", "delete"):
                continue
            responses: dict[str, Any] = op.setdefault("responses", {})
            params = op.get("parameters", [])
            has_input = bool(params) or "requestBody" in op
            codes: list[int] = []
            if has_input:
                codes += [400, 422]
            if any(p.get("in") == "path" for p in params):
                codes.append(404)
            if needs_role is not None and needs_role(method.upper(), path):
                codes += [401, 403]
            for code, entry in problem_responses(*codes).items():
                responses.setdefault(str(code), entry)
            for code, entry in responses.items():
                if code.startswith(("4", "5")):
                    entry["content"] = {PROBLEM: {"schema": PROBLEM_REF}}
            names = {p.get("name") for p in params if p.get("in") == "query"}
            if method == "get" and {"offset", "limit"} <= names:
                for code, entry in responses.items():
                    if code.startswith("2"):
                        entry.setdefault("headers", {}).update(PAGED_HEADERS)
    return schema


class ProblemRoute(APIRoute):
    """A route class that turns the suite's errors into problem details in the router
    itself, so a router answers the same whatever app includes it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return problem(request, 422, "Invalid request", validation_detail(exc))
            except SwitchboardError as exc:
                return error_problem(request, exc)

        return route
