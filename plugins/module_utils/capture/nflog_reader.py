# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Legacy TRACE, read live from NFLOG group 0 of this network namespace.

With nf_log/<pf> of a namespace bound to nfnetlink_log (trace_rule does that for the time of a legacy trace), the
kernel hands every legacy TRACE hop of that namespace to NFLOG group 0 instead of the kernel log, which every
namespace of a machine shares.  A NETLINK_NETFILTER socket opened here and bound to group 0 therefore sees this
host's packets and no other's: pods and lab hosts that all name their link eth0 no longer read each other's lines.

Each NFLOG message carries the prefix the kernel would have logged (`TRACE: raw:OUTPUT:policy:2 `), the
interfaces by index and the packet itself.  They are written out as the kernel log's line for the same hop
(nf_log_ipv4 / nf_log_ipv6 format, the fields the kernel-log parser reads), so one parser reads legacy TRACE
whichever way it arrived, and a hop read live is the hop the kernel log would have shown.  The messages are
pyroute2's (nfgen_msg); pyroute2 has no NFLOG family of its own, so the two message layouts are declared here
from linux/netfilter/nfnetlink_log.h.
"""

import errno
import ipaddress
import socket
import struct
import time
import traceback

# Only pyroute2's message base classes: they are alike from 0.5.14 (Debian 11's, older than the route engine takes)
# to 0.9, and the lab's Debian 11 hosts read legacy TRACE with them.
try:
    from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST, NLMSG_ERROR, nla
    from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_ULOG, nfgen_msg
    from pyroute2.netlink.nlsocket import Marshal
except ImportError:
    PYROUTE2_IMPORT_ERROR = traceback.format_exc()
else:
    PYROUTE2_IMPORT_ERROR = None

from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import HostError
from ansible_collections.packetpath.linux.plugins.module_utils.capture.sources import Stream
from ansible_collections.packetpath.linux.plugins.module_utils.routing.netlink import error_code

HAS_PYROUTE2 = PYROUTE2_IMPORT_ERROR is None
NETLINK_NETFILTER = 12
GROUP = 0  # where the kernel's nfnetlink_log puts what nf_log hands it (legacy TRACE)
NFULNL_MSG_PACKET, NFULNL_MSG_CONFIG = 0, 1
NFULNL_CFG_CMD_BIND, NFULNL_CFG_CMD_UNBIND = 1, 2
NFULNL_COPY_PACKET = 2
COPY_RANGE = 0xFFFF
RECV_SIZE = 1 << 20
CONFIG_TIMEOUT = 2.0  # seconds for the kernel to answer a bind, a mode or an unbind
_IP_PROTOCOLS = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP"}
_TCP_FLAGS = ((0x80, "CWR"), (0x40, "ECE"), (0x20, "URG"), (0x10, "ACK"), (0x08, "PSH"), (0x04, "RST"),
              (0x02, "SYN"), (0x01, "FIN"))
_ECHO = {"ICMP": (0, 8), "ICMPv6": (128, 129)}
# ICMP errors quote the packet they answer: the kernel log prints its headers in brackets.
_QUOTING = {"ICMP": (3, 4, 5, 11, 12), "ICMPv6": (1, 2, 3, 4)}

if HAS_PYROUTE2:
    class ConfigMessage(nfgen_msg):
        """NFULNL_MSG_CONFIG: bind a socket to a group, and what to copy."""

        nla_map = (("NFULA_CFG_UNSPEC", "none"), ("NFULA_CFG_CMD", "cmd"), ("NFULA_CFG_MODE", "mode"),
                   ("NFULA_CFG_NLBUFSIZ", "be32"), ("NFULA_CFG_TIMEOUT", "be32"), ("NFULA_CFG_QTHRESH", "be32"),
                   ("NFULA_CFG_FLAGS", "be16"))

        class cmd(nla):
            fields = (("command", "B"),)

        class mode(nla):
            fields = (("copy_range", ">I"), ("copy_mode", "B"), ("_pad", "B"))

    class PacketMessage(nfgen_msg):
        """NFULNL_MSG_PACKET: one logged packet."""

        nla_map = (("NFULA_UNSPEC", "none"), ("NFULA_PACKET_HDR", "hex"), ("NFULA_MARK", "be32"),
                   ("NFULA_TIMESTAMP", "hex"), ("NFULA_IFINDEX_INDEV", "be32"), ("NFULA_IFINDEX_OUTDEV", "be32"),
                   ("NFULA_IFINDEX_PHYSINDEV", "be32"), ("NFULA_IFINDEX_PHYSOUTDEV", "be32"),
                   ("NFULA_HWADDR", "hex"), ("NFULA_PAYLOAD", "cdata"), ("NFULA_PREFIX", "asciiz"),
                   ("NFULA_UID", "be32"), ("NFULA_SEQ", "be32"), ("NFULA_SEQ_GLOBAL", "be32"), ("NFULA_GID", "be32"),
                   ("NFULA_HWTYPE", "be16"), ("NFULA_HWHEADER", "hex"), ("NFULA_HWLEN", "be16"))

    class NflogMarshal(Marshal):
        msg_map = {(NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET: PacketMessage,
                   (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG: ConfigMessage}


def _transport(proto, data, quoted):
    """The kernel log's words for a TCP/UDP/ICMP header (what nf_log_dump_tcp_header and friends print)."""
    minimum = {"TCP": 20, "UDP": 8, "SCTP": 4}.get(proto)
    if minimum and len(data) < minimum:
        return ["INCOMPLETE [%d bytes]" % len(data)]
    if minimum:
        sport, dport = struct.unpack_from("!HH", data)
        words = ["SPT=%d" % sport, "DPT=%d" % dport]
        if proto == "TCP":
            seq, ack, offset_flags, window, _sum, urgent = struct.unpack_from("!IIHHHH", data, 4)
            words += ["SEQ=%d" % seq, "ACK=%d" % ack, "WINDOW=%d" % window, "RES=0x%02x" % ((offset_flags >> 4) & 0x0F)]
            words += [name for bit, name in _TCP_FLAGS if offset_flags & bit]
            words.append("URGP=%d" % urgent)
        elif proto == "UDP":
            words.append("LEN=%d" % struct.unpack_from("!H", data, 4)[0])
        return words
    if proto in _ECHO and len(data) >= 4:
        kind, code = data[0], data[1]
        words = ["TYPE=%d" % kind, "CODE=%d" % code]
        if kind in _ECHO[proto] and len(data) >= 8:
            words += ["ID=%d" % struct.unpack_from("!H", data, 4)[0], "SEQ=%d" % struct.unpack_from("!H", data, 6)[0]]
        elif kind in _QUOTING[proto] and not quoted and len(data) > 8:
            inner = _ip_words(data[8:], quoted=True)
            if inner:
                words += ["[" + inner[0]] + inner[1:] + ["]"]
        return words
    return []


