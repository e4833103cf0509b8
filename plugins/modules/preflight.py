#!/usr/bin/python
# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: preflight
short_description: Report whether a host can be traced, and with which tools
version_added: 0.1.0
description:
  - Surveys a Linux host, read-only, for what packet tracing needs there.
  - Reports the kernel, the target Python, whether the module runs as root, the pyroute2 version,
    where each relevant program is (iptables and its flavours, C(xtables-monitor), C(nft), C(ip),
    C(journalctl), C(dmesg), C(systemd-run)), which backend C(iptables) drives (from C(iptables --version)),
    the readable kernel log files, and the network-namespace facts that decide whether legacy TRACE output
    reaches the kernel log.
  - Lists, in plain words, the problems that stop a diagnosis on this host.
author:
  - packetpath developers (@packetpath)
extends_documentation_fragment:
  - packetpath.linux.attributes.read_only
options:
  fail_on_problems:
    description:
      - Fail the task when the host cannot be traced (see RV(problems)), instead of only reporting it.
    type: bool
    default: false
  netns:
    description:
      - Survey inside this network namespace (a name from C(ip netns list), a path, or a PID), such as a container or a pod
        seen from its host, as the other modules of the C(packetpath) action group take it.
    type: str
requirements:
  - the host's Python only; it reports which of the tools the other modules use are there
notes:
  - Runs on Python 3.8 or newer on the target.
"""

EXAMPLES = r"""
- name: Check that every node can be traced
  packetpath.linux.preflight:
  register: preflight

- name: Stop here on hosts that lack root or tools
  packetpath.linux.preflight:
    fail_on_problems: true
"""

RETURN = r"""
kernel:
  description: The running kernel release.
  returned: always
  type: str
  sample: 6.1.0-28-amd64
python:
  description: The Python version the module ran under on the target.
  returned: always
  type: str
  sample: 3.11.2
is_root:
  description: Whether the module ran with effective UID 0.
  returned: always
  type: bool
pyroute2:
  description:
    - The installed pyroute2 version, or null when it is not installed.
    - pyroute2 is the netlink engine of route_lookup (and of the audit's strict-source check). Without it lookups go
      through C(ip -j route get), one process per lookup (hundreds per second instead of thousands).
  returned: always
  type: str
  sample: 0.7.2
pyroute2_unsupported:
  description:
    - Why the installed pyroute2 is not used, a release older than the collection supports (0.7), such as Debian 11's
      0.5.14; null where it is used or not installed. Route lookups then go through C(ip -j); reading legacy TRACE
      from NFLOG still uses it.
  returned: always
  type: str
  sample: pyroute2 0.5.14 is older than 0.7, the oldest this collection supports
tools:
  description: Each program the collection may call, mapped to its path, or null when it is missing.
  returned: always
  type: dict
  sample: {"iptables": "/usr/sbin/iptables", "nft": "/usr/sbin/nft", "xtables-monitor": null}
iptables:
  description: What C(iptables --version) says.
  returned: always
  type: dict
  contains:
    version:
      description: The iptables version, or null when C(iptables) is missing or unrecognised.
      type: str
      returned: always
      sample: 1.8.9
    backend:
      description: C(iptables_legacy) or C(iptables_nft), the backend the C(iptables) command drives.
      type: str
      returned: always
      sample: iptables_nft
kernel_log_files:
  description: The kernel log files that exist and are readable (C(/var/log/kern.log), C(/var/log/messages)).
  returned: always
  type: list
  elements: str
in_initial_netns:
  description:
    - Whether the module runs in the initial network namespace; null when netfilter is not loaded and it cannot be told.
    - Legacy TRACE output from any other namespace reaches the kernel log only with C(nf_log_all_netns=1)
      set in the initial namespace.
  returned: always
  type: bool
nf_log_all_netns:
  description: The value of C(net.netfilter.nf_log_all_netns); null outside the initial namespace, where it cannot be read.
  returned: always
  type: bool
drop_reasons:
  description:
    - Whether the kernel's own drop reasons can be read here beside a capture (C(available)), the C(bpftrace) that
      would read them, and otherwise why not (C(why_not)), one of not root, bpftrace missing, no BTF, no tracefs,
      a kernel without drop reasons (before 5.17). Optional, so it is no problem; without them a diagnosis decides
      from the trace and the kernel's state alone.
  returned: always
  type: dict
  sample: {"available": false, "bpftrace": null, "why_not": "bpftrace is not installed"}
problems:
  description: Plain-words reasons the host cannot be traced; empty when it can.
  returned: always
  type: list
  elements: str
  sample: ["not running as root: TRACE rules, sysctls and netlink lookups need root (use become)"]
"""


from ansible_collections.packetpath.linux.plugins.module_utils._common import netns
from ansible_collections.packetpath.linux.plugins.module_utils._common.command import ModuleCommandRunner
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import PacketpathError
from ansible_collections.packetpath.linux.plugins.module_utils._common.module import PacketpathModule
from ansible_collections.packetpath.linux.plugins.module_utils.preflight import problems, survey


def main():
    module = PacketpathModule(
        argument_spec=dict(netns.NETNS_ARGUMENT_SPEC, fail_on_problems={"type": "bool", "default": False}),
        supports_check_mode=True,
    )
    try:
        netns.enter(module.params["netns"])
    except PacketpathError as exc:
        module.fail_json(msg=str(exc))
    facts = survey(ModuleCommandRunner(module))
    facts["problems"] = problems(facts)
    if module.params["fail_on_problems"] and facts["problems"]:
        module.fail_json(msg="this host cannot be traced: " + "; ".join(facts["problems"]), **facts)
    module.exit_json(changed=False, **facts)


if __name__ == "__main__":
    main()
