"""Prometheus exposition at /metrics: interface counters and rates with device and
interface labels, device health, and the poller's own health.

Read from the database at scrape time (a custom collector), so it shows what the
poller stored whichever process ran it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

__all__ = ["SwitchboardCollector", "registry_for"]

_COUNTERS = {  # CounterSample field -> metric name (a _total counter)
    "in_octets": "switchboard_interface_in_octets",
    "out_octets": "switchboard_interface_out_octets",
    "in_errors": "switchboard_interface_in_errors",
    "out_errors": "switchboard_interface_out_errors",
    "in_discards": "switchboard_interface_in_discards",
    "out_discards": "switchboard_interface_out_discards",
}
_RATES = {  # latest rate -> gauge
    "in_bps": "switchboard_interface_in_bits_per_second",
    "out_bps": "switchboard_interface_out_bits_per_second",
    "util_pct": "switchboard_interface_utilisation_percent",
}


class SwitchboardCollector(Collector):
    """Everything the suite exposes, read from the database at each scrape."""

    def __init__(self, engine: Engine, auth: Mapping[str, int] | None = None) -> None:
        self.engine = engine
        self.auth = dict(auth or {})

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        from agents.performance.poller import LastSample, PollerStat
        from agents.performance.store import PerfStore

        labels = ["device", "interface"]
        counters = {f: CounterMetricFamily(name, f"{f.replace('_', ' ')} as the device "
                                           "counts it", labels=labels)
                    for f, name in _COUNTERS.items()}
        rates = {f: GaugeMetricFamily(name, f"latest {f} (utilisation: the busier "
                                      "direction)", labels=labels)
                 for f, name in _RATES.items()}
        with Session(self.engine) as session:
            for row in session.exec(select(LastSample)).all():
                sample = json.loads(row.sample_json)
                for iface in sample["interfaces"]:
                    name = iface.get("name") or str(iface["if_index"])
                    for field, family in counters.items():
                        if iface.get(field) is not None:
                            family.add_metric([row.device, name], float(iface[field]))
            stats = {s.name: s.value for s in session.exec(select(PollerStat)).all()}
        for latest in PerfStore(self.engine).top(n=1_000_000):
            for field, gauge in rates.items():
                value = getattr(latest, field)
                if value is not None:
                    gauge.add_metric([latest.device, latest.interface], float(value))
        yield from counters.values()
        yield from rates.values()
        for key, help_text in (("polls_total", "polls done"),
                               ("failures_total", "polls that failed"),
                               ("late_polls_total", "polls started over 1 s late"),
                               ("overlaps_skipped_total", "polls skipped: previous still "
                                "running"),
                               ("cycle_overruns_total", "cycles longer than the interval")):
            c = CounterMetricFamily(f"switchboard_poller_{key.removesuffix('_total')}",
                                    help_text)
            c.add_metric([], stats.get(key, 0.0))
            yield c
        cycle = GaugeMetricFamily("switchboard_poller_cycle_seconds",
                                  "duration of the last full poll cycle")
        cycle.add_metric([], stats.get("cycle_seconds", 0.0))
        yield cycle
        devices = GaugeMetricFamily("switchboard_poller_devices", "devices polled")
        devices.add_metric([], stats.get("devices", 0.0))
        yield devices
        yield from self._fault()
        for name, value in sorted(self.auth.items()):  # this server process's own
            c = CounterMetricFamily(f"switchboard_auth_{name}",
                                    f"access control: {name.replace('_', ' ')}")
            c.add_metric([], value)
            yield c

    def _fault(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        """The trap receiver's and fault agent's counters (every drop has one), and the
        open alarms by severity."""
        from sqlalchemy import func

        from agents.fault.model import ACTIVE_STATES, Alarm, FaultCounter

        with Session(self.engine) as session:
            counters = session.exec(select(FaultCounter)).all()
            open_alarms = session.exec(
                select(Alarm.severity, func.count()).where(
                    Alarm.state.in_(ACTIVE_STATES))  # type: ignore[attr-defined]
                .group_by(Alarm.severity)).all()
        for row in counters:
            if " " in row.name:  # per-OID detail: switchboard traps stats shows it
                continue
            if row.name.endswith(("_s", "_depth", "_peak")):
                g = GaugeMetricFamily(f"switchboard_fault_{row.name}", f"fault: {row.name}")
                g.add_metric([], row.value)
                yield g
            else:
                c = CounterMetricFamily(f"switchboard_fault_{row.name}",
                                        f"fault: {row.name.replace('_', ' ')}")
                c.add_metric([], row.value)
                yield c
        alarms = GaugeMetricFamily("switchboard_alarms_open", "open alarms by severity",
                                   labels=["severity"])
        for severity, count in open_alarms:
            alarms.add_metric([severity], float(count))
        yield alarms


def registry_for(engine: Engine, auth: Mapping[str, int] | None = None
                 ) -> CollectorRegistry:
    """A registry holding only the suite's collector (no process metrics of the API);
    ``auth``: the serving process's access-control counters."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SwitchboardCollector(engine, auth))
    return registry
