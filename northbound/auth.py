"""Access control for the whole app: who is calling (authentication), what their role may
do (one explicit role matrix), and an audit record of every change.

:func:`install_auth` adds to an app built by :func:`northbound.api.create_app`:

- ``POST /api/auth/login`` (name and password -> a session token, both in the body and
  as the HttpOnly cookie ``switchboard_session``), ``POST /api/auth/logout``,
  ``GET /api/auth/me``;
- the admin's ``/api/users``, ``/api/tokens`` and ``/api/audit`` endpoints;
- a middleware that, for every HTTP request, finds the route the router will pick, takes
  its path *template* (``/tmf-api/.../alarm/{alarm_id}``, so an id in the path cannot
  dodge a rule), asks :data:`ROLE_MATRIX` for the minimum role and answers 401 (no or
  bad credentials) or 403 (role too weak) as RFC 9457 problem details; then writes an
  :class:`topology.users.AuditRecord` for every non-GET request that succeeded and for
  every refusal with 403.

Credentials are ``Authorization: Bearer <token>`` (an API token ``sbt_...`` or a session
token ``sbs_...``) or the session cookie. A cookie-authenticated change from another
origin (an ``Origin`` header that is not this host) is refused: the cookie is also
``SameSite=Strict``.

Public (no credentials): ``GET /openapi.json``, ``/docs``, ``/redoc``, ``POST
/api/auth/login`` and, unless ``install_auth(metrics_role=...)`` says otherwise,
``GET /metrics`` (Prometheus scrapers seldom carry tokens), and the web console's files
(``GET /`` and ``/console/*``: they hold no data, the page reads the API with the
session cookie). Anything the matrix does not list needs ``admin`` (deny by default).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import math
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from http.cookies import SimpleCookie
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from northbound.problems import MAX_INT, TITLES, RowId, problem_responses
from topology.users import (
    ROLES,
    ApiTokenPublic,
    AuditRecordPublic,
    Principal,
    Role,
    UserPublic,
    audit,
    create_session,
    create_token,
    create_user,
    disable,
    enable,
    end_session,
    get_user,
    init_users_db,
    list_audit,
    list_tokens,
    list_users,
    revoke,
    role_at_least,
    set_password,
    set_role,
    verify_password,
    verify_session,
    verify_token,
)

__all__ = [
    "COOKIE",
    "DEFAULT_ROLE",
    "PUBLIC",
    "ROLE_MATRIX",
    "LoginThrottle",
    "RouteInfo",
    "Rule",
    "app_routes",
    "current_principal",
    "current_user",
    "decide",
    "install_auth",
    "matrix_markdown",
    "note_audit",
    "route_template",
]

log = logging.getLogger(__name__)

COOKIE = "switchboard_session"
PUBLIC: Literal["public"] = "public"
DEFAULT_ROLE: Role = "admin"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
AUDIT_BODY_MAX = 64 * 1024
LOGIN_PATH = "/api/auth/login"

Need = Literal["public", "viewer", "operator", "admin"]


@dataclass(frozen=True)
class Rule:
    """One line of the role matrix: requests whose method is in ``methods`` (``*``: any)
    and whose route template matches ``pattern`` (a glob; ``*`` also spans ``/``) need
    at least ``role``. The first matching rule decides."""

    methods: frozenset[str]
    pattern: str
    role: Need
    why: str = ""

    def matches(self, method: str, template: str) -> bool:
        return (("*" in self.methods or method.upper() in self.methods)
                and fnmatch.fnmatchcase(template, self.pattern))


def _r(methods: str, pattern: str, role: Need, why: str = "") -> Rule:
    return Rule(frozenset(methods.split()), pattern, role, why)


ALARMS = "/tmf-api/alarmManagement/v4"
ORDERS = "/tmf-api/productOrderingManagement/v4"
WRITE = "POST PUT PATCH DELETE"
READ = "GET HEAD"

ROLE_MATRIX: tuple[Rule, ...] = (
    # public
    _r(READ, "/openapi.json", PUBLIC, "the API description"),
    _r(READ, "/docs", PUBLIC, "interactive API docs"),
    _r(READ, "/docs/oauth2-redirect", PUBLIC, "interactive API docs"),
    _r(READ, "/redoc", PUBLIC, "API docs"),
    _r("POST", LOGIN_PATH, PUBLIC, "log in"),
    _r(READ, "/metrics", PUBLIC, "Prometheus exposition (install_auth(metrics_role=...))"),
    _r(READ, "/", PUBLIC, "redirect to the web console"),
    _r(READ, "/console*", PUBLIC, "the web console's static files (no data: it reads the API)"),
    # every user
    _r(READ, "/api/auth/me", "viewer", "who am I"),
    _r("POST", "/api/auth/logout", "viewer", "log out"),
    # administration: reads included
    _r("*", "/api/users*", "admin", "users"),
    _r("*", "/api/tokens*", "admin", "API tokens"),
    _r("*", "/api/audit*", "admin", "the audit log"),
    _r("*", "/api/credentials*", "admin", "credential profiles"),
    # operators: alarms, orders, discovery
    _r("PATCH", f"{ALARMS}/alarm/*", "operator",
       "acknowledge, unacknowledge, clear or comment an alarm"),
    _r("POST", f"{ALARMS}/ackAlarms", "operator", "acknowledge alarms"),
    _r("POST", f"{ALARMS}/unAckAlarms", "operator", "unacknowledge alarms"),
    _r("POST", f"{ALARMS}/clearAlarms", "operator", "clear alarms by hand"),
    _r("POST", f"{ALARMS}/commentAlarms", "operator", "comment alarms"),
    _r("POST", f"{ORDERS}/productOrder", "operator", "place a product order"),
    _r("POST", f"{ORDERS}/cancelProductOrder", "operator", "cancel a product order"),
    _r("POST", f"{ORDERS}/productOrder/*/cancel", "operator", "cancel a product order"),
    _r("POST", "/api/orders*", "operator", "place or cancel an order"),
    _r("POST PATCH", "/tmf-api/customerManagement/v4/customer*", "operator",
       "order desk: add or change a customer"),
    _r("POST PATCH", "/tmf-api/accountManagement/v4/billingAccount*", "operator",
       "order desk: add or change a billing account"),
    _r("POST PATCH", "/tmf-api/geographicSiteManagement/v4/geographicSite*", "operator",
       "order desk: add or change a customer's site"),
    _r("POST", "/api/discovery*", "operator", "run discovery"),
    _r("POST", "/api/discover", "operator", "run discovery"),
    # admins: pushes outside orders, catalogue, billing
    _r(WRITE, "/api/config/*", "admin", "config plans, pushes and rollbacks outside orders"),
    _r(WRITE, "/tmf-api/productCatalogManagement/*", "admin", "catalogue changes"),
    _r(WRITE, "/api/catalog*", "admin", "catalogue changes"),
    _r(WRITE, "/api/billing*", "admin", "billing runs"),
    _r(WRITE, "/tmf-api/customerBillManagement/*", "admin", "billing runs"),
    # reads
    _r(READ, "/api/*", "viewer", "read inventory, topology, series, alarms, changes"),
    _r(READ, "/tmf-api/*", "viewer", "read TMF resources"),
)
"""The one role matrix; anything it does not list needs :data:`DEFAULT_ROLE`."""


def decide(method: str, template: str, matrix: Sequence[Rule] = ROLE_MATRIX) -> Need:
    """The minimum role for ``method`` on the route ``template`` (``public``: none)."""
    for rule in matrix:
        if rule.matches(method, template):
            return rule.role
    return DEFAULT_ROLE


def matrix_markdown(matrix: Sequence[Rule] = ROLE_MATRIX) -> str:
    """The matrix as a Markdown table (docs/access.md holds this, checked by a test)."""
    lines = ["| methods | path (template) | minimum role | what |",
             "|---|---|---|---|"]
    for rule in matrix:
        methods = "any" if "*" in rule.methods else " ".join(
            m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
            if m in rule.methods)
        lines.append(f"| {methods} | `{rule.pattern}` | {rule.role} | {rule.why} |")
    lines.append(f"| anything else | | {DEFAULT_ROLE} | deny by default |")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class RouteInfo:
    """One route of the app as the router sees it: its full path template (prefixes
    included), its methods (``None``: any, e.g. a mount) and the object that matches."""

    path: str
    methods: frozenset[str] | None
    matcher: Any


def app_routes(app: FastAPI) -> list[RouteInfo]:
    """Every route of ``app``, flattened through included routers, in the router's order.

    FastAPI 0.16x keeps each included router as one node of ``app.routes``; older
    versions flatten them when they are included: both are handled."""
    import fastapi.routing

    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    items: Iterable[Any] = iterate(app.router.routes) if iterate else app.router.routes
    out = []
    for item in items:
        original = getattr(item, "original_route", item)
        path = getattr(item, "path", None)
        if path is None:
            continue
        methods = getattr(item, "methods", None)
        if isinstance(original, Mount):
            path, methods = f"{path.rstrip('/')}/{{path}}", None
        out.append(RouteInfo(path, frozenset(methods) if methods else None, item))
    return out


def route_template(app: FastAPI, scope: Scope) -> tuple[str | None, dict[str, Any]]:
    """The path template of the route the router will pick for ``scope`` (a route whose
    path matches but not its method counts too) and its path parameters; ``None`` when
    no route matches the path."""
    partial: tuple[str | None, dict[str, Any]] | None = None
    probe = {k: v for k, v in scope.items() if k not in ("state", "fastapi")}
    for route in app_routes(app):
        match, child = route.matcher.matches(dict(probe))
        if match == Match.NONE:
            continue
        found = (route.path, dict(child.get("path_params", {})))
        if match == Match.FULL:
            return found
        partial = partial or found
    return partial or (None, {})


# --------------------------------------------------------------------------- request side


def current_principal(request: Request) -> Principal | None:
    """Who the request acts as, or ``None`` (public route, or auth not installed)."""
    principal = request.scope.get("state", {}).get("principal")
    return principal if isinstance(principal, Principal) else None


def current_user(request: Request) -> str | None:
    """The acting user's (or API token's) name, for routers that record who did it."""
    principal = current_principal(request)
    return principal.name if principal is not None else None


def note_audit(request: Request, *, before: Any = None, after: Any = None,
               target_type: str | None = None, target_id: str | None = None,
               who: str | None = None) -> None:
    """Give the request's audit record what only the route knows (the object before and
    after the change); the middleware writes one record per request with it."""
    notes: dict[str, Any] = request.scope.setdefault("state", {}).setdefault("audit", {})
    for key, value in (("before", before), ("after", after), ("target_type", target_type),
                       ("target_id", target_id), ("who", who)):
        if value is not None:
            notes[key] = value


class LoginThrottle:
    """Failed logins slow a guesser down, per user name and per client address.

    ``per_name`` failures within ``window_s`` lock the name, ``per_client`` failures
    lock the address (higher: several people may share one NAT address). A lock lasts
    ``lock_s`` and doubles with each lock that follows within the window, up to
    ``max_lock_s``. While locked the password is not even checked (the answer is 429 with
    Retry-After), so a guesser learns nothing and costs no argon2 work. A successful
    login clears the name's failures, not the address's. In memory, per process: a
    restart forgives, which is what an operator who locked themselves out wants anyway.
    """

    def __init__(self, *, per_name: int = 5, per_client: int = 20, window_s: float = 900,
                 lock_s: float = 30, max_lock_s: float = 900,
                 clock: Any = time.monotonic) -> None:
        if min(per_name, per_client) < 1 or min(window_s, lock_s, max_lock_s) <= 0:
            raise ValueError("login throttle limits must be positive")
        self.limits = {"name": per_name, "client": per_client}
        self.window_s, self.lock_s, self.max_lock_s = window_s, lock_s, max_lock_s
        self.clock = clock
        self._failed: dict[tuple[str, str], list[float]] = {}
        self._locks: dict[tuple[str, str], tuple[float, int]] = {}  # until, how many
        self._mutex = threading.Lock()

    @staticmethod
    def _keys(name: str, client: str | None) -> list[tuple[str, str]]:
        keys = [("name", name.strip().casefold())]
        if client:
            keys.append(("client", client))
        return keys

    def retry_after(self, name: str, client: str | None) -> int:
        """Seconds until ``name`` from ``client`` may try again (0: now)."""
        now = self.clock()
        with self._mutex:
            waits = [until - now for key in self._keys(name, client)
                     if (lock := self._locks.get(key)) and (until := lock[0]) > now]
        return math.ceil(max(waits)) if waits else 0

    def failed(self, name: str, client: str | None) -> None:
        now = self.clock()
        with self._mutex:
            self._forget(now)
            for key in self._keys(name, client):
                times = self._failed.setdefault(key, [])
                times.append(now)
                if len(times) >= self.limits[key[0]]:
                    _, before = self._locks.get(key, (0.0, 0))
                    self._locks[key] = (now + min(self.lock_s * 2 ** before,
                                                  self.max_lock_s), before + 1)
                    times.clear()

    def succeeded(self, name: str) -> None:
        with self._mutex:
            key = self._keys(name, None)[0]
            self._failed.pop(key, None)
            self._locks.pop(key, None)

    def _forget(self, now: float) -> None:
        """Drop failures older than the window and locks that ended a window ago (so
        memory stays bounded by the guessers of the last window)."""
        for key in list(self._failed):
            kept = [t for t in self._failed[key] if now - t < self.window_s]
            if kept:
                self._failed[key] = kept
            else:
                del self._failed[key]
        for key, (until, _) in list(self._locks.items()):
            if now - until >= self.window_s:
                del self._locks[key]


@dataclass
class AuthConfig:
    """What :func:`install_auth` was given; on ``app.state.auth``. ``failures`` counts
    what a person must be able to see (exposed at /metrics as
    ``switchboard_auth_<name>_total``)."""

    engine: Engine
    matrix: tuple[Rule, ...]
    session_ttl_s: int
    secure_cookie: bool | None
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    failures: dict[str, int] = field(default_factory=lambda: {
        "audit_write_failures": 0, "login_failures": 0, "login_throttled": 0})


def _token_from(scope: Scope) -> tuple[str | None, str | None]:
    """(token, where): where is 'bearer', 'cookie', or 'bad' for an unusable header."""
    headers = Headers(scope=scope)
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip(), "bearer"
        return None, "bad"
    raw = headers.get("cookie")
    if raw:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except Exception:  # a malformed cookie header is no credential
            return None, None
        if COOKIE in jar and jar[COOKIE].value:
            return jar[COOKIE].value, "cookie"
    return None, None


def _authenticate(engine: Engine, token: str) -> Principal | None:
    if len(token) > 200:
        return None
    with Session(engine) as s:
        return verify_token(s, token) or verify_session(s, token)


def _cross_origin(scope: Scope) -> bool:
    headers = Headers(scope=scope)
    origin = headers.get("origin")
    if not origin or origin == "null":
        return origin == "null"
    return urlsplit(origin).netloc.lower() != headers.get("host", "").lower()


def _target(template: str | None, params: dict[str, Any]) -> tuple[str | None, str | None]:
    if template is None:
        return None, None
    static = [p for p in template.strip("/").split("/") if p and not p.startswith("{")]
    first_param = template.find("{")
    if first_param >= 0:
        before = [p for p in template[:first_param].strip("/").split("/") if p]
        kind = before[-1] if before else None
    else:
        kind = static[-1] if static else None
    if not params:
        return kind, None
    if len(params) == 1:
        return kind, str(next(iter(params.values())))[:200]
    return kind, ",".join(f"{k}={v}" for k, v in params.items())[:200]


def _body_doc(body: bytes) -> Any:
    if not body:
        return None
    if len(body) > AUDIT_BODY_MAX:
        return {"x_not_recorded": f"{len(body)} bytes"}
    try:
        return json.loads(body)
    except ValueError:
        return {"x_not_recorded": f"{len(body)} bytes, not JSON"}


class AuthMiddleware:
    """Authentication, authorisation by the matrix, and the audit hook (pure ASGI, so
    streamed answers such as server-sent events pass untouched)."""

    def __init__(self, app: ASGIApp, *, fastapi_app: FastAPI, config: AuthConfig) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from northbound.api import _problem

        method = str(scope["method"]).upper()
        template, params = route_template(self.fastapi_app, scope)
        need = decide(method, template or scope["path"], self.config.matrix)
        token, where = _token_from(scope)
        principal = None
        if token is not None:
            principal = await run_in_threadpool(_authenticate, self.config.engine, token)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["principal"] = principal

        request = Request(scope)
        if need != PUBLIC:
            if principal is None:
                detail = ("invalid, expired or revoked credentials" if where is not None
                          else "log in (POST /api/auth/login) or send "
                               "'Authorization: Bearer <token>'")
                response = _problem(request, 401, "Unauthorized", detail)
                response.headers["WWW-Authenticate"] = 'Bearer realm="switchboard"'
                await response(scope, receive, send)
                return
            refusal = None
            if not role_at_least(principal.role, need):
                refusal = (f"{method} {template or scope['path']} needs the {need} role; "
                           f"{principal.name} is {principal.role}")
            elif where == "cookie" and method not in SAFE_METHODS and _cross_origin(scope):
                refusal = "a change with the session cookie from another origin"
            if refusal is not None:
                body = b""
                if method not in SAFE_METHODS:  # for the record, no more than it keeps
                    body, receive = await _buffer(receive, limit=AUDIT_BODY_MAX + 1)
                response = _problem(request, 403, "Forbidden", refusal)
                await response(scope, receive, send)
                await self._audit(scope, principal, method, template, params, body, 403)
                return

        body = b""
        if method not in SAFE_METHODS:
            body, receive = await _buffer(receive)
        status: list[int] = []

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        await self.app(scope, receive, send_status)
        code = status[0] if status else 500
        if method not in SAFE_METHODS and (
                code < 400 or code == 403 or (template == LOGIN_PATH and code in (401, 429))):
            await self._audit(scope, principal, method, template, params, body, code)

    async def _audit(self, scope: Scope, principal: Principal | None, method: str,
                     template: str | None, params: dict[str, Any], body: bytes,
                     code: int) -> None:
        notes: dict[str, Any] = scope.get("state", {}).get("audit", {})
        kind, target_id = _target(template, params)
        client = scope.get("client")
        who = principal.name if principal is not None else notes.get("who", "anonymous")
        fields: dict[str, Any] = {
            "who": str(who), "role": principal.role if principal is not None else None,
            "client": str(client[0]) if client else None,
            "action": f"{method} {template or scope['path']}",
            "target_type": notes.get("target_type", kind),
            "target_id": notes.get("target_id", target_id),
            "before": notes.get("before"), "after": notes.get("after"),
            "request": _body_doc(body), "status_code": code,
            "result": "ok" if code < 400 else ("refused" if code in (401, 403, 429)
                                               else "failed"),
        }

        def write() -> None:
            with Session(self.config.engine) as s:
                audit(s, **fields)

        try:
            await run_in_threadpool(write)
        except Exception:  # the answer is sent: count and log, never lose it silently
            self.config.failures["audit_write_failures"] += 1
            log.exception("audit record not written: %s", fields["action"])


async def _buffer(receive: Receive, limit: int | None = None) -> tuple[bytes, Receive]:
    """Read the request body (its first ``limit`` bytes or more, where given), and a
    ``receive`` that hands on what was read, then the rest."""
    chunks: list[bytes] = []
    pending: list[Message] = []
    size, more = 0, False
    while limit is None or size < limit:
        message = await receive()
        if message["type"] != "http.request":
            pending.append(message)
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        more = bool(message.get("more_body", False))
        if not more:
            break
    else:
        more = True
    body = b"".join(chunks)
    replay: list[Message] = [{"type": "http.request", "body": body, "more_body": more}]
    replay += pending

    async def again() -> Message:
        if replay:
            return replay.pop(0)
        return await receive()

    return body, again


# --------------------------------------------------------------------------- routes


class LoginIn(BaseModel):
    """A name and a password."""

    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class LoginOut(BaseModel):
    """A session: the token (also set as the HttpOnly cookie) and who it is."""

    token: str
    token_type: str = "bearer"  # noqa: S105 - the scheme's name
    expires_at: datetime
    name: str
    role: str


class MeOut(BaseModel):
    """The caller."""

    name: str
    role: str
    kind: str
    expires_at: datetime | None


class UserIn(BaseModel):
    """A new user."""

    name: str = Field(min_length=1, max_length=64)
    role: Role
    password: str = Field(min_length=8, max_length=1024)


class UserPatch(BaseModel):
    """What an admin may change on a user."""

    role: Role | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=8, max_length=1024)


class TokenIn(BaseModel):
    """A new API token for a system."""

    name: str = Field(min_length=1, max_length=64)
    role: Role


class TokenOut(BaseModel):
    """A new token: ``value`` is shown this once and never kept."""

    token: ApiTokenPublic
    value: str


def _config(request: Request) -> AuthConfig:
    config = request.app.state.auth
    assert isinstance(config, AuthConfig)
    return config


def _session(request: Request) -> Iterator[Session]:
    with Session(_config(request).engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(_session)]
auth_router = APIRouter(prefix="/api/auth", tags=["access"])
admin_router = APIRouter(prefix="/api", tags=["access"])


@auth_router.post("/login", response_model=LoginOut,
                  responses=problem_responses(401, 429))
def login(request: Request, body: LoginIn, response: Response, s: SessionDep) -> Any:
    """Log in: the session token comes back in the body and as the HttpOnly cookie
    ``switchboard_session``. An unknown name, a wrong password and a disabled user get
    the same answer. Repeated failures lock the name (and, more slowly, the address)
    for a while: 429 with Retry-After, the password not checked."""
    from northbound.api import _problem

    config = _config(request)
    client = request.client.host if request.client else None
    note_audit(request, who=body.name, target_type="session")
    wait = config.throttle.retry_after(body.name, client)
    if wait:
        config.failures["login_throttled"] += 1
        refused = _problem(request, 429, TITLES[429],
                           f"too many failed logins: try again in {wait} s")
        refused.headers["Retry-After"] = str(wait)
        return refused
    user = verify_password(s, body.name, body.password)
    if user is None:
        config.failures["login_failures"] += 1
        config.throttle.failed(body.name, client)
        return _problem(request, 401, "Unauthorized", "wrong name or password")
    config.throttle.succeeded(user.name)
    principal, token = create_session(s, user.name, ttl_s=config.session_ttl_s,
                                      client=client)
    assert principal.expires_at is not None
    secure = (config.secure_cookie if config.secure_cookie is not None
              else request.url.scheme == "https")
    response.set_cookie(COOKIE, token, max_age=config.session_ttl_s, httponly=True,
                        samesite="strict", secure=secure, path="/")
    note_audit(request, target_id=str(principal.session_id),
               after={"name": user.name, "role": user.role})
    return LoginOut(token=token, expires_at=principal.expires_at, name=user.name,
                    role=user.role)


@auth_router.post("/logout")
def logout(request: Request, response: Response, s: SessionDep) -> dict[str, bool]:
    """End the caller's session (an API token is not ended: revoke it) and drop the
    cookie."""
    token, _ = _token_from(request.scope)
    ended = end_session(s, token) if token is not None else False
    response.delete_cookie(COOKIE, path="/")
    return {"ended": ended}


@auth_router.get("/me", response_model=MeOut)
def me(request: Request) -> MeOut:
    """Who the caller is and what role they have."""
    principal = current_principal(request)
    assert principal is not None  # the matrix admits no anonymous caller here
    return MeOut(name=principal.name, role=principal.role, kind=principal.kind,
                 expires_at=principal.expires_at)


@admin_router.get("/users", response_model=list[UserPublic])
def users(s: SessionDep, response: Response,
          offset: Annotated[int, Query(ge=0, le=MAX_INT, description="rows to skip")] = 0,
          limit: Annotated[int, Query(ge=1, le=1000, description="rows per page")] = 100,
          role: Role | None = None, disabled: bool | None = None) -> list[UserPublic]:
    """Users by name (X-Total-Count has the total); filters: role, disabled."""
    rows = [u for u in list_users(s) if (role is None or u.role == role)
            and (disabled is None or u.disabled == disabled)]
    response.headers["X-Total-Count"] = str(len(rows))
    return rows[offset:offset + limit]


@admin_router.post("/users", response_model=UserPublic, status_code=201)
def add_user(request: Request, body: UserIn, s: SessionDep) -> UserPublic:
    """Add a user."""
    user = create_user(s, body.name, body.role, body.password)
    note_audit(request, target_type="user", target_id=user.name,
               after=user.model_dump(mode="json"))
    return user


@admin_router.patch("/users/{name}", response_model=UserPublic)
def change_user(request: Request, name: str, body: UserPatch, s: SessionDep) -> UserPublic:
    """Change a user's role, password, or disable / enable them."""
    before = get_user(s, name)
    user = before
    if body.role is not None:
        user = set_role(s, name, body.role)
    if body.password is not None:
        user = set_password(s, name, body.password)
    if body.disabled is True:
        user = disable(s, name)
    elif body.disabled is False:
        user = enable(s, name)
    note_audit(request, target_type="user", target_id=name,
               before=before.model_dump(mode="json"), after=user.model_dump(mode="json"))
    return user


