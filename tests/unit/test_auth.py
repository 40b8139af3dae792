"""Access control: the role matrix over every route of the app, login and sessions, API
tokens, the audit log with redaction, and no token or password kept in clear."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from agents.fault.agent import FaultAgent
from agents.fault.rules import load_fault_rules
from northbound.api import create_app
from northbound.auth import (
    COOKIE,
    PUBLIC,
    ROLE_MATRIX,
    LoginThrottle,
    app_routes,
    decide,
    install_auth,
    matrix_markdown,
)
from tests.unit.test_fault_agent import engine, link_trap  # noqa: F401 - the fixture
from topology import users
from topology.users import (
    REDACTED,
    ROLES,
    create_token,
    create_user,
    disable,
    list_audit,
    redact,
    revoke,
    role_at_least,
    set_role,
    verify_password,
)

ALARMS = "/tmf-api/alarmManagement/v4"
ACK = {"ackState": "acknowledged", "ackUserId": "olga", "x_note": "known, ticket 7"}


def tokens_for_roles(engine: Engine) -> dict[str, str]:  # noqa: F811
    out: dict[str, str] = {}
    with Session(engine) as s:
        for role in ROLES:
            _, value = create_token(s, f"{role}-bot", role)
            out[role] = value
    return out


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def app(engine: Engine) -> FastAPI:  # noqa: F811
    return install_auth(create_app(engine), engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def tokens(app: FastAPI, engine: Engine) -> dict[str, str]:  # noqa: F811
    return tokens_for_roles(engine)


@pytest.fixture
def alarm_id(engine: Engine) -> int:  # noqa: F811
    FaultAgent(engine, load_fault_rules()).handle_traps([link_trap("r3", 4, up=False)])
    from agents.fault.alarms import AlarmFilter, list_alarms

    with Session(engine) as s:
        alarm = list_alarms(s, AlarmFilter(active=True)).items[0]
    assert alarm.id is not None
    return alarm.id


# --------------------------------------------------------------------------- the matrix


def test_matrix_decisions_by_hand() -> None:
    cases = [
        ("GET", f"{ALARMS}/alarm", "viewer"),
        ("GET", f"{ALARMS}/alarm/{{alarm_id}}", "viewer"),
        ("PATCH", f"{ALARMS}/alarm/{{alarm_id}}", "operator"),
        ("POST", f"{ALARMS}/ackAlarms", "operator"),
        ("POST", f"{ALARMS}/commentAlarms", "operator"),
        ("POST", "/tmf-api/productOrderingManagement/v4/productOrder", "operator"),
        ("POST", "/tmf-api/productOrderingManagement/v4/cancelProductOrder", "operator"),
        ("POST", "/tmf-api/customerManagement/v4/customer", "operator"),
        ("DELETE", "/tmf-api/customerManagement/v4/customer/{customer_id}", "admin"),
        ("POST", "/api/billing/bills/{bill_id}/issue", "admin"),
        ("POST", "/api/config/changes", "admin"),
        ("POST", "/api/config/changes/{change_id}/rollback", "admin"),
        ("GET", "/api/config/changes", "viewer"),
        ("GET", "/api/users", "admin"),
        ("POST", "/api/tokens", "admin"),
        ("PATCH", "/tmf-api/productCatalogManagement/v4/productOffering/{id}", "admin"),
        ("POST", "/api/billing/runs", "admin"),
        ("GET", "/metrics", PUBLIC),
        ("POST", "/api/auth/login", PUBLIC),
        ("GET", "/api/auth/login", "viewer"),  # only the POST is public
        ("DELETE", f"{ALARMS}/alarm/{{alarm_id}}", "admin"),  # not listed: deny by default
        ("GET", "/somewhere/else", "admin"),
    ]
    for method, template, need in cases:
        assert decide(method, template) == need, (method, template)
    assert role_at_least("admin", "operator") and role_at_least("operator", "operator")
    assert not role_at_least("viewer", "operator") and not role_at_least("root", "viewer")


class _Reached:
    """Innermost middleware that answers 299 instead of letting the route run: the sweep
    checks who gets through, with no side effects and no 422 hiding a decision."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"reached"})


