"""Interface counters from a NETCONF server (ietf-interfaces ``interfaces-state``).

One session, one ``get`` with the ``interfaces-state`` subtree filter
(:data:`collectors.netconf.INTERFACES_STATE_FILTER`), parsed with lxml, entity
resolution and network access off (:func:`collectors.netconf.parse_xml`). A poll
needs no hello-driven discovery, so the YANG library and ietf-system gets of
:func:`collectors.netconf.fetch_netconf_replies` are not made.

What becomes of the reply (RFC 8343 ``interfaces-state/interface``):

    statistics/in-octets ... out-discards   InterfaceCounters fields (yang:counter64)
    statistics/discontinuity-time           discontinuity_ticks: the date-and-time as
                                            hundredths of a second since the Unix epoch
                                            (int(seconds * 100)); a later time means the
                                            counters were reset again. Comparable only
                                            with other NETCONF samples, never with
                                            sysUpTime ticks.
    speed (bit/s)                           speed_mbps, rounded to whole Mbps
    oper-status                             oper_status
    if-index                                if_index; servers without it (yuma123's
                                            netconfd) get the 1-based position of the
                                            interface in the reply, so a name change at
                                            an index shows up as one

``counter_bits`` is 64, ``sys_uptime_ticks`` ``None``, ``source`` ``"netconf"``, and
``index_refreshed`` True (every poll reads the names). Errors are the suite's
CollectionError subclasses: the mapping of ncclient, paramiko and socket errors is
the one of :mod:`collectors.netconf`; a reply that is not usable XML is a
ProtocolError.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from lxml import etree

from collectors.counters import CounterSample, InterfaceCounters
from collectors.netconf import (
    IETF_INTERFACES,
    INTERFACES_STATE_FILTER,
    NC,
    connect_socket,
    parse_xml,
    translate_error,
)
from topology.errors import (
    ProtocolError,
)

__all__ = [
    "STATISTICS",
    "counters_from_reply",
    "discontinuity_ticks",
    "fetch_interfaces_state",
    "netconf_counters",
]

# InterfaceCounters field -> leaf under interfaces-state/interface/statistics
STATISTICS: Final[dict[str, str]] = {
    "in_octets": "in-octets",
    "in_ucast_pkts": "in-unicast-pkts",
    "in_bcast_pkts": "in-broadcast-pkts",
    "in_mcast_pkts": "in-multicast-pkts",
    "in_discards": "in-discards",
    "in_errors": "in-errors",
    "out_octets": "out-octets",
    "out_ucast_pkts": "out-unicast-pkts",
    "out_bcast_pkts": "out-broadcast-pkts",
    "out_mcast_pkts": "out-multicast-pkts",
    "out_discards": "out-discards",
    "out_errors": "out-errors",
}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_TICK: Final = timedelta(milliseconds=10)


# -- parsing (pure) ----------------------------------------------------------------------

def _leaf(element: Any, path: str) -> str | None:
    """The stripped text of the ietf-interfaces child at ``path``, or ``None`` (only the
    element's own text: an unresolved entity reference is never expanded). Same rule as
    collectors.netconf's private ``_text``."""
    qualified = "/".join(f"{{{IETF_INTERFACES}}}{step}" for step in path.split("/"))
    child = element.find(qualified)
    if child is None or child.text is None:
        return None
    return str(child.text).strip() or None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def discontinuity_ticks(value: str | None) -> int | None:
    """A yang:date-and-time (``2024-05-01T10:00:00.25Z``, ``...+02:00``) as hundredths
    of a second since the Unix epoch; ``None`` when absent or not a date-and-time."""
    if not value:
        return None
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:  # RFC 6991 requires an offset: without one it is no instant
        return None
    return (moment - _EPOCH) // _TICK  # exact integer arithmetic, truncated to 1/100 s


def counters_from_reply(host: str, reply: str | bytes, *, taken_at: float) -> CounterSample:
    """A CounterSample from an ``interfaces-state`` reply, given as ``<rpc-reply>`` or
    as its ``<data>``. Raises ValueError for XML that is not a data reply."""
    root = parse_xml(reply)
    data = root if root.tag == f"{{{NC}}}data" else root.find(f"{{{NC}}}data")
    if data is None:
        raise ValueError(f"not a NETCONF data reply (root element {root.tag!r})")
    path = f"{{{IETF_INTERFACES}}}interfaces-state/{{{IETF_INTERFACES}}}interface"
    out = []
    for position, entry in enumerate(data.iterfind(path), start=1):
        name = _leaf(entry, "name")
        if not name:
            continue
        stats = {field: _int(_leaf(entry, f"statistics/{leaf}"))
                 for field, leaf in STATISTICS.items()}
        speed_bps = _int(_leaf(entry, "speed"))
        out.append(InterfaceCounters(
            if_index=_int(_leaf(entry, "if-index")) or position,
            name=name,
            counter_bits=64,
            oper_status=_leaf(entry, "oper-status"),
            speed_mbps=(speed_bps + 500_000) // 1_000_000 if speed_bps is not None else None,
            discontinuity_ticks=discontinuity_ticks(
                _leaf(entry, "statistics/discontinuity-time")),
            **stats,
        ))
    return CounterSample(host=host, taken_at=taken_at, sys_uptime_ticks=None,
                         interfaces=tuple(out), if_number=len(out), source="netconf",
                         index_refreshed=True)


# -- the session (connection and error mapping shared with collectors.netconf) -----------

def fetch_interfaces_state(host: str, username: str, password: str, *, port: int = 830,
                           timeout_s: float = 10.0,
                           profile: str | None = None) -> tuple[str, float]:
    """The raw ``<rpc-reply>`` of one ``get`` of ``interfaces-state``, and the
    ``time.time()`` it arrived. ``timeout_s`` bounds each step (connect, banner, hello,
    the RPC)."""
    from ncclient import manager

    operation = "connect"
    try:
        with connect_socket(host, port, timeout_s) as sock:
            operation = "hello"
            session = manager.connect(
                host=host, port=port, sock=sock, username=username, password=password,
                timeout=timeout_s, hostkey_verify=False, allow_agent=False,
                look_for_keys=False, device_params={"name": "default"},
                manager_params={"timeout": timeout_s})
            try:
                operation = "get interfaces-state"
                reply = session.get(
                    filter=f'<filter xmlns="{NC}" type="subtree">{INTERFACES_STATE_FILTER}'
                           f'</filter>')
                arrived = time.time()
                text = str(reply.xml)
            finally:
                with contextlib.suppress(Exception):
                    session.close_session()
    except Exception as exc:
        raise translate_error(exc, host=host, operation=operation, profile=profile,
                         secret=password) from exc
    return text, arrived


def netconf_counters(host: str, username: str, password: str, *, port: int = 830,
                     timeout_s: float = 10.0, profile: str | None = None) -> CounterSample:
    """``host``'s interface counters over NETCONF (blocking: callers in asyncio use
    ``asyncio.to_thread``). ``taken_at`` is when the reply arrived."""
    text, arrived = fetch_interfaces_state(host, username, password, port=port,
                                           timeout_s=timeout_s, profile=profile)
    try:
        return counters_from_reply(host, text, taken_at=arrived)
    except (ValueError, etree.XMLSyntaxError) as exc:
        raise ProtocolError(f"{host}: NETCONF reply not understood: {exc}", device=host,
                            operation="parse", profile=profile) from exc