def _ip_words(payload, quoted=False):
    """The kernel log's words for the IP header and what follows it, or None when it is not an IP packet."""
    if len(payload) >= 20 and payload[0] >> 4 == 4:
        tos, length, ident, fragment, ttl, number = struct.unpack_from("!xBHHHBB", payload)
        header = (payload[0] & 0x0F) * 4
        proto = _IP_PROTOCOLS.get(number, str(number))
        words = ["SRC=%s" % socket.inet_ntop(socket.AF_INET, payload[12:16]),
                 "DST=%s" % socket.inet_ntop(socket.AF_INET, payload[16:20]),
                 "LEN=%d" % length, "TOS=0x%02X" % (tos & 0x1E), "PREC=0x%02X" % (tos & 0xE0), "TTL=%d" % ttl,
                 "ID=%d" % ident]
        words += [name for bit, name in ((0x8000, "CE"), (0x4000, "DF"), (0x2000, "MF")) if fragment & bit]
        if fragment & 0x1FFF:
            return words + ["FRAG:%d" % (fragment & 0x1FFF), "PROTO=%s" % proto]
        return words + ["PROTO=%s" % proto] + _transport(proto, payload[header:], quoted)
    if len(payload) >= 40 and payload[0] >> 4 == 6:
        first, length, number, hops = struct.unpack_from("!IHBB", payload)
        proto = _IP_PROTOCOLS.get(number, str(number))
        # In full, as the kernel log prints IPv6 (%pI6): 2001:0db8:0100:0000:...
        return (["SRC=%s" % ipaddress.IPv6Address(payload[8:24]).exploded,
                 "DST=%s" % ipaddress.IPv6Address(payload[24:40]).exploded,
                 "LEN=%d" % (length + 40), "TC=%d" % ((first >> 20) & 0xFF), "HOPLIMIT=%d" % hops,
                 "FLOWLBL=%d" % (first & 0xFFFFF), "PROTO=%s" % proto] + _transport(proto, payload[40:], quoted))
    return None


