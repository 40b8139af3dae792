"""The emulated lab: containerlab topology files deployed with network namespaces,
veth pairs and real daemons (FRR, net-snmp, lldpd, yuma123 netconfd, OpenSSH).

Imports only ``topology`` (the error tree, settings and credential store) of ours.
"""

from lab.model import DEFAULT_CREDENTIALS, LabCredentials, NodeSpec, Role, Topology
from lab.parser import load_topology, parse_topology
from lab.runtime import DestroyReport, Lab, NodeStatus, TrafficReport, deploy, running_labs

__all__ = [
    "DEFAULT_CREDENTIALS",
    "DestroyReport",
    "Lab",
    "LabCredentials",
    "NodeSpec",
    "NodeStatus",
    "Role",
    "Topology",
    "TrafficReport",
    "deploy",
    "load_topology",
    "parse_topology",
    "running_labs",
]
