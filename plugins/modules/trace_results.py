#!/usr/bin/python
# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: trace_results
short_description: Fetch a netfilter trace, group it into packets and hops, and say where and why each stopped
version_added: 0.1.0
description:
  - Reads what netfilter TRACE printed on the host (the kernel log, the journal, the kernel ring buffer, any log
    file, or live from C(xtables-monitor --trace) or C(nft monitor trace)), parses every format into the same
    hops, groups them into packets and, from the order of the kernel's hooks, tells each packet's path, its
    fate, where it stopped, and what to check next.
  - Legacy lines name no verdict and no rule text; the module reads them from C(iptables-save) on the host when
    it fetches (marked C(iptables-save as of fetch time), since the ruleset may have changed since the packet
    passed), and otherwise infers the verdict from where the packet went next.
  - Reads line by line; memory grows with the packets kept (O(max_packets)), not with the size of the log.
  - Reads only, except that O(source=capture) ends the capture it reads, and O(trace_off) switches the flow's trace
    off.
extends_documentation_fragment:
  - packetpath.linux.flow_handle
author:
  - packetpath developers (@packetpath)
attributes:
  check_mode:
    support: full
    description: Reads as it would; a capture is read so far and left running, and O(trace_off) says what it would remove.
  diff_mode:
    support: full
    description: With O(trace_off), the trace rules of this collection before and after, as C(packetpath.linux.trace_rule) shows them.
