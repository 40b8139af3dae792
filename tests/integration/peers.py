"""Independent protocol peers for the lab tests: net-snmp's own tools and a raw UDP trap
listener decoded with pysnmp's codec. Secrets go through a private snmp.conf
(SNMPCONFPATH), never on a command line."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pyasn1.codec.ber import decoder
from pysnmp.proto import api

from lab.model import LabCredentials

LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
LINK_UP = "1.3.6.1.6.3.1.1.5.4"
COLD_START = "1.3.6.1.6.3.1.1.5.1"
SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
IF_INDEX = "1.3.6.1.2.1.2.2.1.1"


class NetSnmp:
    """net-snmp's snmpget/snmpwalk with the lab's credentials in a private snmp.conf."""

    def __init__(self, creds: LabCredentials) -> None:
        self._dir = tempfile.mkdtemp(prefix="sb-netsnmp-")
        conf = Path(self._dir, "snmp.conf")
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"defCommunity {creds.snmp_community}\n"
                     f"defSecurityName {creds.snmpv3_user}\n"
                     f"defSecurityLevel authPriv\n"
                     f"defAuthType {creds.snmpv3_auth_protocol}\n"
                     f"defAuthPassphrase {creds.snmpv3_auth_key}\n"
                     f"defPrivType {creds.snmpv3_priv_protocol}\n"
                     f"defPrivPassphrase {creds.snmpv3_priv_key}\n"
                     f"persistentDir {self._dir}\n")
        self.env = {**os.environ, "SNMPCONFPATH": self._dir, "MIBS": "", "MIBDIRS": "/nonexistent"}

    def _run(self, tool: str, version: str, host: str, *oids: str) -> str:
        proc = subprocess.run([tool, f"-v{version}", "-On", "-Oq", "-t", "2", "-r", "2",
                               host, *oids], capture_output=True, text=True, env=self.env,
                              check=False, timeout=60)
        if proc.returncode != 0:
            raise AssertionError(f"{tool} -v{version} {host} {oids}: {proc.stderr.strip()}")
        return proc.stdout

    def get(self, host: str, oid: str, *, version: str = "2c") -> str:
        line = self._run("snmpget", version, host, oid).strip()
        return line.split(" ", 1)[1].strip('"') if " " in line else ""

    def walk(self, host: str, oid: str, *, version: str = "2c") -> dict[str, str]:
        rows = {}
        for line in self._run("snmpwalk", version, host, oid).splitlines():
            key, _, value = line.partition(" ")
            key = key.lstrip(".")
            if key.startswith(f"{oid}."):  # not "No Such Object" on the table itself
                rows[key] = value.strip('"')
        return rows

    def if_index(self, host: str) -> dict[str, int]:
        """ifDescr -> ifIndex."""
        base = "1.3.6.1.2.1.2.2.1.2."
        return {v: int(k[len(base):]) for k, v in self.walk(host, base[:-1]).items()}


@dataclass
class Trap:
    source: str
    community: str
    trap_oid: str
    varbinds: dict[str, str]


class TrapListener:
    """A UDP socket on the trap target; decodes SNMPv2c traps with pysnmp's codec."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> TrapListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_for(self, trap_oid: str, source: str, timeout_s: float = 30.0,
                 match: dict[str, str] | None = None) -> Trap:
        """The first trap with ``trap_oid`` from ``source`` whose varbinds match ``match``
        (varbind OID prefix -> value)."""
        deadline = time.monotonic() + timeout_s
        seen = []
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                data, (addr, _) = self.sock.recvfrom(65535)
            except TimeoutError:
                break
            trap = decode_v2c_trap(data, addr)
            seen.append((trap.source, trap.trap_oid))
            if trap.source != source or trap.trap_oid != trap_oid:
                continue
            if all(any(k.startswith(p) and v == want for k, v in trap.varbinds.items())
                   for p, want in (match or {}).items()):
                return trap
        raise AssertionError(f"no trap {trap_oid} from {source} within {timeout_s} s; "
                             f"saw {seen}")


def decode_v2c_trap(data: bytes, source: str) -> Trap:
    version = int(api.decodeMessageVersion(data))
    assert version == api.SNMP_VERSION_2C, f"not a v2c message: version {version}"
    mod = api.PROTOCOL_MODULES[version]
    msg, _ = decoder.decode(data, asn1Spec=mod.Message())
    pdu = mod.apiMessage.get_pdu(msg)
    binds = {str(oid): v.prettyPrint() for oid, v in mod.apiPDU.get_varbinds(pdu)}
    return Trap(source=source, community=str(mod.apiMessage.get_community(msg)),
                trap_oid=binds.get(SNMP_TRAP_OID, ""), varbinds=binds)


@contextmanager
def configs_kept(*devices: str) -> Iterator[None]:
    """Put ``devices`` back to their running config as found, to the byte, whatever the
    tests in between did (a terminated service also drops the port's description)."""
    from agents.fulfilment import FulfilmentAgent
    from topology.db import get_engine

    agent = FulfilmentAgent(get_engine())
    saved = [agent.backup(d) for d in devices]
    try:
        yield
    finally:
        for backup in saved:
            assert backup.id is not None
            agent.restore(backup.id, who="tests")
