# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""From what each host's modules said to a verdict per host: seen or not, where it stopped, why, and the fix.

Input per host (what the diagnose_port role registered, see `gathered`): why it could not be armed (`arm_error`),
else how it was armed and its trace (trace_results, with the finding the host decided). Output: a stable report
(see docs/diagnose_port.md for the schema).
"""

import ipaddress
import re
import shlex
import textwrap
import time
import xml.etree.ElementTree as ET

from ansible_collections.packetpath.linux.plugins.module_utils._common import junit as junit_file
from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis import causes, finding, next_hop
from ansible_collections.packetpath.linux.plugins.module_utils.probe import SUCCEEDED

SCHEMA_VERSION = 2
NOT_REPORTED = "not reported: the host failed or could not be reached during the run"
# Where a host stands on the packet's way: the sender first, then routers, then the receiver. Hosts of one rank are
# told apart by the TTL the request arrived with (each router takes one).
ROLE_ORDER = {"sent": 0, "forwarded": 1, "stopped": 2, "delivered_local": 3, "not_seen": 4}
ARROW = " \u2192 "
STALE_SHOWN = 5  # a service's stale conversations the words name; the report lists them all


def _first_packet(trace):
    packets = (trace or {}).get("packets") or []
    return finding.deciding(packets), packets


def fix_state(verdict, report):
    """How a host's fix stands: applied by this run's remediation, remediable, or suggested only."""
    if not verdict["remediable"]:
        return "suggested only"
    return "applied by packetpath_remediate=true" if report.get("probe_after_fix") is not None else \
        "remediable: run again with -e packetpath_remediate=true"


def fix_command(fix):
    """The fix as a command a person can paste on the host: each argument quoted for the shell (an interface name is
    the host's text, `$(reboot)` included), a sysctl key written the kernel's way (sysctl reads a `.` in a component
    as a separator: an interface `eth0.100` is `eth0/100` there)."""
    if fix["module"].endswith("interface_sysctl"):
        family = "ipv6" if any(key.startswith("ipv6.") for key in fix["args"]["settings"]) else "ipv4"
        argv = ["sysctl", "-w"] + [
            "net.%s.conf.%s.%s=%s" % (family, interface.replace(".", "/"), key.split(".", 1)[-1], value)
            for interface in fix["args"]["interfaces"] for key, value in sorted(fix["args"]["settings"].items())]
    else:
        argv = fix["args"]["argv"]
    return " ".join(shlex.quote(str(argument)) for argument in argv)


def gathered(trace, armed):
    """What one host gathered, as host_verdict reads it, from the role's two registered results: its arming
    (trace_rule capture=true) and its collection (trace_results, skipped where it was not armed)."""
    armed = armed or {}
    if armed.get("failed"):
        return {"arm_error": armed.get("msg") or "arming the trace failed", "armed": None, "trace": {}}
    capture = armed.get("capture") or {}
    return {"arm_error": None, "trace": trace or {}, "armed": {
        "backend": armed.get("backend"), "capture": capture.get("source"), "expires_at": armed.get("expires_at"),
        "drop_reasons": capture.get("drop_reasons"), "netns": armed.get("netns"),
        "since": (armed.get("marker") or {}).get("time")}}


def host_verdict(host, data, error=None):
    """The row for one host from what it gathered (its finding decided on the host); `data` None for a host that
    failed or went unreachable before it reported (`error`: what it said last)."""
    trace = (data or {}).get("trace") or {}
    verdict = {"host": host, "traced": bool(trace) and not trace.get("failed"), "seen": False, "packets": 0,
               "per_packet": [], "path": None, "last_hop": None, "fate": None, "role": "not_seen", "cause": None,
               "layer": None, "direction": None, "words": None, "evidence": {}, "fix": None, "remediable": False,
               "ruled_out": [], "drop_reasons": None, "kernel": None, "armed": (data or {}).get("armed"),
               "engine": None, "addresses": []}
    if data is None:
        verdict["words"] = "%s%s" % (NOT_REPORTED, ": %s" % error if error else "")
        verdict["error"] = error or NOT_REPORTED
        return verdict
    if data.get("arm_error"):
        verdict["words"] = "cannot be traced here: %s" % data["arm_error"]
        return verdict
    packet, packets = _first_packet(trace)
    verdict["packets"] = len(packets)
    # Other traffic on the port, traced too and left out beside the probe's own packets (trace_results' stats).
    verdict["strangers"] = ((trace.get("stats") or {}).get("packets_of_strangers")) or 0
    verdict["per_packet"] = [{key: each.get(key) for key in ("id", "path", "fate", "last_hop", "hints")}
                             for each in packets]
    found = trace.get("finding") or {}
    for key in ("role", "cause", "layer", "direction", "fix", "remediable", "ruled_out", "requests", "replies",
                "counters", "ttl", "conntrack", "drop_reasons", "kernel", "engine", "engine_reason", "addresses",
                "conversations", "link_layer", "service", "detector"):
        if key in found:
            verdict[key] = found[key]
    verdict["words"] = found.get("words") or "the probe's packets were not seen here"
    if verdict["strangers"] and not packets:  # what it did see on the port, and why it is not the probe's
        verdict["words"] += (" (%d other packets on the port were, none from or to the probe's address, nor pairing "
                             "its ports)" % verdict["strangers"])
    verdict["evidence"] = dict(found.get("evidence") or {})
    losses = (trace.get("capture") or {}).get("losses")
    if losses:  # what the host saw is a lower bound: say so where the words are read
        verdict["evidence"]["capture_losses"] = losses
        verdict["words"] += " (the capture may lack packets: %s)" % "; ".join(losses)
    if packet is None:
        return verdict
    verdict.update(seen=True, path=packet.get("path"), last_hop=packet.get("last_hop"), fate=packet.get("fate"))
    verdict["evidence"]["hops"] = packet.get("summary")
    verdict["evidence"]["rewrites"] = [
        {"hook": hop.get("hook"), "hop": "%s:%s" % (hop.get("table"), hop.get("chain")), "field": field,
         "before": before, "after": after}
        for hop in packet.get("hops") or [] for field, (before, after) in sorted((hop.get("rewrite") or {}).items())]
    return verdict


def _way(verdict):
    return (ROLE_ORDER.get(verdict["role"], 4), -(verdict.get("ttl") or 0))


def _same_address(one, other):
    try:
        return ipaddress.ip_address(one) == ipaddress.ip_address(other)
    except ValueError:
        return False


def _dropped_before_first_hook(way, verdicts):
    """A host whose trace saw nothing, where the packet died before its first hook: the host the last host on the
    way sent the unanswered packet to, where tc ingress dropped packets in the window on the interface holding that
    address (neither host can tell alone: the sender knows where it sent the packet, the receiver what it dropped);
    else a host where the kernel itself gave a reason for dropping the flow's packet (bpftrace). Its row, naming the
    cause."""
    last = way[-1] if way else None
    if last is None or last["role"] not in ("sent", "forwarded") or not last["evidence"].get("next_hop"):
        return next((v for v in verdicts if not v["seen"] and v["cause"] == "kernel_drop"), None)
    next_hop = last["evidence"]["next_hop"]
    for verdict in verdicts:
        if verdict["seen"]:
            continue
        for dropped in verdict["evidence"].get("ingress_drops") or []:
            if any(_same_address(next_hop["address"], address) for address in dropped["addresses"]):
                found = causes.finding("tc_ingress_drop", "request", dict(
                    verdict["evidence"], sent_by={"host": last["host"], "next_hop": next_hop}, ingress=dropped),
                    dev=dropped["dev"], drops=dropped["drops"], dst=next_hop["address"])
                causes.decide(verdict, found, "before_first_hook")
                if verdict["drop_reasons"]:  # the kernel's word, where it was read, now stands beside this cause
                    verdict["kernel"] = causes.CATALOGUE["tc_ingress_drop"].kernel_stance(
                        verdict["drop_reasons"], "request")
                return verdict
    return next((v for v in verdicts if not v["seen"] and v["cause"] == "kernel_drop"), None)


def _explained_upstream(culprit, verdicts):
    """Hosts that name another cause only for conversations the culprit already explains (a conversation the
    culprit sent astray dies again wherever it lands): their cause is the culprit's consequence, kept under
    `explained_by`, and one host is blamed."""
    explained = set(each["sport"] for each in culprit.get("conversations") or [] if each["cause"] == culprit["cause"])
    for row in verdicts:
        theirs = set(each["sport"] for each in row.get("conversations") or [] if each["cause"])
        if row is culprit or not row["cause"] or row["cause"] == culprit["cause"] or not theirs or theirs - explained:
            continue
        next_hop.supersede(row, culprit, "the conversation from port %s already went astray at %s (%s)" % (
            ", ".join(str(sport) for sport in sorted(theirs)), culprit["host"], culprit["cause"]))


def service_text(verdicts, failing):
    """'. The service 198.18.10.1:8080 on router spreads over 3 endpoints; the probe reached 198.18.20.2:9090 (from
    port 28080), ...; not reached, so not spoken for: 198.18.20.4:9090': where NAT spreads the destination, which
    endpoints the verdict speaks for (a passing probe says nothing of an endpoint none of its attempts reached).
    `failing`: failing_endpoints() of the verdicts."""
    said = []
    for row in verdicts:
        service = row.get("service")
        if not service or len(service["endpoints"]) < 2 and not service["not_reached"] and not service.get("stale"):
            continue
        reached = ", ".join("%s (from port %s)" % (endpoint, ", ".join(str(sport) for sport in sports))
                            for endpoint, sports in sorted(service["reached"].items()))
        text = "The service %s on %s spreads over %d endpoints; the probe reached %s" % (
            service["address"], row["host"], len(service["endpoints"]), reached)
        checked = service.get("checked") or {}
        unchecked = [endpoint for endpoint in service["not_reached"] if endpoint not in checked]
        if checked:
            text += "; %s connected to the ones it missed: %s" % (row["host"], "; ".join(
                "%s %s" % (endpoint, result["words"]) for endpoint, result in sorted(checked.items())))
        if unchecked:
            text += "; not reached, so not spoken for: %s (probe again with more attempts: each new source port is " \
                    "a new conversation)" % ", ".join(unchecked)
        here = [each["endpoint"] for each in failing if each["host"] == row["host"]]
        if here:
            text += ". %d of %d endpoints fail%s: %s" % (
                len(here), len(service["endpoints"]), "s" if len(here) == 1 else "", ", ".join(here))
        stale = service.get("stale") or []
        if stale:
            named = ["%s:%s held to %s (forget it: %s)" % (each["orig"]["src"], each["orig"]["sport"], each["held"],
                                                           fix_command(each["fix"])) for each in stale[:STALE_SHOWN]]
            if len(stale) > STALE_SHOWN:
                named.append("and %d more" % (len(stale) - STALE_SHOWN))
            text += ". conntrack on %s still holds %d other conversation%s to it DNAT'd to an endpoint the rules no " \
                    "longer choose (each packet of it follows the entry there): %s" % (
                        row["host"], len(stale), "s" if len(stale) > 1 else "", "; ".join(named))
        said.append(text)
    return "".join(". " + text for text in said)


def stale_conversations(verdicts):
    """[{host, orig, held, fix}] of the conversations conntrack holds to a service's gone endpoint (not the probe's)."""
    return [dict(each, host=row["host"]) for row in verdicts for each in (row.get("service") or {}).get("stale") or []]


def failing_endpoints(verdicts, probe):
    """[{host, endpoint, words}] of the services' endpoints that failed: one an attempt of the probe was sent to by
    NAT and that attempt failed, or one the connect of the host that spreads the service failed (service.checked)."""
    failing, failed_sports = [], set(failed_ports(probe))
    for row in verdicts:
        service = row.get("service")
        if not service:
            continue
        failed = {each["endpoint"]: each for each in row.get("conversations") or []
                  if each.get("endpoint") and each["sport"] in failed_sports}
        for endpoint in service["endpoints"]:
            checked = (service.get("checked") or {}).get(endpoint)
            if endpoint in failed:
                conversation = failed[endpoint]
                failing.append({"host": row["host"], "endpoint": endpoint, "words": conversation["words"] if
                                conversation["cause"] else "the probe's attempt from port %d failed" %
                                conversation["sport"]})
            elif checked and checked["answer"] != "connected":
                failing.append({"host": row["host"], "endpoint": endpoint, "words": checked["words"]})
    return failing


def icmp_senders_text(verdicts, probe):
    """'. The probe got ICMP time exceeded from peer (198.18.20.2)': the hosts the probe's ICMP errors came from, by
    their addresses (an address no traced host holds is named alone)."""
    errors = probe_summary(probe).get("icmp") or []
    said = []
    for error in errors:
        holders = [v["host"] for v in verdicts
                   if any(_same_address(error["from"], address) for address in v.get("addresses") or [])]
        sender = "%s (%s)" % (holders[0], error["from"]) if holders else error["from"]
        said.append("ICMP %s from %s" % (error["name"], sender))
    return ". The probe got %s" % "; ".join(said) if said else ""


def probe_summary(probe):
    """The probe's summary (probe.summary()), {} where no probe ran or it could not be sent."""
    return (probe or {}).get("summary") or {}


