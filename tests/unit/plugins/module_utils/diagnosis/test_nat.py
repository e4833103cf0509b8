"""Where today's nat rules send a new conversation, read from a real iptables-save (kube-proxy's layout in the kube
lab's node1: KUBE-SERVICES -> KUBE-SVC -> KUBE-SEP DNAT, and a NodePort through addrtype)."""

import json

import pytest
from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis.evidence import nat
from recorded import fixture_path


def kube_node1():
    with open(fixture_path("backends", "iptables-legacy-save-kube-node1.txt"), encoding="utf-8") as handle:
        return handle.read()


def test_a_service_address_and_a_node_port_lead_to_the_pod_and_nothing_else_does():
    text = kube_node1()
    assert nat.dnat_targets(text, "tcp", "192.0.2.10", 80) == [("198.19.1.10", 8080)]
    assert nat.dnat_targets(text, "tcp", "198.18.0.11", 30080) == [("198.19.1.10", 8080)]  # addrtype: not ruled out
    assert nat.dnat_targets(text, "tcp", "192.0.2.10", 81) == []
    assert nat.dnat_targets(text, "udp", "192.0.2.10", 80) == []  # the service is tcp
    assert nat.dnat_targets(text, "tcp", "192.0.2.11", 80) == []  # another address, not a node port either


def test_a_spread_over_endpoints_lists_each_once_in_rule_order():
    # The service-endpoint-gone lab's router (iptables-nft-save -t nat): statistic nth over three endpoints.
    with open(fixture_path("backends", "iptables-nft-save-service-endpoint-gone-router.txt"), encoding="utf-8") as handle:
        text = handle.read()
    assert nat.dnat_targets(text, "tcp", "198.18.10.1", 8080) == [
        ("198.18.20.2", 9090), ("198.18.20.3", 9090), ("198.18.20.4", 9090)]
    assert nat.dnat_targets(text, "tcp", "198.18.10.7", 8080) == []  # another address


def recorded_ruleset(name):
    """`nft -j list ruleset` of a ruleset loaded in a scratch namespace (tests/unit/fixtures/nat/README.md)."""
    with open(fixture_path("nat", "nft-j-list-ruleset-%s.json" % name), encoding="utf-8") as handle:
        return handle.read()


def test_kube_proxy_s_nftables_layout_leads_through_the_verdict_maps_to_each_endpoint():
    text = recorded_ruleset("kube-proxy")
    assert nat.nft_dnat_targets(text, "tcp", "198.18.10.1", 8080) == [
        ("198.18.20.2", 9090), ("198.18.20.3", 9090), ("198.18.20.4", 9090)]
    assert nat.nft_dnat_targets(text, "tcp", "198.18.10.3", 5432) == [("198.18.20.7", 5432)]
    assert nat.nft_dnat_targets(text, "tcp", "198.18.10.1", 8081) == []  # no element of service-ips
    assert nat.nft_dnat_targets(text, "udp", "198.18.10.1", 8080) == []  # the element is tcp
    assert nat.nft_dnat_targets(text, "tcp", "2001:db8::1", 8080) == []  # an ip table: IPv4 only


def test_every_form_of_a_native_dnat_gives_its_addresses_and_ports():
    text = recorded_ruleset("dnat-forms")
    # dnat to numgen inc mod 3 map { 0 : .2, 1 : .3, 2 : .4 } : 9090
    assert nat.nft_dnat_targets(text, "tcp", "198.18.10.1", 8080) == [
        ("198.18.20.2", 9090), ("198.18.20.3", 9090), ("198.18.20.4", 9090)]
    # dnat to jhash ip saddr mod 2 map @endpoints: the named map's addresses, the port unchanged. The map has an
    # address for each hash, so the packet never reaches the prefix's rule below (198.18.10.0/24, ports 80-90).
    assert nat.nft_dnat_targets(text, "tcp", "198.18.10.5", 80) == [("198.18.20.2", 80), ("198.18.20.3", 80)]
    # numgen random mod 2 vmap { 0 : goto ep1, 1 : jump ep2 }: each chain DNATs
    assert nat.nft_dnat_targets(text, "tcp", "198.18.10.6", 80) == [("198.18.20.5", 80), ("198.18.20.6", 80)]
    # ip daddr . tcp dport { 198.18.10.7 . 81 }; another port of the address falls to the prefix's rule
    assert nat.nft_dnat_targets(text, "tcp", "198.18.10.7", 81) == [("198.18.20.9", 99)]
    assert nat.nft_dnat_targets(text, "tcp", "198.18.10.7", 85) == [("198.18.20.8", 85)]
    assert nat.nft_dnat_targets(text, "tcp", "198.18.10.7", 91) == []  # neither the element nor the range
    assert nat.nft_dnat_targets(text, "udp", "198.18.10.1", 8080) == []  # every rule says tcp
    # IPv6 in an inet table's output hook: dnat ip6 to [2001:db8::2]:8080; its ip tables do not apply
    assert nat.nft_dnat_targets(text, "tcp", "2001:db8::1", 80) == [("2001:db8::2", 8080)]
    assert nat.nft_dnat_targets(text, "tcp", "2001:db8::3", 80) == []


def test_a_dnat_the_reading_cannot_follow_makes_the_list_unknown_not_shorter():
    """A dnat to a map that is not in the ruleset (or to a value computed from the packet) has targets the reading
    does not know: a list without them would call a live endpoint gone (conntrack_stale_nat)."""
    ruleset = json.loads(recorded_ruleset("dnat-forms"))
    for item in ruleset["nftables"]:
        if "map" in item:
            item["map"]["name"] = "renamed"  # the jhash rule's @endpoints is no longer there
    with pytest.raises(ValueError, match="the map '@endpoints' is not read here"):
        nat.nft_dnat_targets(json.dumps(ruleset), "tcp", "198.18.10.5", 80)
    assert nat.nft_dnat_targets(json.dumps(ruleset), "tcp", "198.18.10.1", 8080)  # a rule it never meets: no matter
    # dnat to 198.18.20.10-198.18.20.12: conntrack may hold any address of the range
    with pytest.raises(ValueError, match="is not read here"):
        nat.nft_dnat_targets(recorded_ruleset("dnat-forms"), "tcp", "198.18.10.9", 80)


def test_a_dnat_to_a_range_makes_the_list_unknown_in_iptables_too():
    with open(fixture_path("nat", "iptables-nft-save-dnat-range.txt"), encoding="utf-8") as handle:
        text = handle.read()
    with pytest.raises(ValueError, match="198.18.20.2-198.18.20.4:9090 is a range"):
        nat.dnat_targets(text, "tcp", "198.18.10.1", 80)
    assert nat.dnat_targets(text, "tcp", "198.18.10.2", 80) == []  # a rule it never meets: no matter
