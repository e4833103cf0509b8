"""The host's finding from recorded traces: a rule's drop names the rule; the catalogue's words and fixes."""

import pytest
from ansible_collections.packetpath.linux.plugins.module_utils.capture import sources
from ansible_collections.packetpath.linux.plugins.module_utils.capture.fetch import TraceReader, detect_format
from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis import causes, finding
from recorded import fixture_path


def packets_of(name):
    lines = list(sources.read_file(fixture_path("traces", name)))
    fmt, _head = detect_format(iter(lines))
    return TraceReader(fmt).read(lines)


class NoEvidence:
    """A host whose evidence must not be needed: a rule's drop is decided by the trace alone."""

    delta = {}

    def route(self, spec):
        raise AssertionError("the routing decision was asked for: %s" % spec)

    def listening(self):
        raise AssertionError("the sockets were asked for")


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
         "line": "martian source"}


@pytest.mark.parametrize("cause", sorted(causes.CATALOGUE))
def test_every_cause_has_words_and_evidence(cause):
    found = causes.finding(cause, "request", {}, **FACTS)
    assert found["cause"] == cause and "{" not in found["words"] and causes.CATALOGUE[cause].evidence
    assert found["remediable"] == (cause in ("rp_filter", "forwarding_disabled"))
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
    report = verdict.build_report(hosts, {"port": 30080}, {"summary": {"results": {"timeout": 3}}})
    assert report["schema_version"] == 2
    assert (report["verdict"]["culprit"], report["verdict"]["cause"]) == ("node2", "rule_drop")
    assert report["verdict"]["line"] == "node2 \u2717  (not seen: pod)"
    assert [row["cause"] for row in report["hosts"]] == ["rule_drop", None]


def test_a_run_whose_probe_connected_through_every_host_is_not_undecided():
    from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis import verdict
    packets = packets_of("nft-monitor-kube-node3-dnat.txt")  # forwarded, all of them
    hosts = {"node3": {"trace": {"packets": packets, "finding": finding.explain(packets, None, NoEvidence())}}}
    passed = verdict.build_report(hosts, {"port": 30080}, {"summary": {"results": {"connected": 3}}})["verdict"]
    assert (passed["cause"], passed["culprit"], passed["words"]) == (None, None, "the packet passed every traced host")
    failed = verdict.build_report(hosts, {"port": 30080}, {"summary": {"results": {"timeout": 3}}})["verdict"]
    assert failed["cause"] == "undecided" and failed["words"].startswith("no traced host saw the packet stop")
