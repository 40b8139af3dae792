"""Interface counters per second polling N devices x M interfaces, beside net-snmp fetching
the same OIDs from the same agents (a benchmark that prints measurements, not a timed test).

The agents are snmpsim (PyPI ``snmpsim``) serving one recording of the core lab's real agents
(bench/data/core-r1.snmprec by default, net-snmp's snmpd on an FRR router) widened to M
interfaces: the recorded ifTable/ifXTable rows are replicated under new ifIndex values 1..M
(row 1 stays the loopback, the others cycle through the recorded Ethernet rows; names
``eth<n>``, ifNumber = M), and the octet and packet counters get a per-row offset so that
they have the sizes of a router that has been up for a while (the recording was taken right
after the lab came up: two-byte counters). Everything else is served as recorded. Device d
listens on 127.2.x.y port 161 (bench/discovery.py uses 127.1.x.y), one snmpsim engine per
device, the devices split between a few responder processes, as bench/discovery.py does.
Fewer, wider devices rather than ~1,700 six-interface ones: snmpsim spends about 0.2 s of
CPU setting up each device's engine, and 10,000 interfaces on 209 devices is also what a
real network's switches look like.

In one run, against the same agents (every agent first answers ifNumber, then an unmeasured
first cycle reads every device's ifIndex -> name table, as the poller's first poll does):

1. Switchboard: one ``CounterCollector`` over one ``SnmpClient`` (the client's default
   bounds: 64 requests in flight, 4 per device; 1 retry as the poller, but a 10 s timeout
   (``--timeout``): snmpsim spends ~25 ms of CPU per request, so with 64 requests in flight
   its queue alone nears the poller's 2 s, and a timed-out request would be measured twice),
   every device polled once per cycle with at most ``concurrency``
   devices at once (``Poller.cycle`` without the database, the rate engine and the health
   poll: the collector alone), ``--cycles`` cycles. Per cycle: wall time, the CPU time of
   this process (time.process_time) and the varbinds the client received
   (``client.stats.varbinds``). The production poll of a device with M interfaces is
   ceil(M / 6) GETBULKs of at most 100 varbinds sent together (sysUpTime and ifNumber as
   non-repeaters in the first, then 15 counter columns side by side, 6 rows each).
2. net-snmp (5.9, numeric OIDs, no MIBs loaded, community from a temporary snmp.conf),
   the same devices at the same concurrency (at most ``concurrency`` devices at once, 4
   processes per device and 64 in all: the client's bounds) and the same timeout and
   retries, ``--cycles`` cycles, CPU from
   getrusage(RUSAGE_CHILDREN), varbinds counted from the output lines. Two ways, both
   fetching exactly the production poll's varbinds (2 scalars + 15 columns x M rows):

   * ``walks``: what the issue names: per device one ``snmpbulkwalk -v2c -Cr<M+1> -On -Oq``
     per column (15 processes; M+1 so that one request holds the whole column and shows its
     end, -Cr<M> takes a second request that returns M rows of the next column), plus one
     ``snmpget`` of sysUpTime.0 and ifNumber.0: 16 processes per device.
   * ``pdus``: the production poll's own requests, recorded from a Switchboard cycle and
     replayed one ``snmpbulkget -Cn<n> -Cr<r>`` per GETBULK (same OIDs, non-repeaters and
     max-repetitions): the same packets on the wire, ceil(M / 6) processes per device.

   net-snmp's figures include starting a process per request; the CPU of a process that
   starts and fetches one varbind is measured too, and net-snmp's CPU without it printed.

snmpsim's own CPU (the agent side, shared by both) is read from /proc and printed apart, as
is the CPU the rest of the machine used during each phase (other work skews a run).

    python bench/polling.py [--interfaces 10000] [--per-device 48] [--cycles 3]
                            [--concurrency 32] [--netsnmp walks,pdus] [--profile FILE]
                            [--agent-max-varbinds 100] [--timeout 10] [--responders 2]

Needs root, or net.ipv4.ip_unprivileged_port_start <= 161 (the agents listen on port 161:
the collector polls that port), and net-snmp's tools (apt-get install snmp).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import math
import os
import pstats
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from pydantic import SecretStr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from bench.discovery import (  # noqa: E402
    _NOT_A_VARBIND,
    _VARBIND,
    COMMUNITY,
    DATA,
    Interrupted,
    Record,
    Responder,
    _children_cpu,
    _on_sigterm,
    _privileged_ok,
    _snmp_conf,
    read_snmprec,
    stop_processes,
)
from collectors.snmp import SnmpClient, SnmpCredentials, SnmpVersion  # noqa: E402
from collectors.snmp_counters import (  # noqa: E402
    COLUMNS_64,
    IF_NUMBER,
    SYS_UPTIME,
    CounterCollector,
)
from topology.errors import CollectionError  # noqa: E402

BASE = IPv4Address("127.2.0.0")
IF_TABLE = (1, 3, 6, 1, 2, 1, 2, 2, 1)        # ifEntry
IFX_TABLE = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)   # ifXEntry
IF_NUMBER_T = (1, 3, 6, 1, 2, 1, 2, 1, 0)
SYS_NAME_T = (1, 3, 6, 1, 2, 1, 1, 5, 0)
NAME_COLUMNS = {(*IF_TABLE, 2), (*IFX_TABLE, 1)}      # ifDescr, ifName
INDEX_COLUMN = (*IF_TABLE, 1)                          # ifIndex
# octet and packet counters (errors and discards stay as recorded: zero, as on most ports)
COUNTERS_32 = {(*IF_TABLE, c) for c in (10, 11, 12, 16, 17, 18)}
COUNTERS_64 = {(*IFX_TABLE, c) for c in range(6, 14)}
PER_TARGET = 4   # SnmpClient's default max_in_flight_per_target
IN_FLIGHT = 64   # SnmpClient's default max_in_flight
# bench/discovery.py's responder (snmpsim's main() with its data-file cache sized to the
# devices), plus the GETBULK answer size. pysnmp 7.1.30's command responder caps a GETBULK
# answer at BulkCommandResponder.max_varbinds = 64 varbinds (max-repetitions cut to
# 64 // repeaters: 4 rows of 15 columns); snmpsim's --max-var-binds sets ``maxVarBinds``, a
# name pysnmp 7 no longer reads. The recorded agents are net-snmp's snmpd, whose
# maxGetbulkResponses is 100, and the collector plans its requests for 100: the responders
# answer up to --agent-max-varbinds (default 100) like the recorded agents would.
RESPONDER = """import sys
from pysnmp.entity.rfc3413 import cmdrsp
from snmpsim import datafile
from snmpsim.commands.responder import main
datafile.DataFile.max_queue_entries = int(sys.argv.pop(1))
cmdrsp.BulkCommandResponder.max_varbinds = int(sys.argv.pop(1))
sys.exit(main())
"""
CREDS = SnmpCredentials(SnmpVersion.V2C, "bench", community=SecretStr(COMMUNITY))
_CLK = os.sysconf("SC_CLK_TCK")


# -- the devices ------------------------------------------------------------------------

def address_of(device: int) -> IPv4Address:
    """127.2.x.y with y in 1..254: 254 devices per /24."""
    return BASE + (device // 254) * 256 + device % 254 + 1


def engine_id_of(device: int) -> bytes:
    """RFC 3411 text format under net-snmp's enterprise (8072): 80001f8804 + text."""
    return bytes.fromhex("80001f8804") + f"sb-poll-{device:06d}".encode()


