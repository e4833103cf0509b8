"""lab-up: build a topology as network namespaces reachable over real SSH."""

import os
import shlex
import shutil
import socket
import subprocess
import sys

from . import inventory, roots, system
from .state import RUN_DIR, Journal, path
from .topology import MGMT_GATEWAY, MGMT_NETWORK

MGMT_BRIDGE = "pp-mgmt"
SWITCH_NETNS = "pp-switch"
IPTABLES_COMMANDS = ("iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore")
FLAVOUR = {"iptables_legacy": "legacy", "iptables_nft": "nft", "nftables": "nft"}
LISTENER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "listener.py")
CONNTRACK_FILL = os.path.join(os.path.dirname(LISTENER), "conntrack_fill.py")
UDP_EXCHANGE = os.path.join(os.path.dirname(LISTENER), "udp_exchange.py")
# 262144 entries take ~1 s and ~80 MB of kernel memory here; a machine whose limit is far above that is refused
# rather than filled.
CONNTRACK_FILL_LIMIT = 1 << 21
SSHD_CONFIG = """\
Port 22
HostKey {run}/ssh_host_ed25519_key
AuthorizedKeysFile {run}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
MaxStartups 200:30:400
MaxSessions 100
Subsystem sftp internal-sftp
"""


def flavoured(command, backend):
    """iptables-save + legacy -> iptables-legacy-save (Debian's names)."""
    base, _sep, rest = command.partition("-")
    return "/usr/sbin/%s-%s%s" % (base, FLAVOUR[backend], "-" + rest if rest else "")


