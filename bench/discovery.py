"""Devices per second discovering many SNMP agents, beside net-snmp walking the same agents
(a benchmark that prints measurements, not a timed test).

The agents are snmpsim (PyPI ``snmpsim``) serving recordings of the core lab's real agents
(bench/data/*.snmprec: FRR routers, the Linux-bridge switch and the VNF, each with net-snmp's
snmpd and lldpd) as N distinct devices on loopback addresses 127.1.x.y, port 161. Device d is
a copy of lab node d % 5 in "group" d // 5: its own sysName, snmpEngineID and LLDP chassis id,
and LLDP neighbours renamed to the devices of its own group, so every group is a small network
whose links discovery can confirm.

In one run, against the same agents:

1. Switchboard: ``agents.discovery.discover`` over the N addresses (v2c profile, a temp SQLite
   inventory), wall time and the CPU time of this Python process;
2. net-snmp: ``snmpbulkwalk -v2c -Cr25 -On -Oq`` of every agent, as many processes at once as
   discovery's concurrency and with its timeout and retries (``-t``/``-r``: with net-snmp's
   own 1 s x 5, snmpsim's queue at 64 walks in flight times walks out and the retries pile
   on), wall time and the CPU time of the children. snmpsim serves exactly
   the recorded subtrees, so one walk of the agent's whole tree (``--netsnmp-walks tree``, the
   default) reads the same tables as eight subtree walks (``subtrees``) with 1/8 the processes.
   A sample of one-varbind walks measures what a process costs before it walks anything.

snmpsim's own CPU (the agent side, shared by both) is read from /proc and printed apart.

    python bench/discovery.py [--devices 1000] [--concurrency 64] [--timeout 5] [--retries 1]
                              [--responders 2] [--profile FILE]
    python bench/discovery.py --record [--subnet 172.31.207.0/24]

Both need root (port 161; the lab for --record), or net.ipv4.ip_unprivileged_port_start <= 161
for the first. ``--record`` deploys the core lab, records bench/data/*.snmprec and destroys it.

With snmpsim 1.2.2 and pysnmp 7.1.30 (the versions in .venv):

- the recorder, snmpsim-record-commands, cannot walk: its callback expects the var-bind table
  pysnmp no longer passes, and pysnmp's walk no longer continues by itself
  (lextudio/pysnmp#243; fix pending in lextudio/snmpsim#11). The recordings are net-snmp walks
  converted by snmpsim's own ``snmpsim-manage-records`` (byte-exact: walked as hex);
- the lightweight responder fails on pysnmp renames (registerRecvCbFun, api.protoModules),
  and the full one chooses data by endpoint only in methods pysnmp no longer calls
  (handleMgmtOperation): so each device is an SNMP engine of its own in the full responder
  (``--v3-engine-id`` sections), which costs about 0.3 s of CPU per device to start;
- snmpsim imports pysmi without declaring it (only in its dev extra): pysmi must be installed
  too, and then pysnmp builds a MIB compiler on the first request of every SnmpEngine
  (about 0.6 s of CPU, in Switchboard's client as well).

snmpsim answers several times slower than snmpd (15-20 ms of CPU per 48-varbind GETBULK;
snmpd serves some 19,000 varbinds/s, LAB_NOTES.md), so on a small machine the agents, not the
clients, set the wall time: compare CPU, and read devices per second beside the agents' CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from types import FrameType

from pydantic import SecretStr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from agents.discovery import discover  # noqa: E402
from collectors.snmp import SnmpClient, SnmpCredentials, SnmpVersion  # noqa: E402
from collectors.snmp_facts import LLDP_LOCAL_OIDS, SYSTEM_OIDS, TABLES  # noqa: E402
from lab import Topology, deploy, load_topology  # noqa: E402
from topology.credentials import CredentialProfile  # noqa: E402
from topology.db import get_engine, init_db  # noqa: E402
from topology.errors import CollectionError  # noqa: E402
from topology.scope import DiscoverySettings, Scope  # noqa: E402
from topology.settings import get_settings  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
VENV_BIN = Path(sys.executable).parent
CORE = ROOT / "lab" / "topologies" / "core.clab.yml"
RECORDED = ("r1", "r2", "r3", "sw1", "vnf1")  # the core lab's managed nodes
# the subtrees discovery reads (collectors/snmp_facts.py), as recorded
SUBTREES = ("1.3.6.1.2.1.1", "1.3.6.1.2.1.2", "1.3.6.1.2.1.31", "1.3.6.1.2.1.4.20",
            "1.3.6.1.2.1.4.34", "1.3.6.1.2.1.47", "1.3.6.1.6.3.10.2.1", "1.0.8802.1.1.2")
# The v2c community the simulated agents answer to. snmpsim takes communities from data
# file names, so it shows in the responders' data paths: fine for a non-secret community
# served on loopback only. The lab's own community is used only while recording, and only
# through an snmp.conf file (never a command line).
COMMUNITY = "bench"
BASE = IPv4Address("127.1.0.0")

SYS_NAME = "1.3.6.1.2.1.1.5.0"
ENGINE_ID = "1.3.6.1.6.3.10.2.1.1.0"
LLDP_LOC_CHASSIS = "1.0.8802.1.1.2.1.3.2.0"
LLDP_LOC_SYS_NAME = "1.0.8802.1.1.2.1.3.3.0"
LLDP_REM_CHASSIS = "1.0.8802.1.1.2.1.4.1.1.5."
LLDP_REM_SYS_NAME = "1.0.8802.1.1.2.1.4.1.1.9."
LLDP_REM_MAN_ADDR = "1.0.8802.1.1.2.1.4.2.1."


class Interrupted(Exception):
    """SIGTERM: unwinds like Ctrl-C so every ``finally`` ends what it started."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(f"signal {signum}")


