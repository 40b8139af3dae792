"""The fault agent: traps and the suite's own events to de-duplicated, correlated alarms."""

from agents.fault.agent import AgentStats, FaultAgent, Notice
from agents.fault.alarms import (
    AlarmConflict,
    AlarmFilter,
    acknowledge,
    add_comment,
    alarm_detail,
    clear_alarm,
    list_alarms,
    tmf_alarm,
    unacknowledge,
)
from agents.fault.events import FaultEvent, event_from_perf, event_from_trap
from agents.fault.model import Alarm, AlarmComment, AlarmHistory, AlarmState, init_fault_db
from agents.fault.notify import Notifier
from agents.fault.rules import FaultRules, FaultRulesError, load_fault_rules
from agents.fault.service import FaultService, communities_from_profiles
from agents.fault.settings import FaultSettings, load_fault_settings

__all__ = [
    "AgentStats",
    "Alarm",
    "AlarmComment",
    "AlarmConflict",
    "AlarmFilter",
    "AlarmHistory",
    "AlarmState",
    "FaultAgent",
    "FaultEvent",
    "FaultRules",
    "FaultRulesError",
    "FaultService",
    "FaultSettings",
    "Notice",
    "Notifier",
    "acknowledge",
    "add_comment",
    "alarm_detail",
    "clear_alarm",
    "communities_from_profiles",
    "event_from_perf",
    "event_from_trap",
    "init_fault_db",
    "list_alarms",
    "load_fault_rules",
    "load_fault_settings",
    "tmf_alarm",
    "unacknowledge",
]
