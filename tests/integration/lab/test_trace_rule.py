"""packetpath.linux.trace_rule on real kernels, over SSH, on the kube lab (one node per backend)."""

import ipaddress
import json
import os
import re
import shlex
import time

import pytest
from labtools import (BIN, Monitor, connect, in_netns, journal, module, module_on, nflog_monitor, records_dir, run,
                      traces_left)

NODES = {"node1": ("iptables_legacy", "198.51.100.11"), "node2": ("iptables_nft", "198.51.100.12"),
         "node3": ("nftables", "198.51.100.13")}


pytestmark = pytest.mark.usefixtures("kube")  # the kube lab, up for the whole module


@pytest.fixture(autouse=True)
def no_trace_left_behind():
    yield
    module_on(list(NODES), "packetpath.linux.trace_rule", {"state": "absent", "all": True})
    for host in NODES:
        assert not ours(host), "a test left a trace rule on %s" % host


def trace_rule(host, check=False, diff=False, **args):
    return module(host, "packetpath.linux.trace_rule", args, check=check, diff=diff)


def ruleset(host):
    """Everything netfilter holds in the host's namespace, counters left out."""
    netns = "pp-" + host
    # nft shows iptables-nft rules without their comments: the -save tools show the tag.
    parts = [in_netns(netns, ["nft", "list", "ruleset"]).stdout]
    for save in ("iptables-legacy-save", "ip6tables-legacy-save", "iptables-nft-save", "ip6tables-nft-save"):
        parts.append(in_netns(netns, [save]).stdout)
    text = "\n".join(parts)
    text = re.sub(r"^#.*$", "", text, flags=re.M)
    return re.sub(r"\[\d+:\d+\]|counter packets \d+ bytes \d+ ?", "", text)


def ours(host):
    """Lines of any trace rule or of our table (no other trace rule exists in the lab)."""
    return [line for line in ruleset(host).splitlines() if "packetpath" in line or "nftrace set 1" in line]


def traced(host, address, port, until_nothing=False):
    """Send one SYN from the client to host:port and return the trace lines the host's backend produced."""
    backend = NODES[host][0]
    if backend == "iptables_legacy":  # NFLOG of the host's own namespace (trace_rule bound nf_log there)
        monitor = nflog_monitor("pp-" + host)
    else:
        argv = ["xtables-monitor", "--trace"] if backend == "iptables_nft" else ["nft", "monitor", "trace"]
        monitor = Monitor("pp-" + host, argv)
    connect("pp-client", address, port, timeout=1)
    return [line for line in monitor.stop().splitlines() if "TRACE" in line or line.startswith("trace id")]


@pytest.mark.parametrize("host", sorted(NODES))
def test_present_traces_real_packets_idempotently_and_absent_stops_it(host):
    backend, address = NODES[host]
    first = trace_rule(host, proto="tcp", dport="30080", expires=120)
    assert first["_status"] == "CHANGED" and first["backend"] == backend, first["_stdout"]
    assert first["expires_at"] and len(first["rules"]) == (4 if backend != "nftables" else 2)
    lines = traced(host, address, 30080)
    assert lines, "no trace output on %s" % host
    assert any("KUBE-SEP-PPLABPOD" in line for line in lines), "the trace does not follow the DNAT:\n" + "\n".join(lines)

    again = trace_rule(host, proto="tcp", dport="30080", expires=120)
    assert again["_status"] == "SUCCESS" and not again["changed"]
    assert again["expires_at"] == first["expires_at"], "a second present must not re-arm the expiry"

    gone = trace_rule(host, state="absent", proto="tcp", dport="30080")
    assert gone["changed"] and len(gone["removed"]) == len(first["rules"])
    assert not ours(host)
    assert traced(host, address, 30080) == [], "a packet was traced after absent"
    assert not trace_rule(host, state="absent", proto="tcp", dport="30080")["changed"]