options:
  source:
    description:
      - Where to read the trace.
      - V(auto) follows the backend holding this collection's trace rules on the host (see
        C(packetpath.linux.trace_rule)), V(iptables_legacy) -> V(nflog), V(iptables_nft) -> V(xtables_monitor),
        V(nftables) -> V(nft_monitor); RV(source_reason) says which. All three capture live, in the host's own
        network namespace.
      - V(nflog) reads legacy TRACE live from NFLOG group 0 of this network namespace, where trace_rule sends it
        for the time of the trace (C(nf_log) bound to C(nfnetlink_log)), so only this namespace's packets, whatever
        other namespaces of the machine call their interfaces. It needs pyroute2, and fails clearly where another
        program (ulogd) holds group 0.
      - V(kernel_log) reads C(/var/log/kern.log), else C(/var/log/messages) (or O(path)). V(journal) reads
        C(journalctl -k -o json). V(dmesg) reads the kernel ring buffer (C(/dev/kmsg), else C(dmesg)).
      - V(file) reads O(path), in any of the three formats (see O(format)); gzipped files (rotated logs) too.
      - V(capture) ends the live capture C(packetpath.linux.trace_rule) O(packetpath.linux.trace_rule#module:capture=true)
        started for the same flow options, reads what it caught and removes its spool; with O(explain), the counters
        are compared with those read when it started. In check mode it reads what was caught so far, and leaves the
        capture running.
      - V(nflog), V(xtables_monitor) and V(nft_monitor) capture live for O(duration) seconds or until O(max_packets)
        packets were seen. Run them under C(async) while another task sends the traffic (see EXAMPLES).
      - V(kernel_log), V(journal) and V(dmesg) read legacy traces recorded earlier; the kernel log is shared by every
        network namespace of the machine, so by default only hops on this host's interfaces are kept.
    type: str
    choices: [auto, capture, nflog, kernel_log, journal, dmesg, file, xtables_monitor, nft_monitor]
    default: auto
  path:
    description:
      - The file to read with O(source=file) (required there), or another kernel log file with O(source=kernel_log).
    type: path
  format:
    description:
      - The format of O(path). V(auto) tells it from the first trace lines.
    type: str
    choices: [auto, kernel_log, xtables_monitor, nft_monitor]
    default: auto
  since:
    description:
      - Only lines from this moment on. The RV(packetpath.linux.trace_rule#module:marker) that C(trace_rule)
        returned when it switched the trace on (exact, on the kernel's clock, for V(dmesg) and V(journal)), or
        seconds since the epoch, or an ISO 8601 time (without a zone, the host's local time).
      - Lines without a time (the live monitors) are always read.
    type: raw
  until:
    description: Only lines before this moment; same forms as O(since).
    type: raw
  proto:
    description: Keep packets of this protocol.
    type: str
    choices: [tcp, udp, icmp, icmpv6, sctp, any]
    default: any
  src:
    description: Keep packets from this address or CIDR (at any hop, so before or after NAT).
    type: str
  dst:
    description: Keep packets to this address or CIDR (at any hop).
    type: str
  sport:
    description: Keep packets from this port or range (V(30000:32767)).
    type: str
  dport:
    description: Keep packets to this port or range.
    type: str
  port:
    description: Keep packets from or to this port or range (a conversation both ways). Goes without O(sport), O(dport).
    type: str
  probe_src:
    description:
      - The address a probe was sent from, with O(port) its source port, as C(packetpath.linux.trace_rule) was given
        it. The probe's packets (from it on O(port), or back to it) are kept before the others, so that a flood on
        the port does not crowd them out of O(max_packets), and alone - the other packets on the port are left out,
        counted in RV(stats)'s C(packets_of_strangers). Where the host saw none from or to it, the packets that
        pair O(port) with O(probe_dport) are taken for the probe's (an SNAT before the host changed its address);
        where there are none of those either, no packet is kept (none is known to be the probe's).
    type: str
  probe_dport:
    description: The port the probe was sent to, with O(probe_src).
    type: int
  iif:
    description: Keep packets that arrived on this interface (a trailing C(+) is a wildcard).
    type: str
  oif:
    description: Keep packets that left on this interface.
    type: str
  family:
    description: Keep packets of this family. By default the family the addresses or the protocol imply, else both.
    type: str
    choices: [ipv4, ipv6, both]
  packet_id:
    description: Keep only the packet with this id (RV(packets[].id), from an earlier run).
    type: str
  max_packets:
    description:
      - Keep at most this many packets (the first ones that pass the filters); 1-10000. RV(truncated) says when
        more matched. A live capture stops once it has seen this many.
    type: int
    default: 100
  duration:
    description: Seconds a live capture (V(xtables_monitor), V(nft_monitor)) runs at most; 1-600.
    type: int
    default: 10
  ready_file:
    description:
      - For live captures under C(async). A file the module creates once the monitor listens and removes when the
        capture ends, so the next task can wait for it (C(ansible.builtin.wait_for)) before sending traffic.
    type: path
  stop_file:
    description:
      - For live captures under C(async). The capture ends as soon as this file exists (after a moment for the last
        events), so a playbook can end it once its traffic is sent instead of waiting out O(duration).
    type: path
  host_ruleset:
    description:
      - Read the host's ruleset when fetching, for the rule texts and verdicts of legacy lines and for which
        hooks could have printed a line. Set V(false) for a log copied from another host.
    type: bool
    default: true
  this_netns_only:
    description:
      - Keep only packets whose interfaces exist in this network namespace. The kernel log is shared by every
        namespace on a host (pods, containers, a lab), so their packets appear in it too.
      - By default V(true) for the host's kernel log (V(kernel_log), V(journal), V(dmesg)), V(false) otherwise.
    type: bool
  explain:
    description:
      - Decide on the host why the traced conversation stopped, and return it as RV(finding). The counters of
        C(/proc/net/snmp), C(netstat) and C(snmp6) are read when the capture starts and when it ends (the probe's
        window); the routing decision is redone where a packet vanished (after NAT, with its arrival interface,
        through the policy rules and tables); the listening sockets are read where a packet was delivered locally.
      - The causes and the evidence each needs are in the collection's docs (C(docs/diagnose_port.md)). Where the
        evidence cannot decide, the finding says V(undecided) and lists what it ruled out.
      - Read with O(port) (the probe's source port either way), so that replies are traced too.
    type: bool
    default: false
  check_endpoints:
    description:
      - With O(explain), where this host spreads the traced conversation's destination over several endpoints (DNAT,
        kube-proxy's chains, several C(--to-destination) targets) and the probe's attempts did not reach each of
        them, connect to every endpoint none reached (TCP, once each, side by side, 3.5 s at most, 16 endpoints at
        most), and say in the finding's C(service.checked) how each answered and, where one did not, what this
        host's route and neighbour entry say of the way to it. A probe that connected reached one endpoint per
        attempt; this is how the others are spoken for.
      - The connects go from this host's own stack (its OUTPUT path), not through the FORWARD path the service's
        traffic takes.
    type: bool
    default: false
  trace_off:
    description:
      - With O(source=capture), once the capture is read, switch the flow's trace off in the same execution, as
        C(packetpath.linux.trace_rule) O(packetpath.linux.trace_rule#module:state=absent) with the same flow options
        does (its rules on every backend, its expiry, the legacy logger binding). One round trip per host fewer
        than a separate task; keep such a task under C(always) for a host whose collection failed.
      - RV(trace_off) says what was removed, and C(changed) is true where something was.
    type: bool
    default: false
  query:
    description:
      - A JMESPath expression applied on the host to the result; only its value comes back (RV(query_result)),
        with RV(stats). Needs the jmespath Python library on the host.
    type: str
  netns:
    description:
      - Work inside this network namespace (a name from C(ip netns list), a path such as C(/proc/<pid>/ns/net), or a
        PID). The monitors then see that namespace's events; the kernel log is the host's either way.
    type: str
notes:
  - Needs root for the kernel ring buffer, the monitors and the host's ruleset.
  - Packets are told apart by the trace id of the nft formats; legacy lines have none, so a packet there is its
    protocol, IP ID (IPv6 flow label), TCP sequence number or ICMP echo id and sequence, which NAT leaves alone.
    A key whose hooks start over (the next host of a shared log, a retransmission) is a new packet (id suffix
    C(.2)).
requirements:
  - jmespath (on the host) for O(query)
seealso:
  - module: packetpath.linux.trace_rule
"""

EXAMPLES = r"""
- name: End the capture trace_rule (capture=true) started for this flow, read it, and decide on this host
  packetpath.linux.trace_results:
    source: capture
    proto: tcp
    port: 48081
    explain: true
    trace_off: true  # and switch the flow's trace off in the same execution
  register: live

- name: Switch the trace on for the probe's own packets
  packetpath.linux.trace_rule:
    proto: tcp
    dport: 8081
    sport: 40001
  register: trace

- name: Read what the trace printed since then (legacy backend, kernel log)
  packetpath.linux.trace_results:
    since: "{{ trace.marker }}"
    proto: tcp
    sport: 40001
  register: results

- name: Show each packet as a person reads it
  ansible.builtin.debug:
    msg: "{{ results.packets | map(attribute='summary') | list }}"

# Live backends (iptables-nft, nftables): start the capture in the background,
# wait until it listens, send the traffic, then collect the capture.
- name: Capture the trace live for up to 20 seconds
  packetpath.linux.trace_results:
    source: auto
    duration: 20
    max_packets: 5
    dport: 8081
    ready_file: /run/packetpath-capture.ready
  async: 60
  poll: 0
  register: capture

- name: Wait until the monitor listens
  ansible.builtin.wait_for:
    path: /run/packetpath-capture.ready
    timeout: 10

- name: Send the traffic from the client
  ansible.builtin.command: timeout 2 bash -c 'echo > /dev/tcp/203.0.113.12/8081'
  delegate_to: client
  changed_when: false
  failed_when: false

- name: Collect the capture
  ansible.builtin.async_status:
    jid: "{{ capture.ansible_job_id }}"
  register: live
  until: live.finished
  retries: 30
  delay: 1

- name: Only the fate of each packet, computed on the host (small over SSH)
  packetpath.linux.trace_results:
    source: file
    path: /var/log/kern.log.2.gz
    dst: 203.0.113.12
    host_ruleset: false
    query: "packets[].{id: id, fate: fate, last: last_hop}"
"""

RETURN = r"""
source:
  description: The source read.
  returned: always
  type: str
  sample: dmesg
source_reason:
  description: Why that source, in words.
  returned: always
  type: str
  sample: this collection's trace rules are in iptables_legacy
format:
  description: The trace format parsed, V(kernel_log), V(xtables_monitor) or V(nft_monitor).
  returned: always
  type: str
packets:
  description: The packets kept, in the order they were first seen.
  returned: unless query is given
  type: list
  elements: dict
  contains:
    id:
      description: The trace id (nft formats), or proto-IPID-SEQ (legacy); a C(.N) suffix for a key seen again.
      type: str
      sample: tcp-28265-1726587944
    family:
      description: V(ipv4) or V(ipv6).
      type: str
    proto:
      description: The protocol, where the trace says.
      type: str
    flow:
      description: The packet as it first appeared, in words.
      type: str
      sample: "tcp 192.168.235.13:14024 -> 10.0.1.12:8081"
    host:
      description: The host name a syslog line names (log files of several hosts), else null.
      type: str
    time:
      description: Seconds since the epoch of the first line, where the line says.
      type: float
    uptime:
      description: The kernel's clock of the first line (dmesg's seconds), where the line says.
      type: float
    hops:
      description:
        - The hops in order. Each has C(hook), C(table), C(chain), C(kind) (rule, return, policy),
          C(rule_number) (legacy) or C(rule_handle) (xtables-monitor), C(verdict) (accept, drop, reject, continue,
          jump, goto, return, queue; null where unknown), C(target) (of a jump), C(rule) (its text) with
          C(rule_source) (C(trace), or C(iptables-save as of fetch time)), C(in), C(out), C(src), C(dst), C(sport),
          C(dport), C(proto), C(ttl), C(mark) where printed, and C(rewrite) where the next hop sees other values
          (a mapping of field to C([before, after]), NAT or a re-route).
      type: list
      elements: dict
    path:
      description: The way through the host's hooks, ending where the packet went or stopped.
      type: str
      sample: "prerouting → routing decision (vanished)"
    last_hop:
      description: The last hop, as C(table:chain:kind:number).
      type: str
      sample: "nat:PREROUTING:policy:3"
    fate:
      description:
        - V(delivered_local), V(forwarded), V(sent), V(dropped_by_rule), V(dropped_by_policy), V(queued),
          V(vanished_after) (a hook that should have printed next printed nothing), or V(unknown) (nothing after
          the last hop could have printed).
      type: str
    vanished_after:
      description: Where it vanished (C(table HOOK)), with V(vanished_after).
      type: str
      sample: nat PREROUTING
    next_expected:
      description: What should have come next, with V(vanished_after).
      type: str
      sample: "routing decision, then filter:INPUT or filter:FORWARD"
    dropped_by:
      description: The hop and rule that dropped it.
      type: dict
    hints:
      description: What to check, in plain words.
      type: list
      elements: str
    follow_up:
      description:
        - The checks the hints name, for a playbook to run (C(check) is C(route_lookup), C(rp_filter) or
          C(martians), with the addresses and interface).
      type: list
      elements: dict
    summary:
      description: The packet for a terminal, one aligned line per hop with verdicts and rewrites.
      type: str
truncated:
  description:
    - More packets matched than O(max_packets) kept, or a packet had more hops than are kept per packet (1000; the
      rest are counted in RV(stats)'s C(hops_skipped)).
  returned: always
  type: bool
stats:
  description:
    - C(lines_read), C(trace_events), C(events_outside_window), C(packets_seen), C(packets_matched), C(packets_kept),
      C(hops_skipped) (hops past the 1000 kept per packet), C(packets_elsewhere) (left out by O(this_netns_only)),
      C(packets_of_strangers) (packets on the port left out because the probe's own were seen, see O(probe_src)), C(other_lines) (other kernel
      messages, no trace), C(unparsable_lines) with a few C(unparsable_samples),
      and C(seconds).
  returned: always
  type: dict
ruleset:
  description: Whether the host's ruleset was read (C(read)), where the hook list came from (C(hooks_from)).
  returned: always
  type: dict
finding:
  description:
    - With O(explain), the host's own verdict on the conversation. C(seen), C(role) (V(sent), V(forwarded),
      V(delivered_local), V(stopped), V(not_seen)), C(requests) and C(replies) (packets per direction),
      C(ttl) (the request's on arrival), C(cause) (an id of the catalogue, V(undecided), or null where nothing stopped here), C(direction)
      (V(request) or V(reply)), C(words), C(evidence) (what establishes it), C(fix) (C(module), C(args),
      C(remediable), C(why); null where the fix is a rule only its owner can change), C(ruled_out), C(counters)
      (every counter that moved in the window, shared with all traffic of the namespace, conntrack's statistics
      among them), and C(conntrack) (C(table) with the namespace's C(count) and the machine's C(max), and
      C(entries), the request's conversation as conntrack holds it (C(orig), C(reply), C(status), C(state),
      C(nat), C(reply_seen), conntrack saw a reply, even one a filter then dropped); null where conntrack or pyroute2 is missing).
    - C(engine), the routing engine that answered its lookups (V(pyroute2), or V(ip) where pyroute2 is missing or
      older than 0.7, and then C(engine_reason) says which),
      and C(addresses), every address of the namespace.
    - C(link_layer), what the fleet verdict sets beside another host's neighbour entry for one of this host's
      addresses - C(interfaces), each interface that holds an address, with C(dev), C(mac), C(up), C(addresses)
      (with their prefix lengths), C(arp), the ARP policy the kernel applies there (C(arp_ignore),
      C(arp_filter), C(arp_announce), C(proxy_arp)), C(forwarding) and C(disable_ipv6), its IPv4 forwarding and
      IPv6 switch, and C(dad_failed), the addresses that failed duplicate address detection (held and not used, as
      another host on the link had them first).
    - C(conversations), each attempt of the probe on its own (C(sport), its C(cause) and C(endpoint), where NAT sent
      it), and C(service) where this host DNATs the conversations - C(address), C(endpoints) (as today's nat rules
      give them), C(reached) (endpoint -> the source ports whose attempts reached it), C(not_reached), and with
      O(check_endpoints), C(checked) (endpoint -> C(answer), C(latency_ms), C(next_hop), C(words)).
    - C(layer), where the packet died (V(trace), V(routing), V(after_routing), V(before_first_hook), V(socket),
      V(kernel)).
    - Where the kernel's drop reasons were read (see RV(drop_reasons)), C(drop_reasons) (the flow's drops here, each
      with C(direction)) and C(kernel), how they stand to the cause (V(corroborates), V(names another reason),
      V(decides) where no other layer could, with cause V(kernel_drop)).
  returned: when explain is true
  type: dict
drop_reasons:
  description:
    - With O(source=capture), whether the kernel's drop reasons were read beside the capture (C(read)) and why not
      (C(why)), and C(drops), the flow's drops in this namespace as the kernel gave them (skb:kfree_skb, read by the
      bpftrace program C(packetpath.linux.trace_rule) started), oldest first, each with C(reason) (the kernel's
      name), C(reason_code), C(location) (the kernel function), C(dev), C(family), C(proto), C(src), C(dst),
      C(sport), C(dport), C(ttl) and C(time) (epoch seconds).
  returned: with source=capture
  type: dict
  sample: {"read": true, "drops": [{"reason": "NO_SOCKET", "reason_code": 3, "location": "tcp_v4_rcv",
           "dev": "eth0", "family": "ipv4", "proto": "tcp", "src": "198.18.10.2", "dst": "198.18.20.2",
           "sport": 48080, "dport": 8080, "ttl": 63, "time": 1795546212.5}]}
capture:
  description:
    - With O(source=capture), whether the capture read everything the trace sent it in the window (C(complete)), and
      where not, why (C(losses), also given as warnings) - its reader killed, its monitor ended on its own, events
      the kernel dropped for a full socket buffer (ENOBUFS), or the trace's expiry reached before the collection. A
      host whose capture is incomplete can have seen more than it says.
    - C(neighbours_awaited) (not in check mode) - the neighbour entries (ARP/NDP) the host was still asking for when
      the collection began, which it waited for before ending the capture, the state each ended in (C(failed),
      C(reachable)...; C(gone) where the entry went), and for how long (C(seconds)). A packet
      queued on such an entry is dropped, and its drop reason reported, only when the kernel gives up asking (about
      3 s after the first packet, from the device's C(mcast_solicit), C(app_solicit) and C(retrans_time_ms)); the
      wait ends as soon as no entry is INCOMPLETE, and lasts at most that long (6 s in all). C(resolved) is false
      where one was still INCOMPLETE at the end.
  returned: with source=capture
  type: dict
  sample: {"complete": false, "losses": ["the capture's xtables_monitor ended on its own before it was collected (rc=1): packets after its end are missing"],
           "neighbours_awaited": {"seconds": 1.62, "resolved": true,
                                  "entries": [{"family": "ipv4", "dev": "eth1", "address": "198.18.20.9", "state": "failed"}]}}
trace_off:
  description:
    - With O(trace_off), the result of switching the flow's trace off (the keys of
      C(packetpath.linux.trace_rule)'s result with O(packetpath.linux.trace_rule#module:state=absent), C(removed),
      C(expiry), C(nft_tables), C(nf_log)).
  returned: with trace_off
  type: dict
  sample: {"changed": true, "flow_id": "pp-0a1b2c3d4e", "removed": [], "expiry": [], "nft_tables": []}
query_result:
  description: The value of O(query) applied to the result.
  returned: when query is given
  type: raw
"""

import json
import socket
import traceback

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.packetpath.linux.plugins.module_utils._common import hoststate, inputs, netns
from ansible_collections.packetpath.linux.plugins.module_utils._common.command import ModuleCommandRunner
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import HostError, OptionError, PacketpathError
from ansible_collections.packetpath.linux.plugins.module_utils._common.module import PacketpathModule
from ansible_collections.packetpath.linux.plugins.module_utils.capture import drop_reasons, spool
from ansible_collections.packetpath.linux.plugins.module_utils.capture.fetch import SOURCES, Fetch
from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis import endpoints, finding
from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis.evidence import (
    counters,
    interfaces,
    link_layer,
    neighbours,
)
from ansible_collections.packetpath.linux.plugins.module_utils.flow import (
    FLOW_ARGUMENT_SPEC,
    HANDLE_ARGUMENT_SPEC,
    HANDLE_EXCLUDES,
    PROBE_ARGUMENT_SPEC,
    Flow,
    with_handle,
)
from ansible_collections.packetpath.linux.plugins.module_utils.routing import engines, rt_tables
from ansible_collections.packetpath.linux.plugins.module_utils.routing.lookup import Router
from ansible_collections.packetpath.linux.plugins.module_utils.sysctl import conf
from ansible_collections.packetpath.linux.plugins.module_utils.trace import backends, rule

try:
    import jmespath
except ImportError:
    jmespath = None
    JMESPATH_IMPORT_ERROR = traceback.format_exc()
else:
    JMESPATH_IMPORT_ERROR = None

FLOW_OPTIONS = ("src", "dst", "sport", "dport", "port", "iif", "oif", "family")


def argument_spec():
    spec = dict(FLOW_ARGUMENT_SPEC)
    spec.update(netns.NETNS_ARGUMENT_SPEC)
    spec.update(PROBE_ARGUMENT_SPEC)
    spec.update(HANDLE_ARGUMENT_SPEC)
    spec.update(
        source={"type": "str", "choices": list(SOURCES), "default": "auto"},
        path={"type": "path"},
        format={"type": "str", "choices": ["auto", "kernel_log", "xtables_monitor", "nft_monitor"], "default": "auto"},
        since={"type": "raw"},
        until={"type": "raw"},
        packet_id={"type": "str"},
        max_packets={"type": "int", "default": 100},
        duration={"type": "int", "default": 10},
        ready_file={"type": "path"},
        stop_file={"type": "path"},
        host_ruleset={"type": "bool", "default": True},
        this_netns_only={"type": "bool"},
        query={"type": "str"},
        explain={"type": "bool", "default": False},
        check_endpoints={"type": "bool", "default": False},
        trace_off={"type": "bool", "default": False},
    )
    return spec


def check_options(params):
    inputs.check_paths(params, ("path", "ready_file", "stop_file"))
    for option, low, high in (("max_packets", 1, 10000), ("duration", 1, 600)):
        if not low <= params[option] <= high:
            raise OptionError(option, params[option], "must be %d-%d" % (low, high))
    if params["path"] and params["source"] not in ("file", "kernel_log"):
        raise OptionError("path", params["path"], "goes with source=file or source=kernel_log, not source=%s"
                          % params["source"])
    if params["query"]:
        try:
            jmespath.compile(params["query"])
        # Too deep for the parser's recursion, or a number too long for int(): refused like a syntax error.
        except (jmespath.exceptions.ParseError, RecursionError, ValueError) as exc:
            raise OptionError("query", _shown(params["query"]), "not a JMESPath expression: %s" % str(exc)[:300])
    if params["check_endpoints"] and not params["explain"]:
        raise OptionError("check_endpoints", True, "goes with explain=true (the finding says which endpoints the "
                          "probe did not reach)")
    if params["trace_off"] and params["source"] != "capture":
        raise OptionError("trace_off", True, "goes with source=capture (the flow trace_rule switched on), not "
                          "source=%s" % params["source"])


def _shown(query):
    """A query as an error message shows it: the first 200 characters of a long one."""
    return query if len(query) <= 200 else query[:200] + "..."


def router_here(module):
    tables = rt_tables.RtTables()
    return Router(engines.choose("auto", ModuleCommandRunner(module), tables), tables)


def explain(module, packets, flow, before, interfaces_before, drops=None, router=None):
    """The host's finding, from the packets just read and the evidence of this namespace."""
    after = counters.snapshot()
    router = router or router_here(module)
    runner = ModuleCommandRunner(module)

    read = {}

    def nat_rules(family):  # every backend: a host can hold kube-proxy's rules in one and its own in another
        rules = []
        for name in backends.BACKENDS:
            # nft lists both families at once: its ruleset is read once for the explanation, not once per family.
            key = (name, None if name == "nftables" else family)
            if key not in read:
                try:
                    read[key] = backends.make(name, runner).nat_rules(family)
                except HostError:  # a backend whose rules cannot be read leaves the others
                    read[key] = None
            if read[key] is not None:
                rules.append(read[key])
        return rules

    evidence = finding.HostEvidence(router, before, after, conf.read, interfaces_before, drops, nat_rules)
    # The namespace's addresses: the fleet verdict names the host an ICMP error to the probe came from.
    # A flow with the probe's address traces the probe's source port: a request carries it as its sport.
    side = "sport" if flow is not None and flow.probe_src else None
    found = finding.explain(packets, flow.port if flow else None, evidence, side)
    if module.params["check_endpoints"] and found.get("service") and flow is not None and flow.proto == "tcp":
        found["service"]["checked"] = endpoints.check(found["service"], router)
    # Its interfaces' MACs, prefixes and ARP policy: the fleet verdict joins them with what another host sent here.
    reason = {"engine_reason": router.engine.reason} if router.engine.reason else {}
    return dict(found, engine=router.engine.name, addresses=router.addresses(),
                link_layer=link_layer.facts(router, conf.read), **reason)


def fetch(module, params, flow, source, path, fmt):
    return Fetch(
        ModuleCommandRunner(module), source=source, path=path, fmt=fmt,
        flow=flow, since=params["since"], until=params["until"], max_packets=params["max_packets"],
        packet_id=params["packet_id"], duration=params["duration"], ready_file=params["ready_file"],
        stop_file=params["stop_file"],
        host_ruleset=params["host_ruleset"], this_netns_only=params["this_netns_only"],
    ).run()


def await_neighbours(router, armed):
    """Before the capture and its drop reasons end: a packet queued on a neighbour the kernel still asks for is
    dropped (and its reason reported) only when the kernel gives up on it. Waits for those entries, and where one
    failed, for the drop-reason program to print the drops on its device."""
    resolving = neighbours.settle(router.engine, router.names)
    failed = [router.index_of[entry["dev"]] for entry in resolving["entries"]
              if entry["state"] == "failed" and entry["dev"] in router.index_of]
    if failed:
        drop_reasons.printed_on(armed.get("drop_reasons"), failed)
    return resolving


def read_capture(module, flow):
    """The live capture trace_rule started for the flow: ended, read, explained, removed (check mode: read so
    far, left running)."""
    if flow is None:
        raise OptionError("source", "capture", "give the flow options the capture was started with")
    # Arm and collect take turns on the namespace (issue #42): an arm of the same flow while this reads would
    # replace the capture under it. The lock is held to the end: the trace goes off under it too.
    with hoststate.namespace_lock():
        router = router_here(module)
        armed = spool.record(flow.flow_id)
        resolving = await_neighbours(router, armed) if armed is not None and not module.check_mode else None
        found, spool_path = spool.collect(flow.flow_id, stop=not module.check_mode)
        result = fetch(module, module.params, flow, "file", spool_path, found["format"])
        capture = {"complete": not found["losses"], "losses": found["losses"], "neighbours_awaited": resolving}
        result.update(source="capture", source_reason="the live capture (%s) trace_rule started for flow %s" % (
            found["source"], flow.flow_id), capture=capture)
        result.setdefault("warnings", []).extend(found["losses"])
        reasons = found.get("drop_reasons") or {"unavailable": "not asked for"}
        drops = None
        if "files" in reasons:
            drops = drop_reasons.read(reasons, flow, dict(socket.if_nameindex()))
            result["drop_reasons"] = {"read": True, "drops": drops}
        else:
            result["drop_reasons"] = {"read": False, "why": reasons.get("unavailable")}
        if module.params["explain"]:
            result["finding"] = explain(module, result["packets"], flow, found["counters"], found.get("interfaces"),
                                        drops, router)
        if not module.check_mode:
            spool.discard(flow.flow_id)
        if module.params["trace_off"]:
            result["trace_off"], diff = switch_off(module, flow)
            if module._diff:
                result["diff"] = diff
    return result


def switch_off(module, flow):
    """The flow's trace switched off, as trace_rule state=absent does it (the caller holds the namespace lock)."""
    off = rule.absent(ModuleCommandRunner(module), flow, module.check_mode)
    for warning in off.pop("warnings"):
        module.warn(warning)
    return off, off.pop("diff")


def main():
    module = PacketpathModule(argument_spec=argument_spec(), supports_check_mode=True,
                              required_if=[("source", "file", ("path",))], mutually_exclusive=HANDLE_EXCLUDES)
    params = module.params
    if params["query"] and jmespath is None:
        module.fail_json(msg=missing_required_lib("jmespath"), exception=JMESPATH_IMPORT_ERROR)
    try:
        params = with_handle(params)
        check_options(params)
        narrowed = params["proto"] != "any" or any(params[option] for option in FLOW_OPTIONS)
        flow = Flow.from_params(params) if narrowed else None
        netns.enter(params["netns"])
        if params["source"] == "capture":
            result = read_capture(module, flow)
        else:
            before = counters.snapshot() if params["explain"] else None
            interfaces_before = interfaces.read(ModuleCommandRunner(module)) if params["explain"] else None
            result = fetch(module, params, flow, params["source"], params["path"], params["format"])
            if params["explain"]:
                result["finding"] = explain(module, result["packets"], flow, before, interfaces_before)
    except PacketpathError as exc:
        module.fail_json(msg=str(exc))
    for warning in result.pop("warnings", []):
        module.warn(warning)
    result["changed"] = bool((result.get("trace_off") or {}).get("changed"))
    if params["query"]:
        packets = result.pop("packets")
        try:
            result["query_result"] = jmespath.search(params["query"], dict(result, packets=packets))
            json.dumps(result["query_result"])  # `&expr` is an expression, not a value the result can carry
        # A type or function error shows only when it runs (a built-in given the wrong type raises TypeError),
        # jmespath raises ValueError for a zero slice step, and a long chain of pipes recurses past Python's limit.
        except (jmespath.exceptions.JMESPathError, ValueError, TypeError, RecursionError) as exc:
            module.fail_json(msg="query=%r: %s; nothing was changed" % (_shown(params["query"]), str(exc)[:300]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