def widen(records: Sequence[Record], device: int, width: int) -> list[Record]:
    """The recording with ``width`` interfaces (see the module docstring)."""
    rows: dict[int, list[Record]] = {}
    out: list[Record] = []
    for r in records:
        table = r.oid[:len(IF_TABLE)] == IF_TABLE or r.oid[:len(IFX_TABLE)] == IFX_TABLE
        if table:
            rows.setdefault(r.oid[-1], []).append(r)
        elif r.oid == IF_NUMBER_T:
            out.append(Record(r.oid, "2", str(width)))
        elif r.oid == SYS_NAME_T:
            out.append(Record(r.oid, "4", f"poll-{device:05d}"))
        else:
            out.append(r)
    recorded = sorted(rows)
    if len(recorded) < 2:
        raise SystemExit("the recording needs at least two interfaces to widen")
    for k in range(1, width + 1):
        template = recorded[k - 1] if k <= len(recorded) else recorded[
            1 + (k - 2) % (len(recorded) - 1)]
        rng = random.Random(device * 1_000_003 + k)
        for r in rows[template]:
            column = r.oid[:-1]
            tag, value = r.tag, r.value
            if column == INDEX_COLUMN:
                value = str(k)
            elif column in NAME_COLUMNS and k > len(recorded):
                tag, value = "4", f"eth{k - 2}"
            elif column in COUNTERS_32:
                value = str((int(value) + rng.randrange(1 << 32)) % (1 << 32))
            elif column in COUNTERS_64:
                value = str(int(value) + rng.randrange(10**6, 10**12))
            out.append(Record((*column, k), tag, value))
    out.sort(key=lambda r: r.oid)
    return out


