"""packetpath.linux.trace_results on real kernels over SSH: every backend, a FORWARD drop, the seed's rp_filter case,
and the async pattern the documentation shows."""

import os

import pytest
from labtools import LiveCapture, ROOT, ansible_playbook, connect, in_netns, lab, module, module_on

NODES = {"node1": ("iptables_legacy", "198.51.100.11", "198.19.1.10"),
         "node2": ("iptables_nft", "198.51.100.12", "198.19.2.10"),
         "node3": ("nftables", "198.51.100.13", "198.19.3.10")}
NODEPORT = 30080


def trace_on(host, **flow):
    result = module(host, "packetpath.linux.trace_rule", dict(flow, hooks=["prerouting"], expires=120))
    assert result["_status"] in ("CHANGED", "SUCCESS"), result["_stdout"]
    return result


@pytest.mark.usefixtures("kube")
class TestKube:
    @pytest.fixture(autouse=True)
    def traces_off(self):
        yield
        module_on(list(NODES), "packetpath.linux.trace_rule", {"state": "absent", "all": True})

    def test_legacy_live_from_nflog_forwarded_through_kube_proxy_dnat(self):
        trace_on("node1", proto="tcp", dport=str(NODEPORT))
        with LiveCapture("node1", proto="tcp", dport=str(NODEPORT)) as capture:
            connect("pp-client", NODES["node1"][1], NODEPORT, timeout=1.5)
        result = capture.result
        assert result["source"] == "nflog" and "iptables_legacy" in result["source_reason"]
        assert result["format"] == "kernel_log" and result["stats"]["packets_elsewhere"] == 0
        first = result["packets"][0]
        assert first["fate"] == "forwarded"
        dnat = [h for h in first["hops"] if "rewrite" in h][0]
        assert dnat["chain"] == "KUBE-SEP-PPLABPOD1" and dnat["rewrite"]["dst"] == [NODES["node1"][1], "198.19.1.10"]
        assert dnat["rule"] == "-A KUBE-SEP-PPLABPOD1 -p tcp -m tcp -j DNAT --to-destination 198.19.1.10:8080"
        assert dnat["rule_source"] == "iptables-save as of fetch time"
        assert first["path"].endswith("forward \u2192 postrouting \u2192 out cni0")

    def test_iptables_nft_live_capture_names_the_forward_drop(self):
        trace_on("node2", proto="tcp", dport=str(NODEPORT))
        with LiveCapture("node2", duration=8, max_packets=1, proto="tcp", dport=str(NODEPORT)) as capture:
            connect("pp-client", NODES["node2"][1], NODEPORT, timeout=1)
        result = capture.result
        assert result["source"] == "xtables_monitor"
        packet = result["packets"][0]
        assert packet["fate"] == "dropped_by_rule" and packet["last_hop"].startswith("filter:FORWARD:rule:0x")
        assert "pplab: stray drop of the pod port" in packet["dropped_by"]["rule"]
        assert result["stats"]["seconds"] < 8  # max_packets ended the capture before its duration
        assert not os.path.exists(capture.ready)

    def test_nftables_live_capture_forwarded(self):
        trace_on("node3", proto="tcp", dport=str(NODEPORT))
        with LiveCapture("node3", proto="tcp", dport=str(NODEPORT)) as capture:
            connect("pp-client", NODES["node3"][1], NODEPORT, timeout=1.5)
        result = capture.result
        assert result["source"] == "nft_monitor" and result["ruleset"]["hooks_from"] == "host"
        first = result["packets"][0]
        assert first["fate"] == "forwarded"
        assert any(h.get("rule") == "meta l4proto tcp dnat to 198.19.3.10:8080" for h in first["hops"])

    def test_query_runs_on_the_host(self):
        trace_on("node1", proto="udp", dport="9999")
        with LiveCapture("node1", proto="udp", query="packets[].[fate, path]") as capture:
            in_netns("pp-client", ["python3", "-c", "import socket; s=socket.socket(socket.AF_INET, "
                                   "socket.SOCK_DGRAM); s.sendto(b'packetpath-lab', ('%s', 9999))" % NODES["node1"][1]])
        result = capture.result
        assert "packets" not in result
        assert result["query_result"] == [
            ["delivered_local", "prerouting \u2192 routing decision \u2192 input \u2192 local delivery"]]

    def test_async_capture_pattern_from_the_docs(self):
        result = ansible_playbook(os.path.join(ROOT, "tests", "integration", "playbooks", "async_capture.yml"))
        assert "packetpath-async-capture: dropped_by_rule filter:FORWARD:rule:0x" in result.stdout, result.stdout


