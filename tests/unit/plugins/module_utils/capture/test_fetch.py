"""Packets, hops, rewrites and fates from real traces: what a person reads in them."""

import gc
import gzip
import os
import shutil

import pytest

from recorded import fixture_path

from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import OptionError
from ansible_collections.packetpath.linux.plugins.module_utils.capture import fetch, sources
from ansible_collections.packetpath.linux.plugins.module_utils.capture import packets as packets_module
from ansible_collections.packetpath.linux.plugins.module_utils.capture.fetch import (
    TimeWindow,
    TraceReader,
    _packet_needles,
    detect_format,
    kernel_log_needles,
)
from ansible_collections.packetpath.linux.plugins.module_utils.capture.hooks import HookInventory
from ansible_collections.packetpath.linux.plugins.module_utils.capture.legacy_rules import RULE_SOURCE, LegacyRules
from ansible_collections.packetpath.linux.plugins.module_utils.flow import Flow

TRACES = fixture_path("traces")


def trace(name):
    return os.path.join(TRACES, name)


def read(name, fmt=None, **options):
    lines = list(sources.read_file(trace(name)))
    if fmt is None:
        fmt, _head = detect_format(iter(lines))
    reader = TraceReader(fmt, **options)
    return reader.read(lines), reader


def recorded_legacy(stem):
    """The ruleset recorded beside a legacy trace: (LegacyRules, HookInventory)."""
    def text(kind):
        with open(trace("%s.%s" % (stem, kind)), encoding="utf-8") as handle:
            return handle.read()
    families = ("ipv4", "ipv6")
    return (LegacyRules(dict((f, text(f + "-save")) for f in families)),
            HookInventory.legacy(dict((f, text(f + "-tables").split()) for f in families), "host"))


def test_seed_output_trace_dnat_and_reroute():
    packets, reader = read("seed-ceph3-output-dnat-kern.log")
    assert len(packets) == 1 and reader.stats["unparsable_lines"] == 0
    packet = packets[0]
    assert packet["id"] == "tcp-57266-2213090174" and packet["host"] == "ceph3"
    assert len(packet["hops"]) == 15
    dnat = packet["hops"][4]
    assert (dnat["chain"], dnat["rule_number"], dnat["verdict"]) == ("KUBE-SEP-OR6JECCPPINGGGRC", 2, "accept")
    assert dnat["rewrite"] == {"dst": ["10.43.206.251", "10.0.1.12"]}
    reroute = packet["hops"][10]
    assert (reroute["table"], reroute["chain"], reroute["kind"]) == ("filter", "OUTPUT", "policy")
    assert reroute["rewrite"] == {"out": ["enp3s0", "enp5s0"]}
    assert [h for h in packet["hops"] if "rewrite" in h] == [dnat, reroute]
    # Verdicts the log does not print, told by where the walk went next.
    assert [h["verdict"] for h in packet["hops"][1:4]] == ["jump", "jump", "jump"]
    assert packet["hops"][1]["target"] == "KUBE-SERVICES"
    assert packet["hops"][6]["verdict"] == "return"
    assert packet["fate"] == "sent" and packet["last_hop"] == "nat:POSTROUTING:policy:10"
    assert packet["path"] == "routing decision \u2192 output \u2192 re-route \u2192 postrouting \u2192 out enp5s0"
    assert "dst 10.43.206.251 -> 10.0.1.12" in packet["summary"]
    assert "out enp3s0 -> enp5s0" in packet["summary"]
    assert len(packet["summary"].splitlines()) == 1 + 15 + 1


def test_seed_prerouting_trace_vanishes_at_the_routing_decision():
    packets, _reader = read("seed-ceph2-prerouting-rp-filter-kern.log")
    packet = packets[0]
    assert len(packet["hops"]) == 8 and "rewrite" not in str(packet["hops"])
    assert packet["last_hop"] == "nat:PREROUTING:policy:3"
    assert packet["fate"] == "vanished_after" and packet["vanished_after"] == "nat PREROUTING"
    assert packet["next_expected"] == "routing decision, then filter:INPUT or filter:FORWARD"
    assert packet["hints"] == [
        "died at the routing decision: check `route_lookup` with iif=enp5s0 src=192.168.235.13 dst=10.0.1.12; "
        "rp_filter, a missing route or a blackhole are the usual causes"]
    assert packet["follow_up"][0] == {"check": "route_lookup", "iif": "enp5s0", "src": "192.168.235.13",
                                      "dst": "10.0.1.12", "proto": "tcp", "dport": 8081}
    assert packet["path"] == "prerouting \u2192 routing decision (vanished)"


