"""Normalised fault events: what a trap or a performance event means, before any alarm.

:func:`event_from_trap` applies the trap rules; :func:`event_from_perf` the event rules.
Both resolve the device (by the trap's source address, its v1 agent-addr, or the
performance event's device name) and the resource (an ifIndex to the inventory's
interface) with a :class:`~agents.fault.view.TopologyView`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agents.fault.rules import FaultRules, ResourceSpec, TrapRule, is_ipv4
from agents.fault.view import TopologyView
from collectors.ber import Special, VarBind
from collectors.traps import Trap

_UNSPECIFIED = ".".join("0" * 4)  # an address field with no address in it

__all__ = ["FaultEvent", "Unmatched", "event_from_perf", "event_from_trap", "varbind_text"]


@dataclass(slots=True)
class FaultEvent:
    """One raise or clear of a problem of a resource of a device."""

    action: str
    """"raise" or "clear"."""
    device: str
    device_id: int | None
    resource_type: str
    resource: str
    problem: str
    rule: str
    source: str
    """"trap" or "poller"."""
    at: datetime
    severity: str = "major"
    alarm_type: str = "communicationsAlarm"
    probable_cause: str = "unspecified"
    specific_problem: str = ""
    interface_id: int | None = None
    clear_after_s: float | None = None
    means: str | None = None
    peer_address: str | None = None
    threshold: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    received_mono: float | None = None
    """When the trap was received (time.monotonic), for the correlation latency."""
    trap: Trap | None = None
    """The trap it came from: :meth:`report` renders its varbinds when asked (most
    events of a storm are clears or repeats whose report is never stored)."""

    def report(self) -> dict[str, Any]:
        """What the alarm keeps as its last report: ``details``, or the trap's."""
        if self.trap is None:
            return self.details
        trap = self.trap
        return {"trap_oid": trap.trap_oid, "version": trap.version, "pdu": trap.pdu,
                "source": trap.source, "uptime_cs": trap.uptime_cs,
                "varbinds": [[vb.oid, vb.kind, varbind_text(vb)] for vb in trap.varbinds]}

    @property
    def key(self) -> str:
        owner = str(self.device_id) if self.device_id is not None else f"@{self.device}"
        return f"{owner}|{self.resource_type}:{self.resource}|{self.problem}"


@dataclass(frozen=True, slots=True)
class Unmatched:
    """A trap no rule turned into an event, and why (counted, not an alarm)."""

    reason: str
    """"no-rule" or "unknown-source"."""
    trap_oid: str
    source: str


def varbind_text(vb: VarBind) -> str:
    """A varbind value as text people read: UTF-8 if printable, else hex."""
    value = vb.value
    if isinstance(value, Special):
        return value.value
    if isinstance(value, bytes):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            return value.hex(":")
        return text if text.isprintable() else value.hex(":")
    return str(value)


def _matches(rule: TrapRule, trap: Trap) -> bool:
    for prefix, values in rule.when:
        vb = trap.value(prefix)
        if vb is None or varbind_text(vb) not in values:
            return False
    return True


def _index_after(vb: VarBind, prefix: str) -> str:
    return vb.oid[len(prefix) + 1:] if vb.oid.startswith(prefix + ".") else ""


def _resource(spec: ResourceSpec, trap: Trap, device_id: int | None, device: str,
              view: TopologyView) -> tuple[str, int | None, str | None]:
    """(resource name, interface id, peer address) for the rule's resource spec."""
    if spec.index_from is not None and spec.type == "interface":
        vb = trap.value(spec.index_from)
        if_index: int | None = None
        if vb is not None and isinstance(vb.value, int):
            if_index = vb.value
        elif vb is not None and _index_after(vb, spec.index_from).isdigit():
            if_index = int(_index_after(vb, spec.index_from))
        else:  # ifOperStatus.N and friends carry the ifIndex as their index
            for other in trap.varbinds:
                tail = other.oid.rsplit(".", 1)
                if other.oid.startswith("1.3.6.1.2.1.2.2.1.") and tail[-1].isdigit():
                    if_index = int(tail[-1])
                    break
        if if_index is None:
            return "ifIndex ?", None, None
        ref = view.by_if_index.get((device_id, if_index)) if device_id is not None else None
        if ref is None:
            return f"ifIndex {if_index}", None, None
        return ref.name, ref.id, None
    if spec.address_from is not None:
        # the row's index first: FRR's bgpd sends bgpPeerRemoteAddr 0.0.0.0 on failed
        # reconnects, while the index always names the peer (tests/golden/traps)
        vb = trap.value(spec.address_from)
        address = ""
        if vb is not None:
            indexed = ".".join(_index_after(vb, spec.address_from).split(".")[:4])
            if is_ipv4(indexed) and indexed != _UNSPECIFIED:
                address = indexed
            elif (isinstance(vb.value, str) and is_ipv4(vb.value)
                  and vb.value != _UNSPECIFIED):
                address = vb.value
        return address or "?", None, address or None
    if spec.index_from is not None:
        vb = trap.value(spec.index_from)
        return (_index_after(vb, spec.index_from) if vb is not None else "") or "?", None, None
    return device, None, None