def write_data(work: Path, devices: int, width: int, template: Path) -> None:
    records = read_snmprec(template)
    for d in range(devices):
        data = work / "agents" / f"{d:05d}"
        data.mkdir(parents=True)
        (data / f"{COMMUNITY}.snmprec").write_text(
            "".join(r.line() for r in widen(records, d, width)), encoding="iso-8859-1")


def start_responders(work: Path, devices: int, processes: int,
                     max_varbinds: int = 100) -> list[Responder]:
    """bench/discovery.py's responders (one snmpsim engine per device, the data-file
    cache sized to the devices) on this benchmark's addresses. Devices are dealt out in
    turn (responder k serves k, k + processes, ...): both clients poll the devices in order,
    and blocks of consecutive devices would keep one responder busy and the others idle."""
    out: list[Responder] = []
    started: list[subprocess.Popen[bytes]] = []
    env = {**os.environ, "SNMPSIM_ALLOW_ROOT": "true"}
    try:
        for k in range(min(processes, devices)):
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
            argv = [sys.executable, "-c", RESPONDER, str(len(mine) + 1), str(max_varbinds),
                    f"--cache-dir={cache}",
                    "--log-level=error", f"--logging-method=file:{log}",
                    f"--args-from-file={sections}"]
            with log.open("ab") as sink:
                started.append(subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                    start_new_session=True, env=env))
            out.append(Responder(mine, started[-1], log))
    except BaseException:
        stop_processes(started)
        raise
    return out


async def _answering(devices: Sequence[int], width: int, concurrency: int) -> int:
    gate = asyncio.Semaphore(concurrency)
    async with SnmpClient(timeout_s=1.0, retries=0, max_in_flight=concurrency) as client:
        client.refused_probe_s = 0

        async def one(d: int) -> bool:
            async with gate:
                try:
                    got = await client.get(str(address_of(d)), CREDS, [IF_NUMBER])
                except CollectionError:
                    return False
            return got[0].value == width

        return sum(await asyncio.gather(*(one(d) for d in devices)))