def _concrete(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", template)


def test_role_matrix_operation_by_operation(engine: Engine) -> None:  # noqa: F811
    app = install_auth(create_app(engine), engine)
    tokens = tokens_for_roles(engine)
    app.user_middleware.append(Middleware(_Reached))  # inside the auth middleware
    matrix = app.state.auth.matrix
    client = TestClient(app)
    checked = 0
    routes = app_routes(app)
    assert {"/api/devices", f"{ALARMS}/alarm/{{alarm_id}}", "/api/config/changes",
            "/api/users/{name}", "/metrics", "/docs"} <= {r.path for r in routes}
    for route in routes:
        for method in sorted(route.methods or ("GET", "POST", "DELETE")):
            need = decide(method, route.path, matrix)
            path = _concrete(route.path)
            anonymous = client.request(method, path)
            if need == PUBLIC:
                assert anonymous.status_code == 299, (method, route.path)
                continue
            assert anonymous.status_code == 401, (method, route.path, anonymous.text)
            assert anonymous.headers["content-type"] == "application/problem+json"
            assert anonymous.headers["www-authenticate"].startswith("Bearer")
            for role, token in tokens.items():
                answer = client.request(method, path, headers=bearer(token))
                expected = 299 if role_at_least(role, need) else 403
                assert answer.status_code == expected, (role, method, route.path, need)
                if expected == 403:
                    assert answer.headers["content-type"] == "application/problem+json"
                    assert answer.json()["status"] == 403
                    assert f"needs the {need} role" in answer.json()["detail"]
                checked += 1
    assert checked > 80  # every route and method, three roles


def test_every_route_is_listed_in_the_matrix(app: FastAPI) -> None:
    """Deny-by-default keeps an unlisted route safe, but each route's rule should be a
    decision someone wrote down (and documented)."""
    unlisted = []
    for route in app_routes(app):
        for method in route.methods or ("*",):
            if not any(rule.matches(method, route.path) for rule in ROLE_MATRIX):
                unlisted.append(f"{method} {route.path}")
    assert unlisted == []


def test_key_cases_on_the_real_routes(client: TestClient, tokens: dict[str, str],
                                      alarm_id: int) -> None:
    # viewer can list alarms, cannot acknowledge one
    listed = client.get(f"{ALARMS}/alarm", headers=bearer(tokens["viewer"]))
    assert listed.status_code == 200 and listed.json()
    refused = client.patch(f"{ALARMS}/alarm/{alarm_id}", json=ACK,
                           headers=bearer(tokens["viewer"]))
    assert refused.status_code == 403
    assert refused.json()["detail"].startswith(
        f"PATCH {ALARMS}/alarm/{{alarm_id}} needs the operator role")
    assert client.get(f"{ALARMS}/alarm/{alarm_id}", headers=bearer(tokens["viewer"])
                      ).json()["ackState"] == "unacknowledged"  # nothing happened
    # operator can
    done = client.patch(f"{ALARMS}/alarm/{alarm_id}", json=ACK,
                        headers=bearer(tokens["operator"]))
    assert done.status_code == 200, done.text
    assert done.json()["ackState"] == "acknowledged"
    # the acknowledgement is the logged-in one's, not whoever the body names
    assert done.json()["ackUserId"] == "operator-bot"
    # operator cannot push config outside an order; admin gets through to validation
    body = {"service": "x", "device": "r1", "who": "olga"}
    assert client.post("/api/config/changes", json=body,
                       headers=bearer(tokens["operator"])).status_code == 403
    assert client.post("/api/config/changes/7/rollback", json={"who": "olga"},
                       headers=bearer(tokens["operator"])).status_code == 403
    assert client.post("/api/config/changes", json={},
                       headers=bearer(tokens["admin"])).status_code == 422
    # users are admin business, reads included
    assert client.get("/api/users", headers=bearer(tokens["operator"])).status_code == 403
    assert client.get("/api/users", headers=bearer(tokens["admin"])).status_code == 200
    # a path no route has: still judged (deny by default), then 404 for the admin
    assert client.post("/api/nope", headers=bearer(tokens["operator"])).status_code == 403
    assert client.post("/api/nope", headers=bearer(tokens["admin"])).status_code == 404
    # public ones
    assert client.get("/metrics").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    # no or bad credentials
    assert client.get(f"{ALARMS}/alarm").status_code == 401
    bad = client.get(f"{ALARMS}/alarm", headers=bearer("sbt_not-a-token"))
    assert bad.status_code == 401 and "invalid" in bad.json()["detail"]
    basic = client.get(f"{ALARMS}/alarm", headers={"Authorization": "Basic YTpi"})
    assert basic.status_code == 401


def test_metrics_can_need_a_role(engine: Engine) -> None:  # noqa: F811
    app = install_auth(create_app(engine), engine, metrics_role="viewer")
    tokens = tokens_for_roles(engine)
    client = TestClient(app)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=bearer(tokens["viewer"])).status_code == 200


def test_openapi_declares_the_schemes(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "cookie"}
    assert "/api/auth/login" in doc["paths"]


