"""The counter and health collectors without a network: GETBULK answers split into rows,
InterfaceCounters from rows (64-bit and the 32-bit ifTable fallback), the index-cache
refresh decisions, health from recorded varbinds, and the NETCONF statistics parser.

The collectors run against ``RecordedAgent``: a recording of the core lab's r1 (net-snmp
5.9.3 on Linux, walked with collectors.snmp; unused IF-MIB columns left out) answered
with GETNEXT/GETBULK semantics and net-snmp's default cap of 100 varbinds per GETBULK
answer (whole repetitions, as snmpd trims them)."""
# ruff: noqa: E501  (the recording below keeps the agent's OIDs and values on one line)

from __future__ import annotations

import ast
import asyncio
import bisect
import dataclasses
import functools
import socket
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from collectors.counters import InterfaceCounters
from collectors.netconf_counters import (
    counters_from_reply,
    discontinuity_ticks,
    netconf_counters,
)
from collectors.snmp import SnmpCredentials, SnmpValue, SnmpVersion, Special, VarBind
from collectors.snmp_counters import (
    COLUMNS_32,
    COLUMNS_64,
    CounterCollector,
    IndexCache,
    health_from_values,
    interfaces_from_rows,
    refresh_reason,
    split_bulk,
)
from topology.errors import ConnectionRefused, DeviceTimeout, ProtocolError

GOLDEN = Path(__file__).parent.parent / "golden" / "netconf"
HOST = "192.0.2.11"
CREDS = SnmpCredentials(version=SnmpVersion.V2C, profile="lab", community=SecretStr("c"))
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
IF_NUMBER = "1.3.6.1.2.1.2.1.0"
IF_X = "1.3.6.1.2.1.31.1.1.1"
IF_T = "1.3.6.1.2.1.2.2.1"