def wait_ready(devices: int, width: int, responders: Sequence[Responder],
               concurrency: int) -> float:
    started = time.monotonic()
    deadline = started + 120 + 0.6 * devices
    shown = started
    while True:
        for r in responders:
            if r.proc.poll() is not None:
                tail = r.log.read_text(errors="replace")[-800:] if r.log.exists() else ""
                raise SystemExit(f"snmpsim responder {r.proc.pid} ended "
                                 f"({r.proc.returncode}): {tail}")
        last = [r.devices[-1] for r in responders]
        if asyncio.run(_answering(last, width, concurrency)) == len(last):
            up = asyncio.run(_answering(range(devices), width, concurrency))
            if up == devices:
                return time.monotonic() - started
            print(f"  {up} of {devices} agents answer", flush=True)
        if time.monotonic() > deadline:
            raise SystemExit(f"the agents did not all answer within {deadline - started:.0f} s")
        if time.monotonic() - shown > 15:
            shown = time.monotonic()
            print(f"  {sum(r.listening() for r in responders)} of {devices} agents set up "
                  f"after {shown - started:.0f} s", flush=True)
        time.sleep(2)


# -- measuring --------------------------------------------------------------------------

def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy since boot (/proc/stat)."""
    with open("/proc/stat") as fh:
        parts = fh.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, parts[:8])
    return (user + nice + system + irq + softirq + steal) / _CLK


@dataclass
class Cycle:
    wall_s: float
    cpu_s: float          # the client's: this process, or net-snmp's children
    varbinds: int
    requests: int         # SNMP requests (Switchboard) or processes (net-snmp)
    agent_cpu_s: float
    other_cpu_s: float    # everything else on the machine during the cycle
    failures: int = 0


@dataclass
class Side:
    label: str
    cycles: list[Cycle] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def mean(self, attr: str) -> float:
        return statistics.fmean(getattr(c, attr) for c in self.cycles)

    @property
    def rate(self) -> float:
        return sum(c.varbinds for c in self.cycles) / sum(c.wall_s for c in self.cycles)

    @property
    def cpu_per_10k(self) -> float:
        return sum(c.cpu_s for c in self.cycles) / sum(c.varbinds for c in self.cycles) * 1e4


class Meter:
    """Deltas of wall, client CPU, agent CPU and the rest of the machine's CPU."""

    def __init__(self, responders: Sequence[Responder], children: bool) -> None:
        self.responders = responders
        self.children = children

    def _client(self) -> float:
        return _children_cpu() if self.children else time.process_time()

    def _agents(self) -> float:
        return sum(r.cpu_s() for r in self.responders)

    def start(self) -> None:
        self.t0 = (time.perf_counter(), self._client(), self._agents(), machine_busy_s(),
                   time.process_time() + _children_cpu())

    def stop(self, varbinds: int, requests: int, failures: int) -> Cycle:
        wall, client, agents, busy, mine = (
            time.perf_counter(), self._client(), self._agents(), machine_busy_s(),
            time.process_time() + _children_cpu())
        w0, c0, a0, b0, m0 = self.t0
        other = (busy - b0) - (mine - m0) - (agents - a0)
        return Cycle(wall - w0, client - c0, varbinds, requests, agents - a0,
                     max(0.0, other), failures)


# -- Switchboard ------------------------------------------------------------------------

Pdu = tuple[str, tuple[str, ...], int, int]  # host, OIDs, non-repeaters, max-repetitions


