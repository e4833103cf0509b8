"""Legacy TRACE read live from NFLOG inside each host's namespace: every host reads its own packets only, even
where all hosts name their interfaces alike, and nothing goes through the kernel log the machine shares."""

from labtools import LiveCapture, connect, kernel_trace_since, lab, live_captures, module, nflog_monitor, uptime
from recorded import fixture_path

SHARED = ("client", "router", "server")


def trace(host, **flow):
    result = module(host, "packetpath.linux.trace_rule", dict(flow, expires=120))
    assert result["_status"] in ("CHANGED", "SUCCESS"), result["_stdout"]
    assert result["backend"] == "iptables_legacy" and result["nf_log"]["logger"] == "nflog", result["_stdout"]
    return result


def off(host):
    module(host, "packetpath.linux.trace_rule", {"state": "absent", "all": True})


def labels(packet):
    return ["%s:%s:%s:%s" % (hop["table"], hop["chain"], hop["kind"], hop["rule_number"]) for hop in packet["hops"]]


def chains(packets):
    return {hop["chain"] for packet in packets for hop in packet["hops"] if hop["chain"].isupper()}


def test_three_legacy_hosts_named_alike_each_read_only_their_own_packets(lab_down_after):
    lab("up", "shared-names")
    since = uptime()
    try:
        for host in SHARED:
            trace(host, proto="tcp", dport="8080:8090", hooks=["prerouting", "output"])
        with live_captures(SHARED, proto="tcp", dport="8080:8090") as captures:
            assert connect("pp-client", "198.18.20.2", 8080).startswith("packetpath-lab server")
            assert connect("pp-client", "198.18.20.2", 8090, timeout=1) == "TimeoutError"  # the client's own drop
    finally:
        for host in SHARED:
            off(host)
    client, router, server = (capture.result for capture in captures)
    assert all(result["source"] == "nflog" for result in (client, router, server))
    by_port = {name: {p["hops"][0]["dport"]: p for p in result["packets"]}
               for name, result in (("client", client), ("router", router), ("server", server))}
    # 8080 went through all three, each seeing its own side of it.
    assert by_port["client"][8080]["fate"] == "sent" and chains([by_port["client"][8080]]) <= {"OUTPUT", "POSTROUTING"}
    assert by_port["router"][8080]["fate"] == "forwarded"
    assert chains([by_port["router"][8080]]) <= {"PREROUTING", "FORWARD", "POSTROUTING"}
    assert by_port["server"][8080]["fate"] == "delivered_local"
    assert chains([by_port["server"][8080]]) <= {"PREROUTING", "INPUT"}
    # 8090 died in the client's filter OUTPUT: neither the router nor the server saw it.
    assert by_port["client"][8090]["fate"] == "dropped_by_rule"
    assert by_port["client"][8090]["last_hop"] == "filter:OUTPUT:rule:1"
    assert 8090 not in by_port["router"] and 8090 not in by_port["server"]
    # Every hop a host reports is on its own interfaces (the client's eth0 is not the router's).
    assert all(hop.get("in") in (None, "eth0") and hop.get("out") in (None, "eth0")
               for packet in client["packets"] + server["packets"] for hop in packet["hops"])
    # Nothing went through the kernel log: the hosts need none, readable or not.
    assert kernel_trace_since(since, "198.18.20.2") == []


def test_nflog_group_0_held_by_another_program_is_named_not_taken(lab_down_after):
    lab("up", "shared-names")
    holder = nflog_monitor("pp-server", seconds=8)  # stands for ulogd
    try:
        result = module("server", "packetpath.linux.trace_results", {"source": "nflog", "duration": 1})
    finally:
        holder.stop()
    assert result["_status"] == "FAILED"
    assert "NFLOG group 0 of this network namespace is taken by another program" in result["msg"], result["msg"]


def fixture_hops(host_interfaces):
    """The first packet's hops on one seed host, as the kernel log printed them when the fixture was recorded."""
    found = []
    with open(fixture_path("traces", "legacy-seed-dmesg.txt"), encoding="utf-8") as handle:
        for line in handle:
            head, fields = line.split("TRACE: ", 1)[1].split(" ", 1)
            interfaces = {field.split("=", 1)[1] for field in fields.split()[:2]} - {""}
            if interfaces & host_interfaces:
                if head in found and head.startswith("raw:"):
                    break  # the retransmission begins
                found.append(head)
    return found


def test_on_the_seed_nflog_gives_the_hops_the_kernel_log_gave(lab_down_after):
    lab("up", "seed")
    trace("client", proto="tcp", dport="8081", hooks=["output"])
    trace("node", proto="tcp", dport="8081", hooks=["prerouting"])
    with LiveCapture("client", proto="tcp", dport="8081") as client, \
            LiveCapture("node", proto="tcp") as node:
        assert connect("pp-client", "192.0.2.80", 8081, timeout=1.2) == "TimeoutError"
    assert labels(client.result["packets"][0]) == fixture_hops({"a-cli", "b-cli"})
    assert labels(node.result["packets"][0]) == fixture_hops({"b-srv"})
