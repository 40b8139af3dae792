"""collectors: southbound reading (protocol only: no database, no business rules)."""

from collectors.snmp import (
    SnmpClient,
    SnmpCredentials,
    SnmpStats,
    SnmpValue,
    SnmpVersion,
    Special,
    VarBind,
    convert_value,
    map_snmp_error,
)
from collectors.snmp_facts import (
    EntityFacts,
    InterfaceFacts,
    IpAddressFacts,
    LldpLocal,
    LldpNeighbor,
    SnmpFacts,
    SystemFacts,
    collect_snmp_facts,
)

__all__ = [
    "EntityFacts",
    "InterfaceFacts",
    "IpAddressFacts",
    "LldpLocal",
    "LldpNeighbor",
    "SnmpClient",
    "SnmpCredentials",
    "SnmpFacts",
    "SnmpStats",
    "SnmpValue",
    "SnmpVersion",
    "Special",
    "SystemFacts",
    "VarBind",
    "collect_snmp_facts",
    "convert_value",
    "map_snmp_error",
]