async def _switchboard(hosts: Sequence[str], width: int, args: argparse.Namespace,
                       meter: Meter, prof: cProfile.Profile | None
                       ) -> tuple[Side, list[Pdu], Cycle]:
    side = Side("Switchboard CounterCollector")
    pdus: list[Pdu] = []
    async with SnmpClient(timeout_s=args.timeout, retries=args.retries,
                          max_in_flight=IN_FLIGHT,
                          max_in_flight_per_target=PER_TARGET) as client:
        collector = CounterCollector(client)
        gate = asyncio.Semaphore(args.concurrency)
        bad: list[str] = []

        async def one(host: str, refresh: bool) -> bool:
            async with gate:
                try:
                    sample = await collector.poll(host, CREDS)
                except CollectionError as exc:
                    bad.append(str(exc))
                    return False
            if len(sample.interfaces) != width or sample.index_refreshed != refresh:
                bad.append(f"{host}: {len(sample.interfaces)} of {width} interfaces in the "
                           f"sample, index_refreshed {sample.index_refreshed}")
            return True

        async def cycle(refresh: bool) -> Cycle:
            gc.collect()
            v0, r0 = client.stats.varbinds, client.stats.requests
            meter.start()
            ok = await asyncio.gather(*(one(h, refresh) for h in hosts))
            return meter.stop(client.stats.varbinds - v0, client.stats.requests - r0,
                              ok.count(False))

        first = await cycle(refresh=True)  # reads every ifIndex -> name table
        # one unmeasured steady-state cycle, recording the requests for net-snmp's "pdus"
        real = client.get_bulk

        async def recording(host: str, creds: SnmpCredentials, oids: Sequence[str],
                            **kw: Any) -> Any:
            pdus.append((host, tuple(oids), kw.get("non_repeaters", 0),
                         kw.get("max_repetitions", 25)))
            return await real(host, creds, oids, **kw)

        client.get_bulk = recording  # type: ignore[method-assign]
        try:
            await cycle(refresh=False)
        finally:
            del client.get_bulk
        for _ in range(args.cycles):
            if prof:
                prof.enable()
            side.cycles.append(await cycle(refresh=False))
            if prof:
                prof.disable()
        s = client.stats
        side.notes.append(f"{s.requests} requests in all, {s.timeouts} timeouts, peak "
                          f"{s.peak_in_flight} in flight ({s.peak_in_flight_per_target} per "
                          f"device)")
        if bad:
            side.notes.append(f"{len(bad)} polls not as expected, e.g. {bad[0]}")
    return side, pdus, first


def run_switchboard(devices: int, args: argparse.Namespace,
                    responders: Sequence[Responder]) -> tuple[Side, list[Pdu], Cycle]:
    hosts = [str(address_of(d)) for d in range(devices)]
    # timed by this process's CPU clock: waiting in epoll costs nothing, so shares are of CPU
    prof = cProfile.Profile(time.process_time) if args.profile else None
    side, pdus, first = asyncio.run(_switchboard(hosts, args.per_device, args,
                                                 Meter(responders, children=False), prof))
    if prof:
        prof.dump_stats(args.profile)
    return side, pdus, first


# -- net-snmp ---------------------------------------------------------------------------

Job = list[str]


def netsnmp_jobs(mode: str, devices: int, width: int, pdus: Sequence[Pdu]
                 ) -> dict[str, list[Job]]:
    """Per host, the command lines of one cycle (without the common options)."""
    hosts = [str(address_of(d)) for d in range(devices)]
    jobs: dict[str, list[Job]] = {h: [] for h in hosts}
    if mode == "walks":
        for h in hosts:
            jobs[h].append(["snmpget", h, SYS_UPTIME, IF_NUMBER])
            jobs[h] += [["snmpbulkwalk", f"-Cr{width + 1}", h, column]
                        for column in COLUMNS_64.values()]
    else:
        for host, oids, nr, reps in pdus:
            jobs[host].append(["snmpbulkget", f"-Cn{nr}", f"-Cr{reps}", host, *oids])
    return jobs


def _count_varbinds(out: bytes) -> int:
    return sum(1 for ln in out.splitlines()
               if _VARBIND.match(ln) and not any(s in ln for s in _NOT_A_VARBIND))


