"""Re-record the golden files of the SSH CLI config driver from a deployed lab's FRR.

``tests/unit/test_cli_driver.py`` reads them: the failure markers are checked on what
vtysh really prints in configuration mode, and the diff and prediction code on real
running configs. Deploy the core lab first, then, as root, from the repository root::

    .venv/bin/switchboard lab deploy lab/topologies/core.clab.yml
    .venv/bin/python tests/golden/record_frr_config.py --lab core
    git diff tests/golden/frr_config/                  # review, then commit

What is written (``--router``, default r1), under ``frr_config/``:

    show_running.txt              show running-config as the session reads it (raw)
    running_eth4.txt              the running config (normalised) once eth4 has a new
                                  description and address (ETH4_CHANGE)
    running_messy.txt             the running config (normalised) after MESSY_CHANGE
    replies/NAME.txt              one line's exchange in configuration mode: the echo,
                                  the device's reply, the prompt (REPLIES)

Every change is undone by the driver's own restore, and the script fails unless the
running config is then equal to the byte to the one it started from.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import SecretStr

from adapters.base import DriverTarget
from adapters.cli import CliDriver
from lab import Lab

GOLDEN = Path(__file__).resolve().parent / "frr_config"
ETH4_CHANGE = ("interface eth4\n description cust2 internet access (order T-1)\n"
               " ip address 100.64.12.1/24\nexit\n")
MESSY_CHANGE = ("ip route 203.0.113.0/24 100.64.12.2\ninterface eth4\n no description\n"
                " ip address 192.0.2.5/24\nexit\ninterface eth5\n description ghost\nexit\n"
                "router ospf\n ospf router-id 10.255.0.99\nexit\n")
# name -> (context lines, the line); none of them changes the running config
REPLIES: dict[str, tuple[tuple[str, ...], str]] = {
    "unknown_command": (("interface eth4",), "ip adress 192.0.2.1/24"),
    "cant_find_address": (("interface eth4",), "no ip address 198.18.0.1/24"),
    "configuration_failed": ((), "no interface eth4"),
    "refusing_route": ((), "no ip route 198.18.0.0/24 100.64.12.2"),
    "network_exists": (("router ospf",), "network 10.0.12.0/30 area 1"),
    "incomplete": (("interface eth4",), "ip address"),
    "accepted": (("interface eth4",), "description customer cust2 (awaiting activation)"),
    "accepted_with_note": (("router ospf",), "ospf router-id 10.255.0.1"),
}


def _write(name: str, text: str) -> None:
    path = GOLDEN / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"recorded {path.relative_to(GOLDEN.parent.parent.parent)} ({len(text)} chars)")


def record(lab: Lab, router: str) -> None:
    creds = lab.credentials
    driver = CliDriver(DriverTarget(router, lab.node(router).mgmt_ipv4, creds.ssh_user,
                                    SecretStr(creds.ssh_password), 22))
    driver.open()
    try:
        session = driver._live()
        before = driver.get_config()
        _write("show_running.txt", str(session.conn.send_command("show running-config")))
        try:
            with session.configuring():
                for name, (context, line) in REPLIES.items():
                    session.resync()
                    for header in context:
                        session.send(header)
                    _write(f"replies/{name}.txt", session.send(line).exchange + "\n")
            for name, change in (("running_eth4.txt", ETH4_CHANGE),
                                 ("running_messy.txt", MESSY_CHANGE)):
                driver.load_merge_candidate(change)
                driver.commit_config()
                _write(name, driver.get_config())
                driver.restore(before)
        finally:
            driver.restore(before)
        if driver.get_config() != before:
            raise SystemExit(f"{router}: the running config is not back to the byte")
    finally:
        driver.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lab", help="the deployed lab (may be left out when one runs)")
    parser.add_argument("--router", default="r1", help="the FRR router to record (r1)")
    args = parser.parse_args(argv)
    record(Lab.load(args.lab), args.router)
    return 0


if __name__ == "__main__":
    sys.exit(main())