def kernel_log_line(uptime, prefix, payload, indev=None, outdev=None, mark=None, names=None):
    """One NFLOG hop as the kernel log prints it: '[uptime] TRACE: t:c:k:n IN=.. OUT=.. SRC=.. ...'; None when the
    prefix is not a TRACE's or the payload is not an IP packet."""
    if not prefix or not prefix.startswith("TRACE: "):
        return None
    words = _ip_words(payload or b"")
    if words is None:
        return None
    names = names or {}
    head = ["IN=%s" % (names.get(indev, indev) if indev else ""), "OUT=%s" % (names.get(outdev, outdev) if outdev else "")]
    tail = ["MARK=0x%x" % mark] if mark else []
    return "[%12.6f] %s%s\n" % (uptime, prefix if prefix.endswith(" ") else prefix + " ", " ".join(head + words + tail))


def decode_packet(message, uptime, names):
    """A PacketMessage -> its kernel-log line (or None)."""
    attrs = {attr[0]: attr[1] for attr in message["attrs"]}
    return kernel_log_line(uptime, attrs.get("NFULA_PREFIX"), attrs.get("NFULA_PAYLOAD"),
                           attrs.get("NFULA_IFINDEX_INDEV"), attrs.get("NFULA_IFINDEX_OUTDEV"),
                           attrs.get("NFULA_MARK"), names)


class NflogStream(Stream):
    """NFLOG group 0 of this namespace, read until `duration` passes, the stop file appears or enough is read."""

    def __init__(self, duration=None, ready_file=None, stop_file=None):
        super().__init__(["nflog group %d" % GROUP], duration=duration, ready_file=ready_file, stop_file=stop_file,
                         settle=0.3)
        self.sock = None
        self.marshal = None
        self.names = {}
        self.sequence = 0

    def _config(self, attrs):
        self.sequence += 1
        message = ConfigMessage()
        message["nfgen_family"] = socket.AF_UNSPEC
        message["res_id"] = GROUP
        message["attrs"] = attrs
        message["header"]["type"] = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG
        message["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK
        message["header"]["sequence_number"] = self.sequence
        message.encode()
        self.sock.sendall(bytes(message.data))
        # The kernel's answer comes among the packets still arriving; under a flood it can be lost (ENOBUFS), and
        # the read must not wait for it past the capture's end: a deadline for the whole wait (an OSError after).
        deadline = time.time() + CONFIG_TIMEOUT
        try:
            while True:
                left = deadline - time.time()
                if left <= 0:
                    raise OSError(errno.ETIMEDOUT, "nfnetlink_log did not answer within %d s" % CONFIG_TIMEOUT)
                self.sock.settimeout(left)
                for answer in self.marshal.parse(self.sock.recv(RECV_SIZE)):
                    header = answer["header"]
                    if header["type"] == NLMSG_ERROR and header["sequence_number"] == self.sequence:
                        return error_code(answer)
        finally:
            self.sock.settimeout(None)

    def _start(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.bind((0, 0))
        self.marshal = NflogMarshal()
        code = self._config([("NFULA_CFG_CMD", {"command": NFULNL_CFG_CMD_BIND})])
        # The kernel refuses a group that another socket holds with EPERM (seen here: a second socket binding
        # group 0 gets EPERM, the same socket binding it twice EBUSY).
        if code == errno.EPERM:
            self.sock.close()
            raise HostError("NFLOG group %d of this network namespace is taken by another program (ulogd or a "
                            "capture of another run?): the legacy trace cannot be read live here; stop it, or read "
                            "the kernel log (source=dmesg)" % GROUP)
        if code:
            self.sock.close()
            raise HostError("cannot bind NFLOG group %d: %s" % (GROUP, errno.errorcode.get(code, code)))
        self._config([("NFULA_CFG_MODE", {"copy_range": COPY_RANGE, "copy_mode": NFULNL_COPY_PACKET})])
        self.names = dict(socket.if_nameindex())
        return self.sock

    @staticmethod
    def _readable(source):
        return source

    @staticmethod
    def _ended(source):
        return False  # a socket has no end of its own: the deadline, the stop file or enough packets end it

    def _drained(self, source):
        return True  # the kernel queues an event on the socket as the packet passes: a quiet socket holds them all

    def _read(self, source):
        uptime = time.clock_gettime(time.CLOCK_BOOTTIME)  # the kernel log's clock
        lines = []
        try:
            received = source.recv(RECV_SIZE)
        except OSError as exc:
            if exc.errno != errno.ENOBUFS:
                raise
            # The kernel dropped messages for a full socket buffer; the socket reads on. Counted, and reported.
            self.overruns += 1
            return []
        for message in self.marshal.parse(received):
            if message["header"]["type"] == (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET:
                lines.append(decode_packet(message, uptime, self.names) or "")
        return [line for line in lines if line]

    def _end(self, source):
        try:
            self._config([("NFULA_CFG_CMD", {"command": NFULNL_CFG_CMD_UNBIND})])
        except OSError:
            pass
        source.close()
        self.returncode = 0