async def _run_jobs(jobs: dict[str, list[Job]], concurrency: int, env: dict[str, str],
                    live: set[asyncio.subprocess.Process], timeout_s: float = 10.0,
                    retries: int = 1) -> tuple[int, int, int]:
    """(varbinds printed, processes, failed processes): at most ``concurrency`` hosts at
    once, PER_TARGET processes per host and IN_FLIGHT in all (the client's bounds)."""
    gate = asyncio.Semaphore(concurrency)
    flight = asyncio.Semaphore(IN_FLIGHT)

    async def run(job: Job, slot: asyncio.Semaphore) -> tuple[int, bool]:
        async with slot, flight:
            tool, *rest = job
            proc = await asyncio.create_subprocess_exec(
                tool, "-v2c", "-t", f"{timeout_s:g}", "-r", str(retries), "-On", "-Oq", *rest,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL, env=env)
            live.add(proc)
            try:
                out, _ = await proc.communicate()
            finally:
                if proc.returncode is None:  # cancelled (Ctrl-C): end it, by its PID
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
                live.discard(proc)
        return _count_varbinds(out), proc.returncode != 0

    async def host(host_jobs: list[Job]) -> list[tuple[int, bool]]:
        async with gate:
            slot = asyncio.Semaphore(PER_TARGET)
            return list(await asyncio.gather(*(run(j, slot) for j in host_jobs)))

    done = [r for rs in await asyncio.gather(*(host(js) for js in jobs.values())) for r in rs]
    return sum(c for c, _ in done), len(done), sum(1 for _, bad in done if bad)


def run_netsnmp(mode: str, jobs: dict[str, list[Job]], args: argparse.Namespace,
                env: dict[str, str], responders: Sequence[Responder],
                live: set[asyncio.subprocess.Process]) -> Side:
    per_device = statistics.fmean(len(j) for j in jobs.values())
    label = {"walks": f"net-snmp walks ({per_device:.0f} proc/device)",
             "pdus": f"net-snmp same PDUs ({per_device:.0f} proc/device)"}[mode]
    side = Side(label)
    meter = Meter(responders, children=True)
    for _ in range(args.cycles):
        meter.start()
        varbinds, procs, failed = asyncio.run(_run_jobs(jobs, args.concurrency, env, live,
                                                        args.timeout, args.retries))
        side.cycles.append(meter.stop(varbinds, procs, failed))
    return side


def process_floor(devices: int, concurrency: int, env: dict[str, str],
                  live: set[asyncio.subprocess.Process], samples: int = 200) -> float:
    """CPU seconds of one net-snmp process that starts, GETs one varbind and ends."""
    jobs = {f"{d}": [["snmpget", str(address_of(d % devices)), SYS_UPTIME]]
            for d in range(samples)}
    c0 = _children_cpu()
    asyncio.run(_run_jobs(jobs, concurrency, env, live))
    return (_children_cpu() - c0) / samples


# -- report -----------------------------------------------------------------------------

