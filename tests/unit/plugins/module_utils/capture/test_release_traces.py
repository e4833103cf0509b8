"""The monitors' trace texts as Debian 11 (iptables 1.8.7, nftables 0.9.8) and Debian 13 (1.8.11, 1.1.3) print them,
recorded on the kube lab's nodes running those releases' tools (`make fixtures ONLY=traces:debian11,debian13`): each
parses into the packets the same probe gave on Debian 12's tools (issue #38). Legacy TRACE is the kernel's own text,
the same on every release."""

import os

import pytest

from recorded import fixture_path, packets_of

RELEASES = ("debian11", "debian13")
RECORDED = sorted(name for name in os.listdir(fixture_path("traces", "debian11")) if name.endswith(".txt"))


def shape(packets):
    """What the packets did, apart from what differs between two probes (ids, ports, times, a retransmission more or
    less within the recording's second) or two releases' printing of a rule (1.8.7 prints some without their
    matches)."""
    return sorted(set((packet["family"], packet["proto"], packet["fate"], packet["path"],
                       tuple((hop["table"], hop["chain"], hop["kind"], hop["verdict"]) for hop in packet["hops"]))
                      for packet in packets))


def reference(name):
    """Debian 12's packets for the case; where its own monitor could not print the rule (xtables-monitor 1.8.9 and an
    IPv6 rule with a TCP match: "unsupported layer 4 protocol value"), Debian 11's, which could."""
    with open(fixture_path("traces", name), encoding="utf-8") as handle:
        broken = "Parsing nftables rule failed" in handle.read()
    return packets_of(os.path.join("debian11", name) if broken else name)


def test_each_release_s_monitors_were_recorded_for_every_case_of_debian_12():
    assert RECORDED == sorted(name for name in os.listdir(fixture_path("traces"))
                              if name.startswith(("xtables-monitor-kube-", "nft-monitor-kube-")) and name.endswith(".txt")
                              and "-forward-drop" not in name and "-dnat" not in name)
    assert len(RECORDED) == 10
    for release in RELEASES:
        assert sorted(name for name in os.listdir(fixture_path("traces", release)) if name.endswith(".txt")) == RECORDED


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("name", RECORDED)
def test_a_release_s_trace_text_parses_into_the_packets_debian_12_s_gave(release, name):
    theirs = packets_of(os.path.join(release, name))
    assert theirs and shape(theirs) == shape(reference(name))


@pytest.mark.parametrize("release", RELEASES + ("",))
def test_a_rule_reads_the_same_on_every_release(release):
    # iptables 1.8.11 prints `iptables -t raw -A ...`: read as 1.8.7-1.8.9's `-4 -t raw -A ...`.
    rules = [hop["rule"] for name in RECORDED if name.startswith("xtables-monitor")
             for packet in packets_of(os.path.join(release, name)) for hop in packet["hops"] if hop.get("rule")]
    assert rules and all(rule.startswith(("-4 -t ", "-6 -t ")) for rule in rules), rules
