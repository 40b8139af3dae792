"""Real traffic as a proof: can one lab node reach an address right now?

The fulfilment agent proves a service on the network, not only in the config: after an
internet-access activation the customer's host must reach the server. This probe pings
from inside a node (its network namespace), one echo at a time, until one comes back or
``patience_s`` runs out (routing needs a moment to carry a new prefix), and reports what
happened.
"""

from __future__ import annotations

import ipaddress
import time

from lab.runtime import Lab
from topology.settings import Settings

__all__ = ["LabReachProbe"]


class LabReachProbe:
    """``reach(node, address)`` pings ``address`` from inside ``node`` of a deployed lab."""

    def __init__(self, lab: str | None = None, settings: Settings | None = None, *,
                 patience_s: float = 20.0) -> None:
        self.lab = Lab.load(lab, settings)
        self.patience_s = patience_s

    def reach(self, source: str, destination: str) -> tuple[bool, str]:
        """(whether an echo came back in time, what happened)."""
        address = str(ipaddress.ip_address(destination))  # an address, never an option
        self.lab.node(source)  # LabStateError for a node the lab does not have
        started = time.monotonic()
        tries = 0
        while True:
            tries += 1
            proc = self.lab.exec(source, ["ping", "-n", "-c", "1", "-W", "1", address],
                                 timeout_s=15)
            waited = time.monotonic() - started
            if proc.returncode == 0:
                return True, (f"ping from {source} to {address}: answered after {tries} "
                              f"tries, {waited:.1f} s")
            if waited >= self.patience_s:
                return False, (f"ping from {source} to {address}: no answer to {tries} "
                               f"echoes in {waited:.1f} s")
            time.sleep(0.5)
