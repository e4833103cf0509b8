# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""From what each host's modules said to a verdict per host: seen or not, where it stopped, why, and the fix.

Input per host (what the diagnose_port role registered): preflight, the trace
(trace_results), route lookups and interface audits for the packets that
vanished.  Output: a stable report (see docs/diagnose_port.md for the schema).
"""

import time

SCHEMA_VERSION = 1
NOT_REPORTED = "not reported: the host failed or could not be reached during the run"


def _first_packet(trace):
    packets = (trace or {}).get("packets") or []
    stopped = [p for p in packets if p.get("fate") not in ("delivered_local", "forwarded", "sent")]
    return (stopped or packets or [None])[0], packets


def _route_evidence(routes, packet):
    """The route answer for the packet's follow-up lookup, if one was made."""
    for answer in (routes or {}).get("answers") or []:
        asked = answer.get("lookup", {})
        for check in packet.get("follow_up") or []:
            if check.get("check") == "route_lookup" and asked.get("dst") == check.get("dst") and \
                    asked.get("src") == check.get("src") and asked.get("iif") == check.get("iif"):
                return answer
    return None


def _rp_fix(interface, host):
    return {
        "host": host,
        "task": ("- name: Loose reverse-path filtering on %s\n"
                 "  packetpath.linux.interface_sysctl:\n"
                 "    interfaces: [%s]\n"
                 "    settings:\n"
                 "      rp_filter: 2\n"
                 "    persistent: present\n" % (interface, interface)),
        "kind": "rp_filter",
        "interface": interface,
    }


def host_verdict(host, data, error=None):
    """The verdict for one host from its registered results; `data` None for a host that failed or went unreachable
    before it reported (`error`: what it said last)."""
    verdict = {"host": host, "traced": bool((data or {}).get("trace")) and not data.get("trace", {}).get("failed"),
               "seen": False, "packets": 0, "per_packet": [], "path": None, "last_hop": None, "fate": None,
               "cause": None, "evidence": {}, "fix": None}
    if data is None:
        verdict["cause"] = "%s%s" % (NOT_REPORTED, ": %s" % error if error else "")
        verdict["error"] = error or NOT_REPORTED
        return verdict
    preflight = data.get("preflight") or {}
    if preflight.get("problems"):
        verdict["cause"] = "cannot be traced here: %s" % "; ".join(preflight["problems"])
        return verdict
    packet, packets = _first_packet(data.get("trace"))
    verdict["packets"] = len(packets)
    verdict["per_packet"] = [{key: each.get(key) for key in ("id", "path", "fate", "last_hop", "hints")}
                             for each in packets]
    if packet is None:
        verdict["cause"] = "the probe's packets were not seen here"
        return verdict
    verdict.update(seen=True, path=packet.get("path"), last_hop=packet.get("last_hop"), fate=packet.get("fate"))
    verdict["evidence"]["hops"] = packet.get("summary")
    verdict["evidence"]["rewrites"] = [
        {"hook": hop.get("hook"), "hop": "%s:%s" % (hop.get("table"), hop.get("chain")), "field": field,
         "before": before, "after": after}
        for hop in packet.get("hops") or [] for field, (before, after) in sorted((hop.get("rewrite") or {}).items())]
    fate = packet.get("fate")
    if fate in ("delivered_local", "forwarded", "sent"):
        verdict["cause"] = "passed (%s)" % fate.replace("_", " ")
        return verdict
    if fate in ("dropped_by_rule", "dropped_by_policy"):
        verdict["cause"] = packet["hints"][0] if packet.get("hints") else "dropped by %s" % packet.get("last_hop")
        verdict["evidence"]["dropped_by"] = packet.get("dropped_by")
        return verdict
    answer = _route_evidence(data.get("routes"), packet)
    if answer is not None:
        verdict["evidence"]["route_lookup"] = answer
    audit = data.get("sysctl") or {}
    interface = next((c.get("interface") for c in packet.get("follow_up") or [] if c.get("check") == "rp_filter"),
                     None)
    if interface and audit.get("interfaces", {}).get(interface):
        verdict["evidence"]["sysctl"] = audit["interfaces"][interface]
    if audit.get("martians"):
        verdict["evidence"]["martians"] = audit["martians"]
    error = (answer or {}).get("error") or {}
    reverse = error.get("reverse_path") or {}
    if reverse.get("rejected"):
        verdict["cause"] = reverse["explanation"]
        verdict["fix"] = _rp_fix(reverse["interface"], host)
    elif error:
        verdict["cause"] = error.get("explanation") or error.get("message")
    elif answer is not None and fate == "unknown":
        # Nothing hooks the next step here, so the trace ends; the routing decision still says where it went.
        verdict["cause"] = "%s: `%s` (the trace cannot follow it: no table hooks input or forward on this host)" % (
            _where_routed(answer), answer.get("ip_route_get"))
    else:
        verdict["cause"] = (packet.get("hints") or ["vanished after %s" % packet.get("vanished_after")])[0]
    return verdict


