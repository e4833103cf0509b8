# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the nat table's rules send a new conversation for a service address and port today: every DNAT target
reachable from PREROUTING and OUTPUT through rules that may match it (iptables' `-d`, `-p`, `--dport`/`--dports`;
a rule the reading cannot rule out is followed), as kube-proxy's chains spread a service over its endpoints.

Conntrack holds a conversation to the endpoint its first packet was DNAT'd to, as long as its packets keep coming.
Where that endpoint is not among today's targets, the rules moved and the entry did not: a UDP client that always
sends from one port keeps talking to an endpoint that is gone. Read only when a finding asks (a conversation whose
DNAT conntrack holds, a service the probe went to), from iptables-save (both flavours, legacy and nft) and from a
native nftables ruleset (`nft -j list ruleset`: nat chains of the prerouting and output hooks, through jumps, gotos
and verdict maps, kube-proxy's nftables mode included; a `dnat` to a numgen or jhash map gives each of its
addresses). A rule's match the reading does not know (a mark, a set it cannot read) may match: followed.
"""

import ipaddress
import json
import shlex

from ansible_collections.packetpath.linux.plugins.module_utils._common.addresses import family_of
from ansible_collections.packetpath.linux.plugins.module_utils.capture.legacy_rules import parse_save

ENTRY_CHAINS = ("PREROUTING", "OUTPUT")


def _words(rule):
    try:
        return shlex.split(rule)
    except ValueError:
        return rule.split()


def _value(words, *options):
    """The value after an option, and whether it is negated (`! -d X` or `-d ! X`); (None, False) where absent."""
    for index, word in enumerate(words[:-1]):
        if word in options:
            negated = index > 0 and words[index - 1] == "!"
            return words[index + 1], negated
    return None, False


def _may_match(words, proto, dst, dport):
    """Whether the rule may match a new conversation of proto to dst:dport (only what the reading can rule out)."""
    value, negated = _value(words, "-p", "--protocol")
    if value is not None and (value.lower() == proto) == negated:
        return False
    value, negated = _value(words, "-d", "--destination")
    if value is not None:
        try:
            inside = ipaddress.ip_address(dst) in ipaddress.ip_network(value, strict=False)
        except ValueError:
            inside = True  # a name or a form not read here: followed
        if inside == negated:
            return False
    value, negated = _value(words, "--dport", "--destination-port", "--dports", "--destination-ports")
    if value is not None and dport is not None:
        ports = []
        for part in value.split(","):
            low, _sep, high = part.partition(":")
            try:
                ports.append((int(low or 0), int(high or low or 65535)))
            except ValueError:
                return True
        inside = any(low <= dport <= high for low, high in ports)
        if inside == negated:
            return False
    return True


def _target(words):
    value, _negated = _value(words, "-j", "--jump", "-g", "--goto")
    return value


def _endpoint(text, dport):
    """'198.18.20.3:9090' -> ('198.18.20.3', 9090), a port-less target keeping the port; ValueError for a range of
    addresses or ports (conntrack may hold any of it: a list of its first would call the others gone)."""
    if "-" in text:
        raise ValueError("the DNAT target %s is a range, not read here" % text)
    if text.startswith("["):  # [2001:db8::1]:80
        address, _sep, port = text[1:].partition("]")
        port = port.lstrip(":")
    elif text.count(":") == 1:
        address, _sep, port = text.partition(":")
    else:
        address, port = text, ""
    return address, int(port) if port.isdigit() else dport


def dnat_targets(save_text, proto, dst, dport):
    """[(address, port)] every DNAT target the nat table of one iptables-save can give a new conversation of proto to
    dst:dport, in rule order; [] where no rule may DNAT it; ValueError where one it may meet is a range."""
    chains = parse_save(save_text)
    found, seen = [], set()

    def walk(chain):
        if chain in seen:
            return
        seen.add(chain)
        for rule in chains.get(("nat", chain), {}).get("rules", []):
            words = _words(rule)
            if not _may_match(words, proto, dst, dport):
                continue
            target = _target(words)
            if target == "DNAT":
                value, _negated = _value(words, "--to-destination", "--to")
                if value:
                    endpoint = _endpoint(value, dport)
                    if endpoint not in found:
                        found.append(endpoint)
            elif ("nat", target) in chains:
                walk(target)

    for chain in ENTRY_CHAINS:
        walk(chain)
    return found


# -- native nftables (nft -j list ruleset) ---------------------------------------------------------------------

NFT_FAMILIES = {"ipv4": ("ip", "inet"), "ipv6": ("ip6", "inet")}
NFT_DNAT_FAMILY = {"ip": "ipv4", "ip6": "ipv6"}
NFT_ENTRY_HOOKS = ("prerouting", "output")
L4_NUMBERS = {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1, "icmpv6": 58, "ipv6-icmp": 58}


def _nft_field(expression):
    """Which of the packet's facts an expression reads: ("dst", None), ("proto", None), ("dport", its protocol or
    None for th), or None where it reads something else (a mark, the source)."""
    payload = expression.get("payload") if isinstance(expression, dict) else None
    if payload:
        protocol, field = payload.get("protocol"), payload.get("field")
        if protocol in ("ip", "ip6") and field == "daddr":
            return "dst", None
        if (protocol, field) in (("ip", "protocol"), ("ip6", "nexthdr")):
            return "proto", None
        if field == "dport" and protocol in ("tcp", "udp", "sctp", "th"):
            return "dport", None if protocol == "th" else protocol
        return None
    if isinstance(expression, dict) and (expression.get("meta") or {}).get("key") == "l4proto":
        return "proto", None
    return None


def _proto_number(value):
    return value if isinstance(value, int) else L4_NUMBERS.get(str(value).lower())


def _nft_value_matches(field, value, packet):
    """Whether a value (a literal, a prefix, a range, a set of them) holds the packet's fact: True, False, or None
    where the reading cannot tell."""
    name, protocol = field
    if protocol is not None and protocol != packet["proto"]:
        return False  # `tcp dport` matches TCP only
    mine = packet[name]
    if mine is None:
        return None
    if isinstance(value, dict) and "set" in value:
        answers = [_nft_value_matches(field, each, packet) for each in value["set"]]
        return True if True in answers else (None if None in answers else False)
    try:
        if name == "dst":
            if isinstance(value, dict) and "prefix" in value:
                return ipaddress.ip_address(mine) in ipaddress.ip_network(
                    "%s/%s" % (value["prefix"]["addr"], value["prefix"]["len"]), strict=False)
            if isinstance(value, dict) and "range" in value:
                low, high = (ipaddress.ip_address(each) for each in value["range"])
                return low <= ipaddress.ip_address(mine) <= high
            return ipaddress.ip_address(value) == ipaddress.ip_address(mine) if isinstance(value, str) else None
        if name == "proto":
            return _proto_number(value) == _proto_number(mine) if isinstance(value, (str, int)) else None
        if isinstance(value, dict) and "range" in value:
            return value["range"][0] <= mine <= value["range"][1]
        return int(value) == mine if isinstance(value, (str, int)) else None
    except (TypeError, ValueError, KeyError):
        return None


def _nft_key_matches(key, value, packet):
    """Whether the packet may have `value` for the key expression (a field or a concatenation of fields): True,
    False, or None where the reading cannot tell (a numgen, a hash, a field it does not read)."""
    if isinstance(key, dict) and "concat" in key:
        if not (isinstance(value, dict) and "concat" in value) or len(value["concat"]) != len(key["concat"]):
            return None
        answers = [_nft_key_matches(part, each, packet) for part, each in zip(key["concat"], value["concat"])]
        return False if False in answers else (None if None in answers else True)
    field = _nft_field(key)
    return None if field is None else _nft_value_matches(field, value, packet)


def _nft_match(match, packet):
    """A rule's match on the packet: False only where it surely does not hold."""
    op, left, right = match.get("op"), match.get("left"), match.get("right")
    if op not in ("==", "!="):
        return None
    if isinstance(right, dict) and "set" in right and isinstance(left, dict) and "concat" in left:
        answers = [_nft_key_matches(left, each, packet) for each in right["set"]]
        holds = True if True in answers else (None if None in answers else False)
    else:
        holds = _nft_key_matches(left, right, packet)
    if holds is None:
        return None
    return holds if op == "==" else not holds


