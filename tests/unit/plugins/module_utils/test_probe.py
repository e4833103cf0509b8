"""Probe options are checked before anything is sent; results are summed up as the module reports them."""

import pytest

from ansible_collections.packetpath.linux.plugins.module_utils import probe
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
    ({"proto": "tcp", "dst": "192.0.2.80", "dport": 0}, "dport=0: must be 1-65535"),
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
    assert probe.ephemeral_warning(20080, str(kernel)) is None  # diagnose_port's default: below the range
    assert probe.ephemeral_warning(48080, str(kernel)).startswith(
        "sport=48080 lies in this host's ephemeral port range (32768-60999)")
    assert probe.ephemeral_warning(None, str(kernel)) is None