def _where_routed(answer):
    kind = answer.get("type")
    if kind == "local":
        return "the routing decision hands it to the local stack"
    if kind == "unicast":
        return "the routing decision forwards it out of %s" % answer.get("dev")
    return "the routing decision drops it (a %s route)" % kind


def build_report(hosts, request, probe, probe_after=None, unreported=None, now=None):
    """The report: request, probe, one verdict per host (sorted), and the rerun after a remediation.
    `unreported`: {host: its last error} for hosts whose data is None."""
    verdicts = [host_verdict(host, data, (unreported or {}).get(host)) for host, data in sorted(hosts.items())]
    moment = time.time() if now is None else now
    if str(request.get("port", "")).isdigit():  # templated values arrive as text on older ansible-core
        request = dict(request, port=int(request["port"]))
    report = {"schema_version": SCHEMA_VERSION,
              "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment)),
              "request": request, "probe": probe, "hosts": verdicts}
    if probe_after is not None:
        report["probe_after_fix"] = probe_after
    return report


def table(report):
    """The terminal table: host, seen, last hop, fate, cause."""
    rows = [("HOST", "SEEN", "LAST HOP", "FATE", "CAUSE")]
    for verdict in report["hosts"]:
        rows.append((verdict["host"], "yes" if verdict["seen"] else "no", verdict["last_hop"] or "-",
                     verdict["fate"] or "-", verdict["cause"] or "-"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(4)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row[:4], widths)) + "  " + row[4]
             for row in rows]
    for label, key in (("probe", "probe"), ("probe after the fix", "probe_after_fix")):
        results = ((report.get(key) or {}).get("summary") or {}).get("results")
        if results:
            lines.append("%s: %s" % (label, ", ".join("%s %d" % item for item in sorted(results.items()))))
    return "\n".join(lines)


def probe_text(probe):
    """'3 attempts: timeout 3' (or 'no probe')."""
    summary = (probe or {}).get("summary") or {}
    results = summary.get("results") or {}
    if not results:
        return "no probe" if not (probe or {}).get("failed") else "the probe could not be sent: %s" % probe.get("msg")
    return "%d attempts: %s" % (summary.get("attempts", sum(results.values())),
                                ", ".join("%s %d" % item for item in sorted(results.items())))


def markdown(report):
    request = report["request"]
    lines = ["# Why does %s port %s fail?" % (request.get("proto", "tcp"), request.get("port")), "",
             "Destination %s, probe from %s: %s. Generated %s." % (
                 request.get("dst"), request.get("probe_from") or "-", probe_text(report.get("probe")),
                 report.get("generated_at")), "",
             "| host | seen | last hop | fate | cause |", "| --- | --- | --- | --- | --- |"]
    for verdict in report["hosts"]:
        lines.append("| %s | %s | %s | %s | %s |" % (verdict["host"], "yes" if verdict["seen"] else "no",
                                                     verdict["last_hop"] or "-", verdict["fate"] or "-",
                                                     (verdict["cause"] or "-").replace("|", "\\|")))
    for verdict in report["hosts"]:
        if verdict["evidence"].get("hops"):
            lines += ["", "## %s" % verdict["host"], "", "```", verdict["evidence"]["hops"], "```"]
        if verdict["fix"]:
            lines += ["", "Suggested fix:", "", "```yaml", verdict["fix"]["task"].rstrip(), "```"]
    if report.get("probe_after_fix"):
        lines += ["", "After the fix the probe says: %s." % probe_text(report["probe_after_fix"])]
    return "\n".join(lines) + "\n"