def test_lab_seed_with_its_ruleset_names_the_rules_as_of_fetch_time(fixture_text):
    rules, inventory = recorded_legacy("iptables_legacy-seed-node")
    lines = list(sources.read_journal(fixture_text("traces/journald-seed-kernel.json").splitlines()))
    reader = TraceReader("kernel_log", rules=rules, inventory=inventory, interfaces={"lo", "a-srv", "b-srv"})
    packets = reader.read(lines)
    # The client's packets (a-cli, b-cli) share the kernel log but are not this namespace's.
    assert packets and all(p["hops"][0]["in"] == "b-srv" for p in packets)
    assert reader.stats["packets_elsewhere"] == len(packets)
    for packet in packets:
        last = packet["hops"][-1]
        assert last["rule"] == "-A KUBE-SEP-PPLABLOCAL9090 -p tcp -m tcp -j DNAT --to-destination 203.0.113.12:9090"
        assert last["rule_source"] == RULE_SOURCE and last["verdict"] == "accept"
        assert packet["hops"][1]["rule"] == '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES'
        assert packet["fate"] == "vanished_after" and packet["vanished_after"] == "nat PREROUTING"
        assert "iif=b-srv src=198.51.100.13 dst=203.0.113.12" in packet["hints"][0]


def test_a_shared_kernel_log_splits_one_ip_id_into_a_pass_per_host():
    packets, reader = read("legacy-seed-dmesg.txt")
    assert [p["id"] for p in packets] == ["tcp-55845-4155797039", "tcp-55845-4155797039.2", "tcp-55846-4155797039",
                                          "tcp-55846-4155797039.2"]
    assert [p["hops"][0]["hook"] for p in packets] == ["output", "prerouting", "output", "prerouting"]
    client = packets[0]
    assert client["fate"] == "sent" and client["hops"][4]["rewrite"] == {"dst": ["192.0.2.80", "203.0.113.12"]}
    # The retransmission passes no nat chain (conntrack holds the mapping), and is still sent.
    assert [h["table"] for h in packets[2]["hops"]] == ["raw", "filter"] and packets[2]["fate"] == "sent"
    assert reader.stats["packets_seen"] == 4


def test_xtables_monitor_forward_drop_names_the_rule():
    packets, _reader = read("xtables-monitor-kube-node2-forward-drop.txt")
    packet = packets[0]
    assert packet["fate"] == "dropped_by_rule" and packet["last_hop"] == "filter:FORWARD:rule:0x6"
    assert "stray drop of the pod port" in packet["dropped_by"]["rule"]
    dnat = [h for h in packet["hops"] if "rewrite" in h]
    assert len(dnat) == 1 and dnat[0]["chain"] == "KUBE-SEP-PPLABPOD2"
    assert dnat[0]["rewrite"] == {"dst": ["198.51.100.12", "198.19.2.10"], "dport": [30080, 8080]}
    assert packet["path"].endswith("forward \u2192 dropped")


def test_nft_monitor_trace_id_reused_is_a_new_packet():
    packets, _reader = read("nft-monitor-kube-node3-dnat.txt")
    assert [p["id"] for p in packets] == ["bd43419a", "b02525ed", "3ad9982f", "bd43419a.2"]
    assert all(p["fate"] == "forwarded" for p in packets)
    assert packets[0]["hops"][6]["rule"] == "meta l4proto tcp dnat to 198.19.3.10:8080"
    assert packets[0]["hops"][6]["rewrite"] == {"dst": ["198.51.100.13", "198.19.3.10"], "dport": [30080, 8080]}


@pytest.mark.parametrize("name", ["nft-monitor-kube-node3-udp4", "xtables-monitor-kube-node2-udp4"])
def test_local_delivery_nobody_can_see_is_unknown_not_vanished(name):
    with open(trace(name + ".nft-list-chains"), encoding="utf-8") as handle:
        inventory = HookInventory.nft(handle.read(), "host")
    packets, _reader = read(name + ".txt", inventory=inventory)
    packet = packets[0]
    assert packet["hops"][-1]["hook"] == "prerouting"
    assert packet["fate"] == "unknown"
    assert "nothing hooks input" in packet["hints"][0]


