#!/usr/bin/python
# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: host_audit
short_description: Audit a host against the fleet's rp_filter/log_martians expectations, and find what packetpath left behind
version_added: 0.1.0
description:
  - Read-only checks, each of which passes, fails with findings in words, or is skipped
    (RV(checks)); the C(packetpath.linux.audit) playbook runs it on every host and writes the fleet's report.
  - V(sysctl_expected) compares the B(effective) value of each interface (rp_filter is max(all, interface),
    log_martians all OR interface) with O(expect) and O(expect_by_interface).
  - V(sysctl_drift) compares the runtime values with what the boot writes, reading every sysctl.d file in the
    order systemd-sysctl applies them (a later file wins; a plain key wins over a glob).
  - V(strict_reverse_path) checks, for each interface in strict mode with O(strict_sources), that the route back to
    each listed network leaves through that interface.
  - V(trace_leftovers) finds TRACE rules, our nftables table, expiry timers and kernel-log bindings of this
    collection; V(trace_backend) says which trace backend the host would use and whether its tools are there;
    V(pyroute2) reports the installed pyroute2, the engine of route lookups (without it they fall back to C(ip -j),
    one process per lookup).
  - Also returns RV(remediation), the fewest writes that would make the sysctl checks pass, for
    C(packetpath.linux.remediate_rp_filter).
author:
  - packetpath developers (@packetpath)
extends_documentation_fragment:
  - packetpath.linux.attributes.read_only
