"""Service parameters are parsed by type before anything renders or connects: injection
attempts are refused with the reason, and no driver is ever created for them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, create_engine

from adapters.base import DriverTarget
from adapters.services import ParameterError, ServiceSpec, load_services, render, validate_params
from agents.fulfilment import FulfilmentAgent, ServiceRequest
from topology.credentials import CredentialProfile, CredentialStore
from topology.inventory import Device, Interface
from topology.settings import get_settings

IFACES = {"eth1", "eth2", "eth3", "eth4", "lo"}


def spec() -> ServiceSpec:
    return load_services()["internet-access"]


def test_internet_access_renders_typed_values() -> None:
    params = validate_params(spec(), {"interface": "eth4", "address": "100.64.12.1/24",
                                      "description": "ACME Ltd site 2",
                                      "customer_prefix": "203.0.113.0/24",
                                      "next_hop": "100.64.12.2"}, interfaces=IFACES)
    out = render(spec(), "frr", params)
    assert out.config == ("interface eth4\n description ACME Ltd site 2\n"
                          " ip address 100.64.12.1/24\nexit\n"
                          "ip route 203.0.113.0/24 100.64.12.2\n")
    assert out.checks == ("interface eth4", " ip address 100.64.12.1/24")


@pytest.mark.parametrize(("params", "reason"), [
    ({"interface": "eth1; reload"}, "not an interface name"),
    ({"interface": "eth9"}, "no interface 'eth9' in the inventory"),
    ({"interface": "eth1\nreload"}, "newline"),
    ({"address": "100.64.12.1"}, "needs its prefix length"),
    ({"address": "100.64.12.0/24"}, "network or broadcast"),
    ({"address": "<config/>"}, "not an IPv4 address"),
    ({"description": "x\nend\nreload"}, "newline"),
    ({"description": "x" * 201}, "longer than 200"),
    ({"description": "<interface xmlns='urn:x'/>\x00"}, "control character"),
    ({"customer_prefix": "203.0.113.1/24", "next_hop": "100.64.12.2"}, "not an IPv4 network"),
    ({"customer_prefix": "203.0.113.0/24"}, "go together"),
    ({"customer_prefix": "203.0.113.0/24", "next_hop": "192.0.2.1"},
     "must be another address on the customer link"),
    ({"vlan": "7"}, "not a parameter of internet-access"),
])
def test_refused_parameters_name_the_reason(params: dict[str, str], reason: str) -> None:
    base = {"interface": "eth4", "address": "100.64.12.1/24", "description": "ok"}
    with pytest.raises(ParameterError) as info:
        validate_params(spec(), {**base, **params}, interfaces=IFACES)
    assert reason in str(info.value)


def test_missing_parameters_are_all_listed() -> None:
    with pytest.raises(ParameterError) as info:
        validate_params(spec(), {}, interfaces=IFACES)
    assert info.value.problems == ["interface: required", "address: required",
                                   "description: required"]


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("SWITCHBOARD_HOME", str(tmp_path))
    eng = create_engine(f"sqlite:///{tmp_path / 'f.db'}")
    from agents.fulfilment import init_fulfilment_db

    init_fulfilment_db(eng)
    CredentialStore(get_settings(str(tmp_path))).save(CredentialProfile(
        name="lab", ssh_username="admin", ssh_password="pw"))  # type: ignore[arg-type]
    with Session(eng) as s:
        d = Device(name="r1", mgmt_address="127.0.0.1", planes="snmp,cli",
                   credential_profile="lab", os_name="FRRouting")
        s.add(d)
        s.flush()
        for name in sorted(IFACES):
            s.add(Interface(device_id=d.id or 0, name=name))
        s.commit()
    yield eng
    eng.dispose()


def test_injection_is_refused_before_any_connection(engine: Engine, tmp_path: Path) -> None:
    made: list[DriverTarget] = []

    def no_driver(target: DriverTarget) -> object:
        made.append(target)
        raise AssertionError("a driver was created for a refused request")

    agent = FulfilmentAgent(engine, store=CredentialStore(get_settings(str(tmp_path))),
                            drivers={"cli": no_driver})  # type: ignore[dict-item]
    for bad in ({"interface": "eth1; reload"},
                {"description": "<config><x/></config>\nend"}):
        params = {"interface": "eth4", "address": "100.64.12.1/24", "description": "ok",
                  **bad}
        with pytest.raises(ParameterError):
            agent.apply([ServiceRequest("internet-access", "r1", params)], who="t")
    with pytest.raises(ParameterError, match="not in the inventory"):
        agent.plan([ServiceRequest("internet-access", "r9", {})])
    with pytest.raises(ParameterError, match="no such service"):
        agent.plan([ServiceRequest("teleport", "r1", {})])
    assert made == []
