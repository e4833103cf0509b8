# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment:
    # The handle packetpath.linux.trace_rule returns and trace_rule and trace_results take back.
    DOCUMENTATION = r"""
options:
  handle:
    description:
      - The flow as C(packetpath.linux.trace_rule) returned it in its C(handle) after switching the trace on (its
        selector and the network namespace it was armed in), in place of the flow options and O(netns), so that a playbook
        passes on what was armed instead of repeating the selector.
      - Given with any of the options it stands for, it is refused.
    type: dict
    suboptions:
      proto:
        description: The protocol (V(any) where missing).
        type: str
        choices: [tcp, udp, icmp, icmpv6, sctp, any]
      src:
        description: The source address or prefix.
        type: str
      dst:
        description: The destination address or prefix.
        type: str
      sport:
        description: The source port or range.
        type: str
      dport:
        description: The destination port or range.
        type: str
      port:
        description: A port or range, as source or destination.
        type: str
      iif:
        description: The input interface.
        type: str
      oif:
        description: The output interface.
        type: str
      family:
        description: The address families.
        type: str
        choices: [ipv4, ipv6, both]
      probe_src:
        description: The address the probe was sent from.
        type: str
      probe_dport:
        description: The port the probe was sent to.
        type: int
      netns:
        description: The network namespace.
        type: str
"""
