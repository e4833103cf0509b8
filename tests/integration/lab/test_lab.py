"""The lab itself: idempotent, crash-safe, reachable over real SSH, faithful to its topologies."""

import os
import re
import subprocess

import pytest
import sysctl_guard
from labtools import (INVENTORY, ansible, ansible_playbook, connect, in_netns, journal, kill, lab, lab_up_in_background,
                      machine_state, wait_for_journal)


def processes(state):
    return sorted((r["what"], r["host"], r["pid"]) for r in state["resources"] if r["kind"] == "process")


def test_seed_up_twice_ssh_down_twice_leaves_the_machine_as_it_was(clean_machine, lab_down_after):
    first = lab("up", "seed")
    assert "is up: 2 hosts" in first.stdout
    built = journal()
    second = lab("up", "seed")
    assert "already up" in second.stdout
    assert processes(journal()) == processes(built), "a second lab-up must not restart anything"

    ping = ansible("all", "-m", "ansible.builtin.ping")
    assert ping.stdout.count("SUCCESS") == 2, ping.stdout
    survey = ansible_playbook("packetpath.linux.preflight")
    # The host column is as wide as the longest host name: ROOT lines up under its heading.
    # The table's rows as packetpath.linux.say prints them (not the recap's lines, which start with a host too).
    rows = re.findall(r'^((?:HOST|client|node) +)(ROOT|True|False|-) ', survey.stdout, re.M)
    assert [(len(first), rest) for first, rest in rows] == [(7, "ROOT"), (7, "True"), (7, "True")], survey.stdout
    assert survey.stdout.count("iptables_legacy") == 2
    assert "failed=0" in survey.stdout
    # bpftrace is installed by `make` (tools/bootstrap.sh): the kernel's drop reasons can be read on every host.
    assert len(re.findall(r'^(?:client|node) .* yes +- *$', survey.stdout, re.M)) == 2, survey.stdout

    during = machine_state()
    assert during["netns"] == ["pp-client", "pp-node"]
    # Legacy TRACE is read through NFLOG inside each host: the root namespace's nf_log settings stay as they were.
    assert during["nf_log_all_netns"] == clean_machine["nf_log_all_netns"]
    assert during["nf_log_bindings"] == clean_machine["nf_log_bindings"]
    assert len([p for p in during["processes"] if "sshd" in p]) == 2

    assert "resources removed" in lab("down").stdout
    assert "0 resources" in lab("down").stdout
    assert machine_state() == clean_machine


def test_seed_reproduces_the_incident(lab_down_after):
    lab("up", "seed")
    # Strict rp_filter on the node: the SYN from 198.51.100.13 arriving on b-srv is dropped.
    counter = ["nstat", "-az", "TcpExtIPReversePathFilter"]
    before = int(in_netns("pp-node", counter).stdout.split()[-2])
    assert connect("pp-client", "203.0.113.12", 8081, timeout=1.5) == "TimeoutError"
    assert int(in_netns("pp-node", counter).stdout.split()[-2]) > before
    # Through the client's service address too (nat OUTPUT DNAT, then re-route out b-cli).
    assert connect("pp-client", "192.0.2.80", 8081, timeout=1.5) == "TimeoutError"
    # Loose mode is the seed's fix: the same connection reaches the node's service behind its DNAT.
    in_netns("pp-node", ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=2", "net.ipv4.conf.b-srv.rp_filter=2"])
    assert connect("pp-client", "203.0.113.12", 8081) == "packetpath-lab node tcp/9090"
    assert connect("pp-client", "192.0.2.80", 8081) == "packetpath-lab node tcp/9090"


def test_kube_nodes_use_their_own_backend_and_node2_drops(lab_down_after):
    lab("up", "kube")
    versions = ansible("node1:node2:node3", "-m", "ansible.builtin.command", "-a", "iptables --version")
    flavours = dict(re.findall(r"^(node\d) \| CHANGED \| rc=0 >>\niptables v[\d.]+ \((\w+)\)$", versions.stdout, re.M))
    # Each host's `iptables` follows its own /etc/netns/<ns>/alternatives.
    assert flavours == {"node1": "legacy", "node2": "nf_tables", "node3": "nf_tables"}, versions.stdout
    assert "KUBE-SEP-PPLABPOD3" in in_netns("pp-node3", ["nft", "list", "chain", "ip", "nat", "KUBE-SEP-PPLABPOD3"]).stdout
    assert "KUBE-SEP-PPLABPOD1" in in_netns("pp-node1", ["iptables-legacy-save", "-t", "nat"]).stdout
    assert "KUBE-SEP-PPLABPOD2" in in_netns("pp-node2", ["iptables-nft-save", "-t", "nat"]).stdout
    # The NodePort reaches each node's pod across the DNAT, except through node2's FORWARD drop.
    assert connect("pp-client", "198.51.100.11", 30080) == "packetpath-lab pod1 tcp/8080"
    assert connect("pp-client", "198.51.100.12", 30080, timeout=1.5) == "TimeoutError"
    assert connect("pp-client", "198.51.100.13", 30080) == "packetpath-lab pod3 tcp/8080"
    # IPv6 on the node network answers too (nothing listens on 22 there: a refusal, not a timeout).
    assert connect("pp-client", "2001:db8:100::13", 22) == "ConnectionRefusedError"


def test_lab_down_after_a_killed_lab_up_leaves_nothing(clean_machine):
    proc = lab_up_in_background("scale", "--hosts", "12")
    recorded = wait_for_journal(20, proc)
    kill(proc)
    assert recorded >= 20 and not journal().get("complete")
    assert machine_state() != clean_machine, "the kill should have left a half-built lab to clean"
    lab("down")
    assert machine_state() == clean_machine


def test_a_bad_topology_builds_nothing(clean_machine, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("name: bad\nhosts: {a: {routes: ['10.0.0.0/8 dev lo']}}\n")
    result = lab("up", str(bad), check=False)
    assert result.returncode == 2
    assert "outside the lab's networks" in result.stderr
    assert machine_state() == clean_machine


def test_fifty_hosts_answer_over_ssh(lab_down_after):
    lab("up", "scale", "--hosts", "50")
    ping = ansible("all", "-f", "25", "-m", "ansible.builtin.ping")
    assert ping.stdout.count("SUCCESS") == 50, ping.stdout[-2000:]
    assert os.path.exists(INVENTORY)


def test_the_sysctl_guard_fails_when_a_watched_key_changes():
    """The session's guard, shown on a scratch namespace so that nothing outside the lab changes."""
    scratch = "pp-guard"
    subprocess.run(["ip", "netns", "add", scratch], check=True)
    try:
        before = sysctl_guard.snapshot(scratch)
        assert "net/ipv4/conf/all/rp_filter" in before and "kernel/pid_max" in before
        sysctl_guard.assert_unchanged(before, sysctl_guard.snapshot(scratch))
        old = before["net/ipv4/conf/all/rp_filter"]
        new = "2" if old != "2" else "1"
        in_netns(scratch, ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=" + new])
        with pytest.raises(AssertionError, match="net/ipv4/conf/all/rp_filter: %s -> %s" % (old, new)):
            sysctl_guard.assert_unchanged(before, sysctl_guard.snapshot(scratch))
    finally:
        subprocess.run(["ip", "netns", "del", scratch], check=True)