options:
  expect:
    description:
      - The wanted effective values on every interface (but those in O(ignore_interfaces)), a value or a list of
        allowed values per key, for example C(rp_filter) V([2, 0]) and C(log_martians) V(1).
      - O(expect) or O(expect_by_interface) is required when O(checks) has V(sysctl_expected) or V(sysctl_drift)
        (the drift is looked for on the expected keys).
      - The first value of a list is the one remediation writes where the current value is not allowed.
      - Keys as in M(packetpath.linux.interface_sysctl) O(packetpath.linux.interface_sysctl#module:settings).
    type: dict
  expect_by_interface:
    description:
      - Expectations per interface name or glob, overriding O(expect) key by key. For each key the first entry
        that matches wins (the exact name, then the globs in the order written), then O(expect).
      - V(default) checks conf/default, the value new interfaces start from.
    type: dict
  ignore_interfaces:
    description: Interfaces (names or globs) no expectation applies to.
    type: list
    elements: str
    default: [lo]
  strict_sources:
    description:
      - Per interface name or glob, the IPv4 networks that send to the host through it. Strict mode (rp_filter=1)
        on that interface is safe only when the route back to each of them leaves through it too.
    type: dict
  checks:
    description: The checks to run.
    type: list
    elements: str
    choices: [sysctl_expected, sysctl_drift, strict_reverse_path, trace_leftovers, trace_backend, pyroute2]
    default: [sysctl_expected, sysctl_drift, strict_reverse_path, trace_leftovers, trace_backend, pyroute2]
  require_pyroute2:
    description: Make a missing pyroute2 a finding; otherwise the V(pyroute2) check is skipped when it is missing.
    type: bool
    default: false
  force:
    description:
      - Do not refuse a RV(remediation) that would make an interface strict although a network in
        O(strict_sources) routes back through another interface.
    type: bool
    default: false
  netns:
    description:
      - Audit this network namespace (a name from C(ip netns list), a path, or a PID). For a named namespace the
        boot configuration is read from C(/etc/netns/<name>/sysctl.d) in place of C(/etc/sysctl.d).
    type: str
requirements:
  - Linux with C(/proc/sys/net)
  - iptables or nft on the host to find trace leftovers (C(trace_leftovers), C(trace_backend))
  - pyroute2 0.7 to 0.9 only for V(pyroute2) in O(checks) with O(require_pyroute2=true)
notes:
  - Needs root for the trace checks (listing netfilter rules).
seealso:
  - module: packetpath.linux.interface_sysctl
  - module: packetpath.linux.trace_rule
  - module: packetpath.linux.audit_report
"""

EXAMPLES = r"""
- name: Audit against loose-or-off rp_filter and martian logging, strict on the storage network
  packetpath.linux.host_audit:
    expect:
      rp_filter: [2, 0]
      log_martians: 1
    expect_by_interface:
      "bond0.20": {rp_filter: 1}
    strict_sources:
      "bond0.20": [10.20.0.0/16]
  register: audit

- name: Only look for what a diagnosis left behind
  packetpath.linux.host_audit:
    checks: [trace_leftovers]
"""

RETURN = r"""
checks:
  description: One entry per check, in the order of O(checks).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The check.
      type: str
      returned: always
      sample: sysctl_expected
    status:
      description: V(pass), V(fail) or V(skip).
      type: str
      returned: always
    summary:
      description: What the check found, in one line.
      type: str
      returned: always
      sample: "1 of 6 interface values not as expected"
    findings:
      description: Each finding in words; empty unless the check failed.
      type: list
      elements: str
      returned: always
      sample: ["eth1 rp_filter is 1, wanted 2 or 0 (expect)"]
    details:
      description: The data behind the check (values, drift, conflicts, leftovers, backend).
      type: dict
      returned: always
compliant:
  description: Whether no check failed.
  returned: always
  type: bool
facts:
  description: The host's kernel, Python, pyroute2 version and trace backend.
  returned: always
  type: dict
  sample: {"kernel": "6.1.0-40-amd64", "python": "3.11.2", "pyroute2": "0.7.3", "backend": "iptables_nft"}
remediation:
  description:
    - What would make the sysctl checks pass. C(changes) are runtime writes (also made persistent), each with
      C(interface), C(key), C(before), C(after) and C(why); C(persist) are drifting values whose runtime value
      would be written to the persistent file; C(settings) groups both into
      M(packetpath.linux.interface_sysctl) calls (C(interfaces), C(settings)).
    - C(becoming_strict) lists the interfaces the changes would make strict, C(conflicts) the networks in
      O(strict_sources) whose route back leaves elsewhere, and C(refused) is true when there are conflicts and
      not O(force).
  returned: always
  type: dict
"""


from ansible_collections.packetpath.linux.plugins.module_utils._common import netns
from ansible_collections.packetpath.linux.plugins.module_utils._common.command import ModuleCommandRunner
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import PacketpathError
from ansible_collections.packetpath.linux.plugins.module_utils._common.module import PacketpathModule
from ansible_collections.packetpath.linux.plugins.module_utils.fleet import strict_sources
from ansible_collections.packetpath.linux.plugins.module_utils.fleet.expectations import DEFAULT_IGNORE, Expectations
from ansible_collections.packetpath.linux.plugins.module_utils.fleet.host_audit import CHECKS, NEED_EXPECTATIONS, HostAudit
from ansible_collections.packetpath.linux.plugins.module_utils.routing import engines, rt_tables
from ansible_collections.packetpath.linux.plugins.module_utils.routing.lookup import Router
from ansible_collections.packetpath.linux.plugins.module_utils.sysctl import dropin


def argument_spec():
    spec = dict(netns.NETNS_ARGUMENT_SPEC)
    spec.update(
        expect={"type": "dict"},
        expect_by_interface={"type": "dict"},
        ignore_interfaces={"type": "list", "elements": "str", "default": list(DEFAULT_IGNORE)},
        strict_sources={"type": "dict"},
        checks={"type": "list", "elements": "str", "choices": list(CHECKS), "default": list(CHECKS)},
        require_pyroute2={"type": "bool", "default": False},
        force={"type": "bool", "default": False},
    )
    return spec


def main():
    module = PacketpathModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    try:
        wanted = Expectations(params["expect"], params["expect_by_interface"], params["ignore_interfaces"],
                              needed_by=[name for name in NEED_EXPECTATIONS if name in params["checks"]])
        sources = strict_sources.check(params["strict_sources"])
        etc_sysctl_d = dropin.sysctl_d(netns.named(params["netns"]))
        netns.enter(params["netns"])
        runner = ModuleCommandRunner(module)
        tables = rt_tables.RtTables()
        audit = HostAudit(runner, wanted, sources, lambda: Router(engines.choose("auto", runner, tables), tables),
                          etc_sysctl_d)
        checks, facts = audit.run(params["checks"], params["require_pyroute2"])
        remediation = audit.remediation(params["force"])
    except PacketpathError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg="audit failed: %s" % exc)
    backend = next((check["details"].get("backend") for check in checks if check["name"] == "trace_backend"), None)
    module.exit_json(changed=False, checks=checks, compliant=all(check["status"] != "fail" for check in checks),
                     facts={"kernel": facts["kernel"], "python": facts["python"], "pyroute2": facts["pyroute2"],
                            "backend": backend},
                     remediation=remediation)


if __name__ == "__main__":
    main()
