#!/usr/bin/python
# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: interface_sysctl
short_description: Set and audit rp_filter, log_martians and their kin per interface, at runtime and persistently
version_added: 0.1.0
description:
  - Sets (O(state=present)) or audits (O(state=audit)) the per-interface IP sysctls under C(net.ipv4.conf.<iface>.)
    and C(net.ipv6.conf.<iface>.) for a list of interfaces, V(all), V(default) and globs.
  - Runtime values are written through C(/proc/sys) (an interface name with a dot, such as C(eth0.100), is its own
    directory there). O(persistent) manages one file of this collection under C(/etc/sysctl.d/), written
    atomically; it changes only the lines of the keys the task sets and no other file.
  - A glob in O(interfaces) is set at runtime on the interfaces that exist and written as a glob line, so interfaces
    created later get it at boot.
  - The audit reports, per interface, conf/all, conf/default, the interface's own value, our file's value and the
    B(effective) value the kernel applies (rp_filter is max(all, interface), log_martians all OR interface), the
    drift between runtime and file, and with O(expect) whether the effective values are the wanted ones.
  - With O(martians_since), also returns the kernel's C(martian source) and C(martian destination) lines since then,
    parsed and counted (they need log_martians=1).
author:
  - packetpath developers (@packetpath)
attributes:
  check_mode:
    support: full
    description: Says what would change, with the diff; changes nothing.
  diff_mode:
    support: full
    description: The runtime keys, and our file, before and after.
