"""The host's finding from recorded traces: a rule's drop names the rule; the catalogue's words and fixes; each
incident's culprit decides its cause again from what it recorded in the lab."""

import json
import os

import pytest
from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis import causes, finding
from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis.evidence import sockets
from ansible_collections.packetpath.linux.plugins.module_utils.probe import summary as probe_summary
from recorded import fixture_path, packets_of


class NoEvidence:
    """A host whose evidence must not be needed: a rule's drop is decided by the trace alone."""

    delta = {}
    drops = None  # no bpftrace

    def route(self, spec):
        raise AssertionError("the routing decision was asked for: %s" % spec)

    def listening(self):
        raise AssertionError("the sockets were asked for")

    def conntrack(self, hop):  # read for every request seen, as context: it decides nothing
        return None

    def interfaces_moved(self):  # a host that saw nothing looks for what dropped packets before its first hook
        return {}


def test_a_forward_drop_is_the_rule_that_dropped_it():
    packets = packets_of("xtables-monitor-kube-node2-forward-drop.txt")
    found = finding.explain(packets, None, NoEvidence())
    assert (found["cause"], found["direction"], found["role"]) == ("rule_drop", "request", "stopped")
    assert found["evidence"]["last_hop"] == "filter:FORWARD:rule:0x6"
    assert "stray drop of the pod port" in found["words"] and found["fix"] is None and not found["remediable"]


def test_without_a_port_either_way_every_packet_is_a_request():
    packets = packets_of("nft-monitor-kube-node3-dnat.txt")
    assert finding.split_directions(packets, None) == (packets, [])


def test_the_opener_decides_which_side_is_the_request():
    packets = packets_of("nft-monitor-kube-node3-dnat.txt")
    sport = packets[0]["hops"][0]["sport"]
    requests, replies = finding.split_directions(packets, (sport, sport))
    assert requests and all(p["hops"][0]["sport"] == sport for p in requests)
    assert all(p["hops"][0]["dport"] == sport for p in replies)
    dport = packets[0]["hops"][0]["dport"]
    assert finding.split_directions(packets, (dport, dport))[0][0] is packets[0]  # traced by the service port


FACTS = {"hop": "filter:INPUT:rule:1", "rule": "-A INPUT -j DROP", "explanation": "rejected by rp_filter",
         "route": "198.18.20.0/24", "table": 100, "rule_text": "100: from 198.18.10.2 lookup 100",
         "dst": "198.18.20.2", "src": "198.18.10.2", "interface": "eth0", "family": "ipv4", "proto": "tcp",
         "port": 8080, "answer": "with a TCP reset", "out": "eth1", "in_": "eth0", "hook": "prerouting",
         "count": 65536, "max": 65536, "gateway": "198.18.20.1", "dev": "eth1", "state": "FAILED",
         "reason": "198.18.10.2 is an address of this host too", "queued": 1, "overflows": 3,
         "chosen": "rule `100: from 198.18.10.2 lookup 100`", "instead": "", "drops": 4, "errors": 2, "kind": "pfifo",
         "admin": "up", "ttls": "64, 62", "where": "at tc ingress", "location": "tcf_classify",
         "address": "198.18.20.2", "lladdr": "00:00:5e:00:53:01", "owner": "server", "owner_dev": "eth0",
         "mac": "02:00:00:00:00:02", "elsewhere": "", "permanent": True, "link_dev": "eth0", "asker": "router",
         "why": "server holds 198.18.30.10 on lo", "all_ignores": True, "vni": 42, "routed": "198.18.40.2/32",
         "whose": "the MAC the neighbour entry for 198.18.40.2 holds", "dropped": "", "entry_mac": "02:00:00:00:00:02",
         "shared": "198.18.20.0/24", "discarded": "", "refused": 3, "all_filters": False,
         "back": "its route to 198.18.20.1 leaves by eth1 (198.18.20.0/25 dev eth1)",
         "remote": "198.18.50.2", "sent": "198.18.50.2 UDP port 4789 VNI 42", "expected": "198.18.50.2 UDP port 8472 VNI 42",
         "differs": "the port differs", "vtep": "198.18.50.2", "bridge": "br0", "ports": "eth0, eth1",
         "family_name": "IPv4", "sysctl": "bridge-nf-call-iptables", "value": 1, "chain": "DOCKER-USER",
         "tool": "iptables", "iptables": True,
         "dropper": "the policy of filter:FORWARD:policy drops it (no rule of the chain accepted it)",
         "sport": 25353, "dport": 5353, "held": "198.18.20.2:5353", "targets": "198.18.20.3:5353",
         "sender": "client", "dad": "", "redo": "", "answered": ""}