def probe_got_through(probe):
    """Whether a probe ran and every attempt got through."""
    summary = probe_summary(probe)
    return bool(summary.get("attempts")) and not summary.get("failed")


def probe_failed(probe):
    """Whether the probe says the port is blocked: one of its attempts failed, by its own summary (a probe that
    could not be sent, or no probe at all, says nothing)."""
    return bool(probe_summary(probe).get("failed"))


# An attempt that a host answered: a reset or an ICMP error (port unreachable reads as refused).
ANSWERED = ("refused", "unreachable")


def results_text(summary):
    """'connected 2, timeout 1'."""
    return ", ".join("%s %d" % item for item in sorted((summary.get("results") or {}).items()))


def failed_ports(probe):
    """The source ports of the probe's attempts that failed, where it sent from fixed ones."""
    return [attempt["source_port"] for attempt in (probe or {}).get("attempts") or []
            if attempt.get("source_port") and attempt.get("result") not in SUCCEEDED]


def contradiction(row, probe):
    """Why the probe's attempts contradict the cause a host's trace named, or None. A probe that got through every
    time leaves no cause standing; a cause that has the host answer (a reset, an ICMP error) stands only where an
    attempt got an answer; a cause found in one of the probe's conversations stands only where that attempt failed.
    No probe, no contradiction: a trace of real traffic is judged on its own."""
    summary = probe_summary(probe)
    if not row["cause"] or not summary.get("attempts"):
        return None
    if probe_got_through(probe):
        return "the probe got through in %d of %d attempts" % (summary.get("succeeded", 0), summary["attempts"])
    failed = failed_ports(probe)
    causing = [each["sport"] for each in row.get("conversations") or [] if each["cause"] == row["cause"]]
    if causing and failed and not set(causing) & set(failed):
        return "it was found in the conversation from port %s, whose attempt got through (the failed ones came " \
               "from %s)" % (", ".join(map(str, causing)), ", ".join(map(str, failed)))
    cause = causes.CATALOGUE.get(row["cause"])
    answered = any((summary.get("results") or {}).get(result) for result in ANSWERED) or summary.get("icmp")
    if cause is not None and cause.answers and not answered:
        return "the cause has the host answer the packet, and none of the probe's %d failed attempts got an answer " \
               "(%s)" % (summary["failed"], results_text(summary))
    return None


