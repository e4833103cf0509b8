# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Route lookups and rule, route and neighbour dumps through pyroute2's netlink messages, many requests per system call.

One `route get` at a time costs a round trip each (IPRoute().route('get') answers ~3,200/s here).  The kernel
handles every netlink message in a buffer it is sent, one after the other, and queues the answers: so the
requests are pyroute2 `rtmsg`s packed into one send, and pyroute2's marshal reads the answers back, matched by
sequence number.  pyroute2 knows the message layouts; this module only says which messages to send.

pyroute2's `rtmsg` stops at RTA_EXPIRES, so the lookup message adds the attributes `ip route get` sends for the
socket's uid, the IP protocol and the ports (linux/rtnetlink.h), which both ends of the supported range (0.7, 0.9)
encode and decode with their own types.
"""

import errno
import socket
import struct
import traceback

from ansible_collections.packetpath.linux.plugins.module_utils.routing import pyroute2_range

try:
    import pyroute2
    from pyroute2.netlink import NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, nlmsg
    from pyroute2.netlink.rtnl import (RTM_GETADDR, RTM_GETLINK, RTM_GETNEIGH, RTM_GETQDISC, RTM_GETROUTE,
                                       RTM_GETRULE, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWNEIGH, RTM_NEWQDISC, RTM_NEWROUTE,
                                       RTM_NEWRULE)
    from pyroute2.netlink.rtnl.fibmsg import fibmsg
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    from pyroute2.netlink.rtnl.marshal import MarshalRtnl
    from pyroute2.netlink.rtnl.ndmsg import ndmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg
    from pyroute2.netlink.rtnl.tcmsg import tcmsg
except ImportError:
    PYROUTE2_IMPORT_ERROR, PYROUTE2_UNSUPPORTED = traceback.format_exc(), None
else:
    # Why pyroute2 is not used where it imports (a release out of range), a sentence for the result; None otherwise.
    PYROUTE2_IMPORT_ERROR = PYROUTE2_UNSUPPORTED = pyroute2_range.unsupported(pyroute2)

from ansible_collections.packetpath.linux.plugins.module_utils.routing.lookup import (
    FAMILY,
    IFA_F_DADFAILED,
    IFF_LOWER_UP,
    IFF_UP,
    PROTOCOL_NUMBERS,
    ROUTE_TYPES,
    RULE_ACTIONS,
    qdisc_direction,
)

HAS_PYROUTE2 = PYROUTE2_IMPORT_ERROR is None
NETLINK_ROUTE = 0
RTM_F_LOOKUP_TABLE = 0x1000
FIB_RULE_INVERT = 0x2
RTAX_MTU = "RTAX_MTU"
BATCH = 256  # requests per send: their answers must fit the socket's receive buffer
RECV_SIZE = 65536  # one netlink message per recv for route get; a dump packs up to ~32 KB
_ROUTE_FIELDS = (("dst", "RTA_DST"), ("src", "RTA_SRC"), ("gateway", "RTA_GATEWAY"), ("prefsrc", "RTA_PREFSRC"),
                 ("oif", "RTA_OIF"), ("iif", "RTA_IIF"), ("metric", "RTA_PRIORITY"), ("mark", "RTA_MARK"),
                 ("uid", "RTA_UID"))
_ROUTE_ATTRS = frozenset(["RTA_TABLE", "RTA_METRICS"] + [attr for _name, attr in _ROUTE_FIELDS])
_LOOKUP_NUMBERS = (("iif", "RTA_IIF"), ("oif", "RTA_OIF"), ("mark", "RTA_MARK"), ("uid", "RTA_UID"))

if HAS_PYROUTE2:
    class RouteMessage(rtmsg):
        """rtmsg with the lookup selectors after RTA_EXPIRES (23): RTA_PAD 24 .. RTA_DPORT 29."""

        nla_map = rtmsg.nla_map + (("RTA_PAD", "hex"), ("RTA_UID", "uint32"), ("RTA_TTL_PROPAGATE", "uint8"),
                                   ("RTA_IP_PROTO", "uint8"), ("RTA_SPORT", "be16"), ("RTA_DPORT", "be16"))
        # rtmsg's own encode only turns MPLS routes and flag or scope names into numbers, which a lookup never
        # has: the plain netlink encoder writes the same bytes faster (0.9.7 here: 10,700 -> 16,200 messages/s).
        encode = nlmsg.encode

    class Marshal(MarshalRtnl):
        """pyroute2's rtnetlink marshal, reading route answers with the lookup selectors."""

        msg_map = dict(MarshalRtnl.msg_map)
        msg_map[RTM_NEWROUTE] = RouteMessage


