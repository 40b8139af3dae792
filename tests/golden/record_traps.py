"""Re-record the golden trap files (``tests/golden/traps/``) from a lab's real daemons.

Each file is one real SNMPv2c trap datagram as a lab node sent it, with what it decodes
to, for the trap parser and the fault rules to be tested on what the daemons really
send (net-snmp's snmpd, FRR's ospfd and bgpd over AgentX, lldpd over AgentX). By
default the recorder deploys its own small lab (``mini`` plus iBGP between r1 and r2,
the same files the routing-trap tests use), triggers every trap, writes the files and
destroys the lab. As root, from the repository root::

    .venv/bin/python tests/golden/record_traps.py
    .venv/bin/python tests/golden/record_traps.py --lab core   # a running lab instead
    git diff tests/golden/traps/                                # review, then commit

With ``--lab`` the trap target of that lab is used (this machine must be able to bind
it, so nothing else may listen there) and coldStart comes from a restart of the
router's snmpd; the BGP files are left alone when the router runs no bgpd.

What is written (all from the router, ``--router``, default r1, over its link
``--link``, default eth1, to its neighbour)::

    cold_start.json                   snmpd starts
    authentication_failure.json       a v2c GET with a wrong community
    link_down.json, link_up.json      the link set down, then up (DISMAN monitor, 2 s)
    lldp_rem_tables_change.json       lldpd: the neighbour leaves its table (link down)
    ospf_nbr_state_change_down.json   ospfd: the neighbour goes Down (1)
    ospf_nbr_state_change_full.json   ospfd: the neighbour comes back Full (8)
    ospf_if_state_change_down.json    ospfd: the interface goes Down (1)
    ospf_if_state_change_up.json      ospfd: the interface is pointToPoint (4) again
    bgp_backward_transition.json      bgpd: the iBGP session leaves Established (hold timer)
    bgp_established.json              bgpd: the session is Established again

The lab's community is replaced by ``public`` in the recorded bytes: the outer
SEQUENCE header and the community field are re-encoded (minimal BER lengths); the
version and the whole PDU are the daemon's own bytes. uptime, request ids and
counters change from one recording to the next.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api

from lab import Lab, deploy, load_topology

GOLDEN = Path(__file__).resolve().parent / "traps"
TOPOLOGIES = Path(__file__).resolve().parents[2] / "lab" / "topologies"
GOLDEN_COMMUNITY = "public"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"

COLD_START = "1.3.6.1.6.3.1.1.5.1"
LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
LINK_UP = "1.3.6.1.6.3.1.1.5.4"
AUTH_FAILURE = "1.3.6.1.6.3.1.1.5.5"
LLDP_REM_TABLES_CHANGE = "1.0.8802.1.1.2.0.0.1"
OSPF_NBR_STATE_CHANGE = "1.3.6.1.2.1.14.16.2.2"
OSPF_IF_STATE_CHANGE = "1.3.6.1.2.1.14.16.2.16"
BGP_ESTABLISHED = "1.3.6.1.2.1.15.0.1"
BGP_BACKWARD_TRANSITION = "1.3.6.1.2.1.15.0.2"
OSPF_NBR_STATE = "1.3.6.1.2.1.14.10.1.6"     # .<nbr ip>.0
OSPF_IF_STATE = "1.3.6.1.2.1.14.7.1.12"      # .<if ip>.0
BGP_PEER_STATE = "1.3.6.1.2.1.15.3.1.2"      # .<peer ip>
IF_INDEX = "1.3.6.1.2.1.2.2.1.1"             # .<ifIndex>
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"

_V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]

# the BGP lab: mini, with an iBGP session between r1 and r2 over their link addresses.
# Short timers so the session notices a dead link in under 9 s (the hold time) and
# retries every 5 s; the shipped topologies stay OSPF only.
BGP_LAB_PEERS = {"r1": ("10.255.1.1", "10.0.12.2"), "r2": ("10.255.1.2", "10.0.12.1")}


def bgp_topology(dest: Path) -> Path:
    """Write the BGP lab (``mini`` plus iBGP between r1 and r2) under ``dest``; returns
    its topology file."""
    (dest / "mini").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TOPOLOGIES / "mini.clab.yml", dest / "mini.clab.yml")
    for conf in (TOPOLOGIES / "mini").glob("*.conf"):
        text = conf.read_text()
        if conf.stem in BGP_LAB_PEERS:
            router_id, peer = BGP_LAB_PEERS[conf.stem]
            bgp = (f"router bgp 65000\n bgp router-id {router_id}\n"
                   f" neighbor {peer} remote-as 65000\n neighbor {peer} timers 3 9\n"
                   f" neighbor {peer} timers connect 5\n!\n")
            text, found = re.subn(r"^line vty$", bgp + "line vty", text, count=1,
                                  flags=re.MULTILINE)
            if not found:
                raise SystemExit(f"{conf}: no `line vty` to put the BGP section before")
        (dest / "mini" / conf.name).write_text(text)
    return dest / "mini.clab.yml"


# -- the datagrams ---------------------------------------------------------------

def decode(data: bytes) -> dict[str, Any]:
    """An SNMPv2c trap datagram as ``{community, trap_oid, uptime, varbinds}``; varbinds
    are ``[oid, kind, value]`` in PDU order without sysUpTime.0 and snmpTrapOID.0."""
    if int(api.decodeMessageVersion(data)) != api.SNMP_VERSION_2C:
        raise ValueError("not an SNMPv2c message")
    msg, rest = decoder.decode(data, asn1Spec=_V2C.Message())
    if rest:
        raise ValueError(f"{len(rest)} bytes after the message")
    pdu = _V2C.apiMessage.get_pdu(msg)
    if not isinstance(pdu, _V2C.SNMPv2TrapPDU):
        raise ValueError(f"not a trap: {type(pdu).__name__}")
    binds = [(str(oid), value) for oid, value in _V2C.apiPDU.get_varbinds(pdu)]
    header = dict(binds[:2])
    if list(header) != [SYS_UPTIME, SNMP_TRAP_OID]:
        raise ValueError(f"trap without sysUpTime.0, snmpTrapOID.0 first: {list(header)}")
    return {"community": str(_V2C.apiMessage.get_community(msg)),
            "trap_oid": str(header[SNMP_TRAP_OID].prettyPrint()),
            "uptime": int(header[SYS_UPTIME]),
            "varbinds": [[oid, type(v).__name__, str(v.prettyPrint())] for oid, v in binds[2:]]}


def _header(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the BER TLV at ``pos`` (definite length)."""
    tag, first = data[pos], data[pos + 1]
    if first < 0x80:
        return tag, pos + 2, pos + 2 + first
    count = first & 0x7F
    if not 0 < count <= 4:
        raise ValueError(f"unsupported BER length at {pos + 1}")
    length = int.from_bytes(data[pos + 2:pos + 2 + count], "big")
    return tag, pos + 2 + count, pos + 2 + count + length


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def with_community(data: bytes, community: str) -> bytes:
    """``data`` with its community replaced: the message header and the community are
    re-encoded, the version and the PDU stay byte for byte as they were."""
    tag, body, end = _header(data, 0)
    if tag != 0x30 or end != len(data):
        raise ValueError("not one BER SEQUENCE")
    _, _, version_end = _header(data, body)
    tag, _, community_end = _header(data, version_end)
    if tag != 0x04:
        raise ValueError("no community OCTET STRING after the version")
    value = community.encode()
    inner = (data[body:version_end] + b"\x04" + _length(len(value)) + value
             + data[community_end:end])
    out = b"\x30" + _length(len(inner)) + inner
    # the same message for pysnmp, but for the community
    before, after = decode(data), decode(out)
    if after["community"] != community or {**before, "community": community} != after:
        raise ValueError("re-encoding changed more than the community")
    return out


