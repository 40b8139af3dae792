"""Schemathesis against the app's own OpenAPI document: for every operation, generated
requests (valid and invalid) never get a 5xx, and every answer is one the document
describes (status, media type, body schema).

The app is ``create_app`` with access control installed, its credential profiles in a
temporary directory, over a temporary SQLite database holding a little inventory (three
routers in a triangle, an alarm), a BSS (a customer, an account, an offering) and an admin
token sent with every request, so routes are reached rather than refused with 401.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine
from sqlmodel import Session

from agents.fault.agent import FaultAgent
from agents.fault.rules import load_fault_rules
from collectors.ber import VarBind
from collectors.traps import Trap
from northbound.api import create_app
from northbound.auth import install_auth
from tests.unit.bss_factory import seed_account, seed_offering
from topology.credentials import CredentialStore
from topology.db import get_engine
from topology.inventory import Device, Interface, IpAddress, Link
from topology.settings import get_settings
from topology.users import create_token

LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
MGMT = {"r1": "172.20.20.11", "r2": "172.20.20.12", "r3": "172.20.20.13"}
LINKS = [("r1:eth1", "r2:eth1"), ("r1:eth2", "r3:eth1"), ("r2:eth2", "r3:eth2")]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]

# Operations that would reach the network, left out on purpose:
EXCLUDED = [
    ("POST", "/api/config/plans"),  # reads the device's running config (SSH/NETCONF)
    ("POST", "/api/config/changes"),  # pushes config to devices
    ("POST", "/api/config/changes/{change_id}/rollback"),  # pushes config to devices
    ("POST", "/api/discovery/runs"),  # probes addresses (loopback is in scope) over SNMP
    ("GET", "/api/alarms/events"),  # a server-sent event stream: it never ends by itself
]


def seed(engine: Engine) -> None:
    """Three routers in a triangle with addresses, one alarm, a customer and an offer."""
    with Session(engine) as s:
        ifaces: dict[str, Interface] = {}
        for name, mgmt in MGMT.items():
            d = Device(name=name, sys_name=name, mgmt_address=mgmt, role="router",
                       credential_profile="lab", planes="snmp")
            s.add(d)
            s.flush()
            for index in (1, 2, 3):
                itf = Interface(device_id=d.id or 0, if_index=index + 1, name=f"eth{index}")
                s.add(itf)
                s.flush()
                ifaces[f"{name}:eth{index}"] = itf
        for n, (a, b) in enumerate(LINKS):
            s.add(Link(a_interface_id=ifaces[a].id or 0, b_interface_id=ifaces[b].id or 0,
                       confirmed=True))
            s.add(IpAddress(device_id=ifaces[a].device_id, interface_id=ifaces[a].id,
                            address=f"10.0.{n}.1", prefix_length=24))
        s.commit()
    FaultAgent(engine, load_fault_rules()).handle_traps([Trap(
        MGMT["r1"], 40000, "v2c", "trap", "lab", LINK_DOWN, 100,
        (VarBind("1.3.6.1.2.1.2.2.1.1.2", 2, "Integer32"),
         VarBind("1.3.6.1.2.1.2.2.1.7.2", 2, "Integer32"),
         VarBind("1.3.6.1.2.1.2.2.1.8.2", 2, "Integer32")), received_at=time.time())])
    seed_account(engine)
    seed_offering(engine, "OFF-1")


class _NoDevices:
    """The order saga's fulfilment agent: refuses at once instead of reaching a device."""

    def __getattr__(self, name: str) -> Any:
        from topology.errors import ConfigPushError

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise ConfigPushError("no devices in this test")

        return refuse


def _build() -> tuple[FastAPI, Engine, dict[str, str]]:
    """The app over a fresh database (schemathesis reads the document when the module
    loads, so the app is made here, once)."""
    tmp = Path(tempfile.mkdtemp(prefix="sb-schemathesis-"))
    eng = get_engine(f"sqlite:///{tmp / 'api.db'}")
    built = install_auth(create_app(eng), eng)
    # the profiles POST /api/credentials writes go to this temporary home, never a real one
    built.state.credentials = CredentialStore(get_settings(tmp / "home"),
                                              key_file=tmp / "credentials.key")
    built.state.order_agent = _NoDevices()
    built.state.config_reader = lambda device: ""  # the assurance report reads no router
    seed(eng)
    with Session(eng) as s:
        _, value = create_token(s, "schemathesis", "admin")
    return built, eng, {"Authorization": f"Bearer {value}"}


APP, ENGINE, ADMIN = _build()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
for _method, _path in EXCLUDED:
    schema = schema.exclude(method=_method, path=_path)


@pytest.fixture(autouse=True, scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Settings and credential profiles of this module's own (none)."""
    path = tmp_path_factory.mktemp("home")
    old = os.environ.get("SWITCHBOARD_HOME")
    os.environ["SWITCHBOARD_HOME"] = str(path)
    yield path
    if old is None:
        os.environ.pop("SWITCHBOARD_HOME", None)
    else:
        os.environ["SWITCHBOARD_HOME"] = old


@schema.parametrize()
@settings(max_examples=12, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_error_and_every_answer_in_the_schema(case: Any) -> None:
    case.call_and_validate(headers=ADMIN, checks=CHECKS)


def test_the_excluded_operations_exist() -> None:
    """An exclusion that names no operation any more would hide nothing: keep the list
    true."""
    paths = APP.openapi()["paths"]
    for method, path in EXCLUDED:
        assert method.lower() in paths.get(path, {}), (method, path)


def test_every_error_answer_is_a_documented_problem() -> None:
    doc = APP.openapi()
    assert "Problem" in doc["components"]["schemas"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for code, answer in op["responses"].items():
                if code.startswith(("4", "5")):
                    assert list(answer["content"]) == ["application/problem+json"], (
                        method, path, code)
            params = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
            if method == "get" and {"offset", "limit"} <= params:
                ok = op["responses"]["200"]
                assert "X-Total-Count" in ok.get("headers", {}), (method, path)
