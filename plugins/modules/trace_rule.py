#!/usr/bin/python
# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: trace_rule
short_description: Switch a netfilter TRACE on or off for one flow, on any backend, safely
version_added: 0.1.0
description:
  - Places (O(state=present)) or removes (O(state=absent)) netfilter TRACE for the packets of one flow, so the
    kernel reports every table, chain and rule each such packet passes. Read the trace with
    C(packetpath.linux.trace_results), or with C(dmesg), C(xtables-monitor --trace) or C(nft monitor trace).
  - With C(iptables_legacy) and C(iptables_nft) it places one rule per hook and family at the top of the C(raw)
    table, tagged with the comment C(packetpath:<flow id>). With C(nftables) it uses the collection's own table
    C(inet packetpath), with one base chain per flow and hook (C(pre_<flow id>), C(out_<flow id>)) at priority -350,
    below C(raw); the table is deleted with its last flow.
  - Every rule carries a C(limit) match (O(rate), O(burst)), so a busy port cannot flood the kernel log.
  - Every trace removes itself after O(expires) seconds, even if the controller dies mid-run, through a detached
    process on the host that holds the exact delete commands. O(state=absent) cancels it.
  - The kernel keeps the expiry too. Each rule stops matching at its deadline (iptables C(-m time --datestop), in
    UTC; nftables C(meta time)). So if the detached process is killed, or the host is rebooted into a saved
    ruleset, only an inert rule stays. The next O(state=present) of any flow on the host removes it and warns.
    So do O(state=absent) and C(packetpath.linux.trace_results) O(packetpath.linux.trace_results#module:trace_off).
    C(packetpath.linux.host_audit) flags it.
  - Touches only rules and tables it placed itself. It never flushes, restores a whole table, or reorders other
    rules.
  - For iptables-legacy, binds C(nf_log/2) and C(nf_log/10) of the namespace to C(nfnetlink_log) for the time of the
    trace, so legacy TRACE arrives on NFLOG group 0 of this namespace only (C(packetpath.linux.trace_results)
    C(source=nflog) reads it) instead of the kernel log that every namespace of the machine shares. It loads the
    C(nfnetlink_log) module where it is not loaded yet, and says so. The binding found before is put back when the
    last legacy rule of the collection goes, by O(state=absent) or by the expiry. Where C(nfnetlink_log) cannot be
    had it binds the kernel-log logger instead and warns that other namespaces' lines can mix in.
extends_documentation_fragment:
  - packetpath.linux.flow_handle
author:
  - packetpath developers (@packetpath)
attributes:
  check_mode:
    support: full
    description: Says what would change and shows it in the diff; changes nothing.
  diff_mode:
    support: full
    description: The rules of the collection in the backend's own syntax, before and after.
options:
  state:
    description:
      - V(present) switches the trace of the flow on; V(absent) switches it off wherever it is (every backend).
    type: str
    choices: [present, absent]
    default: present
  proto:
    description: The protocol of the flow. Ports need V(tcp), V(udp) or V(sctp).
    type: str
    choices: [tcp, udp, icmp, icmpv6, sctp, any]
    default: any
  src:
    description: Source address or CIDR.
    type: str
  dst:
    description: Destination address or CIDR.
    type: str
  sport:
    description: Source port, or a range such as V(30000:32767) or V(30000-32767).
    type: str
  dport:
    description: Destination port, or a range.
    type: str
  port:
    description:
      - A port or range as source B(or) destination, so a conversation is traced both ways, its replies too
        (the probe's source port selects the probe's packets and the answers to them).
      - Goes without O(sport) and O(dport). iptables match it with C(-m multiport --ports); nftables with two rules
        in the flow's chain.
    type: str
  probe_src:
    description:
      - The address a probe is sent from, with O(port) its source port. The probe's packets (from this address on
        O(port), and back to it on O(port)) get TRACE rules of their own, before the flow's, each with its own
        O(rate) and O(burst), so that other traffic on the port, however much, cannot use up the trace before they come.
        The traced packets stay bounded (twice the flow's rate at most, for each pair of rules).
      - On a host where an SNAT in between changed the probe's address, the flow's own rule still traces its packets.
      - It is part of the flow (its flow id, the O(handle)); C(packetpath.linux.trace_results) given the same keeps the
        probe's packets first.
    type: str
  probe_dport:
    description:
      - The port the probe is sent to (with O(probe_src)). It changes no rule; it goes with the flow (its flow id,
        the O(handle)) to C(packetpath.linux.trace_results), where, on a host past an SNAT that changed the probe's
        address, the packets that pair O(port) with it are taken for the probe's.
    type: int
  iif:
    description:
      - Interface the packets arrive on (matched at prerouting only). A trailing C(+) is a wildcard.
      - Mutually exclusive with O(oif), because a TRACE in C(raw) sees O(iif) at prerouting and O(oif) at output,
        never both.
    type: str
  oif:
    description:
      - Interface locally sent packets leave on (matched at output only). A trailing C(+) is a wildcard.
      - Mutually exclusive with O(iif).
    type: str
  family:
    description:
      - V(ipv4), V(ipv6) or V(both). By default the family the addresses or the protocol imply, else both.
    type: str
    choices: [ipv4, ipv6, both]
  hooks:
    description:
      - Where to switch the trace on. V(prerouting) sees packets arriving at the host, V(output) packets it sends.
      - By default both, as in a manual diagnosis; only V(prerouting) when O(iif) is given, only V(output) when
        O(oif) is given.
    type: list
    elements: str
    choices: [prerouting, output]
  backend:
    description:
      - V(auto) uses the backend that already holds rules of the collection, else the one the host's own rules
        are in (native nftables, iptables-legacy, iptables-nft), else what C(iptables --version) says, else
        nftables. The result says which and why (RV(backend), RV(backend_reason)).
    type: str
    choices: [auto, iptables_legacy, iptables_nft, nftables]
    default: auto
  rate:
    description: Packets per second the rule traces at most (a C(limit) match); 1-10000.
    type: int
    default: 10
  burst:
    description: Packets the rule may trace in a burst above O(rate); 1-10000.
    type: int
    default: 20
  expires:
    description:
      - Seconds after which the host removes the trace by itself (1-86400). From then on the kernel no longer
        matches the rules either. The switch is armed again whenever the rules are replaced.
      - V(0) means never. That is dangerous; a forgotten trace keeps writing to the kernel log.
    type: int
    default: 900
  netns:
    description:
      - Work inside this network namespace. A name from C(ip netns list), a path such as C(/proc/<pid>/ns/net),
        or the PID of a process in it (a container, a pod).
    type: str
  all:
    description:
      - With O(state=absent) and no flow options, removes every rule, table and expiry the collection placed on
        the host, on every backend and family, and nothing else.
    type: bool
    default: false
  capture:
    description:
      - With O(state=present), also start a live capture of the flow's trace in the host's namespace (NFLOG for
        iptables-legacy, C(xtables-monitor --trace), C(nft monitor trace)), and read the namespace's kernel
        counters. The task returns once the capture listens; the capture runs on after it, detached, and writes to
        a spool in the namespace's state directory under C(/run/packetpath).
      - Read it with C(packetpath.linux.trace_results) O(packetpath.linux.trace_results#module:source=capture) and
        the same flow options, which ends it.
        It also ends when the trace expires, and O(state=absent) ends it and removes its spool.
      - So a diagnosis costs a host three module executions (arm, collect, trace off) and no polling.
      - Needs O(expires) (the capture's upper bound) and, for iptables-legacy, NFLOG (C(nfnetlink_log)).
    type: bool
    default: false
  drop_reasons:
    description:
      - With O(capture=true), also read the kernel's own reason for every drop of the flow's packets
        (C(skb:kfree_skb), Linux 5.17 and newer) with a C(bpftrace) program filtered in the kernel by this network
        namespace, the flow's protocol and its ports, at most 50 drops a second, ending with the capture or the
        trace's expiry. C(trace_results) O(packetpath.linux.trace_results#module:source=capture) reads them with the
        trace.
      - V(auto) does so where C(bpftrace) can run (root, BTF, tracefs, a kernel with drop reasons; RV(capture) says
        why not otherwise) and goes on without them where it cannot. V(never) does not try.
    type: str
    choices: [auto, never]
    default: auto
requirements:
  - for the chosen O(backend), C(iptables-legacy)/C(ip6tables-legacy), C(iptables-nft)/C(ip6tables-nft) (iptables 1.8
    or newer), or C(nft) (nftables); on iptables before 1.8, plain C(iptables) is the legacy backend
  - for O(capture), C(xtables-monitor) (iptables-nft) or C(nft) (nftables); legacy reads NFLOG itself
  - optional, bpftrace for the kernel's drop reasons beside a capture (O(drop_reasons))
notes:
  - Needs root.
  - A flow must narrow the traffic with at least one of O(src), O(dst), O(sport), O(dport), O(iif), O(oif).
    Tracing every packet of a host is refused.
  - The flow id is a hash of the flow options, so the same options always find the same rules again.
seealso:
  - module: packetpath.linux.preflight
"""

EXAMPLES = r"""
- name: Trace TCP to port 8081 arriving at and sent from the node, for five minutes
  packetpath.linux.trace_rule:
    proto: tcp
    dport: 8081
    expires: 300
  register: trace

- name: Trace only the probe's own packets (a fixed source port) on the data interface
  packetpath.linux.trace_rule:
    proto: tcp
    src: 198.51.100.13
    sport: 40001
    dport: 8081
    iif: b-srv

- name: Same flow inside a pod's network namespace, on native nftables
  packetpath.linux.trace_rule:
    proto: udp
    dport: 53
    netns: "{{ pod_pid }}"
    backend: nftables

- name: Switch that trace off again
  packetpath.linux.trace_rule:
    state: absent
    proto: tcp
    dport: 8081

- name: Or switch off what an earlier task armed, by the handle it returned
  packetpath.linux.trace_rule:
    state: absent
    handle: "{{ armed.handle }}"

- name: Trace a probe's packets and their replies, and capture them live from now on (read with trace_results)
  packetpath.linux.trace_rule:
    proto: tcp
    port: 48081
    expires: 300
    capture: true

- name: Emergency cleanup, every trace of this collection on the host
  packetpath.linux.trace_rule:
    state: absent
    all: true
"""

RETURN = r"""
backend:
  description: The backend used.
  returned: state=present
  type: str
  sample: iptables_legacy
backend_reason:
  description: Why that backend, in words.
  returned: state=present
  type: str
  sample: "no rules yet; `iptables --version` says iptables v1.8.9 (legacy)"
handle:
  description:
    - The flow's selector and the network namespace it was worked in, as O(handle) takes it back (only the options
      set), so that the same flow's capture is read by C(packetpath.linux.trace_results) and its trace switched off
      without repeating the selector. Also in the result of a failed task, whose clean-up it is for.
  returned: unless all=true
  type: dict
  sample: {"proto": "tcp", "port": "28080", "family": "both", "netns": "pp-pod1"}
flow_id:
  description: The id of the flow; rules are tagged C(packetpath:<flow_id>).
  returned: unless all=true
  type: str
  sample: 606d3efada25
flow:
  description: The flow in words.
  returned: unless all=true
  type: str
  sample: "tcp * -> *:8081 ipv4/ipv6"
netns:
  description: The network namespace worked in, as O(netns) named it; null for the host's own.
  returned: always
  type: str
  sample: /proc/4242/ns/net
rules:
  description: The flow's rules after the task, as the backend lists them (in check mode, as they would be placed).
  returned: state=present
  type: list
  elements: dict
  contains:
    backend:
      description: The backend holding the rule.
      type: str
      returned: always
    flow_id:
      description: The flow the rule traces.
      type: str
      returned: always
    hook:
      description: V(prerouting) or V(output).
      type: str
      returned: except in check mode
    families:
      description: The families of an iptables rule; empty for nftables, whose rule covers the flow's families.
      type: list
      elements: str
      returned: except in check mode
    rate:
      description: The rule's limit in packets per second.
      type: int
      returned: except in check mode
    burst:
      description: The rule's burst.
      type: int
      returned: except in check mode
    until:
      description: When the kernel stops matching the rule (UTC, ISO 8601); null for a rule without an expiry.
      type: str
      returned: except in check mode
      sample: "2026-12-07T23:59:59Z"
    rule:
      description: The rule in the backend's own syntax.
      type: str
      returned: always
      sample: >-
        -A PREROUTING -p tcp -m tcp --dport 8081 -m comment --comment packetpath:606d3efada25
        -m time --datestop 2026-12-07T23:59:59 -m limit --limit 10/sec --limit-burst 20 -j TRACE
removed:
  description:
    - The rules removed (same fields as RV(rules)). With O(state=present), the flow's rules taken out of other
      backends, because a flow is traced in one backend at a time.
    - Also, with either state, the rules of other flows whose deadline had passed without their expiry taking
      them out (inert in the kernel).
  returned: state=absent, or state=present when the flow moved between backends or inert rules were found
  type: list
  elements: dict
nft_tables:
  description: Our own nftables table, dropped because no rule of ours is left in it (C(inet packetpath)).
  returned: state=absent
  type: list
  elements: str
expiry:
  description:
    - The expiry records removed, with the sleeper ended where it still ran (C(flow_id), C(pid), C(expires_at),
      C(running)). A record whose sleeper was killed is removed too, and so is one the expiry kept because a
      delete still failed after 3 attempts (its C(failed) lists each command, C(rc), C(stderr) and C(attempts)).
  returned: state=absent
  type: list
  elements: dict
expires_at:
  description: When the host removes the trace by itself (UTC, ISO 8601); null for no expiry.
  returned: state=present
  type: str
  sample: "2026-11-24T19:05:12Z"
marker:
  description:
    - When the task ran, for reading the kernel log from here on (C(uptime) is the clock of C(dmesg)).
  returned: always
  type: dict
  sample: {"time": "2026-11-24T18:50:12Z", "epoch": 1795546212.5, "uptime": 2601.7}
capture:
  description:
    - With O(capture=true) and O(state=present), the live capture started (C(pid), C(source), C(format),
      C(expires_at) as epoch seconds); in check mode C(would_start) names the source.
    - C(drop_reasons) says whether the kernel's drop reasons are read beside it (C(pid) of the bpftrace program) or
      why not (C(unavailable)).
    - With O(state=absent), whether a capture of the flow (or of any flow, O(all=true)) was ended and its spool
      removed (C(discarded)).
  returned: when O(capture=true), and with O(state=absent)
  type: dict
  sample: {"pid": 4242, "source": "nft_monitor", "format": "nft_monitor", "expires_at": 1795546512.5,
           "drop_reasons": {"pid": 4250}}
nf_log:
  description:
    - iptables-legacy only. Where legacy TRACE goes (C(logger) V(nflog), or V(kernel_log) where nfnetlink_log cannot
      be had), the C(nf_log) bindings (C(bindings)), whether this is the initial namespace (C(in_initial_netns)),
      C(nf_log_all_netns) where readable, bindings changed now (C(bound)) or restored (C(restored)), each as a
      mapping of family to C([before, after]).
  returned: when the legacy backend is used or a binding was restored
  type: dict
"""


from ansible_collections.packetpath.linux.plugins.module_utils._common import hoststate, netns
from ansible_collections.packetpath.linux.plugins.module_utils._common.command import ModuleCommandRunner
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import HostError, OptionError, PacketpathError
from ansible_collections.packetpath.linux.plugins.module_utils._common.module import PacketpathModule
from ansible_collections.packetpath.linux.plugins.module_utils.capture import drop_reasons, fetch, spool
from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis.evidence import counters, interfaces
from ansible_collections.packetpath.linux.plugins.module_utils.flow import (
    FLOW_ARGUMENT_SPEC,
    HANDLE_ARGUMENT_SPEC,
    HANDLE_EXCLUDES,
    PROBE_ARGUMENT_SPEC,
    Flow,
    handle_of,
    with_handle,
)
from ansible_collections.packetpath.linux.plugins.module_utils.trace import backends, rule

FLOW_OPTIONS = ("src", "dst", "sport", "dport", "port", "iif", "oif")


def argument_spec():
    spec = dict(FLOW_ARGUMENT_SPEC)
    spec.update(netns.NETNS_ARGUMENT_SPEC)
    spec.update(PROBE_ARGUMENT_SPEC)
    spec.update(HANDLE_ARGUMENT_SPEC)
    spec.update(
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        hooks={"type": "list", "elements": "str", "choices": list(backends.HOOKS)},
        backend={"type": "str", "choices": ["auto"] + list(backends.BACKENDS), "default": "auto"},
        rate={"type": "int", "default": rule.DEFAULT_RATE},
        burst={"type": "int", "default": rule.DEFAULT_BURST},
        expires={"type": "int", "default": rule.DEFAULT_EXPIRES},
        all={"type": "bool", "default": False},
        capture={"type": "bool", "default": False},
        drop_reasons={"type": "str", "choices": ["auto", "never"], "default": "auto"},
    )
    return spec


def hooks_for(params, flow):
    """The hooks to trace at; interfaces bind a flow to one side of the routing decision."""
    fitting = ["prerouting"] if flow.iif else (["output"] if flow.oif else list(backends.HOOKS))
    hooks = params["hooks"] or fitting
    for hook in hooks:
        if hook not in fitting:
            option = "iif" if flow.iif else "oif"
            raise OptionError("hooks", hooks, "%s=%s cannot be matched at %s" % (option, params[option], hook))
    return sorted(set(hooks))


def check_bounds(params):
    for option, low, high in (("rate", 1, 10000), ("burst", 1, 10000), ("expires", 0, 86400)):
        if not low <= params[option] <= high:
            raise OptionError(option, params[option], "must be %d-%d" % (low, high))


def switch(runner, params, check_mode):
    """The task: every trace of ours off (all=true), or one flow's trace on or off."""
    if params["all"]:
        given = [option for option in FLOW_OPTIONS + ("probe_src", "probe_dport") if params[option]]
        if params["state"] != "absent" or given:
            raise OptionError("all", True, "goes with state=absent and no flow options (got %s)"
                              % ", ".join(["state=" + params["state"]] + given))
        result = rule.absent_all(runner, check_mode)
        result["capture"] = {"discarded": _discard(spool.captured_flows(), check_mode)}
        result["changed"] = result["changed"] or bool(result["capture"]["discarded"])
        return result
    flow = Flow.from_params(params)
    check_bounds(params)
    if not flow.narrowed:
        if params["state"] == "absent" and not any(params[option] for option in FLOW_OPTIONS):
            raise OptionError("all", params["all"], "state=absent needs the flow (%s) or all=true"
                              % ", ".join(FLOW_OPTIONS))
        raise OptionError("proto", params["proto"], "alone selects every packet (an address prefix /0 or the whole "
                          "port range 1-65535 narrows nothing): give at least one of %s" % ", ".join(FLOW_OPTIONS))
    if params["state"] == "absent":
        result = rule.absent(runner, flow, check_mode)
        result["capture"] = {"discarded": _discard([flow.flow_id], check_mode)}
        result["changed"] = result["changed"] or bool(result["capture"]["discarded"])
        return result
    if params["capture"] and not params["expires"]:
        raise OptionError("capture", True, "needs expires (the capture's upper bound), not expires=0")
    hooks = hooks_for(params, flow)
    backend, reason = backends.choose(runner, params["backend"])
    missing = backend.missing_tools()
    if missing:
        raise OptionError("backend", params["backend"], "%s needs %s, not installed on this host"
                          % (backend.name, ", ".join(missing)))
    result = rule.present(backend, reason, flow, hooks, params["rate"], params["burst"], params["expires"],
                          check_mode)
    if params["capture"]:
        result["capture"] = _capture(runner, backend.name, flow, params, result, check_mode)
        result["changed"] = True
    return result


def _capture(runner, backend, flow, params, result, check_mode):
    """Start the flow's live capture, with the namespace's counters and its interfaces' drops as they are now, and
    the kernel's drop reasons beside it where they can be read."""
    if (result.get("nf_log") or {}).get("logger") == "kernel_log":
        raise OptionError("capture", True, "legacy TRACE goes to the kernel log here (no nfnetlink_log), which every "
                          "namespace shares: read it with packetpath.linux.trace_results source=dmesg instead")
    bpftrace, unavailable = drop_reasons.availability(runner) if params["drop_reasons"] == "auto" else (
        None, "drop_reasons=never")
    if check_mode:
        return {"would_start": fetch.BACKEND_SOURCE[backend], "drop_reasons": {"unavailable": unavailable}
                if unavailable else {"would_start": bpftrace}}
    # Ends a little before the expiry, which then removes the spool.
    duration = max(1, params["expires"] - 2)
    spool.discard(flow.flow_id)  # an earlier capture of the flow, and its program, before the new program's files
    reasons = {"unavailable": unavailable}
    if bpftrace:
        try:
            reasons = drop_reasons.start(bpftrace, flow, duration, spool.base(flow.flow_id))
        except (HostError, OSError) as exc:  # optional: the capture goes on without them, and says why
            reasons = {"unavailable": str(exc)}
    try:
        found = spool.start(runner, backend, flow.flow_id, duration, {
            "counters": counters.snapshot(), "interfaces": interfaces.read(runner), "drop_reasons": reasons})
    except BaseException:
        drop_reasons.discard(reasons)
        raise
    started = {key: found[key] for key in ("pid", "source", "format", "expires_at")}
    started["drop_reasons"] = {"pid": reasons["pid"]} if "pid" in reasons else reasons
    return started


def _discard(flow_ids, check_mode):
    """The flows whose capture was ended and its spool removed."""
    if check_mode:
        return [flow_id for flow_id in flow_ids if flow_id in spool.captured_flows()]
    return [flow_id for flow_id in flow_ids if spool.discard(flow_id)]


def main():
    # A TRACE in raw sees iif at prerouting and oif at output, never both.
    module = PacketpathModule(argument_spec=argument_spec(), supports_check_mode=True,
                              mutually_exclusive=[("iif", "oif")] + HANDLE_EXCLUDES)
    params = module.params
    try:
        params = with_handle(params)
        netns.enter(params["netns"])
        with hoststate.namespace_lock():
            result = switch(ModuleCommandRunner(module), params, module.check_mode)
    except PacketpathError as exc:
        # The handle also where arming failed: what a playbook's clean-up switches off.
        module.fail_json(msg=str(exc), handle=handle_of(params))
    result["netns"] = params["netns"]
    if not params["all"]:
        result["handle"] = handle_of(params)
    diff = result.pop("diff")
    for warning in result.pop("warnings"):
        module.warn(warning)
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
