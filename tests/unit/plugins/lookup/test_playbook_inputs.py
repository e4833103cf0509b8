"""The playbooks' inputs checked in their main play's hosts line, as Ansible calls the lookup there (issue #39):
with the command line's variables and the inventory's groups, nothing else."""

import pytest
import yaml
from ansible import constants
from ansible.errors import AnsibleLookupError
from ansible.parsing.dataloader import DataLoader

from ansible_collections.packetpath.linux.plugins.lookup import playbook_inputs

GROUPS = {"all": ["client", "node", "router"], "k8s": ["node"], "ungrouped": ["client", "router"]}
SEED = {"packetpath_trace_hosts": "client:node", "packetpath_dport": "8081", "packetpath_dst": "203.0.113.12"}


def hosts_of(playbook, given, **kwargs):
    """The lookup as Ansible's plugin loader makes it: its options defined by its DOCUMENTATION."""
    lookup = playbook_inputs.LookupModule(loader=DataLoader())
    lookup._load_name = "packetpath.linux.playbook_inputs"  # pylint: disable=protected-access
    constants.config.initialize_plugin_configuration_definitions(
        "lookup", lookup._load_name, yaml.safe_load(playbook_inputs.DOCUMENTATION)["options"])  # pylint: disable=protected-access
    return lookup.run([playbook], variables=dict(given, groups=GROUPS), **kwargs)


@pytest.mark.parametrize("playbook, given, pattern", [
    ("diagnose_port", SEED, "client:node"),
    ("diagnose_port", dict(SEED, packetpath_probe_from="client", packetpath_probe_count="5",
                           packetpath_family="ipv4", packetpath_remediate="yes"), "client:node"),
    ("audit", {}, "all"),
    ("cleanup", {"packetpath_target": "k8s"}, "k8s"),
    ("remediate_rp_filter", {"packetpath_target": "node", "packetpath_remediate_serial": "25%"}, "node"),
])
def test_good_inputs_give_the_hosts_of_the_run(playbook, given, pattern):
    assert hosts_of(playbook, given) == [pattern]


@pytest.mark.parametrize("playbook, given, message", [
    ("diagnose_port", {}, "packetpath_trace_hosts, packetpath_dport, packetpath_dst: required"),
    ("diagnose_port", dict(SEED, packetpath_trace_hosts=" "), "packetpath_trace_hosts: required"),
    ("diagnose_port", dict(SEED, packetpath_dport="abc"), "packetpath_dport=abc: must be a port (1-65535)"),
    ("diagnose_port", dict(SEED, packetpath_dport="65536"), "packetpath_dport=65536: must be a port (1-65535)"),
    ("diagnose_port", dict(SEED, packetpath_dst="203.0.113"), "packetpath_dst=203.0.113: must be an IPv4 or IPv6"),
    ("diagnose_port", dict(SEED, packetpath_family="ipv6"), "packetpath_dst=203.0.113.12: not an ipv6 address"),
    ("diagnose_port", dict(SEED, packetpath_proto="sctp"), "packetpath_proto=sctp: must be tcp or udp"),
    ("diagnose_port", dict(SEED, packetpath_probe_count="0"), "packetpath_probe_count=0: must be an integer of 1"),
    ("diagnose_port", dict(SEED, packetpath_probe_timeout="nan"), "packetpath_probe_timeout=nan: must be seconds"),
    ("diagnose_port", dict(SEED, packetpath_probe_from="k8s"), "packetpath_probe_from=k8s: must be a host of"),
    ("diagnose_port", dict(SEED, packetpath_probe_from="nobody"), "packetpath_probe_from=nobody: must be a host"),
    ("diagnose_port", dict(SEED, packetpath_trace_hosts="nosuchgroup"),
     "packetpath_trace_hosts=nosuchgroup: names no host of the inventory"),
    ("diagnose_port", dict(SEED, packetpath_remediate="maybe"), "packetpath_remediate=maybe: must be a boolean"),
    ("diagnose_port", {"dport": "8081", "trace_hosts": "node"},
     "the inputs are prefixed since 0.2.0, so dport, trace_hosts is not read; nothing was touched"),
    ("remediate_rp_filter", {}, "packetpath_target=: required (an inventory pattern"),
    ("remediate_rp_filter", {"packetpath_target": "node", "packetpath_remediate_serial": "0"},
     "packetpath_remediate_serial=0: must be a number of hosts or a percentage"),
    ("preflight", {"target": "node"}, "target=node: not read (the inputs are prefixed since 0.2.0)"),
    ("audit", {"packetpath_fail_on_findings": "sometimes"}, "packetpath_fail_on_findings=sometimes: must be a boolean"),
])
def test_a_bad_input_is_refused_by_its_name_and_value(playbook, given, message):
    with pytest.raises(AnsibleLookupError) as refused:
        hosts_of(playbook, given)
    assert message in str(refused.value) and str(refused.value).endswith("; nothing was touched"), str(refused.value)


def test_unread_names_are_listed_unchecked_where_the_first_play_asks():
    assert hosts_of("diagnose_port", {"dst": "x", "dport": "abc"}, want="unread") == ["dport", "dst"]
    assert hosts_of("cleanup", {}, want="unread") == []


def test_every_input_a_playbook_checks_has_a_rule_and_every_rule_a_playbook():
    named = set()
    for playbook in playbook_inputs.PLAYBOOKS.values():
        named.update(playbook["inputs"] + playbook.get("required", []) + [playbook["hosts"][0]])
    assert named == set(playbook_inputs.INPUTS)