@pytest.mark.parametrize("host, address", [("node1", "2001:db8:100::11"), ("node3", "2001:db8:100::13")])
def test_ipv6_flow_is_traced(host, address):
    result = trace_rule(host, proto="tcp", dst=address, dport="30080")
    assert result["changed"] and result["flow"].endswith("ipv6")
    if NODES[host][0] == "iptables_legacy":
        assert [rule["rule"].split(" -A ")[0] for rule in result["rules"]] == ["ip6tables -t raw"] * 2
    lines = traced(host, address, 30080)
    assert lines, "no IPv6 trace on %s" % host
    assert any(ipaddress.ip_address(address).exploded in line or "ip6 daddr %s" % address in line for line in lines), lines


def test_check_mode_changes_nothing_and_diff_shows_the_rule():
    result = trace_rule("node2", check=True, diff=True, proto="udp", dport="53", src="198.51.100.10")
    assert result["changed"]
    assert "+iptables -t raw -A PREROUTING -s 198.51.100.10/32 -p udp -m udp --dport 53" in result["_stdout"]
    assert not ours("node2")
    trace_rule("node2", proto="udp", dport="53", src="198.51.100.10", expires=60)
    removal = trace_rule("node2", check=True, diff=True, state="absent", proto="udp", dport="53", src="198.51.100.10")
    assert removal["changed"] and "-iptables_nft: iptables -t raw -A OUTPUT -s 198.51.100.10/32" in removal["_stdout"]
    assert len([line for line in ours("node2") if "packetpath:" in line]) == 2, "check mode removed something"


def test_a_new_rate_replaces_the_rule():
    trace_rule("node1", proto="tcp", dport="30080", iif="eth1", expires=60)
    changed = trace_rule("node1", proto="tcp", dport="30080", iif="eth1", rate=2, burst=4, expires=60)
    assert changed["changed"]
    assert [(r["hook"], r["rate"], r["burst"]) for r in changed["rules"]] == [("prerouting", 2, 4)] * 2
    assert len(ours("node1")) == 2 and all("--limit 2/sec --limit-burst 4" in line for line in ours("node1"))


@pytest.mark.parametrize("host", ["node1", "node3"])
def test_removing_one_flow_keeps_the_other(host):
    trace_rule(host, proto="tcp", dport="30080")
    kept = trace_rule(host, proto="udp", dport="8080")
    trace_rule(host, state="absent", proto="tcp", dport="30080")
    left = ours(host)
    assert left and all("8080" in line or "table inet packetpath" in line or "chain " in line or line.strip() == "}"
                        for line in left), left
    assert "30080" not in "\n".join(left)
    assert all(rule["flow_id"] == kept["flow_id"] for rule in trace_rule(host, proto="udp", dport="8080")["rules"])


def test_a_flow_moves_to_the_backend_asked_for_and_keeps_an_expiry():
    first = trace_rule("node2", proto="tcp", dport="30080", expires=60)
    assert first["backend"] == "iptables_nft"
    moved = trace_rule("node2", proto="tcp", dport="30080", expires=4, backend="nftables")
    assert moved["changed"] and moved["backend"] == "nftables"
    assert sorted(r["backend"] for r in moved["removed"]) == ["iptables_nft"] * 4
    table = in_netns("pp-node2", ["nft", "list", "table", "inet", "packetpath"]).stdout
    assert "chain pre_%s" % first["flow_id"] in table and "chain out_%s" % first["flow_id"] in table
    assert "packetpath:%s" % first["flow_id"] not in in_netns("pp-node2", ["iptables-nft-save", "-t", "raw"]).stdout
    deadline = time.monotonic() + 15
    while ours("node2") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not ours("node2"), "the moved flow lost its expiry"


@pytest.mark.parametrize("host", ["node1", "node2", "node3"])
def test_the_trace_expires_by_itself(host):
    result = trace_rule(host, proto="tcp", dport="30080", expires=3)
    assert result["changed"] and ours(host)
    deadline = time.monotonic() + 15
    while ours(host) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not ours(host), "the rules outlived their expiry"
    assert not trace_rule(host, state="absent", proto="tcp", dport="30080")["changed"]


def test_expires_zero_cancels_the_switch_and_keeps_the_rule():
    trace_rule("node2", proto="tcp", dport="30080", expires=3)
    kept = trace_rule("node2", proto="tcp", dport="30080", expires=0)
    assert kept["changed"] and kept["expires_at"] is None
    assert [rule["until"] for rule in kept["rules"]] == [None] * 4, "the kernel's deadline must go with the switch"
    time.sleep(5)
    assert len([line for line in ours("node2") if "packetpath:" in line]) == 4
    assert traced("node2", NODES["node2"][1], 30080), "the rule kept must still trace"


