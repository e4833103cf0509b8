# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The flow selector: which packets a rule, a lookup or a trace is about.

Every module takes the same options with the same meaning; their argument spec
is defined here once (FLOW_ARGUMENT_SPEC) and checked here once (Flow.from_params),
so a bad value gets the same clear message whichever module received it.
"""

import hashlib
import ipaddress
import json
import re

from ansible_collections.packetpath.linux.plugins.module_utils._common.addresses import family_of
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import OptionError
from ansible_collections.packetpath.linux.plugins.module_utils._common.memo import Memo

PROTOCOLS = ("tcp", "udp", "icmp", "icmpv6", "sctp", "any")
PORT_PROTOCOLS = ("tcp", "udp", "sctp")
FAMILIES = ("ipv4", "ipv6", "both")
PROTOCOL_FAMILY = {"icmp": "ipv4", "icmpv6": "ipv6"}

# Linux interface names: at most 15 bytes, no '/', no white space; iptables' trailing '+' is a wildcard.
_IFNAME = re.compile(r"^[A-Za-z0-9_.@:-]{1,15}\+?$")
_PORT_RANGE = re.compile(r"^(\d{1,5})(?:[:-](\d{1,5}))?$")

FLOW_ARGUMENT_SPEC = {
    "proto": {"type": "str", "choices": list(PROTOCOLS), "default": "any"},
    "src": {"type": "str"},
    "dst": {"type": "str"},
    "sport": {"type": "str"},
    "dport": {"type": "str"},
    "port": {"type": "str"},
    "iif": {"type": "str"},
    "oif": {"type": "str"},
    "family": {"type": "str", "choices": list(FAMILIES)},
}


# Of a trace (trace_rule, trace_results): the address a probe's packets come from, and the port they go to. The
# flow's packets from that address on the port, or back to it, are the probe's: they get a trace budget of their
# own, and are kept before the rest of the flow. Where an SNAT before a host changed the address, the packets that
# pair the probe's two ports are.
PROBE_ARGUMENT_SPEC = {"probe_src": {"type": "str"}, "probe_dport": {"type": "int"}}
# What trace_rule returns as `handle`, and trace_rule and trace_results take back: the flow's selector and the
# network namespace it was armed in, so that a playbook passes on what was armed instead of repeating the selector.
HANDLE_OPTIONS = tuple(FLOW_ARGUMENT_SPEC) + tuple(PROBE_ARGUMENT_SPEC) + ("netns",)
HANDLE_ARGUMENT_SPEC = {"handle": {"type": "dict", "options": dict(
    FLOW_ARGUMENT_SPEC, proto=dict(FLOW_ARGUMENT_SPEC["proto"], default=None), netns={"type": "str"},
    **PROBE_ARGUMENT_SPEC)}}
# The handle stands for every option it holds: given with any of them, it is refused (ansible-core names both).
HANDLE_EXCLUDES = [("handle", option) for option in HANDLE_OPTIONS]


def handle_of(params):
    """The handle of the flow the module's options select: those of the selector (and netns) that are set."""
    return dict((key, params[key]) for key in HANDLE_OPTIONS if params.get(key) not in (None, ""))


def with_handle(params):
    """The module's options with the handle's selector and netns in place of their own (which it excludes)."""
    if not params.get("handle"):
        return params
    given = dict((key, value) for key, value in params["handle"].items() if value not in (None, ""))
    taken = dict((key, given.get(key)) for key in HANDLE_OPTIONS)
    taken["proto"] = taken["proto"] or "any"
    try:  # a handle's own values are checked here, so that a bad one is named as the handle's
        Flow.from_params(taken)
    except OptionError as exc:
        named = exc.option if exc.value is None else "%s=%r" % (exc.option, exc.value)
        raise OptionError("handle", params["handle"], "its %s: %s" % (named, exc.reason))
    return dict(params, **taken)


def _network(option, value):
    if "%" in str(value):  # a zone id: iptables would drop it silently, nft refuse it; neither selects by it
        raise OptionError(option, value, "an IPv6 zone id (%...) selects nothing here: give the address alone, and the "
                                         "interface with iif or oif")
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise OptionError(option, value, "not an IPv4/IPv6 address or CIDR")