@pytest.mark.parametrize("cause", sorted(causes.CATALOGUE))
def test_every_cause_has_words_and_evidence(cause):
    found = causes.finding(cause, "request", {}, **FACTS)
    assert found["cause"] == cause and "{" not in found["words"] and causes.CATALOGUE[cause].evidence
    assert found["remediable"] == (cause in ("rp_filter", "forwarding_disabled", "proxy_arp_off"))  # interface sysctls
    if found["remediable"]:
        assert found["fix"]["module"] == causes.INTERFACE_SYSCTL and found["fix"]["args"]["interfaces"] == ["eth0"]


def test_a_refusing_route_is_suggested_never_applied():
    fix = causes.fix("blackhole_route", route="198.18.20.0/24", table=100, family="ipv4")
    assert fix["remediable"] is False
    assert fix["args"]["argv"] == ["ip", "-4", "route", "del", "198.18.20.0/24", "table", "100"]


def test_the_fleet_verdict_blames_the_host_that_stopped_it_and_not_those_it_never_reached():
    from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis import verdict
    packets = packets_of("xtables-monitor-kube-node2-forward-drop.txt")
    hosts = {"node2": {"trace": {"packets": packets, "finding": finding.explain(packets, None, NoEvidence())}},
             "pod": {"trace": {"packets": [], "finding": finding.explain([], None, NoEvidence())}}}
    report = verdict.build_report(hosts, {"port": 30080}, {"summary": probe_summary([{"result": "timeout"}] * 3)})
    assert report["schema_version"] == 2
    assert (report["verdict"]["culprit"], report["verdict"]["cause"]) == ("node2", "rule_drop")
    assert report["verdict"]["line"] == "node2 \u2717  (not seen: pod)"
    assert [row["cause"] for row in report["hosts"]] == ["rule_drop", None]


def test_a_run_whose_probe_connected_through_every_host_is_not_undecided():
    from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis import verdict
    packets = packets_of("nft-monitor-kube-node3-dnat.txt")  # forwarded, all of them
    hosts = {"node3": {"trace": {"packets": packets, "finding": finding.explain(packets, None, NoEvidence())}}}
    for result in ("connected", "reply"):  # a working tcp service, and a udp one that answered
        probe = {"summary": probe_summary([{"result": result}] * 3)}
        passed = verdict.build_report(hosts, {"port": 30080}, probe)["verdict"]
        assert (passed["cause"], passed["culprit"], passed["words"]) == (
            None, None, "the probe got through in 3 of 3 attempts (%s 3); the packet passed every traced host" % result)
        assert verdict.label(passed) == "passed"
    failed = verdict.build_report(hosts, {"port": 30080}, {"summary": probe_summary([{"result": "timeout"}] * 3)})
    assert failed["verdict"]["cause"] == "undecided"
    assert failed["verdict"]["words"].startswith("no traced host saw the packet stop")


