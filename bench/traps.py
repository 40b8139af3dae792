"""SNMPv2c traps per second received with nothing lost, Switchboard's fault service beside
net-snmp's snmptrapd logging to a file (a benchmark that prints measurements, not a timed
test).

A paced sender (a separate process, stdlib only) sends a sustained stream of pre-encoded v2c
traps on loopback at each rate of a ladder for ``--duration`` seconds, first into
Switchboard, then into snmptrapd, each receiver started fresh for every rate:

* Switchboard: ``agents.fault.service.FaultService`` (the receiver, the fault agent in its
  worker thread, the notifier, the periodic work: what ``switchboard traps listen`` runs) in
  a process of its own (this file, ``--serve-switchboard``), on 127.0.0.1 with a private
  SQLite database in a temporary SWITCHBOARD_HOME. The inventory holds ``--devices`` routers
  whose mgmt addresses are 127.0.1.1, 127.0.1.2, ... (the sender binds each device's traps to
  its address: any 127/8 address works on Linux without setup), ``--interfaces`` interfaces
  each (ifIndex 2.., eth1..), and a ring of links between them (eth1, eth3, eth5 of device d
  to eth2, eth4, eth6 of devices d+1, d+2, d+3), so link-down traps become interface alarms
  under link alarms. Processed = traps that became fault events, plus traps no rule matched
  and traps from a source outside the inventory (``agent.stats``: events + no_rule +
  unknown_source), after the service has drained.
* net-snmp: ``snmptrapd -f -C -c CONF -Lf LOG -n -On -X -m ""`` on another loopback port,
  community checked (``authCommunity log bench`` in a 0600 config file, not on the command
  line), one line per trap in the log file (``format2``), numeric OIDs and no MIBs (its
  cheapest configuration: a strong peer), the same 8 MB receive buffer Switchboard asks for
  (``serverRecvBuf``; both are capped by net.core.rmem_max). Processed = lines logged.

The stream (built once, ``--pool`` datagrams, cycled; the same bytes for both peers): 80%
linkDown/linkUp of random (device, ifIndex) keys, both ends of a link sending when it
changes, 10% of them repeats of the last state; 10% enterprise traps no rule knows; 5%
authenticationFailure; 3% coldStart; 2% linkDown from an address outside the inventory.
At these rates every interface changes state many times a minute: the interface alarms turn
flapping (their clears held) within seconds, as in a real trap storm; alarms are created,
repeated, cleared, reopened and correlated under link alarms throughout. That stream is the
issue's and the headline; ``--mix steady`` runs a second one, labelled as such, closer to a
network's ordinary day (mostly repeats of 300 standing problems, 5% churn: see
``build_steady_stream``).

Per run: the rate actually sent, loss (sent - processed), of which kernel socket drops
(/proc/net/udp) and Switchboard's queue-full drops, Switchboard's correlation latency (trap
received -> batch of alarms committed, ``agent.stats.latency_s``: the last 200,000 traps of
the run) p50/p99, the receiver process's CPU seconds per 10,000 traps (/proc/PID/stat) and
the sender's. Per peer the ladder stops at the first rate with loss (``--all-rates`` runs
them all): with the default doubling ladder that is the loss at twice the highest zero-loss
rate. The machine may have only 2 CPUs: the sender and the receiver compete for them (the
kernel's loopback delivery runs in the sender's context), which is printed.

    python bench/traps.py [--rates 312,625,1250,2500,5000,10000,20000,40000] [--duration 60]
                          [--devices 250] [--interfaces 8] [--json FILE] [--profile DIR]
    python bench/traps.py --quick          (5 s per rate: a check that everything works)
    python bench/traps.py --mix steady     (the second mix)

A full run (the defaults) takes 12-14 minutes: each peer climbs the ladder to its first loss
(about 9 runs of 60 s in all), plus start-up and draining (up to a minute for a Switchboard
that fell behind). ``--quick`` is a smoke check: 5 s is within what the queues absorb, so its
"zero loss" says little. ``--profile DIR`` runs Switchboard's receiver (event loop) and
agent (worker thread) under cProfile, writes the profiles to DIR and prints the top
functions of the last run; profiling slows the receiver, so its rates are not the
benchmark's. Per Switchboard run it also prints the queue's deepest point in each second
(where a backlog built up). Needs net-snmp's snmptrapd (apt-get install snmptrapd); no root needed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import pstats
import queue
import random
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

# The v2c community of the benchmark's traps: not a secret (loopback only), but kept off
# snmptrapd's command line all the same, as a real one would be.
COMMUNITY = "bench"
BASE = IPv4Address("127.0.1.0")
UNKNOWN_SOURCE = "127.0.0.77"   # not in the inventory
HOST = "127.0.0.1"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
COLD_START, LINK_DOWN, LINK_UP, AUTH_FAILURE = (f"1.3.6.1.6.3.1.1.5.{n}" for n in (1, 3, 4, 5))
ENTERPRISE = "1.3.6.1.4.1.99999.0"   # traps no rule knows
IF_INDEX, IF_DESCR, IF_ADMIN, IF_OPER = (f"1.3.6.1.2.1.2.2.1.{c}" for c in (1, 2, 7, 8))
DEFAULT_RATES = (312, 625, 1250, 2500, 5000, 10000, 20000, 40000)
QUICK_RATES = (1250, 2500, 5000, 10000)
_CLK = os.sysconf("SC_CLK_TCK")
_POOL_HEADER = struct.Struct("!HH")


class Interrupted(Exception):
    """SIGTERM: unwinds like Ctrl-C so every ``finally`` ends what it started."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(f"signal {signum}")


# -- the network and its traps ----------------------------------------------------------

