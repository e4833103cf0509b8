# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ask the kernel how it routes packets, and say the answer in the words an operator uses.

Errors are answers: an arriving packet the kernel refuses (EXDEV on older
kernels, EINVAL on newer ones) is explained by recomputing the reverse-path
check here: the route back to the source, compared with the arrival interface,
under that interface's effective rp_filter mode.
"""

import errno
import ipaddress
import os
import socket
from dataclasses import dataclass
from typing import Optional

from ansible_collections.packetpath.linux.plugins.module_utils._common.addresses import family_of
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import OptionError
from ansible_collections.packetpath.linux.plugins.module_utils.routing import rt_tables
from ansible_collections.packetpath.linux.plugins.module_utils.sysctl import conf

FAMILY = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6, "bridge": 7}  # AF_BRIDGE: the forwarding databases
PROTOCOL_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "sctp": 132}
_PROTOCOL_NAMES = {number: name for name, number in PROTOCOL_NUMBERS.items()}
# rtmsg.rtm_type and fib_rule_hdr.action, as the kernel numbers them (linux/rtnetlink.h, linux/fib_rules.h).
ROUTE_TYPES = ("unspec", "unicast", "local", "broadcast", "anycast", "multicast", "blackhole", "unreachable",
               "prohibit", "throw", "nat", "xresolve")
RULE_ACTIONS = {1: "lookup", 2: "goto", 3: "nop", 6: "blackhole", 7: "unreachable", 8: "prohibit"}
RP_MODES = {0: "off", 1: "strict", 2: "loose"}
MAIN_TABLE = 254
# ndmsg.ndm_state bits (linux/neighbour.h), as `ip neigh` names them.
NUD_STATES = {0x01: "incomplete", 0x02: "reachable", 0x04: "stale", 0x08: "delay", 0x10: "probe", 0x20: "failed",
              0x40: "noarp", 0x80: "permanent"}


def nud_names(bits):
    """The names of a neighbour entry's NUD state bits, in the kernel's order."""
    return [name for bit, name in sorted(NUD_STATES.items()) if bits & bit]


_PLAIN = {
    errno.ENETUNREACH: "no route to %(dst)s: no table the rules lead to has a route that covers it",
    errno.EHOSTUNREACH: "%(dst)s is covered by an unreachable route (or forwarding is off on the arrival interface)",
    errno.EACCES: "%(dst)s is covered by a prohibit route: the kernel answers such packets with 'administratively "
                  "prohibited'",
    errno.ENODEV: "the interface given does not exist or is down",
}
# net_device flags (linux/if.h): administratively up, and the lower layer (carrier) up.
IFF_UP = 0x1
IFF_LOWER_UP = 0x10000
# ifa_flags (linux/if_addr.h): an IPv6 address another host on the link already had when duplicate address detection
# asked; the kernel keeps it tentative and does not use it.
IFA_F_DADFAILED = 0x08
# A qdisc's parent: the ingress/clsact qdisc hangs off TC_H_INGRESS (clsact's own handle, ffff:fff1); every other
# qdisc is on the way out.
TC_H_INGRESS = 0xFFFFFFF1
# rtmsg.rtm_flags of a route whose next hop's link is down (RTNH_F_LINKDOWN), as `ip route` prints `linkdown`.
RTNH_F_LINKDOWN = 0x10
_ZERONET = ipaddress.ip_network("0.0.0.0/8")
_LIMITED_BROADCAST = ipaddress.ip_address("255.255.255.255")
RTM_F_FLAGS = {RTNH_F_LINKDOWN: "linkdown", 0x200: "cloned", 0x400: "equalize", 0x800: "prefix", 0x1000: "lookup_table",
               0x2000: "fib_match"}


def qdisc_direction(parent):
    return "ingress" if parent == TC_H_INGRESS else "egress"


def _effective_on(interface, key):
    return conf.effective(key, conf.read("ipv4", "all", key), conf.read("ipv4", interface, key))


@dataclass
class Lookup:
    """One `ip route get`: dst required; the rest optional (ints for iif/oif indexes, mark, uid; ports)."""

    family: str
    dst: str
    src: Optional[str] = None
    iif: Optional[int] = None
    oif: Optional[int] = None
    tos: int = 0
    mark: Optional[int] = None
    uid: Optional[int] = None
    proto: Optional[str] = None
    sport: Optional[int] = None
    dport: Optional[int] = None


def _address(option, value, family=None):
    """The address in its canonical text, checked by the C library (a lookup may be one of ten thousand)."""
    text = str(value).strip()
    for found, af in (("ipv4", socket.AF_INET), ("ipv6", socket.AF_INET6)):
        try:
            canonical = socket.inet_ntop(af, socket.inet_pton(af, text))
        except (OSError, ValueError):
            continue
        if family and family != found:
            raise OptionError(option, value, "is not %s" % family)
        return canonical
    raise OptionError(option, value, "not an IPv4/IPv6 address (a lookup is for one address, not a network)")


def _number(option, value, high):
    if value in (None, ""):
        return None
    try:
        number = int(str(value), 0)
    except ValueError:
        number = -1
    if not 0 <= number <= high:
        raise OptionError(option, value, "must be 0-%d" % high)
    return number


def build(spec, index_of):
    """A lookup's options (the flow selector's names plus tos, mark, uid, family) -> Lookup."""
    if not spec.get("dst"):
        raise OptionError("dst", reason="required for a route lookup")
    dst = _address("dst", spec["dst"], spec.get("family") if spec.get("family") != "both" else None)
    family = family_of(dst)
    src = _address("src", spec["src"], family) if spec.get("src") else None
    interfaces = {}
    for option in ("iif", "oif"):
        name = spec.get(option)
        if name:
            if name not in index_of:
                raise OptionError(option, name, "no such interface in this network namespace")
            interfaces[option] = index_of[name]
    proto = spec.get("proto")
    proto = None if proto in (None, "any") else proto
    ports = {option: _number(option, spec.get(option), 65535) for option in ("sport", "dport")}
    if any(ports.values()) and proto not in ("tcp", "udp", "sctp"):
        raise OptionError("sport/dport", reason="need proto tcp, udp or sctp (got proto=%s)" % (proto or "any"))
    return Lookup(family, dst, src=src, iif=interfaces.get("iif"), oif=interfaces.get("oif"),
                  tos=_number("tos", spec.get("tos"), 255) or 0, mark=_number("mark", spec.get("mark"), 0xFFFFFFFF),
                  uid=_number("uid", spec.get("uid"), 0xFFFFFFFF), proto=proto, sport=ports["sport"],
                  dport=ports["dport"])


def _in(address, network):
    return ipaddress.ip_address(address) in ipaddress.ip_network(network, strict=False)


def rule_matches(rule, lookup, names):
    """Whether a policy rule's selector takes this lookup (the kernel's fib_rule_match, in short)."""
    return _selects(rule, lookup, names) != rule.get("not", False)


def _selects(rule, lookup, names):
    if "src" in rule and not _in(lookup.src or ("0.0.0.0" if lookup.family == "ipv4" else "::"), rule["src"]):
        return False
    if "dst" in rule and not _in(lookup.dst, rule["dst"]):
        return False
    if "iif" in rule and rule["iif"] != (names.get(lookup.iif) if lookup.iif else "lo"):
        return False  # a packet this host sends comes "from" lo
    if "oif" in rule and (lookup.oif is None or rule["oif"] != names.get(lookup.oif)):
        return False
    if "fwmark" in rule and ((lookup.mark or 0) & rule["fwmask"]) != rule["fwmark"]:
        return False
    if rule.get("tos") and rule["tos"] != lookup.tos:
        return False
    if "ip_proto" in rule and (lookup.proto is None or rule["ip_proto"] != PROTOCOL_NUMBERS.get(lookup.proto)):
        return False
    for name in ("sport", "dport"):
        if name in rule and not (getattr(lookup, name) is not None
                                 and rule[name][0] <= getattr(lookup, name) <= rule[name][1]):
            return False
    # A lookup without a uid is the asker's: root's, as for `ip route get` (the kernel's current_uid()).
    if "uidrange" in rule and not rule["uidrange"][0] <= (lookup.uid or 0) <= rule["uidrange"][1]:
        return False
    return True


def rule_text(rule, tables):
    """'32766: from all lookup main', as `ip rule` prints it."""
    parts = ["%d:" % rule["priority"]]
    if rule.get("not"):
        parts.append("not")
    parts.append("from %s" % _short(rule.get("src", "all")))
    if "dst" in rule:
        parts.append("to %s" % _short(rule["dst"]))
    if "fwmark" in rule:
        mask = "" if rule["fwmask"] == 0xFFFFFFFF else "/0x%x" % rule["fwmask"]
        parts.append("fwmark 0x%x%s" % (rule["fwmark"], mask))
    for name in ("iif", "oif"):
        if name in rule:
            parts.append("%s %s" % (name, rule[name]))
    if "uidrange" in rule:
        parts.append("uidrange %d-%d" % tuple(rule["uidrange"]))
    if "ip_proto" in rule:
        parts.append("ipproto %s" % _PROTOCOL_NAMES.get(rule["ip_proto"], rule["ip_proto"]))
    for name in ("sport", "dport"):
        if name in rule:
            low, high = rule[name]
            parts.append("%s %s" % (name, low if low == high else "%d-%d" % (low, high)))
    if rule["action"] == "lookup":
        parts.append("lookup %s" % tables.name(rule["table_id"]))
    else:
        parts.append(rule["action"])
    return " ".join(parts)


def _short(network):
    return network[:-3] if network.endswith("/32") else network[:-4] if network.endswith("/128") else network


class Router:
    """Lookups in this network namespace, through one rtnetlink socket."""

    def __init__(self, engine, tables=None):
        self.engine = engine  # RtNetlink, or the `ip` command engine
        self.tables = tables or rt_tables.RtTables()
        self.names = dict(socket.if_nameindex())
        self.index_of = {name: index for index, name in self.names.items()}
        self._rules = {}
        self._routes = {}  # {family: {table id: [routes]}}, for decide()
        self._neighbours = {}
        self._links = None
        self._addresses = None
        self._dad_failed = set()
        self._fdb = None

    def rules(self, family):
        if family not in self._rules:
            rules = sorted(self.engine.rules(family), key=lambda rule: rule["priority"])
            for rule in rules:
                rule["text"] = rule_text(rule, self.tables)
            self._rules[family] = rules
        return self._rules[family]

    def lookup(self, specs):
        lookups = [build(spec, self.index_of) for spec in specs]
        return [self.explain(lookup, route, code)
                for lookup, (route, code) in zip(lookups, self.engine.route_get(lookups))]

    def explain(self, lookup, route, code):
        answer = {"lookup": self._echo(lookup)}
        if code:
            answer["error"] = self._error(lookup, code)
            return answer
        answer.update({
            "type": route["type"],
            "dev": self.names.get(route.get("oif"), route.get("oif")),
            "gateway": route.get("gateway"),
            "prefsrc": route.get("prefsrc"),
            "table": self.tables.name(route["table_id"]),
            "metric": route.get("metric"),
            "mtu": route.get("mtu"),
            "flags": [name for bit, name in sorted(RTM_F_FLAGS.items()) if route["flags"] & bit],
        })
        matched = next((rule for rule in self.rules(lookup.family)
                        if rule["action"] == "lookup" and rule["table_id"] == route["table_id"]
                        and rule_matches(rule, lookup, self.names)), None)
        answer["matched_rule"] = None if matched is None else {"priority": matched["priority"], "rule": matched["text"]}
        answer["ip_route_get"] = self._line(lookup, answer)
        return answer

    def _echo(self, lookup):
        echo = {"family": lookup.family, "dst": lookup.dst}
        for name in ("src", "tos", "mark", "uid", "proto", "sport", "dport"):
            if getattr(lookup, name):
                echo[name] = getattr(lookup, name)
        for name in ("iif", "oif"):
            if getattr(lookup, name) is not None:
                echo[name] = self.names.get(getattr(lookup, name))
        return echo

    def _line(self, lookup, answer):
        """The answer as `ip route get` prints its first line (less the sending socket's uid)."""
        words = [] if answer["type"] == "unicast" else [answer["type"]]
        words.append(lookup.dst)
        if lookup.src:
            words += ["from", lookup.src]
        if answer["gateway"]:
            words += ["via", answer["gateway"]]
        if answer["dev"]:
            words += ["dev", str(answer["dev"])]
        if answer["table"] != "main":
            words += ["table", str(answer["table"])]
        if answer["prefsrc"]:
            words += ["src", answer["prefsrc"]]
        if lookup.mark:
            words += ["mark", "0x%x" % lookup.mark]
        return " ".join(words)

    def _error(self, lookup, code):
        error = {"errno": code, "name": errno.errorcode.get(code, str(code)), "message": os.strerror(code)}
        values = {"dst": lookup.dst, "src": lookup.src}
        if lookup.iif is not None and code in (errno.EXDEV, errno.EINVAL) and lookup.src:
            error["reverse_path"] = self.reverse_path(lookup)
            error["explanation"] = error["reverse_path"]["explanation"]
        elif lookup.iif is None and lookup.src and not self._is_local(lookup.src):
            error["explanation"] = ("from=%s is not an address of this host: without iif the lookup is for a packet "
                                    "this host sends, and it can only send from its own addresses; give iif to ask "
                                    "about a packet arriving from %s" % (lookup.src, lookup.src))
        else:
            error["explanation"] = _PLAIN.get(code, "the kernel refused the lookup: %s" % os.strerror(code)) % values
        return error

    def _is_local(self, address):
        probe = Lookup(family_of(address), address)
        route, _code = self.engine.route_get([probe])[0]
        return bool(route) and route["type"] == "local"

    def reverse_path(self, lookup):
        """The kernel's rp_filter check, redone: the route back to the source against the arrival interface."""
        iif = self.names.get(lookup.iif, str(lookup.iif))
        family = lookup.family
        mode_value = _effective_on(iif, "rp_filter") if family == "ipv4" else 0
        mode = RP_MODES.get(mode_value, str(mode_value))
        back, code = self.engine.route_get([Lookup(family, lookup.src, mark=lookup.mark)])[0]
        back_dev = self.names.get(back.get("oif")) if back else None
        check = {"mode": mode, "interface": iif, "route_back_dev": back_dev,
                 "route_back": None if back is None else {"type": back["type"], "gateway": back.get("gateway")}}
        martian = self._martian_source(lookup, iif, back)
        if martian:
            # The kernel refuses these before (and whatever) rp_filter: fib_validate_source, ip_route_input_slow.
            check.update(rejected=False, martian=martian, explanation=(
                "not the reverse-path filter: the kernel takes %s for a martian source on %s: %s" % (
                    lookup.src, iif, martian)))
            return check
        if code or back["type"] in ("unreachable", "prohibit", "blackhole"):
            rejected = mode != "off"
            reason = "there is no route back to %s" % lookup.src
        else:
            rejected = mode == "strict" and back_dev != iif
            reason = "the route back to %s leaves via %s" % (lookup.src, back_dev)
        check["rejected"] = rejected
        if rejected:
            check["explanation"] = "rejected by rp_filter (%s on %s): %s" % (mode, iif, reason)
        else:
            check["explanation"] = (
                "not the reverse-path filter (%s on %s, and %s), nor a martian source (%s is no address of this "
                "host nor of a martian range): %s may not forward (net.%s.conf.%s.forwarding)" % (
                    mode, iif, reason, lookup.src, iif, family, iif))
        return check

    @staticmethod
    def _martian_source(lookup, iif, back):
        """Why the kernel takes an arriving packet's source for a martian, whatever rp_filter says, or None: not
        a unicast address, a loopback address without route_localnet, or an address of this very host without
        accept_local (a duplicate address). IPv6 input has no such check."""
        if lookup.family != "ipv4":
            return None
        address = ipaddress.ip_address(lookup.src)
        if address in _ZERONET or address == _LIMITED_BROADCAST or address.is_multicast:
            return "%s is no unicast source address" % lookup.src
        if address.is_loopback and not _effective_on(iif, "route_localnet"):
            return "%s is a loopback address and route_localnet is off on %s" % (lookup.src, iif)
        if back is not None and back["type"] == "local" and not _effective_on(iif, "accept_local"):
            return "%s is an address of this host too (the route to it is local), and accept_local is off on %s" % (
                lookup.src, iif)
        return None

    def decide(self, lookup):
        """The routing decision redone from the policy rules and the tables they lead to: the route that covers
        lookup.dst, its type, its table and the rule that chose the table. The kernel answers a refused lookup
        with an errno only (a blackhole route and a martian both give EINVAL); this names which route refused.
        Returns {type, table, rule, route}; type None where no table the rules lead to covers dst."""
        address = ipaddress.ip_address(lookup.dst)
        for rule in self.rules(lookup.family):
            if not rule_matches(rule, lookup, self.names):
                continue
            if rule["action"] in ("blackhole", "unreachable", "prohibit"):  # the rule refuses by itself
                return {"type": rule["action"], "table": None, "rule": rule["text"], "route": None}
            if rule["action"] != "lookup":
                continue
            route = self._covering(lookup.family, rule["table_id"], address)
            if route is not None and route["type"] != "throw":
                return {"type": route["type"], "table": self.tables.name(rule["table_id"]), "rule": rule["text"],
                        "route": self._route_entry(route)}
        return {"type": None, "table": None, "rule": None, "route": None}

    def _covering(self, family, table_id, address):
        """The longest prefix of the table that covers the address (the lowest metric among equals)."""
        best = None
        for route in self._table(family, table_id):
            prefix = route["network"]
            if address in prefix and (best is None or (prefix.prefixlen, -route.get("metric", 0)) > (
                    best["network"].prefixlen, -best.get("metric", 0))):
                best = route
        return best

    def _table(self, family, table_id):
        if family not in self._routes:
            self._routes[family] = {}
            default = "0.0.0.0/0" if family == "ipv4" else "::/0"
            for route in self.engine.routes(family):
                if route["flags"] & 0x200:  # cloned: a cache entry, not a route
                    continue
                route["network"] = ipaddress.ip_network(
                    "%s/%d" % (route["dst"], route.get("dst_len", 0)) if route.get("dst") else default, strict=False)
                self._routes[family].setdefault(route["table_id"], []).append(route)
        return self._routes[family].get(table_id, [])

    def forget_neighbours(self):
        """Read the neighbour tables afresh when next asked (traffic since the last read made or changed entries)."""
        self._neighbours = {}

    def neighbour(self, family, dev, address):
        """The neighbour entry's state names for `address` on `dev` (ARP/NDP), [] where the kernel has none."""
        return self._neighbour_entry(family, dev, address)["state"]

    def lladdr(self, family, dev, address):
        """The link-layer address the neighbour entry for `address` on `dev` sends to, None where it has none."""
        return self._neighbour_entry(family, dev, address)["lladdr"]

    def _neighbour_entry(self, family, dev, address):
        if family not in self._neighbours:
            self._neighbours[family] = {
                (self.names.get(entry["ifindex"]), entry["dst"]): {
                    "state": nud_names(entry["state"]), "lladdr": entry.get("lladdr")}
                for entry in self.engine.neighbours(family) if entry.get("dst")}
        return self._neighbours[family].get((dev, address), {"state": [], "lladdr": None})

    def link(self, name):
        """The interface's state ({mac, admin_up, carrier, operstate, xdp, ...}), None where there is no such
        interface."""
        return self.links().get(name)

    def addresses(self, name=None):
        """The addresses of an interface of this namespace, or (no name) of all of them, sorted; one dump."""
        found = self.prefixes()
        if name is None:
            return sorted(set(prefix.split("/")[0] for held in found.values() for prefix in held))
        return [prefix.split("/")[0] for prefix in found.get(name, [])]

    def prefixes(self):
        """{interface: ["198.18.20.2/24", ...]}: the addresses each interface holds, with their prefix lengths."""
        if self._addresses is None:
            self._addresses, self._dad_failed = {}, set()
            for entry in self.engine.addresses():
                prefix = "%s/%s" % (entry["address"], entry["prefixlen"]) if entry.get("prefixlen") is not None \
                    else entry["address"]
                self._addresses.setdefault(self.names.get(entry["ifindex"]), []).append(prefix)
                if entry.get("dad_failed"):
                    self._dad_failed.add(prefix)
        return self._addresses

    def dad_failed(self):
        """The prefixes of the addresses that failed duplicate address detection (held, but not used)."""
        self.prefixes()
        return sorted(self._dad_failed)

    def fdb(self, name):
        """The forwarding database entries of an interface (a bridge port's, a VXLAN device's remotes), one dump."""
        if self._fdb is None:
            self._fdb = {}
            for entry in self.engine.fdb():
                self._fdb.setdefault(self.names.get(entry["ifindex"]), []).append(entry)
        return self._fdb.get(name, [])

    def links(self):
        """Every interface's state, by name."""
        if self._links is None:
            self._links = {link["name"]: link for link in self.engine.links()}
        return self._links

    def on_link(self, family):
        """{interface: ["198.18.40.2/32", ...]}: the main table's unicast routes with no gateway, by the interface
        they go out of: the hosts (or subnets) this host reaches on that link without a router, also where the
        interface holds no address of its own (a Calico node's route to each pod by the pod's veth)."""
        found = {}
        for route in self._table(family, MAIN_TABLE):
            if route["type"] == "unicast" and not route.get("gateway") and route.get("oif"):
                found.setdefault(self.names.get(route["oif"]), []).append(str(route["network"]))
        return found

    def routes_into(self, network, dev):
        """The main table's IPv4 unicast routes into `network` (a subnet of `dev`'s) that leave by another interface,
        as {dst, dev, gateway}, most specific first: where this host sends some of that link's addresses elsewhere
        (which is what arp_filter asks before it answers an ARP request on `dev`)."""
        network = ipaddress.ip_network(network, strict=False)
        found = [route for route in self._table("ipv4", MAIN_TABLE)
                 if route["type"] == "unicast" and route.get("oif") and self.names.get(route["oif"]) != dev
                 and route["network"].version == network.version and route["network"].subnet_of(network)]
        found.sort(key=lambda route: -route["network"].prefixlen)
        return [{key: value for key, value in (("dst", str(route["network"])), ("dev", self.names.get(route["oif"])),
                                               ("gateway", route.get("gateway"))) if value} for route in found]

    def policy(self, family):
        """The policy rules in order, and the routes of every table they lead to (`ip rule` and `ip route list table
        ...`), parsed."""
        rules = self.rules(family)
        wanted = set(rule["table_id"] for rule in rules if rule["action"] == "lookup")
        tables = {}
        for route in self.engine.routes(family):
            if route["table_id"] in wanted and not route["flags"] & 0x200:
                tables.setdefault(str(self.tables.name(route["table_id"])), []).append(self._route_entry(route))
        return {"rules": [rule_view(rule, self.tables) for rule in rules],
                "tables": tables}

    def _route_entry(self, route):
        destination = "default" if not route.get("dst_len") and not route.get("dst") else "%s/%d" % (
            route.get("dst"), route.get("dst_len", 0))
        entry = {"type": route["type"], "dst": destination, "dev": self.names.get(route.get("oif")),
                 "gateway": route.get("gateway"), "prefsrc": route.get("prefsrc"), "metric": route.get("metric")}
        return {key: value for key, value in entry.items() if value is not None}


def rule_view(rule, tables):
    view = {key: value for key, value in rule.items() if key not in ("family", "table_id", "text")}
    view["rule"] = rule["text"]
    if rule["action"] == "lookup":
        view["table"] = tables.name(rule["table_id"])
    return view