def attributes(lookup):
    """[(attribute name, value)] of a lookup's RTM_GETROUTE, in the order they are written: the message's shape."""
    values = [("RTA_DST", lookup.dst)]
    if lookup.src:
        values.append(("RTA_SRC", lookup.src))
    values += [(name, getattr(lookup, option)) for option, name in _LOOKUP_NUMBERS
               if getattr(lookup, option) is not None]
    if lookup.proto:
        values.append(("RTA_IP_PROTO", PROTOCOL_NUMBERS[lookup.proto]))
    values += [(name, getattr(lookup, option)) for option, name in (("sport", "RTA_SPORT"), ("dport", "RTA_DPORT"))
               if getattr(lookup, option)]
    return values


def request(lookup, sequence):
    """The RTM_GETROUTE message of one lookup, encoded by pyroute2."""
    bits = 32 if lookup.family == "ipv4" else 128
    message = RouteMessage()
    message["family"] = FAMILY[lookup.family]
    message["dst_len"] = bits
    message["src_len"] = bits if lookup.src else 0
    message["tos"] = lookup.tos or 0
    message["flags"] = RTM_F_LOOKUP_TABLE
    message["attrs"] = attributes(lookup)
    message["header"]["type"] = RTM_GETROUTE
    message["header"]["flags"] = NLM_F_REQUEST
    message["header"]["sequence_number"] = sequence
    message.encode()
    return bytes(message.data)


class Requests:
    """RTM_GETROUTE requests, each shape encoded once by pyroute2. The messages of one shape (family and which
    selectors are set) differ only in the values of their fields, so pyroute2 encodes the first one, and the next
    ones are its bytes with the sequence number and each value written in place, at the offsets read from the
    attribute headers pyroute2 wrote. Encoding every message through pyroute2 took ~40% of a batch (10,000 lookups:
    1.5 s of 3.7 s under cProfile with 0.9.7), which kept 0.9.7 under 10,000 lookups/s."""

    _TOS = 16 + 3  # struct rtmsg after the 16-byte netlink header: family, dst_len, src_len, tos
    # The value of an attribute as its payload: addresses, then numbers in the widths RouteMessage declares.
    _FORMATS = {"RTA_IIF": "=I", "RTA_OIF": "=I", "RTA_MARK": "=I", "RTA_UID": "=I", "RTA_IP_PROTO": "=B",
                "RTA_SPORT": "!H", "RTA_DPORT": "!H"}

    def __init__(self):
        self._shapes = {}

    def encode(self, lookup, sequence):
        values = attributes(lookup)
        shape = (lookup.family,) + tuple(name for name, _value in values)
        known = self._shapes.get(shape)
        if known is None:
            data = request(lookup, sequence)
            offsets = self._payloads(data)
            if len(offsets) == len(values):  # else pyroute2 wrote another layout: it encodes this shape each time
                self._shapes[shape] = (data, offsets)
            return data
        template, offsets = known
        data = bytearray(template)
        struct.pack_into("=I", data, 8, sequence)
        data[self._TOS] = lookup.tos or 0
        family = FAMILY[lookup.family]
        for (name, value), offset in zip(values, offsets):
            if name in ("RTA_DST", "RTA_SRC"):
                packed = socket.inet_pton(family, value)
                data[offset:offset + len(packed)] = packed
            else:
                struct.pack_into(self._FORMATS[name], data, offset, value)
        return bytes(data)

    @staticmethod
    def _payloads(data):
        """The payload offset of each attribute pyroute2 wrote, in order (struct rtattr: length, type)."""
        offsets, offset = [], 16 + 12
        while offset + 4 <= len(data):
            length = struct.unpack_from("=H", data, offset)[0]
            offsets.append(offset + 4)
            offset += (length + 3) & ~3
        return offsets


def decode_route(message):
    """A route answer or dump entry -> dict of what `ip route get` prints."""
    kind = message["type"]
    route = {"type": ROUTE_TYPES[kind] if kind < len(ROUTE_TYPES) else str(kind), "family": message["family"],
             "flags": message["flags"], "tos": message["tos"], "dst_len": message["dst_len"]}
    # One pass, decoding only what is used (an attribute's value is decoded when read): get_attr() scans the list
    # on each call, and RTA_CACHEINFO and the like cost as much to decode as the rest together.
    attrs = {attr[0]: attr[1] for attr in message["attrs"] if attr[0] in _ROUTE_ATTRS}
    route["table_id"] = attrs.get("RTA_TABLE", message["table"])
    for name, attr in _ROUTE_FIELDS:
        if attr in attrs:
            route[name] = attrs[attr]
    metrics = attrs.get("RTA_METRICS")
    mtu = metrics.get_attr(RTAX_MTU) if metrics is not None else None
    if mtu is not None:
        route["mtu"] = mtu
    return route