# -- recordings -------------------------------------------------------------------------

@dataclass
class Record:
    oid: tuple[int, ...]
    tag: str
    value: str

    @property
    def dotted(self) -> str:
        return ".".join(map(str, self.oid))

    def octets(self) -> bytes:
        """An OctetString record's bytes (snmprec: ``4`` plain text, ``4x`` hex)."""
        return bytes.fromhex(self.value) if self.tag.endswith("x") else self.value.encode(
            "iso-8859-1")

    def line(self) -> str:
        return f"{self.dotted}|{self.tag}|{self.value}\n"


def read_snmprec(path: Path) -> list[Record]:
    out = []
    for raw in path.read_text(encoding="iso-8859-1").splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        oid, tag, value = raw.split("|", 2)
        out.append(Record(tuple(int(p) for p in oid.split(".")), tag, value))
    return out


def _octets(value: bytes) -> tuple[str, str]:
    return "4x", value.hex()


def _dotted(oid: str) -> tuple[int, ...]:
    return tuple(int(p) for p in oid.split("."))


def _run(argv: Sequence[str], env: dict[str, str] | None = None,
         timeout_s: float = 120.0) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, env=env,
                          timeout=timeout_s, check=False)
    if done.returncode:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return done.stdout


def _snmp_conf(directory: Path, community: str) -> dict[str, str]:
    """An environment whose net-snmp tools use ``community`` from a conf file, no MIBs."""
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "snmp.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"defCommunity {community}\nhexOutputLength 0\n")
    return {**os.environ, "SNMPCONFPATH": str(directory), "MIBS": ""}


