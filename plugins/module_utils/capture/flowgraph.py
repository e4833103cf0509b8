# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a packet went and where it stopped, from the order of the kernel's hooks.

Arriving: prerouting -> routing decision -> input -> local delivery, or
          prerouting -> routing decision -> forward -> postrouting -> out.
Sent:     output -> (re-route) -> postrouting -> out.

A trace shows only the steps where something hooks (see hook_inventory).  When
the last line is an accepting one and a later step that would have printed a
line printed none, the packet vanished between them, and the gap names the
usual culprits: after prerouting it is the routing decision (rp_filter, no
route, a blackhole), which is exactly what the operator in the original
incident worked out by hand.
"""

from ansible_collections.packetpath.linux.plugins.module_utils.capture.hooks import LEGACY_TABLES, Step
from ansible_collections.packetpath.linux.plugins.module_utils.trace import backends

ARROW = " \u2192 "
_ROUTING = "routing decision"


def hop_label(hop):
    """'nat:PREROUTING:policy:3' as the kernel log says it, 'filter:FORWARD:rule:0x6' for handles."""
    parts = [hop["table"], hop["chain"], hop["kind"]]
    if "rule_number" in hop:
        parts.append(str(hop["rule_number"]))
    elif "rule_handle" in hop:
        parts.append("0x%x" % hop["rule_handle"])
    return ":".join(parts)


# Our own nft table traces ahead of raw (trace_rule puts its chains there).
NFT_OWN_TABLE_PRIORITY = {backends.NFT_TABLE: backends.NFT_PRIORITY}


def _step_priority(table, hook):
    return NFT_OWN_TABLE_PRIORITY.get(table, LEGACY_TABLES.get(table, {}).get(hook, 0))


def _priority(hop, steps):
    for step in steps:
        if step.hook == hop["hook"] and step.table == hop["table"] and step.chain in (None, hop.get("base_chain")):
            return step.priority
    return _step_priority(hop["table"], hop["hook"])


def seen_steps(hops):
    """The steps a trace itself shows (for hosts whose ruleset is not at hand)."""
    steps = {}
    for hop in hops:
        if hop["hook"]:
            key = (hop["hook"], hop["table"], hop.get("base_chain"))
            steps[key] = Step(hop["hook"], _step_priority(hop["table"], hop["hook"]), hop["table"],
                              hop.get("base_chain"), nat_only=(hop["table"] == "nat"))
    return list(steps.values())


def _first_printing(steps, hook, above, is_new):
    """The first step at `hook` above priority `above` that would print for this packet."""
    candidates = sorted((s for s in steps if s.hook == hook and s.priority > above and (is_new or not s.nat_only)),
                        key=lambda s: s.priority)
    return candidates[0] if candidates else None


def _branches(hook):
    """The hooks that can come next, each with what follows it."""
    if hook == "prerouting":
        return [("input", []), ("forward", ["postrouting"])]
    if hook in ("forward", "output"):
        return [("postrouting", [])]
    return []


def _expected_next(last_hook, last_priority, steps, is_new):
    """(labels of the steps that should have printed next, hooks that come next but print nothing)."""
    same = _first_printing(steps, last_hook, last_priority, is_new)
    if same:
        return [same.label], []
    expected, silent = [], []
    for hook, after in _branches(last_hook):
        step = _first_printing(steps, hook, -10 ** 6, is_new)
        for later in after:
            step = step or _first_printing(steps, later, -10 ** 6, is_new)
        if step:
            expected.append(step.label)
        else:
            silent.append(hook)
    return expected, silent


def _route_hint(hop):
    where = "iif=%s src=%s dst=%s" % (hop.get("in") or "?", hop.get("src"), hop.get("dst"))
    return ("died at the routing decision: check `route_lookup` with %s; rp_filter, a missing route or a "
            "blackhole are the usual causes" % where)


def _follow_up(hop):
    checks = [{"check": "route_lookup", "iif": hop.get("in"), "src": hop.get("src"), "dst": hop.get("dst"),
               "proto": hop.get("proto"), "dport": hop.get("dport")}]
    if hop.get("in"):
        checks.append({"check": "rp_filter", "interface": hop.get("in")})
        checks.append({"check": "martians", "src": hop.get("src"), "interface": hop.get("in")})
    return checks


def _path(hops, fate, last):
    rerouted = any("out" in hop.get("rewrite", {}) for hop in hops)
    names = []
    for hop in hops:
        hook = hop["hook"] or "?"
        if not names or names[-1] != hook:
            if hook in ("input", "forward") and names and names[-1] == "prerouting":
                names.append(_ROUTING)
            if hook == "postrouting" and names and names[-1] == "output" and rerouted:
                names.append("re-route")
            names.append(hook)
    if hops[0]["hook"] == "output":
        names.insert(0, _ROUTING)
    if fate == "delivered_local":
        names.append("local delivery")
    elif fate in ("forwarded", "sent"):
        names.append("out %s" % (last.get("out") or "?"))
    elif fate.startswith("dropped"):
        names.append("dropped")
    elif fate == "vanished_after":
        names.append((_ROUTING if last["hook"] == "prerouting" else "?") + " (vanished)")
    return ARROW.join(names)


def analyse(hops, steps):
    """path, last_hop, fate and, where it stopped short, next_expected, hints and follow_up."""
    last = hops[-1]
    origin = "local" if hops[0]["hook"] == "output" else "arriving"
    is_new = any(hop["table"] == "nat" for hop in hops)
    result = {"last_hop": hop_label(last), "hints": []}
    verdict = last.get("verdict")
    if verdict in ("drop", "reject"):
        result["fate"] = "dropped_by_rule" if last["kind"] == "rule" else "dropped_by_policy"
        result["dropped_by"] = {"hop": hop_label(last), "rule": last.get("rule")}
        why = ": " + last["rule"] if last.get("rule") else " (the chain's policy)" if last["kind"] == "policy" else ""
        result["hints"].append("dropped by %s%s" % (hop_label(last), why))
    elif verdict == "queue":
        result["fate"] = "queued"
        result["hints"].append("handed to a userspace program through NFQUEUE at %s" % hop_label(last))
    elif verdict in ("continue", "jump", "goto") and last["kind"] == "rule":
        result["fate"] = "vanished_after"
        result["vanished_after"] = hop_label(last)
        result["next_expected"] = "the next rule of %s:%s" % (last["table"], last["chain"])
        result["hints"].append(
            "the trace stops inside %s:%s (verdict %s): lines are missing (a monitor that missed events, the "
            "kernel log's rate limit) or a target outside netfilter took the packet" % (
                last["table"], last["chain"], verdict))
    else:
        if verdict is None:
            result["hints"].append(
                "the trace ends at %s, whose target the log does not say and no ruleset was read: if it is DROP or "
                "REJECT, that rule dropped the packet; otherwise read on" % hop_label(last))
        _stopped_after_accept(result, last, origin, steps, is_new)
    result["path"] = _path(hops, result["fate"], last)
    return result


def _stopped_after_accept(result, last, origin, steps, is_new):
    hook = last["hook"]
    expected, silent = _expected_next(hook, _priority(last, steps), steps, is_new) if hook else ([], [])
    where = "%s %s" % (last["table"], (hook or "?").upper())
    if expected and not silent:
        result["fate"] = "vanished_after"
        result["vanished_after"] = where
        _explain_gap(result, last, hook, expected, steps)
    elif hook == "input":
        result["fate"] = "delivered_local"
        if last.get("dport"):
            result["hints"].append("handed to the local stack: if no program got it, check that something listens "
                                   "on %s port %s (ss -lnp)" % (last.get("dst"), last.get("dport")))
    elif hook in ("forward", "postrouting") and origin == "arriving":
        result["fate"] = "forwarded"
    elif hook in ("output", "postrouting"):
        result["fate"] = "sent"
    else:
        result["fate"] = "unknown"
        seen = " (it would have shown %s)" % " or ".join(expected) if expected else ""
        result["hints"].append(
            "not seen at %s%s, and nothing hooks %s on this host, so the trace cannot follow the packet past %s; "
            "`route_lookup` with iif=%s src=%s dst=%s tells where it went" % (
                " or ".join(h for h, _after in _branches(hook) if h not in silent) or "any later hook", seen,
                " or ".join(silent), where, last.get("in") or "?", last.get("src"), last.get("dst")))
        result["follow_up"] = _follow_up(last)


def _explain_gap(result, last, hook, expected, steps):
    if any(step.label == expected[0] and step.hook == hook for step in steps):
        result["next_expected"] = expected[0]
        result["hints"].append(
            "lost inside %s between %s and %s: conntrack (an invalid packet, a full table: look for "
            "'nf_conntrack: table full' in the kernel log) or a hook outside the traced tables" % (
                hook, last["table"], expected[0]))
    elif hook == "prerouting":
        result["next_expected"] = "%s, then %s" % (_ROUTING, " or ".join(expected))
        result["hints"].append(_route_hint(last))
        result["follow_up"] = _follow_up(last)
    else:
        result["next_expected"] = expected[0]
        result["hints"].append(
            "lost between %s and %s: the re-route after a changed address or mark, neighbour resolution "
            "(ARP/NDP) on %s, or the MTU" % (hook, expected[0], last.get("out") or "the way out"))
