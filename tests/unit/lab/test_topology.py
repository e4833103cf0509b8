"""The lab refuses a bad topology before it builds anything."""

import os

import pytest
import yaml
from pplab import roots, topology

TOPOLOGIES = os.path.join(os.path.dirname(__file__), "..", "..", "lab", "topologies")


def load_shipped(name, host_count=None):
    return topology.load(os.path.join(TOPOLOGIES, name + ".yml"), host_count)


def test_seed_reproduces_the_incident_layout():
    seed = load_shipped("seed")
    assert [h.name for h in seed.managed_hosts] == ["client", "node"]
    node = seed.host("node")
    assert node.backend == "iptables_legacy"
    assert node.sysctls["net.ipv4.conf.b-srv.rp_filter"] == 1
    assert any("DNAT" in rule and "PREROUTING" not in rule for rule in node.iptables)
    assert "203.0.113.0/24 dev b-cli src 198.51.100.13" in seed.host("client").routes


def test_kube_has_one_node_per_backend():
    kube = load_shipped("kube")
    backends = {h.name: h.backend for h in kube.managed_hosts if h.name.startswith("node")}
    assert sorted(backends.values()) == ["iptables_legacy", "iptables_nft", "nftables"]
    assert [h.name for h in kube.hosts if not h.managed] == ["pod1", "pod2", "pod3"]


def test_shared_names_gives_every_host_the_same_interface_names():
    shared = load_shipped("shared-names")
    backends = {h.name: h.backend for h in shared.managed_hosts}
    assert backends == dict.fromkeys(["client", "router", "server"], "iptables_legacy")
    names = {host: sorted(port.ifname for segment in shared.segments for port in segment.ports if port.host == host)
             for host in ("client", "router", "server")}
    assert names == {"client": ["eth0"], "router": ["eth0", "eth1"], "server": ["eth0"]}


def test_scale_stamps_out_the_requested_hosts_with_distinct_addresses():
    scale = load_shipped("scale", 50)
    addresses = [h.mgmt_address for h in scale.managed_hosts]
    assert len(addresses) == 50 == len(set(addresses))
    assert addresses[0] == "198.18.0.11" and addresses[-1] == "198.18.0.60"


BASE = {
    "name": "t",
    "hosts": {"a": {}, "b": {}},
    "segments": {"s": {"ports": {"a": {"ifname": "e0", "addresses": ["192.0.2.1/24"]},
                                 "b": {"ifname": "e0", "addresses": ["192.0.2.2/24"]}}}},
}


def variant(**changes):
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    return raw


def test_the_base_variant_is_valid():
    assert len(topology.parse(variant()).segments) == 1


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"segments__s__ports__a__addresses": ["10.1.2.3/24"]}, "outside the lab's networks"),
        ({"segments__s__ports__a__addresses": ["198.18.0.50/24"]}, "inside the management network"),
        ({"segments__s__ports__a__addresses": ["192.0.2.1"]}, "needs a prefix length"),
        ({"segments__s__ports__a__addresses": ["2001:db9::1/64"]}, "outside the lab's networks"),
        ({"hosts__a": {"routes": ["10.0.0.0/8 dev e0"]}}, "outside the lab's networks"),
        ({"hosts__a": {"iptables": [{"-t nat -A X": "y"}]}}, "one command line as a string"),
        ({"hosts__a": {"backend": "pf"}}, "is not one of"),
        ({"hosts__a": {"nft": "table inet x {}"}}, "nft rules need backend nftables"),
        ({"hosts__a": {"colour": "red"}}, "unknown keys"),
        ({"hosts__a": {"listeners": [{"proto": "tcp", "port": 70000}]}}, "port must be 1-65535"),
        ({"hosts__a": {"listeners": [{"proto": "udp", "port": 53, "address": "10.0.0.1"}]}}, "outside the lab's"),
        ({"hosts__a": {"listeners": [{"proto": "udp", "port": 53, "address": "192.0.2.1/24"}]}}, "without a prefix"),
        ({"hosts__a": {"tc": ["qdisc add dev e0 root handle 1: htb", "filter add dev e0 u32 match ip dst 10.0.0.1"]}},
         "outside the lab's networks"),
        ({"hosts__a": {"tc": [["qdisc", "add"]]}}, "one command line as a string"),
        ({"hosts__a": {"links_down": ["e0; reboot"]}}, "not a valid interface name"),
        ({"segments__s__ports__c": {"ifname": "e0"}}, "unknown host 'c'"),
        ({"segments__s__ports__a__ifname": "eth0;reboot"}, "not a valid interface name"),
        ({"hosts__a": {"neighbours": ["10.0.0.1 lladdr 00:00:5e:00:53:01 dev e0"]}}, "outside the lab's networks"),
        ({"hosts__a": {"neighbours": ["192.0.2.1 lladdr 00:00:5e:00:53 dev e0"]}}, "ADDRESS lladdr MAC dev IFNAME"),
        ({"hosts__a": {"neighbours": ["192.0.2.1 dev e0 nud permanent"]}}, "ADDRESS lladdr MAC dev IFNAME"),
        ({"hosts__a": {"addresses": {"lo": ["10.0.0.1/32"]}}}, "outside the lab's networks"),
        ({"hosts__a": {"links": ["vx0 type vxlan id 4 local 10.0.0.1 dev e0"]}}, "outside the lab's networks"),
        ({"hosts__a": {"links": ["vx0 type dummy"]}}, "the lab adds VXLAN devices"),
        ({"hosts__a": {"fdb": ["00:00:5e:00:53:01 dev vx0 dst 10.0.0.2"]}}, "outside the lab's networks"),
        ({"hosts__a": {"fdb": ["dev vx0 dst 192.0.2.2"]}}, "MAC dev IFNAME"),
        ({"hosts__a": {"bridges": {"br0": "e0"}}}, "{bridge: \\[port interfaces\\]}"),
        ({"hosts__a": {"bridges": {"br0": ["e0;reboot"]}}}, "{bridge: \\[port interfaces\\]}"),
        ({"hosts__a": {"addresses": {"lo": ["192.0.2.9"]}}}, "needs a prefix length"),
        ({"hosts__a": {"addresses": {"lo;x": ["192.0.2.9/32"]}}}, "addresses: {interface: \\[prefixes\\]}"),
        ({"hosts__a": {"userspace": "debian10"}}, "userspace: 'debian10' is not one of debian11, debian12, debian13"),
        ({"hosts__a": {"userspace": "debian11", "managed": False}}, "runs nothing of a release"),
    ],
)
def test_bad_topologies_are_refused_with_the_reason(changes, message):
    with pytest.raises(topology.TopologyError, match=message):
        topology.parse(variant(**changes))


