"""Load and validate a lab topology file.

A topology names hosts (network namespaces) and segments (layer-2 links between
them).  Validation happens before anything is built, so a bad file changes
nothing on the machine.  Every address must lie in the ranges the lab is allowed
to use: these machines are shared, and a typo must not put a foreign address on
a link.
"""

import ipaddress
import itertools
import re
import shlex
from dataclasses import dataclass, field
from typing import Optional

import yaml

from .roots import RELEASES

# The only networks the lab may use (see docs/lab.md).
ALLOWED_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "198.18.0.0/15",
        "192.0.2.0/24",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "2001:db8::/32",
    )
)
MGMT_NETWORK = ipaddress.ip_network("198.18.0.0/24")
MGMT_GATEWAY = "198.18.0.1"
MGMT_FIRST_HOST = 10
BACKENDS = ("iptables_legacy", "iptables_nft", "nftables")
HOST_NAME = re.compile(r"^[a-z][a-z0-9]{0,9}$")
IFNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,14}$")
LISTENER_PROTOS = ("tcp", "udp")
MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


class TopologyError(ValueError):
    """The topology file is not valid; nothing was built."""


@dataclass
class Port:
    """One end of a segment: an interface inside a host."""

    host: str
    ifname: str
    addresses: list


@dataclass
class Segment:
    name: str
    ports: list


@dataclass
class Host:
    name: str
    index: int
    managed: bool = True
    backend: str = "iptables_nft"
    routes: list = field(default_factory=list)
    rules: list = field(default_factory=list)
    sysctls: dict = field(default_factory=dict)
    iptables: list = field(default_factory=list)
    ip6tables: list = field(default_factory=list)
    nft: str = ""
    listeners: list = field(default_factory=list)
    tc: list = field(default_factory=list)  # `tc` command lines (qdiscs and filters), run in the host
    links_down: list = field(default_factory=list)  # interfaces set down once the host is configured
    conntrack_fill: bool = False  # fill the namespace's conntrack table to the machine's limit (conntrack_fill.py)
    links: list = field(default_factory=list)  # `ip link add` arguments: devices beyond the segments' (a VXLAN)
    bridges: dict = field(default_factory=dict)  # {bridge: [ports]}: a bridge of the host's own (a hypervisor's)
    fdb: list = field(default_factory=list)  # `bridge fdb append` arguments: forwarding entries (a VXLAN's remotes)
    neighbours: list = field(default_factory=list)  # `ip neigh replace` arguments: static entries (a stale MAC)
    addresses: dict = field(default_factory=dict)  # {interface: [prefixes]}: more addresses (a service's on lo)
    userspace: Optional[str] = None  # a Debian release (roots.RELEASES) the host's sshd and tools come from

    @property
    def netns(self):
        return "pp-" + self.name

    @property
    def mgmt_address(self):
        if not self.managed:
            return None
        return str(MGMT_NETWORK.network_address + MGMT_FIRST_HOST + self.index)


# What a step may run in a host once the lab is up (the lab's own helpers by name): a change of the lab's state made
# after its traffic began, such as an endpoint that moved while a client kept its conversation.
STEP_COMMANDS = ("ip", "iptables", "ip6tables", "udp_exchange")


@dataclass
class Step:
    host: str
    run: list  # the command's words


@dataclass
class Topology:
    name: str
    description: str
    hosts: list
    segments: list
    steps: list = field(default_factory=list)

    def host(self, name):
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    @property
    def managed_hosts(self):
        return [h for h in self.hosts if h.managed]


def _check_address(value, where):
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError as exc:
        raise TopologyError("%s: %r is not an address: %s" % (where, value, exc)) from None
    if not any(net.version == allowed.version and net.subnet_of(allowed) for allowed in ALLOWED_NETWORKS):
        raise TopologyError(
            "%s: %s is outside the lab's networks (%s)" % (where, value, ", ".join(str(n) for n in ALLOWED_NETWORKS))
        )
    if net.version == 4 and net.subnet_of(MGMT_NETWORK):
        raise TopologyError("%s: %s is inside the management network %s" % (where, value, MGMT_NETWORK))