class RecordedEvidence:
    """The culprit's own answers, as trace_results recorded them in the lab (`make fixtures ONLY=incidents`): the
    routing answers and neighbour states its finding holds, its socket tables. Asking for anything else, or for a
    lookup of another address, fails the test: the decision must ask what the host was asked."""

    def __init__(self, recorded, kernel=True):
        found = recorded["finding"]
        self.evidence, self.delta = found["evidence"], found["counters"]
        # The kernel's reasons, where bpftrace read them in the lab; kernel=False: a host without bpftrace.
        self.drops = found.get("drop_reasons") if kernel else None
        self.proc_net = recorded["proc_net"]
        self.conntrack_view = found["conntrack"]
        self.service = found.get("service")

    def conntrack(self, hop):
        return self.conntrack_view

    def conntrack_table(self):
        return self.conntrack_view["table"]

    def route(self, spec):
        answer = self.evidence.get("route_lookup") or self.evidence["route_back"]
        assert answer["lookup"]["dst"] == spec["dst"], (answer["lookup"], spec)
        return answer, self.evidence.get("decision")

    def neighbour(self, family, dev, address):
        recorded = self.evidence["next_hop"]
        assert (recorded["dev"], recorded["address"]) == (dev, address)
        return recorded["neighbour"]

    def lladdr(self, family, dev, address):
        recorded = self.evidence["next_hop"]
        assert (recorded["dev"], recorded["address"]) == (dev, address)
        return recorded.get("lladdr")  # recorded before the entry's MAC was read: None

    def fdb(self, dev):
        return self.evidence["vxlan"]["entries"]

    def _dropped_before_first_hook(self):
        return {entry["dev"]: entry for entry in self.evidence.get("ingress_drops", [])}

    def nat_targets(self, proto, dst, dport):  # recorded where the finding read them, else unknown
        recorded = self.evidence.get("nat_targets") or [
            endpoint.rsplit(":", 1) for endpoint in (self.service or {}).get("endpoints") or []]
        return [(address, int(port)) for address, port in recorded] or None

    def service_conversations(self, proto, dst, dport):
        """The other conversations to the service as the finding listed them stale (conntrack's entries, of which
        it kept those), else none: the lab held none."""
        return [{"orig": each["orig"], "nat": True,
                 "reply": {"src": each["held"].rsplit(":", 1)[0], "sport": int(each["held"].rsplit(":", 1)[1])}}
                for each in (self.service or {}).get("stale") or []]

    def bridge_ports(self, bridge):
        return self.evidence["bridged"]["ports"].split(", ")

    def bridge_netfilter(self, family):
        return self.evidence["bridged"]["value"]

    def link(self, dev):
        if (self.evidence.get("bridged") or {}).get("bridge") == dev:
            return {"kind": "bridge"}
        if dev in self._dropped_before_first_hook():
            return {"xdp": self._dropped_before_first_hook()[dev]["xdp"]}
        assert self.evidence["next_hop"]["dev"] == dev
        return self.evidence["link"]

    def addresses(self, dev):
        return self._dropped_before_first_hook()[dev]["addresses"]

    def interfaces_moved(self):
        if "next_hop" not in self.evidence or "interface_counters" not in self.evidence:  # not seen, or passed
            return {dev: {"ingress_drops": entry["drops"]} for dev, entry in self._dropped_before_first_hook().items()}
        return {self.evidence["next_hop"]["dev"]: self.evidence["interface_counters"]}

    def listening(self):
        return [entry for path, text in sorted(self.proc_net.items()) if "/stat/" not in path
                for entry in sockets.parse(text, "udp" if "udp" in path else "tcp")]

    def sysctl(self, family, interface, key):
        return self.evidence["forwarding"][interface]


INCIDENTS = sorted(name[:-5] for name in os.listdir(fixture_path("incidents")))


def recorded_incident(name):
    with open(fixture_path("incidents", name + ".json"), encoding="utf-8") as handle:
        return json.load(handle)


# Every incident whose culprit decided its cause alone in the lab (the others are the fleet's joins: test_next_hop),
# traced by one port: where the probe's attempts were several conversations, only the deciding one's routing answer
# is recorded, and the others' cannot be replayed.
@pytest.mark.parametrize("name", [name for name in INCIDENTS if recorded_incident(name)["result"]["finding"]["cause"]
                                  == recorded_incident(name)["incident"]["cause"]
                                  and not isinstance(recorded_incident(name)["port"], list)])
def test_the_culprit_names_the_incident_s_cause_from_its_recorded_evidence(name):
    recorded = recorded_incident(name)
    port = recorded["port"]
    found = finding.explain(recorded["result"]["packets"], (port, port), RecordedEvidence(recorded["result"]))
    assert found["cause"] == recorded["incident"]["cause"], found["words"]
    assert found["words"] == recorded["result"]["finding"]["words"]
    assert found["layer"] == causes.CATALOGUE[found["cause"]].layer
    assert found["detector"] == causes.CATALOGUE[found["cause"]].detector  # the record names what decided it


def test_a_probes_requests_are_its_source_ports_whichever_packet_came_first():
    # The server of reply-neighbour-failed-v6 as recorded, its packets reordered as a second run saw them in the lab:
    # a SYN-ACK it still retransmitted to an earlier probe from the same port came first. The opener alone takes
    # the replies for the requests; the probe's side (its source port) keeps the cause.
    recorded = recorded_incident("reply-neighbour-failed-v6")
    port, packets = recorded["port"], recorded["result"]["packets"]
    requests, replies = finding.split_directions(packets, (port, port))
    assert requests and replies and packets[0] in requests
    late = replies[:1] + requests + replies[1:]
    assert finding.split_directions(late, (port, port))[0][0] is replies[0]  # the opener's guess, turned round
    assert finding.split_directions(late, (port, port), "sport") == (requests, replies)
    found = finding.explain(late, (port, port), RecordedEvidence(recorded["result"]), "sport")
    assert (found["cause"], found["direction"]) == ("neighbour_failed", "reply"), found["words"]
    assert found["words"] == recorded["result"]["finding"]["words"]


