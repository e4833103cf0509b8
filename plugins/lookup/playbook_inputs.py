# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check a playbook's inputs where --limit cannot skip it: in its first play's `hosts` line."""

from __future__ import annotations

DOCUMENTATION = r"""
name: playbook_inputs
author:
  - packetpath developers (@packetpath)
version_added: 0.3.0
short_description: Check a playbook's inputs whatever --limit says, and give the hosts of its run
description:
  - The collection's playbooks call it in the C(hosts) line of their main play. Ansible reads that line before
    C(--limit) narrows the run, so the check cannot be skipped the way a play on C(localhost) is under C(--limit).
  - Every input given on the command line (C(-e)) or in the play's variables is checked by the playbook's rules
    (docs/inputs.md). A bad one fails the run before any host is touched, naming the input and the value (C(packetpath_dport=abc)).
  - A required input that is missing fails the run. So does a host pattern that names no host of the inventory.
  - The unprefixed names of earlier releases (C(target), C(dport)...) are not read; a refusal names those given. An
    unprefixed C(target) without C(packetpath_target) fails the run, so it is not taken for every host.
  - C(--syntax-check) checks nothing (it runs no host).
  - It sees the command line's and the play's variables, not the inventory's. The playbooks' first play, on
    C(localhost), still names the unprefixed variables an inventory sets, where C(--limit) lets it run.
  - Returns the host pattern of the run; with O(want=unread), the unprefixed names set, unchecked (the first play
    of a playbook says which are not read).
options:
  _terms:
    description: The playbook's name.
    type: list
    elements: str
    choices: [audit, cleanup, diagnose_port, preflight, remediate_rp_filter]
    required: true
  want:
    description: V(hosts), the checked host pattern; V(unread), the unprefixed names of earlier releases that are set.
    type: str
    choices: [hosts, unread]
    default: hosts
"""

EXAMPLES = r"""
- name: Diagnose a port on the hosts given
  hosts: "{{ lookup('packetpath.linux.playbook_inputs', 'diagnose_port') }}"
  gather_facts: false
  roles:
    - role: packetpath.linux.diagnose_port
"""

RETURN = r"""
_raw:
  description:
    - The host pattern of the run (C(packetpath_trace_hosts) or C(packetpath_target), or its default).
    - With O(want=unread), the unprefixed names of earlier releases that are set, sorted.
  type: list
  elements: str
"""

import ipaddress
import math
import re

from ansible import context
from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.lookup import LookupBase, inventory_hostnames

from ansible_collections.packetpath.linux.plugins.module_utils._common.addresses import family_of


def _port(value):
    return 1 <= value <= 65535


def _address(value):
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _network(value):
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def _percent_or_count(value):
    return re.fullmatch(r"[1-9][0-9]*%?", value.strip()) is not None and value.strip() not in ("0", "0%")


def _positive(value):
    return math.isfinite(value) and value > 0


# Each input the playbooks take on the command line: its type as Ansible converts it, what it must be in the words of
# docs/inputs.md, and the check beyond the type. Inventory inputs (per host: packetpath_expect, packetpath_trace_netns,
# packetpath_pipelining...) are the roles' to check, host by host.
INPUTS = {
    "packetpath_trace_hosts": ({"type": "str"}, "an inventory pattern", None),
    "packetpath_target": ({"type": "str"}, "an inventory pattern", None),
    "packetpath_dport": ({"type": "int"}, "a port (1-65535)", _port),
    "packetpath_dst": ({"type": "str"}, "an IPv4 or IPv6 address", _address),
    "packetpath_proto": ({"type": "str", "choices": ["tcp", "udp"]}, "tcp or udp", None),
    "packetpath_src": ({"type": "str"}, "an address or a network", _network),
    "packetpath_family": ({"type": "str", "choices": ["ipv4", "ipv6", "both"]}, "ipv4, ipv6 or both", None),
    "packetpath_probe_from": ({"type": "str"}, "a host of the inventory", None),
    "packetpath_probe_netns": ({"type": "str"}, "a network namespace", None),
    "packetpath_probe_count": ({"type": "int"}, "an integer of 1 or more", lambda value: value >= 1),
    "packetpath_probe_timeout": ({"type": "float"}, "seconds, more than 0", _positive),
    "packetpath_check_endpoints": ({"type": "bool"}, "a boolean", None),
    "packetpath_drop_reasons": ({"type": "str", "choices": ["auto", "never"]}, "auto or never", None),
    "packetpath_remediate": ({"type": "bool"}, "a boolean", None),
    "packetpath_fail_on_blocked": ({"type": "bool"}, "a boolean", None),
    "packetpath_report_dir": ({"type": "path"}, "a directory on the controller", None),
    "packetpath_markdown_template": ({"type": "path"}, "a template's path", None),
    "packetpath_html_template": ({"type": "path"}, "a template's path", None),
    "packetpath_fail_on_findings": ({"type": "bool"}, "a boolean", None),
    "packetpath_require_pyroute2": ({"type": "bool"}, "a boolean", None),
    "packetpath_fail_on_problems": ({"type": "bool"}, "a boolean", None),
    "packetpath_remediate_serial": ({"type": "str"}, "a number of hosts or a percentage (10, 25%)", _percent_or_count),
    "packetpath_remediate_max_fail_percentage": ({"type": "int"}, "a percentage (0-100)", lambda value: 0 <= value <= 100),
    "packetpath_remediate_force": ({"type": "bool"}, "a boolean", None),
}

