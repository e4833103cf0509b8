# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the nat table's rules send a new conversation for a service address and port today: every DNAT target
reachable from PREROUTING and OUTPUT through rules that may match it (iptables' `-d`, `-p`, `--dport`/`--dports`;
a rule the reading cannot rule out is followed), as kube-proxy's chains spread a service over its endpoints.

Conntrack holds a conversation to the endpoint its first packet was DNAT'd to, as long as its packets keep coming.
Where that endpoint is not among today's targets, the rules moved and the entry did not: a UDP client that always
sends from one port keeps talking to an endpoint that is gone. Read from iptables-save, both flavours (legacy and
nft), and only when a finding asks (a conversation whose DNAT conntrack holds). A native nftables ruleset is not
read: there the set of targets is unknown, and nothing is concluded from it.
"""

import ipaddress
import shlex

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
    """'198.18.20.3:9090' -> ('198.18.20.3', 9090); a range or a port-less target keeps what it can."""
    text = text.split("-", 1)[0]
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
    dst:dport, in rule order; [] where no rule may DNAT it."""
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
