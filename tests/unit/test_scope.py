"""Unit tests for topology.scope: the allowed ranges, settings, target expansion."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from topology.errors import ConfigError, ScopeError
from topology.scope import (
    ALLOWED_ENV,
    MAX_TARGETS,
    DiscoverySettings,
    Scope,
    addresses,
    expand_targets,
    load_discovery_settings,
)
from topology.settings import get_settings


def nets(*texts: str) -> list[IPv4Network]:
    return [IPv4Network(t) for t in texts]


@pytest.fixture(autouse=True)
def _no_env_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOWED_ENV, raising=False)


def home_with(tmp_path: Path, text: str) -> Path:
    (tmp_path / "settings.yaml").write_text(text)
    return tmp_path


# --------------------------------------------------------------------------- Scope.check


def test_check_refuses_exactly_the_outside_targets() -> None:
    scope = Scope.build(DiscoverySettings(allowed=tuple(nets("10.0.0.0/24", "192.168.0.0/16"))))
    targets = nets("10.0.0.0/24", "10.0.1.0/24", "192.168.7.0/24", "8.8.8.8/32",
                   "10.0.0.128/25")
    with pytest.raises(ScopeError) as info:
        scope.check(targets)
    assert info.value.targets == ["10.0.1.0/24", "8.8.8.8/32"]
    message = str(info.value)
    refused = message.split("(allowed:")[0]
    assert refused == "outside the ranges discovery may probe: 10.0.1.0/24, 8.8.8.8/32 "
    for inside in ("10.0.0.0/24", "192.168.7.0/24", "10.0.0.128/25"):
        assert inside not in refused
    assert "allowed: 127.0.0.0/8, 10.0.0.0/24, 192.168.0.0/16" in message


def test_check_accepts_subnets_of_allowed_ranges() -> None:
    scope = Scope.build(DiscoverySettings(allowed=tuple(nets("10.0.0.0/16"))))
    scope.check(nets("10.0.0.0/16", "10.0.5.0/24", "10.0.255.252/30", "10.0.3.7/32"))
    scope.check([])


def test_wider_target_refused_when_only_a_part_is_allowed() -> None:
    scope = Scope.build(DiscoverySettings(allowed=tuple(nets("10.1.2.0/24"))))
    scope.check(nets("10.1.2.0/24"))
    with pytest.raises(ScopeError) as info:
        scope.check(nets("10.1.0.0/16"))
    assert info.value.targets == ["10.1.0.0/16"]
    # two allowed halves do not make the whole either: each target must fit in one range
    halves = Scope.build(DiscoverySettings(allowed=tuple(nets("10.2.0.0/25", "10.2.0.128/25"))))
    with pytest.raises(ScopeError):
        halves.check(nets("10.2.0.0/24"))


def test_loopback_always_allowed_and_nothing_else_by_default() -> None:
    scope = Scope.build(DiscoverySettings())
    scope.check(nets("127.0.0.1/32", "127.0.0.0/8", "127.10.0.0/16"))
    assert scope.contains(IPv4Address("127.255.0.3"))
    assert not scope.contains(IPv4Address("10.0.0.1"))
    with pytest.raises(ScopeError) as info:
        scope.check(nets("126.0.0.0/7"))
    assert info.value.targets == ["126.0.0.0/7"]
    with pytest.raises(ScopeError):
        scope.check(nets("172.20.20.0/24"))


def test_extra_ranges_for_one_run() -> None:
    settings = DiscoverySettings(allowed=tuple(nets("10.0.0.0/8")))
    scope = Scope.build(settings, extra=nets("172.20.20.0/24"))
    assert scope.allowed == tuple(nets("127.0.0.0/8", "10.0.0.0/8", "172.20.20.0/24"))
    scope.check(nets("172.20.20.0/24", "10.9.9.9/32"))
    with pytest.raises(ScopeError):
        Scope.build(settings).check(nets("172.20.20.0/24"))


# --------------------------------------------------------------------------- settings


def test_settings_read_from_home(tmp_path: Path) -> None:
    home = home_with(tmp_path, """
