"""Does a lab node answer on its management planes right now?

Real requests, not port checks: an SNMP GET of sysName (v2c and v3), a login on
SSH port 22 that runs ``show version`` through the router's CLI, and a NETCONF
hello on port 830. The lab uses pysnmp, paramiko and ncclient directly here
because it sits below the suite's collectors (it imports nothing of theirs).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from lab.model import LabCredentials, Role
from lab.state import NodeState

__all__ = ["Planes", "netconf_capabilities", "node_ready", "planes", "snmp_get", "ssh_command"]

SYS_NAME = "1.3.6.1.2.1.1.5.0"
logging.getLogger("ncclient").setLevel(logging.WARNING)
logging.getLogger("paramiko").setLevel(logging.WARNING)


@dataclass(frozen=True)
class Planes:
    """Which planes answered; ``None`` where the node's role does not serve the plane."""

    snmp: bool | None
    ssh_cli: bool | None
    netconf: bool | None


def snmp_get(host: str, oid: str, creds: LabCredentials, *, v3: bool = False,
             timeout_s: float = 1.0, retries: int = 1) -> str | None:
    """GET one OID; the value as text, or ``None`` when the agent does not answer."""
    return asyncio.run(_snmp_get(host, oid, creds, v3, timeout_s, retries))


async def _snmp_get(host: str, oid: str, creds: LabCredentials, v3: bool,
                    timeout_s: float, retries: int) -> str | None:
    from pysnmp.hlapi.v3arch import asyncio as snmp

    engine = snmp.SnmpEngine()
    auth: snmp.CommunityData | snmp.UsmUserData
    if v3:
        auth = snmp.UsmUserData(
            creds.snmpv3_user, authKey=creds.snmpv3_auth_key, privKey=creds.snmpv3_priv_key,
            authProtocol=snmp.usmHMACSHAAuthProtocol, privProtocol=snmp.usmAesCfb128Protocol)
    else:
        auth = snmp.CommunityData(creds.snmp_community, mpModel=1)  # noqa: S508 - v2c is a lab plane
    try:
        target = await snmp.UdpTransportTarget.create((host, 161), timeout=timeout_s,
                                                      retries=retries)
        err, status, _, binds = await snmp.get_cmd(
            engine, auth, target, snmp.ContextData(),
            snmp.ObjectType(snmp.ObjectIdentity(oid)), lookupMib=False)
    finally:
        engine.close_dispatcher()
    if err or status or not binds:
        return None
    return str(binds[0][1])


def ssh_command(host: str, creds: LabCredentials, command: str, *,
                timeout_s: float = 5.0) -> str | None:
    """Log in on SSH port 22 and run one command; its output, or ``None``."""
    import paramiko

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # noqa: S507 - lab nodes' keys are new each deploy
    try:
        client.connect(host, port=22, username=creds.ssh_user, password=creds.ssh_password,
                       timeout=timeout_s, banner_timeout=timeout_s, auth_timeout=timeout_s,
                       allow_agent=False, look_for_keys=False)
        _, stdout, _ = client.exec_command(command, timeout=timeout_s)
        return str(stdout.read().decode(errors="replace"))
    except (OSError, paramiko.SSHException, EOFError):
        return None
    finally:
        client.close()


def netconf_capabilities(host: str, creds: LabCredentials, *,
                         timeout_s: float = 10.0) -> list[str] | None:
    """The server's hello capabilities on port 830, or ``None``."""
    from ncclient import manager
    from ncclient.transport.errors import TransportError

    try:
        with manager.connect(host=host, port=830, username=creds.ssh_user,
                             password=creds.ssh_password, hostkey_verify=False,
                             allow_agent=False, look_for_keys=False,
                             timeout=timeout_s) as session:
            return list(session.server_capabilities)
    except (OSError, TransportError, EOFError):
        return None
    except Exception:
        return None


def planes(node: NodeState, creds: LabCredentials) -> Planes:
    """Ask each plane the node's role serves."""
    ip = node.mgmt_ipv4
    snmp = ssh = netconf = None
    if node.role.managed:
        snmp = snmp_get(ip, SYS_NAME, creds) == node.name
    if node.role is Role.ROUTER:
        out = ssh_command(ip, creds, "show version")
        ssh = out is not None and "FRRouting" in out
    if node.role is Role.VNF:
        caps = netconf_capabilities(ip, creds)
        netconf = caps is not None and any(":candidate" in c for c in caps)
    return Planes(snmp, ssh, netconf)


def node_ready(node: NodeState, creds: LabCredentials) -> bool:
    """True when every plane the node's role serves answers."""
    p = planes(node, creds)
    return all(v is not False for v in (p.snmp, p.ssh_cli, p.netconf))