def test_a_drop_before_the_first_hook_is_named_by_joining_the_sender_s_next_hop_and_the_receiver_s_tc_counters():
    # tc-ingress-drop as recorded: the router forwarded the SYN to 198.18.20.2 and saw no answer; the server's trace
    # saw nothing, and its eth0 (198.18.20.2) dropped packets at tc ingress. Neither decides alone.
    from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis import verdict
    recorded = recorded_incident("tc-ingress-drop")
    port, truth = recorded["port"], recorded["incident"]
    hosts = {}
    for host, result in ((truth["culprit"], recorded["result"]), (truth["sent_by"], recorded["sent_by"])):
        found = finding.explain(result["packets"], (port, port), RecordedEvidence(result, kernel=False))
        assert found["cause"] is None
        hosts[host] = {"trace": {"packets": result["packets"], "finding": found}}
    assert hosts["router"]["trace"]["finding"]["evidence"]["next_hop"]["address"] == "198.18.20.2"
    assert hosts["server"]["trace"]["finding"]["evidence"]["ingress_drops"][0]["dev"] == "eth0"
    timeouts = {"summary": probe_summary([{"result": "timeout"}] * 2)}
    report = verdict.build_report(hosts, {"port": 8080}, timeouts)
    fleet = report["verdict"]
    assert (fleet["culprit"], fleet["cause"]) == ("server", "tc_ingress_drop"), fleet
    assert fleet["line"] == "router \u2192 server \u2717" and "tc ingress on eth0" in fleet["words"]
    assert {row["host"]: row["cause"] for row in report["hosts"]} == {"router": None, "server": "tc_ingress_drop"}
    # The same drops on a host the router did not send the packet to blame nobody.
    hosts["router"]["trace"]["finding"]["evidence"]["next_hop"]["address"] = "198.18.20.9"
    fleet = verdict.build_report(hosts, {"port": 8080}, timeouts)["verdict"]
    assert (fleet["culprit"], fleet["cause"]) == (None, "undecided")


def test_the_mark_the_trace_saw_chooses_the_policy_rule():
    recorded = recorded_incident("mark-policy-route")
    port = recorded["port"]
    found = finding.explain(recorded["result"]["packets"], (port, port), RecordedEvidence(recorded["result"]))
    assert found["evidence"]["mark"] == 1 and found["evidence"]["route_lookup"]["lookup"]["mark"] == 1
    assert "fwmark 0x1 lookup 100" in found["words"] and "the packet carries mark 0x1" in found["words"]


def test_a_dnat_rule_s_new_destination_is_what_the_routing_decision_is_asked_about():
    assert finding.translated({"table": "nat", "dport": 80,
                               "rule": "-A PREROUTING -d 198.18.20.80/32 -j DNAT --to-destination 198.18.30.2:8080"}) \
        == ("198.18.30.2", 8080)
    assert finding.translated({"table": "nat", "dport": 80, "rule": "ip6 daddr 2001:db8::1 dnat ip6 to [2001:db8::2]:81"}) \
        == ("2001:db8::2", 81)
    assert finding.translated({"table": "nat", "dport": 80, "rule": "dnat to 198.18.30.2"}) == ("198.18.30.2", 80)
    assert finding.translated({"table": "filter", "rule": "-j DNAT --to-destination 198.18.30.2"}) is None


def test_a_full_accept_queue_is_named_only_unanswered_with_the_overflow_counter_and_a_waiting_listener():
    # accept-queue-full's server as recorded; then the same packets and sockets over counters that did not move
    # (conntrack-invalid's router, another window): a queue alone proves no drop, so the server is not blamed.
    with open(fixture_path("incidents", "accept-queue-full.json"), encoding="utf-8") as handle:
        recorded = json.load(handle)
    with open(fixture_path("incidents", "conntrack-invalid.json"), encoding="utf-8") as handle:
        quiet = json.load(handle)["result"]["finding"]["counters"]
    assert "TcpExtListenOverflows" not in quiet
    port, evidence = recorded["port"], RecordedEvidence(recorded["result"])
    found = finding.explain(recorded["result"]["packets"], (port, port), evidence)
    assert found["cause"] == "accept_queue_full" and found["evidence"]["listeners"][0]["queued"] >= 1
    # A SYN that was answered was not dropped for the queue, whatever the counter says.
    request = finding.split_directions(recorded["result"]["packets"], (port, port))[0][0]
    assert finding._listener(request, evidence, answered=True) is None  # pylint: disable=protected-access
    evidence.delta = quiet
    found = finding.explain(recorded["result"]["packets"], (port, port), evidence)
    assert found["cause"] is None and found["words"] == "passed (delivered local)"