# Per playbook: the input that names its hosts and its default (None: required), the other inputs it reads, the
# required ones and how to give them, and the unprefixed names of earlier releases that it no longer reads.
PLAYBOOKS = {
    "diagnose_port": {
        "hosts": ("packetpath_trace_hosts", None),
        "required": ["packetpath_dport", "packetpath_dst"],
        "usage": "{missing}: required (-e packetpath_trace_hosts=PATTERN -e packetpath_dport=PORT -e "
                 "packetpath_dst=ADDRESS){unread}; nothing was touched",
        "inputs": ["packetpath_dport", "packetpath_dst", "packetpath_proto", "packetpath_src", "packetpath_family",
                   "packetpath_probe_from", "packetpath_probe_netns", "packetpath_probe_count",
                   "packetpath_probe_timeout", "packetpath_check_endpoints", "packetpath_drop_reasons",
                   "packetpath_remediate", "packetpath_fail_on_blocked", "packetpath_report_dir",
                   "packetpath_markdown_template", "packetpath_html_template"],
        "unread": ["trace_hosts", "dport", "dst", "proto", "src", "family", "probe_from", "probe_netns",
                   "probe_count", "report_dir", "drop_reasons", "fail_on_blocked", "remediate"],
    },
    "audit": {
        "hosts": ("packetpath_target", "all"),
        "inputs": ["packetpath_report_dir", "packetpath_fail_on_findings", "packetpath_require_pyroute2"],
        "unread": ["target", "report_dir", "fail_on_findings", "require_pyroute2"],
    },
    "cleanup": {"hosts": ("packetpath_target", "all"), "inputs": [], "unread": ["target"]},
    "preflight": {
        "hosts": ("packetpath_target", "all"),
        "inputs": ["packetpath_fail_on_problems"],
        "unread": ["target", "fail_on_problems"],
    },
    "remediate_rp_filter": {
        "hosts": ("packetpath_target", None),
        # A remediation writes sysctls at runtime and persistently: it never defaults to every host.
        "usage": "packetpath_target=: required (an inventory pattern: the hosts to remediate, e.g. -e "
                 "packetpath_target=k8s_nodes){unread}; nothing was touched",
        "inputs": ["packetpath_report_dir", "packetpath_remediate_serial",
                   "packetpath_remediate_max_fail_percentage", "packetpath_remediate_force"],
        "unread": ["target", "report_dir", "remediate_force", "remediate_serial", "remediate_max_fail_percentage"],
    },
}


def refusal(name, value, why):
    return AnsibleLookupError("%s=%s: %s; nothing was touched" % (name, value, why))


def check(name, value):
    """The value of one input as the playbook reads it; a refusal naming the input where it is not what it must be."""
    spec, what, valid = INPUTS[name]
    result = ArgumentSpecValidator({name: spec}).validate({name: value})
    if result.error_messages:
        raise refusal(name, value, "must be %s" % what)
    converted = result.validated_parameters[name]
    if valid is not None and not valid(converted):
        raise refusal(name, value, "must be %s" % what)
    return converted


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        if len(terms) != 1 or terms[0] not in PLAYBOOKS:
            raise AnsibleLookupError("playbook_inputs takes one playbook's name, one of %s; got %r"
                                     % (", ".join(sorted(PLAYBOOKS)), terms))
        self.set_options(var_options=variables, direct=kwargs)
        variables = variables or {}
        playbook = PLAYBOOKS[terms[0]]
        unread = sorted(name for name in playbook["unread"] if name in variables)
        if self.get_option("want") == "unread":
            return unread
        hosts_name, hosts_default = playbook["hosts"]
        if context.CLIARGS.get("syntax"):  # --syntax-check (ansible-lint runs it) runs no host and needs no input
            return [str(variables.get(hosts_name) or hosts_default or "all")]
        unread_note = "; the inputs are prefixed since 0.2.0, so %s is not read" % ", ".join(unread) if unread else ""
        required = ([hosts_name] if hosts_default is None else []) + playbook.get("required", [])
        missing = [name for name in required if str(variables.get(name, "") or "").strip() == ""]
        if missing:
            raise AnsibleLookupError(playbook["usage"].format(missing=", ".join(missing), unread=unread_note))
        if hosts_name == "packetpath_target" and "target" in unread and hosts_name not in variables:
            raise AnsibleLookupError("target=%s: not read (the inputs are prefixed since 0.2.0): give packetpath_target "
                                     "(-e packetpath_target=all for every host); nothing was touched"
                                     % variables["target"])
        given = dict((name, check(name, variables[name])) for name in playbook["inputs"]
                     if variables.get(name) is not None)
        family = given.get("packetpath_family", "both")
        if "packetpath_dst" in given and family != "both" and family_of(given["packetpath_dst"]) != family:
            raise refusal("packetpath_dst", given["packetpath_dst"], "not an %s address (packetpath_family=%s)"
                          % (family, family))
        pattern = str(variables.get(hosts_name, hosts_default)).strip()
        if not self._hosts(pattern, variables):
            raise refusal(hosts_name, pattern, "names no host of the inventory" + unread_note)
        probe_from = variables.get("packetpath_probe_from") if "packetpath_probe_from" in playbook["inputs"] else None
        if probe_from is not None and self._hosts(str(probe_from), variables) != [str(probe_from)]:
            raise refusal("packetpath_probe_from", probe_from, "must be %s" % INPUTS["packetpath_probe_from"][1])
        return [pattern]

    def _hosts(self, pattern, variables):
        """The inventory's hosts a pattern names, as ansible.builtin.inventory_hostnames finds them."""
        return inventory_hostnames.LookupModule(loader=self._loader).run([pattern], variables=variables)
