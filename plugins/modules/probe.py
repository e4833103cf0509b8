#!/usr/bin/python
# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: probe
short_description: Send bounded test traffic (TCP connect, UDP datagram, ICMP echo) and report what came back
version_added: 0.1.0
description:
  - Sends O(count) test packets from the host (or from inside O(netns)) and reports each attempt's result and
    latency. V(tcp) connects, V(udp) sends a datagram (and with O(expect_reply) waits for an answer), V(icmp) sends an
    echo request.
  - A fixed O(sport) lets a trace rule (C(packetpath.linux.trace_rule)) match exactly the probe's packets and
    nothing else on a busy port.
  - Bounded. At most 100 attempts, each waiting at most 30 seconds.
  - Uses sockets only, no shell and no external programs. It does not change the host (C(changed) is always
    false); a TCP probe closes with a reset, so it leaves no TIME_WAIT behind.
author:
  - packetpath developers (@packetpath)
attributes:
  check_mode:
    support: partial
    description:
      - In check mode nothing is sent; the result says the probe was skipped, and what it would send - the source
        address the kernel chooses for O(dst) (RV(source)) and the source ports (RV(sports)) - so that a trace can
        be armed for exactly these packets before they go.
    details: Sending test packets is the whole point of the module, so check mode skips it rather than pretend.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
options:
  proto:
    description: V(tcp) connect, V(udp) datagram, V(icmp) echo.
    type: str
    choices: [tcp, udp, icmp]
    default: tcp
  dst:
    description: The address to probe.
    type: str
    required: true
  dport:
    description: The destination port; required with O(proto=tcp) and O(proto=udp).
    type: int
  src:
    description: The source address to bind to (one of the host's).
    type: str
  sport:
    description:
      - A fixed source port (tcp, udp), so a trace can select exactly these packets.
      - A port inside the host's ephemeral range (C(net.ipv4.ip_local_port_range)) gets a warning - other
        connections of the host can be given it too; the examples use ports below the default range (32768-60999).
      - In check mode, a port a socket of the namespace already holds (listening or connected) is refused, as the
        probe could not have it, and a trace of the port either way would count that socket's packets.
    type: int
  dev:
    description: Send through this interface (C(SO_BINDTODEVICE)).
    type: str
  mark:
    description: Put this firewall mark on the packets (C(SO_MARK)), for policy routing.
    type: int
  count:
    description: Attempts, 1-100.
    type: int
    default: 3
  interval:
    description: Seconds between attempts, 0-10.
    type: float
    default: 0.2
  timeout:
    description: Seconds each attempt waits, at most 30.
    type: float
    default: 2
  expect_reply:
    description: For V(udp), wait for a reply datagram (V(icmp) always waits for the echo reply).
    type: bool
    default: false
  parallel:
    description:
      - Send the attempts side by side, each O(interval) after the previous one started, instead of one after the
        other, so the probe waits one O(timeout) instead of one per attempt (a blocked port costs O(timeout) plus
        the intervals, not O(count) times O(timeout)).
      - With O(sport), attempt N comes from port O(sport) + N - 1 (two connections at once cannot share their
        addresses and ports), so a trace of the probe selects that range of ports.
    type: bool
    default: false
  netns:
    description: Send from inside this network namespace (a name from C(ip netns list), a path, or a PID).
    type: str
requirements:
  - the host's Python only (standard library)
notes:
  - ICMP needs root (a raw socket), as do O(mark) and O(dev).
seealso:
  - module: packetpath.linux.trace_rule
  - module: packetpath.linux.trace_results
"""

EXAMPLES = r"""
- name: Three connection attempts from a fixed source port, so the trace can select them
  packetpath.linux.probe:
    proto: tcp
    dst: 192.0.2.80
    dport: 8081
    sport: 20081
    count: 3
    timeout: 1
  register: probe

- name: A DNS-style datagram that should be answered
  packetpath.linux.probe:
    proto: udp
    dst: 198.51.100.12
    dport: 9090
    expect_reply: true

- name: Ping through a given interface with a mark
  packetpath.linux.probe:
    proto: icmp
    dst: 2001:db8:100::12
    dev: eth1
    mark: 1
"""

RETURN = r"""
attempts:
  description:
    - One entry per attempt, with C(attempt) (1, 2, ...), C(result) (connected, refused, timeout, unreachable,
      sent, reply, error), C(latency_ms), and where it applies C(source_port), C(from) (who answered an echo),
      C(errno) and C(message).
    - C(icmp) where a tcp or udp attempt was refused by an ICMP error, as the kernel queued it on the socket
      (IP_RECVERR), with C(type), C(code), C(name) (V(destination unreachable), V(time exceeded), ...) and C(from),
      the address of the host that sent it (a router on the way, or the destination).
  returned: always
  type: list
  elements: dict
  sample: [{"attempt": 1, "result": "timeout", "latency_ms": 1001.2}]
summary:
  description:
    - C(attempts), C(results) (a count per result), C(succeeded) (connected, reply or sent), C(failed), the
      C(first) and C(last) result, and C(icmp), the distinct ICMP errors the attempts got (C(name), C(code),
      C(from)).
  returned: always
  type: dict
  sample: {"attempts": 3, "results": {"unreachable": 3}, "succeeded": 0, "failed": 3, "first": "unreachable",
           "last": "unreachable", "icmp": [{"name": "time exceeded", "code": 0, "from": "198.18.20.2"}]}
source:
  description:
    - The source address the probe's packets would have (the kernel's choice for O(dst), or O(src)); null where this
      host has no route to O(dst) (RV(source_error) says why).
  returned: in check mode
  type: str
  sample: 198.18.10.2
