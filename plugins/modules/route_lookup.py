#!/usr/bin/python
# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: route_lookup
short_description: Ask the kernel how it routes a packet, explain the answer, many lookups at once
version_added: 0.1.0
description:
  - Does what C(ip route get) does, for one lookup or a list of them (O(lookups)), and explains each answer.
  - Each answer has the route type, device, gateway, preferred source, the table (by name where
    C(/etc/iproute2/rt_tables) names it), the policy rule that sent the lookup to that table, metric, MTU, flags,
    and the line C(ip route get) would print.
  - "Errors are answers. When the kernel refuses a packet arriving on O(iif) (EXDEV on older kernels, EINVAL on newer
    ones), the module redoes the reverse-path check itself: it takes the route back to the source and compares it
    with O(iif) under that interface's effective rp_filter mode, and says for example C(rejected by rp_filter
    (strict on b-srv): the route back to 198.51.100.13 leaves via a-srv)."
  - O(engine=netlink) asks the kernel directly over rtnetlink through pyroute2, with many requests per system call.
    O(engine=ip) uses C(ip -j route get) and C(ip -j rule) instead, one process per lookup. O(engine=auto) (the
    default) answers up to 20 lookups through ip where it is installed (a lookup there takes one process, ~3 ms,
    while importing pyroute2 takes 150-240 ms before its first answer), more through netlink where pyroute2 is
    installed, and ip where it is not. Both give the same answers; RV(engine) says which answered.
  - Read-only. It never changes the host.
author:
  - packetpath developers (@packetpath)
extends_documentation_fragment:
  - packetpath.linux.attributes.read_only
options:
  dst:
    description: The destination address of a single lookup (without O(lookups)).
    type: str
  src:
    description:
      - The source address. Without O(iif) it must be an address of this host (a packet the host sends).
    type: str
  iif:
    description: The interface the packet arrives on; the lookup is then for an arriving (forwarded or local) packet.
    type: str
  oif:
    description: The interface the packet must leave by.
    type: str
  proto:
    description: The protocol, for rules and routes that select by it.
    type: str
    choices: [tcp, udp, icmp, icmpv6, sctp, any]
    default: any
  sport:
    description: The source port (one port).
    type: str
  dport:
    description: The destination port (one port).
    type: str
  family:
    description: V(ipv4) or V(ipv6); by default the family of O(dst).
    type: str
    choices: [ipv4, ipv6, both]
  tos:
    description: The TOS byte (0-255).
    type: int
  mark:
    description: The firewall mark (C(fwmark)), decimal or C(0x) hex.
    type: str
  uid:
    description: The user id of the sending socket, for C(uidrange) rules.
    type: int
  lookups:
    description:
      - Many lookups in one call, each a mapping with the options above. They are asked in one go.
      - Mutually exclusive with the single-lookup options (all but O(proto)).
    type: list
    elements: dict
    suboptions:
      dst:
        description: The destination address.
        type: str
        required: true
      src:
        description: As O(src).
        type: str
      iif:
        description: As O(iif).
        type: str
      oif:
        description: As O(oif).
        type: str
      proto:
        description: As O(proto).
        type: str
        choices: [tcp, udp, icmp, icmpv6, sctp, any]
        default: any
      sport:
        description: As O(sport).
        type: str
      dport:
        description: As O(dport).
        type: str
      family:
        description: As O(family).
        type: str
        choices: [ipv4, ipv6, both]
      tos:
        description: As O(tos).
        type: int
      mark:
        description: As O(mark).
        type: str
      uid:
        description: As O(uid).
        type: int
  rules:
    description:
      - Also return the policy rules and the routes of the tables they lead to (C(ip rule) and
        C(ip route list table ...)), parsed, per family in RV(policy).
    type: bool
    default: false
  engine:
    description: V(netlink) asks the kernel directly through pyroute2; V(ip) runs C(ip -j). V(auto) is ip for a request of at most 20
      lookups where ip is installed, else netlink where pyroute2 is installed, else ip.
    type: str
    choices: [auto, netlink, ip]
    default: auto
  netns:
    description: Work inside this network namespace (a name from C(ip netns list), a path, or a PID).
    type: str
requirements:
  - pyroute2 0.7 to 0.9 for O(engine=netlink) (Debian and Ubuntu C(python3-pyroute2)); iproute2 (C(ip)) otherwise.
notes:
  - The kernel merges the C(local) and C(main) IPv4 tables while no policy rule other than the defaults exists; it
    then reports local routes as table C(main), and so does this module (as C(ip route get) does).
seealso:
  - module: packetpath.linux.trace_results
  - module: packetpath.linux.interface_sysctl
"""

EXAMPLES = r"""
- name: How does the node route the client's packet arriving on its data interface?
  packetpath.linux.route_lookup:
    dst: 203.0.113.12
    src: 198.51.100.13
    iif: b-srv
  register: route

- name: Say it
  ansible.builtin.debug:
    msg: "{{ route.answers[0].error.explanation | default(route.answers[0].ip_route_get) }}"

- name: Many lookups at once, with the policy rules and tables
  packetpath.linux.route_lookup:
    lookups:
      - dst: 10.0.1.12
        proto: tcp
        dport: 8081
      - dst: 10.0.1.12
        mark: "0x1"
      - dst: 2001:db8::1
    rules: true
"""

RETURN = r"""
engine:
  description: Which engine answered, V(pyroute2) or V(ip).
  returned: always
  type: str
