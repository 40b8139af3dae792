"""The discovery agent: targets -> SNMP, NETCONF and SSH facts -> the inventory."""

from agents.discovery.agent import DiscoveryResult, discover, lab_targets
from agents.discovery.classify import RoleRules, identify_platform, load_role_rules

__all__ = ["DiscoveryResult", "RoleRules", "discover", "identify_platform", "lab_targets",
           "load_role_rules"]