@pytest.mark.parametrize("host, then", [("node1", "present"), ("node2", "absent"), ("node3", "present")])
def test_a_killed_expiry_leaves_a_rule_the_kernel_no_longer_matches_and_the_next_arm_removes_it(host, then):
    """Issue #42: the kernel keeps the deadline too (iptables' time match, nft's meta time), so a sleeper killed
    leaves an inert rule; the next arm of another flow on the host removes it (or the next absent of one, as
    trace_results' trace_off does), and the audit names it before."""
    address = NODES[host][1]
    first = trace_rule(host, proto="tcp", dport="30080", expires=3)
    assert first["rules"] and all(rule["until"] == first["expires_at"] for rule in first["rules"]), first["rules"]
    record = os.path.join(records_dir("pp-" + host), "expiry", first["flow_id"] + ".json")
    with open(record, encoding="utf-8") as handle:
        os.kill(json.load(handle)["pid"], 9)
    time.sleep(4.5)
    assert len([line for line in ours(host) if first["flow_id"] in line]) == len(first["rules"]), \
        "the sleeper was killed: its rules must still be there"
    assert traced(host, address, 30080) == [], "a rule past its deadline still traces"
    audit = module(host, "packetpath.linux.host_audit", {"checks": ["trace_leftovers"]})["checks"][0]
    assert any("inert" in finding for finding in audit["findings"]), audit
    second = trace_rule(host, state=then, proto="udp", dport="53")
    assert second["changed"] and {rule["flow_id"] for rule in second["removed"]} == {first["flow_id"]}
    if then == "present":
        warned = " ".join(second["_stderr"].split())  # as Ansible printed it, its lines joined
        assert "removed the rules of flow %s: their expiry had passed" % first["flow_id"] in warned, warned
    assert [line for line in ours(host) if first["flow_id"] in line] == [] and not os.path.exists(record)


FOREIGN_IPTABLES = "*raw\n" + "".join(
    "-A PREROUTING -s 203.0.113.%d/32 -p tcp --dport %d -j CT --notrack\n" % (i % 250, 1000 + i) for i in range(150)
) + "COMMIT\n*filter\n:KUBE-FIREWALL - [0:0]\n" + "".join(
    "-A KUBE-FIREWALL -s 192.0.2.%d/32 -p udp --dport %d -j DROP\n" % (i % 250, 2000 + i) for i in range(150)
) + "COMMIT\n"


def rule_lines(host):
    """Every iptables rule in the host's namespace (both flavours, both families), in order."""
    lines = []
    for save in ("iptables-legacy-save", "ip6tables-legacy-save", "iptables-nft-save", "ip6tables-nft-save"):
        lines += [line for line in in_netns("pp-" + host, [save]).stdout.splitlines() if line.startswith("-A ")]
    return lines


@pytest.mark.parametrize("host, restore", [("node1", "iptables-legacy-restore"), ("node2", "iptables-nft-restore")])
def test_hundreds_of_foreign_rules_are_untouched(host, restore):
    in_netns("pp-" + host, [restore, "--noflush"], stdin=FOREIGN_IPTABLES)
    before = rule_lines(host)
    assert len(before) >= 300 + 10
    trace_rule(host, proto="tcp", dport="30080", expires=60)
    during = rule_lines(host)
    assert len(during) == len(before) + 4
    assert [line for line in during if "packetpath:" not in line] == before, "a foreign rule moved or changed"
    flavour = restore.split("-")[1]
    raw = in_netns("pp-" + host, ["iptables-%s" % flavour, "-t", "raw", "-S", "PREROUTING"]).stdout.splitlines()
    assert raw[0] == "-P PREROUTING ACCEPT" and "packetpath:" in raw[1], "our rule is not first in raw PREROUTING"
    assert sum("--notrack" in line for line in raw) == 150
    trace_rule(host, state="absent", all=True)
    assert rule_lines(host) == before


