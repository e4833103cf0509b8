"""packetpath.linux.probe from the lab's hosts over SSH: what each kind of probe reports, on real paths."""

import json

import pytest
from labtools import ansible, in_netns, module


def probe(host, check=False, **args):
    return module(host, "packetpath.linux.probe", args, check=check)


@pytest.mark.usefixtures("seed")
class TestSeed:
    def test_strict_rp_filter_times_out_then_loose_mode_connects_from_the_same_port(self):
        result = probe("client", dst="192.0.2.80", dport=8081, sport=40001, count=2, timeout=1, interval=0)
        assert result["_status"] == "SUCCESS" and result["changed"] is False
        assert [a["result"] for a in result["attempts"]] == ["timeout", "timeout"]
        assert result["summary"]["failed"] == 2 and 900 < result["attempts"][0]["latency_ms"] < 2000
        in_netns("pp-node", ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=2", "net.ipv4.conf.b-srv.rp_filter=2"])
        try:
            result = probe("client", dst="192.0.2.80", dport=8081, sport=40001, count=3, interval=0)
        finally:
            in_netns("pp-node", ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf.b-srv.rp_filter=1"])
        # The same source port three times in a row: the probe leaves no TIME_WAIT behind.
        assert [(a["result"], a["source_port"]) for a in result["attempts"]] == [("connected", 40001)] * 3

    def test_refused_udp_reply_icmp_reply(self):
        refused = probe("client", dst="198.51.100.12", dport=1, count=1)
        assert refused["attempts"][0]["result"] == "refused" and refused["attempts"][0]["errno"] == "ECONNREFUSED"
        udp = probe("client", proto="udp", dst="198.51.100.12", dport=9090, expect_reply=True, count=1)
        assert udp["attempts"][0]["result"] == "reply"
        sent = probe("client", proto="udp", dst="198.51.100.12", dport=9090, count=1)
        assert sent["attempts"][0]["result"] == "sent"
        icmp = probe("client", proto="icmp", dst="198.51.100.12", count=2, interval=0)
        assert [a["result"] for a in icmp["attempts"]] == ["reply", "reply"]
        assert icmp["attempts"][0]["from"] == "198.51.100.12"

    def test_unreachable_and_device_binding(self):
        # The client has no route to 203.0.113.99 through a-cli: SO_BINDTODEVICE keeps it there.
        result = probe("client", proto="icmp", dst="198.51.100.12", dev="a-cli", count=1)
        assert result["attempts"][0]["result"] == "reply"
        unreachable = probe("client", dst="192.0.2.99", dport=80, count=1, timeout=1)
        assert unreachable["attempts"][0]["result"] in ("unreachable", "timeout")

    def test_check_mode_sends_nothing(self):
        shown = ansible("client", "-m", "packetpath.linux.probe", "-a", json.dumps({"dst": "192.0.2.80", "dport": 8081}),
                        "--check").stdout
        assert "client | SKIPPED" in shown


@pytest.mark.usefixtures("seed")
@pytest.mark.parametrize("args,message", [
    ({"dst": "192.0.2.80", "dport": 8081, "count": 101}, "count=101: must be 1-100"),
    ({"dst": "192.0.2.80", "dport": 8081, "timeout": 31}, "timeout=31.0: must be more than 0 and at most 30"),
    ({"dst": "192.0.2.0/24", "dport": 8081}, "dst='192.0.2.0/24': not an IPv4/IPv6 address"),
    ({"proto": "icmp", "dst": "192.0.2.80", "sport": 5}, "ports go with tcp or udp"),
    ({"dst": "192.0.2.80", "dport": 8081, "src": "2001:db8::1"}, "src='2001:db8::1': not of the same family"),
])
def test_bad_input_sends_nothing(args, message):
    result = probe("client", **args)
    assert result["_status"] == "FAILED" and message in result["msg"] and "nothing was sent" in result["msg"]


@pytest.mark.usefixtures("seed")
def test_a_missing_port_is_refused_by_the_argument_spec():
    result = probe("client", dst="192.0.2.80")
    assert result["_status"] == "FAILED"
    assert "proto is tcp but all of the following are missing: dport" in result["msg"], result["msg"]