def _ports(option, value):
    """'8081' -> (8081, 8081); '30000:32767' or '30000-32767' -> (30000, 32767)."""
    match = _PORT_RANGE.match(str(value).strip())
    if not match:
        raise OptionError(option, value, "not a port or a port range like 30000:32767")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if not (1 <= low <= 65535 and 1 <= high <= 65535):
        raise OptionError(option, value, "ports are 1-65535")
    if low > high:
        raise OptionError(option, value, "the range runs backwards")
    return low, high


def _ifname(option, value):
    if not _IFNAME.fullmatch(value) or value in (".", ".."):
        raise OptionError(option, value, "not an interface name (1-15 characters: letters, digits, _ . @ : -)")
    return value


def _membership(key):
    address, network = key
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(network)
    except ValueError:
        return False


_IN_NETWORK = Memo(_membership)  # {(address, network): whether the address is in it}


class Flow:
    """A validated, canonical flow; equal selectors give equal flow ids."""

    def __init__(self, proto="any", src=None, dst=None, sport=None, dport=None, iif=None, oif=None, families=None,
                 port=None, probe_src=None, probe_dport=None):
        self.proto = proto
        self.src = src
        self.dst = dst
        self.sport = sport
        self.dport = dport
        self.port = port  # as source or destination: a conversation in both directions
        self.iif = iif
        self.oif = oif
        self.families = families or ("ipv4", "ipv6")
        self.probe_src = probe_src  # an address: the probe's packets, from it on `port` or back to it, come first
        self.probe_dport = probe_dport  # the port the probe goes to: past an SNAT, its packets pair it with `port`

    @classmethod
    def from_params(cls, params):
        proto = params.get("proto") or "any"
        if proto not in PROTOCOLS:
            raise OptionError("proto", proto, "one of %s" % ", ".join(PROTOCOLS))
        networks = dict(
            (option, _network(option, params[option])) for option in ("src", "dst") if params.get(option)
        )
        ports = {option: _ports(option, params[option]) for option in ("sport", "dport", "port") if params.get(option)}
        for option in ports:
            if proto not in PORT_PROTOCOLS:
                raise OptionError(option, params[option], "ports need proto tcp, udp or sctp, not %s" % proto)
        if "port" in ports and ("sport" in ports or "dport" in ports):
            raise OptionError("port", params["port"], "selects both directions; it goes without sport and dport")
        interfaces = {option: _ifname(option, params[option]) for option in ("iif", "oif") if params.get(option)}
        families = cls._families(params.get("family"), proto, networks, params)
        probe_src = cls._probe_src(params.get("probe_src"), ports.get("port"), families)
        probe_dport = params.get("probe_dport")
        if probe_dport is not None:
            if not probe_src:
                raise OptionError("probe_dport", probe_dport, "goes with probe_src")
            if not 1 <= probe_dport <= 65535:
                raise OptionError("probe_dport", probe_dport, "ports are 1-65535")
        return cls(
            proto=proto,
            src=str(networks["src"]) if "src" in networks else None,
            dst=str(networks["dst"]) if "dst" in networks else None,
            sport=ports.get("sport"),
            dport=ports.get("dport"),
            port=ports.get("port"),
            iif=interfaces.get("iif"),
            oif=interfaces.get("oif"),
            families=families,
            probe_src=probe_src,
            probe_dport=probe_dport,
        )

    @staticmethod
    def _probe_src(value, port, families):
        """The probe's source address, canonical; it needs the probe's source port as `port` (either way)."""
        if not value:
            return None
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise OptionError("probe_src", value, "not an IPv4/IPv6 address")
        if not port:
            raise OptionError("probe_src", value, "goes with port (the probe's source port, selected either way)")
        if "ipv%d" % address.version not in families:
            raise OptionError("probe_src", value, "is not of the flow's families (%s)" % "/".join(families))
        return str(address)

    @staticmethod
    def _families(family, proto, networks, params):
        """The address families the flow covers, from `family`, the addresses and the protocol."""
        versions = set(net.version for net in networks.values())
        if len(versions) > 1:
            raise OptionError("dst", params["dst"], "src and dst are of different address families")
        by_address = {4: "ipv4", 6: "ipv6"}[versions.pop()] if versions else None
        by_proto = PROTOCOL_FAMILY.get(proto)
        if by_address and by_proto and by_address != by_proto:
            raise OptionError("proto", proto, "is %s only, but the addresses are %s" % (by_proto, by_address))
        implied = by_address or by_proto
        if not implied:
            return ("ipv4", "ipv6") if family in (None, "both") else (family,)
        if family not in (None, implied):
            why = "the addresses are" if by_address else "proto %s is" % proto
            raise OptionError("family", family, "%s %s only" % (why, implied))
        return (implied,)

    def matches(self, fields):
        """Whether packet headers (a trace hop's: src, dst, proto, sport, dport, in, out) are of this flow.

        A field the trace did not print (xtables-monitor names no protocol for ICMP) does not exclude.
        """
        src, dst = fields.get("src"), fields.get("dst")
        if src and family_of(src) not in self.families:
            return False
        proto = fields.get("proto")
        if self.proto != "any" and proto is not None and proto != self.proto:
            return False
        for network, address in ((self.src, src), (self.dst, dst)):
            if network and not (address and _IN_NETWORK[address, network]):
                return False
        for wanted, port in ((self.sport, fields.get("sport")), (self.dport, fields.get("dport"))):
            if wanted and not (port is not None and wanted[0] <= port <= wanted[1]):
                return False
        if self.port and not any(port is not None and self.port[0] <= port <= self.port[1]
                                 for port in (fields.get("sport"), fields.get("dport"))):
            return False
        for wanted, name in ((self.iif, fields.get("in")), (self.oif, fields.get("out"))):
            if wanted and not (name and (name == wanted or wanted.endswith("+") and name.startswith(wanted[:-1]))):
                return False
        return True

    def kinship(self, fields):
        """How surely packet headers of the flow are the probe's conversation: 2 from probe_src on the probe's own
        port (`port`: its source ports) or back to it on that port, as trace_rule's rules for the probe select them;
        1 pairing the flow's port with probe_dport, either way (the probe's past an SNAT that changed its address);
        0 not known to be. A packet from probe_src *to* one of those ports is another conversation of its host's."""
        if not self.probe_src:
            return 0
        low, high = self.port
        for address, port in (("src", "sport"), ("dst", "dport")):
            value, number = fields.get(address), fields.get(port)
            if value and number is not None and low <= number <= high and _IN_NETWORK[value, self.probe_src]:
                return 2
        for mine, theirs in (("sport", "dport"), ("dport", "sport")):
            port, other = fields.get(mine), fields.get(theirs)
            if port is not None and low <= port <= high and other == self.probe_dport:
                return 1
        return 0

    @property
    def narrowed(self):
        """True when the flow selects something narrower than "every packet": an address prefix of /0 or the whole
        port range, in any spelling, selects nothing narrower."""
        networks = [network for network in (self.src, self.dst) if network and ipaddress.ip_network(network).prefixlen]
        ports = [ports for ports in (self.sport, self.dport, self.port) if ports and ports != (1, 65535)]
        return bool(networks or ports or self.iif or self.oif)

    def canonical(self):
        canonical = {
            "proto": self.proto,
            "src": self.src,
            "dst": self.dst,
            "sport": self.sport and list(self.sport),
            "dport": self.dport and list(self.dport),
            "iif": self.iif,
            "oif": self.oif,
            "families": list(self.families),
        }
        if self.port:  # absent otherwise, so that the flow ids of older selectors stay the same
            canonical["port"] = list(self.port)
        if self.probe_src:  # likewise
            canonical["probe_src"] = self.probe_src
        if self.probe_dport:
            canonical["probe_dport"] = self.probe_dport
        return canonical

    @property
    def flow_id(self):
        """12 hex digits naming this selector; it is how rules are tagged and found again."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("ascii")).hexdigest()[:12]

    def describe(self):
        def port(value):
            return "" if not value else (":%d" % value[0] if value[0] == value[1] else ":%d-%d" % value)

        parts = [self.proto]
        parts.append("%s%s -> %s%s" % (self.src or "*", port(self.sport), self.dst or "*", port(self.dport)))
        if self.port:
            parts.append("port %s either way" % port(self.port)[1:])
        if self.iif:
            parts.append("in " + self.iif)
        if self.oif:
            parts.append("out " + self.oif)
        parts.append("/".join(self.families))
        if self.probe_src:
            parts.append("(the probe's from %s%s first)" % (
                self.probe_src, " to port %d" % self.probe_dport if self.probe_dport else ""))
        return " ".join(parts)