# Someone else's rules that look like ours (issue #42): our prefix without our tag, our tag's form on another target,
# one of the probe's tags without the rate limit every rule of ours has.
LOOK_ALIKES = ("-A PREROUTING -p tcp -m tcp --dport 9 -m comment --comment packetpath:backup -j ACCEPT",
               "-A PREROUTING -p tcp -m tcp --dport 9 -m comment --comment packetpath:0123456789ab -j DROP",
               "-A OUTPUT -p udp -m udp --dport 9 -m comment --comment packetpath:0123456789ab:from_probe -j TRACE")
# Our chain's name, rule and tag in a table of someone else's.
NFT_LOOK_ALIKE = ('table inet other { chain pre_0123456789ab { type filter hook prerouting priority -300; '
                  'meta nftrace set 1 comment "packetpath:0123456789ab"; }; }')


@pytest.mark.parametrize("host", sorted(NODES))
def test_look_alikes_of_our_rules_are_never_removed(host):
    backend, address = NODES[host]
    netns = "pp-" + host
    command = ["iptables-%s" % backend.split("_")[1], "-t", "raw"] if backend != "nftables" else None
    if command:
        for rule in LOOK_ALIKES:
            in_netns(netns, command + shlex.split(rule))
    else:
        in_netns(netns, ["nft", "-f", "-"], stdin=NFT_LOOK_ALIKE)
    try:
        before = ruleset(host)
        trace_rule(host, proto="tcp", dport="30080", expires=60)
        assert traced(host, address, 30080), "our own trace does not trace"
        trace_rule(host, state="absent", all=True)
        assert ruleset(host) == before, "a look-alike was removed or changed"
    finally:
        if command:
            for rule in LOOK_ALIKES:
                in_netns(netns, command + ["-D"] + shlex.split(rule)[1:])
        else:
            in_netns(netns, ["nft", "delete", "table", "inet", "other"])


def test_native_nftables_ruleset_is_untouched():
    before = ruleset("node3")
    trace_rule("node3", proto="tcp", dport="30080")
    trace_rule("node3", proto="udp", dport="53", hooks=["output"])
    trace_rule("node3", state="absent", all=True)
    assert ruleset("node3") == before


def test_netns_option_places_the_rule_in_that_namespace():
    result = trace_rule("node1", proto="tcp", dport="8080", netns="pp-pod1")
    assert result["changed"]
    pod_rules = in_netns("pp-pod1", ["iptables-legacy-save", "-t", "raw"]).stdout + \
        in_netns("pp-pod1", ["iptables-nft-save", "-t", "raw"]).stdout
    assert result["flow_id"] in pod_rules
    assert not ours("node1")
    gone = trace_rule("node1", state="absent", proto="tcp", dport="8080", netns="pp-pod1")
    assert gone["changed"]
    assert result["flow_id"] not in in_netns("pp-pod1", ["iptables-nft-save", "-t", "raw"]).stdout


def test_the_handle_it_returns_switches_off_what_was_armed_and_stands_alone():
    armed = trace_rule("node1", proto="tcp", port="8080", family="both", netns="pp-pod1")
    assert armed["handle"] == {"proto": "tcp", "port": "8080", "family": "both", "netns": "pp-pod1"}
    refused = trace_rule("node1", state="absent", handle=armed["handle"], proto="tcp")
    assert refused["_status"] == "FAILED" and "mutually exclusive: handle|proto" in refused["msg"], refused["msg"]
    # The capture's reader takes the same handle: the flow, in pp-pod1 (nothing was captured there, and it says so).
    collected = module("node1", "packetpath.linux.trace_results", {"source": "capture", "handle": armed["handle"]})
    assert "no capture of this flow on this host" in collected["msg"], collected
    gone = trace_rule("node1", state="absent", handle=armed["handle"])
    assert gone["changed"] and gone["flow_id"] == armed["flow_id"] and gone["handle"] == armed["handle"]
    assert armed["flow_id"] not in in_netns("pp-pod1", ["iptables-nft-save", "-t", "raw"]).stdout
    # A failed arming still says what to switch off.
    failed = trace_rule("node1", proto="tcp", port="8080", netns="pp-pod1", rate=0)
    assert failed["_status"] == "FAILED" and failed["handle"] == {"proto": "tcp", "port": "8080", "netns": "pp-pod1"}