def report(args: argparse.Namespace, devices: int, sb: Side, first: Cycle,
           others: Sequence[Side], floor_s: float, ready_s: float, responders: int) -> None:
    interfaces = devices * args.per_device
    print(f"\n{devices} snmpsim agents x {args.per_device} interfaces = {interfaces} "
          f"interfaces (127.2.0.1-{address_of(devices - 1)} port 161, {responders} responder "
          f"processes, ready in {ready_s:.1f} s, GETBULK answers of at most "
          f"{args.agent_max_varbinds} varbinds); concurrency {args.concurrency} devices; "
          f"{args.cycles} cycles each; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}")
    print(f"per cycle, mean of {args.cycles}:")
    head = (f"{'':36} {'interfaces':>10} {'varbinds':>9} {'requests':>8} {'cycle s':>8} "
            f"{'varbinds/s':>10} {'CPU s':>7} {'CPU s/10k vb':>12} {'agent CPU s':>11} "
            f"{'other CPU s':>11}")
    print(head)
    print("-" * len(head))

    def row(s: Side) -> None:
        print(f"{s.label:36} {interfaces:10d} {s.mean('varbinds'):9.0f} "
              f"{s.mean('requests'):8.0f} {s.mean('wall_s'):8.3f} {s.rate:10.0f} "
              f"{s.mean('cpu_s'):7.3f} {s.cpu_per_10k:12.4f} {s.mean('agent_cpu_s'):11.2f} "
              f"{s.mean('other_cpu_s'):11.2f}")

    row(sb)
    for s in others:
        row(s)
        procs = s.mean("requests")
        bare = max(s.mean("cpu_s") - procs * floor_s, 0.0)
        print(f"{'  without process start-up':36} {'':10} {'':9} {'':8} {'':8} {'':10} "
              f"{bare:7.3f} {bare / s.mean('varbinds') * 1e4:12.4f}   ({procs:.0f} processes "
              f"x {floor_s * 1e3:.2f} ms)")
    for s in others:
        bare = s.mean("cpu_s") - s.mean("requests") * floor_s
        # below a tenth of the total it is within the error of the start-up estimate
        against = (f"{sb.mean('cpu_s') / bare:.1f}x against its CPU without start-up"
                   if bare > 0.1 * s.mean("cpu_s") else
                   "its CPU without start-up is within the error of the start-up estimate")
        print(f"{'ratio Switchboard / ' + s.label.split(' (')[0]:36} {'':10} {'':9} {'':8} "
              f"{sb.mean('wall_s') / s.mean('wall_s'):7.2f}x {sb.rate / s.rate:9.2f}x "
              f"{sb.mean('cpu_s') / s.mean('cpu_s'):6.2f}x "
              f"{sb.cpu_per_10k / s.cpu_per_10k:11.2f}x   ({against})")
    print("cycles (wall s / client CPU s / agent CPU s / other CPU s):")
    print(f"  {'Switchboard first poll (index)':34} {first.wall_s:.3f} / {first.cpu_s:.3f} / "
          f"{first.agent_cpu_s:.2f} / {first.other_cpu_s:.2f}  ({first.varbinds} varbinds, "
          f"{first.requests} requests; not in the table)")
    for s in (sb, *others):
        print(f"  {s.label:34} " + ",  ".join(
            f"{c.wall_s:.3f} / {c.cpu_s:.3f} / {c.agent_cpu_s:.2f} / {c.other_cpu_s:.2f}"
            for c in s.cycles))
        failures = sum(c.failures for c in s.cycles)
        if failures:
            print(f"    {failures} failed polls or processes")
        for note in s.notes:
            print(f"    {note}")
    share = sb.mean("cpu_s") * 10_000 / interfaces / 60
    cycle_10k = sb.mean("wall_s") * 10_000 / interfaces
    cores = os.cpu_count() or 1
    busy = (sb.mean("cpu_s") + sb.mean("agent_cpu_s") + sb.mean("other_cpu_s")) / (
        sb.mean("wall_s") * cores)
    print("aims:")
    print(f"  (a) 10,000 interfaces every 60 s under half of one core: CPU "
          f"{'PASS' if share < 0.5 else 'FAIL'} ({sb.mean('cpu_s') * 10_000 / interfaces:.3f} "
          f"CPU s per cycle scaled to 10,000 interfaces / 60 s = {share:.3f} of a core); cycle "
          f"{'PASS' if cycle_10k <= 60 else 'FAIL'} ({cycle_10k:.2f} s scaled to 10,000 "
          f"interfaces)")
    print(f"      per Switchboard cycle snmpsim used {sb.mean('agent_cpu_s'):.1f} CPU s, other "
          f"work {sb.mean('other_cpu_s'):.1f}, Switchboard {sb.mean('cpu_s'):.1f}: the {cores} "
          f"CPUs were {busy * 100:.0f}% busy (near 100%: the agents and the machine, not the "
          f"client, set the cycle)")
    for s in others:
        ratio = sb.rate / s.rate
        print(f"  (b) varbinds/s at least half of {s.label}: "
              f"{'PASS' if ratio >= 0.5 else 'FAIL'} ({sb.rate:.0f} / {s.rate:.0f} = "
              f"{ratio:.2f})")


# -- main -------------------------------------------------------------------------------

