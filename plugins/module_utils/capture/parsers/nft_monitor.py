# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`nft monitor trace` output (native nftables):

    trace id bd43419a ip nat PREROUTING packet: iif "eth1" ... ip saddr 198.51.100.10 ... tcp dport 30080 ...
    trace id bd43419a ip nat KUBE-SEP-PPLABPOD3 rule meta l4proto tcp dnat to 198.19.3.10:8080 (verdict accept)
    trace id bd43419a ip filter FORWARD policy accept

`trace id <id> <family> <table> <chain>` then a packet line (the headers as the
hooked chain saw them), a rule with its verdict, a bare verdict (the end of a
chain), or the chain's policy.  Newer versions add `conntrack:` lines.
"""

from ansible_collections.packetpath.linux.plugins.module_utils.capture.event import TraceEvent
from ansible_collections.packetpath.linux.plugins.module_utils.capture.parsers.base import LineParser

FORMAT = "nft_monitor"
_ADDRESS = {"saddr": "src", "daddr": "dst"}
_IP_INT = {"ttl": "ttl", "hoplimit": "ttl", "id": "ip_id", "flowlabel": "flowlabel", "length": "length"}
_L4_INT = {"sport": "sport", "dport": "dport", "sequence": "icmp_seq", "id": "icmp_id"}
_L4 = ("tcp", "udp", "sctp", "icmp", "icmpv6")


def _int(text):
    try:
        return int(text, 0)
    except ValueError:
        return None


def parse_packet(text):
    """'iif "eth1" ... ip saddr A ip daddr B ... tcp dport 80 ...' -> the packet dict, or None."""
    words = text.split()
    packet = {"in": None, "out": None}
    for index in range(len(words) - 1):
        word, key = words[index], words[index + 1]
        value = words[index + 2] if index + 2 < len(words) else ""
        if word in ("iif", "oif"):
            packet["in" if word == "iif" else "out"] = key.strip('"')
        elif word in ("ip", "ip6"):
            packet.setdefault("family", "ipv4" if word == "ip" else "ipv6")
            if key in _ADDRESS:
                packet[_ADDRESS[key]] = value
            elif key in _IP_INT:
                number = _int(value)
                if number is not None:
                    packet[_IP_INT[key]] = number
        elif word in _L4 and key in ("sport", "dport", "type", "code", "id", "sequence"):
            packet["proto"] = word
            if key in _L4_INT:
                number = _int(value)
                if number is not None:
                    packet[_L4_INT[key]] = number
        elif word == "meta" and key == "mark":
            packet["mark"] = _int(value)
    if "src" not in packet or "dst" not in packet:
        return None
    return packet


class NftMonitorParser(LineParser):
    fmt = FORMAT
    parse_header = staticmethod(parse_packet)

    def __init__(self):
        super().__init__()
        self._packets = {}  # trace id -> [packet dict, base chain]

    def parse(self, line, line_no=0):
        words = line.split(None, 6)
        if not words:
            return None
        if len(words) < 7 or words[0] != "trace" or words[1] != "id":
            self.bad(line)
            return None
        trace_id, table_family, table, chain, rest = words[2], words[3], words[4], words[5], words[6].strip()
        if rest.startswith("packet:"):
            packet = self.header[rest[7:].strip()]
            if packet is None:
                self.bad(line)
            else:
                self._packets[trace_id] = [packet, chain]
            return None
        if rest.startswith("conntrack:"):
            return None
        context = self._packets.get(trace_id)
        if context is None:
            self.bad(line)
            return None
        rule = verdict = None
        if rest.startswith("rule ") or rest.startswith("unknown rule handle"):
            kind = "rule"
            body, _sep, tail = rest.rpartition(" (verdict ")
            if not _sep:
                self.bad(line)
                return None
            verdict = tail.rstrip(")")
            rule = None if body.startswith("unknown rule") else body[5:]
        elif rest.startswith("verdict "):
            kind, verdict = "return", rest[8:]
        elif rest.startswith("policy "):
            kind, verdict = "policy", rest[7:]
        else:
            self.bad(line)
            return None
        verdict, _sep, target = verdict.strip().partition(" ")
        packet = context[0]
        return TraceEvent(
            FORMAT, line_no, table, chain, kind, packet, family=packet.get("family"), table_family=table_family,
            base_chain=context[1], verdict=verdict, target=target or None, rule=rule, trace_id=trace_id,
        )