class _NftRuleset:
    """One `nft -j list ruleset`: its chains' rules, its named maps, the nat chains a packet enters by."""

    def __init__(self, text, family):
        self.chains, self.maps, self.entries = {}, {}, []
        for item in json.loads(text).get("nftables", []):
            if "chain" in item:
                chain = item["chain"]
                key = (chain["family"], chain["table"], chain["name"])
                self.chains.setdefault(key, [])
                if chain.get("type") == "nat" and chain.get("hook") in NFT_ENTRY_HOOKS and \
                        chain["family"] in NFT_FAMILIES[family]:
                    self.entries.append(key)
            elif "rule" in item:
                rule = item["rule"]
                self.chains.setdefault((rule["family"], rule["table"], rule["chain"]), []).append(rule["expr"])
            elif "map" in item:
                named = item["map"]
                self.maps[(named["family"], named["table"], named["name"])] = named.get("elem") or []

    def elements(self, data, table):
        """A map's [key, value] pairs, written in the rule or named (@name, in the rule's table); ValueError where
        they are not in the ruleset."""
        if isinstance(data, dict) and "set" in data:
            return [each for each in data["set"] if isinstance(each, list) and len(each) == 2]
        if isinstance(data, str) and data.startswith("@") and table + (data[1:],) in self.maps:
            return self.maps[table + (data[1:],)]
        raise ValueError("the map %r is not read here" % (data,))