source_error:
  description: Why there is no source address (no route to O(dst)).
  returned: in check mode, where there is no route
  type: str
sports:
  description: The fixed source ports the attempts would use (empty without O(sport)).
  returned: in check mode
  type: list
  elements: int
  sample: [28080]
"""


from ansible_collections.packetpath.linux.plugins.module_utils import probe
from ansible_collections.packetpath.linux.plugins.module_utils._common import netns
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import PacketpathError
from ansible_collections.packetpath.linux.plugins.module_utils._common.module import PacketpathModule
from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis.evidence import sockets


def main():
    module = PacketpathModule(
        argument_spec=dict(
            proto={"type": "str", "choices": ["tcp", "udp", "icmp"], "default": "tcp"},
            dst={"type": "str", "required": True},
            dport={"type": "int"},
            src={"type": "str"},
            sport={"type": "int"},
            dev={"type": "str"},
            mark={"type": "int"},
            count={"type": "int", "default": 3},
            interval={"type": "float", "default": 0.2},
            timeout={"type": "float", "default": 2},
            expect_reply={"type": "bool", "default": False},
            parallel={"type": "bool", "default": False},
            netns=netns.NETNS_ARGUMENT_SPEC["netns"],
        ),
        required_if=[("proto", "tcp", ("dport",)), ("proto", "udp", ("dport",))],
        supports_check_mode=True,
    )
    params = module.params
    try:
        sender = probe.Probe(params["proto"], params["dst"], dport=params["dport"], src=params["src"],
                             sport=params["sport"], dev=params["dev"], mark=params["mark"], count=params["count"],
                             interval=params["interval"], timeout=params["timeout"],
                             expect_reply=params["expect_reply"], parallel=params["parallel"])
        netns.enter(params["netns"])
    except PacketpathError as exc:
        module.fail_json(msg=str(exc))
    crowded = probe.ephemeral_warning(sender.source_port(0), sender.source_port(sender.count - 1))
    if crowded:
        module.warn(crowded)
    if module.check_mode:
        try:
            plan = sender.plan(sockets.local_ports("udp" if params["proto"] == "udp" else "tcp"))
        except PacketpathError as exc:
            module.fail_json(msg=str(exc))
        module.exit_json(changed=False, skipped=True, msg="check mode: no probe sent", attempts=[],
                         summary=probe.summary([]), **plan)
    attempts = sender.run()
    module.exit_json(changed=False, attempts=attempts, summary=probe.summary(attempts))


if __name__ == "__main__":
    main()
