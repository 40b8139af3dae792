"""The performance agent: polling, rates, storage, thresholds."""

from agents.performance.poller import Poller, PollOutcome, PollTarget
from agents.performance.rates import (
    Discontinuity,
    RateEngine,
    RateSample,
    counter_delta,
    utilisation_pct,
)
from agents.performance.settings import PerfSettings, load_perf_settings
from agents.performance.store import PerfStore, init_perf_db
from agents.performance.thresholds import PerfEvent, ThresholdEngine, load_rules

__all__ = [
    "Discontinuity",
    "PerfEvent",
    "PerfSettings",
    "PerfStore",
    "PollOutcome",
    "PollTarget",
    "Poller",
    "RateEngine",
    "RateSample",
    "ThresholdEngine",
    "counter_delta",
    "init_perf_db",
    "load_perf_settings",
    "load_rules",
    "utilisation_pct",
]