def address_of(device: int) -> str:
    """127.0.1.1, 127.0.1.2 ..., 254 devices per /24 (127.0.2.1 next)."""
    return str(BASE + (device // 254) * 256 + device % 254 + 1)


def links_of(devices: int, interfaces: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """((device, ifIndex), (device, ifIndex)) pairs: eth(2k+1) of d to eth(2k+2) of
    d+k+1, for k below interfaces // 2 - 1 (eth7 and eth8 of 8 stay unlinked)."""
    per_device = max(0, min(interfaces // 2 - 1, devices - 1))
    out = []
    for d in range(devices):
        for k in range(per_device):
            out.append(((d, 2 * k + 2), ((d + k + 1) % devices, 2 * k + 3)))  # ifIndex = eth + 1
    return out


def _trap(request_id: int, uptime_cs: int, trap_oid: str,
          varbinds: Sequence[tuple[str, object, str]]) -> bytes:
    from collectors.ber import Message, PduType, VarBind, encode_message

    vbs = [VarBind(SYS_UPTIME, uptime_cs, "TimeTicks"),
           VarBind(SNMP_TRAP_OID, trap_oid, "ObjectIdentifier"),
           *(VarBind(o, v, k) for o, v, k in varbinds)]  # type: ignore[arg-type]
    return encode_message(Message(1, COMMUNITY.encode(), PduType.TRAP_V2, request_id, 0, 0,
                                  vbs))


def _link_varbinds(if_index: int, down: bool) -> list[tuple[str, object, str]]:
    status = 2 if down else 1
    return [(f"{IF_INDEX}.{if_index}", if_index, "Integer"),
            (f"{IF_DESCR}.{if_index}", f"eth{if_index - 1}".encode(), "OctetString"),
            (f"{IF_ADMIN}.{if_index}", 1, "Integer"),
            (f"{IF_OPER}.{if_index}", status, "Integer")]


def build_stream(devices: int, interfaces: int, size: int,
                 seed: int = 7) -> tuple[list[tuple[int, bytes]], Counter[str]]:
    """``size`` datagrams as (source index, bytes): index ``devices`` is UNKNOWN_SOURCE."""
    rng = random.Random(seed)
    peer: dict[tuple[int, int], tuple[int, int]] = {}
    for a, b in links_of(devices, interfaces):
        peer[a], peer[b] = b, a
    down: dict[tuple[int, int], bool] = {}
    out: list[tuple[int, bytes]] = []
    mix: Counter[str] = Counter()
    uptime = 360_000

    def add(source: int, kind: str, trap_oid: str,
            varbinds: Sequence[tuple[str, object, str]]) -> None:
        nonlocal uptime
        uptime += 1
        out.append((source, _trap(len(out) + 1, uptime, trap_oid, varbinds)))
        mix[kind] += 1

    while len(out) < size:
        r = rng.random()
        if r < 0.80:
            key = (rng.randrange(devices), rng.randrange(interfaces) + 2)
            now_down = down.get(key, False)
            if rng.random() >= 0.10:  # a change, else a repeat of the last state
                now_down = not now_down
            for d, ix in (key, peer[key]) if key in peer else (key,):
                down[(d, ix)] = now_down
                add(d, "linkDown" if now_down else "linkUp", LINK_DOWN if now_down
                    else LINK_UP, _link_varbinds(ix, now_down))
        elif r < 0.90:
            n = rng.randrange(1, 21)
            add(rng.randrange(devices), "enterprise (no rule)", f"{ENTERPRISE}.{n}",
                [(f"1.3.6.1.4.1.99999.1.{n}.0", f"event {n}".encode(), "OctetString"),
                 ("1.3.6.1.4.1.99999.2.0", rng.randrange(1000), "Integer")])
        elif r < 0.95:
            add(rng.randrange(devices), "authenticationFailure", AUTH_FAILURE, [])
        elif r < 0.98:
            add(rng.randrange(devices), "coldStart", COLD_START, [])
        else:
            ix = rng.randrange(interfaces) + 2
            add(devices, "unknown source", LINK_DOWN, _link_varbinds(ix, True))
    return out[:size], mix


def build_steady_stream(devices: int, interfaces: int, size: int, standing: int = 300,
                        seed: int = 7) -> tuple[list[tuple[int, bytes]], Counter[str]]:
    """The ``--mix steady`` stream, a second mix beside the issue's: what a network with
    ``standing`` problems sends most of the time. 85% linkDown repeated by one end of one of
    ``standing`` interfaces that stay down (they went down first, both ends of a link);
    5% churn (an interface goes down or comes back, both ends); 5% enterprise traps no
    rule knows; 3% authenticationFailure; 2% coldStart."""
    rng = random.Random(seed)
    peer: dict[tuple[int, int], tuple[int, int]] = {}
    for a, b in links_of(devices, interfaces):
        peer[a], peer[b] = b, a
    keys = [(d, ix + 2) for d in range(devices) for ix in range(interfaces)]
    stuck = rng.sample(keys, min(standing, len(keys)))
    down: dict[tuple[int, int], bool] = {}
    out: list[tuple[int, bytes]] = []
    mix: Counter[str] = Counter()
    uptime = 360_000

    def add(source: int, kind: str, trap_oid: str,
            varbinds: Sequence[tuple[str, object, str]]) -> None:
        nonlocal uptime
        uptime += 1
        out.append((source, _trap(len(out) + 1, uptime, trap_oid, varbinds)))
        mix[kind] += 1

    def flip(key: tuple[int, int], now_down: bool) -> None:
        for d, ix in (key, peer[key]) if key in peer else (key,):
            down[(d, ix)] = now_down
            add(d, "linkDown" if now_down else "linkUp", LINK_DOWN if now_down else LINK_UP,
                _link_varbinds(ix, now_down))

    for key in stuck:
        flip(key, True)
    while len(out) < size:
        r = rng.random()
        if r < 0.85:
            d, ix = rng.choice(stuck)
            add(d, "linkDown", LINK_DOWN, _link_varbinds(ix, True))
        elif r < 0.90:
            key = rng.choice(keys)
            flip(key, not down.get(key, False))
        elif r < 0.95:
            n = rng.randrange(1, 21)
            add(rng.randrange(devices), "enterprise (no rule)", f"{ENTERPRISE}.{n}",
                [(f"1.3.6.1.4.1.99999.1.{n}.0", f"event {n}".encode(), "OctetString"),
                 ("1.3.6.1.4.1.99999.2.0", rng.randrange(1000), "Integer")])
        elif r < 0.98:
            add(rng.randrange(devices), "authenticationFailure", AUTH_FAILURE, [])
        else:
            add(rng.randrange(devices), "coldStart", COLD_START, [])
    return out[:size], mix


def write_pool(path: Path, stream: Sequence[tuple[int, bytes]]) -> None:
    with path.open("wb") as fh:
        for source, data in stream:
            fh.write(_POOL_HEADER.pack(source, len(data)))
            fh.write(data)


def build_inventory(url: str, devices: int, interfaces: int) -> int:
    """The devices, interfaces and links in a new database at ``url``; the link count."""
    from sqlmodel import Session

    from agents.fault.model import init_fault_db
    from topology.db import dispose_engines, get_engine
    from topology.inventory import Device, Interface, Link

    engine = get_engine(url)
    init_fault_db(engine)
    with Session(engine) as s:
        devs = [Device(name=f"bench-r{d:04d}", sys_name=f"bench-r{d:04d}",
                       mgmt_address=address_of(d), role="router") for d in range(devices)]
        s.add_all(devs)
        s.flush()
        itfs: dict[tuple[int, int], Interface] = {}
        for d, dev in enumerate(devs):
            for k in range(interfaces):
                itfs[(d, k + 2)] = Interface(device_id=dev.id or 0, if_index=k + 2,
                                             name=f"eth{k + 1}", oper_status="up")
        s.add_all(list(itfs.values()))
        s.flush()
        links = links_of(devices, interfaces)
        for a, b in links:
            lo, hi = sorted((itfs[a].id or 0, itfs[b].id or 0))
            s.add(Link(a_interface_id=lo, b_interface_id=hi, confirmed=True))
        s.commit()
    dispose_engines()  # the last connection closes: the WAL is checkpointed into the file
    return len(links)


# -- processes --------------------------------------------------------------------------

def proc_cpu_s(pid: int, tid: int | None = None) -> float:
    """User + system CPU seconds of a process (or one of its threads) from /proc."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid is not None else f"/proc/{pid}/stat"
    try:
        stat = Path(path).read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _CLK


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy since boot (/proc/stat)."""
    with open("/proc/stat") as fh:
        parts = fh.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, parts[:8])
    return (user + nice + system + irq + softirq + steal) / _CLK


def udp_socket_state(port: int) -> tuple[int, int] | None:
    """(bytes waiting in the receive queue, datagrams dropped) of the UDP socket bound to
    ``port`` on IPv4, from /proc/net/udp; None if there is none."""
    try:
        lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) > 12 and int(fields[1].rsplit(":", 1)[1], 16) == port:
            return int(fields[4].split(":")[1], 16), int(fields[-1])
    return None


class Child:
    """A child process with its stdout read line by line in a thread."""

    def __init__(self, argv: Sequence[str], log: Path, env: dict[str, str] | None = None,
                 stdin: bool = True) -> None:
        self.log = log
        with log.open("ab") as sink:
            self.proc = subprocess.Popen(
                list(argv), stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=sink, env=env, start_new_session=True,
                text=True, bufsize=1)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def readline(self, timeout_s: float, what: str) -> str:
        try:
            line = self.lines.get(timeout=timeout_s)
        except queue.Empty:
            raise SystemExit(f"{what}: nothing from PID {self.pid} within {timeout_s:.0f} s"
                             f"{self._tail()}") from None
        if line is None:
            self.proc.wait(5)
            raise SystemExit(f"{what}: PID {self.pid} ended ({self.proc.returncode})"
                             f"{self._tail()}")
        return line

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def _tail(self) -> str:
        try:
            text = self.log.read_text(errors="replace")[-1500:]
        except OSError:
            return ""
        return f"; its log {self.log}:\n{text}" if text.strip() else ""


LIVE: list[subprocess.Popen[Any]] = []


def stop_processes(procs: Sequence[subprocess.Popen[Any]]) -> None:
    """End exactly these children (by PID: unreaped, so never a reused PID)."""
    for p in procs:
        if p.stdin is not None:  # a child waiting for a command sees the end of its input
            with contextlib.suppress(OSError):
                p.stdin.close()
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + 10
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(max(0.1, deadline - time.monotonic()))
        if p.poll() is None:
            p.kill()
            p.wait()


# -- the sender (stdlib only: it starts fast and imports nothing of Switchboard) -------

SENDER = r"""
import json, socket, struct, sys, time
cfg = json.loads(sys.argv[1])
socks = []
for address in cfg["sources"]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((address, 0))
    socks.append(s)
raw = open(cfg["pool"], "rb").read()
head = struct.Struct("!HH")
pool, pos = [], 0
while pos < len(raw):
    src, n = head.unpack_from(raw, pos)
    pool.append((socks[src].sendto, raw[pos + 4:pos + 4 + n]))
    pos += 4 + n
dest = (cfg["host"], cfg["port"])
rate, duration, batch = float(cfg["rate"]), float(cfg["duration"]), int(cfg["batch"])
print("ready", flush=True)
sys.stdin.readline()
n, i, done, errors, lag = len(pool), 0, 0, 0, 0.0
perf, sleep = time.perf_counter, time.sleep
c0 = time.process_time()
t0 = perf()
end = t0 + duration
while True:
    now = perf()
    if now >= end:
        break
    due = int((now - t0) * rate) - done
    if due <= 0:
        sleep(max(0.0, (done + 1) / rate - (now - t0)))
        continue
    if due > batch:
        lag = max(lag, due / rate)
        due = batch
    for _ in range(due):
        send, data = pool[i]
        i += 1
        if i == n:
            i = 0
        try:
            send(data, dest)
        except OSError:
            errors += 1
    done += due
elapsed = perf() - t0
print(json.dumps({"attempts": done, "sent": done - errors, "errors": errors,
                  "elapsed_s": elapsed, "cpu_s": time.process_time() - c0,
                  "max_lag_s": lag}), flush=True)
"""


@dataclass
class Sent:
    attempts: int
    sent: int
    errors: int
    elapsed_s: float
    cpu_s: float
    max_lag_s: float

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s else 0.0


def start_sender(work: Path, pool: Path, sources: Sequence[str], port: int, rate: int,
                 duration_s: float) -> Child:
    cfg = {"sources": list(sources), "pool": str(pool), "host": HOST, "port": port,
           "rate": rate, "duration": duration_s, "batch": 64}
    child = Child([sys.executable, "-c", SENDER, json.dumps(cfg)], work / "sender.log")
    LIVE.append(child.proc)
    if child.readline(60, "the sender").strip() != "ready":
        raise SystemExit("the sender did not start")
    return child


def finish_sender(child: Child, duration_s: float) -> Sent:
    line = child.readline(duration_s + 60, "the sender")
    child.proc.wait(10)
    return Sent(**json.loads(line))


# -- one run ----------------------------------------------------------------------------

@dataclass
class Run:
    peer: str
    rate: int
    duration_s: float
    sent: int = 0
    sent_rate: float = 0.0
    send_errors: int = 0
    sender_cpu_s: float = 0.0
    sender_max_lag_s: float = 0.0
    processed: int = 0
    kernel_drops: int = 0
    queue_drops: int = 0
    receiver_cpu_s: float = 0.0
    drain_s: float = 0.0
    machine_busy_s: float = 0.0
    wall_s: float = 0.0
    latency_p50_s: float | None = None
    latency_p99_s: float | None = None
    latency_max_s: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return self.sent - self.processed

    @property
    def lost_pct(self) -> float:
        return 100.0 * self.lost / self.sent if self.sent else 0.0

    @property
    def other_cpu_s(self) -> float:
        """CPU the rest of the machine used during the run (other work skews it)."""
        return max(0.0, self.machine_busy_s - self.receiver_cpu_s - self.sender_cpu_s)

    @property
    def cpu_per_10k(self) -> float:
        return self.receiver_cpu_s / self.processed * 10_000 if self.processed else float("nan")


def _sent_into(run: Run, sent: Sent) -> None:
    run.sent, run.sent_rate, run.send_errors = sent.sent, sent.rate, sent.errors
    run.sender_cpu_s, run.sender_max_lag_s = sent.cpu_s, sent.max_lag_s


def run_switchboard(work: Path, template: Path, pool: Path, sources: Sequence[str],
                    rate: int, duration_s: float, profile: Path | None) -> Run:
    run = Run("switchboard", rate, duration_s)
    home = work / f"sb-{rate}"
    home.mkdir()
    db = home / "switchboard.db"
    shutil.copy(template, db)
    env = {**os.environ, "SWITCHBOARD_HOME": str(home),
           "SWITCHBOARD_DATABASE_URL": f"sqlite:///{db}"}
    cfg = {"db": f"sqlite:///{db}", "drain_timeout_s": 120.0,
           "profile": str(profile / f"switchboard-{rate}") if profile else None}
    service = Child([sys.executable, str(Path(__file__).resolve()), "--serve-switchboard",
                     json.dumps(cfg)], home / "service.log", env=env)
    LIVE.append(service.proc)
    try:
        ready = json.loads(service.readline(120, "the Switchboard fault service"))
        port = int(ready["port"])
        sender = start_sender(home, pool, sources, port, rate, duration_s)
        c0, m0, w0 = proc_cpu_s(service.pid), machine_busy_s(), time.perf_counter()
        sender.send("go")
        sent = finish_sender(sender, duration_s)
        t_sent = time.perf_counter()
        service.send("finish")
        result = json.loads(service.readline(300, "the Switchboard fault service"))
        run.drain_s = time.perf_counter() - t_sent
        run.receiver_cpu_s = proc_cpu_s(service.pid) - c0
        run.machine_busy_s, run.wall_s = machine_busy_s() - m0, time.perf_counter() - w0
        service.send("exit")
        service.proc.wait(60)
    finally:
        stop_processes([service.proc])
    _sent_into(run, sent)
    agent, recv = result["agent"], result["receiver"]
    run.processed = int(agent["events"] + agent["no_rule"] + agent["unknown_source"])
    run.kernel_drops = int(result["kernel_drops_delta"])
    run.queue_drops = int(recv["dropped_full"])
    run.latency_p50_s = result["latency"].get("p50")
    run.latency_p99_s = result["latency"].get("p99")
    run.latency_max_s = result["latency"].get("max")
    run.details = result
    return run


TRAPD_CONF = """# snmptrapd for bench/traps.py: the community is checked, each trap is one log line
authCommunity log {community}
format2 TRAP %.4y-%.2m-%.2l %.2h:%.2j:%.2k %B [%b]: %v\\n
[snmp] serverRecvBuf 8388608
"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def run_snmptrapd(work: Path, pool: Path, sources: Sequence[str], rate: int,
                  duration_s: float) -> Run:
    run = Run("snmptrapd", rate, duration_s)
    home = work / f"trapd-{rate}"
    home.mkdir()
    conf, log = home / "snmptrapd.conf", home / "traps.log"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(TRAPD_CONF.format(community=COMMUNITY))
    port = free_udp_port()
    argv = ["snmptrapd", "-f", "-C", "-c", str(conf), "-Lf", str(log), "-n", "-On", "-X",
            "-m", "", f"udp:{HOST}:{port}"]
    trapd = Child(argv, home / "snmptrapd.stderr", env={**os.environ, "MIBS": ""},
                  stdin=False)
    LIVE.append(trapd.proc)
    try:
        deadline = time.monotonic() + 30
        while udp_socket_state(port) is None:
            if trapd.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"snmptrapd did not start{trapd._tail()}")
            time.sleep(0.05)
        state0 = udp_socket_state(port)
        drops0 = state0[1] if state0 else 0
        sender = start_sender(home, pool, sources, port, rate, duration_s)
        c0, m0, w0 = proc_cpu_s(trapd.pid), machine_busy_s(), time.perf_counter()
        sender.send("go")
        sent = finish_sender(sender, duration_s)
        t_sent = time.perf_counter()
        # drained: nothing waits in its socket and it has stopped using CPU
        last_cpu, still_since = -1.0, time.monotonic()
        deadline = time.monotonic() + 300
        state = udp_socket_state(port)
        while time.monotonic() < deadline:
            state = udp_socket_state(port)
            cpu = proc_cpu_s(trapd.pid)
            if cpu != last_cpu or (state is not None and state[0]):
                last_cpu, still_since = cpu, time.monotonic()
            elif time.monotonic() - still_since >= 0.5:
                break
            time.sleep(0.05)
        run.drain_s = time.perf_counter() - t_sent - 0.5
        run.receiver_cpu_s = proc_cpu_s(trapd.pid) - c0
        run.machine_busy_s, run.wall_s = machine_busy_s() - m0, time.perf_counter() - w0
        run.kernel_drops = (state[1] if state else 0) - drops0
    finally:
        stop_processes([trapd.proc])
    _sent_into(run, sent)
    with log.open("rb") as fh:
        run.processed = sum(1 for line in fh if line.startswith(b"TRAP "))
    run.details = {"log_bytes": log.stat().st_size}
    return run


# -- the Switchboard side (a process of its own) -----------------------------------------

def serve_switchboard(cfg: dict[str, Any]) -> None:
    """Run the fault service until told: ready -> "finish" (drain, report) -> "exit"."""
    import asyncio
    import cProfile
    import logging
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import func
    from sqlmodel import Session, col, select

    from agents.fault.model import ACTIVE_STATES, Alarm, AlarmHistory
    from agents.fault.service import FaultService
    from agents.fault.settings import FaultSettings
    from topology.db import dispose_engines, get_engine

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = get_engine(cfg["db"])
    profile = Path(cfg["profile"]) if cfg.get("profile") else None
    loop_prof, agent_prof = cProfile.Profile(), cProfile.Profile()

    def counts() -> dict[str, int]:
        with Session(engine) as s:
            def n(*where: Any) -> int:
                return int(s.exec(select(func.count()).select_from(Alarm)
                                  .where(*where)).one())

            return {
                "alarms": n(),
                "active": n(col(Alarm.state).in_(ACTIVE_STATES)),
                "link_alarms": n(Alarm.source == "correlation"),
                "correlated_children": n(col(Alarm.parent_id).is_not(None)),
                "flapping": n(col(Alarm.flapping).is_(True)),
                "history_rows": int(s.exec(select(func.count())
                                           .select_from(AlarmHistory)).one()),
            }

    async def main() -> None:
        loop = asyncio.get_running_loop()
        service = FaultService(engine, settings=FaultSettings(), host=HOST, port=0,
                               communities={COMMUNITY.encode(): "bench"})
        if profile is not None:  # cProfile is per thread: enable it in the worker too
            service._executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="fault-agent", initializer=agent_prof.enable)
        await service.start()
        port = service.receiver.address[1]
        worker_tid = await service._run(threading.get_native_id)
        main_tid = threading.get_native_id()
        pid = os.getpid()
        drops0 = service.receiver.kernel_drops() or 0
        threads0 = (proc_cpu_s(pid, main_tid), proc_cpu_s(pid, worker_tid))
        if profile is not None:
            loop_prof.enable()
        depth: list[int] = []  # the queue's deepest in each second (where a backlog was)

        async def sample_depth() -> None:
            while True:
                deepest = 0
                for _ in range(10):
                    await asyncio.sleep(0.1)
                    deepest = max(deepest, service.receiver.queue.qsize())
                depth.append(deepest)

        sampler = asyncio.create_task(sample_depth())
        print(json.dumps({"ready": True, "port": port}), flush=True)
        # "finish": the sender has ended; the end of input: the bench is ending
        if not await asyncio.to_thread(sys.stdin.readline):
            sampler.cancel()
            await service.stop()
            return
        # drained: nothing in the socket, nothing new for 0.5 s, the queue empty, idle
        t0 = loop.time()
        deadline = t0 + float(cfg["drain_timeout_s"])
        last, still_since = -1, loop.time()
        while loop.time() < deadline:
            await asyncio.sleep(0.1)
            received = service.receiver.stats.received
            if received != last:
                last, still_since = received, loop.time()
                continue
            if loop.time() - still_since < 0.5 or not service.receiver.queue.empty():
                continue
            state = udp_socket_state(port)  # read /proc only when the counter stands still
            if state is not None and state[0]:
                still_since = loop.time()
            elif service._idle:
                break
        await service.drain()
        sampler.cancel()
        if profile is not None:
            loop_prof.disable()
            await service._run(agent_prof.disable)
        threads1 = (proc_cpu_s(pid, main_tid), proc_cpu_s(pid, worker_tid))
        lat = sorted(service.agent.stats.latency_s)
        latency = {}
        if lat:
            latency = {"p50": lat[len(lat) // 2],
                       "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
                       "max": lat[-1], "samples": len(lat)}
        agent = service.agent.stats.counters()
        agent.pop("latency_p50_s", None)
        agent.pop("latency_p99_s", None)
        result = {
            "receiver": service.receiver.stats.as_dict(),
            "kernel_drops_delta": (service.receiver.kernel_drops() or 0) - drops0,
            "agent": agent,
            "service_errors": service.errors,
            "latency": latency,
            "drain_wait_s": loop.time() - t0,
            "thread_cpu_s": {"event_loop": threads1[0] - threads0[0],
                             "agent_worker": threads1[1] - threads0[1]},
            "db": await service._run(counts),
            "queue_depth_per_s": depth,
        }
        print(json.dumps(result), flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # "exit"
        await service.stop()

    try:
        asyncio.run(main())
    finally:
        if profile is not None:
            loop_prof.dump_stats(f"{profile}-loop.prof")
            agent_prof.dump_stats(f"{profile}-agent.prof")
        dispose_engines()


# -- report -----------------------------------------------------------------------------

LABELS = {"switchboard": "switchboard fault service", "snmptrapd": "net-snmp snmptrapd"}
MIXES = {"storm": "the issue's stream (flapping churn over every interface)",
         "steady": "SECOND MIX, not the headline: mostly repeats of 300 standing problems"}


def machine_note() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    version = subprocess.run(["snmptrapd", "-v"], capture_output=True, text=True,
                             check=False).stdout
    netsnmp = next((ln.split(":", 1)[1].strip() for ln in version.splitlines()
                    if "NET-SNMP Version" in ln), "?")
    try:
        rmem = Path("/proc/sys/net/core/rmem_max").read_text().strip()
    except OSError:
        rmem = "?"
    return (f"{model}, {os.cpu_count()} CPUs, Linux {platform.release()}, Python "
            f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}, net-snmp "
            f"{netsnmp}, net.core.rmem_max {rmem}")


def _ms(value: float | None) -> str:
    return f"{value * 1e3:8.0f}" if value is not None else f"{'-':>8}"


def zero_loss(runs: Sequence[Run]) -> tuple[Run | None, Run | None]:
    """(the highest rate of the ladder with no loss there and below, the next run up)."""
    best: Run | None = None
    for r in sorted(runs, key=lambda r: r.rate):
        if r.lost:
            return best, r
        best = r
    return best, None


def report(args: argparse.Namespace, runs: Sequence[Run], setup: dict[str, Any]) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    print(f"\nv2c traps on loopback, {args.duration:g} s per rate, each receiver fresh per "
          f"rate; {args.devices} devices ({address_of(0)}-{address_of(args.devices - 1)}) x "
          f"{args.interfaces} interfaces, {setup['links']} links")
    print(f"mix: {MIXES[args.mix]}: " + ", ".join(f"{k} {v * 100 / args.pool:.0f}%"
                              for k, v in setup["mix"].most_common()))
    print(f"machine: {setup['machine']}")
    if cores <= 2:
        print(f"  only {cores} CPUs: the sender (and the kernel's loopback delivery, charged "
              "to it) and the receiver compete for them")
    head = (f"{'':26} {'target/s':>8} {'sent/s':>8} {'sent':>9} {'processed':>9} "
            f"{'lost':>8} {'lost %':>7} {'kernel':>7} {'queue':>6} {'p50 ms':>8} "
            f"{'p99 ms':>8} {'CPU s/10k':>9} {'recv %':>6} {'send %':>6} {'other %':>7} "
            f"{'drain s':>7}")
    print(head)
    print("-" * len(head))
    for r in sorted(runs, key=lambda r: (r.rate, r.peer != "switchboard")):
        busy = r.wall_s or 1.0
        print(f"{LABELS[r.peer]:26} {r.rate:8d} {r.sent_rate:8.0f} {r.sent:9d} "
              f"{r.processed:9d} {r.lost:8d} {r.lost_pct:7.2f} {r.kernel_drops:7d} "
              f"{r.queue_drops if r.peer == 'switchboard' else '-':>6} "
              f"{_ms(r.latency_p50_s)} {_ms(r.latency_p99_s)} {r.cpu_per_10k:9.2f} "
              f"{r.receiver_cpu_s / busy * 100:5.0f}% {r.sender_cpu_s / busy * 100:5.0f}% "
              f"{r.other_cpu_s / busy * 100:6.0f}% {r.drain_s:7.1f}")
    print("(lost = sent - processed; kernel = socket receive-buffer drops; queue = "
          "Switchboard's queue-full drops; p50/p99 = trap received -> alarm batch committed, "
          "over the run's last 200,000 traps; CPU s/10k = the receiver process's CPU per "
          "10,000 traps processed; recv/send/other % = of one CPU over the run, other = "
          "every other process of the machine; drain = seconds after the sender ended until "
          "all was processed)")
    for r in runs:
        if r.peer == "switchboard":
            d = r.details
            t = d["thread_cpu_s"]
            a = d["agent"]
            db = d["db"]
            print(f"switchboard at {r.rate}/s: event loop {t['event_loop']:.1f} s CPU, agent "
                  f"worker {t['agent_worker']:.1f} s; {a['batches']:.0f} batches (mean "
                  f"{a['events'] / a['batches'] if a['batches'] else 0:.0f} events); raised "
                  f"{a['raised']:.0f}, repeats {a['repeats']:.0f}, cleared {a['cleared']:.0f}, "
                  f"reopened {a['reopened']:.0f}, flapping {a['flapping']:.0f}, correlations "
                  f"{a['correlations']:.0f}, no rule {a['no_rule']:.0f}, unknown source "
                  f"{a['unknown_source']:.0f}; queue peak {d['receiver']['queue_peak']}; "
                  f"stored {db['alarms']} alarms ({db['active']} active, {db['link_alarms']} "
                  f"link, {db['correlated_children']} correlated), {db['history_rows']} "
                  f"history rows; errors {d['service_errors']}; latency max "
                  f"{_ms(r.latency_max_s).strip()} ms")
            depth = d.get("queue_depth_per_s") or []
            if depth:
                print(f"  queue depth, deepest each second: {' '.join(map(str, depth))}")
    summary: dict[str, Any] = {}
    print(f"\n{'':26} {'zero-loss rate':>15} {'loss at the next rate':>28}  {'p99 ms':>7} "
          f"{'CPU s/10k':>9} {'1-CPU ceiling':>13}")
    for peer in ("switchboard", "snmptrapd"):
        mine = [r for r in runs if r.peer == peer]
        best, nxt = zero_loss(mine)
        top = max((r.rate for r in mine), default=0)
        rate_text = (f"{best.rate}/s" if best else "none") + (
            "+" if best is not None and nxt is None and best.rate == top else "")
        next_text = (f"{nxt.lost_pct:.2f}% at {nxt.rate}/s"
                     f"{' (2x)' if best and abs(nxt.rate / best.rate - 2) < 0.02 else ''}"
                     if nxt else "not reached")
        p99 = _ms(best.latency_p99_s).strip() if best and best.latency_p99_s else "-"
        cpu = f"{best.cpu_per_10k:9.2f}" if best else f"{'-':>9}"
        # what its CPU per trap allows on one CPU of its own (the last run that kept up, or
        # else the first run): a ceiling from the CPU cost alone, no measurement of loss
        ref = best or min(mine, key=lambda r: r.rate, default=None)
        ceiling = 10_000 / ref.cpu_per_10k if ref and ref.cpu_per_10k > 0 else 0.0
        print(f"{LABELS[peer]:26} {rate_text:>15} {next_text:>28}  {p99:>7} {cpu} "
              f"{ceiling:11.0f}/s")
        summary[peer] = {"zero_loss_rate": best.rate if best else 0,
                         "zero_loss_at_top_of_ladder": best is not None and nxt is None
                         and best.rate == top,
                         "next_rate": nxt.rate if nxt else None,
                         "one_cpu_ceiling_per_s": ceiling,
                         "loss_pct_at_next_rate": nxt.lost_pct if nxt else None}
    print("(1-CPU ceiling = 10,000 / CPU s per 10k of its last run without loss, or else of "
          "its first run: the rate its CPU cost alone allows on a CPU of its own; both "
          "receivers run mostly on one CPU: snmptrapd is one thread, Switchboard's threads "
          "share one GIL)")
    sb, nd = summary["switchboard"], summary["snmptrapd"]
    if sb["zero_loss_rate"] and nd["zero_loss_rate"]:
        ratio = sb["zero_loss_rate"] / nd["zero_loss_rate"]
        caveat = (" (snmptrapd lost nothing up to the top of the ladder: a bound)"
                  if nd["zero_loss_at_top_of_ladder"] else "")
        print(f"ratio switchboard / snmptrapd, zero-loss rate: {ratio:.2f}x{caveat}")
        summary["zero_loss_ratio"] = ratio
    common = sorted({r.rate for r in runs if r.peer == "switchboard" and not r.lost}
                    & {r.rate for r in runs if r.peer == "snmptrapd" and not r.lost})
    for rate in common:
        s = next(r for r in runs if r.peer == "switchboard" and r.rate == rate)
        n = next(r for r in runs if r.peer == "snmptrapd" and r.rate == rate)
        print(f"ratio switchboard / snmptrapd, CPU per trap at {rate}/s: "
              f"{s.cpu_per_10k / n.cpu_per_10k:.1f}x ({s.cpu_per_10k:.2f} vs "
              f"{n.cpu_per_10k:.2f} CPU s per 10,000 traps)")
    at5k = next((r for r in runs if r.peer == "switchboard" and r.rate == 5000), None)
    print("aims:")
    if sb["zero_loss_rate"] >= 5000:
        print(f"  5,000 traps/s or more with nothing lost: met ({sb['zero_loss_rate']}/s)")
    else:
        lost = f"; {at5k.lost_pct:.2f}% lost at 5,000/s" if at5k else ""
        upto = (f"zero loss up to {sb['zero_loss_rate']}/s" if sb["zero_loss_rate"]
                else "traps lost at every rate run")
        print(f"  5,000 traps/s or more with nothing lost: MISSED ({upto}{lost})")
    zero = [r for r in runs if r.peer == "switchboard" and not r.lost]
    worst = max(zero, key=lambda r: r.latency_p99_s or 0.0, default=None)
    if worst is not None and worst.latency_p99_s is not None:
        ok = worst.latency_p99_s < 1.0
        print(f"  p99 correlation latency under 1 s (at every zero-loss rate): "
              f"{'met' if ok else 'MISSED'} (worst {worst.latency_p99_s * 1e3:.0f} ms at "
              f"{worst.rate}/s)")
    if args.duration < 30:
        print(f"  (runs of {args.duration:g} s fit in the receivers' queues and socket buffers: "
              "zero loss here is not zero loss sustained; run the default 60 s)")
    return summary


def print_profile(profile: Path, rate: int) -> None:
    for part, what in (("loop", "event loop (receive, decode, queue)"),
                       ("agent", "agent worker thread (events, alarms, SQLite)")):
        path = profile / f"switchboard-{rate}-{part}.prof"
        if not path.exists():
            continue
        print(f"\ncProfile of Switchboard's {what} at {rate}/s ({path}), by own time:")
        stats = pstats.Stats(str(path))
        stats.sort_stats("tottime").print_stats(18)


# -- main -------------------------------------------------------------------------------

def bench(args: argparse.Namespace) -> None:
    if shutil.which("snmptrapd") is None:
        raise SystemExit("snmptrapd missing: apt-get install snmptrapd")
    rates = sorted(args.rates)
    with tempfile.TemporaryDirectory(prefix="sb-bench-traps-") as tmp:
        work = Path(tmp)
        try:
            t0 = time.perf_counter()
            template = work / "template.db"
            links = build_inventory(f"sqlite:///{template}", args.devices, args.interfaces)
            stream, mix = (build_steady_stream if args.mix == "steady" else build_stream)(
                args.devices, args.interfaces, args.pool)
            pool = work / "pool.bin"
            write_pool(pool, stream)
            sources = [address_of(d) for d in range(args.devices)] + [UNKNOWN_SOURCE]
            setup = {"links": links, "mix": mix, "machine": machine_note()}
            m0, w0 = machine_busy_s(), time.perf_counter()
            time.sleep(2.0)
            idle_load = (machine_busy_s() - m0) / (time.perf_counter() - w0)
            setup["load_before"] = idle_load
            print(f"before the runs the machine was busy {idle_load * 100:.0f}% of a CPU "
                  f"(other work{': it skews the results' if idle_load > 0.2 else ''})",
                  flush=True)
            print(f"inventory ({args.devices} devices, {links} links) and {len(stream)} "
                  f"traps ({sum(len(d) for _, d in stream) / len(stream):.0f} bytes each on "
                  f"average) built in {time.perf_counter() - t0:.1f} s; rates "
                  f"{', '.join(map(str, rates))}/s, {args.duration:g} s each", flush=True)
            runs: list[Run] = []
            done = {"switchboard": False, "snmptrapd": False}
            for rate in rates:
                for peer in ("switchboard", "snmptrapd"):
                    if done[peer]:
                        continue
                    print(f"{LABELS[peer]} at {rate}/s ...", end=" ", flush=True)
                    if peer == "switchboard":
                        run = run_switchboard(work, template, pool, sources, rate,
                                              args.duration, args.profile)
                    else:
                        run = run_snmptrapd(work, pool, sources, rate, args.duration)
                    runs.append(run)
                    print(f"sent {run.sent} ({run.sent_rate:.0f}/s), processed "
                          f"{run.processed}, lost {run.lost} ({run.lost_pct:.2f}%)"
                          + (f", p99 {run.latency_p99_s * 1e3:.0f} ms"
                             if run.latency_p99_s is not None else "")
                          + f"; other processes used {run.other_cpu_s / run.wall_s * 100:.0f}%"
                          " of a CPU", flush=True)
                    if run.lost and not args.all_rates:
                        done[peer] = True
                if all(done.values()):
                    break
            summary = report(args, runs, setup)
            if args.profile:
                last = max((r.rate for r in runs if r.peer == "switchboard"), default=0)
                print_profile(args.profile, last)
            if args.json:
                args.json.write_text(json.dumps({
                    "args": {k: (str(v) if isinstance(v, Path) else v)
                             for k, v in vars(args).items()},
                    "machine": setup["machine"], "links": links, "mix": dict(mix),
                    "runs": [{**asdict(r), "lost": r.lost, "lost_pct": r.lost_pct,
                              "cpu_s_per_10k": r.cpu_per_10k} for r in runs],
                    "summary": summary}, indent=2, default=str))
                print(f"\nresults written to {args.json}")
        finally:
            stop_processes(LIVE)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")],
                        help=f"traps per second, comma-separated (default "
                        f"{','.join(map(str, DEFAULT_RATES))}; --quick "
                        f"{','.join(map(str, QUICK_RATES))})")
    parser.add_argument("--duration", type=float, help="seconds per rate (default 60, "
                        "--quick 5)")
    parser.add_argument("--quick", action="store_true", help="5 s per rate, fewer rates")
    parser.add_argument("--all-rates", action="store_true",
                        help="run every rate, not only up to each peer's first loss")
    parser.add_argument("--devices", type=int, default=250)
    parser.add_argument("--interfaces", type=int, default=8, help="per device")
    parser.add_argument("--mix", choices=sorted(MIXES), default="storm",
                        help="storm: the issue's stream (the headline); steady: a second "
                        "mix, mostly repeats of 300 standing problems")
    parser.add_argument("--pool", type=int, default=100_000,
                        help="distinct datagrams, sent in a cycle")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--profile", type=Path,
                        help="cProfile Switchboard's threads, profiles into this directory")
    parser.add_argument("--serve-switchboard", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_switchboard:
        signal.signal(signal.SIGTERM, _on_sigterm)
        serve_switchboard(json.loads(args.serve_switchboard))
        return
    args.rates = args.rates or list(QUICK_RATES if args.quick else DEFAULT_RATES)
    args.duration = args.duration or (5.0 if args.quick else 60.0)
    if not 1 <= args.devices <= 254 * 200 or args.interfaces < 1:
        raise SystemExit("--devices between 1 and 50800, --interfaces >= 1")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        bench(args)
    except (KeyboardInterrupt, Interrupted):
        raise SystemExit("interrupted: every process this run started has ended") from None


if __name__ == "__main__":
    main()

