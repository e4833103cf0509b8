"""Where today's nat rules send a new conversation, read from a real iptables-save (kube-proxy's layout in the kube
lab's node1: KUBE-SERVICES -> KUBE-SVC -> KUBE-SEP DNAT, and a NodePort through addrtype)."""

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
