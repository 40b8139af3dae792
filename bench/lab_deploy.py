"""Seconds to deploy and destroy the core lab (a benchmark, not a timed test).

containerlab itself needs Docker, which this machine does not run, so the peer measured in
the same run is the floor: creating and deleting the same kernel objects (namespaces, mgmt
veths, data veths, bridge) with iproute2 and no daemons. The ratio says what the daemons,
config rendering and readiness checks cost on top.

    python bench/lab_deploy.py [--runs 3]      (root)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from lab import deploy, load_topology
from topology.settings import get_settings

CORE = Path(__file__).resolve().parent.parent / "lab" / "topologies" / "core.clab.yml"
NAME, SUBNET = "b-core", "172.31.250.0/24"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def floor_once() -> tuple[float, float]:
    """iproute2 only: the same namespaces, veths and bridge as core, no daemons."""
    topo = load_topology(CORE)
    nodes = list(topo.nodes)
    t0 = time.perf_counter()
    ip("link", "add", "bf-br", "type", "bridge")
    ip("link", "set", "bf-br", "up")
    for i, node in enumerate(nodes):
        ns = f"bf-{node}"
        ip("netns", "add", ns)
        ip("-n", ns, "link", "set", "lo", "up")
        ip("link", "add", f"bfm{i}", "type", "veth", "peer", "name", "mgmt0", "netns", ns)
        ip("link", "set", f"bfm{i}", "master", "bf-br", "up")
        ip("-n", ns, "link", "set", "mgmt0", "up")
    for link in topo.links:
        ip("link", "add", link.a.iface, "netns", f"bf-{link.a.node}", "type", "veth",
           "peer", "name", link.b.iface, "netns", f"bf-{link.b.node}")
    t1 = time.perf_counter()
    for node in nodes:
        ip("netns", "delete", f"bf-{node}")
    ip("link", "delete", "bf-br")
    return t1 - t0, time.perf_counter() - t1


def switchboard_once(home: Path) -> tuple[float, float]:
    topo = load_topology(CORE).relocate(NAME, SUBNET)
    t0 = time.perf_counter()
    lab = deploy(topo, settings=get_settings(home))
    t1 = time.perf_counter()
    report = lab.destroy()
    t2 = time.perf_counter()
    if report.left:
        raise SystemExit(f"destroy left {report.left}")
    return t1 - t0, t2 - t1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/lab_deploy.py needs root (it deploys a lab)")
    with tempfile.TemporaryDirectory(prefix="sb-bench-") as home:
        os.chmod(home, 0o755)
        sb = [switchboard_once(Path(home)) for _ in range(args.runs)]
    fl = [floor_once() for _ in range(args.runs)]
    nodes, links = len(load_topology(CORE).nodes), len(load_topology(CORE).links)
    print(f"core: {nodes} nodes, {links} links, {args.runs} runs, median seconds")
    print(f"{'':28} {'deploy':>8} {'destroy':>8}")
    sd, sx = statistics.median(d for d, _ in sb), statistics.median(x for _, x in sb)
    fd, fx = statistics.median(d for d, _ in fl), statistics.median(x for _, x in fl)
    print(f"{'switchboard lab':28} {sd:8.2f} {sx:8.2f}")
    print(f"{'iproute2 floor (no daemons)':28} {fd:8.2f} {fx:8.2f}")
    print(f"{'ratio':28} {sd / fd:7.1f}x {sx / fx:7.1f}x")


if __name__ == "__main__":
    main()