def bench(args: argparse.Namespace) -> None:
    if not _privileged_ok():
        raise SystemExit("the agents listen on port 161 (the collector's port): run as root, "
                         "or lower net.ipv4.ip_unprivileged_port_start to 161")
    for tool in ("snmpbulkwalk", "snmpbulkget", "snmpget"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} missing: apt-get install snmp")
    template = DATA / f"core-{args.template}.snmprec"
    if not template.exists():
        raise SystemExit(f"{template} missing")
    devices = args.devices or math.ceil(args.interfaces / args.per_device)
    if not 1 <= devices <= 254 * 256:
        raise SystemExit("between 1 and 65024 devices")
    modes = [m for m in args.netsnmp.split(",") if m]
    if any(m not in ("walks", "pdus") for m in modes):
        raise SystemExit("--netsnmp: a list of walks, pdus")
    responders: list[Responder] = []
    live: set[asyncio.subprocess.Process] = set()
    with tempfile.TemporaryDirectory(prefix="sb-bench-poll-") as tmp:
        work = Path(tmp)
        try:
            write_data(work, devices, args.per_device, template)
            responders = start_responders(work, devices, args.responders,
                                          args.agent_max_varbinds)
            print(f"{devices} agents x {args.per_device} interfaces from "
                  f"{template.relative_to(ROOT)}, {len(responders)} snmpsim responders (PIDs "
                  f"{', '.join(str(r.proc.pid) for r in responders)}); waiting for every "
                  f"agent to answer ...", flush=True)
            ready_s = wait_ready(devices, args.per_device, responders, args.concurrency)
            print("Switchboard cycles ...", flush=True)
            sb, pdus, first = run_switchboard(devices, args, responders)
            env = _snmp_conf(work / "netsnmp", COMMUNITY)
            others = []
            for mode in modes:
                print(f"net-snmp cycles ({mode}) ...", flush=True)
                jobs = netsnmp_jobs(mode, devices, args.per_device, pdus)
                others.append(run_netsnmp(mode, jobs, args, env, responders, live))
            floor_s = process_floor(devices, args.concurrency, env, live)
            report(args, devices, sb, first, others, floor_s, ready_s, len(responders))
            if args.profile:
                print(f"\ncProfile of the measured Switchboard cycles: {args.profile}")
                stats = pstats.Stats(str(args.profile))
                stats.sort_stats("tottime").print_stats(25)
                stats.sort_stats("cumulative").print_stats(30)
        finally:
            for proc in list(live):
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signal.SIGKILL)
            stop_processes([r.proc for r in responders])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--interfaces", type=int, default=10_000,
                        help="at least this many interfaces in all (sets --devices)")
    parser.add_argument("--per-device", type=int, default=48, help="interfaces per device")
    parser.add_argument("--devices", type=int, default=0,
                        help="devices (default: enough for --interfaces)")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32,
                        help="devices polled at once (the poller's default), both sides")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds per attempt, both sides (the poller's default is 2; "
                        "snmpsim needs ~25 ms of CPU per request, so at 64 requests in "
                        "flight its queue alone approaches 2 s)")
    parser.add_argument("--retries", type=int, default=1, help="both sides (the poller's)")
    parser.add_argument("--responders", type=int, default=os.cpu_count() or 1,
                        help="snmpsim processes (the devices are split between them)")
    parser.add_argument("--netsnmp", default="walks,pdus",
                        help="net-snmp ways to run, comma-separated: walks, pdus")
    parser.add_argument("--agent-max-varbinds", type=int, default=100,
                        help="most varbinds in an agent's GETBULK answer (net-snmp's "
                        "maxGetbulkResponses: 100; pysnmp's own default: 64)")
    parser.add_argument("--template", default="r1",
                        help="the recording to widen: bench/data/core-<template>.snmprec")
    parser.add_argument("--profile", type=Path,
                        help="write a cProfile of the measured Switchboard cycles here")
    args = parser.parse_args(argv)
    if args.per_device < 2 or args.cycles < 1 or args.concurrency < 1:
        raise SystemExit("--per-device >= 2, --cycles >= 1, --concurrency >= 1")
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        bench(args)
    except (KeyboardInterrupt, Interrupted):
        raise SystemExit("interrupted: every process this run started has ended") from None


if __name__ == "__main__":
    main()