def read_pidfile(pidfile):
    """The PID once sshd has written the whole line (it creates the file first), else None."""
    try:
        with open(pidfile, encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return None
    return int(text) if text.endswith("\n") and text.strip().isdigit() else None


class Builder:
    def __init__(self, topology, journal, log=print):
        self.topo = topology
        self.journal = journal
        self.log = log

    # -- root namespace: nothing but the management bridge and the hosts' ports -------------
    def credentials(self):
        os.makedirs(path("logs"), exist_ok=True)
        os.makedirs(path("cp"), mode=0o700, exist_ok=True)
        self.journal.record("control_dir", path=path("cp"))
        if not os.path.isdir("/run/sshd"):
            self.journal.record("dir", path="/run/sshd")
            os.makedirs("/run/sshd", mode=0o755)
        if not os.path.lexists("/run/packetpath"):
            # The collection makes it on the lab's hosts: lab-down removes it (when empty) only where it was not here.
            self.journal.record("dir", path="/run/packetpath")
        for key in ("id_ed25519", "ssh_host_ed25519_key"):
            if not os.path.exists(path(key)):
                system.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "packetpath-lab", "-f", path(key)])
        shutil.copyfile(path("id_ed25519.pub"), path("authorized_keys"))
        with open(path("sshd_config"), "w", encoding="utf-8") as handle:
            handle.write(SSHD_CONFIG.format(run=RUN_DIR))

    def mgmt_bridge(self):
        self.journal.record("root_link", name=MGMT_BRIDGE)
        system.run(["ip", "link", "add", MGMT_BRIDGE, "type", "bridge"])
        system.run(["ip", "addr", "add", "%s/%d" % (MGMT_GATEWAY, MGMT_NETWORK.prefixlen), "dev", MGMT_BRIDGE])
        system.run(["ip", "link", "set", MGMT_BRIDGE, "up"])

    # -- hosts ----------------------------------------------------------
    def etc_netns(self, host):
        """/etc/netns/<ns>/ is bound over /etc by `ip netns exec`, so the host gets its own files."""
        etc = "/etc/netns/" + host.netns
        if not os.path.isdir("/etc/netns"):
            self.journal.record("dir", path="/etc/netns")
            os.makedirs("/etc/netns")
        self.journal.record("etc_netns", path=etc)
        os.makedirs(os.path.join(etc, "sysctl.d"), exist_ok=True)
        with open(os.path.join(etc, "hosts"), "w", encoding="utf-8") as handle:
            handle.write("127.0.0.1\tlocalhost\n::1\tlocalhost\n")
            for other in self.topo.managed_hosts:
                handle.write("%s\t%s\n" % (other.mgmt_address, other.name))
        # Which program `iptables` is follows /etc/alternatives: a copy per host picks its flavour.
        alternatives = os.path.join(etc, "alternatives")
        shutil.copytree("/etc/alternatives", alternatives, symlinks=True)
        for command in IPTABLES_COMMANDS:
            link = os.path.join(alternatives, command)
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(flavoured(command, host.backend), link)

    def netns(self, name):
        self.journal.record("netns", name=name)
        system.run(["ip", "netns", "add", name])
        system.run(["ip", "-n", name, "link", "set", "lo", "up"])

    def mgmt_port(self, host):
        root_side = "ppm%d" % host.index
        self.journal.record("root_link", name=root_side)
        system.run(["ip", "link", "add", root_side, "type", "veth", "peer", "name", "mgmt0", "netns", host.netns])
        system.run(["ip", "link", "set", root_side, "master", MGMT_BRIDGE, "up"])
        system.run(["ip", "-n", host.netns, "addr", "add", "%s/%d" % (host.mgmt_address, MGMT_NETWORK.prefixlen), "dev", "mgmt0"])
        system.run(["ip", "-n", host.netns, "link", "set", "mgmt0", "up"])

    def segment(self, number, segment):
        ports = segment.ports
        if len(ports) == 2:
            first, second = (self.topo.host(p.host) for p in ports)
            system.run(["ip", "link", "add", "name", ports[0].ifname, "netns", first.netns,
                        "type", "veth", "peer", "name", ports[1].ifname, "netns", second.netns])
        else:
            if not self.journal.has("netns", name=SWITCH_NETNS):
                self.netns(SWITCH_NETNS)
            bridge = "br%d" % number
            system.run(["ip", "-n", SWITCH_NETNS, "link", "add", bridge, "type", "bridge"])
            system.run(["ip", "-n", SWITCH_NETNS, "link", "set", bridge, "up"])
            for port_number, port in enumerate(ports):
                switch_side = "s%dp%d" % (number, port_number)
                system.run(["ip", "link", "add", "name", port.ifname, "netns", self.topo.host(port.host).netns,
                            "type", "veth", "peer", "name", switch_side, "netns", SWITCH_NETNS])
                system.run(["ip", "-n", SWITCH_NETNS, "link", "set", switch_side, "master", bridge, "up"])
        for port in ports:
            netns = self.topo.host(port.host).netns
            for address in port.addresses:
                extra = ["nodad"] if ":" in address else []
                system.run(["ip", "-n", netns, "addr", "add", address, "dev", port.ifname] + extra)
            system.run(["ip", "-n", netns, "link", "set", port.ifname, "up"])

    def configure(self, host):
        for key, value in host.sysctls.items():
            system.run(["sysctl", "-qw", "%s=%s" % (key, value)], netns=host.netns)
        for entry in host.links:
            words = shlex.split(entry)
            system.run(["ip", "-n", host.netns, "link", "add"] + words)
            system.run(["ip", "-n", host.netns, "link", "set", words[0], "up"])
        for bridge, ports in host.bridges.items():
            system.run(["ip", "-n", host.netns, "link", "add", bridge, "type", "bridge"])
            for port in ports:
                system.run(["ip", "-n", host.netns, "link", "set", port, "master", bridge])
            system.run(["ip", "-n", host.netns, "link", "set", bridge, "up"])
        for entry in host.fdb:
            system.run(["bridge", "fdb", "append"] + shlex.split(entry), netns=host.netns)
        for ifname, prefixes in host.addresses.items():
            for prefix in prefixes:
                system.run(["ip", "-n", host.netns, "addr", "add", prefix, "dev", ifname]
                           + (["nodad"] if ":" in prefix else []))
        for entry in host.neighbours:
            system.run(["ip", "-n", host.netns, "neigh", "replace"] + shlex.split(entry))
        for route in host.routes:
            system.run(["ip", "-n", host.netns, "route", "replace"] + shlex.split(route))
        for rule in host.rules:
            system.run(["ip", "-n", host.netns, "rule", "add"] + shlex.split(rule))
        for command, entries in (("iptables", host.iptables), ("ip6tables", host.ip6tables)):
            for entry in entries:
                system.run([flavoured(command, host.backend)] + shlex.split(entry), netns=host.netns)
        if host.nft:
            system.run(["nft", "-f", "-"], netns=host.netns, stdin=host.nft)
        for line in host.tc:
            system.run(["tc"] + shlex.split(line), netns=host.netns)
        for ifname in host.links_down:
            system.run(["ip", "-n", host.netns, "link", "set", ifname, "down"])

    # -- processes ------------------------------------------------------
    def start_sshd(self, host):
        pidfile = path("sshd.%s.pid" % host.name)
        sshd = ["/usr/sbin/sshd", "-f", path("sshd_config"), "-E", path("logs", "sshd.%s.log" % host.name),
                "-o", "ListenAddress=%s" % host.mgmt_address, "-o", "PidFile=%s" % pidfile]
        if (host.userspace or roots.machine_release()) != "debian11":  # OpenSSH 8.7 named it; 8.4 refuses the name
            sshd += ["-o", "KbdInteractiveAuthentication=no"]
        if roots.needs_root(host.userspace):  # the host's sshd, and all it starts, see its release's root as /
            lower = roots.ensure(host.userspace, self.log)
            alternatives = {command: flavoured(command, host.backend) for command in IPTABLES_COMMANDS}
            sshd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", roots.ENTER, "enter"] + \
                roots.prepare(host, lower, alternatives) + [RUN_DIR] + sshd
        system.run(sshd, netns=host.netns)
        system.wait_for(lambda: read_pidfile(pidfile), 10, "sshd pid file of %s" % host.name)
        pid = read_pidfile(pidfile)
        self.journal.record("process", pid=pid, started=system.start_time(pid), what="sshd", host=host.name)

    def start_listener(self, host):
        ready = path("logs", "listener.%s.ready" % host.name)
        argv = ["ip", "netns", "exec", host.netns, "/usr/bin/python3", LISTENER, "--name", host.name, "--ready", ready]
        for listener in host.listeners:
            option = "--%s%s" % ("stalled-" if listener.get("stalled") else "", listener["proto"])
            argv += [option, "%s@%s" % (listener["port"], listener["address"]) if "address" in listener
                     else str(listener["port"])]
        with open(path("logs", "listener.%s.log" % host.name), "ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                                    start_new_session=True)
        self.journal.record("process", pid=proc.pid, started=system.start_time(proc.pid), what="listener",
                            host=host.name)
        system.wait_for(lambda: os.path.exists(ready) or proc.poll() is not None, 10, "listener of %s" % host.name)
        if proc.poll() is not None:
            raise system.CommandError("listener of %s exited with %s" % (host.name, proc.returncode))

    def fill_conntrack(self, host):
        """The namespace's conntrack table full to the machine's limit (read-only in a namespace), with entries
        conntrack may not evict; they go with the namespace."""
        limit = int(system.run(["cat", "/proc/sys/net/netfilter/nf_conntrack_max"], netns=host.netns))
        if limit > CONNTRACK_FILL_LIMIT:
            raise system.CommandError("%s: nf_conntrack_max is %d here, more than the lab fills (%d)" % (
                host.name, limit, CONNTRACK_FILL_LIMIT))
        system.run([sys.executable, CONNTRACK_FILL, "--count", str(limit)], netns=host.netns)

    def wait_ssh(self, host):
        def accepting():
            try:
                with socket.create_connection((host.mgmt_address, 22), timeout=0.5):
                    return True
            except OSError:
                return False
        system.wait_for(accepting, 15, "sshd of %s on %s:22" % (host.name, host.mgmt_address))

    # -- all of it ------------------------------------------------------
    def build(self):
        self.credentials()
        self.mgmt_bridge()
        for host in self.topo.hosts:
            self.etc_netns(host)
            self.netns(host.netns)
            if host.managed:
                self.mgmt_port(host)
        for number, segment in enumerate(self.topo.segments):
            self.segment(number, segment)
        for host in self.topo.hosts:
            self.configure(host)
        for host in self.topo.hosts:
            if host.listeners:
                self.start_listener(host)
            if host.managed:
                self.start_sshd(host)
            if host.conntrack_fill:
                self.fill_conntrack(host)
        for host in self.topo.managed_hosts:
            self.wait_ssh(host)
        for step in self.topo.steps:
            self.run_step(step)
        inventory.write(self.topo, path("inventory.yml"))

    def run_step(self, step):
        host = self.topo.host(step.host)
        command, rest = step.run[0], step.run[1:]
        argv = [sys.executable, UDP_EXCHANGE] + rest if command == "udp_exchange" else \
            [flavoured(command, host.backend)] + rest if command in ("iptables", "ip6tables") else step.run
        self.log("step on %s: %s" % (host.name, " ".join(step.run)))
        system.run(argv, netns=host.netns)


def healthy(journal):
    processes = [r for r in journal.resources if r["kind"] == "process"]
    namespaces = set(system.run(["ip", "netns", "list"]).split())
    return bool(processes) and all(system.alive(r["pid"], r["started"]) for r in processes) and all(
        r["name"] in namespaces for r in journal.resources if r["kind"] == "netns"
    )


def up(topology, key, teardown):
    """Bring `topology` up; a healthy lab of the same topology is left as it is."""
    journal = Journal()
    if journal.topology == key and healthy(journal):
        print("lab %s is already up; inventory: %s" % (key, path("inventory.yml")))
        return
    if journal.resources:
        print("tearing down the previous lab (%s) first" % journal.topology, file=sys.stderr)
        teardown()
        journal = Journal()
    journal.set(topology=key)
    Builder(topology, journal).build()
    journal.set(complete=True)
    print("lab %s is up: %d hosts over SSH; inventory: %s" % (key, len(topology.managed_hosts), path("inventory.yml")))