def record(subnet: str) -> None:
    """Deploy the core lab, record its managed nodes into bench/data, destroy it."""
    if os.geteuid() != 0:
        raise SystemExit("--record needs root (it deploys the core lab)")
    name = f"bn-rec{os.getpid() % 10000}"
    topo = load_topology(CORE).relocate(name, subnet)
    with tempfile.TemporaryDirectory(prefix="sb-bench-rec-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        os.chmod(tmp, 0o755)
        os.chmod(home, 0o755)
        print(f"deploying lab {name} on {subnet} ...", flush=True)
        lab = deploy(topo, settings=get_settings(home))
        try:
            env = _snmp_conf(Path(tmp) / "conf", lab.credentials.snmp_community)
            _wait_lldp(topo, env)
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            DATA.mkdir(exist_ok=True)
            for node in RECORDED:
                address = str(topo.nodes[node].mgmt_ipv4)
                walk = Path(tmp) / f"{node}.snmpwalk"
                with walk.open("w") as fh:
                    for subtree in SUBTREES:
                        # -Ox: every string as hex (byte-exact); -Oe/-Ot/-OU: bare numbers
                        out = _run(["snmpbulkwalk", "-v2c", "-Cr25", "-ObentUx", address,
                                    subtree], env)
                        # an empty subtree (no ENTITY-MIB on snmpd) prints "No Such Object"
                        fh.writelines(ln + "\n" for ln in out.splitlines()
                                      if " = " in ln and not ln.split(" = ", 1)[1].startswith(
                                          ("No Such", "No more variables")))
                rec = Path(tmp) / f"{node}.snmprec"
                _run([str(VENV_BIN / "snmpsim-manage-records"), "--source-record-type",
                      "snmpwalk", "--destination-record-type", "snmprec", "--sort-records",
                      "--input-file", str(walk), "--output-file", str(rec)])
                body = rec.read_text(encoding="iso-8859-1")
                target = DATA / f"core-{node}.snmprec"
                target.write_text(
                    f"# core lab node {node} ({topo.nodes[node].role.value}): net-snmp snmpd "
                    f"with lldpd over AgentX, recorded {stamp}\n"
                    f"# by bench/discovery.py --record (snmpbulkwalk -ObentUx of "
                    f"{', '.join(SUBTREES)}, converted by snmpsim-manage-records)\n" + body,
                    encoding="iso-8859-1")
                print(f"{target.relative_to(ROOT)}: {body.count(chr(10))} records", flush=True)
        finally:
            report = lab.destroy()
            print(f"lab {name} destroyed ({report.processes} processes ended"
                  f"{', left: ' + ', '.join(report.left) if report.left else ''})", flush=True)


def _wait_lldp(topo: Topology, env: dict[str, str], timeout_s: float = 120.0) -> None:
    """Until every recorded node sees all its managed neighbours over LLDP."""
    want: dict[str, set[str]] = {n: set() for n in RECORDED}
    for link in topo.links:
        for a, b in ((link.a, link.b), (link.b, link.a)):
            if a.node in want and topo.nodes[b.node].role.managed:
                want[a.node].add(b.node)
    deadline = time.monotonic() + timeout_s
    pending = dict(want)
    while pending:
        for node in list(pending):
            out = subprocess.run(
                ["snmpbulkwalk", "-v2c", "-On", "-Oqv", str(topo.nodes[node].mgmt_ipv4),
                 LLDP_REM_SYS_NAME.rstrip(".")], capture_output=True, text=True, env=env,
                check=False, timeout=30).stdout
            if {v.strip().strip('"') for v in out.splitlines()} >= pending[node]:
                del pending[node]
        if pending and time.monotonic() > deadline:
            raise SystemExit(f"LLDP neighbours not all seen after {timeout_s:.0f} s: "
                             f"{sorted(pending)}")
        if pending:
            time.sleep(2)
    print("LLDP neighbours all seen", flush=True)


# -- N devices from the recordings ------------------------------------------------------

def address_of(device: int) -> IPv4Address:
    """127.1.x.y with y in 1..254: 254 devices per /24."""
    return BASE + (device // 254) * 256 + device % 254 + 1


@dataclass
class Recording:
    node: str
    records: list[Record]
    chassis: bytes
    sys_name: str


def load_recordings() -> list[Recording]:
    out = []
    for node in RECORDED:
        path = DATA / f"core-{node}.snmprec"
        if not path.exists():
            raise SystemExit(f"{path} missing: record it with bench/discovery.py --record")
        records = read_snmprec(path)
        by_oid = {r.dotted: r for r in records}
        out.append(Recording(node, records, by_oid[LLDP_LOC_CHASSIS].octets(),
                             by_oid[SYS_NAME].octets().decode()))
    return out


def device_name(group: int, node: str) -> str:
    return f"g{group:04d}-{node}"


def chassis_of(group: int, member: int) -> bytes:
    """A locally administered MAC per (group, node): 02:5b:gg:gg:00:mm."""
    return bytes((0x02, 0x5B, group >> 8 & 0xFF, group & 0xFF, 0, member + 1))


def engine_id_of(device: int) -> bytes:
    """RFC 3411 text format under net-snmp's enterprise (8072): 80001f8804 + text."""
    return bytes.fromhex("80001f8804") + f"sb-bench-{device:06d}".encode()


def device_records(device: int, recs: Sequence[Recording]) -> list[Record]:
    """Device ``device``: recording d % 5 with the identity of group d // 5."""
    group, member = divmod(device, len(recs))
    rec = recs[member]
    name = device_name(group, rec.node)
    by_chassis = {r.chassis: i for i, r in enumerate(recs)}
    by_name = {r.sys_name: i for i, r in enumerate(recs)}
    # which LLDP neighbour (local port, remote index) is which lab node, for ManAddr rows
    neighbour: dict[tuple[int, ...], int] = {}
    out = []
    for r in rec.records:
        oid, tag, value = r.oid, r.tag, r.value
        dotted = r.dotted
        if dotted in (SYS_NAME, LLDP_LOC_SYS_NAME):
            tag, value = _octets(name.encode())
        elif dotted == ENGINE_ID:
            tag, value = _octets(engine_id_of(device))
        elif dotted == LLDP_LOC_CHASSIS:
            tag, value = _octets(chassis_of(group, member))
        elif dotted.startswith(LLDP_REM_CHASSIS):
            peer = by_chassis.get(r.octets())
            if peer is not None:
                tag, value = _octets(chassis_of(group, peer))
        elif dotted.startswith(LLDP_REM_SYS_NAME):
            peer = by_name.get(r.octets().decode(errors="replace"))
            if peer is not None:
                neighbour[oid[-2:]] = peer
                tag, value = _octets(device_name(group, recs[peer].node).encode())
        elif dotted.startswith(LLDP_REM_MAN_ADDR):
            # index: column . timeMark . localPort . remIndex . subtype(1=ipv4) . 4 . a.b.c.d
            base = len(_dotted(LLDP_REM_MAN_ADDR.rstrip(".")))
            index = oid[base + 1:]
            peer = neighbour.get(index[1:3])
            if peer is not None and len(index) >= 8 and index[3] == 1:
                mine = address_of(group * len(recs) + peer).packed
                oid = (*oid[:-4], *mine)
        out.append(Record(oid, tag, value))
    out.sort(key=lambda r: r.oid)
    return out


def useful_varbinds(records: Sequence[Record]) -> int:
    """What discovery keeps from a device: the system GET, the columns it walks, the LLDP
    local GET, and the probe's GET of sysObjectID."""
    roots = [_dotted(o) for cols in TABLES.values() for o in cols.values()]
    columns = sum(1 for r in records if any(r.oid[:len(c)] == c for c in roots))
    return columns + len(SYSTEM_OIDS) + len(LLDP_LOCAL_OIDS) + 1


# -- snmpsim responders -----------------------------------------------------------------

# snmpsim's text data files stay open in a FIFO of 32 per process (DataFile.max_queue_entries,
# no command-line option); with more devices in flight than that, nearly every request
# reopens a file and its index (measured: +65% agent CPU per varbind at 40 devices in
# flight). The responders run snmpsim's own main() with that cache sized to their devices.
RESPONDER = """import sys
from snmpsim import datafile
from snmpsim.commands.responder import main
datafile.DataFile.max_queue_entries = int(sys.argv.pop(1))
sys.exit(main())
"""


@dataclass
class Responder:
    devices: range
    proc: subprocess.Popen[bytes]
    log: Path

    def cpu_s(self) -> float:
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat[stat.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def listening(self) -> int:
        try:
            return self.log.read_text(errors="replace").count("Listening at UDP/IPv4")
        except OSError:
            return 0


def write_data(work: Path, devices: int, recs: Sequence[Recording]) -> int:
    """One data directory per device, its file named after the community; returns the
    varbinds discovery keeps from all of them."""
    useful = 0
    for d in range(devices):
        records = device_records(d, recs)
        useful += useful_varbinds(records)
        data = work / "agents" / f"{d:05d}"
        data.mkdir(parents=True)
        (data / f"{COMMUNITY}.snmprec").write_text("".join(r.line() for r in records),
                                                   encoding="iso-8859-1")
    return useful


def start_responders(work: Path, devices: int, processes: int) -> list[Responder]:
    """snmpsim responders, each serving a block of devices as SNMP engines of their own.

    One engine per device because snmpsim 1.2.2 chooses data by endpoint only in code
    pysnmp 7.1.30 no longer calls (its handleMgmtOperation overrides; pysnmp calls
    handle_management_operation), so one engine would answer every endpoint with the same
    file. An engine costs about 0.3 s of CPU to set up: 1,000 devices take minutes to start.
    """
    out: list[Responder] = []
    # As root snmpsim wants to drop to another user after binding, but this Python lives
    # under /root (pyenv) and imports modules lazily (dbm on indexing, more on the first
    # requests), which another user cannot read: it keeps root, bound to loopback only.
    env = {**os.environ, "SNMPSIM_ALLOW_ROOT": "true"}
    for k in range(min(processes, devices)):
        # every k-th device: addresses next to each other (as discovery and the walks take
        # them) land on different responders, so all of them work at once
        mine = range(k, devices, processes)
        cache = work / f"cache{k}"
        cache.mkdir()
        log = work / f"snmpsim{k}.log"
        sections = work / f"agents{k}.args"
        sections.write_text("".join(
            f"--v3-engine-id={engine_id_of(d).hex()}\n"
            f"--data-dir={work / 'agents' / f'{d:05d}'}\n"
            f"--agent-udpv4-endpoint={address_of(d)}:161\n"
            for d in mine))
        argv = [sys.executable, "-c", RESPONDER, str(len(mine) + 1), f"--cache-dir={cache}",
                "--log-level=error", f"--logging-method=file:{log}",
                f"--args-from-file={sections}"]
        with log.open("ab") as sink:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sink,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    env=env)
        out.append(Responder(mine, proc, log))
    return out


def stop_processes(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """End exactly these children (by PID: unreaped, so never a reused PID)."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + 10
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(max(0.1, deadline - time.monotonic()))
        if p.poll() is None:
            p.kill()
            p.wait()


async def _answers(devices: Sequence[int], recs: Sequence[Recording],
                   concurrency: int) -> list[int]:
    """Those of ``devices`` whose agent answers with its own sysName now."""
    creds = SnmpCredentials(SnmpVersion.V2C, "bench", community=SecretStr(COMMUNITY))
    gate = asyncio.Semaphore(concurrency)
    async with SnmpClient(timeout_s=2.0, retries=0, max_in_flight=concurrency) as client:
        client.refused_probe_s = 0

        async def one(d: int) -> bool:
            group, member = divmod(d, len(recs))
            async with gate:
                try:
                    got = await client.get(str(address_of(d)), creds, [SYS_NAME])
                except CollectionError:  # not up yet
                    return False
            return got[0].value == device_name(group, recs[member].node).encode()

        ok = await asyncio.gather(*(one(d) for d in devices))
    return [d for d, up in zip(devices, ok, strict=True) if up]


def wait_ready(devices: int, recs: Sequence[Recording], responders: Sequence[Responder],
               concurrency: int) -> float:
    """Until every agent answers its own sysName (each GET also loads what an engine
    loads on its first request, so both clients then meet warm agents)."""
    started = time.monotonic()
    deadline = started + 120 + 0.6 * devices
    shown = 0.0
    while True:
        for r in responders:
            if r.proc.poll() is not None:
                tail = r.log.read_text(errors="replace")[-800:] if r.log.exists() else ""
                raise SystemExit(f"snmpsim responder {r.proc.pid} ended "
                                 f"({r.proc.returncode}): {tail}")
        last = [r.devices[-1] for r in responders]
        if len(asyncio.run(_answers(last, recs, concurrency))) == len(last):
            up = asyncio.run(_answers(range(devices), recs, concurrency))
            if len(up) == devices:
                return time.monotonic() - started
            print(f"  {len(up)} of {devices} agents answer", flush=True)
        if time.monotonic() > deadline:
            raise SystemExit(f"the agents did not all answer within "
                             f"{deadline - started:.0f} s")
        if time.monotonic() - shown > 15:
            shown = time.monotonic()
            print(f"  {sum(r.listening() for r in responders)} of {devices} agents set up "
                  f"after {shown - started:.0f} s", flush=True)
        time.sleep(2)


# -- the two clients --------------------------------------------------------------------

@dataclass
class Measure:
    devices: int = 0
    varbinds: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    agent_cpu_s: float = 0.0
    requests: int = 0
    notes: list[str] = field(default_factory=list)
    collect_wall_s: float = 0.0
    collect_cpu_s: float = 0.0
    failed: int = 0

    @property
    def rate(self) -> float:
        return self.devices / self.wall_s if self.wall_s else 0.0

    @property
    def us_per_varbind(self) -> float:
        return self.cpu_s / self.varbinds * 1e6 if self.varbinds else float("nan")


def _agents_cpu(responders: Sequence[Responder]) -> float:
    return sum(r.cpu_s() for r in responders)


def run_switchboard(devices: int, concurrency: int, timeout_s: float, retries: int,
                    work: Path, responders: Sequence[Responder],
                    profile: Path | None) -> Measure:
    settings = DiscoverySettings(concurrency=concurrency, timeout_s=timeout_s,
                                 retries=retries)
    engine = get_engine(f"sqlite:///{work / 'inventory.db'}")
    init_db(engine)
    cred = CredentialProfile(name="bench", snmp_community=COMMUNITY)  # type: ignore[arg-type]
    targets = [IPv4Network(f"{address_of(d)}/32") for d in range(devices)]
    m = Measure()
    collected: list[float] = []

    def progress(done: int, total: int, current: str) -> None:
        if done == total:
            collected.extend((time.perf_counter(), time.process_time()))

    async def go() -> tuple[object, SnmpClient]:
        client = SnmpClient(timeout_s=settings.timeout_s, retries=settings.retries,
                            max_in_flight=settings.concurrency)
        try:
            result = await discover(targets, profiles=[cred], scope=Scope.build(settings),
                                    settings=settings, engine=engine, progress=progress,
                                    client=client)
        finally:
            await client.close()
        return result, client

    agents0 = _agents_cpu(responders)
    # timed by this process's CPU clock: waiting in epoll costs nothing, so shares are of CPU
    prof = cProfile.Profile(time.process_time) if profile else None
    w0, c0 = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    result, client = asyncio.run(go())
    if prof:
        prof.disable()
    m.wall_s, m.cpu_s = time.perf_counter() - w0, time.process_time() - c0
    m.agent_cpu_s = _agents_cpu(responders) - agents0
    if collected:
        m.collect_wall_s, m.collect_cpu_s = collected[0] - w0, collected[1] - c0
    if prof and profile:
        prof.dump_stats(profile)
    stats = client.stats
    m.varbinds, m.requests = stats.varbinds, stats.requests
    found = getattr(result, "found", [])
    m.devices = len(found)
    failed = getattr(result, "failed", [])
    partial = getattr(result, "partial", [])
    m.notes.append(
        f"found {len(found)}, no answer {getattr(result, 'no_answer', 0)}, failed "
        f"{len(failed)}, partial {len(partial)}; links {getattr(result, 'links', 0)} "
        f"({getattr(result, 'links_confirmed', 0)} confirmed); {stats.requests} requests, "
        f"{stats.timeouts} timeouts, peak {stats.peak_in_flight} in flight")
    return m


_VARBIND = re.compile(rb"^\.[0-9]")
_NOT_A_VARBIND = (b"No Such Object", b"No Such Instance", b"No more variables")


async def _walk_all(jobs: Sequence[tuple[str, str]], concurrency: int, env: dict[str, str],
                    live: set[asyncio.subprocess.Process], timeout_s: float = 5.0,
                    retries: int = 1) -> tuple[int, int]:
    """(varbinds printed, failed walks) of ``snmpbulkwalk`` over (address, oid) jobs."""
    gate = asyncio.Semaphore(concurrency)

    async def one(address: str, oid: str) -> tuple[int, bool]:
        async with gate:
            spawn = asyncio.ensure_future(asyncio.create_subprocess_exec(
                "snmpbulkwalk", "-v2c", "-t", f"{timeout_s:g}", "-r", str(retries), "-Cr25",
                "-On", "-Oq", address, oid,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL, env=env))
            try:
                proc = await asyncio.shield(spawn)
            except asyncio.CancelledError:  # a process may be starting: end it too
                proc = await spawn
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.communicate()
                raise
            live.add(proc)
            try:
                out, _ = await proc.communicate()
            finally:
                if proc.returncode is None:  # cancelled (Ctrl-C, SIGTERM): end it first
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.communicate()
                live.discard(proc)
        count = sum(1 for ln in out.splitlines()
                    if _VARBIND.match(ln) and not any(s in ln for s in _NOT_A_VARBIND))
        return count, proc.returncode != 0

    results = await asyncio.gather(*(one(a, o) for a, o in jobs))
    return sum(c for c, _ in results), sum(1 for _, bad in results if bad)


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_netsnmp(devices: int, concurrency: int, env: dict[str, str], mode: str,
                responders: Sequence[Responder], live: set[asyncio.subprocess.Process],
                timeout_s: float, retries: int) -> Measure:
    oids = (".1",) if mode == "tree" else SUBTREES
    jobs = [(str(address_of(d)), o) for d in range(devices) for o in oids]
    m = Measure(requests=len(jobs))
    agents0 = _agents_cpu(responders)
    w0, c0 = time.perf_counter(), _children_cpu()
    m.varbinds, failed = asyncio.run(_walk_all(jobs, concurrency, env, live, timeout_s,
                                               retries))
    m.wall_s, m.cpu_s = time.perf_counter() - w0, _children_cpu() - c0
    m.agent_cpu_s = _agents_cpu(responders) - agents0
    m.devices = devices
    m.failed = failed
    if failed:
        m.notes.append(f"{failed} walks failed (timed out: their varbinds are missing, the "
                       f"CPU figures are not comparable)")
    return m


def process_floor(devices: int, concurrency: int, env: dict[str, str],
                  live: set[asyncio.subprocess.Process], samples: int = 200) -> float:
    """CPU seconds of one snmpbulkwalk that starts, walks one varbind (sysDescr) and ends."""
    jobs = [(str(address_of(d % devices)), "1.3.6.1.2.1.1.1") for d in range(samples)]
    c0 = _children_cpu()
    asyncio.run(_walk_all(jobs, concurrency, env, live))
    return (_children_cpu() - c0) / samples


# -- report -----------------------------------------------------------------------------

def report(args: argparse.Namespace, sb: Measure, ns: Measure, floor_s: float,
           useful: int, ready_s: float, responders: int) -> None:
    procs = ns.requests
    ns_walk_cpu = max(ns.cpu_s - procs * floor_s, 1e-9)
    ns_walk_us = ns_walk_cpu / ns.varbinds * 1e6 if ns.varbinds else float("nan")
    print(f"\n{args.devices} snmpsim agents on 127.1.0.1-{address_of(args.devices - 1)} port "
          f"161 ({responders} responder processes, ready in {ready_s:.1f} s), concurrency "
          f"{args.concurrency}, {os.cpu_count()} CPUs")
    head = (f"{'':34} {'devices':>8} {'varbinds':>9} {'wall s':>7} {'devices/s':>9} "
            f"{'CPU s':>7} {'CPU µs/varbind':>14}")
    print(head)
    print("-" * len(head))
    print(f"{'switchboard discover':34} {sb.devices:8d} {sb.varbinds:9d} {sb.wall_s:7.1f} "
          f"{sb.rate:9.1f} {sb.cpu_s:7.2f} {sb.us_per_varbind:14.1f}")
    print(f"{'  of which SNMP collection':34} {'':8} {'':9} {sb.collect_wall_s:7.1f} "
          f"{'':9} {sb.collect_cpu_s:7.2f} "
          f"{sb.collect_cpu_s / sb.varbinds * 1e6 if sb.varbinds else 0:14.1f}")
    print(f"{'  per varbind it keeps':34} {'':8} {useful:9d} {'':7} {'':9} {'':7} "
          f"{sb.cpu_s / useful * 1e6 if useful else 0:14.1f}")
    label = f"net-snmp snmpbulkwalk ({args.netsnmp_walks})"
    print(f"{label:34} {ns.devices:8d} {ns.varbinds:9d} {ns.wall_s:7.1f} {ns.rate:9.1f} "
          f"{ns.cpu_s:7.2f} {ns.us_per_varbind:14.1f}")
    print(f"{'  without process start-up':34} {'':8} {'':9} {'':7} {'':9} {ns_walk_cpu:7.2f} "
          f"{ns_walk_us:14.1f}   ({procs} processes x {floor_s * 1e3:.2f} ms)")
    ratio_cpu = sb.us_per_varbind / ns.us_per_varbind
    ratio_walk = sb.us_per_varbind / ns_walk_us
    print(f"{'ratio switchboard / net-snmp':34} {'':8} {'':9} {sb.wall_s / ns.wall_s:6.1f}x "
          f"{sb.rate / ns.rate:8.2f}x {'':7} {ratio_cpu:13.1f}x")
    print(f"{'  against walking only':34} {'':8} {'':9} {'':7} {'':9} {'':7} "
          f"{ratio_walk:13.1f}x")
    cores = os.cpu_count() or 1
    print(f"snmpsim (agent side) CPU s: {sb.agent_cpu_s:.2f} during discovery "
          f"({sb.agent_cpu_s / sb.requests * 1e3 if sb.requests else 0:.1f} ms per request, "
          f"{sb.requests} requests), {ns.agent_cpu_s:.2f} during net-snmp; the machine was "
          f"{(sb.cpu_s + sb.agent_cpu_s) / (sb.wall_s * cores) * 100:.0f}% busy during "
          f"discovery, {(ns.cpu_s + ns.agent_cpu_s) / (ns.wall_s * cores) * 100:.0f}% during "
          f"net-snmp")
    for note in sb.notes:
        print(f"switchboard: {note}")
    for note in ns.notes:
        print(f"net-snmp: {note}")
    scaled = sb.wall_s * 1000 / sb.devices if sb.devices else float("inf")
    aim_wall = sb.devices >= 1000 and sb.wall_s <= 60
    print("aims:")
    print(f"  1,000 devices discovered in <= 60 s: {'met' if aim_wall else 'MISSED'} "
          f"({sb.devices} devices in {sb.wall_s:.1f} s; {scaled:.1f} s per 1,000 at this rate)")
    print(f"  per-varbind CPU <= 3x net-snmp: {'met' if ratio_cpu <= 3 else 'MISSED'} "
          f"({ratio_cpu:.1f}x; {ratio_walk:.1f}x against net-snmp's walking alone)"
          f"{'; NOT COMPARABLE: net-snmp walks failed' if ns.failed else ''}")
    if sb.devices:
        own = sb.cpu_s * 1000 / sb.devices
        print(f"  discovery runs on one core: {own:.1f} s of its own CPU per 1,000 devices, so "
              f"no faster than that even if the agents answered instantly"
              f"{' (the 60 s aim is out of reach on its own CPU)' if own > 60 else ''}")


# -- main -------------------------------------------------------------------------------

def _privileged_ok() -> bool:
    if os.geteuid() == 0:
        return True
    try:
        start = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    except (OSError, ValueError):
        return False
    return start <= 161


def bench(args: argparse.Namespace) -> None:
    if not _privileged_ok():
        raise SystemExit("the agents listen on port 161 (discovery's port): run as root, or "
                         "lower net.ipv4.ip_unprivileged_port_start to 161")
    if shutil.which("snmpbulkwalk") is None:
        raise SystemExit("snmpbulkwalk missing: apt-get install snmp")
    recs = load_recordings()
    responders: list[Responder] = []
    live: set[asyncio.subprocess.Process] = set()
    with tempfile.TemporaryDirectory(prefix="sb-bench-disc-") as tmp:
        work = Path(tmp)
        try:
            useful = write_data(work, args.devices, recs)
            responders = start_responders(work, args.devices, args.responders)
            print(f"{args.devices} agents from {len(recs)} recordings, {len(responders)} "
                  f"snmpsim responders (PIDs {', '.join(str(r.proc.pid) for r in responders)})"
                  f"; waiting for every agent to answer ...", flush=True)
            ready_s = wait_ready(args.devices, recs, responders, args.concurrency)
            print("switchboard discovery ...", flush=True)
            sb = run_switchboard(args.devices, args.concurrency, args.timeout, args.retries,
                                 work, responders, args.profile)
            env = _snmp_conf(work / "netsnmp", COMMUNITY)
            print("net-snmp walks ...", flush=True)
            ns = run_netsnmp(args.devices, args.concurrency, env, args.netsnmp_walks,
                             responders, live, args.timeout, args.retries)
            floor_s = process_floor(args.devices, args.concurrency, env, live)
            report(args, sb, ns, floor_s, useful, ready_s, len(responders))
            if args.profile:
                print(f"\ncProfile of the discovery phase: {args.profile}")
                stats = pstats.Stats(str(args.profile))
                stats.sort_stats("tottime").print_stats(15)
        finally:
            for proc in list(live):  # none left unless the event loop died under them
                with contextlib.suppress(ProcessLookupError, RuntimeError):
                    proc.kill()
            stop_processes([r.proc for r in responders])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64,
                        help="discovery's concurrency, and net-snmp processes at once")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="discovery's SNMP timeout per attempt (the product's default is "
                        "1 s; snmpsim answers about 10x slower than snmpd, and at 1 s "
                        "discovery's retries overload it)")
    parser.add_argument("--retries", type=int, default=1,
                        help="retries after a timeout, both sides (discovery's default)")
    parser.add_argument("--responders", type=int, default=os.cpu_count() or 1,
                        help="snmpsim processes (the devices are split between them)")
    parser.add_argument("--netsnmp-walks", choices=("tree", "subtrees"), default="tree",
                        help="one walk of each agent's tree, or one per recorded subtree")
    parser.add_argument("--profile", type=Path, help="write a cProfile of discovery here")
    parser.add_argument("--record", action="store_true",
                        help="deploy the core lab and record bench/data/*.snmprec")
    parser.add_argument("--subnet", default="172.31.207.0/24",
                        help="the recording lab's mgmt subnet (--record)")
    args = parser.parse_args(argv)
    if not 1 <= args.devices <= 254 * 256:
        raise SystemExit("--devices between 1 and 65024")
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    try:
        if args.record:
            record(args.subnet)
        else:
            bench(args)
    except (KeyboardInterrupt, Interrupted):
        raise SystemExit("interrupted: every process this run started has ended") from None


if __name__ == "__main__":
    main()
