"""The fulfilment agent: plans, pushes, verifies and rolls back service activations."""

from agents.fulfilment.agent import (
    ApplyResult,
    FulfilmentAgent,
    Plan,
    PlanStep,
    ReachProbe,
    ServiceRequest,
    VerificationFailed,
)
from agents.fulfilment.leases import DeviceBusy, device_leases
from agents.fulfilment.model import ConfigBackup, ConfigChange, init_fulfilment_db

__all__ = [
    "ApplyResult",
    "ConfigBackup",
    "ConfigChange",
    "DeviceBusy",
    "FulfilmentAgent",
    "Plan",
    "PlanStep",
    "ReachProbe",
    "ServiceRequest",
    "VerificationFailed",
    "device_leases",
    "init_fulfilment_db",
]