def test_legacy_local_delivery_with_the_recorded_ruleset():
    rules, inventory = recorded_legacy("iptables_legacy-kube-node1-udp4-dmesg")
    packets, _reader = read("iptables_legacy-kube-node1-udp4-dmesg.txt", rules=rules, inventory=inventory)
    packet = packets[0]
    assert packet["fate"] == "delivered_local" and packet["hops"][-1]["hook"] == "input"
    assert packet["path"] == "prerouting \u2192 routing decision \u2192 input \u2192 local delivery"
    assert packet["hops"][1]["rule"].startswith("-A PREROUTING") and packet["hops"][1]["verdict"] == "jump"


def test_flow_filter_matches_any_hop_before_or_after_nat():
    after_dnat = Flow.from_params({"proto": "tcp", "dst": "10.0.1.12", "dport": "8081"})
    packets, _reader = read("seed-ceph3-output-dnat-kern.log", flow=after_dnat)
    assert len(packets) == 1
    other = Flow.from_params({"proto": "udp", "dport": "8081"})
    packets, reader = read("seed-ceph3-output-dnat-kern.log", flow=other)
    assert packets == [] and reader.stats["packets_seen"] == 1 and reader.stats["packets_matched"] == 0


def test_max_packets_and_packet_id():
    packets, reader = read("nft-monitor-kube-node3-dnat.txt", max_packets=2)
    assert [p["id"] for p in packets] == ["bd43419a", "b02525ed"] and reader.truncated
    packets, reader = read("nft-monitor-kube-node3-dnat.txt", packet_id="3ad9982f")
    assert [p["id"] for p in packets] == ["3ad9982f"] and not reader.truncated


def test_since_and_until_on_the_kernel_clock():
    window = TimeWindow({"epoch": 1, "uptime": 2067.0}, None, kernel_clock=True)
    packets, reader = read("legacy-seed-dmesg.txt", window=window)
    assert [p["id"] for p in packets] == ["tcp-55846-4155797039", "tcp-55846-4155797039.2"]
    assert reader.stats["events_outside_window"] == 11
    window = TimeWindow(None, 2067.0, kernel_clock=True)
    packets, _reader = read("legacy-seed-dmesg.txt", window=TimeWindow(None, {"uptime": 2067.0}, True))
    assert [p["id"] for p in packets] == ["tcp-55845-4155797039", "tcp-55845-4155797039.2"]


def test_since_on_wall_time_of_a_syslog_file():
    packets, _reader = read("seed-ceph2-prerouting-rp-filter-kern.log",
                            window=TimeWindow(packets_time("seed-ceph2-prerouting-rp-filter-kern.log") + 1, None,
                                              False))
    assert packets == []


def packets_time(name):
    packets, _reader = read(name)
    return packets[0]["time"]


def test_a_gzipped_rotated_log_reads_like_the_plain_one(tmp_path):
    rotated = tmp_path / "kern.log.2.gz"
    with open(trace("seed-ceph3-output-dnat-kern.log"), "rb") as plain, gzip.open(rotated, "wb") as packed:
        shutil.copyfileobj(plain, packed)
    packed_packets, _reader = read(str(rotated))
    plain_packets, _reader = read("seed-ceph3-output-dnat-kern.log")
    assert packed_packets == plain_packets and len(packed_packets[0]["hops"]) == 15


def test_journald_json_records(fixture_text):
    lines = list(sources.read_journal(fixture_text("traces/journald-seed-kernel.json").splitlines()))
    reader = TraceReader("kernel_log")
    packets = reader.read(lines)
    assert reader.stats["unparsable_lines"] == 0 and reader.stats["trace_events"] >= 10
    hosts = set(p["hops"][0]["hook"] for p in packets)
    assert hosts == {"output", "prerouting"}
    node = [p for p in packets if p["hops"][0].get("in") == "b-srv"][0]
    assert node["fate"] == "vanished_after" and node["vanished_after"] == "nat PREROUTING"
    assert node["time"] > 1.7e9 and node["uptime"] > 0  # wall time and the kernel clock both kept


def test_a_file_with_garbage_lines_counts_them(tmp_path):
    with open(trace("seed-ceph2-prerouting-rp-filter-kern.log"), encoding="utf-8") as handle:
        lines = handle.readlines()
    mixed = tmp_path / "kern.log"
    garbage = [lines[0][:90] + "\n", "\x00" * 30 + "\n", lines[3].replace("SRC=", ""), "\xff\xfe TRACE: x\n"]
    mixed.write_text("".join(lines[:4] + garbage + lines[4:]), encoding="utf-8")
    packets, reader = read(str(mixed))
    assert reader.stats["unparsable_lines"] == 3 and len(reader.stats["unparsable_samples"]) == 3
    assert len(packets) == 1 and len(packets[0]["hops"]) == 8


