"""Where discovery may probe, decided before a single packet is sent.

The allowed ranges are loopback (127.0.0.0/8), the ranges listed in
``$SWITCHBOARD_HOME/settings.yaml`` under ``discovery.allowed``, the ranges in
``SWITCHBOARD_DISCOVERY_ALLOWED`` (comma-separated), and whatever the caller adds
for one run (a deployed lab's own mgmt subnet). Anything else is refused with
:class:`~topology.errors.ScopeError`, naming the targets.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from pathlib import Path
from typing import Any

from topology.errors import ConfigError, ScopeError
from topology.settings import Settings, get_settings, settings_section

__all__ = ["DiscoverySettings", "Scope", "expand_targets", "load_discovery_settings"]

LOOPBACK = IPv4Network("127.0.0.0/8")
ALLOWED_ENV = "SWITCHBOARD_DISCOVERY_ALLOWED"
MAX_TARGETS = 65536


@dataclass(frozen=True)
class DiscoverySettings:
    """Discovery's knobs (``discovery:`` in settings.yaml), with their defaults."""

    allowed: tuple[IPv4Network, ...] = ()
    profiles: tuple[str, ...] = ()
    timeout_s: float = 1.0
    retries: int = 1
    device_budget_s: float = 60.0
    concurrency: int = 64
    roles_file: Path | None = None
    sweep: bool = True          # ARP/ICMP sweep first (root only); ARP-silent addresses skipped
    sweep_rate_pps: float = 500.0
    extra: dict[str, Any] = field(default_factory=dict)


def _networks(values: Iterable[str], where: str) -> tuple[IPv4Network, ...]:
    out = []
    for value in values:
        try:
            net = ip_network(str(value).strip(), strict=False)
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not an IPv4 range") from None
        if not isinstance(net, IPv4Network):
            raise ConfigError(f"{where}: {value!r}: only IPv4 ranges are supported")
        out.append(net)
    return tuple(out)


def _list(value: Any, where: str) -> list[Any]:
    """A YAML list; one scalar is a one-item list (``profiles: lab``)."""
    if value is None:
        return []
    if isinstance(value, (str, int, float)):
        return [value]
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list")
    return value


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{where}: expected true or false, not {value!r}")


def load_discovery_settings(settings: Settings | None = None) -> DiscoverySettings:
    """Read ``discovery:`` from ``$SWITCHBOARD_HOME/settings.yaml`` and the environment."""
    settings = settings or get_settings()
    path, raw = settings_section("discovery", settings)
    allowed = _networks(_list(raw.get("allowed"), f"{path} discovery.allowed"),
                        f"{path} discovery.allowed")
    env = os.environ.get(ALLOWED_ENV, "")
    allowed += _networks([v for v in env.split(",") if v.strip()], ALLOWED_ENV)
    try:
        roles = raw.get("roles_file")
        return DiscoverySettings(
            allowed=allowed,
            profiles=tuple(str(p) for p in _list(raw.get("profiles"),
                                                 f"{path} discovery.profiles")),
            timeout_s=float(raw.get("timeout_s", 1.0)),
            retries=int(raw.get("retries", 1)),
            device_budget_s=float(raw.get("device_budget_s", 60.0)),
            concurrency=int(raw.get("concurrency", 64)),
            roles_file=(settings.home / roles) if roles else None,
            sweep=_bool(raw.get("sweep", True), f"{path} discovery.sweep"),
            sweep_rate_pps=float(raw.get("sweep_rate_pps", 500.0)),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: discovery settings: {exc}") from None


@dataclass(frozen=True)
class Scope:
    """The ranges one discovery run may probe."""

    allowed: tuple[IPv4Network, ...]

    @classmethod
    def build(cls, settings: DiscoverySettings,
              extra: Sequence[IPv4Network] = ()) -> Scope:
        return cls((LOOPBACK, *settings.allowed, *extra))

    def contains(self, address: IPv4Address) -> bool:
        return any(address in net for net in self.allowed)

    def check(self, targets: Sequence[IPv4Network]) -> None:
        """Refuse (before any packet) every target not wholly inside an allowed range."""
        outside = [str(t) for t in targets
                   if not any(t.subnet_of(net) for net in self.allowed)]
        if outside:
            allowed = ", ".join(str(n) for n in self.allowed)
            raise ScopeError(
                f"outside the ranges discovery may probe: {', '.join(outside)} (allowed: "
                f"{allowed}; add ranges under discovery.allowed in settings.yaml)",
                targets=outside)


def expand_targets(targets: Sequence[str]) -> list[IPv4Network]:
    """Targets as networks: a CIDR, an address (/32) or a host name (resolved, /32 each)."""
    out: list[IPv4Network] = []
    for target in targets:
        text = target.strip()
        try:
            net = ip_network(text, strict=False)
        except ValueError:
            try:
                infos = socket.getaddrinfo(text, None, socket.AF_INET)
            except socket.gaierror as exc:
                raise ScopeError(f"cannot resolve target {text!r}: {exc.strerror}",
                                 targets=[text]) from None
            addrs = sorted({str(info[4][0]) for info in infos}, key=IPv4Address)
            out += [IPv4Network(f"{a}/32") for a in addrs]
            continue
        if not isinstance(net, IPv4Network):
            raise ScopeError(f"target {text!r}: only IPv4 is supported", targets=[text])
        out.append(net)
    return out


def addresses(targets: Sequence[IPv4Network]) -> list[IPv4Address]:
    """Every host address in ``targets`` (network and broadcast left out of /24s and wider),
    in order, without repeats; refuses more than 65,536."""
    total = sum(net.num_addresses for net in targets)
    if total > 4 * MAX_TARGETS:  # refuse before building millions of addresses
        raise ScopeError(f"the targets hold {total} addresses, more than {MAX_TARGETS}")
    seen: dict[IPv4Address, None] = {}
    for net in targets:
        hosts = [net.network_address] if net.prefixlen >= 31 else list(net.hosts())
        if net.prefixlen == 31:
            hosts = list(net)
        for host in hosts:
            seen.setdefault(host, None)
            if len(seen) > MAX_TARGETS:
                raise ScopeError(f"more than {MAX_TARGETS} addresses in the targets")
    return list(seen)


def as_address(value: str) -> IPv4Address:
    """Parse an IPv4 address (a ScopeError when it is not one)."""
    addr = ip_address(value)
    if not isinstance(addr, IPv4Address):
        raise ScopeError(f"{value!r}: only IPv4 is supported", targets=[value])
    return addr