@admin_router.get("/tokens", response_model=list[ApiTokenPublic])
def tokens(s: SessionDep, response: Response,
           offset: Annotated[int, Query(ge=0, le=MAX_INT, description="rows to skip")] = 0,
           limit: Annotated[int, Query(ge=1, le=1000, description="rows per page")] = 100,
           role: Role | None = None, revoked: bool | None = None) -> list[ApiTokenPublic]:
    """API tokens, never their values (X-Total-Count has the total); filters: role,
    revoked."""
    rows = [t for t in list_tokens(s) if (role is None or t.role == role)
            and (revoked is None or t.revoked == revoked)]
    response.headers["X-Total-Count"] = str(len(rows))
    return rows[offset:offset + limit]


@admin_router.post("/tokens", response_model=TokenOut, status_code=201)
def add_token(request: Request, body: TokenIn, s: SessionDep) -> TokenOut:
    """A new API token; its value is in this answer only."""
    row, value = create_token(s, body.name, body.role, created_by=current_user(request) or "")
    note_audit(request, target_type="token", target_id=str(row.id),
               after=row.model_dump(mode="json"))
    return TokenOut(token=row, value=value)


@admin_router.delete("/tokens/{token_id}", response_model=ApiTokenPublic)
def revoke_token(request: Request, token_id: RowId, s: SessionDep) -> ApiTokenPublic:
    """Revoke a token: refused from the next request on."""
    row = revoke(s, token_id)
    note_audit(request, target_type="token", after=row.model_dump(mode="json"))
    return row