def _is_loopback(value):
    try:
        return ipaddress.ip_address(value).is_loopback
    except ValueError:
        return False


def _check_words(words, where):
    """Every word of a route or rule that parses as an address must be a lab address."""
    for word in words:
        try:
            ipaddress.ip_network(word, strict=False)
        except ValueError:
            continue
        _check_address(word, where)


def _expect(mapping, key, kind, where, default=None):
    value = mapping.get(key, default)
    if not isinstance(value, kind):
        raise TopologyError("%s.%s must be a %s, got %r" % (where, key, kind.__name__, value))
    return value


def _parse_host(name, spec, index):
    where = "hosts.%s" % name
    if not HOST_NAME.match(name):
        raise TopologyError("%s: host names are 1-10 lower-case letters or digits, starting with a letter" % where)
    if not isinstance(spec, dict):
        raise TopologyError("%s must be a mapping" % where)
    known = {"managed", "backend", "routes", "rules", "sysctls", "iptables", "ip6tables", "nft", "listeners",
             "conntrack_fill", "tc", "links_down", "neighbours", "addresses", "links", "fdb", "bridges", "userspace"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise TopologyError("%s: unknown keys %s (known: %s)" % (where, unknown, sorted(known)))
    host = Host(
        name=name,
        index=index,
        managed=_expect(spec, "managed", bool, where, True),
        backend=_expect(spec, "backend", str, where, "iptables_nft"),
        routes=_expect(spec, "routes", list, where, []),
        rules=_expect(spec, "rules", list, where, []),
        sysctls=_expect(spec, "sysctls", dict, where, {}),
        iptables=_expect(spec, "iptables", list, where, []),
        ip6tables=_expect(spec, "ip6tables", list, where, []),
        nft=_expect(spec, "nft", str, where, ""),
        listeners=_expect(spec, "listeners", list, where, []),
        conntrack_fill=_expect(spec, "conntrack_fill", bool, where, False),
        tc=_expect(spec, "tc", list, where, []),
        links_down=_expect(spec, "links_down", list, where, []),
        neighbours=_expect(spec, "neighbours", list, where, []),
        links=_expect(spec, "links", list, where, []),
        fdb=_expect(spec, "fdb", list, where, []),
        bridges=_expect(spec, "bridges", dict, where, {}),
        addresses=_expect(spec, "addresses", dict, where, {}),
        userspace=spec.get("userspace"),
    )
    if host.userspace is not None and host.userspace not in RELEASES:
        raise TopologyError("%s.userspace: %r is not one of %s" % (where, host.userspace, ", ".join(RELEASES)))
    if host.userspace is not None and not host.managed:
        raise TopologyError("%s.userspace: a host without Ansible (managed: false) runs nothing of a release" % where)
    if host.backend not in BACKENDS:
        raise TopologyError("%s.backend: %r is not one of %s" % (where, host.backend, ", ".join(BACKENDS)))
    if host.nft and host.backend != "nftables":
        raise TopologyError("%s: nft rules need backend nftables" % where)
    if (host.iptables or host.ip6tables) and host.backend == "nftables":
        raise TopologyError("%s: iptables rules need an iptables backend" % where)
    for ifname in host.links_down:
        if not isinstance(ifname, str) or not IFNAME.match(ifname):
            raise TopologyError("%s.links_down: %r is not a valid interface name" % (where, ifname))
    for entry in host.links:
        words = shlex.split(entry) if isinstance(entry, str) else []
        if len(words) < 3 or not IFNAME.match(words[0]) or "type" not in words or \
                words[words.index("type") + 1:words.index("type") + 2] != ["vxlan"]:
            raise TopologyError("%s.links: each is `IFNAME [address MAC] type vxlan ...` (the lab adds VXLAN devices), "
                                "got %r" % (where, entry))
        _check_words(words, "%s.links" % where)
    for bridge, ports in host.bridges.items():
        if not isinstance(bridge, str) or not IFNAME.match(bridge) or not isinstance(ports, list) or not all(
                isinstance(port, str) and IFNAME.match(port) for port in ports):
            raise TopologyError("%s.bridges: {bridge: [port interfaces]}, got %r: %r" % (where, bridge, ports))
    for entry in host.fdb:
        words = shlex.split(entry) if isinstance(entry, str) else []
        if len(words) < 3 or not MAC.match(words[0]) or "dev" not in words:
            raise TopologyError("%s.fdb: each is `MAC dev IFNAME [dst ADDRESS]`, got %r" % (where, entry))
        _check_words(words, "%s.fdb" % where)
    for entry in host.neighbours:
        words = shlex.split(entry) if isinstance(entry, str) else []
        if len(words) < 5 or "lladdr" not in words or "dev" not in words or not MAC.match(
                words[words.index("lladdr") + 1] if words.index("lladdr") + 1 < len(words) else ""):
            raise TopologyError("%s.neighbours: each is `ADDRESS lladdr MAC dev IFNAME [nud STATE]`, got %r" % (
                where, entry))
        _check_address(words[0], "%s.neighbours" % where)
    for ifname, prefixes in host.addresses.items():
        if not isinstance(ifname, str) or not IFNAME.match(ifname) or not isinstance(prefixes, list):
            raise TopologyError("%s.addresses: {interface: [prefixes]}, got %r: %r" % (where, ifname, prefixes))
        for prefix in prefixes:
            if "/" not in str(prefix):
                raise TopologyError("%s.addresses.%s: %r needs a prefix length" % (where, ifname, prefix))
            _check_address(str(prefix), "%s.addresses.%s" % (where, ifname))
    for kind in ("routes", "rules", "iptables", "ip6tables", "tc"):
        for entry in getattr(host, kind):
            if not isinstance(entry, str):
                raise TopologyError("%s.%s: each entry is one command line as a string, got %r" % (where, kind, entry))
            _check_words(shlex.split(entry), "%s.%s" % (where, kind))
    for listener in host.listeners:
        if not isinstance(listener, dict) or listener.get("proto") not in LISTENER_PROTOS:
            raise TopologyError("%s.listeners: each needs proto tcp or udp, got %r" % (where, listener))
        port = listener.get("port")
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise TopologyError("%s.listeners: port must be 1-65535, got %r" % (where, port))
        if "address" in listener:
            address = listener["address"]
            if not isinstance(address, str) or not _is_loopback(address):
                _check_address(str(address), "%s.listeners" % where)
            if "/" in address:
                raise TopologyError("%s.listeners: address %r is one address, without a prefix" % (where, address))
    return host


def _parse_segment(name, spec, hosts):
    where = "segments.%s" % name
    ports = []
    for host_name, port_spec in _expect(spec, "ports", dict, where).items():
        if host_name not in hosts:
            raise TopologyError("%s: unknown host %r" % (where, host_name))
        ifname = _expect(port_spec, "ifname", str, "%s.%s" % (where, host_name))
        if not IFNAME.match(ifname):
            raise TopologyError("%s.%s.ifname: %r is not a valid interface name" % (where, host_name, ifname))
        addresses = _expect(port_spec, "addresses", list, "%s.%s" % (where, host_name), [])
        for address in addresses:
            if "/" not in str(address):
                raise TopologyError("%s.%s: %r needs a prefix length" % (where, host_name, address))
            _check_address(str(address), "%s.%s" % (where, host_name))
        ports.append(Port(host=host_name, ifname=ifname, addresses=[str(a) for a in addresses]))
    if len(ports) < 2:
        raise TopologyError("%s: a segment joins at least two hosts" % where)
    return Segment(name=name, ports=ports)


def _expand_scale(raw, host_count):
    """A `scale` block stamps out N copies of one host template."""
    scale = raw.pop("scale")
    count = host_count or scale.get("default_count", 10)
    if not isinstance(count, int) or not 1 <= count <= 200:
        raise TopologyError("scale: host count must be 1-200, got %r" % (count,))
    hosts = raw.setdefault("hosts", {})
    for number in range(1, count + 1):
        hosts["%s%02d" % (scale.get("prefix", "h"), number)] = dict(scale.get("host", {}))
    return raw


def parse(raw, host_count=None):
    if not isinstance(raw, dict) or "name" not in raw:
        raise TopologyError("a topology is a mapping with at least a name")
    if "scale" in raw:
        raw = _expand_scale(dict(raw), host_count)
    elif host_count:
        raise TopologyError("topology %s has no scale block: a host count does not apply" % raw["name"])
    host_specs = _expect(raw, "hosts", dict, "topology")
    hosts = [_parse_host(name, spec or {}, index) for index, (name, spec) in enumerate(host_specs.items(), 1)]
    if sum(1 for h in hosts if h.managed) > 200:
        raise TopologyError("at most 200 managed hosts fit the management network")
    names = {h.name for h in hosts}
    segments = [
        _parse_segment(name, spec or {}, names) for name, spec in _expect(raw, "segments", dict, "topology", {}).items()
    ]
    steps = [_parse_step(number, spec, names) for number, spec in enumerate(_expect(raw, "steps", list, "topology", []))]
    return Topology(name=raw["name"], description=raw.get("description", ""), hosts=hosts, segments=segments,
                    steps=steps)


def _parse_step(number, spec, hosts):
    where = "steps[%d]" % number
    if not isinstance(spec, dict) or set(spec) != {"host", "run"} or spec["host"] not in hosts:
        raise TopologyError("%s: each step is {host: a host of the lab, run: a command line}, got %r" % (where, spec))
    words = shlex.split(spec["run"]) if isinstance(spec["run"], str) else []
    if not words or words[0] not in STEP_COMMANDS:
        raise TopologyError("%s.run: a command line of %s, got %r" % (where, ", ".join(STEP_COMMANDS), spec["run"]))
    _check_words(words, where + ".run")
    return Step(host=spec["host"], run=words)


def load(path, host_count=None):
    with open(path, encoding="utf-8") as handle:
        return parse(yaml.safe_load(handle), host_count)


def set_userspace(topology, spec):
    """The hosts' releases as `pplab up --userspace` gives them over the topology's own: None leaves them, 'rotate'
    gives the managed hosts the releases in turn (the first host the oldest; 'rotate:N' starts N releases on, so that
    labs rotated by their number put each backend on each release), 'host=release,...' names them."""
    if spec is None:
        return
    managed = topology.managed_hosts
    if spec == "rotate" or spec.startswith("rotate:"):
        offset = spec.partition(":")[2]
        if offset and not offset.isdigit():
            raise TopologyError("rotate:N starts the rotation N releases on (a number, not %r)" % offset)
        releases = itertools.islice(itertools.cycle(RELEASES), int(offset or 0), None)
        chosen = {host.name: release for host, release in zip(managed, releases)}
    else:
        try:
            chosen = dict(item.split("=", 1) for item in spec.split(","))
        except ValueError as exc:
            raise TopologyError("give 'rotate' or host=release,... (e.g. client=debian11,node=debian13)") from exc
    for name, release in chosen.items():
        if name not in [host.name for host in managed]:
            raise TopologyError("%r is not a managed host of %s (its hosts: %s)" % (
                name, topology.name, ", ".join(host.name for host in managed)))
        if release not in RELEASES:
            raise TopologyError("%s=%r: the release is one of %s" % (name, release, ", ".join(RELEASES)))
    for name, release in chosen.items():  # all checked first: a bad spec changes nothing
        topology.host(name).userspace = release
