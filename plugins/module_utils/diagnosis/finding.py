# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host decides on the host: from its traced packets (both directions) and the evidence read in its own
network namespace, the cause the catalogue names, or "undecided" with what was ruled out.

The packets are trace_results' (hops, fate, last hop). The evidence is asked through one object (HostEvidence
live; the unit tests give recorded answers), so the decision reads the same whether the kernel answers now or
answered in the lab.
"""

import re

from ansible_collections.packetpath.linux.plugins.module_utils._common.addresses import family_of
from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis import causes
from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis.evidence import (
    conntrack,
    counters,
    interfaces,
    nat,
    sockets,
)
from ansible_collections.packetpath.linux.plugins.module_utils.routing.lookup import build
from ansible_collections.packetpath.linux.plugins.module_utils.sysctl import conf

# The fates of a packet that went on from this host: the one definition, which the fleet verdict reads too.
PASSED = ("delivered_local", "forwarded", "sent")
# Where a neighbour entry in these states is the next hop, the kernel queued the packet, asked, and dropped it.
UNANSWERED_NEIGHBOUR = ("failed", "incomplete")
# Where it is in one of these, the kernel sends to the MAC the entry holds without asking first.
SENT_WITHOUT_ASKING = ("permanent", "noarp", "reachable", "stale", "delay", "probe")
BROADCAST = "ff:ff:ff:ff:ff:ff"
# A VXLAN forwarding entry for this MAC is the device's default remote: frames for any MAC without its own go there.
DEFAULT_REMOTE = "00:00:00:00:00:00"
# The share of conntrack's limit that counts as full: flows end and begin between the drop and the reading, so the
# drop counter decides and the fill confirms.
CONNTRACK_FULL_SHARE = 0.9
_UNREAD = object()
# The destination a DNAT rule writes (iptables `--to-destination A[:P]`, nft `dnat [ip|ip6] to A[:P]`; IPv6 in
# brackets where a port follows). The trace logs the packet before the rule, so the last hop holds the old one.
_DNAT_TO = re.compile(r"(?:--to-destination\s+|\bdnat\s+(?:ip6?\s+)?to\s+)"
                      r"(?:\[(?P<bracketed>[0-9A-Fa-f:.]+)\]|(?P<v4>\d+\.\d+\.\d+\.\d+)|(?P<v6>[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*))"
                      r"(?::(?P<port>\d+))?")
# br_netfilter's switch, per network namespace: bridged IP frames go through the IP firewall's hooks where it is 1.
BRIDGE_NF = "/proc/sys/net/bridge/bridge-nf-call-%s"
BRIDGE_NF_TOOL = {"ipv4": "iptables", "ipv6": "ip6tables"}
# A REJECT target (iptables) or reject statement (nft): xtables-monitor and nft monitor print its verdict as drop.
_REJECTS = re.compile(r"-j\s+REJECT\b|(?:^|\s)reject(?:\s|$)")
# A rule that matches what conntrack classified invalid (iptables -m conntrack/-m state, nft ct state).
_MATCHES_INVALID = re.compile(r"--(?:ct)?state\s+(?:\S+,)?INVALID\b|\bct state (?:\{[^}]*\binvalid\b[^}]*\}|invalid\b)")


class HostEvidence:
    """The evidence of this network namespace, read when asked: counter deltas over the capture, the listening
    sockets, the routing decision, the interfaces (state, addresses, qdisc drops over the capture) and the interface
    settings."""

    def __init__(self, router, before, after, read_sysctl, interfaces_before=None, drops=None, nat_rules=None):
        self.router = router
        # family -> [(source, text)]: "iptables" saves of both flavours, "nftables" `nft -j list ruleset`; read when
        # first asked
        self._nat_rules = nat_rules
        self._nat_read = {}
        self.drops = drops  # the kernel's reasons for the flow's drops here (bpftrace), None where not read
        self.delta = counters.moved(before, after)
        self.sysctl = read_sysctl  # (family, interface, key) -> value
        self._interfaces_before = interfaces_before
        self._interfaces_moved = None
        self._listening = None
        self._routes = {}
        self._conntrack_table = _UNREAD
        self._conntrack = {}

    def listening(self):
        if self._listening is None:
            self._listening = sockets.listening()
        return self._listening

    def route(self, spec):
        """The kernel's answer to the lookup and the decision redone from rules and tables (asked once per spec:
        a packet that passes is looked up by _routing, then described by _passed)."""
        key = tuple(sorted(spec.items()))
        if key not in self._routes:
            self._routes[key] = self.router.lookup([spec])[0], self.router.decide(build(spec, self.router.index_of))
        return self._routes[key]

    def neighbour(self, family, dev, address):
        return self.router.neighbour(family, dev, address)

    def lladdr(self, family, dev, address):
        return self.router.lladdr(family, dev, address)

    def fdb(self, dev):
        return self.router.fdb(dev)

    def nat_targets(self, proto, dst, dport):
        """[(address, port)] where the nat rules send a new conversation to dst:dport today; None where no rules
        could be read (no iptables-save, no nft), or one DNAT of them could not."""
        family = family_of(dst)
        if family not in self._nat_read:
            try:
                self._nat_read[family] = [(source, text) for source, text in
                                          (self._nat_rules or (lambda _family: []))(family) if text]
            except Exception:  # pylint: disable=broad-except  # context only: it must not cost the finding
                self._nat_read[family] = []
        if not self._nat_read[family]:
            return None
        found = []
        try:
            for source, text in self._nat_read[family]:
                found.extend(target for target in nat.targets(source, text, proto, dst, dport) if target not in found)
        except (ValueError, KeyError, TypeError, AttributeError):  # a DNAT the reading cannot follow: a list without
            return None  # it would call a live endpoint gone
        return found

    def service_conversations(self, proto, dst, dport):
        """conntrack's entries of every conversation to a service's address and port (not only the probe's), None
        where they cannot be read."""
        try:
            return conntrack.service_entries(proto, dst, dport) if self.conntrack_table() else None
        except Exception:  # pylint: disable=broad-except  # context only: it must not cost the finding
            return None

    def bridge_ports(self, bridge):
        """The interfaces enslaved to a bridge of this namespace, by name."""
        index = self.router.index_of.get(bridge)
        return sorted(name for name, link in self.router.links().items() if index and link.get("master") == index)

    @staticmethod
    def bridge_netfilter(family):
        """net.bridge.bridge-nf-call-iptables (ip6tables): whether br_netfilter hands this namespace's bridged IP
        frames to the IP firewall; None where br_netfilter is not there."""
        return conf.read_path(BRIDGE_NF % BRIDGE_NF_TOOL[family])

    def link(self, dev):
        return self.router.link(dev)

    def addresses(self, dev):
        return self.router.addresses(dev)

    def interfaces_moved(self):
        """{interface: {counter: increase}} over the capture; {} where the capture took no snapshot."""
        if self._interfaces_moved is None:
            self._interfaces_moved = {} if self._interfaces_before is None else interfaces.moved(
                self._interfaces_before, interfaces.snapshot(self.router.engine))
        return self._interfaces_moved

    def conntrack_table(self):
        """The table's fill, read once: the finding shows it and conntrack_full decides on it."""
        if self._conntrack_table is _UNREAD:
            self._conntrack_table = conntrack.fill()
        return self._conntrack_table

    def conntrack(self, hop):
        """The flow's entries as conntrack holds them here, and the table's fill (None where not loaded); read once
        per packet header (the finding asks for the request's and for its lookups)."""
        key = tuple(hop.get(field) for field in ("proto", "src", "dst", "sport", "dport"))
        if key not in self._conntrack:
            table = self.conntrack_table()
            try:
                self._conntrack[key] = {"table": table, "entries": conntrack.flow_entries(hop) if table else None}
            except Exception as exc:  # pylint: disable=broad-except  # context only: it must not cost the finding
                self._conntrack[key] = {"table": table, "entries": None,
                                        "error": "conntrack could not be read: %s" % exc}
        return self._conntrack[key]


def translated(hop):
    """(dst, dport) after the hop's DNAT rule, or None where the hop is no DNAT."""
    match = _DNAT_TO.search(hop.get("rule") or "") if hop.get("table") == "nat" else None
    if match is None:
        return None
    address = match.group("bracketed") or match.group("v4") or match.group("v6")
    return address, int(match.group("port")) if match.group("port") else hop.get("dport")


def held_translation(hop, evidence):
    """(dst, dport) conntrack holds the packet's conversation DNAT'd to, or None. Only a conversation's first packet
    passes the nat hooks: the later ones (and a trace that hooks nothing after prerouting) show the address the
    client used, while the kernel sends them where conntrack says."""
    held = evidence.conntrack(hop) or {}
    for entry in held.get("entries") or []:
        target = (entry["reply"]["src"], entry["reply"]["sport"])
        if entry.get("nat") and target != (entry["orig"]["dst"], entry["orig"]["dport"]):
            return target
    return None


def packet_spec(packet, evidence):
    """The routing lookup of a packet as the kernel makes it: after the DNAT its last hop shows, else after the
    DNAT conntrack holds its conversation to (judged by its real tuple), else as it arrived."""
    hop = packet["hops"][-1]
    if translated(hop) is None:
        moved = held_translation(packet["hops"][0], evidence)
        if moved is not None:
            return route_spec(dict(hop, dst=moved[0], dport=moved[1]))
    return route_spec(hop)


def route_spec(hop):
    """The lookup for a packet as the routing decision saw it (after the hop's DNAT, where it has one), on the
    input path with its arrival interface, with the mark the trace saw on it (policy rules select by mark)."""
    dst, dport = translated(hop) or (hop["dst"], hop.get("dport"))
    spec = {"dst": dst, "src": hop.get("src"), "iif": hop.get("in"), "proto": hop.get("proto"), "dport": dport,
            "sport": hop.get("sport"), "mark": hop.get("mark") or None}
    return {key: value for key, value in spec.items() if value is not None}


def split_directions(packets, port, side=None):
    """(requests, replies): a packet whose first hop carries the traced port on the request's side is a request, the
    other side a reply. That side is `side` where the caller knows it (a probe's: its source port, "sport"), else
    the opener's, the first packet's. Without a port either way every packet is a request."""
    if not packets or not port:
        return list(packets), []
    side = side or _request_side(packets, port)
    requests, replies = [], []
    for packet in packets:
        value = packet["hops"][0].get(side)
        (requests if value is not None and port[0] <= value <= port[1] else replies).append(packet)
    return requests, replies


def _request_side(packets, port):
    """Which port of a request carries the traced one: the opener's side (the probe's source port), "sport" where
    no packet was seen."""
    opener = packets[0]["hops"][0] if packets else {}
    return "dport" if packets and not (opener.get("sport") is not None and port[0] <= opener["sport"] <= port[1]) \
        else "sport"


def deciding(packets):
    """The packet that tells a direction's story: the first that did not pass, else the first. The one definition,
    which the fleet verdict reads too."""
    return next((p for p in packets if p.get("fate") not in PASSED), packets[0] if packets else None)


def explain(packets, port, evidence, side=None):
    """The host's finding: {seen, role, cause, layer, direction, words, evidence, fix, remediable, ruled_out}.

    The layers are read in the packet's order, and the first that establishes a cause decides: the trace (rules,
    policies, conntrack), the routing decision as the packet saw it, the socket it was delivered to, the reply's
    trace, and what comes after the last hook (the way out: link, egress qdisc, neighbour). A host whose trace saw
    nothing says what dropped packets before its first hook (tc ingress), for the fleet to join with the host that
    sent the packet there.

    `side`: which port of a request is `port`, where the caller knows it ("sport" for a probe's source port). A
    probe's first packet need not be the first of the capture: a reply to an earlier probe from the same port (a
    server still retransmitting its SYN-ACK) can come before it."""
    side = side or (_request_side(packets, port) if port else None)
    conversations = _conversations(packets, port) if side == "sport" else []
    if not conversations:
        return _kernel_word(_finding(packets, port, side, evidence), evidence.drops, port, side)
    # A probe's attempts side by side, each its own conversation (source port): each is decided on its own packets,
    # so one that failed is explained even where the others got through (NAT can send each somewhere else). Even
    # one alone is named, so that the fleet knows which of the probe's attempts a host saw.
    drops = evidence.drops
    decided = [(sport, _kernel_word(_finding(group, (sport, sport), side, evidence), None if drops is None else [
        drop for drop in drops if sport in (drop.get("sport"), drop.get("dport"))], (sport, sport), side))
        for sport, group in conversations]
    found = next((each for _sport, each in decided if each["cause"]), decided[0][1])
    found = dict(found, requests=sum(each["requests"] for _sport, each in decided),
                 replies=sum(each["replies"] for _sport, each in decided),
                 conversations=[{"sport": sport, "role": each["role"], "cause": each["cause"], "words": each["words"],
                                 "endpoint": each.get("endpoint")} for sport, each in decided])
    if drops is not None:  # every drop of the flow here, beside the deciding conversation's stance on its own
        found["drop_reasons"] = _directed(drops, port, side)
    service = _service(packets, found["conversations"], evidence)
    if service is not None:
        found["service"] = service
    return found


def _conversations(packets, port):
    """[(source port, its packets)] of a probe's conversations, by the probe's source port: a request's own, a
    reply's destination port; in the order of the ports. One attempt is one conversation too (NAT sent it somewhere)."""
    if not port:
        return []
    grouped = {}
    for packet in packets:
        first = packet["hops"][0]
        sport = first.get("sport") if first.get("sport") is not None and port[0] <= first["sport"] <= port[1] \
            else first.get("dport")
        grouped.setdefault(sport, []).append(packet)
    return sorted(grouped.items(), key=lambda item: (item[0] is None, item[0] or 0))


def _finding(packets, port, side, evidence):
    requests, replies = split_directions(packets, port, side)
    request, reply = deciding(requests), deciding(replies)
    base = {"seen": bool(packets), "requests": len(requests), "replies": len(replies),
            "role": _role(request), "counters": evidence.delta,
            # The TTL the request arrived with (first, where it came again): each router takes one, so it orders
            # the hosts on the way.
            "ttl": max((p["hops"][0]["ttl"] for p in requests if p["hops"][0].get("ttl") is not None), default=None),
            # The request as conntrack holds it (state, NAT, whether a reply came), where conntrack is loaded.
            "conntrack": evidence.conntrack(request["hops"][0]) if request else None,
            # Where NAT sent the request: the endpoint of a service that spreads over several.
            "endpoint": _endpoint(request, evidence) if request else None}
    if request is None:
        return dict(base, cause=None, layer=None, words="the packet was not seen here", direction=None, fix=None,
                    remediable=False, evidence=_before_first_hook(evidence), ruled_out=[])
    story = Story(requests, request, reply, port, evidence)
    for name, detect in DETECTORS:
        decided = detect(story)
        if decided is not None:
            return dict(base, detector=name, **decided)
    proof = dict(story.left or {}, path=request.get("path"))
    return dict(base, cause=None, layer=None, words=_passed(request, evidence), direction="request", fix=None,
                remediable=False, evidence=proof, ruled_out=proof.pop("ruled_out", []))


class Story:
    """What one host's trace holds of one conversation, as the detectors read it: the requests, the deciding request
    and reply, the port and the host's evidence; `left`, the request's way out, read once, when first asked."""

    def __init__(self, requests, request, reply, port, evidence):
        self.requests, self.request, self.reply, self.port, self.evidence = requests, request, reply, port, evidence
        self._left = _UNREAD

    @property
    def left(self):
        if self._left is _UNREAD:
            self._left = _way_out_evidence(self.request, self.evidence) if self.port else None
        return self._left


def _detect_loop(story):
    return _loop(story.requests, story.evidence)


def _detect_stale_nat(story):
    return _stale_nat(story.request, story.evidence)


def _detect_request_stopped(story):
    return _stopped(story.request, "request", story.evidence)


def _detect_listener(story):
    request = story.request
    if request.get("fate") == "delivered_local" or _handed_to_local_stack(request, story.evidence):
        return _listener(request, story.evidence, answered=story.reply is not None)
    return None


def _detect_reply_stopped(story):
    if story.reply is None or story.reply.get("fate") in PASSED:
        return None
    return _stopped(story.reply, "reply", story.evidence)


def _detect_reply_elsewhere(story):
    if story.request.get("fate") != "delivered_local" or story.reply is None:
        return None
    return _reply_elsewhere(story.request, story.reply, story.evidence)


def _detect_request_way_out(story):
    # Traced both ways, and no reply came back: the request's way out decides. Answered or not, it tells the fleet
    # where the request went (Story.left): an answer may have come from a host that should never have had it
    # (another host answering ARP for the address, then resetting the connection).
    if story.left is None or story.reply is not None:
        return None
    return _way_out(story.request, "request", story.left, story.evidence)


def _detect_reply_way_out(story):
    if story.reply is None:
        return None
    return _way_out(story.reply, "reply", _way_out_evidence(story.reply, story.evidence), story.evidence)


# The host's detectors, in the order they are asked: the packet's order, and the first that establishes a cause
# decides. A detector's name is what a cause record's `detector` says (causes.py) and what the finding it decides
# carries; the same detector asked of the reply keeps its name.
DETECTORS = (
    ("loop", _detect_loop),
    ("stale_nat", _detect_stale_nat),
    ("stopped", _detect_request_stopped),
    ("listener", _detect_listener),
    ("stopped", _detect_reply_stopped),
    ("reply_elsewhere", _detect_reply_elsewhere),
    ("way_out", _detect_request_way_out),
    ("way_out", _detect_reply_way_out),
)
# Asked last, on the host's finding: the kernel's own drop reason, where no detector decided (_kernel_word).
KERNEL_WORD = "kernel_word"


def _kernel_word(found, drops, port, side):
    """The kernel's own reasons for the flow's drops here, set beside the finding: they corroborate its cause, or
    name another; where no layer decided and the packet went unanswered (or never reached a hook here), the first
    drop of a request decides (`kernel_drop`)."""
    if drops is None:
        return found
    drops = _directed(drops, port, side)
    found = dict(found, drop_reasons=drops, kernel=None)
    if not drops:
        return found
    cause = causes.CATALOGUE.get(found["cause"])
    if cause is not None:
        found["kernel"] = cause.kernel_stance(drops, found["direction"])
        return found
    requests = [drop for drop in drops if drop["direction"] == "request"]
    unanswered = not found["seen"] or found["cause"] == causes.UNDECIDED or found["replies"] == 0
    if not requests or not unanswered:
        return found
    first = requests[0]
    decided = causes.finding("kernel_drop", "request", dict(found["evidence"], kernel_drop=first), found["ruled_out"],
                             where=causes.reason_words(first["reason"]), dev=first["dev"] or "-",
                             reason=first["reason"], location=first["location"])
    return dict(found, kernel="decides", detector=KERNEL_WORD, **decided)


def _directed(drops, port, side):
    """The drops, each with the direction of the packet it dropped: a request carries the port on its `side`."""
    return [dict(drop, direction="request" if not port or port[0] <= drop[side] <= port[1] else "reply")
            for drop in drops]


def _passed(packet, evidence):
    """Words for a packet that did not stop here. Where no table hooks the next step (fate unknown), the
    routing decision says where it went."""
    if packet["fate"] != "unknown":
        return "passed (%s)" % packet["fate"].replace("_", " ")
    answer, _decision = evidence.route(packet_spec(packet, evidence))
    where = ("hands it to the local stack" if answer.get("type") == "local" else
             "forwards it out of %s" % answer.get("dev") if answer.get("type") == "unicast" else
             "gives a %s route" % answer.get("type"))
    return "the routing decision %s: `%s` (the trace cannot follow it: no table hooks input or forward on this " \
           "host)" % (where, answer.get("ip_route_get"))


def _role(packet):
    if packet is None:
        return "not_seen"
    return packet["fate"] if packet.get("fate") in PASSED else "stopped"


def _stopped(packet, direction, evidence):
    fate = packet.get("fate")
    hop = packet["hops"][-1]
    if fate in ("dropped_by_rule", "dropped_by_policy"):
        facts = {"hop": packet["last_hop"], "rule": (packet.get("dropped_by") or {}).get("rule") or "-"}
        proof = {"last_hop": packet["last_hop"], "rule": facts["rule"], "path": packet.get("path")}
        bridged = _bridged(packet, hop, evidence)
        if bridged is not None:
            return causes.finding("bridge_netfilter_drop", direction, dict(proof, bridged=bridged),
                                  **dict(facts, **bridged))
        if _MATCHES_INVALID.search(facts["rule"]):
            return causes.finding("conntrack_invalid", direction, proof, delta=evidence.delta, **facts)
        if direction == "reply":
            return causes.finding("reply_dropped", direction, proof, **facts)
        if fate == "dropped_by_policy":
            return causes.finding("policy_drop", direction, proof, **facts)
        rejects = hop.get("verdict") == "reject" or _REJECTS.search(facts["rule"])
        return causes.finding("rule_reject" if rejects else "rule_drop", direction, proof, **facts)
    if fate in ("vanished_after", "unknown"):
        full = _conntrack_full(packet, direction, evidence)
        if full is not None:
            return full
    if fate == "vanished_after" and hop.get("hook") == "prerouting" or fate == "unknown":
        return _routing(packet, direction, evidence)
    if fate in PASSED:
        return None
    return causes.undecided(direction, (packet.get("hints") or ["vanished after %s" % packet.get("last_hop")])[0],
                            {"last_hop": packet.get("last_hop"), "path": packet.get("path"),
                             "counters": evidence.delta},
                            ["a rule's DROP or REJECT (the trace shows none)"])


def _bridged(packet, hop, evidence):
    """A packet the firewall saw come in and go out by the same bridge: a frame the bridge forwards between its
    ports, handed to the IP firewall by br_netfilter. {bridge, ports, family_name, sysctl, value, chain} or None."""
    bridge = hop.get("in")
    if not bridge or hop.get("out") != bridge or (evidence.link(bridge) or {}).get("kind") != "bridge":
        return None
    family = family_of(hop.get("dst") or "")
    value = evidence.bridge_netfilter(family)
    # Docker's own place for a person's rules, where the packet went through it; else the chain that dropped it.
    chain = "DOCKER-USER" if any(each.get("chain") == "DOCKER-USER" for each in packet["hops"]) else \
        hop.get("chain") or "FORWARD"
    rule = (packet.get("dropped_by") or {}).get("rule")
    return {"bridge": bridge, "ports": ", ".join(evidence.bridge_ports(bridge)) or "-",
            "family_name": "IPv4" if family == "ipv4" else "IPv6", "value": "-" if value is None else value,
            "sysctl": "bridge-nf-call-" + BRIDGE_NF_TOOL[family], "chain": chain,
            "tool": "iptables" if family == "ipv4" else "ip6tables",
            "dropper": "%s drops it: %s" % (packet["last_hop"], rule) if rule else
            "the policy of %s drops it (no rule of the chain accepted it)" % packet["last_hop"],
            # iptables' rules and policies (the monitors print a rule as `-4 -t filter -A ...`), not nftables'
            "iptables": (rule or "").startswith(("-4 ", "-6 ", "-A "))
            or not rule and packet["last_hop"].endswith(":policy") and hop.get("table") == "filter"}


def _endpoint(packet, evidence):
    """'198.18.20.3:9090': where NAT sends the packet's conversation (its DNAT rule in this pass, else the entry
    conntrack holds), None where it is not translated."""
    hop = packet["hops"][0]
    target = next((found for found in (translated(each) for each in packet["hops"]) if found), None) or \
        held_translation(hop, evidence)
    return None if target is None else "%s:%s" % (target[0], target[1] if target[1] is not None else hop.get("dport"))


def _service(packets, conversations, evidence):
    """Where the probe's conversations were DNAT'd here: the service's endpoints as today's nat rules give them, the
    ones the probe's attempts reached (by source port) and the ones none did, which the verdict cannot speak for.
    None where no conversation was translated or the rules cannot be read."""
    reached = {}
    for each in conversations:
        if each.get("endpoint"):
            reached.setdefault(each["endpoint"], []).append(each["sport"])
    if not reached:
        return None
    sports = set(each["sport"] for each in conversations)
    request = next((p["hops"][0] for p in packets if p["hops"][0].get("sport") in sports), None)
    if request is None or request.get("dport") is None:
        return None
    targets = evidence.nat_targets(request.get("proto"), request["dst"], request["dport"])
    if not targets:
        return None
    endpoints = ["%s:%s" % tuple(target) for target in targets]
    service = {"address": "%s:%s" % (request["dst"], request["dport"]), "endpoints": endpoints, "reached": reached,
               "not_reached": [endpoint for endpoint in endpoints if endpoint not in reached]}
    stale = _stale_conversations(request, targets, sports, evidence)
    if stale:
        service["stale"] = stale
    return service


def _stale_conversations(request, targets, sports, evidence):
    """Other conversations to the service that conntrack holds DNAT'd to an endpoint none of today's rules chooses
    (a client that keeps one source port keeps its entry, and its packets follow it to the gone endpoint): each with
    its tuple, the endpoint it is held to and the command that forgets it. The probe's own are its conversations'."""
    stale = []
    for entry in evidence.service_conversations(request.get("proto"), request["dst"], request["dport"]) or []:
        orig, reply = entry["orig"], entry["reply"]
        held = (reply["src"], reply["sport"])
        if not entry["nat"] or held in [tuple(target) for target in targets] or (
                orig["src"] == request.get("src") and orig["sport"] in sports):
            continue
        fix = causes.fix("conntrack_stale_nat", proto=request.get("proto"), src=orig["src"], dst=orig["dst"],
                         sport=orig["sport"], dport=orig["dport"])
        stale.append({"orig": orig, "held": "%s:%s" % held, "fix": fix})
    return stale


def _stale_nat(packet, evidence):
    """A conversation that conntrack holds DNAT'd to an endpoint today's rules no longer choose: no DNAT rule in this
    pass (only a conversation's first packet meets the nat table), the entry's target, and the targets the rules give
    a new conversation to the same address and port, none of them that one. Its packets follow the old entry as long
    as they keep coming (a UDP client that always sends from one port), whatever happens to them next."""
    hop = packet["hops"][0]
    if any(translated(each) for each in packet["hops"]) or hop.get("dport") is None:
        return None
    held = held_translation(hop, evidence)
    if held is None:
        return None
    targets = evidence.nat_targets(hop.get("proto"), hop["dst"], hop["dport"])
    if not targets or tuple(held) in [tuple(target) for target in targets]:
        return None
    proof = {"last_hop": packet.get("last_hop"), "path": packet.get("path"), "held": list(held),
             "nat_targets": [list(target) for target in targets], "conntrack": evidence.conntrack(hop)}
    return causes.finding("conntrack_stale_nat", "request", proof, proto=hop.get("proto"), src=hop.get("src"),
                          sport=hop.get("sport"), dst=hop["dst"], dport=hop["dport"], held="%s:%s" % held,
                          targets=", ".join("%s:%s" % tuple(target) for target in targets))


def _conntrack_full(packet, direction, evidence):
    """Gone without a verdict while conntrack could not track new flows: its drop counter moved (it counts nothing
    else) and the table is full. Checked before the routing decision, which such a packet never reaches."""
    moved = causes.corroborating("conntrack_full", evidence.delta)
    table = evidence.conntrack_table()
    if not moved.get("NfctDrop") or not table or table["count"] < CONNTRACK_FULL_SHARE * table["max"]:
        return None
    proof = {"last_hop": packet["last_hop"], "path": packet.get("path"), "counters": moved, "table": table}
    return causes.finding("conntrack_full", direction, proof, count=table["count"], max=table["max"])


def _loop(requests, evidence):
    """The same packet traced again with a lower TTL: it left and came back (a retransmission comes with the same
    TTL). Decided before the pass that ran out of TTL, which vanishes at the routing decision for no reason a route
    gives."""
    passes = {}
    for packet in requests:
        for hop in packet["hops"]:
            if hop.get("hook") == "prerouting" and hop.get("ttl") is not None:
                key = tuple(hop.get(field) for field in ("proto", "src", "dst", "sport", "dport"))
                passes.setdefault(key, {}).setdefault(hop["ttl"], hop)
    looping = next((seen for seen in passes.values() if len(seen) > 1), None)
    if looping is None:
        return None
    ttls = sorted(looping, reverse=True)
    again = looping[ttls[1]]  # the first time it came back
    forwarded = next((p for p in requests if p.get("fate") == "forwarded"), None)
    out = next((hop.get("out") for hop in reversed(forwarded["hops"]) if hop.get("out")), None) if forwarded else None
    answer, _decision = evidence.route(route_spec(again))
    proof = {"ttls": ttls, "came_back_on": again.get("in"), "route_lookup": answer,
             "path": forwarded.get("path") if forwarded else None}
    return causes.finding("routing_loop", "request", proof, delta=evidence.delta,
                          ttls=", ".join(str(ttl) for ttl in ttls[:6]) + (", ..." if len(ttls) > 6 else ""),
                          out=out or answer.get("dev"), gateway=answer.get("gateway") or again["dst"])


def _chosen_by(decision, spec):
    """The rule that chose the table, and the mark that made it match where the rule selects by mark."""
    words = "rule `%s`" % decision["rule"]
    if spec.get("mark") and " fwmark " in (decision["rule"] or ""):
        words += " (the packet carries mark 0x%x, set before the routing decision)" % spec["mark"]
    return words


def _routing(packet, direction, evidence):
    """The trace ends at (or cannot follow past) the routing decision: redo it with the packet's addresses as they
    were there (after DNAT), on the input path with its arrival interface and its mark."""
    hop = packet["hops"][-1]
    spec = packet_spec(packet, evidence)
    family = family_of(spec["dst"])
    answer, decision = evidence.route(spec)
    proof = {"last_hop": packet["last_hop"], "path": packet.get("path"), "route_lookup": answer,
             "decision": decision}
    if spec.get("mark"):
        proof["mark"] = spec["mark"]
    destination = spec["dst"]
    if spec["dst"] != hop["dst"]:
        held = translated(hop) is None
        proof["translated_by"] = "conntrack (the conversation's DNAT)" if held else hop.get("rule")
        destination = "%s (%s; the packet came for %s)" % (
            spec["dst"], "where conntrack holds its conversation DNAT'd to" if held else
            "written by %s's DNAT" % packet["last_hop"], hop["dst"])
    facts = {"dst": destination, "src": hop.get("src"), "interface": hop.get("in"), "family": family,
             "table": decision["table"], "rule": decision["rule"], "chosen": _chosen_by(decision, spec),
             "route": (decision["route"] or {}).get("dst") or "-"}
    code = (answer.get("error") or {}).get("errno")
    ruled_out = []
    if decision["type"] in causes.REFUSING_ROUTES:
        return causes.finding(causes.REFUSING_ROUTES[decision["type"]], direction, proof, delta=evidence.delta,
                              **facts)
    ruled_out.append("a blackhole, unreachable or prohibit route (the rules lead to %s)" % (
        "%s in table %s" % (facts["route"], decision["table"]) if decision["type"] else "no route"))
    if decision["type"] is None:
        return causes.finding("no_route", direction, proof, ruled_out, delta=evidence.delta, **facts)
    reverse = (answer.get("error") or {}).get("reverse_path") or {}
    if reverse.get("martian"):  # checked before rp_filter by the kernel, and whatever rp_filter says
        return causes.finding("martian_source", direction, proof, ruled_out, delta=evidence.delta,
                              reason=reverse["martian"], **facts)
    ruled_out.append(("a martian source (%s is no local, loopback or non-unicast address here)" % facts["src"])
                     if reverse else "a martian source (the kernel accepts the lookup)")
    if reverse.get("rejected"):  # redone only where the kernel refused with EXDEV or EINVAL
        return causes.finding("rp_filter", direction, proof, ruled_out, delta=evidence.delta,
                              explanation=reverse["explanation"], **facts)
    ruled_out.append("rp_filter (%s)" % (reverse.get("explanation") or "the kernel accepts the lookup"))
    if decision["type"] == "unicast" and hop.get("in"):
        setting = evidence.sysctl(family, hop["in"], "forwarding")
        proof["forwarding"] = {hop["in"]: setting}
        if setting == 0:
            return causes.finding("forwarding_disabled", direction, proof, ruled_out, delta=evidence.delta,
                                  **facts)
        ruled_out.append("forwarding (on for %s)" % hop["in"])
    if not code and packet.get("fate") == "unknown":
        return None if decision["type"] in ("unicast", "local") else causes.undecided(
            direction, "the routing decision gives a %s route" % decision["type"], proof, ruled_out)
    return causes.undecided(
        direction, "the packet vanished at the routing decision, and the evidence does not say why: the kernel "
                   "answers %s" % ((answer.get("error") or {}).get("message") or "with a route"), proof, ruled_out)


def _next_hop(packet, evidence):
    """Where a packet that went on from this host went next: the interface it left by, the address it was sent to
    (the gateway, or the destination on a link), that neighbour's state and the MAC its entry holds; None for a packet delivered here, or
    where the routing decision sends it nowhere."""
    if packet.get("fate") not in ("forwarded", "sent", "unknown"):
        return None
    hop = packet["hops"][-1]
    spec = packet_spec(packet, evidence)
    answer, decision = evidence.route(spec)
    if answer.get("type") != "unicast":
        return None
    dev = hop.get("out") or answer.get("dev")
    if not dev:
        return None
    family = family_of(spec["dst"])
    gateway = answer.get("gateway") or spec["dst"]
    return {"address": gateway, "dev": dev, "neighbour": evidence.neighbour(family, dev, gateway),
            "lladdr": evidence.lladdr(family, dev, gateway), "route_lookup": answer, "decision": decision}


def _way_out_evidence(packet, evidence):
    """{route_lookup, next_hop, link, interface_counters} of the way a packet left by, or None."""
    next_hop = _next_hop(packet, evidence)
    if next_hop is None:
        return None
    answer, decision = next_hop.pop("route_lookup"), next_hop.pop("decision")
    found = {"route_lookup": answer, "decision": decision, "next_hop": next_hop,
             "link": evidence.link(next_hop["dev"]) or {},
             "interface_counters": evidence.interfaces_moved().get(next_hop["dev"]) or {}}
    arrived = packet["hops"][-1].get("in")
    if packet.get("fate") == "unknown" and arrived:  # the decision the trace could not follow let it through
        family = family_of(packet["hops"][-1]["dst"])
        found["forwarding"] = {arrived: evidence.sysctl(family, arrived, "forwarding")}
    return found


def _way_out(packet, direction, found, evidence):
    """What comes after the last hook for a packet that left this host (or that the routing decision sends out
    where no hook follows), as _way_out_evidence read it: its link, its egress qdisc, its next hop's neighbour entry;
    in the kernel's order (a link without carrier takes nothing; a qdisc that drops also drops the ARP/NDP asking
    for the neighbour)."""
    if found is None:
        return None
    proof = dict(found, last_hop=packet["last_hop"], path=packet.get("path"))
    next_hop, link, moved, answer = found["next_hop"], found["link"], found["interface_counters"], found["route_lookup"]
    dev = next_hop["dev"]
    ruled_out = []
    if link and not (link["admin_up"] and link["carrier"]):
        state = "administratively down" if not link["admin_up"] else "up but has no carrier (operstate %s)" % (
            link["operstate"])
        return causes.finding("link_down", direction, proof, delta=evidence.delta, dev=dev, state=state,
                              admin="down" if not link["admin_up"] else "up", dst=packet["hops"][-1]["dst"],
                              route=answer.get("ip_route_get"))
    ruled_out.append("a link without carrier (%s is up, with carrier)" % dev)
    if moved.get("egress_drops"):
        return causes.finding("qdisc_drop", direction, proof, ruled_out, dev=dev,
                              kind=moved.get("egress_qdisc") or "root", drops=moved["egress_drops"])
    ruled_out.append("the egress qdisc of %s (no drop in the window)" % dev)
    vxlan = _vxlan_remote(next_hop, link, evidence)
    if vxlan is not None and vxlan["remote"] is None:
        return causes.finding("vxlan_no_fdb", direction, dict(proof, vxlan=vxlan), ruled_out, dev=dev,
                              vni=link["vxlan"].get("vni"), port=link["vxlan"].get("port"), mac=vxlan["mac"],
                              whose=vxlan["whose"], dropped="; tx_dropped on %s +%d in the window" % (
                                  dev, moved["tx_dropped"]) if moved.get("tx_dropped") else "")
    if vxlan is not None:  # where it sent the frame: the fleet checks it against the next hop's host's VTEP
        found["vxlan"] = proof["vxlan"] = vxlan
        ruled_out.append("the forwarding database of %s (it sends %s to %s)" % (
            dev, vxlan["mac"], vxlan["remote"]["dst"]))
    if set(next_hop["neighbour"]) & set(UNANSWERED_NEIGHBOUR):
        return causes.finding("neighbour_failed", direction, dict(proof, neighbour={
            "address": next_hop["address"], "dev": dev, "state": next_hop["neighbour"]}), ruled_out,
            delta=evidence.delta, gateway=next_hop["address"], dev=dev,
            state=",".join(name.upper() for name in next_hop["neighbour"]))
    ruled_out.append("an unanswered next hop (the neighbour entry for %s on %s is %s)" % (
        next_hop["address"], dev, ",".join(name.upper() for name in next_hop["neighbour"]) or "absent"))
    found["ruled_out"] = ruled_out  # what the fleet's "ruled out on the way" says of this host
    return None


def _vxlan_remote(next_hop, link, evidence):
    """Where a VXLAN device sends the frame for the next hop: the MAC it goes to (the neighbour entry's, or the
    broadcast of the ARP/NDP request asking for it) and the remote that takes it - the forwarding entry for that MAC,
    else the default one (00:00:00:00:00:00), else the device's own remote or group - with the UDP port and VNI it
    is sent with. `remote` None where there is none: the kernel drops the frame (NO_TX_TARGET) and counts it as the
    device's tx_dropped. {mac, whose, entries, remote: {dst, port, vni} or None}; None for another kind of device."""
    vxlan = link.get("vxlan") if link.get("kind") == "vxlan" else None
    if vxlan is None:
        return None
    known = next_hop.get("lladdr") and set(next_hop["neighbour"]) & set(SENT_WITHOUT_ASKING)
    mac = next_hop["lladdr"].lower() if known else BROADCAST
    entries = evidence.fdb(next_hop["dev"])
    by_mac = {(entry.get("lladdr") or "").lower(): entry for entry in entries}
    entry = by_mac.get(mac) or by_mac.get(DEFAULT_REMOTE) or (
        {"dst": vxlan["group"]} if vxlan.get("group") else None)
    remote = None if entry is None else {"dst": entry.get("dst"), "port": entry.get("port") or vxlan.get("port"),
                                         "vni": entry.get("vni") or vxlan.get("vni")}
    whose = "the MAC the neighbour entry for %s holds" % next_hop["address"] if known else \
        "the broadcast of the request asking for %s" % next_hop["address"]
    return {"mac": mac, "whose": whose, "entries": entries, "remote": remote}


def _before_first_hook(evidence):
    """A host whose trace saw nothing: the interfaces whose tc ingress dropped packets in the window, with their
    addresses, so that the fleet can tell whether the previous host sent the packet there."""
    dropped = []
    for dev, moved in sorted(evidence.interfaces_moved().items()):
        if moved.get("ingress_drops"):
            link = evidence.link(dev) or {}
            dropped.append({"dev": dev, "drops": moved["ingress_drops"], "addresses": evidence.addresses(dev),
                            "xdp": link.get("xdp", False)})
    return {"ingress_drops": dropped} if dropped else {}


def _handed_to_local_stack(packet, evidence):
    """A packet the trace cannot follow past its last hop (nothing hooks input or forward here) that the routing
    decision hands to the local stack: as far as the sockets go, delivered."""
    if packet.get("fate") != "unknown":
        return False
    answer, _decision = evidence.route(packet_spec(packet, evidence))
    return answer.get("type") == "local"


def _listener(packet, evidence, answered):
    """Delivered to the local stack: does anything take its post-NAT address and port, and does it take new
    connections or datagrams (`answered`: a reply of the flow was traced)?"""
    hop = packet["hops"][-1]
    proto = hop.get("proto")
    spec = packet_spec(packet, evidence)  # after the DNAT of its last hop, or of its conversation
    dst, port = spec["dst"], spec.get("dport")
    if proto not in sockets.LISTENING or port is None:
        return None
    takers, nearby = sockets.takers(evidence.listening(), proto, dst, port)
    if takers:
        if answered:
            return None
        return (_accept_queue_full if proto == "tcp" else _receive_buffer_full)(packet, takers, evidence)
    answer = "with a TCP reset" if proto == "tcp" else "with ICMP port unreachable"
    elsewhere = sorted(set(s["address"] for s in nearby if s["proto"] == proto and s["port"] == port))
    instead = " (the service listens on %s only)" % ", ".join(elsewhere) if elsewhere else ""
    proof = {"last_hop": packet["last_hop"], "path": packet.get("path"), "listening_instead": nearby,
             "note": "counters are shared by all traffic of the namespace; a v6 wildcard socket is counted as taking "
                     "IPv4 too (v6-only is not in the kernel's tables)"}
    return causes.finding("no_listener", "request", proof, delta=evidence.delta, proto=proto, dst=dst,
                          port=port, answer=answer, instead=instead)


def _accept_queue_full(packet, takers, evidence):
    """A listener takes it, nothing answered, and the kernel dropped SYNs for a full accept queue in the window: the
    counter is the namespace's, so the listener that takes this packet must hold connections it has not accepted."""
    moved = causes.corroborating("accept_queue_full", evidence.delta)
    waiting = [socket for socket in takers if socket["queued"]]
    if not moved.get("TcpExtListenOverflows") or not waiting:
        return None
    hop = packet["hops"][-1]
    proof = {"last_hop": packet["last_hop"], "path": packet.get("path"), "listeners": waiting, "counters": moved,
             "note": "counters are shared by all traffic of the namespace; the accept queue is read after the probe"}
    return causes.finding("accept_queue_full", "request", proof, dst=hop["dst"], port=hop["dport"],
                          queued=sum(socket["queued"] for socket in waiting), overflows=moved["TcpExtListenOverflows"])


def _receive_buffer_full(packet, takers, evidence):
    """A udp socket takes it, nothing answered, the kernel counted datagrams dropped for a full receive buffer in
    the window, and the socket that takes this one holds unread data and has dropped datagrams itself (its own
    `drops` column, which no other socket shares)."""
    moved = causes.corroborating("udp_receive_buffer_full", evidence.delta)
    errors = moved.get("UdpRcvbufErrors", 0) + moved.get("Udp6RcvbufErrors", 0)
    full = [socket for socket in takers if socket.get("drops")]
    if not errors or not full:
        return None
    hop = packet["hops"][-1]
    proof = {"last_hop": packet["last_hop"], "path": packet.get("path"), "sockets": full, "counters": moved,
             "note": "counters are shared by all traffic of the namespace; the socket's drops are its own since it "
                     "was opened"}
    return causes.finding("udp_receive_buffer_full", "request", proof, dst=hop["dst"], port=hop["dport"],
                          queued=sum(socket["queued"] for socket in full),
                          drops=sum(socket["drops"] for socket in full), errors=errors)


def _reply_elsewhere(request, reply, evidence):
    arrived = next((hop.get("in") for hop in request["hops"] if hop.get("in")), None)
    left = next((hop.get("out") for hop in reversed(reply["hops"]) if hop.get("out")), None)
    if not arrived or not left or arrived == left:
        return None
    first = reply["hops"][0]
    answer, _decision = evidence.route({"dst": first["dst"]})
    proof = {"request_in": arrived, "reply_out": left, "route_back": answer, "path": reply.get("path")}
    return causes.finding("reply_routed_elsewhere", "reply", proof, out=left, in_=arrived, dst=first["dst"],
                          route=answer.get("ip_route_get") or (answer.get("error") or {}).get("message"))
