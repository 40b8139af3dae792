"""Reachability sweeps with scapy: ARP on directly attached subnets, ICMP echo elsewhere.

ARP is authoritative on a directly attached subnet: an address that does not answer
ARP cannot receive anything else either, so discovery may skip it. ICMP is only a
hint: many hosts drop echo requests and are still probed over SNMP.

Both need raw sockets (root); :func:`sweep_available` says whether they can run.
Rates are limited (``rate_pps``) so a sweep never floods a segment.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_network

__all__ = ["SweepResult", "attached_interface", "sweep", "sweep_available"]

log = logging.getLogger(__name__)


@dataclass
class SweepResult:
    """What answered: ``arp`` only covers addresses on directly attached subnets
    (``arp_checked``); ``icmp`` covers every address swept."""

    arp_checked: set[str] = field(default_factory=set)
    arp: dict[str, str] = field(default_factory=dict)  # address -> MAC
    icmp: set[str] = field(default_factory=set)

    def absent(self, address: str) -> bool:
        """True when ARP proves nothing is there (checked on its segment, no answer)."""
        return address in self.arp_checked and address not in self.arp


def sweep_available() -> bool:
    """Raw sockets need root."""
    return os.geteuid() == 0


def _connected_routes() -> list[tuple[IPv4Network, str]]:
    out = subprocess.run(["ip", "-j", "-4", "route", "show", "scope", "link"],
                         capture_output=True, text=True, check=False).stdout
    routes = []
    for route in json.loads(out or "[]"):
        dst, dev = route.get("dst", ""), route.get("dev")
        if not dst or dst == "default" or not dev or dev == "lo":
            continue
        net = ip_network(dst if "/" in dst else f"{dst}/32", strict=False)
        if isinstance(net, IPv4Network):
            routes.append((net, str(dev)))
    return routes


def attached_interface(address: IPv4Address,
                       routes: Sequence[tuple[IPv4Network, str]] | None = None) -> str | None:
    """The interface whose connected subnet holds ``address`` (no gateway on the way)."""
    for net, dev in routes if routes is not None else _connected_routes():
        if address in net:
            return dev
    return None


def sweep(addresses: Sequence[IPv4Address], *, rate_pps: float = 500.0,
          timeout_s: float = 2.0, icmp: bool = True) -> SweepResult:
    """ARP-sweep the addresses on attached subnets, ICMP-sweep all of them."""
    from scapy.all import ARP, ICMP, IP, Ether, conf, sr, srp  # type: ignore[attr-defined]

    # (scapy is slow to import: only here, when a sweep runs)
    conf.verb = 0
    result = SweepResult()
    inter = 1.0 / rate_pps if rate_pps > 0 else 0.0
    by_iface: dict[str, list[str]] = {}
    routes = _connected_routes()
    for addr in addresses:
        iface = attached_interface(addr, routes)
        if iface is not None:
            by_iface.setdefault(iface, []).append(str(addr))
    for iface, targets in by_iface.items():
        answered, _ = srp(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=targets), iface=iface,
                          timeout=timeout_s, inter=inter, retry=1)
        result.arp_checked.update(targets)
        for _, reply in answered:
            result.arp[str(reply[ARP].psrc)] = str(reply[ARP].hwsrc)
    if icmp:
        # on attached subnets only those that answered ARP can answer an echo
        targets = [str(a) for a in addresses if not result.absent(str(a))]
        if targets:
            answered, _ = sr(IP(dst=targets) / ICMP(), timeout=timeout_s, inter=inter)
            result.icmp = {str(reply[IP].src) for _, reply in answered}
    log.info("sweep: %d ARP checked, %d answered ARP, %d answered ICMP",
             len(result.arp_checked), len(result.arp), len(result.icmp))
    return result