def decode_rule(message):
    """A rule dump entry -> dict like `ip -j rule` (addresses, marks, names, action)."""
    rule = {"family": message["family"], "action": RULE_ACTIONS.get(message["action"], str(message["action"])),
            "tos": message["tos"], "not": bool(message["flags"] & FIB_RULE_INVERT)}
    rule["priority"] = message.get_attr("FRA_PRIORITY") or 0
    table = message.get_attr("FRA_TABLE")
    rule["table_id"] = message["table"] if table is None else table
    for side, attr, length in (("dst", "FRA_DST", "dst_len"), ("src", "FRA_SRC", "src_len")):
        address = message.get_attr(attr)
        if address is not None:
            rule[side] = "%s/%d" % (address, message[length])
    for name, attr in (("iif", "FRA_IIFNAME"), ("oif", "FRA_OIFNAME")):
        value = message.get_attr(attr)
        if value:
            rule[name] = value
    fwmark = message.get_attr("FRA_FWMARK")
    if fwmark is not None:
        rule["fwmark"] = fwmark
        fwmask = message.get_attr("FRA_FWMASK")
        rule["fwmask"] = 0xFFFFFFFF if fwmask is None else fwmask
    for name, attr in (("goto", "FRA_GOTO"), ("ip_proto", "FRA_IP_PROTO")):
        value = message.get_attr(attr)
        if value is not None:
            rule[name] = value
    for name, attr in (("sport", "FRA_SPORT_RANGE"), ("dport", "FRA_DPORT_RANGE"), ("uidrange", "FRA_UID_RANGE")):
        value = message.get_attr(attr)
        if value is not None:  # pyroute2 decodes a range into its text, "start:end"
            rule[name] = [int(bound) for bound in str(value).split(":")]
    return rule


def decode_neighbour(message):
    """A neighbour dump entry -> {dst, ifindex, state (NUD bits), lladdr}."""
    return {"dst": message.get_attr("NDA_DST"), "ifindex": message["ifindex"], "state": message["state"],
            "lladdr": message.get_attr("NDA_LLADDR")}


def decode_link(message):
    """A link dump entry -> {ifindex, name, mac, kind, vxlan, master (a bridge port's bridge), admin_up, carrier,
    operstate, rx_dropped, tx_dropped, xdp}."""
    stats = message.get_attr("IFLA_STATS64") or message.get_attr("IFLA_STATS") or {}
    xdp = message.get_attr("IFLA_XDP")
    attached = xdp.get_attr("IFLA_XDP_ATTACHED") if xdp is not None else None
    kind, vxlan = decode_kind(message)
    return {"ifindex": message["index"], "name": message.get_attr("IFLA_IFNAME"), "mac": message.get_attr("IFLA_ADDRESS"),
            "kind": kind, "vxlan": vxlan, "master": message.get_attr("IFLA_MASTER"),
            "admin_up": bool(message["flags"] & IFF_UP), "carrier": bool(message["flags"] & IFF_LOWER_UP),
            "operstate": str(message.get_attr("IFLA_OPERSTATE") or "UNKNOWN").upper(),
            "rx_dropped": stats.get("rx_dropped", 0), "tx_dropped": stats.get("tx_dropped", 0),
            "xdp": bool(attached)}


# What a VXLAN device says of where its frames go (IFLA_INFO_DATA), by the names the report uses.
VXLAN_FIELDS = (("vni", "IFLA_VXLAN_ID"), ("local", "IFLA_VXLAN_LOCAL"), ("group", "IFLA_VXLAN_GROUP"),
                ("port", "IFLA_VXLAN_PORT"), ("learning", "IFLA_VXLAN_LEARNING"), ("link", "IFLA_VXLAN_LINK"))


def decode_kind(message):
    """(the link's kind, e.g. "veth", "bridge", "vxlan", or None; {vni, local, group, port, learning, link} for a
    VXLAN device, else None)."""
    info = message.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
    data = info.get_attr("IFLA_INFO_DATA") if kind == "vxlan" else None
    if data is None:
        return kind, None
    vxlan = {name: data.get_attr(attr) for name, attr in VXLAN_FIELDS}
    vxlan["learning"] = bool(vxlan["learning"])
    return kind, vxlan


def decode_fdb(message):
    """A forwarding database entry (AF_BRIDGE neighbour dump) -> {ifindex, lladdr, dst (a VXLAN remote), vni,
    port, master}."""
    return {"ifindex": message["ifindex"], "lladdr": message.get_attr("NDA_LLADDR"), "dst": message.get_attr("NDA_DST"),
            "vni": message.get_attr("NDA_VNI"), "port": message.get_attr("NDA_PORT"),
            "master": message.get_attr("NDA_MASTER")}


