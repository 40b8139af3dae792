"""Interface counters and device health over SNMP, in as few requests as the agent allows.

One poll of a device's counters is normally **one GETBULK**: sysUpTime and ifNumber ride
as non-repeaters (asked by their object OIDs, so GETNEXT semantics return ``.0``), and the
counter columns are walked side by side with ``max_repetitions`` equal to the number of
interfaces. A device whose rows do not fit in one answer (``max_varbinds``, net-snmp's
default ``maxGetbulkResponses`` is 100) is split by rows: with the ifIndex list cached,
each request starts its columns after a known ifIndex, and the requests go out together.

The ifIndex -> name table (ifName, else ifDescr) is cached per host and re-read, in the
same walk as the counters, when

* there is no cache yet (first poll of the host),
* ifNumber differs from the cached one,
* an ifIndex answers that is not cached, or
* sysUpTime went back (the agent restarted, or its 497-day clock wrapped).

``CounterSample.index_refreshed`` is True on exactly those polls. A refresh costs one
more request (the walk that reads names and counters together, sized by the new
ifNumber); the first poll of a host is that walk alone.

Counters come from ifXTable (ifHC*, ``counter_bits=64``, speed from ifHighSpeed). An
agent without ifXTable (or a view that hides it) is detected on the walk and read from
ifTable instead (``counter_bits=32``, speed ``ifSpeed`` rounded to Mbps, names from
ifDescr). ifTable has no multicast/broadcast split: its ifIn/OutNUcastPkts (multicast +
broadcast) are reported as ``in_/out_mcast_pkts`` and the broadcast fields stay ``None``
(:class:`~collectors.counters.InterfaceCounters` has no non-unicast field), so the sum of
the three packet kinds is still every packet.

Health (:meth:`CounterCollector.poll_health`) is two GETBULKs sent together: UCD-SNMP-MIB
memory and ssCpuIdle as non-repeaters with hrProcessorLoad, and hrStorageTable. CPU is
the average hrProcessorLoad, else ``100 - ssCpuIdle``; net-snmp serves neither during its
first minute (both are one-minute averages), so ``cpu_percent`` is ``None`` then. Memory
is UCD's (kB on the wire, bytes here), ``used = total - avail - buffer - cached``
(net-snmp's memAvailReal is MemFree, so this is what ``free`` calls used); the 64-bit
``*X`` objects are preferred where the agent has them. Without UCD memory, the
hrStorageRam entry gives total and used (buffers and cache included).

The client's errors (:class:`~topology.errors.CollectionError` subclasses) propagate
unchanged; an agent whose walk does not advance raises
:class:`~topology.errors.ProtocolError`. The collector keeps per-host state: do not poll
one host twice at the same time (the poller never does).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from collectors.counters import CounterSample, HealthSample, InterfaceCounters, StorageUse
from collectors.snmp import (
    SnmpClient,
    SnmpCredentials,
    SnmpValue,
    Special,
    VarBind,
    row_index,
)
from collectors.snmp_facts import IF_STATUS
from topology.errors import ProtocolError

__all__ = [
    "COLUMNS_32",
    "COLUMNS_64",
    "BulkPart",
    "CounterCollector",
    "IndexCache",
    "health_from_values",
    "interfaces_from_rows",
    "refresh_reason",
    "split_bulk",
]

# -- what is read (numeric OIDs; names as in the MIBs) ------------------------------------

SYS_UPTIME: Final = "1.3.6.1.2.1.1.3.0"
IF_NUMBER: Final = "1.3.6.1.2.1.2.1.0"
_IF: Final = "1.3.6.1.2.1.2.2.1"          # ifTable ifEntry
_IFX: Final = "1.3.6.1.2.1.31.1.1.1"      # ifXTable ifXEntry

# InterfaceCounters field -> column OID; "name" is the column the index cache is read from
COLUMNS_64: Final[Mapping[str, str]] = {
    "in_octets": f"{_IFX}.6",              # ifHCInOctets
    "in_ucast_pkts": f"{_IFX}.7",          # ifHCInUcastPkts
    "in_mcast_pkts": f"{_IFX}.8",          # ifHCInMulticastPkts
    "in_bcast_pkts": f"{_IFX}.9",          # ifHCInBroadcastPkts
    "out_octets": f"{_IFX}.10",            # ifHCOutOctets
    "out_ucast_pkts": f"{_IFX}.11",        # ifHCOutUcastPkts
    "out_mcast_pkts": f"{_IFX}.12",        # ifHCOutMulticastPkts
    "out_bcast_pkts": f"{_IFX}.13",        # ifHCOutBroadcastPkts
    "in_discards": f"{_IF}.13",            # ifInDiscards
    "in_errors": f"{_IF}.14",              # ifInErrors
    "out_discards": f"{_IF}.19",           # ifOutDiscards
    "out_errors": f"{_IF}.20",             # ifOutErrors
    "oper_status": f"{_IF}.8",             # ifOperStatus
    "speed_mbps": f"{_IFX}.15",            # ifHighSpeed (Mbps)
    "discontinuity_ticks": f"{_IFX}.19",   # ifCounterDiscontinuityTime
}
COLUMNS_32: Final[Mapping[str, str]] = {
    "in_octets": f"{_IF}.10",              # ifInOctets
    "in_ucast_pkts": f"{_IF}.11",          # ifInUcastPkts
    "in_mcast_pkts": f"{_IF}.12",          # ifInNUcastPkts (multicast + broadcast)
    "out_octets": f"{_IF}.16",             # ifOutOctets
    "out_ucast_pkts": f"{_IF}.17",         # ifOutUcastPkts
    "out_mcast_pkts": f"{_IF}.18",         # ifOutNUcastPkts (multicast + broadcast)
    "in_discards": f"{_IF}.13",
    "in_errors": f"{_IF}.14",
    "out_discards": f"{_IF}.19",
    "out_errors": f"{_IF}.20",
    "oper_status": f"{_IF}.8",
    "speed_mbps": f"{_IF}.5",              # ifSpeed (bit/s, rounded to Mbps)
}
NAME_COLUMN: Final[Mapping[int, str]] = {64: f"{_IFX}.1", 32: f"{_IF}.2"}  # ifName, ifDescr

# health
HR_PROCESSOR_LOAD: Final = "1.3.6.1.2.1.25.3.3.1.2"
HR_STORAGE: Final[Mapping[str, str]] = {
    "type": "1.3.6.1.2.1.25.2.3.1.2",
    "descr": "1.3.6.1.2.1.25.2.3.1.3",
    "units": "1.3.6.1.2.1.25.2.3.1.4",
    "size": "1.3.6.1.2.1.25.2.3.1.5",
    "used": "1.3.6.1.2.1.25.2.3.1.6",
}
HR_STORAGE_TYPES: Final = "1.3.6.1.2.1.25.2.1"
# hrStorageTypes: 2 ram, 3 virtualMemory, 4 fixedDisk, 5 removableDisk, 6 floppyDisk,
# 7 compactDisc, 8 ramDisk, 9 flashMemory, 10 networkDisk; 1 (other) and the rest: other
STORAGE_KINDS: Final[Mapping[int, str]] = {
    2: "ram", 3: "virtual", 4: "disk", 5: "disk", 6: "disk", 7: "disk", 8: "disk",
    9: "disk", 10: "disk",
}
# UCD-SNMP-MIB scalars (memory in kB); the *X twins are Counter64 where the agent has them
UCD_SCALARS: Final[Mapping[str, str]] = {
    "memTotalReal": "1.3.6.1.4.1.2021.4.5.0",
    "memAvailReal": "1.3.6.1.4.1.2021.4.6.0",
    "memBuffer": "1.3.6.1.4.1.2021.4.14.0",
    "memCached": "1.3.6.1.4.1.2021.4.15.0",
    "memTotalRealX": "1.3.6.1.4.1.2021.4.20.0",
    "memAvailRealX": "1.3.6.1.4.1.2021.4.21.0",
    "memBufferX": "1.3.6.1.4.1.2021.4.25.0",
    "memCachedX": "1.3.6.1.4.1.2021.4.26.0",
    "ssCpuIdle": "1.3.6.1.4.1.2021.11.11.0",
}
_COUNTER_SCALARS: Final[Mapping[str, str]] = {"sysUpTime": SYS_UPTIME, "ifNumber": IF_NUMBER}
_KB: Final = 1024
_UINT32: Final = 1 << 32
_FIRST_GUESS_ROWS: Final = 16  # health: rows asked of a table never seen on this host


# -- pure helpers -------------------------------------------------------------------------

def _int(value: SnmpValue | None) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: SnmpValue | None) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").rstrip("\x00") or None
    if isinstance(value, str):
        return value or None
    return None



def _parent(instance: str) -> str:
    """The OID to GETNEXT from to land on ``instance`` (a scalar's ``.0``)."""
    return instance.rsplit(".", 1)[0]


@dataclass
class BulkPart:
    """One GETBULK answer split up: scalars found (name -> value, only where the agent
    returned the exact instance), rows per column (name -> {row index: value}), the
    columns the answer walked past the end of, and the last row index read in each column."""

    scalars: dict[str, SnmpValue] = field(default_factory=dict)
    rows: dict[str, dict[tuple[int, ...], SnmpValue]] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)
    last: dict[str, tuple[int, ...]] = field(default_factory=dict)