@pytest.mark.parametrize("host", sorted(NODES))
def test_a_probes_packets_get_rules_of_their_own_and_stay_idempotent(host):
    backend = NODES[host][0]
    args = dict(proto="tcp", port="28080", probe_src="198.51.100.10", backend=backend, expires=120)
    armed = trace_rule(host, **args)
    assert armed["changed"] and armed["handle"]["probe_src"] == "198.51.100.10"
    again = trace_rule(host, **args)
    assert not again["changed"], again["diff"] if "diff" in again else again
    # As the backend lists them (iptables-nft's rules are in nft's listing too, without their comments).
    probe_lines = [line for line in ours(host) if "198.51.100.10" in line and ("--comment" in line or
                                                                               backend == "nftables")]
    if backend == "nftables":  # in the flow's chain of each hook, before the flow's own two rules
        assert len(armed["rules"]) == 2 and len(probe_lines) == 4, ours(host)
    else:  # per hook: the flow's rule for each family, and the probe's two (from it, back to it) for IPv4
        assert len(armed["rules"]) == 8 and len(probe_lines) == 4, ours(host)
        tags = [re.search(r"packetpath:[0-9a-f]+(:\w+)?", rule["rule"]).group(0) for rule in armed["rules"]]
        assert sorted(set(tags)) == ["packetpath:%s%s" % (armed["flow_id"], kind)
                                     for kind in ("", ":from_probe", ":to_probe")] and len(tags) == 8
    gone = trace_rule(host, state="absent", handle=armed["handle"])
    assert gone["changed"] and not ours(host)


def test_netns_option_takes_the_pid_of_a_process_inside():
    listener = [r for r in journal()["resources"] if r["kind"] == "process" and r["host"] == "pod3"][0]
    result = trace_rule("node3", proto="udp", dport="8080", netns=str(listener["pid"]), backend="nftables")
    assert result["changed"] and result["backend"] == "nftables"
    assert "pre_%s" % result["flow_id"] in in_netns("pp-pod3", ["nft", "list", "table", "inet", "packetpath"]).stdout
    assert not ours("node3")
    assert trace_rule("node3", state="absent", all=True, netns=str(listener["pid"]))["changed"]
    assert in_netns("pp-pod3", ["nft", "list", "tables"]).stdout == ""


def nf_log(netns, pf):
    return in_netns(netns, ["cat", "/proc/sys/net/netfilter/nf_log/%d" % pf]).stdout.strip()


def test_legacy_binds_nfnetlink_log_for_the_trace_and_restores_what_was_there():
    in_netns("pp-node1", ["sh", "-c", "echo NONE > /proc/sys/net/netfilter/nf_log/2; "
                                      "echo nf_log_ipv6 > /proc/sys/net/netfilter/nf_log/10"])
    result = trace_rule("node1", proto="tcp", dport="30080")
    assert result["nf_log"]["bound"] == {"ipv4": ["NONE", "nfnetlink_log"], "ipv6": ["nf_log_ipv6", "nfnetlink_log"]}
    assert result["nf_log"]["logger"] == "nflog"
    assert (nf_log("pp-node1", 2), nf_log("pp-node1", 10)) == ("nfnetlink_log", "nfnetlink_log")
    again = trace_rule("node1", proto="udp", dport="30080")  # a second legacy flow keeps the binding
    assert again["nf_log"]["bound"] == {}
    trace_rule("node1", state="absent", proto="udp", dport="30080")
    assert nf_log("pp-node1", 2) == "nfnetlink_log", "put back while a legacy flow of ours is still traced"
    gone = trace_rule("node1", state="absent", proto="tcp", dport="30080")
    assert gone["nf_log"]["restored"] == {"ipv4": ["nfnetlink_log", "NONE"], "ipv6": ["nfnetlink_log", "nf_log_ipv6"]}
    assert (nf_log("pp-node1", 2), nf_log("pp-node1", 10)) == ("NONE", "nf_log_ipv6")


