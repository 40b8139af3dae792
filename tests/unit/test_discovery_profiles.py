"""The credential profile that worked for a device is tried first on the next run."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from agents.discovery.agent import _Prober, _remembered_profiles
from collectors.snmp import SnmpClient
from topology.credentials import CredentialProfile
from topology.db import get_engine, init_db
from topology.inventory import Device, IpAddress
from topology.scope import DiscoverySettings


def profile(name: str) -> CredentialProfile:
    return CredentialProfile.model_validate({"name": name, "snmp_community": f"c-{name}"})


def test_remembered_profile_goes_first_and_the_rest_keep_their_order() -> None:
    prober = _Prober([profile("a"), profile("b"), profile("c")], DiscoverySettings(),
                     SnmpClient(), {"10.0.0.1": "c"})
    assert [p.name for p in prober.order("10.0.0.1")] == ["c", "a", "b"]
    assert [p.name for p in prober.order("10.0.0.2")] == ["a", "b", "c"]


def test_remembered_profiles_cover_mgmt_and_every_known_address(tmp_path: Path) -> None:
    engine = get_engine(f"sqlite:///{tmp_path}/inv.db")
    init_db(engine)
    with Session(engine) as session:
        dev = Device(name="r1", mgmt_address="10.0.0.1", credential_profile="core")
        other = Device(name="sw1", mgmt_address="10.0.0.9")  # nothing worked yet
        session.add(dev)
        session.add(other)
        session.commit()
        assert dev.id is not None and other.id is not None
        session.add(IpAddress(device_id=dev.id, address="10.255.0.1", prefix_length=32))
        session.add(IpAddress(device_id=other.id, address="10.255.0.9", prefix_length=32))
        session.commit()
        assert _remembered_profiles(session) == {"10.0.0.1": "core", "10.255.0.1": "core"}