@pytest.mark.parametrize("chunk", [97, 700, 4096, 1 << 20])
@pytest.mark.parametrize("flow", [{"proto": "tcp", "sport": "52958"}, {"proto": "tcp", "dst": "203.0.113.12"},
                                  {"proto": "tcp", "dport": "8081"}])
def test_finding_a_packet_without_parsing_the_rest_gives_what_a_full_read_gives(monkeypatch, tmp_path, chunk, flow):
    """The grep-speed path (bytes.find on blocks) against reading every line, with blocks cut anywhere."""
    log = tmp_path / "kern.log"
    with open(trace("legacy-seed-dmesg.txt"), encoding="utf-8") as seed, \
            open(trace("seed-ceph3-output-dnat-kern.log"), encoding="utf-8") as other:
        log.write_text(other.read() + seed.read(), encoding="utf-8")
    selector = Flow.from_params(flow)
    needles = kernel_log_needles(selector, None)
    assert needles
    monkeypatch.setattr(sources, "CHUNK", chunk)
    monkeypatch.setattr(sources, "NEARBY", 4096)  # a packet here spans up to 3 KB
    found = list(sources.lines_of_packets(str(log), needles, _packet_needles))
    fast = TraceReader("kernel_log", flow=selector).read(found)
    full = TraceReader("kernel_log", flow=selector).read(sources.read_file(str(log)))
    assert fast == full
    if "dport" in flow:  # the seed's other packet goes to port 8081 too
        assert len(full) == 5 and len(found) == 32
    else:  # its lines (ID 57266) are never decoded
        assert [len(p["hops"]) for p in fast] == [7, 4, 2, 4] and len(found) == 17


def test_packet_id_needles_find_the_packet_in_a_file(tmp_path):
    log = tmp_path / "kern.log.1.gz"
    with open(trace("seed-ceph3-output-dnat-kern.log"), "rb") as plain, gzip.open(log, "wb") as packed:
        shutil.copyfileobj(plain, packed)
    needles = kernel_log_needles(None, "tcp-57266-2213090174")
    lines = list(sources.lines_of_packets(str(log), needles, _packet_needles))
    assert len(lines) == 15
    packets = TraceReader("kernel_log", packet_id="tcp-57266-2213090174").read(lines)
    assert [p["id"] for p in packets] == ["tcp-57266-2213090174"]


@pytest.mark.parametrize("value", [{"epoch": "abc"}, {"uptime": "nan"}, {"epoch": float("inf")}, "nan", "-inf",
                                   {"epoch": [1]}, "yesterday"])
def test_a_time_bound_that_is_no_time_is_refused_naming_the_option(value):
    with pytest.raises(OptionError) as raised:
        fetch.moment("since", value)
    assert str(raised.value).startswith("since=%r: not a time" % (value,)), str(raised.value)


def test_a_marker_and_numbers_are_times():
    assert fetch.moment("since", {"epoch": "1795546212.5", "uptime": 12}) == (1795546212.5, 12.0)
    assert fetch.moment("until", "@1795546212") == (1795546212.0, None)


def test_a_packet_that_repeats_its_hops_without_end_is_bounded(monkeypatch):
    """Issue #27: one packet with millions of hops (a forged or looping trace) held every hop in memory. A recorded
    nft monitor packet whose rule line comes again 5,000 times keeps MAX_HOPS hops and counts the rest."""
    with open(trace("nft-monitor-kube-node3-icmp4.txt"), encoding="utf-8") as handle:
        lines = handle.read().splitlines(True)
    repeated = lines[:2] + [lines[1]] * 5000 + lines[2:]
    reader = TraceReader("nft_monitor")
    first = reader.read(repeated)[0]
    kept = packets_module.MAX_HOPS
    assert len(first["hops"]) == kept and reader.truncated
    monkeypatch.setattr(packets_module, "MAX_HOPS", 10 ** 6)
    every = len(TraceReader("nft_monitor").read(repeated)[0]["hops"])
    assert every > 5000 and reader.stats["hops_skipped"] == every - kept


