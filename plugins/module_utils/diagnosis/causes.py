# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cause catalogue: every way the engine can say a packet died, one record each: its id, the layer where the
packet died, the evidence that establishes it, its words, the counters that corroborate it, its fix and whether
packetpath_remediate=true may apply that fix. One place: the host's finding (diagnosis/finding.py holds one detector per
layer), the fleet verdict, the report and the docs' table read it.

A fix is data (a module and its arguments). `remediable` fixes are applied as they are by diagnose_port's
packetpath_remediate=true; the others are suggestions, because applying them would change what an operator chose (a rule,
a route, a listener).
"""

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

from ansible_collections.packetpath.linux.plugins.module_utils._common.addresses import IPV6, family_of

INTERFACE_SYSCTL = "packetpath.linux.interface_sysctl"
COMMAND = "ansible.builtin.command"
UNDECIDED = "undecided"
# The fleet's word where the probe failed and no traced host saw its packets: they died before the first traced host
# (or on a host not traced), so no host can be named.
NOT_SEEN = "not_seen"

# Where on its way through a host the packet died, in the order the packet meets them (and the host reads them).
LAYERS = ("trace", "routing", "after_routing", "before_first_hook", "socket", "kernel")
# The kernel's drop reasons in words, for a drop no other layer explains (the kernel's own name goes beside them).
# A reason not listed here is reported by its name.
REASON_WORDS = {
    "TC_INGRESS": "at tc ingress (a tc filter or program)", "TC_EGRESS": "at tc egress (a tc filter or program)",
    "XDP": "in an XDP program", "QDISC_DROP": "in the egress qdisc", "NETFILTER_DROP": "in netfilter",
    "NO_SOCKET": "because no socket takes it", "SOCKET_RCVBUFF": "because the socket's receive buffer is full",
    "TCP_LISTEN_OVERFLOW": "because the listener's accept queue is full", "IP_RPFILTER": "by reverse-path filtering",
    "NEIGH_FAILED": "because the next hop does not answer ARP/NDP", "IP_INHDR": "for a bad IP header or TTL",
    "IP_INNOROUTES": "for want of a route", "IP_OUTNOROUTES": "for want of a route",
    "OTHERHOST": "as addressed to another MAC (the sender's neighbour entry for this host's address holds another MAC)",
    "PKT_TOO_BIG": "as too big for the path", "CPU_BACKLOG": "because the CPU's backlog is full",
    # Below the routing table: the setting each points at (docs/drop_reasons.md), where no join of the fleet named it.
    "IPV6DISABLED": "because IPv6 is disabled on the interface (net.ipv6.conf.<dev>.disable_ipv6 = 1)",
    "DEV_READY": "because the device is not up",
    "NO_TX_TARGET": "because the device has nowhere to send it (a VXLAN device without a remote for the frame)",
    "VXLAN_VNI_NOT_FOUND": "because no VXLAN device here takes the frame's VNI",
    "BRIDGE_INGRESS_STP_STATE": "because the bridge port it came in by is not forwarding (its STP state)",
    "BPF_CGROUP_EGRESS": "by a cgroup eBPF program on the way out", "SOCKET_FILTER": "by a socket filter (BPF)",
}


def _loose_rp_filter(facts):
    return {"module": INTERFACE_SYSCTL, "why": "loose reverse-path filtering",
            "args": {"interfaces": [facts["interface"]], "settings": {"rp_filter": 2}, "persistent": "present"}}


def _forwarding_on(facts):
    key = "forwarding" if facts.get("family", "ipv4") == "ipv4" else "ipv6.forwarding"
    return {"module": INTERFACE_SYSCTL, "why": "forwarding on the arrival interface",
            "args": {"interfaces": [facts["interface"]], "settings": {key: 1}, "persistent": "present"}}


def _delete_route(facts):
    if not facts.get("table"):
        return None  # a rule refused it by itself: the rule is named in the words
    return {"module": COMMAND, "why": "remove or replace the refusing route (suggested only: it was put there on "
                                      "purpose or by mistake, which only its owner knows)",
            "args": {"argv": ["ip", "-6" if facts.get("family") == "ipv6" else "-4", "route", "del",
                              facts["route"], "table", str(facts["table"])]}}


def _forget_conversation(facts):
    why = "forget the conversation's entry, so that its next packet meets today's rules (suggested only: conntrack " \
          "from conntrack-tools; the client's other conversations are untouched)"
    return {"module": COMMAND, "why": why,
            "args": {"argv": ["conntrack", "-D", "-p", facts["proto"], "--orig-src", facts["src"], "--orig-dst",
                              facts["dst"], "--sport", str(facts["sport"]), "--dport", str(facts["dport"])]}}


def _raise_conntrack_max(facts):
    return {"module": COMMAND, "why": "raise the machine's conntrack limit (suggested only: it is machine-wide and "
                                      "costs kernel memory; first find what filled the table)",
            "args": {"argv": ["sysctl", "-w", "net.netfilter.nf_conntrack_max=%d" % (2 * facts["max"])]}}


def _neighbour_to_holder(facts):
    family = "-6" if family_of(facts["address"]) == IPV6 else "-4"
    if facts.get("permanent"):
        why = "point the static entry at the MAC %s's %s has (suggested only: it was set by hand or by a tool that " \
              "may set it again)" % (facts["owner"], facts["owner_dev"])
        return {"module": COMMAND, "why": why,
                "args": {"argv": ["ip", family, "neigh", "replace", facts["address"], "lladdr", facts["mac"], "dev",
                                  facts["dev"], "nud", "permanent"]}}
    return {"module": COMMAND, "why": "forget the entry, so that ARP/NDP learns the MAC again (suggested only)",
            "args": {"argv": ["ip", family, "neigh", "del", facts["address"], "dev", facts["dev"]]}}


def _accept_bridged(facts):
    if not facts.get("iptables"):
        return None  # an nftables ruleset: the words name the chain and the rule
    why = "accept what %s bridges before the drop (suggested only: Docker's documented place is DOCKER-USER; where " \
          "nothing on this host needs to filter bridged frames, net.bridge.%s = 0 in its namespace instead)" % (
              facts["bridge"], facts["sysctl"])
    return {"module": COMMAND, "why": why,
            "args": {"argv": [facts["tool"], "-I", facts["chain"], "-i", facts["bridge"], "-o", facts["bridge"], "-j",
                              "ACCEPT"]}}


def _fdb_entry(facts):
    if not facts.get("remote"):
        return None  # the remote VTEP is known only where its host is in the run (diagnosis/next_hop.py)
    why = "give %s a remote for %s: %s's VTEP (suggested only: the overlay's agent, flannel or Calico, owns these " \
          "entries; find why it did not write it)" % (facts["dev"], facts["entry_mac"], facts["owner"])
    return {"module": COMMAND, "why": why,
            "args": {"argv": ["bridge", "fdb", "append", facts["entry_mac"], "dev", facts["dev"], "dst",
                              facts["remote"]]}}


def _fdb_remote(facts):
    if facts["differs"] != "the address differs":
        return None  # a port or VNI is the device's: recreated by whoever made it (the overlay's agent)
    why = "send %s to %s's VTEP (suggested only: the overlay's agent, flannel or Calico, owns these entries)" % (
        facts["mac"], facts["owner"])
    return {"module": COMMAND, "why": why,
            "args": {"argv": ["bridge", "fdb", "replace", facts["mac"], "dev", facts["dev"], "dst", facts["vtep"]]}}


def _answer_arp(facts):
    return {"module": INTERFACE_SYSCTL,
            "why": "answer ARP for %s on %s (suggested only: arp_ignore is set on purpose where the address is a "
                   "service address several hosts hold, LVS-DR or anycast; then route it via %s's own address on the "
                   "link instead)" % (facts["address"], facts["link_dev"], facts["owner"]),
            "args": {"interfaces": [facts["link_dev"]] + (["all"] if facts.get("all_ignores") else []),
                     "settings": {"arp_ignore": 0}, "persistent": "present"}}


def _arp_filter_off(facts):
    better = "; the better fix is the route: %s takes part of %s's subnet by another interface" % (
        facts["route"], facts["link_dev"]) if facts.get("route") else ""
    return {"module": INTERFACE_SYSCTL,
            "why": "answer ARP on %s whichever way the route back goes (suggested only: arp_filter is set on purpose on "
                   "a host with several interfaces on one subnet%s)" % (facts["link_dev"], better),
            "args": {"interfaces": [facts["link_dev"]] + (["all"] if facts.get("all_filters") else []),
                     "settings": {"arp_filter": 0}, "persistent": "present"}}


def _proxy_arp_on(facts):
    return {"module": INTERFACE_SYSCTL,
            "why": "answer ARP on %s for the gateway nobody holds, as Calico sets on its veths (at runtime only: the "
                   "veth lives as long as its pod, and the network plugin that made it sets it on the next one)"
                   % facts["link_dev"],
            "args": {"interfaces": [facts["link_dev"]], "settings": {"proxy_arp": 1}, "persistent": "ignore"}}


def _ipv6_on(facts):
    return {"module": INTERFACE_SYSCTL,
            "why": "turn IPv6 back on on %s (suggested only: then add its IPv6 addresses again, which the kernel removed "
                   "when it was turned off, by bringing the interface up again with the tool that configures it; and "
                   "find what turned it off, a sysctl.d file or the ipv6.disable_ipv6 boot parameter, before it "
                   "does so again)" % facts["link_dev"],
            "args": {"interfaces": [facts["link_dev"]], "settings": {"ipv6.disable_ipv6": 0}, "persistent": "ignore"}}


def _link_up(facts):
    if facts.get("admin") != "down":
        return None  # no carrier: the cable, the peer or the switch port, which no command here fixes
    return {"module": COMMAND, "why": "bring the interface up (suggested only: someone may have set it down on "
                                      "purpose)",
            "args": {"argv": ["ip", "link", "set", "dev", facts["dev"], "up"]}}


@dataclass(frozen=True)
class Cause:
    id: str
    layer: str  # one of LAYERS
    evidence: str  # what establishes it, as the docs' table says
    words: str  # filled from the finding's facts with str.format
    # The detector that names it: one of the host's (finding.DETECTORS, finding.KERNEL_WORD) or one of the fleet's
    # joins (verdict.UNDECIDED_JOINS, verdict.UNANSWERED_JOINS); their order is the cause's precedence.
    detector: str
    counters: Tuple[str, ...] = ()  # nstat names that corroborate it where they move in the window
    fix: Optional[Callable] = None  # facts -> {module, why, args}, or None where a person must look
    remediable: bool = False  # packetpath_remediate=true applies the fix as it is
    route_type: Optional[str] = None  # the route (or rule) type whose decision this cause is
    # The kernel's drop reasons (skb:kfree_skb, as the kernel names them; REASON:function where the reason alone is
    # too general) that corroborate it where bpftrace reads them: as seen in its incident lab on Linux 6.18.
    drop_reasons: Tuple[str, ...] = ()
    # The host answers the packet (a TCP reset, an ICMP error): the probe must have got an answer for the cause to
    # stand (a probe whose failed attempts all timed out contradicts it).
    answers: bool = False

    def corroborated_by(self, drop):
        return drop["reason"] in self.drop_reasons or "%s:%s" % (drop["reason"], drop["location"]) in self.drop_reasons

    def kernel_stance(self, drops, direction):
        """How the kernel's drops stand to this cause, in the direction it speaks of (a retransmission's drop is
        another story): "corroborates", "names another reason", or None where it said nothing there."""
        mine = [drop for drop in drops if drop.get("direction") == direction]
        if any(self.corroborated_by(drop) for drop in mine):
            return "corroborates"
        return "names another reason" if mine and self.drop_reasons else None


_UNREACH = ("IcmpOutDestUnreachs", "Icmp6OutDestUnreachs")
# What the kernel says of a packet a route refused (6.18: ip_error for IPv4, ip6_pkt_prohibit/ip6_pkt_discard for IPv6).
_REFUSED_BY_ROUTE = ("NOT_SPECIFIED:ip_error", "IP_INNOROUTES", "IP_OUTNOROUTES")
# A packet left waiting for a neighbour that never answers: NEIGH_FAILED (IPv6 says NOT_SPECIFIED there). A link
# without carrier, or a qdisc that drops the ARP/NDP requests, ends the same way.
_NEXT_HOP_UNANSWERED = ("NEIGH_FAILED", "NEIGH_QUEUEFULL", "NOT_SPECIFIED:neigh_invalidate")

CATALOGUE = {cause.id: cause for cause in (
    Cause("rule_drop", "trace", "the trace's last hop is a rule whose verdict is DROP",
          "dropped by {hop}: {rule}",
          detector="stopped", drop_reasons=("NETFILTER_DROP",)),
    Cause("rule_reject", "trace", "the trace's last hop is a rule whose verdict is REJECT",
          "rejected by {hop}: {rule}",
          detector="stopped", drop_reasons=("NETFILTER_DROP",), answers=True),
    Cause("policy_drop", "trace", "the trace's last hop is a chain's policy DROP",
          "dropped by the policy of {hop}: no rule of the chain accepted it",
          detector="stopped", drop_reasons=("NETFILTER_DROP",)),
    Cause("reply_dropped", "trace", "the reply's trace ends at a rule or policy DROP/REJECT",
          "the reply is dropped: {hop}: {rule}",
          detector="stopped", drop_reasons=("NETFILTER_DROP",)),
    Cause("bridge_netfilter_drop", "trace", "the trace's last hop is a rule or policy DROP/REJECT of a packet that "
                                            "came in and goes out by the same bridge: a frame the bridge forwards "
                                            "between its ports, handed to the IP firewall by br_netfilter "
                                            "(net.bridge.bridge-nf-call-iptables or -ip6tables = 1)",
          "{bridge} bridges the packet (a frame between its ports {ports}), and br_netfilter hands bridged "
          "{family_name} to the IP firewall (net.bridge.{sysctl} = {value}), where {dropper}",
          detector="stopped", fix=_accept_bridged, drop_reasons=("NETFILTER_DROP",)),
    Cause("conntrack_invalid", "trace", "the trace's last hop is a rule that drops what conntrack classified INVALID "
                                        "(ctstate INVALID, ct state invalid)",
          "conntrack classified the packet INVALID (it fits no conversation conntrack saw begin) and {hop} drops "
          "such packets: {rule}", detector="stopped", counters=("NfctInvalid",),
          drop_reasons=("NETFILTER_DROP",)),
    Cause("conntrack_stale_nat", "trace", "conntrack holds the packet's conversation DNAT'd to an endpoint that none "
                                          "of today's nat rules gives a new conversation to the same address and "
                                          "port (no DNAT rule in this pass: only a conversation's first packet "
                                          "meets the nat table)",
          "conntrack still holds this conversation ({proto} {src}:{sport} to {dst}:{dport}) DNAT'd to {held}, which "
          "the rules no longer choose (a new conversation goes to {targets}): the entry outlives the endpoint, and "
          "every packet of the conversation follows it as long as they keep coming",
          detector="stale_nat", fix=_forget_conversation),
    Cause("conntrack_full", "trace", "the packet vanished without a rule's verdict, conntrack's own drop counter "
                                     "(NfctDrop: it could not track a new flow) moved in the window, and the table is "
                                     "at least 90% full",
          "the conntrack table is full ({count} of {max}): new flows are dropped",
          detector="stopped", counters=("NfctDrop", "NfctEarlyDrop"),
          fix=_raise_conntrack_max,
          drop_reasons=("NETFILTER_DROP",)),
    Cause("rp_filter", "routing", "the trace ends at the routing decision; the kernel refuses the input lookup "
                                  "(EXDEV; EINVAL on newer kernels) and the route back to the source leaves by another "
                                  "interface (or none)",
          "{explanation}",
          detector="stopped", counters=("TcpExtIPReversePathFilter",), fix=_loose_rp_filter, remediable=True,
          drop_reasons=("IP_RPFILTER",)),
    Cause("blackhole_route", "routing", "the trace ends at the routing decision; the rules (with the packet's mark, "
                                        "tos and arrival interface) lead to a blackhole route",
          "the routing decision drops it: {route} in table {table}, chosen by {chosen}",
          detector="stopped", fix=_delete_route,
          route_type="blackhole",
          drop_reasons=_REFUSED_BY_ROUTE),
    Cause("unreachable_route", "routing", "the trace ends at the routing decision; the rules (with the packet's "
                                          "mark, tos and arrival interface) lead to an unreachable route",
          "the routing decision refuses it (host unreachable): {route} in table {table}, chosen by {chosen}",
          detector="stopped", counters=_UNREACH, fix=_delete_route, route_type="unreachable",
          drop_reasons=_REFUSED_BY_ROUTE),
    Cause("prohibit_route", "routing", "the trace ends at the routing decision; the rules (with the packet's mark, "
                                       "tos and arrival interface) lead to a prohibit route",
          "the routing decision refuses it (administratively prohibited): {route} in table {table}, chosen by "
          "{chosen}", detector="stopped", counters=_UNREACH, fix=_delete_route, route_type="prohibit",
          drop_reasons=_REFUSED_BY_ROUTE),
    Cause("no_route", "routing", "the trace ends at the routing decision; no table the policy rules lead to covers "
                                 "the destination",
          "no route to {dst}: no table the policy rules lead to covers it",
          detector="stopped", counters=("IpExtInNoRoutes", "IpOutNoRoutes", "Ip6InNoRoutes", "Ip6OutNoRoutes"),
          drop_reasons=("IP_INNOROUTES", "IP_OUTNOROUTES")),
    Cause("forwarding_disabled", "routing", "the trace ends at the routing decision for a packet to another host; "
                                            "the route is unicast and forwarding is off on the arrival interface",
          "forwarding is off on {interface} (net.{family}.conf.{interface}.forwarding = 0): the packet for {dst} "
          "arrived there and may not be forwarded", detector="stopped", counters=("IpInAddrErrors", "Ip6InAddrErrors"),
          fix=_forwarding_on, remediable=True,
          drop_reasons=("IP_INADDRERRORS",)),
    # seen here: a local source moves no counter (the martian-source lab)
    Cause("martian_source", "routing", "the trace ends at the routing decision; the kernel refuses the input lookup, "
                                       "and the source is an address of this host (accept_local off), a loopback "
                                       "address (route_localnet off) or no unicast address",
          "the kernel drops it as a martian source on {interface}: {reason}",
          detector="stopped", drop_reasons=("IP_LOCAL_SOURCE", "IP_INVALID_SOURCE", "IP_LOCALNET")),
    Cause("routing_loop", "routing", "the same packet (addresses, ports) is traced arriving again with a lower TTL: "
                                     "it left this host and came back",
          "the packet comes back: it arrives again with a lower TTL each time (TTL {ttls}) and leaves by {out} toward "
          "{gateway} again, a routing loop; it dies where its TTL runs out (ICMP time exceeded)",
          detector="loop", counters=("IcmpOutTimeExcds", "Icmp6OutTimeExcds", "IpInHdrErrors", "Ip6InHdrErrors"),
          drop_reasons=("IP_INHDR:ip_forward",)),
    Cause("link_down", "after_routing", "the packet passed (or the routing decision sends it) out of an interface "
                                        "that is down or has no carrier; the route is still there (flagged linkdown)",
          "{dev} is {state}: the route {route} still sends the packet for {dst} there, into a dead link",
          detector="way_out", counters=("IpOutDiscards", "Ip6OutDiscards"), fix=_link_up,
          drop_reasons=_NEXT_HOP_UNANSWERED),
    Cause("neighbour_failed", "after_routing", "the packet (a request or a reply, sent or forwarded) left for a next "
                                               "hop whose neighbour entry is FAILED or INCOMPLETE",
          "the next hop {gateway} on {dev} does not answer ARP/NDP (neighbour state {state})",
          detector="way_out", counters=_UNREACH,
          drop_reasons=_NEXT_HOP_UNANSWERED),
    Cause("vxlan_no_fdb", "after_routing", "the packet left by a VXLAN device whose forwarding database has no "
                                           "entry for the MAC the frame goes to (the next hop's, or the broadcast of "
                                           "the ARP/NDP request for it), no default remote (00:00:00:00:00:00) and "
                                           "the device no remote or group of its own",
          "{dev} (VXLAN {vni}, port {port}) has no forwarding entry for {mac} ({whose}) and no default remote: the "
          "kernel has nowhere to send the encapsulated frame and drops it{dropped}", detector="way_out", fix=_fdb_entry,
          # NO_TX_TARGET in vxlan_xmit on 6.18; earlier 6.x kernels call it VXLAN_NO_REMOTE.
          drop_reasons=("NO_TX_TARGET", "VXLAN_NO_REMOTE")),
    Cause("vxlan_remote_mismatch", "after_routing", "the packet left by a VXLAN device whose remote for the next "
                                                    "hop's MAC (address, UDP port, VNI) is not where the fleet's host "
                                                    "holding the next hop's address takes VXLAN (its device's local "
                                                    "address, port and VNI)",
          "{dev} sends the frame for {address} ({mac}) to {sent}, but {owner}'s {owner_dev} takes VXLAN at "
          "{expected} ({differs}): the encapsulated frame reaches no VXLAN device there",
          detector="vxlan_mismatch", fix=_fdb_remote,
          # The holder drops the UDP datagram (no socket on the port, or no device for the VNI), outside the flow.
          drop_reasons=()),
    Cause("neighbour_wrong_lladdr", "after_routing", "the packet left for a next hop whose neighbour entry holds a "
                                                     "MAC (static, or not yet asked again) that none of the "
                                                     "interfaces of the fleet's host holding the next hop's address "
                                                     "has; that host's hooks saw nothing",
          "the neighbour entry for {address} on {dev} is {state} with MAC {lladdr}, but {address} is {owner}'s "
          "{owner_dev}, whose MAC is {mac}{elsewhere}: the frames go to a MAC {owner} does not have, and it drops "
          "them as not its own", detector="wrong_lladdr", fix=_neighbour_to_holder,
          # The holder's kernel (not the sender's) says it: the frame is for another MAC.
          drop_reasons=("OTHERHOST",)),
    Cause("duplicate_address", "after_routing", "the packet left for a next hop whose neighbour entry another host "
                                                "answered for (REACHABLE: an ARP/NDP answer lately; or, in any state, "
                                                "the answers to the request came through it) with a MAC that none of "
                                                "the interfaces of the fleet's host holding the address has, or the "
                                                "holder's own copy failed duplicate address detection (dadfailed)",
          "{address} is {owner}'s {owner_dev} (MAC {mac}), but another host on the link answers ARP/NDP for it: "
          "{sender}'s neighbour entry for it on {dev} is {state} with MAC {lladdr}{elsewhere}, so the packets go "
          "there{answered}{dad}. Find the host with MAC {lladdr} and take the address off it{redo}",
          detector="wrong_lladdr"),
    Cause("arp_ignored", "after_routing", "the packet waited for a next hop that never answered ARP (FAILED or "
                                          "INCOMPLETE), and the fleet's host holding that address ignores the "
                                          "request: arp_ignore 1 or 2 on the interface asked with the address on "
                                          "another interface (an LVS-DR or anycast address on the loopback), or "
                                          "arp_ignore 8",
          "{asker} asks for {address} by ARP on {dev} and gets no answer (neighbour state {state}): {why}",
          detector="ignores_arp", fix=_answer_arp, drop_reasons=_NEXT_HOP_UNANSWERED),
    Cause("arp_filtered", "after_routing", "the packet waited for a next hop that never answered ARP (FAILED or "
                                           "INCOMPLETE), the fleet's host holding that address has arp_filter on the "
                                           "interface asked, and its kernel counted ARP requests refused by it in "
                                           "the window (TcpExtArpFilter): its route back to the asker leaves by "
                                           "another interface",
          "{asker} asks for {address} by ARP on {dev} and gets no answer (neighbour state {state}): {owner} has "
          "arp_filter = 1 on {link_dev}, which answers only where the route back to the asker leaves by {link_dev}, "
          "and {back}; its kernel refused {refused} ARP request(s) so in the window (TcpExtArpFilter)",
          detector="filters_arp", counters=("TcpExtArpFilter",), fix=_arp_filter_off,
          drop_reasons=_NEXT_HOP_UNANSWERED),
    Cause("proxy_arp_off", "after_routing", "the packet waited for a next hop that never answered ARP (FAILED or "
                                            "INCOMPLETE), no host of the fleet holds that address, and the fleet's "
                                            "host at the other end of the link (it routes the asker's address there "
                                            "by an interface that holds no address, as a Calico node does to each "
                                            "pod) forwards with proxy_arp off on that interface",
          "{asker} asks for {address} by ARP on {dev} and gets no answer (neighbour state {state}): no host holds "
          "{address}, and {owner}'s {link_dev}, the other end of that link (it routes {routed} there and holds no "
          "address on it), answers for a gateway nobody holds only by proxy ARP, which is off there (proxy_arp = 0)",
          detector="unproxied", fix=_proxy_arp_on, remediable=True, drop_reasons=_NEXT_HOP_UNANSWERED),
    Cause("ipv6_disabled", "after_routing", "the packet waited for a next hop that never answered NDP (FAILED or "
                                            "INCOMPLETE), no host of the fleet holds that address, and exactly one "
                                            "host of the fleet on that link (an IPv4 subnet its interface shares with "
                                            "the asker's says so) has IPv6 disabled on its interface there "
                                            "(disable_ipv6 = 1)",
          "{asker} asks for {address} by NDP on {dev} and gets no answer (neighbour state {state}): no host holds "
          "{address}, and {owner}'s {link_dev}, on that link ({shared}), has IPv6 disabled (disable_ipv6 = 1): the "
          "kernel took its IPv6 addresses away and drops every IPv6 packet that comes in there, the neighbour "
          "solicitations too{discarded}",
          detector="ipv6_off", counters=("Ip6InDiscards",), fix=_ipv6_on,
          # The owner's kernel says IPV6DISABLED for the solicitation (not the probe's flow, so bpftrace's filter
          # rarely shows it); the asker's gives up on the neighbour.
          drop_reasons=("IPV6DISABLED",) + _NEXT_HOP_UNANSWERED),
    Cause("qdisc_drop", "after_routing", "the packet passed the last hook out of an interface whose egress qdisc "
                                         "dropped packets in the window (its drop counter moved)",
          "the {kind} qdisc on {dev} (egress) dropped {drops} packet(s) in the window: tc holds what netfilter let "
          "through",
          detector="way_out", drop_reasons=("QDISC_DROP", "QDISC_OVERLIMIT") + _NEXT_HOP_UNANSWERED),
    Cause("tc_ingress_drop", "before_first_hook", "no hook of this host saw the packet, the previous host sent it to "
                                                  "an address of this host, and the ingress (clsact) qdisc of that "
                                                  "address's interface dropped packets in the window",
          "tc ingress on {dev} dropped {drops} packet(s) in the window, before netfilter's first hook: a tc filter "
          "(an eBPF or tc program of a CNI, a policer) drops the packet for {dst}",
          detector="before_first_hook", drop_reasons=("TC_INGRESS",)),
    Cause("no_listener", "socket", "the packet was delivered to the local stack and no socket listens on its "
                                   "(post-NAT) address and port",
          "nothing listens on {proto} {dst} port {port}{instead}: the host answers {answer}",
          detector="listener", counters=("TcpOutRsts", "UdpNoPorts", "Udp6NoPorts") + _UNREACH,
          drop_reasons=("NO_SOCKET",), answers=True),
    Cause("accept_queue_full", "socket", "the SYN was delivered to the local stack and nothing answered it; a socket "
                                         "listens on its (post-NAT) address and port, its accept queue holds "
                                         "connections not yet accepted, and the kernel's ListenOverflows counter "
                                         "moved in the window",
          "the listener on tcp {dst} port {port} takes no new connection: its accept queue is full ({queued} "
          "waiting to be accepted), so the kernel drops the SYN (ListenOverflows +{overflows}); the service does "
          "not accept() fast enough, or its listen() backlog is too small (capped by net.core.somaxconn)",
          # ListenOverflows: a SYN or handshake's last ACK dropped because the accept queue was full; ListenDrops
          # counts it too, with the listen path's other drops.
          detector="listener", counters=("TcpExtListenOverflows", "TcpExtListenDrops"),
          drop_reasons=("TCP_LISTEN_OVERFLOW",)),
    Cause("udp_receive_buffer_full", "socket", "the datagram was delivered to the local stack and nothing answered "
                                               "it; a socket takes its (post-NAT) address and port, holds unread "
                                               "data and counts drops, and the kernel's RcvbufErrors counter moved "
                                               "in the window",
          "the udp socket on {dst} port {port} does not read: its receive buffer is full ({queued} bytes unread, "
          "{drops} datagrams dropped by the socket), so the kernel drops the datagram (RcvbufErrors +{errors})",
          detector="listener", counters=("UdpRcvbufErrors", "Udp6RcvbufErrors", "UdpInErrors", "Udp6InErrors"),
          drop_reasons=("SOCKET_RCVBUFF",)),
    Cause("kernel_drop", "kernel", "no other layer says where the packet died, and the kernel's own drop reason "
                                   "for the flow's packet in this namespace does (skb:kfree_skb, read by bpftrace)",
          "the kernel dropped it {where} on {dev} ({reason}, {location})", detector="kernel_word"),
    Cause("reply_routed_elsewhere", "routing", "the request arrived on one interface and the reply left by another",
          "the reply leaves by {out} (route back to {dst}: {route}), not by {in_} where the request came from",
          detector="reply_elsewhere"),
)}
REFUSING_ROUTES = {cause.route_type: cause.id for cause in CATALOGUE.values() if cause.route_type}


# What a host's finding says of the cause, as its row shows it (a join of the fleet sets them all on the row it blames).
FINDING_KEYS = ("cause", "layer", "direction", "words", "evidence", "fix", "remediable", "ruled_out")


def decide(row, found, detector):
    """A fleet join's finding written on the row it blames, with the join's name (what the cause record says)."""
    row.update((key, found[key]) for key in FINDING_KEYS)
    row["detector"] = detector


def reason_words(reason):
    return REASON_WORDS.get(reason, "for the reason the kernel calls %s" % reason)


def corroborating(cause_id, delta):
    """The moved counters that speak for the cause: counters corroborate, they do not prove (every packet of the
    namespace shares them)."""
    return {name: delta[name] for name in CATALOGUE[cause_id].counters if name in delta}


def fix(cause_id, **facts):
    """The structured fix for a cause, or None where there is nothing to do on this host but look at what the words
    name."""
    cause = CATALOGUE[cause_id]
    found = cause.fix(facts) if cause.fix else None
    return None if found is None else dict(found, remediable=cause.remediable)


def finding(cause_id, direction, evidence, ruled_out=(), delta=None, **facts):
    """A host's finding for a cause: its id, layer, words, the evidence (with the corroborating counters where the
    window's `delta` is given), the fix."""
    cause = CATALOGUE[cause_id]
    if delta is not None:
        evidence = dict(evidence, counters=corroborating(cause_id, delta))
    return {"cause": cause_id, "layer": cause.layer, "direction": direction, "words": cause.words.format(**facts),
            "evidence": evidence, "fix": fix(cause_id, **facts), "remediable": cause.remediable,
            "ruled_out": list(ruled_out)}


def undecided(direction, words, evidence, ruled_out):
    """Where the evidence cannot decide: say so, and what was ruled out."""
    return {"cause": UNDECIDED, "layer": None, "direction": direction, "words": words, "evidence": evidence,
            "fix": None, "remediable": False, "ruled_out": list(ruled_out)}
