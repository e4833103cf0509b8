# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A packet for a terminal: one aligned line per hop, like the kernel log's, with verdicts and rewrites shown."""

from ansible_collections.packetpath.linux.plugins.module_utils._common.addresses import IPV6, family_of
from ansible_collections.packetpath.linux.plugins.module_utils.capture.flowgraph import hop_label


def endpoint(address, port):
    if address is None:
        return "?"
    shown = "[%s]" % address if family_of(address) == IPV6 and port else address
    return "%s:%s" % (shown, port) if port else shown


def flow_text(hop):
    text = "%s %s -> %s" % (hop.get("proto") or "ip", endpoint(hop.get("src"), hop.get("sport")),
                            endpoint(hop.get("dst"), hop.get("dport")))
    return text


def _verdict(hop):
    verdict = hop.get("verdict") or "?"
    return "%s %s" % (verdict, hop["target"]) if hop.get("target") else verdict


def _interfaces(hop):
    return "in=%s out=%s" % (hop.get("in") or "", hop.get("out") or "")


def render(packet):
    hops = packet["hops"]
    labels = [hop_label(hop) for hop in hops]
    verdicts = [_verdict(hop) for hop in hops]
    label_width = max(len(label) for label in labels)
    verdict_width = max(len(verdict) for verdict in verdicts)
    lines = ["packet %s  %s  %s: %s" % (packet["id"], flow_text(hops[0]), _interfaces(hops[0]), packet["fate"])]
    for hop, label, verdict in zip(hops, labels, verdicts):
        notes = []
        if hop is hops[0]:
            notes.append(flow_text(hop))
        for field, (before, after) in sorted(hop.get("rewrite", {}).items()):
            notes.append("%s %s -> %s" % (field, before, after))
        lines.append("  %-*s  %-*s  %s" % (label_width, label, verdict_width, verdict, "  ".join(notes)))
    lines.append("  path: %s" % packet["path"])
    for hint in packet["hints"]:
        lines.append("  hint: %s" % hint)
    return "\n".join(line.rstrip() for line in lines)