def split_bulk(varbinds: Sequence[VarBind], scalars: Mapping[str, str],
               columns: Mapping[str, str]) -> BulkPart:
    """Split a GETBULK answer asked as ``scalars`` (name -> instance OID, sent as the
    non-repeaters' parents) then ``columns`` (name -> column OID) by wire position.

    A column's rows end at the first varbind outside it (or an exception value): later
    repetitions of that column belong to other objects and are dropped.
    """
    part = BulkPart(rows={name: {} for name in columns})
    names = list(columns)
    scalar_items = list(scalars.items())
    nr = len(scalar_items)
    for position, vb in enumerate(varbinds):
        if position < nr:
            name, instance = scalar_items[position]
            if vb.oid == instance and not isinstance(vb.value, Special):
                part.scalars[name] = vb.value
            continue
        if not names:
            break
        name = names[(position - nr) % len(names)]
        if name in part.ended:
            continue
        index = None if isinstance(vb.value, Special) else row_index(vb.oid, columns[name])
        if index is None:
            part.ended.add(name)
            continue
        part.rows[name][index] = vb.value
        part.last[name] = index
    return part


def _if_rows(rows: Mapping[tuple[int, ...], SnmpValue]) -> dict[int, SnmpValue]:
    """IF-MIB rows are indexed by ifIndex alone: other index shapes are dropped."""
    return {index[0]: value for index, value in rows.items() if len(index) == 1}