def set_aside(rows, probe):
    """Each host's cause that the probe contradicts, set aside: the row keeps it under `set_aside` with the reason,
    and names no cause (a verdict never draws a cross over a probe that got through, nor claims a reset none saw)."""
    for row in rows:
        why = contradiction(row, probe)
        if why is None:
            continue
        row["set_aside"] = {"cause": row["cause"], "words": row["words"], "why": why}
        row.update(cause=None, layer=None, direction=None, fix=None, remediable=False, kernel=None, detector=None,
                   words="no cause here: %s (the trace alone suggested %s: %s)" % (why, row["cause"], row["words"]))
    return rows


def attempts_text(probe, culprit):
    """'2 of 3 attempts got through and 1 failed (connected 2, timeout 1; the failed from port 28082); the failed
    ones: ' where the attempts differ, 'the probe got through in 3 of 3 attempts (connected 3); ' where every one got
    through, '' where all failed or no probe ran."""
    summary = probe_summary(probe)
    attempts, failed = summary.get("attempts") or 0, summary.get("failed") or 0
    if not attempts or failed == attempts:
        return ""
    if not failed:
        return "the probe got through in %d of %d attempts (%s); " % (attempts, attempts, results_text(summary))
    ports = failed_ports(probe)
    return "%d of %d attempts got through and %d failed (%s%s); %s" % (
        summary.get("succeeded", 0), attempts, failed, results_text(summary),
        "; the failed from port %s" % ", ".join(map(str, ports)) if ports else "",
        "the failed ones: " if culprit else "what failed them is not established: ")


