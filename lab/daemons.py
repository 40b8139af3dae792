"""What each role runs, written as config files in the node's state directory and
started inside the node's pod.

- router: FRR (zebra, staticd and what the config needs), snmpd, lldpd, sshd (vtysh on 22)
- switch: a Linux bridge over the data ports, snmpd, lldpd
- vnf:    yuma123 netconfd behind sshd on 830, snmpd, lldpd
- host:   nothing but its addresses and routes (from the node's ``exec``)
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import re
import shutil
import warnings
from pathlib import Path

import jinja2

from lab.model import LabCredentials, NodeSpec, Role
from lab.pod import Pod, chown_tree
from lab.proc import ProcRef, end_processes, netns_pids, run
from topology.errors import LabRuntimeError

__all__ = ["RESTARTABLE", "prepare_node", "required_binaries", "start_daemons", "start_snmpd",
           "stop_daemons"]

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("lab", "templates"),
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False,  # noqa: S701 - config files, not HTML
)
FRR_DIR = Path("/usr/lib/frr")
# `router <x>` (or a top-level keyword) in frr.conf -> the daemon that serves it
_FRR_NEEDS = {"ospfd": r"^router ospf\b", "ospf6d": r"^router ospf6\b",
              "bgpd": r"^router bgp\b", "isisd": r"^router isis\b",
              "ripd": r"^router rip\b", "bfdd": r"^bfd\b", "pimd": r"^router pim\b"}
# routing daemons whose frr-snmp module (`-M snmp`) is loaded when the config says `agentx`:
# they register their MIB (OSPF-MIB, BGP4-MIB, ...) in the node's snmpd over AgentX and send
# their state-change notifications through it. zebra is left out on purpose: its module
# would register IP-FORWARD-MIB over snmpd's own.
_FRR_SNMP_DAEMONS = ("ospfd", "bgpd", "ospf6d", "isisd", "ripd", "ldpd")
_FRR_MODULE_DIRS = (Path("/usr/lib/x86_64-linux-gnu/frr/modules"),
                    Path("/usr/lib/aarch64-linux-gnu/frr/modules"), Path("/usr/lib/frr/modules"))
_AGENTX = re.compile(r"^agentx\s*$", re.MULTILINE)
_SYS_SERVICES = {Role.ROUTER: 78, Role.SWITCH: 2, Role.VNF: 72}
_FIRST_LAB_UID = 60100


def required_binaries(role: Role) -> list[str]:
    """The programs a node of ``role`` needs on this machine (checked before deploy)."""
    need = ["ip", "nsenter", "unshare", "sleep", "mount"]
    if role.managed:
        need += ["snmpd", "lldpd", "lldpcli"]
    if role is Role.ROUTER:
        need += [str(FRR_DIR / "zebra"), str(FRR_DIR / "staticd"), "vtysh",
                 "sshd", "ssh-keygen"]
    if role is Role.VNF:
        need += ["netconfd", "netconf-subsystem", "sshd", "ssh-keygen"]
    return need


@functools.cache
def _frr_version() -> str:
    out = run([str(FRR_DIR / "zebra"), "--version"], check=False).stdout
    match = re.search(r"version (\S+)", out)
    return match.group(1) if match else "unknown"


def _has_snmp_module(daemon: str) -> bool:
    return any((d / f"{daemon}_snmp.so").exists() for d in _FRR_MODULE_DIRS)


def _frr_snmp_daemons(config: str, daemons: list[str]) -> list[str]:
    """The daemons of ``daemons`` to start with ``-M snmp``: the config enables AgentX
    (a top-level ``agentx`` line) and frr-snmp ships the daemon's module."""
    if not _AGENTX.search(config):
        return []
    return [d for d in daemons if d in _FRR_SNMP_DAEMONS and _has_snmp_module(d)]


def _sys_descr(role: Role, name: str) -> str:
    kernel = f"Linux {platform.release()}"
    if role is Role.ROUTER:
        return f"FRRouting {_frr_version()} router {name} on {kernel} (switchboard lab)"
    if role is Role.SWITCH:
        return f"Linux bridge switch {name} on {kernel} (switchboard lab)"
    return f"yuma123 netconfd VNF {name} on {kernel} (switchboard lab)"


def _frr_daemons(config: str, daemons_file: str | None) -> list[str]:
    wanted = {"zebra", "staticd"}
    for daemon, pattern in _FRR_NEEDS.items():
        if re.search(pattern, config, re.MULTILINE):
            wanted.add(daemon)
    if daemons_file:  # a bound /etc/frr/daemons says `bgpd=yes` the way the frr image reads it
        wanted |= set(re.findall(r"^\s*(\w+d)\s*=\s*yes\b", daemons_file, re.MULTILINE))
    order = ["zebra", "staticd", *sorted(wanted - {"zebra", "staticd"})]
    return [d for d in order if (FRR_DIR / d).exists()]