# --------------------------------------------------------------------------- audit


def test_audit_of_a_refusal_and_a_change(client: TestClient, tokens: dict[str, str],
                                         alarm_id: int, engine: Engine) -> None:  # noqa: F811
    client.patch(f"{ALARMS}/alarm/{alarm_id}", json=ACK, headers=bearer(tokens["viewer"]))
    client.patch(f"{ALARMS}/alarm/{alarm_id}", json=ACK, headers=bearer(tokens["operator"]))
    client.get(f"{ALARMS}/alarm", headers=bearer(tokens["viewer"]))  # reads: no record
    with Session(engine) as s:
        total, rows = list_audit(s)
    assert total == 2
    done, refused = rows  # newest first
    action = f"PATCH {ALARMS}/alarm/{{alarm_id}}"
    assert (refused.who, refused.role, refused.action, refused.result,
            refused.status_code) == ("viewer-bot", "viewer", action, "refused", 403)
    assert (refused.target_type, refused.target_id) == ("alarm", str(alarm_id))
    assert refused.client == "testclient"
    assert refused.request == ACK
    assert (done.who, done.role, done.result, done.status_code) == (
        "operator-bot", "operator", "ok", 200)
    assert done.target_id == str(alarm_id)
    # what the acknowledgement changed, before and after
    was, now = done.before[str(alarm_id)], done.after[str(alarm_id)]
    assert (was["ackState"], was["ackUser"]) == ("unacknowledged", None)
    assert (now["ackState"], now["ackUser"], now["ackNote"]) == (
        "acknowledged", "operator-bot", "known, ticket 7")


def test_audit_redacts_secrets(client: TestClient, tokens: dict[str, str],
                               engine: Engine) -> None:  # noqa: F811
    made = client.post("/api/users", headers=bearer(tokens["admin"]), json={
        "name": "ivan", "role": "viewer", "password": "hunter2-s3cret"})
    assert made.status_code == 201, made.text
    assert "hunter2" not in made.text and "argon2" not in made.text
    changed = client.patch("/api/users/ivan", headers=bearer(tokens["admin"]),
                           json={"role": "operator"})
    assert changed.json()["role"] == "operator"
    with Session(engine) as s:
        _, rows = list_audit(s, action="/api/users")
    patch, post = rows
    assert post.request == {"name": "ivan", "role": "viewer", "password": REDACTED}
    assert post.after["name"] == "ivan" and "password_hash" not in post.after
    assert (patch.target_type, patch.target_id) == ("user", "ivan")
    assert (patch.before["role"], patch.after["role"]) == ("viewer", "operator")
    assert redact({"params": {"snmp_community": "c", "vlan": "10"},
                   "items": [{"auth_key": "k", "priv-key": "p", "who": "me"}],
                   "apiToken": "t", "secret": None}) == {
        "params": {"snmp_community": REDACTED, "vlan": "10"},
        "items": [{"auth_key": REDACTED, "priv-key": REDACTED, "who": "me"}],
        "apiToken": REDACTED, "secret": None}
    listed = client.get("/api/audit", headers=bearer(tokens["admin"]))
    assert listed.headers["X-Total-Count"] == "2"
    assert "hunter2" not in listed.text
    # a refused request's large body is not kept, only its size
    big = {"service": "x", "device": "r1", "who": "me", "why": "y" * 100_000}
    assert client.post("/api/config/changes", json=big,
                       headers=bearer(tokens["viewer"])).status_code == 403
    with Session(engine) as s:
        _, (refused, *_) = list_audit(s)
    assert refused.status_code == 403 and "x_not_recorded" in refused.request


# --------------------------------------------------------------------------- login