@pytest.mark.parametrize("args,message", [
    ({"source": "file"}, "source is file but all of the following are missing: path"),
    ({"max_packets": 0}, "max_packets=0: must be 1-10000"),
    ({"check_endpoints": True}, "check_endpoints=True: goes with explain=true"),
    ({"since": "yesterday-ish"}, "since='yesterday-ish': not a time"),
    ({"dport": "80"}, "dport='80': ports need proto tcp, udp or sctp"),
    ({"query": "packets[?"}, "query='packets[?': not a JMESPath expression"),
    # Errors a JMESPath expression shows only when it runs on the result, and times that are no time.
    ({"source": "file", "path": os.path.join(ROOT, "tests", "unit", "fixtures", "traces", "legacy-seed-dmesg.txt"),
      "query": "abs(packets)"}, "query='abs(packets)': "),
    ({"source": "file", "path": os.path.join(ROOT, "tests", "unit", "fixtures", "traces", "legacy-seed-dmesg.txt"),
      "query": "nosuchfn(@)"}, "query='nosuchfn(@)': "),
    ({"source": "file", "path": os.path.join(ROOT, "tests", "unit", "fixtures", "traces", "legacy-seed-dmesg.txt"),
      "query": "packets[::0]"}, "query='packets[::0]': slice step cannot be zero"),
    # Hostile queries (issue #42): too deep or too long for the parser, a built-in given the wrong type, an
    # expression reference where a value is wanted, a chain of pipes past Python's recursion.
    ({"query": "(" * 3000 + "a" + ")" * 3000}, "query='" + "(" * 200 + "...': not a JMESPath expression"),
    ({"query": "a[%s]" % ("9" * 5000)}, "query='a[" + "9" * 198 + "...': not a JMESPath expression"),
    ({"source": "file", "path": os.path.join(ROOT, "tests", "unit", "fixtures", "traces", "legacy-seed-dmesg.txt"),
      "query": "merge(@, `1`)"}, "query='merge(@, `1`)': "),
    ({"source": "file", "path": os.path.join(ROOT, "tests", "unit", "fixtures", "traces", "legacy-seed-dmesg.txt"),
      "query": "&foo"}, "query='&foo': "),
    ({"source": "file", "path": os.path.join(ROOT, "tests", "unit", "fixtures", "traces", "legacy-seed-dmesg.txt"),
      "query": "@|" * 5000 + "@"}, "query='@|@|@|"),
    ({"since": {"epoch": "abc"}}, "since={'epoch': 'abc'}: not a time"),
    ({"since": "nan"}, "since='nan': not a time"),
    ({"since": "inf"}, "since='inf': not a time"),
    ({"source": "file", "path": "/nonexistent/kern.log"}, "path='/nonexistent/kern.log': cannot read it"),
])
def test_bad_input_fails_clearly(kube, args, message):
    result = module("node1", "packetpath.linux.trace_results", args)
    assert result["_status"] == "FAILED" and message in result["msg"], result["_stdout"]


def test_seed_rp_filter_vanishes_at_the_routing_decision_until_loose_mode():
    lab("up", "seed")
    try:
        flow = {"proto": "tcp", "dport": "8081"}
        module("node", "packetpath.linux.trace_rule", dict(flow, hooks=["prerouting"]))
        with LiveCapture("node", **flow) as capture:
            assert connect("pp-client", "192.0.2.80", 8081, timeout=1.2) == "TimeoutError"
        result = capture.result
        assert result["source"] == "nflog" and result["stats"]["packets_elsewhere"] == 0
        packet = result["packets"][0]
        assert packet["fate"] == "vanished_after" and packet["vanished_after"] == "nat PREROUTING"
        assert packet["last_hop"] == "nat:KUBE-SEP-PPLABLOCAL9090:rule:1"
        assert packet["hints"][0].startswith("died at the routing decision: check `route_lookup` with iif=b-srv "
                                             "src=198.51.100.13 dst=203.0.113.12")
        in_netns("pp-node", ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=2", "net.ipv4.conf.b-srv.rp_filter=2"])
        with LiveCapture("node", **flow) as capture:
            assert connect("pp-client", "192.0.2.80", 8081, timeout=2).startswith("packetpath-lab node")
        result = capture.result
        assert result["packets"][0]["fate"] == "delivered_local"
        assert result["packets"][0]["hops"][-1]["dport"] == 9090
    finally:
        lab("down")
