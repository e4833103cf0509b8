# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Route lookups and dumps over rtnetlink, many requests per system call.

One `route get` at a time costs a round trip each (~5,000/s through pyroute2
here).  The kernel handles every netlink message in a buffer it is sent, one
after the other, and queues the answers: so requests are packed into one send,
and the answers read back and matched by sequence number.  Only the standard
library is used, so targets need nothing installed for this.
"""

import errno
import os
import socket
import struct

NETLINK_ROUTE = 0
RTM_NEWROUTE, RTM_GETROUTE, RTM_NEWRULE, RTM_GETRULE = 24, 26, 32, 34
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
RTM_F_LOOKUP_TABLE = 0x1000
_NLMSG = struct.Struct("=IHHII")
_RTMSG = struct.Struct("=BBBBBBBBI")  # also the fib_rule_hdr layout
_RTA = struct.Struct("=HH")
_U32 = struct.Struct("=I")
_BE16 = struct.Struct("!H")

RTA = {"dst": 1, "src": 2, "iif": 3, "oif": 4, "gateway": 5, "priority": 6, "prefsrc": 7, "metrics": 8,
       "table": 15, "mark": 16, "via": 18, "uid": 25, "ip_proto": 27, "sport": 28, "dport": 29}
FRA = {"dst": 1, "src": 2, "iifname": 3, "goto": 4, "priority": 6, "fwmark": 10, "flow": 11, "table": 15,
       "fwmask": 16, "oifname": 17, "l3mdev": 19, "uid_range": 20, "ip_proto": 22, "sport_range": 23,
       "dport_range": 24}
RTAX_MTU = 2
ROUTE_TYPES = ("unspec", "unicast", "local", "broadcast", "anycast", "multicast", "blackhole", "unreachable",
               "prohibit", "throw", "nat", "xresolve")
RULE_ACTIONS = {1: "lookup", 2: "goto", 3: "nop", 6: "blackhole", 7: "unreachable", 8: "prohibit"}
FAMILY = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}
BATCH = 256  # requests per send: their answers must fit the socket's receive buffer
# One netlink message per recv for route get; a dump packs up to ~32 KB. A bigger buffer costs (it is allocated per call).
RECV_SIZE = 65536
PROTOCOL_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "sctp": 132}


def _attr(kind, payload):
    length = _RTA.size + len(payload)
    return _RTA.pack(length, kind) + payload + b"\0" * (-length % 4)


def _attrs(data, offset, end):
    """{type: payload} of the attributes in data[offset:end]."""
    found = {}
    while offset + 4 <= end:
        length, kind = _RTA.unpack_from(data, offset)
        if length < 4:
            break
        found[kind & 0x3FFF] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return found


class Lookup:
    """One `ip route get`: dst required; the rest optional (ints for iif/oif indexes, mark, uid; ports)."""

    __slots__ = ("family", "dst", "src", "iif", "oif", "tos", "mark", "uid", "proto", "sport", "dport")

    def __init__(self, family, dst, src=None, iif=None, oif=None, tos=0, mark=None, uid=None, proto=None,
                 sport=None, dport=None):
        self.family, self.dst, self.src, self.iif, self.oif = family, dst, src, iif, oif
        self.tos, self.mark, self.uid, self.proto, self.sport, self.dport = tos, mark, uid, proto, sport, dport

    def encode(self, sequence):
        af = FAMILY[self.family]
        bits = 32 if af == socket.AF_INET else 128
        body = _attr(RTA["dst"], socket.inet_pton(af, self.dst))
        if self.src:
            body += _attr(RTA["src"], socket.inet_pton(af, self.src))
        for name in ("iif", "oif", "mark", "uid"):
            value = getattr(self, name)
            if value is not None:
                body += _attr(RTA[name], _U32.pack(value))
        if self.proto:
            body += _attr(RTA["ip_proto"], struct.pack("=B", PROTOCOL_NUMBERS[self.proto]))
        for name in ("sport", "dport"):
            value = getattr(self, name)
            if value:
                body += _attr(RTA[name], _BE16.pack(value))
        head = _RTMSG.pack(af, bits, bits if self.src else 0, self.tos or 0, 0, 0, 0, 0, RTM_F_LOOKUP_TABLE)
        return _NLMSG.pack(_NLMSG.size + len(head) + len(body), RTM_GETROUTE, NLM_F_REQUEST, sequence, 0) + head + body


def decode_route(data, offset, end):
    """An RTM_NEWROUTE message body -> dict of what `ip route get` prints."""
    af, dst_len, _src_len, tos, table, _proto, _scope, kind, flags = _RTMSG.unpack_from(data, offset)
    attrs = _attrs(data, offset + _RTMSG.size, end)
    route = {"type": ROUTE_TYPES[kind] if kind < len(ROUTE_TYPES) else str(kind), "family": af, "flags": flags,
             "tos": tos, "dst_len": dst_len}
    if 15 in attrs:
        table = _U32.unpack(attrs[15])[0]
    route["table_id"] = table
    for name, kind_id in (("dst", 1), ("src", 2), ("gateway", 5), ("prefsrc", 7)):
        if kind_id in attrs:
            route[name] = socket.inet_ntop(af, attrs[kind_id])
    for name, kind_id in (("oif", 4), ("iif", 3), ("metric", 6), ("mark", 16), ("uid", 25)):
        if kind_id in attrs:
            route[name] = _U32.unpack(attrs[kind_id])[0]
    if 8 in attrs:
        metrics = _attrs(attrs[8], 0, len(attrs[8]))
        if RTAX_MTU in metrics:
            route["mtu"] = _U32.unpack(metrics[RTAX_MTU])[0]
    return route


def decode_rule(data, offset, end):
    """An RTM_NEWRULE message body -> dict like `ip -j rule` (addresses, marks, names, action)."""
    af, dst_len, src_len, tos, table, _res1, _res2, action, flags = _RTMSG.unpack_from(data, offset)
    attrs = _attrs(data, offset + _RTMSG.size, end)
    rule = {"family": af, "action": RULE_ACTIONS.get(action, str(action)), "tos": tos, "not": bool(flags & 2)}
    rule["priority"] = _U32.unpack(attrs[6])[0] if 6 in attrs else 0
    rule["table_id"] = _U32.unpack(attrs[15])[0] if 15 in attrs else table
    if 1 in attrs:
        rule["dst"] = "%s/%d" % (socket.inet_ntop(af, attrs[1]), dst_len)
    if 2 in attrs:
        rule["src"] = "%s/%d" % (socket.inet_ntop(af, attrs[2]), src_len)
    for name, kind_id in (("iif", 3), ("oif", 17)):
        if kind_id in attrs:
            rule[name] = attrs[kind_id].rstrip(b"\0").decode()
    if 10 in attrs:
        rule["fwmark"] = _U32.unpack(attrs[10])[0]
        rule["fwmask"] = _U32.unpack(attrs[16])[0] if 16 in attrs else 0xFFFFFFFF
    if 4 in attrs:
        rule["goto"] = _U32.unpack(attrs[4])[0]
    if 22 in attrs:
        rule["ip_proto"] = attrs[22][0]
    for name, kind_id in (("sport", 23), ("dport", 24)):
        if kind_id in attrs:
            rule[name] = list(struct.unpack("=HH", attrs[kind_id][:4]))
    return rule


class RtNetlink:
    """A NETLINK_ROUTE socket of this process (in the network namespace it is in)."""

    name = "netlink"

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        for option in (33, socket.SO_RCVBUF):  # SO_RCVBUFFORCE (root) first, else what the limit allows
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, option, 8 << 20)
                break
            except OSError:
                continue
        self.sock.bind((0, 0))
        self.sequence = 0

    def close(self):
        self.sock.close()

    def _next(self):
        self.sequence += 1
        return self.sequence

    def _messages(self):
        """(type, sequence, data, body offset, end) of each message in one read."""
        data = self.sock.recv(RECV_SIZE)
        offset = 0
        while offset + _NLMSG.size <= len(data):
            length, kind, _flags, sequence, _pid = _NLMSG.unpack_from(data, offset)
            if length < _NLMSG.size:
                break
            yield kind, sequence, data, offset + _NLMSG.size, offset + length
            offset += (length + 3) & ~3

    def route_get(self, lookups):
        """[(route dict, None) or (None, errno)] in the order of `lookups`, BATCH requests per send."""
        answers = []
        for start in range(0, len(lookups), BATCH):
            chunk = lookups[start:start + BATCH]
            first = self.sequence + 1
            self.sock.sendall(b"".join(lookup.encode(self._next()) for lookup in chunk))
            replies = [None] * len(chunk)
            waiting = len(chunk)
            while waiting:
                for kind, sequence, data, body, end in self._messages():
                    index = sequence - first
                    if not 0 <= index < len(chunk) or replies[index] is not None:
                        continue
                    if kind == NLMSG_ERROR:
                        code = -struct.unpack_from("=i", data, body)[0]
                        replies[index] = (None, code or errno.EIO)
                    elif kind == RTM_NEWROUTE:
                        replies[index] = (decode_route(data, body, end), None)
                    else:
                        continue
                    waiting -= 1
            answers.extend(replies)
        return answers

    def dump(self, kind, family, decode):
        """Every rule or route of a family (RTM_GETRULE / RTM_GETROUTE with NLM_F_DUMP)."""
        sequence = self._next()
        head = _RTMSG.pack(FAMILY[family], 0, 0, 0, 0, 0, 0, 0, 0)
        self.sock.sendall(_NLMSG.pack(_NLMSG.size + len(head), kind, NLM_F_REQUEST | NLM_F_DUMP, sequence, 0) + head)
        items = []
        while True:
            for message, got, data, body, end in self._messages():
                if got != sequence:
                    continue
                if message == NLMSG_DONE:
                    return items
                if message == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", data, body)[0]
                    if code:
                        raise OSError(code, os.strerror(code))
                    return items
                items.append(decode(data, body, end))

    def rules(self, family):
        return self.dump(RTM_GETRULE, family, decode_rule)

    def routes(self, family):
        return self.dump(RTM_GETROUTE, family, decode_route)