def test_login_cookie_me_logout(client: TestClient, engine: Engine,  # noqa: F811
                                alarm_id: int) -> None:
    with Session(engine) as s:
        create_user(s, "olga", "operator", "correct-horse-1")
    wrong = client.post("/api/auth/login", json={"name": "olga", "password": "nope-nope"})
    unknown = client.post("/api/auth/login", json={"name": "nobody", "password": "x" * 9})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"] == "wrong name or password"
    assert wrong.headers["content-type"] == "application/problem+json"
    assert COOKIE not in client.cookies

    ok = client.post("/api/auth/login", json={"name": "olga", "password": "correct-horse-1"})
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["token"].startswith("sbs_") and body["role"] == "operator"
    set_cookie = ok.headers["set-cookie"]
    assert f"{COOKIE}={body['token']}" in set_cookie
    assert "HttpOnly" in set_cookie and "samesite=strict" in set_cookie.lower()
    # the cookie alone authenticates
    me = client.get("/api/auth/me")
    assert me.json() == {"name": "olga", "role": "operator", "kind": "session",
                         "expires_at": me.json()["expires_at"]}
    assert client.patch(f"{ALARMS}/alarm/{alarm_id}", json=ACK).status_code == 200
    # a cookie-borne change from another origin is refused
    assert client.post(f"{ALARMS}/commentAlarms", headers={"Origin": "http://evil.example"},
                       json={"alarmPattern": [{"id": str(alarm_id)}],
                             "comment": {"comment": "x", "userId": "o"}}
                       ).status_code == 403
    # so does the bearer form of the session token, without the cookie
    bare = TestClient(client.app)
    assert bare.get("/api/auth/me", headers=bearer(body["token"])).status_code == 200
    # a role change applies to the open session
    with Session(engine) as s:
        set_role(s, "olga", "viewer")
    assert client.get("/api/auth/me").json()["role"] == "viewer"
    assert client.patch(f"{ALARMS}/alarm/{alarm_id}", json=ACK).status_code == 403

    out = client.post("/api/auth/logout")
    assert out.json() == {"ended": True}
    assert client.get("/api/auth/me").status_code == 401
    assert bare.get("/api/auth/me", headers=bearer(body["token"])).status_code == 401
    with Session(engine) as s:
        _, rows = list_audit(s, action="/api/auth/login")
    assert [(r.who, r.result) for r in rows] == [
        ("olga", "ok"), ("nobody", "refused"), ("olga", "refused")]
    assert all(r.request["password"] == REDACTED for r in rows)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failed_logins_lock_the_name_without_checking_the_password(
        engine: Engine) -> None:  # noqa: F811
    clock = FakeClock()
    app = install_auth(create_app(engine), engine,
                       throttle=LoginThrottle(per_name=3, per_client=10, lock_s=30,
                                              clock=clock))
    client = TestClient(app)
    with Session(engine) as s:
        create_user(s, "olga", "operator", "correct-horse-1")
        create_user(s, "ivan", "viewer", "correct-horse-9")

    def login(name: str, password: str) -> int:
        return client.post("/api/auth/login",
                           json={"name": name, "password": password}).status_code

    assert [login("olga", f"guess-{i:04}") for i in range(3)] == [401, 401, 401]
    locked = client.post("/api/auth/login", json={"name": "OLGA ", "password":
                                                  "correct-horse-1"})
    assert locked.status_code == 429  # the right password is not even looked at
    assert locked.headers["Retry-After"] == "30"
    assert locked.headers["content-type"] == "application/problem+json"
    assert "try again in 30 s" in locked.json()["detail"]
    assert COOKIE not in client.cookies
    assert login("ivan", "correct-horse-9") == 200  # another name is not locked
    clock.now += 31
    assert login("olga", "correct-horse-1") == 200
    # the success forgot olga's failures: three more are needed for the next lock,
    # and it lasts twice as long only if it follows a lock within the window
    assert [login("olga", "nope-nope") for _ in range(3)] == [401, 401, 401]
    assert login("olga", "correct-horse-1") == 429
    with Session(engine) as s:
        _, rows = list_audit(s, action="/api/auth/login")
    assert [r.status_code for r in rows].count(429) == 2
    assert all(r.result == "refused" for r in rows if r.status_code == 429)
    metrics = client.get("/metrics").text
    assert "switchboard_auth_login_throttled_total 2.0" in metrics
    assert "switchboard_auth_login_failures_total 6.0" in metrics


def test_the_throttle_locks_an_address_trying_many_names_and_doubles_repeat_locks() -> None:
    clock = FakeClock()
    t = LoginThrottle(per_name=100, per_client=4, window_s=600, lock_s=10, max_lock_s=25,
                      clock=clock)
    for i in range(4):
        assert t.retry_after(f"user{i}", "192.0.2.7") == 0
        t.failed(f"user{i}", "192.0.2.7")
    assert t.retry_after("anyone", "192.0.2.7") == 10
    assert t.retry_after("anyone", "192.0.2.8") == 0  # another address is not locked
    t.succeeded("user0")  # a success for a name does not forgive the address
    assert t.retry_after("user0", "192.0.2.7") == 10
    clock.now += 10
    assert t.retry_after("anyone", "192.0.2.7") == 0
    for i in range(4):
        t.failed(f"next{i}", "192.0.2.7")
    assert t.retry_after("anyone", "192.0.2.7") == 20  # the second lock doubles
    clock.now += 20
    for i in range(4):
        t.failed(f"more{i}", "192.0.2.7")
    assert t.retry_after("anyone", "192.0.2.7") == 25  # capped
    clock.now += 25 + 600  # a window after its end, the lock is forgotten: back to 10 s
    for i in range(4):
        t.failed(f"late{i}", "192.0.2.7")
    assert t.retry_after("anyone", "192.0.2.7") == 10
    clock.now += 10 + 600  # old failures and locks do not pile up in memory
    t.failed("x", None)
    assert set(t._failed) == {("name", "x")} and not t._locks
    with pytest.raises(ValueError):
        LoginThrottle(per_name=0)


