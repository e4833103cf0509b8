import pytest

from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import OptionError
from ansible_collections.packetpath.linux.plugins.module_utils import flow
from ansible_collections.packetpath.linux.plugins.module_utils.flow import Flow


def test_equal_selectors_give_equal_ids_and_a_port_range_reads_either_way():
    first = Flow.from_params({"proto": "tcp", "dport": "30000:32767", "dst": "198.51.100.11"})
    second = Flow.from_params({"proto": "tcp", "dport": "30000-32767", "dst": "198.51.100.11/32"})
    assert first.flow_id == second.flow_id
    assert first.dport == (30000, 32767) and first.families == ("ipv4",)
    assert Flow.from_params({"proto": "tcp", "dport": "30001"}).flow_id != first.flow_id


def test_families_follow_addresses_then_protocol_then_both():
    assert Flow.from_params({"proto": "tcp", "dport": "80"}).families == ("ipv4", "ipv6")
    assert Flow.from_params({"proto": "tcp", "src": "2001:db8::1"}).families == ("ipv6",)
    assert Flow.from_params({"proto": "icmpv6", "iif": "eth1"}).families == ("ipv6",)
    assert Flow.from_params({"proto": "udp", "dport": "53", "family": "ipv4"}).families == ("ipv4",)


def test_narrowed_means_something_more_than_a_protocol():
    assert not Flow.from_params({"proto": "tcp"}).narrowed
    assert Flow.from_params({"proto": "tcp", "oif": "eth0"}).narrowed


@pytest.mark.parametrize("params", [
    {"proto": "tcp", "dst": "0.0.0.0/0"}, {"proto": "tcp", "src": "::/0"}, {"proto": "udp", "src": "10.0.0.1/0"},
    {"proto": "tcp", "dport": "1:65535"}, {"proto": "tcp", "port": "1-65535"}, {"proto": "udp", "sport": "1:65535"},
    {"proto": "tcp", "dst": "::/0", "port": "1:65535"},
])
def test_a_selector_that_matches_everything_is_not_narrowed_in_any_spelling(params):
    assert not Flow.from_params(params).narrowed


@pytest.mark.parametrize("params, option, reason", [
    ({"proto": "tcp", "dport": "70000"}, "dport", "ports are 1-65535"),
    ({"proto": "tcp", "sport": "0"}, "sport", "ports are 1-65535"),
    ({"proto": "tcp", "dport": "90:80"}, "dport", "runs backwards"),
    ({"proto": "tcp", "dport": "http"}, "dport", "not a port"),
    ({"proto": "icmp", "dport": "8081"}, "dport", "ports need proto tcp, udp or sctp"),
    ({"proto": "any", "sport": "1"}, "sport", "ports need proto"),
    ({"proto": "tcp", "dst": "2001:db8::1", "family": "ipv4"}, "family", "the addresses are ipv6 only"),
    ({"proto": "tcp", "src": "198.51.100.1", "dst": "2001:db8::1"}, "dst", "different address families"),
    ({"proto": "icmp", "family": "ipv6", "iif": "eth0"}, "family", "proto icmp is ipv4 only"),
    ({"proto": "icmpv6", "dst": "198.51.100.1"}, "proto", "is ipv6 only"),
    ({"proto": "tcp", "dst": "198.51.100.300"}, "dst", "not an IPv4/IPv6 address"),
    ({"proto": "tcp", "iif": "eth0;reboot"}, "iif", "not an interface name"),
    ({"proto": "tcp", "oif": "eth 0"}, "oif", "not an interface name"),
    ({"proto": "tcp", "iif": "eth0\n"}, "iif", "not an interface name"),
    ({"proto": "tcp", "iif": "a-very-long-interface"}, "iif", "not an interface name"),
    ({"proto": "tcp", "iif": "../etc"}, "iif", "not an interface name"),
    ({"proto": "tcp", "dst": "fe80::1%eth0"}, "dst", "an IPv6 zone id"),
    ({"proto": "tcp", "src": "fe80::/64%2"}, "src", "an IPv6 zone id"),
])
def test_bad_values_name_the_option_and_the_value(params, option, reason):
    with pytest.raises(OptionError) as raised:
        Flow.from_params(params)
    assert raised.value.option == option
    assert str(raised.value).startswith("%s=%r" % (option, params[option]))
    assert reason in str(raised.value)


def test_a_handle_gives_back_the_flow_it_was_made_of():
    params = dict.fromkeys(flow.HANDLE_OPTIONS)
    params.update(proto="tcp", port="28080", family="both", netns="pp-pod1", handle=None)
    handle = flow.handle_of(params)
    assert handle == {"proto": "tcp", "port": "28080", "family": "both", "netns": "pp-pod1"}
    # As a module receives it: every option of the selector unset (the handle excludes them), the handle's own
    # suboptions filled in with None by ansible-core.
    given = dict(dict.fromkeys(flow.HANDLE_OPTIONS), proto="any", handle=dict(dict.fromkeys(flow.HANDLE_OPTIONS), **handle))
    taken = flow.with_handle(given)
    assert flow.handle_of(taken) == handle
    assert flow.Flow.from_params(taken).flow_id == flow.Flow.from_params(params).flow_id
    assert flow.with_handle(dict(params, handle={})) == dict(params, handle={})  # no handle: the options stand


@pytest.mark.parametrize("params, message", [
    ({"proto": "tcp", "dport": "8080", "probe_src": "198.18.10.2"}, "probe_src='198.18.10.2': goes with port"),
    ({"proto": "tcp", "port": "28080", "probe_src": "198.18.10.0/24"}, "probe_src='198.18.10.0/24': not an IPv4/IPv6"),
    ({"proto": "tcp", "port": "28080", "family": "ipv6", "probe_src": "198.18.10.2"},
     "probe_src='198.18.10.2': is not of the flow's families (ipv6)"),
])
def test_a_probe_src_needs_the_probes_port_and_family(params, message):
    with pytest.raises(OptionError) as raised:
        Flow.from_params(params)
    assert message in str(raised.value)


def test_a_bad_value_in_a_handle_is_named_as_the_handles():
    given = dict(dict.fromkeys(flow.HANDLE_OPTIONS), proto="any",
                 handle=dict(dict.fromkeys(flow.HANDLE_OPTIONS), proto="tcp", port="99999"))
    with pytest.raises(OptionError) as refused:
        flow.with_handle(given)
    assert str(refused.value).startswith("handle={") and "its port='99999': ports are 1-65535" in str(refused.value)