def interfaces_from_rows(rows: Mapping[str, Mapping[int, SnmpValue]],
                         names: Mapping[int, str | None],
                         bits: int) -> tuple[InterfaceCounters, ...]:
    """InterfaceCounters for every ifIndex in ``rows`` (field -> {ifIndex: value}), in
    ifIndex order, named from ``names``; ``bits`` says which columns ``rows`` came from."""
    indices = sorted({i for column in rows.values() for i in column})
    out = []
    for index in indices:
        def value(name: str, index: int = index) -> int | None:
            return _int(rows.get(name, {}).get(index))

        oper = value("oper_status")
        speed = value("speed_mbps")
        if bits == 32 and speed is not None:
            speed = (speed + 500_000) // 1_000_000  # ifSpeed in bit/s, as ifHighSpeed rounds
        out.append(InterfaceCounters(
            if_index=index, name=names.get(index), counter_bits=bits,
            in_octets=value("in_octets"), out_octets=value("out_octets"),
            in_ucast_pkts=value("in_ucast_pkts"), out_ucast_pkts=value("out_ucast_pkts"),
            in_mcast_pkts=value("in_mcast_pkts"), out_mcast_pkts=value("out_mcast_pkts"),
            in_bcast_pkts=value("in_bcast_pkts"), out_bcast_pkts=value("out_bcast_pkts"),
            in_errors=value("in_errors"), out_errors=value("out_errors"),
            in_discards=value("in_discards"), out_discards=value("out_discards"),
            oper_status=IF_STATUS.get(oper, str(oper)) if oper is not None else None,
            speed_mbps=speed,
            discontinuity_ticks=value("discontinuity_ticks"),
        ))
    return tuple(out)


@dataclass
class IndexCache:
    """What a host's last poll left: ifIndex -> name, ifNumber, sysUpTime, counter width."""

    names: dict[int, str | None]
    if_number: int | None
    uptime_ticks: int | None
    bits: int

    @property
    def indices(self) -> list[int]:
        return sorted(self.names)