def snmp_get_request(community: str, oid: str) -> bytes:
    """A v2c GET for one OID (built here: a community never goes on a command line)."""
    pdu = _V2C.GetRequestPDU()
    _V2C.apiPDU.set_defaults(pdu)
    _V2C.apiPDU.set_varbinds(pdu, [(oid, _V2C.Null(""))])
    msg = _V2C.Message()
    _V2C.apiMessage.set_defaults(msg)
    _V2C.apiMessage.set_community(msg, community)
    _V2C.apiMessage.set_pdu(msg, pdu)
    return bytes(encoder.encode(msg))


def snmp_get(host: str, community: str, oid: str, timeout_s: float = 2.0) -> str | None:
    """The value of ``oid`` on ``host`` as a string, ``None`` without an answer or a
    value (noSuchObject/noSuchInstance)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout_s)
        sock.sendto(snmp_get_request(community, oid), (host, 161))
        try:
            data = sock.recv(65535)
        except TimeoutError:
            return None
    msg, _ = decoder.decode(data, asn1Spec=_V2C.Message())
    for _, value in _V2C.apiPDU.get_varbinds(_V2C.apiMessage.get_pdu(msg)):
        if value.tagSet in (_V2C.NoSuchObject.tagSet, _V2C.NoSuchInstance.tagSet,
                            _V2C.EndOfMibView.tagSet):
            return None
        return str(value.prettyPrint())
    return None


# -- capture -----------------------------------------------------------------------

@dataclass
class Datagram:
    source: str
    data: bytes
    at: datetime
    decoded: dict[str, Any]

    def has(self, prefix: str, value: str | None = None) -> bool:
        """A varbind under ``prefix`` (with ``value``, when given)."""
        return any(oid.startswith(prefix) and (value is None or v == value)
                   for oid, _, v in self.decoded["varbinds"])


class Capture:
    """Every trap datagram that reaches the trap target, kept in arrival order."""

    def __init__(self, host: str, port: int, *, freebind: bool = False) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if freebind:  # the address may not exist yet (Linux)
            self.sock.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_FREEBIND", 15), 1)
        self.sock.bind((host, port))
        self.sock.settimeout(0.2)
        self.seen: list[Datagram] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, (addr, _) = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                decoded = decode(data)
            except Exception:  # not an SNMPv2c trap: not one to record
                continue
            with self._lock:
                self.seen.append(Datagram(addr, data, datetime.now(UTC), decoded))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def mark(self) -> int:
        with self._lock:
            return len(self.seen)

    def wait(self, what: str, source: str, trap_oid: str, since: int = 0,
             check: Callable[[Datagram], bool] = lambda _: True,
             timeout_s: float = 60.0) -> Datagram:
        """The first trap since ``since`` from ``source`` with ``trap_oid`` passing
        ``check``; waits for it up to ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                found = [d for d in self.seen[since:] if d.source == source
                         and d.decoded["trap_oid"] == trap_oid and check(d)]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise SystemExit(f"no {what} trap ({trap_oid}) from {source} within "
                                 f"{timeout_s:.0f} s")
            time.sleep(0.1)