# r1 of the core lab: sysUpTime, the interfaces group, ifXTable, hrStorageTable,
# hrProcessorTable, UCD memory and systemStats (``oid kind value``)
R1_RECORDING = """
1.3.6.1.2.1.1.3.0 TimeTicks 41822
1.3.6.1.2.1.2.1.0 Integer 6
1.3.6.1.2.1.2.2.1.2.1 OctetString b'lo'
1.3.6.1.2.1.2.2.1.2.2 OctetString b'mgmt0'
1.3.6.1.2.1.2.2.1.2.3 OctetString b'eth1'
1.3.6.1.2.1.2.2.1.2.4 OctetString b'eth2'
1.3.6.1.2.1.2.2.1.2.5 OctetString b'eth3'
1.3.6.1.2.1.2.2.1.2.6 OctetString b'eth4'
1.3.6.1.2.1.2.2.1.5.1 Gauge32 10000000
1.3.6.1.2.1.2.2.1.5.2 Gauge32 4294967295
1.3.6.1.2.1.2.2.1.5.3 Gauge32 4294967295
1.3.6.1.2.1.2.2.1.5.4 Gauge32 4294967295
1.3.6.1.2.1.2.2.1.5.5 Gauge32 4294967295
1.3.6.1.2.1.2.2.1.5.6 Gauge32 4294967295
1.3.6.1.2.1.2.2.1.8.1 Integer 1
1.3.6.1.2.1.2.2.1.8.2 Integer 1
1.3.6.1.2.1.2.2.1.8.3 Integer 1
1.3.6.1.2.1.2.2.1.8.4 Integer 1
1.3.6.1.2.1.2.2.1.8.5 Integer 1
1.3.6.1.2.1.2.2.1.8.6 Integer 1
1.3.6.1.2.1.2.2.1.10.1 Counter32 0
1.3.6.1.2.1.2.2.1.10.2 Counter32 56474
1.3.6.1.2.1.2.2.1.10.3 Counter32 20529
1.3.6.1.2.1.2.2.1.10.4 Counter32 20511
1.3.6.1.2.1.2.2.1.10.5 Counter32 936
1.3.6.1.2.1.2.2.1.10.6 Counter32 936
1.3.6.1.2.1.2.2.1.11.1 Counter32 0
1.3.6.1.2.1.2.2.1.11.2 Counter32 558
1.3.6.1.2.1.2.2.1.11.3 Counter32 157
1.3.6.1.2.1.2.2.1.11.4 Counter32 156
1.3.6.1.2.1.2.2.1.11.5 Counter32 12
1.3.6.1.2.1.2.2.1.11.6 Counter32 12
1.3.6.1.2.1.2.2.1.12.1 Counter32 0
1.3.6.1.2.1.2.2.1.12.2 Counter32 0
1.3.6.1.2.1.2.2.1.12.3 Counter32 0
1.3.6.1.2.1.2.2.1.12.4 Counter32 0
1.3.6.1.2.1.2.2.1.12.5 Counter32 0
1.3.6.1.2.1.2.2.1.12.6 Counter32 0
1.3.6.1.2.1.2.2.1.13.1 Counter32 0
1.3.6.1.2.1.2.2.1.13.2 Counter32 0
1.3.6.1.2.1.2.2.1.13.3 Counter32 0
1.3.6.1.2.1.2.2.1.13.4 Counter32 0
1.3.6.1.2.1.2.2.1.13.5 Counter32 0
1.3.6.1.2.1.2.2.1.13.6 Counter32 0
1.3.6.1.2.1.2.2.1.14.1 Counter32 0
1.3.6.1.2.1.2.2.1.14.2 Counter32 0
1.3.6.1.2.1.2.2.1.14.3 Counter32 0
1.3.6.1.2.1.2.2.1.14.4 Counter32 0
1.3.6.1.2.1.2.2.1.14.5 Counter32 0
1.3.6.1.2.1.2.2.1.14.6 Counter32 0
1.3.6.1.2.1.2.2.1.16.1 Counter32 0
1.3.6.1.2.1.2.2.1.16.2 Counter32 73428
1.3.6.1.2.1.2.2.1.16.3 Counter32 21033
1.3.6.1.2.1.2.2.1.16.4 Counter32 20325
1.3.6.1.2.1.2.2.1.16.5 Counter32 14964
1.3.6.1.2.1.2.2.1.16.6 Counter32 14964
1.3.6.1.2.1.2.2.1.17.1 Counter32 0
1.3.6.1.2.1.2.2.1.17.2 Counter32 475
1.3.6.1.2.1.2.2.1.17.3 Counter32 161
1.3.6.1.2.1.2.2.1.17.4 Counter32 157
1.3.6.1.2.1.2.2.1.17.5 Counter32 96
1.3.6.1.2.1.2.2.1.17.6 Counter32 96
1.3.6.1.2.1.2.2.1.18.1 Counter32 0
1.3.6.1.2.1.2.2.1.18.2 Counter32 0
1.3.6.1.2.1.2.2.1.18.3 Counter32 0
1.3.6.1.2.1.2.2.1.18.4 Counter32 0
1.3.6.1.2.1.2.2.1.18.5 Counter32 0
1.3.6.1.2.1.2.2.1.18.6 Counter32 0
1.3.6.1.2.1.2.2.1.19.1 Counter32 0
1.3.6.1.2.1.2.2.1.19.2 Counter32 0
1.3.6.1.2.1.2.2.1.19.3 Counter32 0
1.3.6.1.2.1.2.2.1.19.4 Counter32 0
1.3.6.1.2.1.2.2.1.19.5 Counter32 0
1.3.6.1.2.1.2.2.1.19.6 Counter32 0
1.3.6.1.2.1.2.2.1.20.1 Counter32 0
1.3.6.1.2.1.2.2.1.20.2 Counter32 0
1.3.6.1.2.1.2.2.1.20.3 Counter32 0
1.3.6.1.2.1.2.2.1.20.4 Counter32 0
1.3.6.1.2.1.2.2.1.20.5 Counter32 0
1.3.6.1.2.1.2.2.1.20.6 Counter32 0
1.3.6.1.2.1.25.2.3.1.2.1 ObjectIdentifier '1.3.6.1.2.1.25.2.1.2'
1.3.6.1.2.1.25.2.3.1.2.3 ObjectIdentifier '1.3.6.1.2.1.25.2.1.3'
1.3.6.1.2.1.25.2.3.1.2.6 ObjectIdentifier '1.3.6.1.2.1.25.2.1.1'
1.3.6.1.2.1.25.2.3.1.2.7 ObjectIdentifier '1.3.6.1.2.1.25.2.1.1'
1.3.6.1.2.1.25.2.3.1.2.8 ObjectIdentifier '1.3.6.1.2.1.25.2.1.1'
1.3.6.1.2.1.25.2.3.1.2.10 ObjectIdentifier '1.3.6.1.2.1.25.2.1.3'
1.3.6.1.2.1.25.2.3.1.2.11 ObjectIdentifier '1.3.6.1.2.1.25.2.1.1'
1.3.6.1.2.1.25.2.3.1.2.31 ObjectIdentifier '1.3.6.1.2.1.25.2.1.4'
1.3.6.1.2.1.25.2.3.1.2.32 ObjectIdentifier '1.3.6.1.2.1.25.2.1.4'
1.3.6.1.2.1.25.2.3.1.2.35 ObjectIdentifier '1.3.6.1.2.1.25.2.1.4'
1.3.6.1.2.1.25.2.3.1.2.37 ObjectIdentifier '1.3.6.1.2.1.25.2.1.4'
1.3.6.1.2.1.25.2.3.1.2.56 ObjectIdentifier '1.3.6.1.2.1.25.2.1.4'
1.3.6.1.2.1.25.2.3.1.2.57 ObjectIdentifier '1.3.6.1.2.1.25.2.1.4'
1.3.6.1.2.1.25.2.3.1.2.58 ObjectIdentifier '1.3.6.1.2.1.25.2.1.4'
1.3.6.1.2.1.25.2.3.1.2.59 ObjectIdentifier '1.3.6.1.2.1.25.2.1.4'
1.3.6.1.2.1.25.2.3.1.2.60 ObjectIdentifier '1.3.6.1.2.1.25.2.1.4'
1.3.6.1.2.1.25.2.3.1.3.1 OctetString b'Physical memory'
1.3.6.1.2.1.25.2.3.1.3.3 OctetString b'Virtual memory'
1.3.6.1.2.1.25.2.3.1.3.6 OctetString b'Memory buffers'
1.3.6.1.2.1.25.2.3.1.3.7 OctetString b'Cached memory'
1.3.6.1.2.1.25.2.3.1.3.8 OctetString b'Shared memory'
1.3.6.1.2.1.25.2.3.1.3.10 OctetString b'Swap space'
1.3.6.1.2.1.25.2.3.1.3.11 OctetString b'Available memory'
1.3.6.1.2.1.25.2.3.1.3.31 OctetString b'/'
1.3.6.1.2.1.25.2.3.1.3.32 OctetString b'/mnt/sandboxing/model_tools_env/v1/python'
1.3.6.1.2.1.25.2.3.1.3.35 OctetString b'/dev/shm'
1.3.6.1.2.1.25.2.3.1.3.37 OctetString b'/run/netns'
1.3.6.1.2.1.25.2.3.1.3.56 OctetString b'/run'
1.3.6.1.2.1.25.2.3.1.3.57 OctetString b'/etc/frr'
1.3.6.1.2.1.25.2.3.1.3.58 OctetString b'/etc/passwd'
1.3.6.1.2.1.25.2.3.1.3.59 OctetString b'/etc/shadow'
1.3.6.1.2.1.25.2.3.1.3.60 OctetString b'/etc/group'
1.3.6.1.2.1.25.2.3.1.4.1 Integer 1024
1.3.6.1.2.1.25.2.3.1.4.3 Integer 1024
1.3.6.1.2.1.25.2.3.1.4.6 Integer 1024
1.3.6.1.2.1.25.2.3.1.4.7 Integer 1024
1.3.6.1.2.1.25.2.3.1.4.8 Integer 1024
1.3.6.1.2.1.25.2.3.1.4.10 Integer 1024
1.3.6.1.2.1.25.2.3.1.4.11 Integer 1024
1.3.6.1.2.1.25.2.3.1.4.31 Integer 4096
1.3.6.1.2.1.25.2.3.1.4.32 Integer 4096
1.3.6.1.2.1.25.2.3.1.4.35 Integer 4096
1.3.6.1.2.1.25.2.3.1.4.37 Integer 0
1.3.6.1.2.1.25.2.3.1.4.56 Integer 4096
1.3.6.1.2.1.25.2.3.1.4.57 Integer 4096
1.3.6.1.2.1.25.2.3.1.4.58 Integer 4096
1.3.6.1.2.1.25.2.3.1.4.59 Integer 4096
1.3.6.1.2.1.25.2.3.1.4.60 Integer 4096
1.3.6.1.2.1.25.2.3.1.5.1 Integer 24684084
1.3.6.1.2.1.25.2.3.1.5.3 Integer 24684084
1.3.6.1.2.1.25.2.3.1.5.6 Integer 24684084
1.3.6.1.2.1.25.2.3.1.5.7 Integer 1820168
1.3.6.1.2.1.25.2.3.1.5.8 Integer 8872
1.3.6.1.2.1.25.2.3.1.5.10 Integer 0
1.3.6.1.2.1.25.2.3.1.5.11 Integer 23819184
1.3.6.1.2.1.25.2.3.1.5.31 Integer 66053021
1.3.6.1.2.1.25.2.3.1.5.32 Integer 1
1.3.6.1.2.1.25.2.3.1.5.35 Integer 6171021
1.3.6.1.2.1.25.2.3.1.5.37 Integer 0
1.3.6.1.2.1.25.2.3.1.5.56 Integer 66053021
1.3.6.1.2.1.25.2.3.1.5.57 Integer 66053021
1.3.6.1.2.1.25.2.3.1.5.58 Integer 66053021
1.3.6.1.2.1.25.2.3.1.5.59 Integer 66053021
1.3.6.1.2.1.25.2.3.1.5.60 Integer 66053021
1.3.6.1.2.1.25.2.3.1.6.1 Integer 2483524
1.3.6.1.2.1.25.2.3.1.6.3 Integer 2483524
1.3.6.1.2.1.25.2.3.1.6.6 Integer 91156
1.3.6.1.2.1.25.2.3.1.6.7 Integer 1820168
1.3.6.1.2.1.25.2.3.1.6.8 Integer 8872
1.3.6.1.2.1.25.2.3.1.6.10 Integer 0
1.3.6.1.2.1.25.2.3.1.6.11 Integer 0
1.3.6.1.2.1.25.2.3.1.6.31 Integer 5850263
1.3.6.1.2.1.25.2.3.1.6.32 Integer 0
1.3.6.1.2.1.25.2.3.1.6.35 Integer 0
1.3.6.1.2.1.25.2.3.1.6.37 Integer 0
1.3.6.1.2.1.25.2.3.1.6.56 Integer 5850263
1.3.6.1.2.1.25.2.3.1.6.57 Integer 5850263
1.3.6.1.2.1.25.2.3.1.6.58 Integer 5850263
1.3.6.1.2.1.25.2.3.1.6.59 Integer 5850263
1.3.6.1.2.1.25.2.3.1.6.60 Integer 5850263
1.3.6.1.2.1.25.3.3.1.1.196608 ObjectIdentifier '0.0'
1.3.6.1.2.1.25.3.3.1.1.196609 ObjectIdentifier '0.0'
1.3.6.1.2.1.25.3.3.1.2.196608 Integer 13
1.3.6.1.2.1.25.3.3.1.2.196609 Integer 12
1.3.6.1.2.1.31.1.1.1.1.1 OctetString b'lo'
1.3.6.1.2.1.31.1.1.1.1.2 OctetString b'mgmt0'
1.3.6.1.2.1.31.1.1.1.1.3 OctetString b'eth1'
1.3.6.1.2.1.31.1.1.1.1.4 OctetString b'eth2'
1.3.6.1.2.1.31.1.1.1.1.5 OctetString b'eth3'
1.3.6.1.2.1.31.1.1.1.1.6 OctetString b'eth4'
1.3.6.1.2.1.31.1.1.1.6.1 Counter64 0
1.3.6.1.2.1.31.1.1.1.6.2 Counter64 56474
1.3.6.1.2.1.31.1.1.1.6.3 Counter64 20529
1.3.6.1.2.1.31.1.1.1.6.4 Counter64 20511
1.3.6.1.2.1.31.1.1.1.6.5 Counter64 936
1.3.6.1.2.1.31.1.1.1.6.6 Counter64 936
1.3.6.1.2.1.31.1.1.1.7.1 Counter64 0
1.3.6.1.2.1.31.1.1.1.7.2 Counter64 558
1.3.6.1.2.1.31.1.1.1.7.3 Counter64 157
1.3.6.1.2.1.31.1.1.1.7.4 Counter64 156
1.3.6.1.2.1.31.1.1.1.7.5 Counter64 12
1.3.6.1.2.1.31.1.1.1.7.6 Counter64 12
1.3.6.1.2.1.31.1.1.1.8.1 Counter64 0
1.3.6.1.2.1.31.1.1.1.8.2 Counter64 0
1.3.6.1.2.1.31.1.1.1.8.3 Counter64 0
1.3.6.1.2.1.31.1.1.1.8.4 Counter64 0
1.3.6.1.2.1.31.1.1.1.8.5 Counter64 0
1.3.6.1.2.1.31.1.1.1.8.6 Counter64 0
1.3.6.1.2.1.31.1.1.1.9.1 Counter64 0
1.3.6.1.2.1.31.1.1.1.9.2 Counter64 0
1.3.6.1.2.1.31.1.1.1.9.3 Counter64 0
1.3.6.1.2.1.31.1.1.1.9.4 Counter64 0
1.3.6.1.2.1.31.1.1.1.9.5 Counter64 0
1.3.6.1.2.1.31.1.1.1.9.6 Counter64 0
1.3.6.1.2.1.31.1.1.1.10.1 Counter64 0
1.3.6.1.2.1.31.1.1.1.10.2 Counter64 73428
1.3.6.1.2.1.31.1.1.1.10.3 Counter64 21033
1.3.6.1.2.1.31.1.1.1.10.4 Counter64 20325
1.3.6.1.2.1.31.1.1.1.10.5 Counter64 14964
1.3.6.1.2.1.31.1.1.1.10.6 Counter64 14964
1.3.6.1.2.1.31.1.1.1.11.1 Counter64 0
1.3.6.1.2.1.31.1.1.1.11.2 Counter64 475
1.3.6.1.2.1.31.1.1.1.11.3 Counter64 161
1.3.6.1.2.1.31.1.1.1.11.4 Counter64 157
1.3.6.1.2.1.31.1.1.1.11.5 Counter64 96
1.3.6.1.2.1.31.1.1.1.11.6 Counter64 96
1.3.6.1.2.1.31.1.1.1.12.1 Counter64 0
1.3.6.1.2.1.31.1.1.1.12.2 Counter64 0
1.3.6.1.2.1.31.1.1.1.12.3 Counter64 0
1.3.6.1.2.1.31.1.1.1.12.4 Counter64 0
1.3.6.1.2.1.31.1.1.1.12.5 Counter64 0
1.3.6.1.2.1.31.1.1.1.12.6 Counter64 0
1.3.6.1.2.1.31.1.1.1.13.1 Counter64 0
1.3.6.1.2.1.31.1.1.1.13.2 Counter64 0
1.3.6.1.2.1.31.1.1.1.13.3 Counter64 0
1.3.6.1.2.1.31.1.1.1.13.4 Counter64 0
1.3.6.1.2.1.31.1.1.1.13.5 Counter64 0
1.3.6.1.2.1.31.1.1.1.13.6 Counter64 0
1.3.6.1.2.1.31.1.1.1.15.1 Gauge32 10
1.3.6.1.2.1.31.1.1.1.15.2 Gauge32 10000
1.3.6.1.2.1.31.1.1.1.15.3 Gauge32 10000
1.3.6.1.2.1.31.1.1.1.15.4 Gauge32 10000
1.3.6.1.2.1.31.1.1.1.15.5 Gauge32 10000
1.3.6.1.2.1.31.1.1.1.15.6 Gauge32 10000
1.3.6.1.2.1.31.1.1.1.19.1 TimeTicks 0
1.3.6.1.2.1.31.1.1.1.19.2 TimeTicks 0
1.3.6.1.2.1.31.1.1.1.19.3 TimeTicks 0
1.3.6.1.2.1.31.1.1.1.19.4 TimeTicks 0
1.3.6.1.2.1.31.1.1.1.19.5 TimeTicks 0
1.3.6.1.2.1.31.1.1.1.19.6 TimeTicks 0
1.3.6.1.4.1.2021.4.1.0 Integer 0
1.3.6.1.4.1.2021.4.2.0 OctetString b'swap'
1.3.6.1.4.1.2021.4.3.0 Integer 0
1.3.6.1.4.1.2021.4.4.0 Integer 0
1.3.6.1.4.1.2021.4.5.0 Integer 24684084
1.3.6.1.4.1.2021.4.6.0 Integer 22200560
1.3.6.1.4.1.2021.4.11.0 Integer 22200560
1.3.6.1.4.1.2021.4.12.0 Integer 16000
1.3.6.1.4.1.2021.4.13.0 Integer 8872
1.3.6.1.4.1.2021.4.14.0 Integer 91156
1.3.6.1.4.1.2021.4.15.0 Integer 1820168
1.3.6.1.4.1.2021.4.18.0 Counter64 0
1.3.6.1.4.1.2021.4.19.0 Counter64 0
1.3.6.1.4.1.2021.4.20.0 Counter64 24684084
1.3.6.1.4.1.2021.4.21.0 Counter64 22200560
1.3.6.1.4.1.2021.4.22.0 Counter64 22200560
1.3.6.1.4.1.2021.4.23.0 Counter64 16000
1.3.6.1.4.1.2021.4.24.0 Counter64 8872
1.3.6.1.4.1.2021.4.25.0 Counter64 91156
1.3.6.1.4.1.2021.4.26.0 Counter64 1820168
1.3.6.1.4.1.2021.4.27.0 Counter64 23819184
1.3.6.1.4.1.2021.11.1.0 Integer 1
1.3.6.1.4.1.2021.11.2.0 OctetString b'systemStats'
1.3.6.1.4.1.2021.11.3.0 Integer 0
1.3.6.1.4.1.2021.11.4.0 Integer 0
1.3.6.1.4.1.2021.11.5.0 Integer 32
1.3.6.1.4.1.2021.11.6.0 Integer 0
1.3.6.1.4.1.2021.11.7.0 Integer 375
1.3.6.1.4.1.2021.11.8.0 Integer 452
1.3.6.1.4.1.2021.11.9.0 Integer 4
1.3.6.1.4.1.2021.11.10.0 Integer 3
1.3.6.1.4.1.2021.11.11.0 Integer 88
"""