def test_a_listener_may_be_bound_to_loopback_and_links_may_be_down():
    host = topology.parse(variant(hosts__a={"listeners": [{"proto": "tcp", "port": 80, "address": "127.0.0.1"}],
                                            "links_down": ["e0"], "tc": ["qdisc add dev e0 clsact"]})).host("a")
    assert (host.listeners[0]["address"], host.links_down, host.tc) == ("127.0.0.1", ["e0"], ["qdisc add dev e0 clsact"])


def test_a_host_may_hold_static_neighbour_entries_and_addresses_on_other_interfaces():
    host = topology.parse(variant(hosts__a={"neighbours": ["192.0.2.1 lladdr 00:00:5e:00:53:01 dev e0 nud permanent"],
                                            "addresses": {"lo": ["203.0.113.10/32"]}})).host("a")
    assert host.neighbours == ["192.0.2.1 lladdr 00:00:5e:00:53:01 dev e0 nud permanent"]
    assert host.addresses == {"lo": ["203.0.113.10/32"]}


@pytest.mark.parametrize("step, message", [
    ({"host": "a", "run": "curl http://192.0.2.1/"}, "a command line of ip, iptables"),
    ({"host": "a", "run": "ip route add 10.0.0.0/8 dev e0"}, "outside the lab's networks"),
    ({"host": "z", "run": "ip link"}, "each step is {host: a host of the lab"),
    ({"host": "a"}, "each step is {host: a host of the lab"),
])
def test_bad_steps_are_refused_with_the_reason(step, message):
    raw = variant()
    raw["steps"] = [step]
    with pytest.raises(topology.TopologyError, match=message):
        topology.parse(raw)


def test_steps_run_in_order_in_their_hosts():
    raw = variant()
    raw["steps"] = [{"host": "a", "run": "udp_exchange 192.0.2.1 25353 192.0.2.2 53"}, {"host": "b", "run": "ip link"}]
    steps = topology.parse(raw).steps
    assert [(step.host, step.run[0]) for step in steps] == [("a", "udp_exchange"), ("b", "ip")]


def test_bad_host_name_is_refused():
    raw = variant()
    raw["hosts"]["Bad_Name"] = {}
    with pytest.raises(topology.TopologyError, match="host names are"):
        topology.parse(raw)


def test_host_count_only_applies_to_scale():
    with pytest.raises(topology.TopologyError, match="no scale block"):
        topology.parse(variant(), host_count=5)


def test_userspace_rotates_over_the_managed_hosts_or_is_named_and_a_bad_spec_changes_nothing():
    topo = load_shipped("incidents/forward-drop")
    topology.set_userspace(topo, "rotate")
    assert [(host.name, host.userspace) for host in topo.hosts] == [
        ("client", "debian11"), ("router", "debian12"), ("server", "debian13")]
    topo = load_shipped("incidents/forward-drop")
    topology.set_userspace(topo, "rotate:4")
    assert [host.userspace for host in topo.hosts] == ["debian12", "debian13", "debian11"]
    topo = load_shipped("seed")
    topology.set_userspace(topo, "node=debian13")
    assert [host.userspace for host in topo.hosts] == [None, "debian13"]
    for spec, message in (("node=debian9", "the release is one of debian11"), ("pod=debian11", "not a managed host"),
                          ("debian11", "give 'rotate' or host=release"), ("rotate:x", "a number, not 'x'")):
        with pytest.raises(topology.TopologyError, match=message):
            topology.set_userspace(load_shipped("seed"), spec)


def test_the_incident_catalogue_rotated_by_its_order_puts_every_backend_on_every_release():
    # As test_incidents.py runs each lab without drop reasons: `--userspace rotate:N`, N the lab's place (issue #38).
    folder = os.path.join(TOPOLOGIES, "incidents")
    names = sorted(name[:-4] for name in os.listdir(folder) if name.endswith(".yml"))
    met = set()
    for number, name in enumerate(names):
        topo = load_shipped("incidents/" + name)
        topology.set_userspace(topo, "rotate:%d" % number)
        met |= {(host.backend, host.userspace) for host in topo.managed_hosts}
    assert met == {(backend, release) for backend in topology.BACKENDS for release in roots.RELEASES}