# -- preparation (once, at deploy) --------------------------------------------------

def prepare_node(pod: Pod, spec: NodeSpec, creds: LabCredentials,
                 trap_host: str, trap_port: int) -> None:
    """Write the node's config files, bind its private paths, set up its kernel objects."""
    d = pod.dir
    for sub in ("run", "log"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    pod.bind(d / "run", "/run")
    role = spec.role
    if role is Role.ROUTER:
        pod.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], operation="enable forwarding")
        _prepare_frr(pod, spec)
    if role is Role.SWITCH:
        pod.run(["ip", "link", "add", "br0", "type", "bridge"], operation="create bridge")
        for iface in pod.node.interfaces:
            pod.run(["ip", "link", "set", iface, "master", "br0"], operation=f"bridge {iface}")
        pod.run(["ip", "link", "set", "br0", "up"], operation="bridge up")
    if role.managed:
        _prepare_snmpd(pod, spec, creds, trap_host, trap_port)
        (d / "lldpd.conf").write_text(_TEMPLATES.get_template("lldpd.conf.j2").render())
    if role in (Role.ROUTER, Role.VNF):
        _prepare_ssh(pod, spec, creds)
    if role is Role.VNF:
        _prepare_netconf(pod)
    for bind in spec.binds:  # other binds are real bind mounts, as in a container
        if bind.target.startswith("/etc/frr/") and role is Role.ROUTER:
            continue
        pod.bind(bind.source, bind.target, readonly=bind.mode == "ro")


def _prepare_frr(pod: Pod, spec: NodeSpec) -> None:
    etc, run_dir, log = pod.dir / "etc-frr", pod.dir / "run" / "frr", pod.dir / "log" / "frr"
    for path in (etc, run_dir, log):
        path.mkdir(parents=True, exist_ok=True)
    source = spec.frr_config
    if source is None:
        raise LabRuntimeError("router has no FRR config", node=spec.name, operation="frr")
    # a copy, not a bind: `write memory` on the router must not rewrite the user's file
    shutil.copyfile(source, etc / "frr.conf")
    daemons_text = None
    for bind in spec.binds:
        if bind.target.startswith("/etc/frr/") and bind.target != "/etc/frr/frr.conf":
            shutil.copyfile(bind.source, etc / Path(bind.target).name)
            if bind.target == "/etc/frr/daemons":
                daemons_text = bind.source.read_text()
    (etc / "vtysh.conf").write_text("service integrated-vtysh-config\n")
    # FRR's AgentX client is net-snmp's subagent library under the application name
    # "frr": it reads frr.conf from SNMPCONFPATH (set when its daemons start), so it
    # connects to this node's snmpd and not to the stock /var/agentx/master
    snmp_dir = pod.dir / "snmp-frr"
    snmp_dir.mkdir(exist_ok=True)
    (snmp_dir / "frr.conf").write_text(
        "# net-snmp settings of the node's FRR AgentX subagents (written by switchboard lab)\n"
        f"agentXSocket {pod.dir / 'agentx.sock'}\n"
        "# reconnect within 5 s when snmpd restarts\n"
        "agentXPingInterval 5\n"
        f"[snmp] persistentDir {snmp_dir}\n")
    chown_tree(snmp_dir, "frr")
    chown_tree(etc, "frr")
    chown_tree(run_dir, "frr")
    chown_tree(log, "frr")
    os.chmod(etc / "frr.conf", 0o640)
    pod.node.frr_daemons = _frr_daemons((etc / "frr.conf").read_text(), daemons_text)
    pod.bind(etc, "/etc/frr")


