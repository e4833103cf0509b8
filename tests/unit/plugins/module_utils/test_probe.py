"""Probe options are checked before anything is sent; results are summed up as the module reports them."""

import json
import os
import socket

import pytest

from recorded import fixture_path

from ansible_collections.packetpath.linux.plugins.module_utils import probe
from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis.evidence import sockets
from ansible_collections.packetpath.linux.plugins.module_utils.probe import Probe, ProbeError, summary


@pytest.mark.parametrize("args,message", [
    ({"proto": "tcp", "dst": "192.0.2.80"}, "dport: required for proto=tcp"),
    ({"proto": "tcp", "dst": "192.0.2.80", "dport": 70000}, "dport=70000: must be 1-65535"),
    ({"proto": "tcp", "dst": "192.0.2.80", "dport": 80, "count": 0}, "count=0: must be 1-100"),
    ({"proto": "tcp", "dst": "192.0.2.80", "dport": 80, "timeout": 0}, "timeout=0: must be more than 0"),
    ({"proto": "tcp", "dst": "192.0.2.80", "dport": 80, "interval": 11}, "interval=11: must be 0-10"),
    ({"proto": "tcp", "dst": "192.0.2.80", "dport": 80, "mark": -1}, "mark=-1"),
    ({"proto": "tcp", "dst": "192.0.2.80", "dport": 80, "dev": "eth0/1"}, "dev='eth0/1'"),
    ({"proto": "icmp", "dst": "192.0.2.80", "dport": 80}, "dport=80: ports go with tcp or udp"),
    ({"proto": "sctp", "dst": "192.0.2.80", "dport": 80}, "proto='sctp'"),
    ({"proto": "udp", "dst": "2001:db8::1", "dport": 53, "src": "192.0.2.1"}, "src='192.0.2.1'"),
    ({"proto": "udp", "dst": "example.org", "dport": 53}, "dst='example.org': not an IPv4/IPv6 address"),
    # A bad source is named as the source, not as dst; an interface name has no white space anywhere.
    ({"proto": "udp", "dst": "192.0.2.1", "dport": 53, "src": "bogus"}, "src='bogus': not an IPv4/IPv6 address"),
    ({"proto": "tcp", "dst": "192.0.2.80", "dport": 80, "dev": "et h0"}, "dev='et h0': not an interface name"),
    # A NUL ends the name the kernel reads: it would bind to "lo" (issue #42).
    ({"proto": "tcp", "dst": "192.0.2.80", "dport": 80, "dev": "lo\0x"}, "dev='lo\\x00x': not an interface name"),
    ({"proto": "tcp", "dst": "192.0.2.80", "dport": 0}, "dport=0: must be 1-65535"),
    ({"proto": "tcp", "dst": "192.0.2.80", "dport": 80, "sport": 65534, "parallel": True},
     "sport=65534: with parallel=true and count=3 the attempts use ports 65534-65536, past 65535"),
])
def test_bad_options(args, message):
    with pytest.raises(ProbeError) as error:
        Probe(**args)
    assert message in str(error.value)


def test_icmp_always_waits_for_the_reply():
    assert Probe("icmp", "2001:db8::1").expect_reply
    assert not Probe("udp", "192.0.2.1", dport=53).expect_reply


def test_summary_counts_results():
    attempts = [{"result": "timeout"}, {"result": "connected"}, {"result": "timeout"}]
    assert summary(attempts) == {"attempts": 3, "results": {"timeout": 2, "connected": 1}, "succeeded": 1,
                                 "failed": 2, "first": "timeout", "last": "timeout", "icmp": []}


def test_summary_names_each_icmp_error_and_its_sender_once():
    error = {"type": 3, "code": 1, "name": "destination unreachable", "from": "198.18.10.1"}
    attempts = [{"result": "unreachable", "icmp": error}, {"result": "unreachable", "icmp": error},
                {"result": "timeout"}]
    assert summary(attempts)["icmp"] == [{"name": "destination unreachable", "code": 1, "from": "198.18.10.1"}]