def _nft_endpoint(address, port, dport):
    """(address, port) of a dnat's address and port as written or as a map's value; ValueError for a form not read
    here (a range or prefix of addresses to choose from, an expression computed from the packet): a list of some
    of its addresses would call the others gone."""
    if isinstance(address, dict) and "concat" in address:  # a map's `address . port`
        address, port = address["concat"][0], address["concat"][1]
    if not isinstance(address, str) or not (port is None or isinstance(port, int) or str(port).isdigit()):
        raise ValueError("a dnat to %r port %r is not read here" % (address, port))
    ipaddress.ip_address(address)
    return address, dport if port is None else int(port)


def _nft_certain(key, elements, packet):
    """Whether a map lookup surely finds an element for the packet: a numgen or hash whose every value has one, or a
    key of the packet's facts that an element surely holds."""
    spread = (key.get("numgen") or key.get("jhash") or key.get("symhash")) if isinstance(key, dict) else None
    if spread:
        offset = spread.get("offset", 0)
        return set(range(offset, offset + spread.get("mod", 0))) <= set(
            element_key for element_key, _value in elements if isinstance(element_key, int))
    return any(_nft_key_matches(key, element_key, packet) is True for element_key, _value in elements)


def nft_dnat_targets(ruleset_text, proto, dst, dport):
    """[(address, port)] every dnat target a native nftables ruleset (`nft -j list ruleset`) can give a new
    conversation of proto to dst:dport, in the order the chains are walked; [] where no rule may DNAT it; ValueError
    where a dnat the packet may meet is of a form not read here (its targets unknown). A rule that
    surely takes the packet (every match holds, its dnat, goto or verdict map surely applies) ends its chain's
    walk, as it ends the packet's: a catch-all further down is not one of the service's endpoints."""
    family = family_of(dst)
    ruleset = _NftRuleset(ruleset_text, family)
    packet = {"dst": dst, "proto": proto, "dport": dport}
    found, ends = [], {}

    def chosen(lookup, table):
        """(the values of the map's elements whose key the packet may have, whether one surely applies)."""
        elements = ruleset.elements(lookup["data"], table)
        return [value for element_key, value in elements
                if _nft_key_matches(lookup["key"], element_key, packet) is not False], \
            _nft_certain(lookup["key"], elements, packet)

    def dnat(statement, table):
        """Add the statement's targets; whether it surely DNATs the packet."""
        if NFT_DNAT_FAMILY.get(statement.get("family"), family) != family:
            return False
        certain = True
        values = {}
        for part in ("addr", "port"):
            value = statement.get(part)
            if isinstance(value, dict) and "map" in value:
                values[part], sure = chosen(value["map"], table)
                certain = certain and sure
            else:
                values[part] = [value]
        for address in values["addr"]:
            for port in values["port"]:
                endpoint = _nft_endpoint(address, port, dport)
                if endpoint not in found:
                    found.append(endpoint)
        return certain

    def verdict(statement, table):
        """Follow a jump or goto; whether the packet surely comes back no more (a goto, or a chain that ends it)."""
        if isinstance(statement, dict) and "goto" in statement:
            walk(table + (statement["goto"]["target"],))
            return True
        if isinstance(statement, dict) and "jump" in statement:
            return walk(table + (statement["jump"]["target"],))
        return False

    def rule_ends(rule, table):
        sure = True
        for statement in rule:
            if "match" in statement:
                holds = _nft_match(statement["match"], packet)
                if holds is False:
                    return False
                sure = sure and holds is True
            elif "dnat" in statement:
                return dnat(statement["dnat"], table) and sure
            elif "vmap" in statement:
                values, certain = chosen(statement["vmap"], table)
                ended = [verdict(value, table) for value in values]
                return sure and certain and all(ended)
            elif "goto" in statement or "jump" in statement:
                if verdict(statement, table) and sure:
                    return True
        return False

    def walk(key):
        """Walk a chain; whether the packet surely ends in it (nothing after its call is evaluated)."""
        if key not in ends:
            ends[key] = False  # a loop back here ends nothing
            ends[key] = any(rule_ends(rule, key[:2]) for rule in ruleset.chains.get(key, []))
        return ends[key]

    for entry in ruleset.entries:
        walk(entry)
    return found


def targets(source, text, proto, dst, dport):
    """dnat_targets of one source of rules: ("iptables", an iptables-save) or ("nftables", `nft -j list ruleset`)."""
    return (nft_dnat_targets if source == "nftables" else dnat_targets)(text, proto, dst, dport)