def refresh_reason(cache: IndexCache | None, *, uptime_ticks: int | None,
                   if_number: int | None, seen: set[int],
                   octets_rows: int) -> str | None:
    """Why the ifIndex -> name table must be read again, or ``None`` when it is current.

    ``seen`` are the ifIndex values that answered, ``octets_rows`` how many rows the
    in_octets column had (none while interfaces exist: the counter columns are gone).
    """
    if cache is None:
        return "first poll"
    if (uptime_ticks is not None and cache.uptime_ticks is not None
            and uptime_ticks < cache.uptime_ticks):
        return f"sysUpTime went back from {cache.uptime_ticks} to {uptime_ticks}"
    if if_number != cache.if_number:
        return f"ifNumber changed from {cache.if_number} to {if_number}"
    unknown = sorted(seen - set(cache.names))
    if unknown:
        return f"new ifIndex {', '.join(map(str, unknown))}"
    if octets_rows == 0 and (if_number or cache.names):
        return f"no {cache.bits}-bit octet counters answered"
    return None


def _storage_kind(type_oid: SnmpValue | None) -> str:
    if isinstance(type_oid, str) and type_oid.startswith(HR_STORAGE_TYPES + "."):
        tail = type_oid[len(HR_STORAGE_TYPES) + 1:]
        if tail.isdigit():
            return STORAGE_KINDS.get(int(tail), "other")
    return "other"


def _unsigned(value: int) -> int:
    """hrStorageSize/Used are Integer32: agents that overflow them report negatives."""
    return value + _UINT32 if value < 0 else value


def health_from_values(host: str, taken_at: float, ucd: Mapping[str, SnmpValue],
                       processor_load: Mapping[tuple[int, ...], SnmpValue],
                       storage: Mapping[str, Mapping[tuple[int, ...], SnmpValue]]
                       ) -> HealthSample:
    """A HealthSample from what the agent answered: UCD scalars (name -> value),
    hrProcessorLoad rows, and hrStorageTable rows per column (HR_STORAGE's names)."""
    loads = [v for v in (_int(x) for x in processor_load.values()) if v is not None]
    cpu: float | None = sum(loads) / len(loads) if loads else None
    idle = _int(ucd.get("ssCpuIdle"))
    if cpu is None and idle is not None:
        cpu = float(100 - idle)

    entries = []
    for row in sorted({r for column in storage.values() for r in column}):
        def col(name: str, row: tuple[int, ...] = row) -> SnmpValue | None:
            return storage.get(name, {}).get(row)
        units = _int(col("units")) or 0
        size = _int(col("size"))
        used = _int(col("used"))
        if size is None and used is None:
            continue
        entries.append(StorageUse(
            descr=_text(col("descr")) or f"hrStorageIndex {'.'.join(map(str, row))}",
            kind=_storage_kind(col("type")),
            size_bytes=_unsigned(size or 0) * units,
            used_bytes=_unsigned(used or 0) * units))

    def kb(name: str) -> int | None:
        wide = _int(ucd.get(f"{name}X"))
        return wide if wide is not None else _int(ucd.get(name))

    total_kb, avail_kb = kb("memTotalReal"), kb("memAvailReal")
    mem_total: int | None = None
    mem_used: int | None = None
    if total_kb is not None and avail_kb is not None:
        used_kb = total_kb - avail_kb - (kb("memBuffer") or 0) - (kb("memCached") or 0)
        mem_total, mem_used = total_kb * _KB, max(0, used_kb) * _KB
    else:
        ram = next((e for e in entries if e.kind == "ram"), None)
        if ram is not None:
            mem_total, mem_used = ram.size_bytes, ram.used_bytes
    return HealthSample(host=host, taken_at=taken_at, cpu_percent=cpu,
                        mem_total_bytes=mem_total, mem_used_bytes=mem_used,
                        storage=tuple(entries))


# -- the collector ------------------------------------------------------------------------

@dataclass
class _Walked:
    scalars: dict[str, SnmpValue]
    rows: dict[str, dict[tuple[int, ...], SnmpValue]]
    arrived: float  # time.time() when the answer carrying the scalars arrived