def _render(template: str, device: str, resource: str) -> str:
    return template.replace("{device}", device).replace("{resource}", resource)


def source_device(trap: Trap, view: TopologyView) -> int | None:
    """The inventory device that sent the trap: by source address, then v1 agent-addr."""
    device_id = view.device_by_address.get(trap.source)
    if device_id is None and trap.agent_address:
        device_id = view.device_by_address.get(trap.agent_address)
    return device_id


def event_from_trap(trap: Trap, rules: FaultRules,
                    view: TopologyView) -> FaultEvent | Unmatched:
    """The event the first matching rule makes of ``trap``."""
    device_id = source_device(trap, view)
    if device_id is None:
        return Unmatched("unknown-source", trap.trap_oid, trap.source)
    rule = next((r for r in rules.by_trap.get(trap.trap_oid, ()) if _matches(r, trap)), None)
    if rule is None:
        return Unmatched("no-rule", trap.trap_oid, trap.source)
    device = view.devices[device_id]
    resource, interface_id, peer = _resource(rule.resource, trap, device_id, device, view)
    return FaultEvent(
        action=rule.action, device=device, device_id=device_id,
        resource_type=rule.resource.type, resource=resource, problem=rule.problem,
        rule=rule.name, source="trap",
        at=datetime.fromtimestamp(trap.received_at, UTC), severity=rule.severity,
        alarm_type=rule.alarm_type, probable_cause=rule.probable_cause,
        specific_problem=_render(rule.specific_problem, device, resource),
        interface_id=interface_id, clear_after_s=rule.clear_after_s, means=rule.means,
        peer_address=peer, received_mono=trap.received_mono, trap=trap)


def event_from_perf(*, rule_name: str, kind: str, device: str, resource: str | None,
                    severity: str, at: datetime, metric: str, value: float | None,
                    threshold: float | None, detail: str, status_code: str | None,
                    rules: FaultRules, view: TopologyView) -> FaultEvent:
    """The event a performance-agent threshold event makes (raise or clear)."""
    rule = rules.events.get(rule_name)
    device_id = view.device_by_name.get(device)
    interface_id = None
    if resource is not None and device_id is not None:
        ref = view.by_if_name.get((device_id, resource))
        interface_id = ref.id if ref else None
    name = resource if resource is not None else device
    crossed = None
    if threshold is not None or value is not None:
        crossed = {"thresholdId": rule_name, "observedValue": value,
                   "thresholdValue": threshold, "indicatorName": metric}
    details = {"metric": metric, "value": value, "threshold": threshold, "detail": detail}
    if status_code:
        details["status_code"] = status_code
    return FaultEvent(
        action="raise" if kind == "raise" else "clear", device=device, device_id=device_id,
        resource_type="interface" if resource is not None else "device", resource=name,
        problem=rule_name, rule=rule_name, source="poller", at=at, severity=severity,
        alarm_type=rule.alarm_type if rule else "qualityOfServiceAlarm",
        probable_cause=rule.probable_cause if rule else "thresholdCrossed",
        specific_problem=_render(rule.specific_problem if rule and rule.specific_problem
                                 else detail, device, name),
        interface_id=interface_id, means=rule.means if rule else None, threshold=crossed,
        details=details)


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, default=str, separators=(",", ":"))