def wait_value(what: str, get: Callable[[], str | None], want: str,
               timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (got := get()) != want:
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: still {got!r}, not {want!r} after {timeout_s:.0f} s")
        time.sleep(1)


# -- recording ---------------------------------------------------------------------

def _ipv4(lab: Lab, node: str, iface: str) -> str:
    out = lab.exec(node, ["ip", "-4", "-o", "addr", "show", "dev", iface]).stdout
    match = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", out)
    if match is None:
        raise SystemExit(f"{node}:{iface} has no IPv4 address")
    return match.group(1)


def _neighbour(lab: Lab, node: str, iface: str) -> tuple[str, str]:
    for a, b in lab.state.links:
        for here, there in ((a, b), (b, a)):
            if here == f"{node}:{iface}":
                peer, peer_iface = there.split(":")
                return peer, peer_iface
    raise SystemExit(f"{node}:{iface} is not on a link of lab {lab.name}")


def _entry(description: str, node: str, daemon: str, got: Datagram) -> dict[str, Any]:
    data = with_community(got.data, GOLDEN_COMMUNITY)
    decoded = decode(data)
    return {
        "description": description,
        "source_node": node,
        "daemon": daemon,
        "captured_at": got.at.isoformat(timespec="seconds"),
        "hex": data.hex(),
        "decoded": {k: decoded[k] for k in ("trap_oid", "uptime", "varbinds")},
        "community": GOLDEN_COMMUNITY,
        "note": "the lab's community was replaced by \"public\": the message header and "
                "the community were re-encoded, the version and the PDU are the "
                "daemon's own bytes; varbinds leave out sysUpTime.0 (uptime) and "
                "snmpTrapOID.0 (trap_oid)",
    }


def record(lab: Lab, capture: Capture, router: str, link: str,
           cold_start: Datagram | None) -> dict[str, dict[str, Any]]:
    """Trigger every trap on ``router`` and return the golden entries by file name."""
    creds, node = lab.credentials, lab.node(router)
    host = node.mgmt_ipv4
    files: dict[str, dict[str, Any]] = {}

    peer, peer_iface = _neighbour(lab, router, link)
    own_ip, peer_ip = _ipv4(lab, router, link), _ipv4(lab, peer, peer_iface)
    indexes = {}
    for oid_idx in range(1, 64):
        descr = snmp_get(host, creds.snmp_community, f"{IF_DESCR}.{oid_idx}")
        if descr is not None:
            indexes[descr] = oid_idx
    if_index = str(indexes[link])
    bgp = "bgpd" in node.frr_daemons
    # OSPF-MIB over AgentX answers once ospfd is connected (again, after a restart)
    print(f"waiting for OSPF{' and BGP' if bgp else ''} between {router} and {peer}")
    wait_value("ospfNbrState", lambda: snmp_get(
        host, creds.snmp_community, f"{OSPF_NBR_STATE}.{peer_ip}.0"), "8")
    if bgp:
        wait_value("bgpPeerState", lambda: snmp_get(
            host, creds.snmp_community, f"{BGP_PEER_STATE}.{peer_ip}"), "6")

    wrong = f"switchboard-golden-{secrets.token_hex(4)}"
    since = capture.mark()
    snmp_get(host, wrong, "1.3.6.1.2.1.1.5.0", timeout_s=0.5)
    files["authentication_failure.json"] = _entry(
        "a v2c GET with a wrong community reached snmpd (authtrapenable 1)", router, "snmpd",
        capture.wait("authenticationFailure", host, AUTH_FAILURE, since))

    print(f"{router}:{link} down")
    since = capture.mark()
    lab.set_link(router, link, up=False)
    try:
        files["link_down.json"] = _entry(
            f"{router}:{link} set down (DISMAN event monitor, every 2 s)", router, "snmpd",
            capture.wait("linkDown", host, LINK_DOWN, since,
                         lambda d: d.has(f"{IF_INDEX}.{if_index}", if_index)))
        files["ospf_nbr_state_change_down.json"] = _entry(
            f"{router} lost its OSPF neighbour {peer} ({peer_ip}): ospfNbrState down (1)",
            router, "ospfd", capture.wait(
                "ospfNbrStateChange", host, OSPF_NBR_STATE_CHANGE, since,
                lambda d: d.has(f"{OSPF_NBR_STATE}.{peer_ip}.0", "1")))
        files["ospf_if_state_change_down.json"] = _entry(
            f"{router}'s OSPF interface {link} ({own_ip}) went down: ospfIfState down (1)",
            router, "ospfd", capture.wait(
                "ospfIfStateChange", host, OSPF_IF_STATE_CHANGE, since,
                lambda d: d.has(f"{OSPF_IF_STATE}.{own_ip}.0", "1")))
        files["lldp_rem_tables_change.json"] = _entry(
            f"{router}'s LLDP remote table changed as {link} went down (lldpd over AgentX; "
            "the varbinds are the table's insert/delete/drop/ageout counters)",
            router, "lldpd", capture.wait("lldpRemTablesChange", host,
                                          LLDP_REM_TABLES_CHANGE, since))
        if bgp:
            files["bgp_backward_transition.json"] = _entry(
                f"{router}'s iBGP session to {peer_ip} left Established (the hold timer "
                "expired after the link went down): RFC 4273 bgpBackwardTransNotification",
                router, "bgpd", capture.wait(
                    "bgpBackwardTransNotification", host, BGP_BACKWARD_TRANSITION, since,
                    lambda d: d.has(f"{BGP_PEER_STATE}.{peer_ip}", "1")))
    finally:
        print(f"{router}:{link} up")
        since = capture.mark()
        lab.set_link(router, link, up=True)
    files["link_up.json"] = _entry(
        f"{router}:{link} set up again (DISMAN event monitor, every 2 s)", router, "snmpd",
        capture.wait("linkUp", host, LINK_UP, since,
                     lambda d: d.has(f"{IF_INDEX}.{if_index}", if_index)))
    files["ospf_if_state_change_up.json"] = _entry(
        f"{router}'s OSPF interface {link} ({own_ip}) is up: ospfIfState pointToPoint (4)",
        router, "ospfd", capture.wait(
            "ospfIfStateChange", host, OSPF_IF_STATE_CHANGE, since,
            lambda d: d.has(f"{OSPF_IF_STATE}.{own_ip}.0", "4")))
    files["ospf_nbr_state_change_full.json"] = _entry(
        f"{router}'s OSPF neighbour {peer} ({peer_ip}) is back: ospfNbrState full (8)",
        router, "ospfd", capture.wait(
            "ospfNbrStateChange", host, OSPF_NBR_STATE_CHANGE, since,
            lambda d: d.has(f"{OSPF_NBR_STATE}.{peer_ip}.0", "8")))
    if bgp:
        files["bgp_established.json"] = _entry(
            f"{router}'s iBGP session to {peer_ip} is Established again: RFC 4273 "
            "bgpEstablishedNotification", router, "bgpd", capture.wait(
                "bgpEstablishedNotification", host, BGP_ESTABLISHED, since,
                lambda d: d.has(f"{BGP_PEER_STATE}.{peer_ip}", "6")))
    if cold_start is None:  # last: the AgentX subagents lose snmpd for a few seconds
        since = capture.mark()
        lab.restart_daemon(router, "snmpd")
        cold_start = capture.wait("coldStart", host, COLD_START, since)
    files["cold_start.json"] = _entry("snmpd started (net-snmp coldStart)", router,
                                      "snmpd", cold_start)
    community = creds.snmp_community.encode()
    for name, entry in files.items():
        if community in bytes.fromhex(entry["hex"]) and community != GOLDEN_COMMUNITY.encode():
            raise SystemExit(f"{name} still holds the lab's community")
    return files


def _write(files: dict[str, dict[str, Any]]) -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name, entry in sorted(files.items()):
        path = GOLDEN / name
        path.write_text(json.dumps(entry, indent=2) + "\n", encoding="utf-8")
        print(f"recorded {path.relative_to(GOLDEN.parent.parent.parent)} "
              f"({entry['decoded']['trap_oid']})")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lab", help="record from this running lab instead of deploying one")
    parser.add_argument("--name", default="sb-golden", help="name of the lab deployed here")
    parser.add_argument("--subnet", default="172.31.230.0/24",
                        help="mgmt subnet of the lab deployed here (172.31.230.0/24)")
    parser.add_argument("--router", default="r1", help="the router whose traps are recorded")
    parser.add_argument("--link", default="eth1", help="its interface to another router")
    args = parser.parse_args(argv)
    if args.lab:
        lab = Lab.load(args.lab)
        capture = Capture(lab.state.trap_host, lab.state.trap_port)
        try:
            _write(record(lab, capture, args.router, args.link, None))
        finally:
            capture.close()
        return 0
    with tempfile.TemporaryDirectory(prefix="sb-golden-") as tmp:
        topology = load_topology(bgp_topology(Path(tmp))).relocate(args.name, args.subnet)
        host, port = str(topology.mgmt.gateway), _free_port()
        # bound before the mgmt bridge has the address (IP_FREEBIND): the coldStart
        # traps of the deploy itself arrive too
        capture = Capture(host, port, freebind=True)
        try:
            print(f"deploying {args.name} in {args.subnet} (traps to {host}:{port})")
            lab = deploy(topology, trap_target=f"{host}:{port}")
            try:
                cold = capture.wait("coldStart", lab.node(args.router).mgmt_ipv4, COLD_START)
                _write(record(lab, capture, args.router, args.link, cold))
            finally:
                report = lab.destroy()
                if report.left:
                    print(f"destroy left {report.left}", file=sys.stderr)
        finally:
            capture.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