# The fleet's joins (a join's name is what a cause record's `detector` says, and what the row it blames carries), in
# the order they are asked. Where no host on the way named a cause and the probe failed: the last sender's neighbour
# entry or VXLAN remote against the holder of its next hop, then a drop before the first hook of the host it was sent
# to. Where the culprit's next hop did not answer ARP (neighbour_failed): the holder's arp_ignore, then its
# arp_filter (the kernel asks them in that order), then, where nobody holds the address, the proxy ARP of the host at
# the other end of the link; where it did not answer NDP and nobody holds the address, the host on the link with IPv6
# disabled there.
UNDECIDED_JOINS = (("wrong_lladdr", next_hop.wrong_lladdr), ("vxlan_mismatch", next_hop.vxlan_mismatch),
                   ("before_first_hook", _dropped_before_first_hook))
UNANSWERED_JOINS = (("ignores_arp", next_hop.ignores_arp), ("filters_arp", next_hop.filters_arp),
                    ("unproxied", next_hop.unproxied), ("ipv6_off", next_hop.ipv6_off))


def _first_join(joins, subject, verdicts):
    """The row the first join that decides blames, or None."""
    for _name, join in joins:
        found = join(subject, verdicts)
        if found is not None:
            return found
    return None


def fleet_verdict(verdicts, probe):
    """The packet's way across the hosts and the one finding on top: the first host on the way that names a cause
    (a host it never reached is not a finding), or, where none does, what the hosts ruled out."""
    way = sorted((v for v in verdicts if v["seen"]), key=_way)
    culprit = next((v for v in way if v["cause"]), None)
    if culprit is None and not probe_got_through(probe):
        # Where the probe got through every time, no host dropped it before its first hook either.
        culprit = _first_join(UNDECIDED_JOINS, way, verdicts)
    elif culprit is not None and culprit["cause"] == "neighbour_failed":
        culprit = _first_join(UNANSWERED_JOINS, culprit, verdicts) or culprit
    elif culprit is not None and culprit["cause"] == "vxlan_no_fdb":
        next_hop.vxlan_remote(culprit, verdicts)  # the remote its fix adds, where the next hop's host is in the run
    if culprit is not None and culprit not in way:
        way.append(culprit)
    if culprit is not None:
        _explained_upstream(culprit, verdicts)
    marks = [v["host"] + (" \u2717" if v is culprit else "") for v in way]
    unseen = [v["host"] for v in verdicts if not v["seen"] and v is not culprit]
    line = ARROW.join(marks) or "no traced host saw the packet"
    failed = probe_failed(probe)
    # A capture that lost packets saw a lower bound: "nobody saw it" is then not established.
    lossy = [v for v in verdicts if v["evidence"].get("capture_losses")]
    cause = culprit["cause"] if culprit else causes.UNDECIDED if (way or lossy) and failed else \
        causes.NOT_SEEN if failed else None
    if culprit is not None:
        words = "%s: %s%s" % (culprit["host"], culprit["words"], kernel_text(culprit))
        looping = [v["host"] for v in way if v is not culprit and v["cause"] == culprit["cause"] == "routing_loop"]
        if looping:
            words += "; the loop goes through %s too" % ", ".join(looping)
    elif way and failed:
        words = "no traced host saw the packet stop; it passed %s. Ruled out on the way: %s" % (
            ", ".join(v["host"] for v in way),
            "; ".join(r for v in way for r in v["ruled_out"]) or "a drop by any traced rule")
    elif way:
        words = "the packet passed every traced host"
    else:
        words = "no traced host saw the packet: it died before the first of them, or the trace selects other packets"
    if lossy and culprit is None:
        words += ". Not every capture was complete: %s" % "; ".join(
            "%s: %s" % (v["host"], v["evidence"]["capture_losses"][0]) for v in lossy)
    words = attempts_text(probe, culprit) + words
    aside = [v for v in verdicts if v.get("set_aside")]
    if aside:
        words += ". Set aside: %s" % "; ".join("%s's trace suggested %s, but %s" % (
            v["host"], v["set_aside"]["cause"], v["set_aside"]["why"]) for v in aside)
    failing = failing_endpoints(verdicts, probe)
    words += icmp_senders_text(verdicts, probe) + service_text(verdicts, failing)
    return {"line": line + ("  (not seen: %s)" % ", ".join(unseen) if unseen else ""),
            "way": [{"host": v["host"], "role": v["role"], "cause": v["cause"]} for v in way],
            "not_seen": unseen,
            "culprit": culprit["host"] if culprit else None,
            "cause": cause,
            "direction": culprit["direction"] if culprit else None,
            "words": words,
            "evidence": culprit["evidence"] if culprit else {},
            "fix": culprit["fix"] if culprit else None,
            "failing_endpoints": failing,
            "stale_conversations": stale_conversations(verdicts)}


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(value):
    """`value` with every control character but newline and tab shown as an escape (\\x1b): a rule comment, chain
    or interface name is the host owner's text, and an ESC in it must not drive the terminal that reads the
    report."""
    if isinstance(value, str):
        return _CONTROL.sub(lambda found: "\\x%02x" % ord(found.group()), value)
    if isinstance(value, dict):
        return {key: printable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [printable(item) for item in value]
    return value


def build_report(hosts, request, probe, probe_after=None, unreported=None, now=None):
    """The report: request, probe, one verdict per host (sorted), and the rerun after a remediation.
    `unreported`: {host: its last error} for hosts whose data is None."""
    verdicts = set_aside([printable(host_verdict(host, data, (unreported or {}).get(host)))
                          for host, data in sorted(hosts.items())], probe)
    moment = time.time() if now is None else now
    if str(request.get("port", "")).isdigit():  # templated values arrive as text on older ansible-core
        request = dict(request, port=int(request["port"]))
    report = {"schema_version": SCHEMA_VERSION,
              "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment)), "generated_epoch": moment,
              "request": request, "probe": probe, "verdict": fleet_verdict(verdicts, probe), "hosts": verdicts}
    if probe_after is not None:
        report["probe_after_fix"] = probe_after
        if probe_got_through(probe_after):  # blocked, then fixed: the line a person reads first says both
            report["verdict"]["fixed"] = True
            report["verdict"]["line"] += ", fixed (probe after the fix: %s)" % results_text(probe_summary(probe_after))
    return report


# The terminal's width for the table: the verdict's prose wraps within it, a host's cause is cut to it (the report
# files hold every word).
COLUMNS = 120


def _wrapped(text):
    """Prose within COLUMNS, its further lines indented; a word longer than that (a command, a path) stays whole."""
    return textwrap.wrap(text, COLUMNS, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False) or [""]


def table(report):
    """The terminal table: the fleet verdict on top, then host, seen, last hop, fate, cause, within COLUMNS."""
    rows = [("HOST", "SEEN", "LAST HOP", "FATE", "CAUSE")]
    for verdict in report["hosts"]:
        rows.append((verdict["host"], "yes" if verdict["seen"] else "no", verdict["last_hop"] or "-",
                     verdict["fate"] or "-", cause_text(verdict)))
    widths = [max(len(str(row[i])) for row in rows) for i in range(4)]
    room = max(COLUMNS - sum(widths) - 2 * 4, 24)  # what the cause has left (at least a cause's name and some words)
    fleet = report["verdict"]
    lines = ["%s  [%s]" % (fleet["line"], label(fleet))] + _wrapped(fleet["words"])
    if fleet["fix"]:
        culprit = next(verdict for verdict in report["hosts"] if verdict["host"] == fleet["culprit"])
        command, state = fix_command(fleet["fix"]), fix_state(culprit, report)
        line = "fix on %s: %s  (%s)" % (fleet["culprit"], command, state)
        # Too long for one line: the command on a line of its own, whole, to be copied.
        lines += [line] if len(line) <= COLUMNS else _wrapped("fix on %s (%s):" % (fleet["culprit"], state)) + [
            "  " + command]
    lines.append("")
    lines += ["  ".join(str(cell).ljust(width) for cell, width in zip(row[:4], widths)) + "  " + (
        row[4] if len(row[4]) <= room else row[4][:room - 1] + "…") for row in rows]
    for title, key in (("probe", "probe"), ("probe after the fix", "probe_after_fix")):
        summary = (report.get(key) or {}).get("summary") or {}
        if summary.get("results"):
            lines.append("%s: %s%s" % (title, ", ".join("%s %d" % item for item in sorted(summary["results"].items())),
                                       icmp_text(summary)))
    return "\n".join(lines)


def kernel_text(verdict):
    """' (the kernel agrees: NO_SOCKET in tcp_v4_rcv)': the kernel's own reason beside a cause decided otherwise."""
    # Where the kernel's word came from the other host of a join (diagnosis/next_hop.py), its drops, named by host.
    drops = verdict.get("kernel_drops") or verdict.get("drop_reasons") or []
    if verdict.get("kernel") not in ("corroborates", "names another reason") or not drops:
        return ""
    cause = causes.CATALOGUE[verdict["cause"]]
    mine = [d for d in drops if d.get("direction") == verdict["direction"]] or drops
    drop = next((d for d in mine if cause.corroborated_by(d)), mine[0])
    where = "%s's %s" % (drop["host"], drop.get("dev") or "-") if drop.get("host") else drop.get("dev")
    return " (the kernel %s: %s in %s%s)" % ("agrees" if verdict["kernel"] == "corroborates" else
                                             "names another reason", drop["reason"], drop["location"],
                                             " on %s" % where if where else "")


def drops_text(verdict):
    """'NO_SOCKET in tcp_v4_rcv on eth0 (request) x2; ...': the kernel's drops of the flow on a host, counted, or
    words for why there are none."""
    drops = verdict.get("drop_reasons")
    if drops is None:
        return None
    counted = {}
    for drop in drops:
        key = "%s in %s%s (%s)" % (drop["reason"], drop["location"], " on %s" % drop["dev"] if drop.get("dev") else "",
                                   drop.get("direction", "-"))
        counted[key] = counted.get(key, 0) + 1
    return "; ".join("%s x%d" % item for item in counted.items()) or "none of the flow's packets"


def armed_text(verdict):
    """'Armed with iptables_nft (capture xtables_monitor) in network namespace pp-pod1, routes looked up with
    pyroute2.' (the namespace where one other than the host's own was traced, a pod's on its node)"""
    armed = verdict.get("armed") or {}
    return "Armed with %s (capture %s)%s%s." % (
        armed.get("backend") or "-", armed.get("capture") or "-",
        " in network namespace %s" % armed["netns"] if armed.get("netns") else "",
        ", routes looked up with %s" % verdict["engine"] if verdict.get("engine") else "")


# What a report shows of a finding's evidence apart from the rest: the path and hops are drawn, the rewrites are on
# the diagram.
SHOWN_ELSEWHERE = ("hops", "rewrites", "path", "last_hop")


def evidence_lines(verdict):
    """[(what, text)]: what a host's finding rests on (its counters, the routing decision redone, the neighbour, the
    link, conntrack), one line each, as a report shows it under the host."""
    lines = []
    for key, value in sorted((verdict.get("evidence") or {}).items()):
        if key in SHOWN_ELSEWHERE or value in (None, "", {}, []):
            continue
        lines.append((key.replace("_", " "), _evidence_text(key, value)))
    return lines


def _evidence_text(key, value):
    if key == "counters" and isinstance(value, dict):  # the namespace's counters that moved in the capture window
        return ", ".join("%s +%s" % item for item in sorted(value.items()))
    if key == "route_lookup" and isinstance(value, dict):
        error = value.get("error")
        if isinstance(error, dict):
            return "%s (%s): %s" % (error.get("name"), error.get("message"), error.get("explanation") or "-")
        if value.get("ip_route_get"):
            return "ip route get: %s" % value["ip_route_get"]
    return _plain(value)


def _plain(value):
    """A piece of evidence in words a person reads, not JSON: `state FAILED, dev eth0`, a nested mapping in
    parentheses, a list joined by `; `, yes/no for a boolean; what is empty left out."""
    if isinstance(value, dict):
        return ", ".join("%s %s" % (str(key).replace("_", " "), "(%s)" % _plain(item) if isinstance(item, dict)
                                    else _plain(item))
                         for key, item in sorted(value.items()) if item not in (None, "", {}, []))
    if isinstance(value, list):
        return "; ".join(_plain(item) for item in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def window_text(verdict, report):
    """'from 2026-12-05T16:40:02Z to 2026-12-05T16:40:09Z': the capture window of a host (armed to collected)."""
    armed = verdict.get("armed") or {}
    if not armed.get("since"):
        return None
    return "from %s to %s" % (armed["since"], report.get("generated_at"))


def artifact(report):
    """What set_stats hands to AWX's job artifacts and to later workflow nodes: the verdict as the terminal says it
    (its line, label, culprit, cause, words and the fix a person pastes), and each host's row in short."""
    fleet = report["verdict"]
    fix = fleet.get("fix")
    return {
        "request": report["request"],
        "probe": probe_summary(report.get("probe")) or None,
        "probe_after_fix": probe_summary(report.get("probe_after_fix")) or None,
        "verdict": {"line": fleet["line"], "label": label(fleet), "culprit": fleet["culprit"], "cause": fleet["cause"],
                    "direction": fleet["direction"], "words": fleet["words"], "fix": fix,
                    "fix_command": fix_command(fix) if fix else None,
                    "failing_endpoints": fleet.get("failing_endpoints") or [],
                    "stale_conversations": fleet.get("stale_conversations") or []},
        "hosts": [{"host": row["host"], "seen": row["seen"], "role": row["role"], "cause": row["cause"],
                   "words": row["words"]} for row in report["hosts"]],
    }


def label(fleet):
    """The fleet verdict in one word: its cause; "passed" only where no probe failed and the packet was seen, and
    where a service's endpoint the probe's attempts missed fails, that too."""
    if fleet["cause"] or not fleet["way"]:
        return fleet["cause"] or "nothing seen"
    failing, stale = len(fleet.get("failing_endpoints") or []), len(fleet.get("stale_conversations") or [])
    buts = []
    if failing:
        buts.append("%d endpoint%s of the service fail%s" % (failing, "s" if failing > 1 else "",
                                                             "" if failing > 1 else "s"))
    if stale:
        buts.append("conntrack holds %d conversation%s to a gone endpoint" % (stale, "s" if stale > 1 else ""))
    return "passed, but %s" % " and ".join(buts) if buts else "passed"


def cause_text(verdict):
    return "%s: %s" % (verdict["cause"], verdict["words"]) if verdict["cause"] else (verdict["words"] or "-")


def probe_text(probe):
    """'3 attempts: timeout 3' (or 'no probe')."""
    summary = probe_summary(probe)
    results = summary.get("results") or {}
    if not results:
        return "no probe" if not (probe or {}).get("failed") else "the probe could not be sent: %s" % probe.get("msg")
    text = "%d attempts: %s" % (summary.get("attempts", sum(results.values())),
                                ", ".join("%s %d" % item for item in sorted(results.items())))
    return text + icmp_text(summary)


def icmp_text(summary):
    """' (ICMP time exceeded from 198.18.20.2)': the errors the probe got and who sent them, or ''."""
    errors = (summary or {}).get("icmp") or []
    return " (%s)" % "; ".join("ICMP %s (code %s) from %s" % (error["name"], error["code"], error["from"])
                               for error in errors) if errors else ""


def junit(report):
    """The verdict for a CI system (report.junit.xml): a test case for the fleet's verdict, failed where the port is
    blocked (its cause, undecided or not_seen), and one per host, failed on the host the packet died on and in error
    where a host could not be traced or never reported. Where this run's remediation fixed the port, nothing fails:
    the cases' text says what was fixed."""
    request, fleet = report["request"], report["verdict"]
    name = "%s port %s to %s" % (request.get("proto", "tcp"), request.get("port"), request.get("dst"))
    blocked = fleet["cause"] and not fleet.get("fixed")  # a port this run fixed fails no CI job
    rows = [(verdict, "failure" if verdict["host"] == fleet["culprit"] and blocked else
             "error" if verdict.get("error") or not verdict["traced"] else None) for verdict in report["hosts"]]
    outcomes = [outcome for _verdict, outcome in rows] + ["failure" if blocked else None]
    counts = {"tests": str(len(outcomes)), "failures": str(outcomes.count("failure")),
              "errors": str(outcomes.count("error")), "time": "0"}
    root = ET.Element("testsuites", name="packetpath diagnose_port", **counts)
    suite = ET.SubElement(root, "testsuite", name=name, skipped="0", timestamp=report["generated_at"], **counts)
    text = "%s\n%s" % (fleet["line"], fleet["words"])
    if blocked:
        junit_file.case(suite, "verdict", "fleet", "failure", fleet["cause"], label(fleet), text)
    else:
        junit_file.case(suite, "verdict", "fleet", text=text)
    for verdict, outcome in rows:
        kind = verdict["cause"] if outcome == "failure" else "not_traced"
        junit_file.case(suite, name, verdict["host"], outcome, kind, verdict["words"] or "", verdict["words"] or "")
    return junit_file.document(root)