def _prepare_snmpd(pod: Pod, spec: NodeSpec, creds: LabCredentials,
                   trap_host: str, trap_port: int) -> None:
    digest = hashlib.sha1(f"{pod.state.name}/{spec.name}".encode()).hexdigest()[:24]  # noqa: S324
    (pod.dir / "snmp").mkdir(exist_ok=True)
    text = _TEMPLATES.get_template("snmpd.conf.j2").render(
        node=spec.name, lab=pod.state.name, mgmt_ip=str(spec.mgmt_ipv4),
        sys_descr=_sys_descr(spec.role, spec.name), sys_services=_SYS_SERVICES[spec.role],
        engine_id=f"0x80001f8805{digest}", persistent_dir=pod.dir / "snmp",
        community=creds.snmp_community, v3_user=creds.snmpv3_user,
        # FRR's subagents run as user frr: they may connect to the AgentX socket
        agentx_group="frr" if spec.role is Role.ROUTER else None,
        v3_auth_protocol=creds.snmpv3_auth_protocol, v3_auth_key=creds.snmpv3_auth_key,
        v3_priv_protocol=creds.snmpv3_priv_protocol, v3_priv_key=creds.snmpv3_priv_key,
        agentx_socket=pod.dir / "agentx.sock", trap_host=trap_host, trap_port=trap_port)
    _write_secret(pod.dir / "snmpd.conf", text)


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _hash_password(password: str) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # stdlib until 3.13: SHA-512 crypt for the node's private shadow file

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))
    except ImportError:  # pragma: no cover - Python 3.13+
        return run(["openssl", "passwd", "-6", "-stdin"], input_text=password).stdout.strip()


def _free_uid() -> int:
    used = set()
    for table in ("/etc/passwd", "/etc/group"):
        for line in Path(table).read_text().splitlines():
            parts = line.split(":")
            if len(parts) > 2 and parts[2].isdigit():
                used.add(int(parts[2]))
    uid = _FIRST_LAB_UID
    while uid in used:
        uid += 1
    return uid


def _with_home(passwd_line: str, home: Path) -> str:
    fields = passwd_line.split(":")
    fields[5] = str(home)
    return ":".join(fields)


def _prepare_ssh(pod: Pod, spec: NodeSpec, creds: LabCredentials) -> None:
    """The lab's SSH user exists only inside the node: private passwd/shadow/group copies."""
    d, user = pod.dir, creds.ssh_user
    etc, home, ssh = d / "etc", d / "home", d / "ssh"
    for path in (etc, home, ssh, d / "run" / "sshd"):
        path.mkdir(parents=True, exist_ok=True)
    uid = _free_uid()
    tables = {}
    for table in ("passwd", "shadow", "group"):
        lines = [ln for ln in Path("/etc", table).read_text().splitlines()
                 if not ln.startswith(f"{user}:")]
        tables[table] = lines
    if spec.role is Role.VNF:
        # netconfd keeps ~/.yuma in the home getpwuid() gives it (not $HOME): inside the
        # node, root's home is the node's own directory, so the host's /root is untouched
        tables["passwd"] = [_with_home(ln, d / "root") if ln.startswith("root:") else ln
                            for ln in tables["passwd"]]
    tables["passwd"].append(f"{user}:x:{uid}:{uid}:switchboard lab user:{home}:/bin/sh")
    tables["shadow"].append(f"{user}:{_hash_password(creds.ssh_password)}:19000:0:99999:7:::")
    groups = []
    for line in tables["group"]:
        name, pw, gid, members = line.split(":", 3)
        if name == "frrvty" and spec.role is Role.ROUTER:  # vtysh needs frrvty
            members = ",".join(m for m in (members, user) if m)
        groups.append(f"{name}:{pw}:{gid}:{members}")
    groups.append(f"{user}:x:{uid}:")
    tables["group"] = groups
    for table, lines in tables.items():
        path = etc / table
        if table == "shadow":
            _write_secret(path, "\n".join(lines) + "\n")
        else:
            path.write_text("\n".join(lines) + "\n")
        pod.bind(path, f"/etc/{table}")
    os.chown(home, uid, uid)
    host_key = ssh / "ssh_host_ed25519_key"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", spec.name, "-f", str(host_key)],
        node=spec.name, operation="ssh host key")
    cli = None
    if spec.role is Role.ROUTER:
        cli = ssh / "cli"
        cli.write_text(_TEMPLATES.get_template("cli.sh.j2").render(node=spec.name))
        cli.chmod(0o755)
    vnf = spec.role is Role.VNF
    (ssh / "sshd_config").write_text(_TEMPLATES.get_template("sshd_config.j2").render(
        node=spec.name, ports=[830] if vnf else [22], mgmt_ip=str(spec.mgmt_ipv4),
        host_key=host_key, user=user, cli=cli,
        netconf_socket=d / "netconf" / "ncx.sock" if vnf else None))


def _prepare_netconf(pod: Pod) -> None:
    nc, root, bin_dir = pod.dir / "netconf", pod.dir / "root", pod.dir / "bin"
    for path in (nc, root, bin_dir):
        path.mkdir(parents=True, exist_ok=True)
    (nc / "startup.xml").write_text(
        '<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"/>\n')
    helper = bin_dir / "get-interface-ipv4"
    helper.write_text(_TEMPLATES.get_template("get-interface-ipv4.j2").render())
    helper.chmod(0o755)
    os.chmod(root, 0o700)  # netconfd's --home: its ~/.yuma is the node's, not the host's