def test_disabled_user_is_refused(client: TestClient, engine: Engine) -> None:  # noqa: F811
    with Session(engine) as s:
        create_user(s, "petr", "admin", "correct-horse-2")
    token = client.post("/api/auth/login", json={"name": "petr", "password":
                                                 "correct-horse-2"}).json()["token"]
    assert client.get("/api/users", headers=bearer(token)).status_code == 200
    with Session(engine) as s:
        disable(s, "petr")
        assert verify_password(s, "petr", "correct-horse-2") is None
    assert client.get("/api/users", headers=bearer(token)).status_code == 401
    again = client.post("/api/auth/login", json={"name": "petr", "password": "correct-horse-2"})
    assert again.status_code == 401


def test_revoked_token_is_refused(client: TestClient, engine: Engine) -> None:  # noqa: F811
    with Session(engine) as s:
        row, value = create_token(s, "nms", "viewer")
    assert client.get(f"{ALARMS}/alarm", headers=bearer(value)).status_code == 200
    with Session(engine) as s:
        assert revoke(s, row.id).revoked
    assert client.get(f"{ALARMS}/alarm", headers=bearer(value)).status_code == 401


def test_tokens_and_passwords_stored_only_hashed(client: TestClient, engine: Engine,  # noqa: F811
                                                 tmp_path: Path) -> None:
    with Session(engine) as s:
        create_user(s, "olga", "operator", "correct-horse-3")
    made = client.post("/api/auth/login", json={"name": "olga", "password": "correct-horse-3"})
    session_token = made.json()["token"]
    with Session(engine) as s:
        _, api_token = create_token(s, "nms", "viewer")
    assert client.get("/api/auth/me", headers=bearer(api_token)).status_code == 200
    engine.dispose()
    files = [p for p in tmp_path.iterdir() if p.name.startswith("fault.db")]
    assert files
    data = b"".join(p.read_bytes() for p in files)
    import hashlib

    assert hashlib.sha256(api_token.encode()).hexdigest().encode() in data  # it is there
    for secret in (api_token, session_token, "correct-horse-3"):
        assert secret.encode() not in data
        assert secret[4:].encode() not in data


def test_unknown_user_costs_one_password_check(monkeypatch: pytest.MonkeyPatch,
                                               engine: Engine) -> None:  # noqa: F811
    calls: list[str] = []
    real = users._hasher

    class Spy:
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def verify(self, stored: str, password: str) -> bool:
            calls.append(stored)
            return real.verify(stored, password)

    monkeypatch.setattr(users, "_hasher", Spy())
    users.init_users_db(engine)
    with Session(engine) as s:
        create_user(s, "olga", "operator", "correct-horse-4")
        assert verify_password(s, "nobody", "correct-horse-4") is None
        assert verify_password(s, "olga", "wrong-horse-4") is None
        assert verify_password(s, "olga", "correct-horse-4") is not None
    assert len(calls) == 3 and calls[0].startswith("$argon2id$")


def test_user_rules(engine: Engine) -> None:  # noqa: F811
    users.init_users_db(engine)
    with Session(engine) as s:
        create_user(s, "olga", "operator", "correct-horse-5")
        for bad in [("olga", "viewer", "another-pw-1"), ("x y", "viewer", "another-pw-1"),
                    ("anna", "root", "another-pw-1"), ("anna", "viewer", "short")]:
            with pytest.raises(users.UserError) as info:
                create_user(s, *bad)
            assert "another-pw-1" not in str(info.value)
        with pytest.raises(users.UserError):
            set_role(s, "nobody", "admin")


# --------------------------------------------------------------------------- docs


def test_docs_table_is_the_matrix() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "access.md").read_text()
    start = doc.index("<!-- role-matrix:start -->\n") + len("<!-- role-matrix:start -->\n")
    end = doc.index("<!-- role-matrix:end -->")
    assert doc[start:end] == matrix_markdown(), (
        "docs/access.md's table differs from ROLE_MATRIX: regenerate it with "
        "python -c 'from northbound.auth import matrix_markdown; print(matrix_markdown())'")