def parse_recording(text: str) -> dict[str, VarBind]:
    out = {}
    for line in text.strip().splitlines():
        oid, kind, raw = line.split(" ", 2)
        value: SnmpValue = ast.literal_eval(raw)
        out[oid] = VarBind(oid, value, kind)
    return out


def key(oid: str) -> tuple[int, ...]:
    return tuple(int(p) for p in oid.split("."))


@dataclasses.dataclass
class Request:
    oids: list[str]
    non_repeaters: int
    max_repetitions: int


class RecordedAgent:
    """Answers GETBULK from a recording the way snmpd does; records every request.

    ``view`` hides every OID outside the given prefixes (as a VACM view does);
    ``max_answer`` caps an answer (whole repetitions; ``partial`` cuts mid-way, as an
    agent short of message size may); ``error`` is raised by every request."""

    def __init__(self, mib: dict[str, VarBind], *, view: Sequence[str] = (),
                 max_answer: int = 100, partial: bool = False) -> None:
        self.mib = dict(mib)
        self.view = [key(p) for p in view]
        self.max_answer = max_answer
        self.partial = partial
        self.requests: list[Request] = []
        self.error: Exception | None = None
        self.not_increasing = False

    def set(self, oid: str, value: SnmpValue, kind: str = "Counter64") -> None:
        self.mib[oid] = VarBind(oid, value, kind)

    def drop_row(self, if_index: int) -> None:
        for oid in [o for o in self.mib if o.startswith((IF_T + ".", IF_X + "."))
                    and o.endswith(f".{if_index}")]:
            del self.mib[oid]

    def copy_row(self, src: int, dst: int) -> None:
        for oid, vb in list(self.mib.items()):
            if oid.startswith((IF_T + ".", IF_X + ".")) and oid.endswith(f".{src}"):
                new = oid[: -len(str(src))] + str(dst)
                value = f"eth{dst}".encode() if vb.kind == "OctetString" and vb.value else vb.value
                self.mib[new] = VarBind(new, value, vb.kind)

    def _visible(self) -> list[tuple[tuple[int, ...], VarBind]]:
        rows = [(key(o), vb) for o, vb in self.mib.items()]
        if self.view:
            rows = [(k, vb) for k, vb in rows if any(k[:len(p)] == p for p in self.view)]
        return sorted(rows, key=lambda r: r[0])

    def _next(self, table: list[tuple[tuple[int, ...], VarBind]], oid: str) -> VarBind:
        keys = [k for k, _ in table]
        at = bisect.bisect_right(keys, key(oid))
        if self.not_increasing:  # answers the first row again and again
            at_row = oid if len(key(oid)) > 11 else f"{oid}.1"
            return VarBind(at_row, 0, "Counter64")
        if at >= len(table):
            return VarBind(oid, Special.END_OF_MIB_VIEW, "EndOfMibView")
        return table[at][1]

    async def get_bulk(self, host: str, creds: SnmpCredentials, oids: Sequence[str], *,
                       max_repetitions: int = 25, non_repeaters: int = 0,
                       port: int = 161) -> list[VarBind]:
        self.requests.append(Request(list(oids), non_repeaters, max_repetitions))
        if self.error is not None:
            raise self.error
        table = self._visible()
        out = [self._next(table, o) for o in oids[:non_repeaters]]
        cursors = list(oids[non_repeaters:])
        reps = max_repetitions
        if cursors and len(out) + reps * len(cursors) > self.max_answer and not self.partial:
            reps = max(1, (self.max_answer - len(out)) // len(cursors))
        for _ in range(reps):
            if not cursors:
                break
            row = [self._next(table, c) for c in cursors]
            out.extend(row)
            cursors = [vb.oid for vb in row]
        return out[: self.max_answer]


def sync(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """Run an async test in its own event loop (the suite has no asyncio plugin)."""
    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())
    return run


def recorded(**kw: Any) -> RecordedAgent:
    return RecordedAgent(parse_recording(R1_RECORDING), **kw)


async def polls(agent: RecordedAgent, count: int, **kw: Any) -> list[Any]:
    collector = CounterCollector(agent, **kw)  # type: ignore[arg-type]
    return [await collector.poll(HOST, CREDS) for _ in range(count)]


def by_name(sample: Any) -> dict[str, InterfaceCounters]:
    return {i.name: i for i in sample.interfaces}


# -- split_bulk ---------------------------------------------------------------------------

def test_split_bulk_by_wire_position() -> None:
    answer = [
        VarBind(SYS_UPTIME, 500, "TimeTicks"),
        VarBind(IF_NUMBER, 2, "Integer"),
        VarBind(f"{IF_X}.6.1", 10, "Counter64"), VarBind(f"{IF_T}.8.1", 1, "Integer"),
        VarBind(f"{IF_X}.6.2", 20, "Counter64"), VarBind(f"{IF_T}.8.2", 2, "Integer"),
        VarBind(f"{IF_X}.7.1", 3, "Counter64"), VarBind(f"{IF_T}.9.1", 0, "TimeTicks"),
        VarBind(f"{IF_X}.7.2", 4, "Counter64"), VarBind(f"{IF_T}.9.2", 0, "TimeTicks"),
    ]
    part = split_bulk(answer, {"sysUpTime": SYS_UPTIME, "ifNumber": IF_NUMBER},
                      {"in_octets": f"{IF_X}.6", "oper_status": f"{IF_T}.8"})
    assert part.scalars == {"sysUpTime": 500, "ifNumber": 2}
    assert part.rows == {"in_octets": {(1,): 10, (2,): 20}, "oper_status": {(1,): 1, (2,): 2}}
    assert part.ended == {"in_octets", "oper_status"}
    assert part.last["in_octets"] == (2,)  # the row index last read in the column


def test_split_bulk_scalar_must_be_the_exact_instance() -> None:
    # sysUpTime outside the view: GETNEXT from it lands on ifNumber.0, which is not it
    answer = [VarBind(IF_NUMBER, 6, "Integer"), VarBind(IF_NUMBER, 6, "Integer")]
    part = split_bulk(answer, {"sysUpTime": SYS_UPTIME, "ifNumber": IF_NUMBER}, {})
    assert part.scalars == {"ifNumber": 6}


def test_split_bulk_end_of_mib_view_ends_a_column() -> None:
    answer = [VarBind(f"{IF_X}.6.1", 1, "Counter64"),
              VarBind(f"{IF_X}.6.1", Special.END_OF_MIB_VIEW, "EndOfMibView")]
    part = split_bulk(answer, {}, {"in_octets": f"{IF_X}.6"})
    assert part.rows["in_octets"] == {(1,): 1}
    assert part.ended == {"in_octets"}


# -- rows -> InterfaceCounters ------------------------------------------------------------

def test_interfaces_from_rows_64_bit() -> None:
    rows: dict[str, dict[int, SnmpValue]] = {
        "in_octets": {3: 17617, 1: 0}, "out_octets": {3: 18121},
        "oper_status": {3: 1, 1: 7}, "speed_mbps": {3: 10000},
        "discontinuity_ticks": {3: 0}, "in_errors": {3: b"junk"},
    }
    got = interfaces_from_rows(rows, {3: "eth1"}, 64)
    assert [i.if_index for i in got] == [1, 3]
    eth1 = got[1]
    assert (eth1.name, eth1.counter_bits, eth1.in_octets, eth1.out_octets) == ("eth1", 64, 17617, 18121)
    assert (eth1.oper_status, eth1.speed_mbps, eth1.discontinuity_ticks) == ("up", 10000, 0)
    assert eth1.in_errors is None  # not an integer: not a counter
    assert eth1.in_bcast_pkts is None
    assert got[0].name is None and got[0].oper_status == "lowerLayerDown"


def test_interfaces_from_rows_32_bit_speed_rounds_like_ifhighspeed() -> None:
    rows: dict[str, dict[int, SnmpValue]] = {
        "speed_mbps": {1: 10_000_000, 2: 4_294_967_295, 3: 1_544_000, 4: 499_999},
        "in_mcast_pkts": {1: 7}, "oper_status": {1: 2, 2: 9},
    }
    got = {i.if_index: i for i in interfaces_from_rows(rows, {}, 32)}
    assert [got[i].speed_mbps for i in (1, 2, 3, 4)] == [10, 4295, 2, 0]
    assert got[1].in_mcast_pkts == 7 and got[1].in_bcast_pkts is None
    assert got[1].counter_bits == 32
    assert got[1].oper_status == "down" and got[2].oper_status == "9"


# -- refresh decisions --------------------------------------------------------------------

CACHE = IndexCache(names={1: "lo", 2: "mgmt0", 3: "eth1"}, if_number=3, uptime_ticks=1000,
                   bits=64)


@pytest.mark.parametrize(("cache", "uptime", "if_number", "seen", "octets", "reason"), [
    (None, 5, 3, {1, 2, 3}, 3, "first poll"),
    (CACHE, 1200, 3, {1, 2, 3}, 3, None),
    (CACHE, None, 3, {1, 2, 3}, 3, None),                 # sysUpTime not in the view
    (CACHE, 999, 3, {1, 2, 3}, 3, "sysUpTime went back from 1000 to 999"),
    (CACHE, 1200, 4, {1, 2, 3}, 3, "ifNumber changed from 3 to 4"),
    (CACHE, 1200, 2, {1, 2}, 2, "ifNumber changed from 3 to 2"),
    (CACHE, 1200, 3, {1, 2, 9}, 3, "new ifIndex 9"),
    (CACHE, 1200, 3, {1, 2, 3}, 0, "no 64-bit octet counters answered"),
    (CACHE, 1200, 3, {1, 2}, 2, None),                    # a row missing: not a reason
])
def test_refresh_reason(cache: IndexCache | None, uptime: int | None, if_number: int,
                        seen: set[int], octets: int, reason: str | None) -> None:
    assert refresh_reason(cache, uptime_ticks=uptime, if_number=if_number, seen=seen,
                          octets_rows=octets) == reason


# -- the collector on the recorded r1 -----------------------------------------------------

@sync
async def test_first_poll_is_one_getbulk_and_reads_the_index() -> None:
    agent = recorded()
    first, second = await polls(agent, 2)
    assert len(agent.requests) == 2  # one per poll
    for request in agent.requests:
        assert request.non_repeaters == 2
        assert request.oids[:2] == ["1.3.6.1.2.1.1.3", "1.3.6.1.2.1.2.1"]
        assert request.max_repetitions == 6
    assert len(agent.requests[0].oids) == 2 + 1 + len(COLUMNS_64)   # + ifName
    assert len(agent.requests[1].oids) == 2 + len(COLUMNS_64)       # names cached
    assert first.index_refreshed and not second.index_refreshed
    for sample in (first, second):
        assert (sample.host, sample.source, sample.sys_uptime_ticks, sample.if_number) == (HOST, "snmp", 41822, 6)
        assert [(i.if_index, i.name) for i in sample.interfaces] == [
            (1, "lo"), (2, "mgmt0"), (3, "eth1"), (4, "eth2"), (5, "eth3"), (6, "eth4")]
    eth1 = by_name(second)["eth1"]
    mib = agent.mib
    assert eth1.counter_bits == 64
    assert eth1.in_octets == mib[f"{IF_X}.6.3"].value
    assert eth1.out_octets == mib[f"{IF_X}.10.3"].value
    assert eth1.in_ucast_pkts == mib[f"{IF_X}.7.3"].value
    assert eth1.out_bcast_pkts == mib[f"{IF_X}.13.3"].value
    assert eth1.in_discards == mib[f"{IF_T}.13.3"].value
    assert eth1.out_errors == mib[f"{IF_T}.20.3"].value
    assert (eth1.oper_status, eth1.speed_mbps, eth1.discontinuity_ticks) == ("up", 10000, 0)
    assert by_name(second)["lo"].speed_mbps == 10


@sync
async def test_counters_move_between_polls() -> None:
    agent = recorded()
    collector = CounterCollector(agent)  # type: ignore[arg-type]
    before = await collector.poll(HOST, CREDS)
    agent.set(f"{IF_X}.6.3", 10**12)
    agent.set(SYS_UPTIME, 42822, "TimeTicks")
    after = await collector.poll(HOST, CREDS)
    assert by_name(before)["eth1"].in_octets != 10**12
    assert by_name(after)["eth1"].in_octets == 10**12
    assert after.sys_uptime_ticks == 42822 and not after.index_refreshed


@sync
async def test_agent_restart_refreshes_the_index() -> None:
    agent = recorded()
    collector = CounterCollector(agent)  # type: ignore[arg-type]
    await collector.poll(HOST, CREDS)
    agent.set(SYS_UPTIME, 150, "TimeTicks")
    agent.requests.clear()
    restarted = await collector.poll(HOST, CREDS)
    assert restarted.index_refreshed and restarted.sys_uptime_ticks == 150
    assert len(agent.requests) == 2  # the steady GETBULK, then the walk with names
    agent.set(SYS_UPTIME, 250, "TimeTicks")
    assert not (await collector.poll(HOST, CREDS)).index_refreshed


@sync
async def test_new_interface_refreshes_the_index() -> None:
    agent = recorded()
    collector = CounterCollector(agent)  # type: ignore[arg-type]
    await collector.poll(HOST, CREDS)
    agent.copy_row(6, 7)
    agent.set(IF_NUMBER, 7, "Integer")
    sample = await collector.poll(HOST, CREDS)
    assert sample.index_refreshed and sample.if_number == 7
    assert [i.name for i in sample.interfaces][-2:] == ["eth4", "eth7"]
    cache = collector.cached(HOST)
    assert cache is not None and cache.names[7] == "eth7"
    assert not (await collector.poll(HOST, CREDS)).index_refreshed


@sync
async def test_replaced_interface_refreshes_the_index() -> None:
    agent = recorded()
    collector = CounterCollector(agent)  # type: ignore[arg-type]
    await collector.poll(HOST, CREDS)
    agent.copy_row(4, 9)   # eth2 (ifIndex 4) gone, ifIndex 9 new: ifNumber unchanged
    agent.drop_row(4)
    sample = await collector.poll(HOST, CREDS)
    assert sample.index_refreshed
    assert [(i.if_index, i.name) for i in sample.interfaces][-2:] == [(6, "eth4"), (9, "eth9")]
    assert 4 not in {i.if_index for i in sample.interfaces}


@sync
async def test_fallback_to_ifTable_without_ifXTable() -> None:
    # the lab's snmpd has such a view: the DISMAN monitor's user sees only 1.3.6.1.2.1.2
    agent = recorded(view=["1.3.6.1.2.1.2"])
    first, second = await polls(agent, 2)
    assert len(agent.requests) == 3  # the 64-bit walk finds no ifXTable, then ifTable; then 1
    assert first.index_refreshed and not second.index_refreshed
    for sample in (first, second):
        assert sample.sys_uptime_ticks is None and sample.if_number == 6
        eth1 = by_name(sample)["eth1"]  # names from ifDescr
        assert eth1.counter_bits == 32
        assert eth1.in_octets == agent.mib[f"{IF_T}.10.3"].value
        assert eth1.out_octets == agent.mib[f"{IF_T}.16.3"].value
        assert eth1.in_mcast_pkts == agent.mib[f"{IF_T}.12.3"].value  # ifInNUcastPkts
        assert eth1.in_bcast_pkts is None and eth1.discontinuity_ticks is None
        assert eth1.speed_mbps == 4295  # ifSpeed 4294967295: "at least", rounded
    assert len(agent.requests[2].oids) == 2 + len(COLUMNS_32)


@sync
async def test_rows_that_do_not_fit_one_answer_go_in_slices_at_once() -> None:
    agent = recorded()
    full = (await polls(recorded(), 2))[1]
    small = await polls(agent, 2, max_varbinds=40)   # 2 rows of 15 columns per answer
    assert small[1].interfaces == full.interfaces
    steady = agent.requests[-3:]
    assert [r.max_repetitions for r in steady] == [2, 2, 2]
    assert [r.non_repeaters for r in steady] == [2, 0, 0]
    assert steady[1].oids[0] == f"{IF_X}.6.2" and steady[2].oids[0] == f"{IF_X}.6.4"


@sync
async def test_agent_cutting_answers_short_is_asked_again() -> None:
    agent = recorded(max_answer=25, partial=True)
    sample = (await polls(agent, 1))[0]
    full = (await polls(recorded(), 1))[0]
    assert sample.interfaces == full.interfaces
    assert len(agent.requests) > 1


@sync
async def test_agent_not_increasing_is_a_protocol_error() -> None:
    agent = recorded(max_answer=25)
    agent.not_increasing = True
    with pytest.raises(ProtocolError, match="not increasing"):
        await polls(agent, 1)


@sync
async def test_client_errors_propagate_unchanged() -> None:
    agent = recorded()
    error = DeviceTimeout("snmp getbulk x: no answer", device=HOST, operation="snmp getbulk")
    agent.error = error
    with pytest.raises(DeviceTimeout) as info:
        await polls(agent, 1)
    assert info.value is error


# -- health -------------------------------------------------------------------------------

@sync
async def test_health_from_the_recorded_r1() -> None:
    agent = recorded()
    collector = CounterCollector(agent)  # type: ignore[arg-type]
    health = await collector.poll_health(HOST, CREDS)
    assert len(agent.requests) == 2
    again = await collector.poll_health(HOST, CREDS)
    assert len(agent.requests) == 4  # two GETBULKs sent together, every time
    assert again == dataclasses.replace(health, taken_at=again.taken_at)
    assert health.host == HOST
    assert health.cpu_percent == pytest.approx((13 + 12) / 2)  # hrProcessorLoad average
    assert health.mem_total_bytes == 24684084 * 1024
    assert health.mem_used_bytes == (24684084 - 22200560 - 91156 - 1820168) * 1024
    storage = {s.descr: s for s in health.storage}
    assert len(storage) == 16
    assert storage["Physical memory"].kind == "ram"
    assert storage["Virtual memory"].kind == "virtual"
    assert storage["Memory buffers"].kind == "other"
    root = storage["/"]
    assert root.kind == "disk"
    assert root.size_bytes == 66053021 * 4096
    used = agent.mib["1.3.6.1.2.1.25.2.3.1.6.31"].value
    assert isinstance(used, int) and root.used_bytes == used * 4096


@sync
async def test_health_cpu_from_ucd_when_hr_has_no_processor_load() -> None:
    agent = recorded()
    for oid in [o for o in agent.mib if o.startswith("1.3.6.1.2.1.25.3.3.1.2.")]:
        del agent.mib[oid]
    health = await CounterCollector(agent).poll_health(HOST, CREDS)  # type: ignore[arg-type]
    assert health.cpu_percent == 100 - 88


@sync
async def test_health_in_snmpd_first_minute_has_no_cpu() -> None:
    agent = recorded()
    for oid in [o for o in agent.mib if o.startswith("1.3.6.1.2.1.25.3.3.1.2.")
                or o == "1.3.6.1.4.1.2021.11.11.0"]:
        del agent.mib[oid]
    health = await CounterCollector(agent).poll_health(HOST, CREDS)  # type: ignore[arg-type]
    assert health.cpu_percent is None
    assert health.mem_total_bytes == 24684084 * 1024


@sync
async def test_health_with_nothing_served() -> None:
    agent = recorded(view=["1.3.6.1.2.1.2"])
    health = await CounterCollector(agent).poll_health(HOST, CREDS)  # type: ignore[arg-type]
    assert (health.cpu_percent, health.mem_total_bytes, health.mem_used_bytes,
            health.storage) == (None, None, None, ())


def test_health_prefers_64_bit_ucd_and_falls_back_to_hr_ram() -> None:
    ucd: dict[str, SnmpValue] = {"memTotalReal": 2**31 - 1, "memTotalRealX": 3 * 2**31,
                                 "memAvailReal": 100, "memAvailRealX": 2**31}
    health = health_from_values(HOST, 1.0, ucd, {}, {})
    assert health.mem_total_bytes == 3 * 2**31 * 1024
    assert health.mem_used_bytes == 2 * 2**31 * 1024
    storage: dict[str, dict[tuple[int, ...], SnmpValue]] = {
        "type": {(1,): "1.3.6.1.2.1.25.2.1.2", (2,): "1.3.6.1.2.1.25.2.1.4"},
        "descr": {(1,): b"RAM", (2,): b"/data"},
        "units": {(1,): 1024, (2,): 4096},
        "size": {(1,): 1000, (2,): -2},            # Integer32 overflowed by the agent
        "used": {(1,): 400, (2,): 1},
    }
    health = health_from_values(HOST, 1.0, {}, {}, storage)
    assert (health.mem_total_bytes, health.mem_used_bytes) == (1000 * 1024, 400 * 1024)
    assert health.storage[1].size_bytes == (2**32 - 2) * 4096
    assert health.cpu_percent is None


# -- NETCONF ------------------------------------------------------------------------------

def test_netconf_counters_from_the_recorded_vnf1() -> None:
    text = (GOLDEN / "interfaces_state.xml").read_text()
    sample = counters_from_reply("vnf1", text, taken_at=12.5)
    assert (sample.host, sample.taken_at, sample.source, sample.sys_uptime_ticks) == ("vnf1", 12.5, "netconf", None)
    assert sample.if_number == 3 and sample.index_refreshed
    got = {i.name: i for i in sample.interfaces}
    assert [(i.if_index, i.name) for i in sample.interfaces] == [(1, "lo"), (2, "mgmt0"), (3, "eth1")]
    eth1 = got["eth1"]
    assert (eth1.in_octets, eth1.out_octets, eth1.in_ucast_pkts, eth1.out_ucast_pkts) == (3974, 2326, 41, 19)
    assert (eth1.in_errors, eth1.out_errors, eth1.in_discards, eth1.out_discards) == (0, 0, 1, 0)
    assert eth1.in_mcast_pkts == 0
    assert eth1.out_mcast_pkts is None and eth1.in_bcast_pkts is None  # netconfd leaves them out
    assert (eth1.counter_bits, eth1.oper_status, eth1.speed_mbps) == (64, "up", 10000)
    assert eth1.discontinuity_ticks is None
    assert got["lo"].speed_mbps is None and got["lo"].oper_status == "unknown"


RFC8343_REPLY = """<rpc-reply xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="1">
  <data>
    <interfaces-state xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces">
      <interface>
        <name>ge-0/0/1</name>
        <oper-status>down</oper-status>
        <if-index>513</if-index>
        <speed>1544000</speed>
        <statistics>
          <discontinuity-time>2024-05-01T10:00:00.257+02:00</discontinuity-time>
          <in-octets>18446744073709551615</in-octets>
          <in-broadcast-pkts>7</in-broadcast-pkts>
          <out-broadcast-pkts>8</out-broadcast-pkts>
          <out-multicast-pkts>9</out-multicast-pkts>
          <out-errors>not-a-number</out-errors>
        </statistics>
      </interface>
      <interface><oper-status>up</oper-status></interface>
    </interfaces-state>
  </data>
</rpc-reply>"""


def test_netconf_counters_with_every_rfc8343_leaf() -> None:
    # written by hand after RFC 8343: netconfd serves neither if-index nor the
    # discontinuity time nor the broadcast counters
    sample = counters_from_reply("r9", RFC8343_REPLY, taken_at=1.0)
    (ge,) = sample.interfaces  # the entry without a name is dropped
    assert (ge.if_index, ge.name, ge.oper_status, ge.speed_mbps) == (513, "ge-0/0/1", "down", 2)
    assert ge.in_octets == 2**64 - 1
    assert (ge.in_bcast_pkts, ge.out_bcast_pkts, ge.out_mcast_pkts) == (7, 8, 9)
    assert ge.out_errors is None
    assert ge.discontinuity_ticks == 171455040025  # 2024-05-01T08:00:00.25Z


@pytest.mark.parametrize(("text", "ticks"), [
    ("1970-01-01T00:00:00Z", 0),
    ("1970-01-01T00:00:01.239Z", 123),
    ("1970-01-01T01:00:00+01:00", 0),
    ("2024-05-01T08:00:00-00:00", 171455040000),
    ("2024-05-01T08:00:00.123456789Z", 171455040012),
    ("2024-05-01T08:00:00", None),   # no offset: not an instant
    ("yesterday", None),
    ("", None),
    (None, None),
])
def test_discontinuity_ticks(text: str | None, ticks: int | None) -> None:
    assert discontinuity_ticks(text) == ticks


def test_discontinuity_ticks_orders_like_time() -> None:
    earlier = discontinuity_ticks("2024-05-01T10:00:00+02:00")
    later = discontinuity_ticks("2024-05-01T08:00:00.01Z")
    assert earlier is not None and later is not None and later == earlier + 1


@pytest.mark.parametrize("text", [
    "<not-netconf/>",
    '<rpc-reply xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><ok/></rpc-reply>',
])
def test_netconf_reply_without_data_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a NETCONF data reply"):
        counters_from_reply("x", text, taken_at=0.0)


def test_netconf_closed_port_is_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: the connect is refused
        with pytest.raises(ConnectionRefused) as info:
            netconf_counters("127.0.0.1", "u", "pw-s3cret", port=port, timeout_s=2,
                             profile="p")
    assert info.value.device == "127.0.0.1" and info.value.profile == "p"
    assert "pw-s3cret" not in str(info.value)


def test_row_index_is_strict_about_the_prefix() -> None:
    from collectors.snmp import row_index

    col = "1.3.6.1.2.1.31.1.1.1.6"
    assert row_index(f"{col}.7", col) == (7,)
    assert row_index(f"{col}.10.0.12.2", col) == (10, 0, 12, 2)
    assert row_index(col, col) is None                     # the column itself
    assert row_index("1.3.6.1.2.1.31.1.1.1.60.7", col) is None  # a sibling column
    assert row_index("1.3.6.1.2.1.31.1.1.1.7.7", col) is None
    assert row_index(f"{col}.", col) is None