@admin_router.get("/audit", response_model=list[AuditRecordPublic])
def audit_log(s: SessionDep, response: Response,
              offset: Annotated[int, Query(ge=0, le=MAX_INT, description="rows to skip")] = 0,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100,
              since: Annotated[str | None, Query(description="15m, 1h, 2d or ISO time")]
              = None, who: str | None = None,
              action: Annotated[str | None, Query(description="a part of the action")]
              = None) -> list[AuditRecordPublic]:
    """Audit records, newest first (X-Total-Count has the total)."""
    from topology.queries import parse_since

    total, rows = list_audit(s, since=parse_since(since) if since else None, who=who,
                             action=action, offset=offset, limit=limit)
    response.headers["X-Total-Count"] = str(total)
    return list(rows)


# --------------------------------------------------------------------------- install


def _with_metrics(matrix: Iterable[Rule], metrics_role: Need) -> tuple[Rule, ...]:
    return tuple(replace(r, role=metrics_role) if r.pattern == "/metrics" else r
                 for r in matrix)


def install_auth(app: FastAPI, engine: Engine, *, matrix: Sequence[Rule] = ROLE_MATRIX,
                 metrics_role: Need = PUBLIC, session_ttl_s: int = 12 * 3600,
                 secure_cookie: bool | None = None,
                 throttle: LoginThrottle | None = None) -> FastAPI:
    """Put access control on ``app``: the login routes, the users/tokens/audit routes,
    and the middleware that authenticates, authorises by ``matrix`` and audits. Call it
    once, after every router is included and before the app serves. ``metrics_role``:
    who may read /metrics (``public`` by default). ``secure_cookie``: force the cookie's
    Secure flag (default: set when the request came over https). ``throttle``: the
    failed-login limits (default :class:`LoginThrottle`'s)."""
    if metrics_role not in (PUBLIC, *ROLES):
        raise ValueError(f"metrics_role {metrics_role!r}")
    init_users_db(engine)
    config = AuthConfig(engine=engine, matrix=_with_metrics(matrix, metrics_role),
                        session_ttl_s=session_ttl_s, secure_cookie=secure_cookie,
                        throttle=throttle or LoginThrottle())
    app.state.auth = config
    app.include_router(auth_router)
    app.include_router(admin_router)
    app.add_middleware(AuthMiddleware, fastapi_app=app, config=config)
    app.openapi_schema = None
    schemes = {"bearer": {"type": "http", "scheme": "bearer"},
               "cookie": {"type": "apiKey", "in": "cookie", "name": COOKIE}}
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:

            schema = original()
            schema.setdefault("components", {}).setdefault(
                "securitySchemes", {}).update(schemes)
            schema["security"] = [{"bearer": []}, {"cookie": []}]
            for path, item in schema.get("paths", {}).items():
                for method, op in item.items():
                    if not isinstance(op, dict) or "responses" not in op:
                        continue
                    if decide(method.upper(), path, config.matrix) == PUBLIC:
                        op["security"] = []
                        continue
                    for code, entry in problem_responses(401, 403).items():
                        op["responses"].setdefault(str(code), entry)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