options:
  interfaces:
    description:
      - V(all), V(default), interface names, or globs such as V(eth*) or V(cni*).
    type: list
    elements: str
    required: true
  settings:
    description:
      - The values to set (O(state=present)), or the keys to audit (O(state=audit)), as a mapping.
      - Required with O(state=present); with O(state=audit), give O(settings) or O(expect).
      - Keys under C(net.ipv4.conf.<iface>.) are named plainly (V(rp_filter), V(log_martians), V(accept_local),
        V(src_valid_mark), V(route_localnet), V(forwarding), V(accept_source_route), V(send_redirects),
        V(accept_redirects), V(arp_ignore), V(arp_announce), V(arp_filter), V(proxy_arp)); those under
        C(net.ipv6.conf.<iface>.) with C(ipv6.) (V(ipv6.forwarding), V(ipv6.accept_source_route),
        V(ipv6.accept_redirects), V(ipv6.disable_ipv6)). rp_filter and arp_announce take 0, 1 or 2; arp_ignore 0, 1, 2, 3 or 8; the others
        0 or 1.
    type: dict
  state:
    description: V(present) sets the runtime values; V(audit) changes nothing and reports.
    type: str
    choices: [present, audit]
    default: present
  persistent:
    description:
      - V(present) writes the settings into our sysctl.d file, V(absent) removes them from it (and the file when
        nothing of ours is left), V(ignore) leaves the file alone.
    type: str
    choices: [present, absent, ignore]
    default: ignore
  persistent_file:
    description:
      - The name of our file in C(/etc/sysctl.d/) (for a named O(netns), C(/etc/netns/<netns>/sysctl.d/), which
        C(ip netns exec) shows as C(/etc/sysctl.d/)).
    type: str
    default: 90-packetpath-interfaces.conf
  missing:
    description:
      - What to do about a named interface that does not exist. V(fail) refuses; V(persist_only) writes only the
        persistent line (with O(persistent=present)), for an interface that will appear later.
    type: str
    choices: [fail, persist_only]
    default: fail
  expect:
    description:
      - With O(state=audit), the wanted effective values, a value or a list of allowed values per key, for
        example C(rp_filter) V([0, 2]) and C(log_martians) V(1). The result then says RV(compliant) and lists
        RV(offenders).
        Without it, the values of O(settings) are the wanted ones.
    type: dict
  martians_since:
    description:
      - Also read the kernel's martian lines from this moment on, on this namespace's interfaces (the
        RV(packetpath.linux.trace_rule#module:marker) of C(trace_rule), or a mapping with C(uptime)).
    type: raw
  netns:
    description:
      - Work inside this network namespace (a name from C(ip netns list), a path, or a PID). Our file then lives in
        C(/etc/netns/<name>/sysctl.d/), which needs a named namespace.
    type: str
requirements:
  - Linux with C(/proc/sys/net) (writable for O(state=present))
  - C(dmesg) (util-linux) for O(martians_since)
notes:
  - Needs root to write.
  - C(conf/default) only seeds interfaces created later; give V(default) in O(interfaces) to set it too.
seealso:
  - module: packetpath.linux.trace_results
"""

EXAMPLES = r"""
- name: Loose reverse-path filtering on the data interface and for all, now and after a reboot
  packetpath.linux.interface_sysctl:
    interfaces: [all, b-srv]
    settings:
      rp_filter: 2
      log_martians: 1
    persistent: present

- name: Every CNI interface, also those created later
  packetpath.linux.interface_sysctl:
    interfaces: ["cni*"]
    settings:
      rp_filter: 2
    persistent: present

- name: A VLAN interface that does not exist yet, at boot only
  packetpath.linux.interface_sysctl:
    interfaces: [eth0.100]
    settings:
      rp_filter: 2
    persistent: present
    missing: persist_only

- name: Audit the fleet against what we want
  packetpath.linux.interface_sysctl:
    state: audit
    interfaces: ["eth*", "b-*"]
    expect:
      rp_filter: [0, 2]
      log_martians: 1
  register: audit

- name: Martian packets the kernel logged since the trace started
  packetpath.linux.interface_sysctl:
    state: audit
    interfaces: [b-srv]
    settings:
      log_martians: 1
    martians_since: "{{ trace.marker }}"
"""

RETURN = r"""
before:
  description: Runtime values before the task, per interface and key.
  returned: state=present
  type: dict
  sample: {"all": {"rp_filter": 1}, "b-srv": {"rp_filter": 1}}
after:
  description: Runtime values after the task (in check mode, as they would be).
  returned: state=present
  type: dict
effective:
  description: What the kernel applies on each real interface, per key.
  returned: state=present
  type: dict
  sample: {"b-srv": {"rp_filter": 2}}
changed_keys:
  description: The sysctl keys changed at runtime, and C(file:<key>) for lines of our file that changed.
  returned: state=present
  type: list
  elements: str
  sample: ["net.ipv4.conf.all.rp_filter", "file:net.ipv4.conf.b-srv.rp_filter"]
missing:
  description: Named interfaces that do not exist here (written only persistently, with missing=persist_only).
  returned: state=present
  type: list
  elements: str
persistent_file:
  description: Our file, its C(path), and C(before_text)/C(after_text) (state=present) or C(values) (state=audit).
  returned: always
  type: dict
interfaces:
  description:
    - Per interface and key, C(all), C(default), C(interface), C(persistent) (our file's value, from its own line or
      a glob line) and C(effective).
  returned: state=audit
  type: dict
drift:
  description: Where our file and the runtime value differ (C(interface), C(key), C(runtime), C(persistent)).
  returned: state=audit
  type: list
  elements: dict
compliant:
  description: Whether every effective value is one the O(expect) (or O(settings)) allows.
  returned: state=audit
  type: bool
offenders:
  description: The interfaces and keys whose effective value is not allowed (C(interface), C(key), C(effective),
    C(expected)).
  returned: state=audit
  type: list
  elements: dict
martians:
  description:
    - With O(martians_since), the martian lines grouped by C(kind) (source, destination), C(source),
      C(destination), C(device), with C(count), C(first_uptime) and C(last_uptime).
  returned: when martians_since is given
  type: list
  elements: dict
  sample: [{"kind": "source", "source": "198.51.100.13", "destination": "203.0.113.12", "device": "b-srv",
            "count": 3, "first_uptime": 5123.41, "last_uptime": 5125.47}]
"""

import math
import socket


from ansible_collections.packetpath.linux.plugins.module_utils._common import netns
from ansible_collections.packetpath.linux.plugins.module_utils._common.command import ModuleCommandRunner
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import OptionError, PacketpathError
from ansible_collections.packetpath.linux.plugins.module_utils._common.module import PacketpathModule
from ansible_collections.packetpath.linux.plugins.module_utils.capture.sources import read_kernel_ring
from ansible_collections.packetpath.linux.plugins.module_utils.sysctl import conf, dropin, interface, martians


def argument_spec():
    spec = dict(netns.NETNS_ARGUMENT_SPEC)
    spec.update(
        interfaces={"type": "list", "elements": "str", "required": True},
        settings={"type": "dict"},
        state={"type": "str", "choices": ["present", "audit"], "default": "present"},
        persistent={"type": "str", "choices": ["present", "absent", "ignore"], "default": "ignore"},
        persistent_file={"type": "str", "default": dropin.DEFAULT_FILE},
        missing={"type": "str", "choices": ["fail", "persist_only"], "default": "fail"},
        expect={"type": "dict"},
        martians_since={"type": "raw"},
    )
    return spec


def _since_uptime(value):
    uptime = value.get("uptime") if isinstance(value, dict) else value
    try:
        seconds = float(uptime)
    except (TypeError, ValueError):
        seconds = None
    if seconds is None or not math.isfinite(seconds) or seconds < 0 or isinstance(uptime, bool):
        raise OptionError("martians_since", value, "the marker of trace_rule, or a mapping with uptime (seconds "
                                                   "since boot, a finite number of 0 or more)")
    return seconds


def settings_and_expectations(params):
    """(the keys to set or read with their wanted values, the allowed values to audit against or None)."""
    if not params["interfaces"]:
        raise OptionError("interfaces", params["interfaces"], "empty: name at least one interface, all, default or a "
                          "glob")
    if params["state"] == "present":
        if params["expect"]:
            raise OptionError("expect", reason="goes with state=audit")
        return conf.check_settings(params["settings"]), None
    expect = conf.check_settings(params["expect"], "expect", allowed_lists=True) if params["expect"] else None
    wanted = conf.check_settings(params["settings"]) if params["settings"] else {}
    if expect is None and not wanted:
        raise OptionError("settings", reason="give the keys to audit (or expect)")
    expect = expect or {key: [value] for key, value in wanted.items()}
    return {key: wanted.get(key) for key in set(wanted) | set(expect)}, expect


def persistent_path(params):
    if params["netns"] and params["persistent"] != "ignore" and not netns.named(params["netns"]):
        raise OptionError("netns", params["netns"],
                          "persistent needs a named namespace, whose files live in /etc/netns/<name>")
    return dropin.persistent_path(params["persistent_file"], netns.named(params["netns"]))


def main():
    module = PacketpathModule(argument_spec=argument_spec(), supports_check_mode=True,
                              required_if=[("state", "present", ("settings",)),
                                           ("state", "audit", ("settings", "expect"), True)])
    params = module.params
    try:
        settings, expect = settings_and_expectations(params)
        path = persistent_path(params)
        since = _since_uptime(params["martians_since"]) if params["martians_since"] is not None else None
        netns.enter(params["netns"])
        task = interface.InterfaceSettings(params["interfaces"], settings, path)
        if params["state"] == "present":
            result = interface.configure(task, params["persistent"], params["missing"], module.check_mode)
        else:
            result = interface.audit(task, expect)
        if since is not None:
            devices = {name for _index, name in socket.if_nameindex()}
            result["martians"] = martians.parse(read_kernel_ring(ModuleCommandRunner(module)), since, devices)
    except PacketpathError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg=str(exc))
    diff = result.pop("diff", None)
    if module._diff and diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