def test_a_killed_legacy_trace_puts_the_binding_back_when_its_expiry_fires():
    in_netns("pp-node1", ["sh", "-c", "echo NONE > /proc/sys/net/netfilter/nf_log/2"])
    before_v6 = nf_log("pp-node1", 10)
    trace_rule("node1", proto="tcp", dport="30081", expires=3)  # and nobody switches it off
    assert nf_log("pp-node1", 2) == "nfnetlink_log"
    deadline = time.monotonic() + 15
    while (ours("node1") or nf_log("pp-node1", 2) != "NONE") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not ours("node1") and (nf_log("pp-node1", 2), nf_log("pp-node1", 10)) == ("NONE", before_v6)
    assert not traces_left("pp-node1")


@pytest.mark.parametrize("args, message", [
    ({"proto": "tcp", "dport": "70000"}, "dport='70000': ports are 1-65535"),
    ({"proto": "icmp", "dport": "8081"}, "dport='8081': ports need proto tcp, udp or sctp, not icmp"),
    ({"proto": "tcp", "dport": "80", "dst": "2001:db8::1", "family": "ipv4"}, "family='ipv4': the addresses are ipv6 only"),
    ({"proto": "tcp", "iif": "eth1;reboot"}, "iif='eth1;reboot': not an interface name"),
    ({"proto": "tcp", "iif": "eth 1"}, "iif='eth 1': not an interface name"),
    ({"proto": "tcp", "dport": "80", "backend": "pf"}, "backend"),
    ({"proto": "tcp", "dport": "80", "rate": 0}, "rate=0: must be 1-10000"),
    ({"proto": "tcp"}, "proto='tcp': alone selects every packet"),
    ({"proto": "tcp", "dst": "0.0.0.0/0"}, "proto='tcp': alone selects every packet"),
    ({"proto": "tcp", "src": "::/0", "dport": "1:65535"}, "proto='tcp': alone selects every packet"),
    ({"proto": "tcp", "dst": "fe80::1%eth1", "dport": "80"}, "dst='fe80::1%eth1': an IPv6 zone id"),
    ({"proto": "tcp", "dport": "80", "iif": "eth1", "hooks": ["output"]}, "iif=eth1 cannot be matched at output"),
    ({"proto": "tcp", "dport": "80", "iif": "eth1", "oif": "eth2"}, "parameters are mutually exclusive: iif|oif"),
    ({"proto": "tcp", "dport": "80", "all": True}, "all=True: goes with state=absent and no flow options"),
    ({"proto": "tcp", "dport": "80", "netns": "no-such-ns"}, "netns='no-such-ns': /run/netns/no-such-ns does not exist"),
])
def test_bad_input_fails_clearly_and_changes_nothing(args, message):
    before = ruleset("node1")
    result = trace_rule("node1", **args)
    assert result["_status"] == "FAILED"
    assert message in result["msg"], result["msg"]
    assert ruleset("node1") == before


def test_a_missing_binary_for_the_chosen_backend_fails_clearly_and_changes_nothing():
    """nft hidden in a private mount namespace (a non-executable file bound over it); the module runs on the
    controller but enters node3's network namespace first, so it could touch nothing outside the lab."""
    before = ruleset("node3")
    args = json.dumps({"proto": "tcp", "dport": "30080", "backend": "nftables", "netns": "pp-node3"})
    ansible = "%s localhost -m packetpath.linux.trace_rule -a '%s'" % (os.path.join(BIN, "ansible"), args)
    proc = run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                "mount --bind /dev/null /usr/sbin/nft && " + ansible], check=False)
    assert "FAILED" in proc.stdout, proc.stdout + proc.stderr
    assert "backend='nftables': nftables needs nft, not installed on this host; nothing was changed" in proc.stdout
    assert ruleset("node3") == before


def test_our_nft_table_is_kept_when_someone_else_put_a_chain_in_it():
    trace_rule("node3", proto="tcp", dport="30080", expires=60)
    in_netns("pp-node3", ["nft", "add", "chain", "inet", "packetpath", "someone_elses"])
    try:
        result = trace_rule("node3", state="absent", proto="tcp", dport="30080")
        assert result["changed"] and result["nft_tables"] == [], result["_stdout"]
        listing = in_netns("pp-node3", ["nft", "list", "table", "inet", "packetpath"]).stdout
        assert "chain someone_elses" in listing and "nftrace" not in listing
    finally:
        in_netns("pp-node3", ["nft", "delete", "table", "inet", "packetpath"], check=False)
