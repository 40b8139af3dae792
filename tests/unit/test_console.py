"""The web console's files: served publicly at /console/ (they hold no data), ``/``
redirects there, the JavaScript never parses data as markup, and every API path it calls
is a route of the app (a renamed route breaks this test, not the page)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from northbound.api import create_app
from northbound.auth import PUBLIC, app_routes, decide, install_auth
from northbound.console import STATIC_DIR
from tests.unit.test_fault_agent import engine  # noqa: F401 - the fixture

# What would parse text as markup or code: none of these may appear in the console's
# own scripts (vendored libraries, if any, live under static/vendor/ and are not ours).
MARKUP_SINKS = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                "DOMParser", "createContextualFragment", "eval(", "new Function",
                "srcdoc", "setHTMLUnsafe")


def console_scripts() -> list[Path]:
    return sorted(p for p in STATIC_DIR.rglob("*.js") if "vendor" not in p.parts)


@pytest.fixture
def app(engine: Engine) -> FastAPI:  # noqa: F811
    return install_auth(create_app(engine), engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def test_console_files_are_public(client: TestClient) -> None:
    page = client.get("/console/")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    # the page refers to its script and style relatively; both are served, publicly
    for name in re.findall(r'(?:src|href)="([a-z]+\.(?:js|css))"', page.text):
        asset = client.get(f"/console/{name}")
        assert asset.status_code == 200, name
        assert asset.text == (STATIC_DIR / name).read_text()
    assert client.get("/console/console.js").headers["content-type"].startswith(
        "text/javascript")
    # ... while the data behind it is not
    assert client.get("/api/devices").status_code == 401
    assert client.get("/tmf-api/alarmManagement/v4/alarm").status_code == 401


def test_root_and_bare_console_redirect(client: TestClient) -> None:
    for path in ("/", "/console"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 307, path
        assert answer.headers["location"] == "/console/"
    assert client.get("/").url.path == "/console/"


def test_only_files_under_static_are_served(client: TestClient) -> None:
    missing = client.get("/console/nothing-here.js")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    for sneaky in ("/console/..%2fconsole.py", "/console/%2e%2e/console.py",
                   "/console/..%2f..%2fauth.py", "/console/%2fetc%2fpasswd"):
        answer = client.get(sneaky)
        assert answer.status_code in (401, 404), sneaky
        assert "mount_console" not in answer.text and "root:" not in answer.text


def test_console_routes_are_public_reads_only() -> None:
    assert decide("GET", "/") == PUBLIC
    assert decide("GET", "/console/{path:path}") == PUBLIC
    assert decide("HEAD", "/console") == PUBLIC
    assert decide("POST", "/console/{path:path}") == "admin"  # nothing to write there


def test_console_routes_stay_out_of_the_api_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p == "/" or p.startswith("/console")]


def test_scripts_never_parse_data_as_markup() -> None:
    scripts = console_scripts()
    assert scripts, "no console script found"
    for script in scripts:
        text = script.read_text()
        found = [sink for sink in MARKUP_SINKS if sink in text]
        assert found == [], f"{script.name} uses {found}: build nodes with textContent"
    html = (STATIC_DIR / "index.html").read_text()
    assert "<script>" not in html and "onclick=" not in html  # CSP: no inline code


def _normalise(path: str) -> str:
    """A path as the console writes it, in the form of a route template: ``${...}``
    filling a segment is a parameter; any other ``${...}`` is the query string."""
    out: list[str] = []
    i = 0
    while i < len(path):
        if path.startswith("${", i):
            depth, j = 1, i + 2
            while j < len(path) and depth:
                depth += {"{": 1, "}": -1}.get(path[j], 0)
                j += 1
            out.append("{}" if out and out[-1].endswith("/") else "")
            i = j
        else:
            out.append(path[i])
            i += 1
    return "".join(out).split("?", 1)[0]


def _template(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def console_api_paths() -> set[str]:
    paths: set[str] = set()
    for script in console_scripts():
        text = script.read_text()
        for quoted in re.findall(r"'(/(?:api|tmf-api)/[^']*)'|`(/(?:api|tmf-api)/[^`]*)`",
                                 text):
            paths.add(_normalise(quoted[0] or quoted[1]))
        # a path put together from pieces would dodge the check: refuse it
        assert not re.search(r"['`]/(?:api|tmf-api)/[^'`]*['`]\s*\+", text), script.name
    return paths


def test_every_api_path_the_console_calls_is_a_route(app: FastAPI) -> None:
    routes = {_template(r.path) for r in app_routes(app)}
    paths = console_api_paths()
    # the parser found what the pages need (an empty set would pass vacuously)
    assert {"/api/auth/login", "/api/auth/me", "/api/alarms/events",
            "/tmf-api/alarmManagement/v4/alarm", "/tmf-api/alarmManagement/v4/alarm/{}",
            "/api/devices", "/api/links", "/api/perf/interfaces/{}/{}",
            "/tmf-api/productOrderingManagement/v4/productOrder/{}",
            "/tmf-api/customerBillManagement/v4/customerBill/{}/html"} <= paths
    unknown = sorted(p for p in paths if p not in routes)
    assert unknown == [], f"the console calls paths the app does not serve: {unknown}"


def test_normalise_reads_template_literals() -> None:
    assert _normalise("/api/perf/interfaces/${enc(dev)}/${enc(ifname)}${qs({ since })}") \
        == "/api/perf/interfaces/{}/{}"
    assert _normalise("/tmf-api/x/v4/thing${qs(q)}") == "/tmf-api/x/v4/thing"
    assert _normalise("/api/devices?limit=1000") == "/api/devices"
    assert _template("/api/devices/{name}") == "/api/devices/{}"
