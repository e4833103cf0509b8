# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Conntrack's side of this network namespace: the probe's flow as conntrack holds it (state, NAT mapping, whether
a reply was seen) and how full the table is. Read through pyroute2's ctnetlink (the kernel filters the dump by the
flow's protocol and ports); where pyroute2 or the conntrack module is missing there is nothing to read, and the
evidence says so.
"""

import ipaddress
import socket

from ansible_collections.packetpath.linux.plugins.module_utils._common.addresses import IPV6, family_of

_SYSCTL = "/proc/sys/net/netfilter/nf_conntrack_%s"
# enum tcp_conntrack (linux/netfilter/nf_conntrack_tcp.h): the TCP state conntrack tracks the flow in.
TCP_STATES = ("none", "syn_sent", "syn_recv", "established", "fin_wait", "close_wait", "last_ack", "time_wait",
              "close", "syn_sent2")
_PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}
# A service's conversations read at most: a busy service has thousands, and the report names the stale ones.
SERVICE_LIMIT = 2000


def fill():
    """{count, max} of this namespace's table (count is the namespace's, max the machine's), None where conntrack
    is not loaded here."""
    values = {}
    for key in ("count", "max"):
        try:
            with open(_SYSCTL % key) as handle:
                values[key] = int(handle.read())
        except (OSError, ValueError):
            return None
    return values


def _canonical(address):
    return str(ipaddress.ip_address(address)) if address else address


def _tuple(value):
    return {"src": value.saddr, "dst": value.daddr, "sport": value.sport, "dport": value.dport}


def flow_entries(hop):
    """The conntrack entries whose original direction is the packet of `hop` (as it arrived here, before any NAT of
    this host): [{orig, reply, status, state, nat, reply_seen, timeout}], or None where there is no reader. Asked
    where conntrack is loaded (fill() is not None)."""
    return _entries(hop.get("proto"), hop.get("src"), hop["dst"], hop.get("sport"), hop.get("dport"))


def service_entries(proto, dst, dport, limit=SERVICE_LIMIT):
    """The entries of every conversation to dst:dport (a service's address, before its DNAT), whoever sent it: at
    most `limit`, or None where there is no reader."""
    return _entries(proto, None, dst, None, dport, limit)


def _entries(proto_name, src, dst, sport, dport, limit=None):
    proto = _PROTOCOLS.get(proto_name)
    if proto is None:
        return None
    # Imported here, where a flow's entries are asked for: pyroute2's package import is most of a collection's start
    # (issue #28), and a host that saw no packet of the flow never asks.
    try:
        from pyroute2.conntrack import Conntrack  # pylint: disable=import-outside-toplevel
        from pyroute2.netlink.nfnetlink.nfctsocket import IPSBIT_TO_NAME, NFCTAttrTuple  # pylint: disable=import-outside-toplevel
    except ImportError:  # the ip -j fallback has no conntrack reader
        return None
    family = socket.AF_INET6 if family_of(dst) == IPV6 else socket.AF_INET
    # The kernel filters by protocol and ports; the addresses are compared here, because pyroute2 (0.7.2 and
    # 0.9.7 alike) encodes an IPv6 address filter that the kernel refuses with EINVAL.
    wanted = NFCTAttrTuple(family=family, proto=proto, sport=sport, dport=dport)
    addresses = (_canonical(src), _canonical(dst))
    entries = []
    with Conntrack() as table:
        for entry in table.dump_entries(tuple_orig=wanted):
            if (_canonical(entry.tuple_orig.saddr) if src else None, _canonical(entry.tuple_orig.daddr)) != addresses:
                continue
            status = [name.lower() for bit, name in sorted(IPSBIT_TO_NAME.items()) if entry.status & bit]
            entries.append({
                "orig": _tuple(entry.tuple_orig), "reply": _tuple(entry.tuple_reply), "status": status,
                "state": TCP_STATES[entry.protoinfo.state] if entry.protoinfo is not None and
                entry.protoinfo.state < len(TCP_STATES) else None,
                # The reply tuple is the original one turned round, unless NAT rewrote an address or a port.
                "nat": (entry.tuple_reply.saddr, entry.tuple_reply.sport) != (entry.tuple_orig.daddr,
                                                                              entry.tuple_orig.dport)
                or (entry.tuple_reply.daddr, entry.tuple_reply.dport) != (entry.tuple_orig.saddr,
                                                                          entry.tuple_orig.sport),
                "reply_seen": "seen_reply" in status, "timeout": entry.timeout})
            if limit is not None and len(entries) >= limit:
                break
    return entries