def test_a_probes_packets_are_kept_first_and_alone_when_strangers_share_its_port(tmp_path):
    # Two recordings of node3 (nftables) one after the other: IPv4 SYNs from port 50076 to 30080 first, then an IPv6
    # one from port 48534. The IPv6 client's stands for the probe's (48534 among the probe's source ports, which the
    # flow's port selects either way), the IPv4 ones for strangers' traffic on another of its ports.
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("".join(open(trace(name), encoding="utf-8").read() for name in (
        "nft-monitor-kube-node3-tcp4.txt", "nft-monitor-kube-node3-tcp6.txt")))
    plain = Flow.from_params({"proto": "tcp", "port": "48534:50076"})
    packets, reader = read(str(mixed), flow=plain, max_packets=1)
    assert [p["hops"][0]["src"] for p in packets] == ["198.51.100.10"] and reader.truncated  # first come, kept
    probe = Flow.from_params({"proto": "tcp", "port": "48534:50076", "probe_src": "2001:db8:100::10"})
    packets, reader = read(str(mixed), flow=probe, max_packets=1)
    assert [p["id"] for p in packets] == ["5e7a2dce"] and not reader.truncated
    assert reader.stats["packets_matched"] == 5 and reader.stats["packets_of_strangers"] == 4
    packets, reader = read(str(mixed), flow=probe, max_packets=60)  # room for all: the strangers still left out
    assert [p["id"] for p in packets] == ["5e7a2dce"] and reader.stats["packets_of_strangers"] == 4
    assert probe.flow_id != plain.flow_id and "(the probe's from 2001:db8:100::10 first)" in probe.describe()


def test_a_packet_from_the_probes_host_to_its_source_port_is_not_the_probes(tmp_path):
    # Issue #37: the probe's own host sending to the port the probe sends from (30080 here, the probe's source port
    # by the flow) is another conversation: the IPv6 SYN from the probe's address to 30080 is no longer taken for the
    # probe's, and with nothing else pairing its ports nothing is kept.
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("".join(open(trace(name), encoding="utf-8").read() for name in (
        "nft-monitor-kube-node3-tcp4.txt", "nft-monitor-kube-node3-tcp6.txt")))
    backwards = Flow.from_params({"proto": "tcp", "port": "30080", "probe_src": "2001:db8:100::10"})
    packets, reader = read(str(mixed), flow=backwards)
    assert packets == [] and reader.stats["packets_matched"] == 5 and reader.stats["packets_of_strangers"] == 5


def test_past_an_snat_the_probes_packets_are_those_that_pair_its_two_ports_and_unknown_ones_are_left_out(tmp_path):
    # Two recordings of node3 one after the other: SYNs from port 49346 to 30080, then from 50076 to 30080. With the
    # probe's address nowhere (an SNAT before the host changed it), the packets pairing the flow's port (30080) with
    # the probe's other port (50076) are its; the others on the port are strangers'.
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("".join(open(trace(name), encoding="utf-8").read() for name in (
        "nft-monitor-kube-node3-dnat.txt", "nft-monitor-kube-node3-tcp4.txt")))
    paired = Flow.from_params({"proto": "tcp", "port": "30080", "probe_src": "198.51.100.99", "probe_dport": 50076})
    packets, reader = read(str(mixed), flow=paired, max_packets=2)
    assert {p["hops"][0]["sport"] for p in packets} == {50076} and len(packets) == 2
    assert reader.stats["packets_matched"] == 8 and reader.stats["packets_of_strangers"] == 4 and reader.truncated
    # Nothing on the port is known to be the probe's: nothing is kept, all of it counted.
    unknown = Flow.from_params({"proto": "tcp", "port": "30080", "probe_src": "198.51.100.99", "probe_dport": 1})
    packets, reader = read(str(mixed), flow=unknown)
    assert packets == [] and reader.stats["packets_of_strangers"] == 8 and not reader.truncated


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_off_while_a_trace_is_read_and_as_it_was_after(enabled):
    """The parse pauses the cyclic collector (a fifth of a large log's time) and leaves it as it found it."""
    seen = []

    def lines():
        for line in sources.read_file(trace("seed-ceph3-output-dnat-kern.log")):
            seen.append(gc.isenabled())
            yield line

    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        packets = TraceReader("kernel_log").read(lines())
        assert len(packets) == 1 and seen and not any(seen)
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_a_read_that_fails_turns_the_collector_back_on():

    def lines():
        yield from list(sources.read_file(trace("seed-ceph3-output-dnat-kern.log")))[:1]
        raise OSError("the log went away")

    assert gc.isenabled()
    with pytest.raises(OSError):
        TraceReader("kernel_log").read(lines())
    assert gc.isenabled()