discovery:
  allowed: [10.0.0.0/24, 192.168.1.7/16]
  profiles: [lab, prod]
  timeout_s: 2.5
  retries: 3
  device_budget_s: 30
  concurrency: 8
  roles_file: rules/roles.yaml
other: {ignored: true}
""")
    ds = load_discovery_settings(get_settings(home))
    assert ds.allowed == tuple(nets("10.0.0.0/24", "192.168.0.0/16"))
    assert ds.profiles == ("lab", "prod")
    assert (ds.timeout_s, ds.retries, ds.device_budget_s, ds.concurrency) == (2.5, 3, 30.0, 8)
    assert ds.roles_file == tmp_path.resolve() / "rules" / "roles.yaml"


def test_roles_file_from_settings_is_loadable(tmp_path: Path) -> None:
    from agents.discovery.classify import DeviceEvidence, load_role_rules

    home = home_with(tmp_path, "discovery:\n  roles_file: my-roles.yaml\n")
    (tmp_path / "my-roles.yaml").write_text(
        "rules:\n  - role: appliance\n    when: {}\n    reason: always\n")
    ds = load_discovery_settings(get_settings(home))
    assert ds.roles_file is not None and ds.roles_file.is_absolute()
    assert load_role_rules(ds.roles_file).decide(DeviceEvidence()) == ("appliance", "always")


def test_settings_defaults_without_file(tmp_path: Path) -> None:
    ds = load_discovery_settings(get_settings(tmp_path))
    assert ds.allowed == () and ds.profiles == () and ds.roles_file is None
    assert (ds.timeout_s, ds.retries, ds.device_budget_s, ds.concurrency) == (1.0, 1, 60.0, 64)
    # a file without a discovery section gives the defaults too
    ds = load_discovery_settings(get_settings(home_with(tmp_path, "something: else\n")))
    assert ds.allowed == () and ds.concurrency == 64


def test_allowed_from_environment_added_after_the_file(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    home = home_with(tmp_path, "discovery:\n  allowed: [10.0.0.0/24]\n")
    monkeypatch.setenv(ALLOWED_ENV, " 172.16.0.0/12, 10.9.0.0/16 ,,")
    ds = load_discovery_settings(get_settings(home))
    assert ds.allowed == tuple(nets("10.0.0.0/24", "172.16.0.0/12", "10.9.0.0/16"))
    Scope.build(ds).check(nets("172.20.20.0/24", "10.9.1.0/24", "10.0.0.5/32"))


def test_bad_range_in_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOWED_ENV, "10.0.0.0/8,nonsense")
    with pytest.raises(ConfigError, match=ALLOWED_ENV) as info:
        load_discovery_settings(get_settings(tmp_path))
    assert "'nonsense'" in str(info.value)


@pytest.mark.parametrize(("text", "says"), [
    pytest.param("discovery: [unclosed\n", "", id="malformed-yaml"),
    pytest.param("discovery:\n  allowed: [10.0.0.0/24, not-a-range]\n", "'not-a-range'",
                 id="not-a-range"),
    pytest.param("discovery:\n  allowed: [10.0.0.300/24]\n", "'10.0.0.300/24'",
                 id="bad-octet"),
    pytest.param("discovery:\n  allowed: ['2001:db8::/32']\n", "only IPv4", id="ipv6"),
    pytest.param("- just\n- a list\n", "mapping", id="top-level-list"),
    pytest.param("discovery: [10.0.0.0/8]\n", "'discovery' must be a mapping",
                 id="discovery-a-list"),
    pytest.param("discovery:\n  timeout_s: fast\n", "fast", id="bad-number"),
])
def test_bad_settings_file_is_a_config_error_naming_it(tmp_path: Path, text: str,
                                                       says: str) -> None:
    home = home_with(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_discovery_settings(get_settings(home))
    message = str(info.value)
    assert str(tmp_path.resolve() / "settings.yaml") in message
    assert says in message


def test_profiles_given_as_one_string(tmp_path: Path) -> None:
    home = home_with(tmp_path, "discovery:\n  profiles: lab\n")
    try:
        ds = load_discovery_settings(get_settings(home))
    except ConfigError:
        return  # refusing it is fine too
    assert ds.profiles == ("lab",)


# --------------------------------------------------------------------------- targets


def test_expand_cidr_and_addresses() -> None:
    assert expand_targets(["10.0.0.0/24", " 10.0.0.5 ", "10.1.2.3/16", "172.20.20.11/32"]) == \
        nets("10.0.0.0/24", "10.0.0.5/32", "10.1.0.0/16", "172.20.20.11/32")
    assert expand_targets([]) == []


def test_expand_localhost_resolves_to_loopback() -> None:
    assert expand_targets(["localhost"]) == nets("127.0.0.1/32")


def test_expand_name_with_several_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(host: str, port: object, family: int = 0, *args: Any) -> list[Any]:
        assert (host, family) == ("r1.lab.example", socket.AF_INET)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0))
                for a in ("10.0.0.2", "10.0.0.1", "10.0.0.2")]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    assert expand_targets(["r1.lab.example"]) == nets("10.0.0.1/32", "10.0.0.2/32")


def test_expand_unresolvable_name(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(host: str, *args: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(ScopeError, match=r"cannot resolve target .no-such-host\.invalid.") as info:
        expand_targets(["10.0.0.1", "no-such-host.invalid"])
    assert info.value.targets == ["no-such-host.invalid"]
    assert "Name or service not known" in str(info.value)


def test_expand_refuses_ipv6() -> None:
    with pytest.raises(ScopeError, match="only IPv4") as info:
        expand_targets(["2001:db8::/64"])
    assert info.value.targets == ["2001:db8::/64"]


# --------------------------------------------------------------------------- addresses


def test_addresses_leave_out_network_and_broadcast_of_a_24() -> None:
    got = addresses(nets("10.0.0.0/24"))
    assert len(got) == 254
    assert (got[0], got[-1]) == (IPv4Address("10.0.0.1"), IPv4Address("10.0.0.254"))
    assert IPv4Address("10.0.0.0") not in got and IPv4Address("10.0.0.255") not in got


def test_addresses_small_prefixes() -> None:
    assert addresses(nets("10.0.0.4/31")) == [IPv4Address("10.0.0.4"), IPv4Address("10.0.0.5")]
    assert addresses(nets("10.0.0.9/32")) == [IPv4Address("10.0.0.9")]
    assert addresses(nets("10.0.0.8/30")) == [IPv4Address("10.0.0.9"), IPv4Address("10.0.0.10")]
    assert addresses([]) == []


def test_addresses_without_repeats_in_order() -> None:
    got = addresses(nets("10.0.0.0/30", "10.0.0.2/32", "10.0.0.0/31", "10.0.0.9/32",
                         "10.0.0.1/32"))
    assert [str(a) for a in got] == ["10.0.0.1", "10.0.0.2", "10.0.0.0", "10.0.0.9"]


def test_addresses_limit() -> None:
    assert MAX_TARGETS == 65536
    # 65,534 + 2 = exactly the limit: accepted
    exact = addresses(nets("10.0.0.0/16", "10.1.0.0/31"))
    assert len(exact) == MAX_TARGETS
    # overlaps do not count twice
    assert len(addresses(nets("10.0.0.0/16", "10.0.7.0/24", "10.1.0.0/31"))) == MAX_TARGETS
    with pytest.raises(ScopeError, match="more than 65536 addresses"):
        addresses(nets("10.0.0.0/16", "10.1.0.0/31", "10.2.0.0/32"))
    with pytest.raises(ScopeError):
        addresses(nets("10.0.0.0/15"))
