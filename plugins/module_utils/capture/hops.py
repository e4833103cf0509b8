# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A packet's events -> its hops: verdicts, rule texts and the NAT rewrites between them."""

from ansible_collections.packetpath.linux.plugins.module_utils.capture.legacy_rules import RULE_SOURCE

# Header fields a hop shows; `rewrite` compares the ones NAT and re-routing change.
HOP_FIELDS = ("in", "out", "src", "dst", "sport", "dport", "proto", "ttl", "mark")
REWRITE_FIELDS = ("src", "dst", "sport", "dport", "out", "mark")
RULE_FROM_TRACE = "trace"


def _inferred_verdict(events, hooks, index):
    """The verdict of a legacy rule, told by where the walk went next; None for the last hop."""
    event = events[index]
    if index + 1 >= len(events):
        return None, None
    following = events[index + 1]
    if following.table != event.table or hooks[index + 1] != hooks[index]:
        return "accept", None  # the table let it go: ACCEPT, or a NAT target
    if following.chain == event.chain:
        return "continue", None
    walked = set(e.chain for e in events[:index] if e.table == event.table)
    if following.chain in walked:
        return "return", None  # a RETURN target: back in a chain that called this one
    return "jump", following.chain


def _legacy_verdict(events, hooks, index, rules, look_up):
    """(verdict, target, rule text, where the text came from) of a kernel-log hop."""
    event = events[index]
    if event.kind == "return":
        return "return", None, None, None
    if event.kind == "policy":
        policy = rules.policy(event.family, event.table, event.chain) if look_up else None
        if policy:
            return policy.lower(), None, None, None
        if index + 1 < len(events) or event.table == "nat":  # nat refuses any policy but ACCEPT
            return "accept", None, None, None
        return None, None, None, None
    text = rules.rule(event.family, event.table, event.chain, event.rule_number) if look_up else None
    if text:
        verdict, target = rules.verdict(event.family, event.table, text)
        return verdict, target, text, RULE_SOURCE
    verdict, target = _inferred_verdict(events, hooks, index)
    return verdict, target, None, None


def build_hops(packet, rules, local_interfaces=None):
    """The packet's hops as dicts, in order.

    `rules` (LegacyRules) gives legacy rule texts and verdicts; it is only asked
    about packets whose interfaces exist here, since a kernel log shared by several
    namespaces also holds their packets, and their rules are not ours to read.
    """
    events = packet.events
    interfaces = set(name for e in events for name in (e.packet.get("in"), e.packet.get("out")) if name)
    look_up = bool(rules) and (local_interfaces is None or interfaces <= set(local_interfaces))
    hops = []
    for index, event in enumerate(events):
        hop = {"hook": packet.hooks[index], "table": event.table, "chain": event.chain, "kind": event.kind}
        if event.table_family:
            hop["table_family"] = event.table_family
        if event.base_chain:
            hop["base_chain"] = event.base_chain
        if event.rule_number is not None:
            hop["rule_number"] = event.rule_number
        if event.rule_handle is not None:
            hop["rule_handle"] = event.rule_handle
        if event.fmt == "kernel_log":
            verdict, target, text, source = _legacy_verdict(events, packet.hooks, index, rules, look_up)
        else:
            verdict, target, text, source = event.verdict, event.target, event.rule, RULE_FROM_TRACE
        hop["verdict"] = verdict
        if target:
            hop["target"] = target
        hop["rule"] = text
        if text:
            hop["rule_source"] = source
        for field in HOP_FIELDS:
            value = event.packet.get(field)
            if value is not None:
                hop[field] = value
        if event.time is not None:
            hop["time"] = event.time
        if event.uptime is not None:
            hop["uptime"] = event.uptime
        if index and event.packet is not events[index - 1].packet:
            _mark_rewrite(hops[-1], events[index - 1].packet, event.packet)
        hops.append(hop)
    return hops


def _mark_rewrite(hop, before, after):
    """Fields that differ at the next hop were changed by this hop or right after it (a re-route)."""
    changed = {field: [before.get(field), after.get(field)] for field in REWRITE_FIELDS
               if before.get(field) is not None and after.get(field) is not None
               and before.get(field) != after.get(field)}
    if changed:
        hop.setdefault("rewrite", {}).update(changed)