# -- daemons (deploy and `lab node start`) -----------------------------------------

def start_daemons(pod: Pod, creds: LabCredentials) -> None:
    """Start the node's daemons in dependency order and record their PIDs."""
    role, d, node = pod.node.role, pod.dir, pod.node
    if not role.managed:
        return
    start_snmpd(pod)
    if role is Role.ROUTER:
        config = (d / "etc-frr" / "frr.conf").read_text()
        with_snmp = _frr_snmp_daemons(config, node.frr_daemons)
        for daemon in node.frr_daemons:
            snmp = ["-M", "snmp"] if daemon in with_snmp else []
            pod.start_forking(daemon, [
                str(FRR_DIR / daemon), "-d", "-F", "traditional", "-A", "127.0.0.1", *snmp,
                "-f", "/etc/frr/frr.conf", "-i", f"/run/frr/{daemon}.pid",
                "--log", f"file:{d / 'log' / 'frr' / daemon}.log"],
                d / "run" / "frr" / f"{daemon}.pid",
                env={"SNMPCONFPATH": str(d / "snmp-frr")} if snmp else None)
            if daemon == "zebra":
                pod.wait_path(d / "run" / "frr" / "zserv.api", "zebra socket")
    # -i: no LLDP-MED inventory. It reads DMI, which VMs may lack, and lldpd 1.0.16's
    #     event loop then hangs for good after its first frame (seen on this machine).
    # -m: advertise the mgmt address, as a managed device does.
    # -O: lldpd.conf is applied before the first frame (port ids as interface names).
    lldp_argv = ["lldpd", "-i", "-u", "/run/lldpd.socket", "-X", str(d / "agentx.sock"),
                 "-I", "eth*", "-S", _sys_descr(role, node.name), "-m", node.mgmt_ipv4,
                 "-O", str(d / "lldpd.conf")]
    if role in (Role.ROUTER, Role.SWITCH):
        lldp_argv += ["-M", "4"]
    pod.start_forking("lldpd", lldp_argv, d / "run" / "lldpd.pid")
    pod.wait_path(d / "run" / "lldpd.socket", "lldpd socket")
    if role is Role.VNF:
        pod.start_foreground("netconfd", [
            "netconfd", "--module=ietf-interfaces", "--module=ietf-ip", "--module=ietf-system",
            f"--ncxserver-sockname={d / 'netconf' / 'ncx.sock'}",
            f"--superuser={creds.ssh_user}", f"--startup={d / 'netconf' / 'startup.xml'}",
            f"--home={d / 'root'}",
            "--target=candidate", f"--log={d / 'log' / 'netconfd.log'}", "--log-level=info"],
            env={"PATH": f"{d / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin",
                 "HOME": str(d / "root")},
            log=d / "log" / "netconfd.out")
        pod.wait_path(d / "netconf" / "ncx.sock", "netconfd socket")
    if role in (Role.ROUTER, Role.VNF):
        pod.start_forking("sshd", ["/usr/sbin/sshd", "-f", str(d / "ssh" / "sshd_config"),
                                   "-E", str(d / "log" / "sshd.log")], d / "run" / "sshd.pid")


def start_snmpd(pod: Pod) -> ProcRef:
    """Start the node's snmpd (its AgentX socket is up when this returns)."""
    d = pod.dir
    (d / "agentx.sock").unlink(missing_ok=True)
    ref = pod.start_forking("snmpd", ["snmpd", "-C", "-c", str(d / "snmpd.conf"),
                                      "-p", "/run/snmpd.pid",
                                      "-Lf", str(d / "log" / "snmpd.log")],
                            d / "run" / "snmpd.pid")
    pod.wait_path(d / "agentx.sock", "snmpd AgentX socket")
    return ref


RESTARTABLE = {"snmpd": start_snmpd}


def stop_daemons(pod: Pod) -> list[ProcRef]:
    """End every process of the node except its holder; returns any that would not end."""
    holder = pod.node.holder
    refs = list(pod.node.daemons.values())
    for pid in netns_pids(pod.node.netns):  # sessions, privsep children: all the lab's own
        ref = ProcRef.of(pid)
        if ref is not None and ref != holder and ref not in refs:
            refs.append(ref)
    left = end_processes(refs)
    pod.node.daemons = {}
    pod.state.save()
    return left