def test_a_fixed_source_port_in_the_ephemeral_range_is_warned_of(tmp_path):
    # /proc/sys/net/ipv4/ip_local_port_range as the kernel writes it (its default range, tab-separated).
    kernel = tmp_path / "ip_local_port_range"
    kernel.write_text("32768\t60999\n")
    assert probe.ephemeral_warning(20080, 20082, str(kernel)) is None  # diagnose_port's default: below the range
    assert probe.ephemeral_warning(48080, path=str(kernel)).startswith(
        "sport=48080 lies in this host's ephemeral port range (32768-60999)")
    assert probe.ephemeral_warning(32766, 32768, str(kernel)).startswith("source ports 32766-32768 reach in this")
    assert probe.ephemeral_warning(None, path=str(kernel)) is None


def test_attempts_side_by_side_each_come_from_a_port_of_their_own():
    """On loopback: a listener, and a parallel probe from a free block of ports; each attempt connected from
    sport + its number (sequential attempts share sport)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        block = free_ports(3)
        attempts = Probe("tcp", "127.0.0.1", dport=listener.getsockname()[1], sport=block, count=3, interval=0,
                         timeout=2, parallel=True).run()
    assert [(a["attempt"], a["result"], a["source_port"]) for a in attempts] == [
        (1, "connected", block), (2, "connected", block + 1), (3, "connected", block + 2)]
    assert Probe("tcp", "127.0.0.1", dport=80, sport=block, count=3).source_port(2) == block


def free_ports(count):
    """The first of `count` consecutive ports no socket on loopback holds, below the ephemeral range."""
    for first in range(21000, 30000, count):
        holders = []
        try:
            for port in range(first, first + count):
                holder = socket.socket()
                holders.append(holder)
                holder.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for holder in holders:
                holder.close()
    raise AssertionError("no %d free ports on loopback" % count)


@pytest.mark.skipif(os.geteuid() != 0, reason="SO_MARK needs CAP_NET_ADMIN")
def test_a_mark_from_2_to_the_31_on_is_set_as_the_kernel_reads_it():
    """Python hands setsockopt an int as a C int: 0x80000000 (a common kube-proxy/Calico bit) raised TypeError."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        attempts = Probe("tcp", "127.0.0.1", dport=listener.getsockname()[1], mark=0x80000000, count=1,
                         timeout=2).run()
    assert [a["result"] for a in attempts] == ["connected"]


def test_a_source_port_a_socket_holds_is_refused_before_anything_is_sent(tmp_path):
    # The accept-queue-full incident's server, as the lab recorded its /proc/net/tcp: sshd listening on 22, and a
    # connection from local port 57550 (0xE0CE) to 8080.
    with open(fixture_path("incidents", "accept-queue-full.json"), encoding="utf-8") as handle:
        recorded = json.load(handle)
    table = tmp_path / "tcp"
    table.write_text(recorded["result"]["proc_net"]["/proc/net/tcp"])
    held = sockets.local_ports("tcp", {("tcp", "ipv4"): str(table)})
    assert held[22] >= {"listening"} and held[57550] == {"connected"}
    sender = Probe("tcp", "127.0.0.1", dport=8080, sport=57550)
    with pytest.raises(ProbeError) as refused:
        sender.plan(held)
    assert "sport=57550: port 57550 is held by a connected socket in this network namespace" in str(refused.value)
    # A free port: the plan says where from (loopback answers for itself here: no packet leaves).
    assert Probe("tcp", "127.0.0.1", dport=8080, sport=20080).plan(held) == {"source": "127.0.0.1", "sports": [20080]}


def test_a_plan_through_an_interface_this_host_lacks_is_refused_naming_it():
    with pytest.raises(ProbeError) as refused:
        Probe("udp", "127.0.0.1", dport=9, dev="pp-absent0").plan({})
    assert str(refused.value).startswith("dev='pp-absent0': refused here: ")
