"""``switchboard poll`` and ``switchboard perf show|top``."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from northbound.output import emit_json, err, out, table
from topology.db import get_engine, init_db
from topology.queries import parse_since

perf_app = typer.Typer(help="Interface and device performance: series, busiest interfaces.",
                       no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
BARS = "▁▂▃▄▅▆▇█"


def _engine() -> Any:
    from agents.performance.poller import init_poller_db
    from agents.performance.store import init_perf_db

    engine = get_engine()
    init_db(engine)
    init_perf_db(engine)
    init_poller_db(engine)
    return engine


def sparkline(values: list[float | None]) -> str:
    """One character per value, scaled to the largest; a gap (None) is a space."""
    top = max((v for v in values if v is not None), default=0.0)
    if top <= 0:
        return "".join(" " if v is None else BARS[0] for v in values)
    return "".join(" " if v is None else BARS[min(len(BARS) - 1,
                                                   int(v / top * (len(BARS) - 1) + 0.5))]
                   for v in values)


def human_bps(bps: float | None) -> str:
    """'12.3 Mb/s'."""
    if bps is None:
        return "-"
    for unit, scale in (("Gb/s", 1e9), ("Mb/s", 1e6), ("kb/s", 1e3)):
        if bps >= scale:
            return f"{bps / scale:.1f} {unit}"
    return f"{bps:.0f} b/s"


def poll_cmd(
    once: Annotated[bool, typer.Option("--once", help="One cycle over every device, then "
                                       "exit (rates need a previous sample).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Poll interface counters and health of every discovered device (one cycle, or run)."""
    from agents.performance.poller import Poller, PollOutcome
    from agents.performance.settings import load_perf_settings

    poller = Poller(_engine(), load_perf_settings())
    if once:
        outcomes = asyncio.run(poller.cycle())
        if as_json:
            emit_json({"cycle_seconds": poller.stats.get("cycle_seconds"),
                       "devices": [dataclasses.asdict(o) for o in outcomes]})
            return
        table("poll cycle", ["device", "status", "interfaces", "rates", "gaps", "events",
                             "seconds"],
              [[o.device, o.status.value if o.status.value == "ok" else
                f"{o.status.value}: {o.detail}", o.interfaces, o.rates, "\n".join(o.gaps),
                "\n".join(o.events), f"{o.seconds:.2f}"] for o in outcomes],
              caption=f"cycle {poller.stats.get('cycle_seconds', 0):.1f} s; a first poll "
                      "gives no rates, the next one does")
        return

    def report(o: PollOutcome) -> None:
        if as_json:
            emit_json(dataclasses.asdict(o))
            return
        note = f" (started {o.late_s:.1f} s late)" if o.late_s > 1 else ""
        out.print(f"{datetime.now(UTC):%H:%M:%S} {o.device}: {o.status.value}"
                  f"{' ' + o.detail if o.detail else ''}, {o.rates} rates{note}"
                  + "".join(f"\n  event: {e}" for e in o.events)
                  + "".join(f"\n  gap: {g}" for g in o.gaps), highlight=False)

    async def forever() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        err.print(f"polling {len(poller.targets())} devices; Ctrl-C stops after the polls "
                  "in flight")
        await poller.run(stop, report)

    asyncio.run(forever())


def _split(target: str) -> tuple[str, str | None]:
    device, _, iface = target.partition(":")
    return device, iface or None


@perf_app.command("show")
def show_cmd(
    target: Annotated[str, typer.Argument(metavar="DEVICE[:IFACE]")],
    since: Annotated[str, typer.Option(help="15m, 1h, 2d or an ISO time")] = "1h",
    step: Annotated[int | None, typer.Option(help="seconds per point (default: fits ~60 "
                                            "points)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """An interface's traffic and utilisation over time (a device: each interface)."""
    from agents.performance.store import PerfStore

    store = PerfStore(_engine())
    device, iface = _split(target)
    end = datetime.now(UTC)
    start = parse_since(since, end)
    step_s = step or max(1, int((end - start).total_seconds() / 60))
    ifaces = [iface] if iface else sorted(
        {row.interface for row in store.latest(device)})
    if not ifaces:
        raise typer.BadParameter(f"no samples for {device} (poll it first: switchboard poll)")
    result: dict[str, Any] = {}
    rows = []
    for name in ifaces:
        points = store.series(device, name, start, end, step_s)
        gaps = store.gaps(device, name, start, end)
        result[name] = {"points": [dataclasses.asdict(p) for p in points],
                        "gaps": [{"at": g.at, "reason": g.reason, "detail": g.detail}
                                 for g in gaps]}
        ins = [p.in_bps for p in points]
        outs = [p.out_bps for p in points]
        peak = max((p.in_util_pct or 0.0, p.out_util_pct or 0.0) for p in points) \
            if points else (0.0, 0.0)
        rows.append([name, sparkline(ins), human_bps(ins[-1] if ins else None),
                     sparkline(outs), human_bps(outs[-1] if outs else None),
                     f"{max(peak):.2f} %", len(gaps)])
    if as_json:
        emit_json({"device": device, "start": start.isoformat(), "end": end.isoformat(),
                   "step_s": step_s, "interfaces": result})
        return
    table(f"{device} since {start:%Y-%m-%d %H:%M} UTC, {step_s} s per point",
          ["interface", "in", "in now", "out", "out now", "peak util", "gaps"], rows,
          caption="each bar is one point, scaled to the row's peak; a blank is a gap "
                  "(missed poll, agent restart or counter discontinuity: never averaged)")


@perf_app.command("top")
def top_cmd(
    n: Annotated[int, typer.Option("--n", min=1, max=1000, help="how many")] = 10,
    since: Annotated[str, typer.Option(help="only samples newer than this")] = "15m",
    as_json: JsonOpt = False,
) -> None:
    """The busiest interfaces by their latest rate."""
    from agents.performance.store import PerfStore

    store = PerfStore(_engine())
    rows = store.top(n=n, since=parse_since(since))
    if as_json:
        emit_json([dataclasses.asdict(r) if dataclasses.is_dataclass(r) else r._asdict()
                   for r in rows])
        return
    table("busiest interfaces", ["device", "interface", "in", "out", "util"],
          [[r.device, r.interface, human_bps(r.in_bps), human_bps(r.out_bps),
            f"{(r.util_pct or 0):.2f} %"] for r in rows])

