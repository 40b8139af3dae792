"""Re-record the golden files from a deployed lab's real daemons (scrapli's ``--record``).

The parser tests (``tests/unit/test_cli_parsers.py``, ``test_netconf_parsers.py``)
read these files; recording them again from a live lab keeps the parsers honest
when the daemons change (a new FRR or netconfd release). The collectors' own
session code fetches the text, so a golden file holds exactly what the collector
parses. Deploy the core lab first, then, as root, from the repository root::

    .venv/bin/switchboard lab deploy lab/topologies/core.clab.yml
    .venv/bin/python tests/golden/record.py --lab core
    .venv/bin/python tests/golden/record.py --lab core --variants   # also the variants
    git diff tests/golden/                                          # review, then commit

What is written (``--router``, default r1; ``--vnf``, default vnf1):

    frr/show_version.txt             show version
    frr/show_interface_brief.txt     show interface brief
    frr/show_interface_description.txt  show interface description
    frr/unknown_command.txt          a command vtysh does not know (failure marker)
    netconf/hello_capabilities.txt   the server's hello, one capability per line
    netconf/yang_library.xml         <data> of the get of ietf-yang-library modules-state
    netconf/interfaces_state.xml     <data> of the get of ietf-interfaces interfaces-state
    netconf/system.xml               <data> of the get of ietf-system system, system-state

``--variants`` also records ``frr/show_interface_brief_secondary.txt``: it adds two
addresses from the documentation ranges (192.0.2.1/24, 203.0.113.1/24) to the
router's eth4 (the port core leaves unprovisioned), records, and removes them again.
Counters, mgmt addresses and paths change from one recording to the next; the
tests assert on what the lab's topology fixes (names, addresses, versions).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from collectors.cli import run_cli_commands
from collectors.netconf import fetch_netconf_replies, parse_xml
from lab import Lab

GOLDEN = Path(__file__).resolve().parent
UNKNOWN_COMMAND = "show switchboard-golden-unknown"
SECONDARY = ("192.0.2.1/24", "203.0.113.1/24")


def _data_element(reply: str) -> str:
    """The ``<data>`` element of a raw ``<rpc-reply>``, as the server sent its content."""
    from lxml import etree  # type: ignore[import-untyped]

    root = parse_xml(reply)
    data = root.find("{urn:ietf:params:xml:ns:netconf:base:1.0}data")
    if data is None:
        raise SystemExit(f"reply without <data>: {reply[:200]}")
    return str(etree.tostring(data, encoding="unicode", with_tail=False)) + "\n"


def _write(name: str, text: str) -> None:
    path = GOLDEN / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"recorded {path.relative_to(GOLDEN.parent.parent)} ({len(text)} chars)")


def record_cli(lab: Lab, router: str, variants: bool) -> None:
    creds = lab.credentials
    host = lab.node(router).mgmt_ipv4
    outputs = run_cli_commands(host, creds.ssh_user, creds.ssh_password,
                               ["show version", "show interface brief",
                                "show interface description", UNKNOWN_COMMAND])
    _write("frr/show_version.txt", outputs["show version"])
    _write("frr/show_interface_brief.txt", outputs["show interface brief"])
    _write("frr/show_interface_description.txt", outputs["show interface description"])
    _write("frr/unknown_command.txt", outputs[UNKNOWN_COMMAND])
    if not variants:
        return
    add = ["interface eth4", *(f"ip address {a}" for a in SECONDARY), "end"]
    remove = ["interface eth4", *(f"no ip address {a}" for a in SECONDARY), "end"]
    _vtysh_config(lab, router, add)
    try:
        out = run_cli_commands(host, creds.ssh_user, creds.ssh_password,
                               ["show interface brief"])
        _write("frr/show_interface_brief_secondary.txt", out["show interface brief"])
    finally:
        _vtysh_config(lab, router, remove)


def _vtysh_config(lab: Lab, router: str, lines: list[str]) -> None:
    argv = ["vtysh", "-c", "configure terminal"]
    for line in lines:
        argv += ["-c", line]
    proc = lab.exec(router, argv)
    if proc.returncode != 0:
        raise SystemExit(f"{router}: vtysh failed: {proc.stderr or proc.stdout}")


def record_netconf(lab: Lab, vnf: str) -> None:
    creds = lab.credentials
    replies = fetch_netconf_replies(lab.node(vnf).mgmt_ipv4, creds.ssh_user,
                                    creds.ssh_password)
    _write("netconf/hello_capabilities.txt", "".join(f"{c}\n" for c in replies.capabilities))
    for name, reply in (("yang_library", replies.yang_library),
                        ("interfaces_state", replies.interfaces_state),
                        ("system", replies.system)):
        if reply is None:
            raise SystemExit(f"{vnf} did not answer the get for {name}")
        _write(f"netconf/{name}.xml", _data_element(reply))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lab", help="the deployed lab (may be left out when one runs)")
    parser.add_argument("--router", default="r1", help="the FRR router to record (r1)")
    parser.add_argument("--vnf", default="vnf1", help="the NETCONF VNF to record (vnf1)")
    parser.add_argument("--variants", action="store_true",
                        help="also record outputs that need a temporary config change")
    args = parser.parse_args(argv)
    lab = Lab.load(args.lab)
    record_cli(lab, args.router, args.variants)
    record_netconf(lab, args.vnf)
    return 0


if __name__ == "__main__":
    sys.exit(main())