@pytest.mark.parametrize("name", [name for name in INCIDENTS
                                  if recorded_incident(name)["result"]["finding"].get("drop_reasons")
                                  and not isinstance(recorded_incident(name)["port"], list)])  # replayable
def test_the_kernel_s_word_stands_beside_the_cause_as_it_did_in_the_lab(name):
    recorded = recorded_incident(name)
    port, truth, result = recorded["port"], recorded["incident"], recorded["result"]
    found = finding.explain(result["packets"], (port, port), RecordedEvidence(result))
    assert found["cause"] == result["finding"]["cause"]
    reasons = [drop["reason"] for drop in found["drop_reasons"] if drop["direction"] == found["direction"]]
    if truth.get("kernel_reason") in reasons:  # a short recording may end before the kernel gave up (a neighbour)
        assert found["kernel"] in ("corroborates", "decides")
    # Without bpftrace the same host decides the same, from the trace and the kernel's state alone.
    if found["kernel"] != "decides":
        alone = finding.explain(result["packets"], (port, port), RecordedEvidence(result, kernel=False))
        assert (alone["cause"], alone["words"], alone.get("kernel")) == (found["cause"], found["words"], None)


def test_the_kernel_decides_on_a_host_that_saw_nothing_and_the_fleet_names_it():
    from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis import verdict
    recorded = recorded_incident("tc-ingress-drop-untraced")
    port, result = recorded["port"], recorded["result"]
    found = finding.explain(result["packets"], (port, port), RecordedEvidence(result))
    assert (found["seen"], found["cause"], found["kernel"], found["layer"]) == (False, "kernel_drop", "decides", "kernel")
    assert found["words"].startswith("the kernel dropped it at tc ingress (a tc filter or program) on eth0 (TC_INGRESS, ")
    report = verdict.build_report({"server": {"trace": {"packets": [], "finding": found}}}, {"port": 8080},
                                  {"summary": probe_summary([{"result": "timeout"}] * 2)})
    assert (report["verdict"]["culprit"], report["verdict"]["cause"]) == ("server", "kernel_drop")
    text = verdict.drops_text(report["hosts"][0])  # what the reports show under "The kernel dropped"
    assert text.startswith("TC_INGRESS in ") and "on eth0 (request) x2" in text
    alone = finding.explain(result["packets"], (port, port), RecordedEvidence(result, kernel=False))
    assert alone["cause"] is None and "drop_reasons" not in alone


def test_a_drop_of_a_frame_the_host_bridges_names_the_bridge_and_br_netfilter_and_a_routed_one_does_not():
    recorded = recorded_incident("bridge-docker-forward")
    port, result = recorded["port"], recorded["result"]
    found = finding.explain(result["packets"], (port, port), RecordedEvidence(result))
    assert found["cause"] == "bridge_netfilter_drop" and found["evidence"]["bridged"]["value"] == 1
    assert found["fix"]["args"]["argv"] == ["iptables", "-I", "DOCKER-USER", "-i", "br0", "-o", "br0", "-j", "ACCEPT"]

    class Routed(RecordedEvidence):
        def link(self, dev):  # the same interface in and out, but not a bridge: a hairpin route, not a bridged frame
            return {"kind": "veth"}
    found = finding.explain(result["packets"], (port, port), Routed(result))
    assert found["cause"] == "policy_drop", found["words"]


def test_a_conversation_conntrack_holds_to_an_endpoint_the_rules_no_longer_choose_is_stale():
    recorded = recorded_incident("service-stale-conntrack")
    port, result = recorded["port"], recorded["result"]
    found = finding.explain(result["packets"], (port, port), RecordedEvidence(result))
    assert (found["cause"], found["evidence"]["held"]) == ("conntrack_stale_nat", ["198.18.20.2", 5353])
    assert found["fix"]["args"]["argv"][:3] == ["conntrack", "-D", "-p"]

    class Unmoved(RecordedEvidence):
        def nat_targets(self, proto, dst, dport):  # the rules still choose the held endpoint: nothing is stale
            return [("198.18.20.3", 5353), ("198.18.20.2", 5353)]

    class Unread(RecordedEvidence):
        def nat_targets(self, proto, dst, dport):  # a DNAT the reading cannot follow: the targets are unknown
            return None
    request = finding.deciding(finding.split_directions(result["packets"], (port, port), "sport")[0])
    assert finding._stale_nat(request, RecordedEvidence(result))["cause"] == "conntrack_stale_nat"  # pylint: disable=protected-access
    for evidence in (Unmoved(result), Unread(result)):  # the rest of the decision goes on from there
        assert finding._stale_nat(request, evidence) is None  # pylint: disable=protected-access