engine_reason:
  description:
    - Why V(ip) answered with O(engine=auto) where pyroute2 is installed, a release older than the collection
      supports (0.7), such as Debian 11's 0.5.14.
  returned: when pyroute2 is installed but not used
  type: str
  sample: pyroute2 0.5.14 is older than 0.7, the oldest this collection supports
answers:
  description: One answer per lookup, in order.
  returned: always
  type: list
  elements: dict
  contains:
    lookup:
      description: The lookup as asked.
      type: dict
    type:
      description: unicast, local, broadcast, multicast, blackhole, unreachable, prohibit, throw, ...
      type: str
    dev:
      description: The interface the packet leaves by (C(lo) for local delivery).
      type: str
    gateway:
      description: The next hop, when not directly connected.
      type: str
    prefsrc:
      description: The source address the host would use.
      type: str
    table:
      description: The table that answered, by name where it has one.
      type: raw
    matched_rule:
      description: The first policy rule whose selector takes the lookup and that leads to that table (C(priority),
        C(rule) as C(ip rule) prints it).
      type: dict
    metric:
      description: The route's metric, where the kernel says.
      type: int
    mtu:
      description: The route's MTU, where set.
      type: int
    flags:
      description: The answer's flags (cloned, ...).
      type: list
      elements: str
    ip_route_get:
      description: The first line C(ip route get) prints for it.
      type: str
      sample: "local 203.0.113.12 from 198.51.100.13 dev lo table local src 203.0.113.12 iif b-srv"
    error:
      description:
        - When the kernel refused, C(errno), C(name), C(message) and the C(explanation) in plain words; for an
          arriving packet refused with EXDEV or EINVAL also C(reverse_path) (C(mode), C(interface),
          C(route_back_dev), C(rejected), C(explanation)).
      type: dict
policy:
  description:
    - With O(rules), per family the C(rules) (in priority order, each also as C(rule) text) and the C(tables) they
      lead to with their routes.
  returned: when rules=true
  type: dict
"""

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.packetpath.linux.plugins.module_utils._common import netns
from ansible_collections.packetpath.linux.plugins.module_utils._common.command import ModuleCommandRunner
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import OptionError, PacketpathError
from ansible_collections.packetpath.linux.plugins.module_utils._common.module import PacketpathModule
from ansible_collections.packetpath.linux.plugins.module_utils.flow import FLOW_ARGUMENT_SPEC
from ansible_collections.packetpath.linux.plugins.module_utils.routing import engines, rt_tables
from ansible_collections.packetpath.linux.plugins.module_utils.routing.lookup import Router

# One lookup: the flow selector's options plus what only a route lookup selects by.
# One lookup is one direction: the flow's `port` (either way) is for traces only.
LOOKUP_ARGUMENT_SPEC = dict(((option, spec) for option, spec in FLOW_ARGUMENT_SPEC.items() if option != "port"),
                            tos={"type": "int"}, mark={"type": "str"}, uid={"type": "int"})
SINGLE_LOOKUP = sorted(option for option in LOOKUP_ARGUMENT_SPEC if option != "proto")


def argument_spec():
    spec = dict(LOOKUP_ARGUMENT_SPEC)
    spec.update(netns.NETNS_ARGUMENT_SPEC)
    spec.update(
        lookups={"type": "list", "elements": "dict",
                 "options": dict(LOOKUP_ARGUMENT_SPEC, dst={"type": "str", "required": True})},
        rules={"type": "bool", "default": False},
        engine={"type": "str", "choices": list(engines.CHOICES), "default": "auto"},
    )
    return spec


def lookup_specs(params):
    if params["lookups"]:
        return params["lookups"]
    if not params["dst"] and not params["rules"]:
        raise OptionError("dst", reason="required (or lookups, or rules=true)")
    return [{option: params[option] for option in LOOKUP_ARGUMENT_SPEC}] if params["dst"] else []


def main():
    module = PacketpathModule(argument_spec=argument_spec(), supports_check_mode=True,
                              mutually_exclusive=[("lookups", option) for option in SINGLE_LOOKUP])
    params = module.params
    if params["engine"] == "netlink":
        # Imported only where asked for: pyroute2's import is most of a small request's time (engines.IP_UP_TO).
        from ansible_collections.packetpath.linux.plugins.module_utils.routing import netlink  # pylint: disable=import-outside-toplevel
        if netlink.PYROUTE2_UNSUPPORTED:
            module.fail_json(msg="engine=netlink: %s; use engine=auto or engine=ip" % netlink.PYROUTE2_UNSUPPORTED)
        if not netlink.HAS_PYROUTE2:
            module.fail_json(msg=missing_required_lib("pyroute2"), exception=netlink.PYROUTE2_IMPORT_ERROR)
    try:
        specs = lookup_specs(params)
        netns.enter(params["netns"])
        tables = rt_tables.RtTables()
        # The policy of each family asked for is two more asks (its rules, its tables).
        asks = len(specs) + (4 if params["rules"] else 0)
        engine = engines.choose(params["engine"], ModuleCommandRunner(module), tables, lookups=asks)
        router = Router(engine, tables)
        result = {"changed": False, "engine": engine.name, "answers": router.lookup(specs)}
        if engine.reason:
            result["engine_reason"] = engine.reason
        if params["rules"]:
            families = sorted(set(answer["lookup"]["family"] for answer in result["answers"])) or ["ipv4", "ipv6"]
            result["policy"] = {family: router.policy(family) for family in families}
    except PacketpathError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg="route lookup failed: %s" % exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