def decode_address(message):
    """An address dump entry -> {ifindex, address, prefixlen, dad_failed} (IFA_LOCAL: a point-to-point link's
    IFA_ADDRESS is the peer's; IFA_FLAGS, where present, holds every flag, ifa_flags only the first eight)."""
    flags = message.get_attr("IFA_FLAGS")
    return {"ifindex": message["index"], "address": message.get_attr("IFA_LOCAL") or message.get_attr("IFA_ADDRESS"),
            "prefixlen": message["prefixlen"],
            "dad_failed": bool((message["flags"] if flags is None else flags) & IFA_F_DADFAILED)}


def decode_qdisc(message):
    """A qdisc dump entry -> {ifindex, kind, parent, direction, packets, drops}."""
    stats = message.get_attr("TCA_STATS") or {}
    return {"ifindex": message["index"], "kind": message.get_attr("TCA_KIND"), "parent": message["parent"],
            "direction": qdisc_direction(message["parent"]), "packets": stats.get("packets", 0),
            "drops": stats.get("drop", 0)}


def error_code(message):
    """The errno of an NLMSG_ERROR answer (0 for an acknowledgement)."""
    error = message["header"].get("error")
    return 0 if error is None else error.code


class Pyroute2Engine:
    """A NETLINK_ROUTE socket of this process (in the network namespace it is in), spoken through pyroute2."""

    name = "pyroute2"
    reason = None  # IpCommand's: why the other engine answers

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        for option in (33, socket.SO_RCVBUF):  # SO_RCVBUFFORCE (root) first, else what the limit allows
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, option, 8 << 20)
                break
            except OSError:
                continue
        self.sock.bind((0, 0))
        self.marshal = Marshal()
        self.requests = Requests()
        self.sequence = 0

    def close(self):
        self.sock.close()

    def _next(self):
        self.sequence += 1
        return self.sequence

    def _messages(self):
        return self.marshal.parse(self.sock.recv(RECV_SIZE))

    def route_get(self, lookups):
        """[(route dict, None) or (None, errno)] in the order of `lookups`, BATCH requests per send."""
        answers = []
        for start in range(0, len(lookups), BATCH):
            chunk = lookups[start:start + BATCH]
            first = self.sequence + 1
            self.sock.sendall(b"".join(self.requests.encode(lookup, self._next()) for lookup in chunk))
            replies = [None] * len(chunk)
            waiting = len(chunk)
            while waiting:
                for message in self._messages():
                    header = message["header"]
                    index = header["sequence_number"] - first
                    if not 0 <= index < len(chunk) or replies[index] is not None:
                        continue
                    if header["type"] == NLMSG_ERROR:
                        replies[index] = (None, error_code(message) or errno.EIO)
                    elif header["type"] == RTM_NEWROUTE:
                        replies[index] = (decode_route(message), None)
                    else:
                        continue
                    waiting -= 1
            answers.extend(replies)
        return answers

    def dump(self, message_class, kind, answer_kind, family, decode):
        """Every rule, route, neighbour, link or qdisc of a family (RTM_GET* with NLM_F_DUMP; links and qdiscs have
        no family)."""
        message = message_class()
        message["family"] = FAMILY.get(family, socket.AF_UNSPEC)
        message["header"]["type"] = kind
        message["header"]["flags"] = NLM_F_REQUEST | NLM_F_DUMP
        message["header"]["sequence_number"] = sequence = self._next()
        message.encode()
        self.sock.sendall(bytes(message.data))
        items = []
        while True:
            for answer in self._messages():
                header = answer["header"]
                if header["sequence_number"] != sequence:
                    continue
                if header["type"] == NLMSG_DONE:
                    return items
                if header["type"] == NLMSG_ERROR:
                    code = error_code(answer)
                    if code:
                        raise OSError(code, "netlink dump refused: %s" % header["error"])
                    return items
                if header["type"] == answer_kind:
                    items.append(decode(answer))

    def rules(self, family):
        return self.dump(fibmsg, RTM_GETRULE, RTM_NEWRULE, family, decode_rule)

    def routes(self, family):
        return self.dump(RouteMessage, RTM_GETROUTE, RTM_NEWROUTE, family, decode_route)

    def neighbours(self, family):
        return self.dump(ndmsg, RTM_GETNEIGH, RTM_NEWNEIGH, family, decode_neighbour)

    def links(self):
        return self.dump(ifinfmsg, RTM_GETLINK, RTM_NEWLINK, None, decode_link)

    def fdb(self):
        return self.dump(ndmsg, RTM_GETNEIGH, RTM_NEWNEIGH, "bridge", decode_fdb)

    def addresses(self):
        return self.dump(ifaddrmsg, RTM_GETADDR, RTM_NEWADDR, None, decode_address)

    def qdiscs(self):
        return self.dump(tcmsg, RTM_GETQDISC, RTM_NEWQDISC, None, decode_qdisc)
