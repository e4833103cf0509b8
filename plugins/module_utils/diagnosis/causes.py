# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cause catalogue: every way the engine can say a packet died, with the evidence that establishes it, its
words and its fix. One place: the host's finding, the fleet verdict, the report and the docs' table read it.

A fix is data (a module and its arguments). `remediable` fixes are applied as they are by diagnose_port's
remediate=true; the others are suggestions, because applying them would change what an operator chose (a rule,
a route, a listener).
"""

from dataclasses import dataclass

INTERFACE_SYSCTL = "packetpath.linux.interface_sysctl"


@dataclass(frozen=True)
class Cause:
    id: str
    evidence: str  # what establishes it, as the docs' table says
    words: str  # filled from the finding's facts with str.format
    remediable: bool = False


CATALOGUE = {cause.id: cause for cause in (
    Cause("rule_drop", "the trace's last hop is a rule whose verdict is DROP",
          "dropped by {hop}: {rule}"),
    Cause("rule_reject", "the trace's last hop is a rule whose verdict is REJECT",
          "rejected by {hop}: {rule}"),
    Cause("policy_drop", "the trace's last hop is a chain's policy DROP",
          "dropped by the policy of {hop}: no rule of the chain accepted it"),
    Cause("rp_filter", "the trace ends at the routing decision; the kernel refuses the input lookup (EXDEV; "
                       "EINVAL on newer kernels) and the route back to the source leaves by another interface (or "
                       "none)",
          "{explanation}", remediable=True),
    Cause("blackhole_route", "the trace ends at the routing decision; the rules lead to a blackhole route",
          "the routing decision drops it: {route} in table {table}, chosen by rule `{rule}`"),
    Cause("unreachable_route", "the trace ends at the routing decision; the rules lead to an unreachable route",
          "the routing decision refuses it (host unreachable): {route} in table {table}, chosen by rule `{rule}`"),
    Cause("prohibit_route", "the trace ends at the routing decision; the rules lead to a prohibit route",
          "the routing decision refuses it (administratively prohibited): {route} in table {table}, chosen by rule "
          "`{rule}`"),
    Cause("no_route", "the trace ends at the routing decision; no table the policy rules lead to covers the "
                      "destination",
          "no route to {dst}: no table the policy rules lead to covers it"),
    Cause("forwarding_disabled", "the trace ends at the routing decision for a packet to another host; the route "
                                 "is unicast and forwarding is off on the arrival interface",
          "forwarding is off on {interface} (net.{family}.conf.{interface}.forwarding = 0): the packet for {dst} "
          "arrived there and may not be forwarded", remediable=True),
    Cause("no_listener", "the packet was delivered to the local stack and no socket listens on its (post-NAT) "
                         "address and port",
          "nothing listens on {proto} {dst} port {port}: the host answers {answer}"),
    Cause("accept_queue_full", "the SYN was delivered to the local stack and nothing answered it; a socket listens on "
                               "its (post-NAT) address and port, its accept queue holds connections not yet "
                               "accepted, and the kernel's ListenOverflows counter moved in the window",
          "the listener on tcp {dst} port {port} takes no new connection: its accept queue is full ({queued} "
          "waiting to be accepted), so the kernel drops the SYN (ListenOverflows +{overflows}); the service does "
          "not accept() fast enough, or its listen() backlog is too small (capped by net.core.somaxconn)"),
    Cause("reply_dropped", "the reply's trace ends at a rule or policy DROP/REJECT",
          "the reply is dropped: {hop}: {rule}"),
    Cause("reply_routed_elsewhere", "the request arrived on one interface and the reply left by another",
          "the reply leaves by {out} (route back to {dst}: {route}), not by {in_} where the request came from"),
    Cause("conntrack_invalid", "the trace's last hop is a rule that drops what conntrack classified INVALID "
                               "(ctstate INVALID, ct state invalid)",
          "conntrack classified the packet INVALID (it fits no conversation conntrack saw begin) and {hop} drops "
          "such packets: {rule}"),
    Cause("conntrack_full", "the packet vanished without a rule's verdict, conntrack's own drop counter (NfctDrop: "
                            "it could not track a new flow) moved in the window, and the table is at least 90% full",
          "the conntrack table is full ({count} of {max}): new flows are dropped"),
    Cause("neighbour_failed", "the packet left for a next hop whose neighbour entry is FAILED or INCOMPLETE",
          "the next hop {gateway} on {dev} does not answer ARP/NDP (neighbour state {state})"),
    Cause("martian_source", "the trace ends at the routing decision; the kernel refuses the input lookup, and the "
                            "source is an address of this host (accept_local off), a loopback address "
                            "(route_localnet off) or no unicast address",
          "the kernel drops it as a martian source on {interface}: {reason}"),
)}

UNDECIDED = "undecided"


def fix(cause_id, **facts):
    """The structured fix for a cause, or None where there is nothing to do on this host but look at a rule
    (the rule is named in the words)."""
    if cause_id == "rp_filter":
        return {"module": INTERFACE_SYSCTL, "remediable": True, "why": "loose reverse-path filtering",
                "args": {"interfaces": [facts["interface"]], "settings": {"rp_filter": 2}, "persistent": "present"}}
    if cause_id == "forwarding_disabled":
        key = "forwarding" if facts.get("family", "ipv4") == "ipv4" else "ipv6.forwarding"
        return {"module": INTERFACE_SYSCTL, "remediable": True, "why": "forwarding on the arrival interface",
                "args": {"interfaces": [facts["interface"]], "settings": {key: 1}, "persistent": "present"}}
    if cause_id in ("blackhole_route", "unreachable_route", "prohibit_route") and facts.get("table"):
        return {"module": "ansible.builtin.command", "remediable": False,
                "why": "remove or replace the refusing route (suggested only: it was put there on purpose or by "
                       "mistake, which only its owner knows)",
                "args": {"argv": ["ip", "-6" if facts.get("family") == "ipv6" else "-4", "route", "del",
                                  facts["route"], "table", str(facts["table"])]}}
    if cause_id == "conntrack_full":
        return {"module": "ansible.builtin.command", "remediable": False,
                "why": "raise the machine's conntrack limit (suggested only: it is machine-wide and costs kernel "
                       "memory; first find what filled the table)",
                "args": {"argv": ["sysctl", "-w", "net.netfilter.nf_conntrack_max=%d" % (2 * facts["max"])]}}
    return None


def finding(cause_id, direction, evidence, ruled_out=(), **facts):
    """A host's finding for a cause: its id, words, the evidence, the fix."""
    cause = CATALOGUE[cause_id]
    return {"cause": cause_id, "direction": direction, "words": cause.words.format(**facts),
            "evidence": evidence, "fix": fix(cause_id, **facts), "remediable": cause.remediable,
            "ruled_out": list(ruled_out)}


def undecided(direction, words, evidence, ruled_out):
    """Where the evidence cannot decide: say so, and what was ruled out."""
    return {"cause": UNDECIDED, "direction": direction, "words": words, "evidence": evidence, "fix": None,
            "remediable": False, "ruled_out": list(ruled_out)}