class CounterCollector:
    """Polls interface counters (:meth:`poll`) and health (:meth:`poll_health`) through
    one :class:`~collectors.snmp.SnmpClient`, keeping each host's ifIndex -> name cache.

    ``max_varbinds`` is how many varbinds one GETBULK answer is planned to hold (the
    agent may return fewer; the rest is asked again).
    """

    def __init__(self, client: SnmpClient, *, max_varbinds: int = 100) -> None:
        if max_varbinds < len(_COUNTER_SCALARS) + 1:
            raise ValueError("max_varbinds too small for one row")
        self.client = client
        self.max_varbinds = max_varbinds
        self._cache: dict[str, IndexCache] = {}
        self._health_rows: dict[str, tuple[int, int]] = {}  # host -> (processors, storage)

    def cached(self, host: str) -> IndexCache | None:
        """The host's index cache (``None`` before its first poll)."""
        return self._cache.get(host)

    def forget(self, host: str) -> None:
        """Drop what is cached for ``host`` (its next poll re-reads the index)."""
        self._cache.pop(host, None)
        self._health_rows.pop(host, None)

    # -- counters ----------------------------------------------------------------------

    async def poll(self, host: str, creds: SnmpCredentials) -> CounterSample:
        """One poll of ``host``'s interface counters."""
        cache = self._cache.get(host)
        if cache is not None:
            columns = COLUMNS_64 if cache.bits == 64 else COLUMNS_32
            walked = await self._by_rows(host, creds, columns, cache.indices)
            rows = {name: _if_rows(r) for name, r in walked.rows.items()}
            uptime = _int(walked.scalars.get("sysUpTime"))
            if_number = _int(walked.scalars.get("ifNumber"))
            seen = {i for column in rows.values() for i in column}
            reason = refresh_reason(cache, uptime_ticks=uptime, if_number=if_number,
                                    seen=seen, octets_rows=len(rows["in_octets"]))
            if reason is None:
                cache.uptime_ticks = uptime
                return CounterSample(
                    host=host, taken_at=walked.arrived, sys_uptime_ticks=uptime,
                    interfaces=interfaces_from_rows(rows, cache.names, cache.bits),
                    if_number=if_number, source="snmp", index_refreshed=False)
            restarted = (uptime is not None and cache.uptime_ticks is not None
                         and uptime < cache.uptime_ticks)
            bits = 64 if restarted else cache.bits  # a restarted agent may have ifXTable now
            return await self._refresh(host, creds, bits, if_number)
        return await self._refresh(host, creds, 64, None)

    async def _refresh(self, host: str, creds: SnmpCredentials, bits: int,
                       if_number: int | None) -> CounterSample:
        """Read names and counters in one walk; fall back to ifTable without ifXTable."""
        walked, rows = await self._walk_counters(host, creds, bits, if_number)
        if bits == 64 and not rows["in_octets"] and (rows["oper_status"] or rows["name"]):
            bits = 32
            walked, rows = await self._walk_counters(
                host, creds, 32, _int(walked.scalars.get("ifNumber")))
        names_raw = rows.pop("name")
        indices = {i for column in rows.values() for i in column} | set(names_raw)
        names = {i: _text(names_raw.get(i)) for i in sorted(indices)}
        uptime = _int(walked.scalars.get("sysUpTime"))
        if_number = _int(walked.scalars.get("ifNumber"))
        self._cache[host] = IndexCache(names=names, if_number=if_number,
                                       uptime_ticks=uptime, bits=bits)
        return CounterSample(host=host, taken_at=walked.arrived, sys_uptime_ticks=uptime,
                             interfaces=interfaces_from_rows(rows, names, bits),
                             if_number=if_number, source="snmp", index_refreshed=True)

    async def _walk_counters(self, host: str, creds: SnmpCredentials, bits: int,
                             if_number: int | None
                             ) -> tuple[_Walked, dict[str, dict[int, SnmpValue]]]:
        columns = {"name": NAME_COLUMN[bits], **(COLUMNS_64 if bits == 64 else COLUMNS_32)}
        walked = await self._walk(host, creds, _COUNTER_SCALARS, columns,
                                  expected_rows=if_number, count_scalar="ifNumber")
        return walked, {name: _if_rows(r) for name, r in walked.rows.items()}

    async def _by_rows(self, host: str, creds: SnmpCredentials, columns: Mapping[str, str],
                       indices: Sequence[int]) -> _Walked:
        """The columns for the cached ifIndex list: one GETBULK per slice of rows that
        fits ``max_varbinds``, all sent at once; the first also asks the scalars."""
        width = len(columns)
        per = max(1, (self.max_varbinds - len(_COUNTER_SCALARS)) // width)
        slices = [(indices[start - 1] if start else None, len(indices[start:start + per]))
                  for start in range(0, len(indices), per)] or [(None, 1)]
        arrived: list[float] = []

        async def one(after: int | None, count: int, first: bool) -> BulkPart:
            scalars = _COUNTER_SCALARS if first else {}
            starts = [_parent(o) for o in scalars.values()]
            starts += [oid if after is None else f"{oid}.{after}" for oid in columns.values()]
            answer = await self.client.get_bulk(host, creds, starts,
                                                 non_repeaters=len(scalars),
                                                 max_repetitions=max(1, count))
            if first:
                arrived.append(time.time())
            return split_bulk(answer, scalars, columns)

        parts = await asyncio.gather(*(one(after, count, i == 0)
                                       for i, (after, count) in enumerate(slices)))
        rows: dict[str, dict[tuple[int, ...], SnmpValue]] = {name: {} for name in columns}
        for part in parts:
            for name, found in part.rows.items():
                rows[name].update(found)
        return _Walked(parts[0].scalars, rows, arrived[0])

    # -- the generic side-by-side walk -------------------------------------------------

    async def _walk(self, host: str, creds: SnmpCredentials, scalars: Mapping[str, str],
                    columns: Mapping[str, str], *, expected_rows: int | None = None,
                    count_scalar: str | None = None, first_rows: int | None = None
                    ) -> _Walked:
        """Walk ``columns`` side by side, ``scalars`` as non-repeaters of the first
        GETBULK, until every column has ended or holds ``expected_rows`` rows (taken from
        the ``count_scalar`` answer when not given). ``first_rows`` sizes the first
        request (else as many rows as ``expected_rows``, within ``max_varbinds``)."""
        rows: dict[str, dict[tuple[int, ...], SnmpValue]] = {name: {} for name in columns}
        cursor = dict(columns)
        found: dict[str, SnmpValue] = {}
        active = list(columns)
        arrived: float | None = None
        ask = scalars
        while active:
            room = max(1, (self.max_varbinds - len(ask)) // len(active))
            want = first_rows if arrived is None and first_rows else None
            if want is None and expected_rows is not None:
                want = max(1, expected_rows - min(len(rows[n]) for n in active))
            reps = min(room, want) if want is not None else room
            answer = await self.client.get_bulk(
                host, creds, [_parent(o) for o in ask.values()] + [cursor[n] for n in active],
                non_repeaters=len(ask), max_repetitions=reps)
            if arrived is None:
                arrived = time.time()
            part = split_bulk(answer, ask, {n: columns[n] for n in active})
            found.update(part.scalars)
            if count_scalar is not None and expected_rows is None:
                expected_rows = _int(found.get(count_scalar))
            ask = {}
            moved = False
            for name in active:
                for index, value in part.rows[name].items():
                    rows[name][index] = value
                if name in part.last:
                    new = part.last[name]
                    if new <= (row_index(cursor[name], columns[name]) or ()):
                        raise ProtocolError(
                            f"snmp walk {host}: OID not increasing in {columns[name]} at "
                            f"{columns[name]}.{'.'.join(map(str, new))} (credential "
                            f"profile {creds.profile!r})",
                            device=host, operation="snmp walk", profile=creds.profile)
                    cursor[name] = f"{columns[name]}.{'.'.join(map(str, new))}"
                    moved = True
            done = set(part.ended)
            if expected_rows is not None:
                done |= {n for n in active if len(rows[n]) >= expected_rows}
            if not moved and not done:
                raise ProtocolError(
                    f"snmp walk {host}: the agent returned nothing usable for "
                    f"{', '.join(columns[n] for n in active)} "
                    f"(credential profile {creds.profile!r})",
                    device=host, operation="snmp walk", profile=creds.profile)
            active = [n for n in active if n not in done]
        assert arrived is not None or not columns
        return _Walked(found, rows, arrived if arrived is not None else time.time())

    # -- health ------------------------------------------------------------------------

    async def poll_health(self, host: str, creds: SnmpCredentials) -> HealthSample:
        """CPU, memory and storage of ``host``; ``None`` where the agent has none."""
        processors, storage_rows = self._health_rows.get(host, (0, 0))
        # as many rows as last time (a first guess where there were none), +1: the walk
        # sees the end of a table that did not change within one request
        processors = processors or _FIRST_GUESS_ROWS
        storage_rows = storage_rows or _FIRST_GUESS_ROWS
        cpu_walk, storage_walk = await asyncio.gather(
            self._walk(host, creds, UCD_SCALARS, {"load": HR_PROCESSOR_LOAD},
                       first_rows=processors + 1),
            self._walk(host, creds, {}, HR_STORAGE, first_rows=storage_rows + 1))
        taken_at = max(cpu_walk.arrived, storage_walk.arrived)
        self._health_rows[host] = (len(cpu_walk.rows["load"]),
                                   max(len(r) for r in storage_walk.rows.values()))
        return health_from_values(host, taken_at, cpu_walk.scalars, cpu_walk.rows["load"],
                                  storage_walk.rows)
