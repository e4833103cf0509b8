# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`xtables-monitor --trace` output (iptables-nft):

    PACKET: 2 f48835cc IN=eth1 MACSRC=... SRC=198.51.100.10 DST=198.51.100.12 ... ID=50357 DF SPORT=36080 DPORT=30080 SYN
     TRACE: 2 f48835cc nat:KUBE-SEP-PPLABPOD2:rule:0xd:ACCEPT  -4 -t nat -A KUBE-SEP-PPLABPOD2 ... -j DNAT ...
     TRACE: 2 f48835cc raw:PREROUTING:policy:ACCEPT

A PACKET line comes first in each hooked chain and gives the headers the TRACE
lines after it (same trace id) refer to.  `2`/`10` is the family; rules are
named by handle and printed as iptables would list them; the verdict is printed.
There is no protocol field: TCP shows its flags, UDP only its ports.

Between releases (recorded on Debian 11, 12 and 13: tests/unit/fixtures/traces/debian11, debian13):
- iptables 1.8.11 begins a rule with its command (`iptables -t raw -A ...`, `ip6tables ...`) where 1.8.7 and
  1.8.9 print `-4 -t raw -A ...`: it is read as the older spelling, so a fleet of both reads alike;
- 1.8.7 runs the IP ID and the DF flag together (`ID=64657DF`) and prints some rules without their matches;
- 1.8.9 cannot print an IPv6 rule with a TCP match ("unsupported layer 4 protocol value") and stops there.
"""

import re

from ansible_collections.packetpath.linux.plugins.module_utils.capture.event import TraceEvent
from ansible_collections.packetpath.linux.plugins.module_utils.capture.parsers.base import LineParser

FORMAT = "xtables_monitor"
_FAMILY = {"2": "ipv4", "10": "ipv6"}
_TCP_FLAGS = frozenset(("SYN", "ACK", "FIN", "RST", "PSH", "URG"))
_INT_FIELDS = {"TTL": "ttl", "HOPLIMIT": "ttl", "SPORT": "sport", "DPORT": "dport", "FLOWLBL": "flowlabel",
               "LEN": "length"}
_LEADING_DIGITS = re.compile(r"\d+")
_FAMILY_FLAG = {"iptables": "-4", "ip6tables": "-6"}  # 1.8.11's command word, as 1.8.7-1.8.9's flag


def parse_packet(text):
    """'IN=eth1 OUT= SRC=... SPORT=1 DPORT=2 SYN' -> the packet dict, or None."""
    packet = {"in": None, "out": None}
    flags = False
    for token in text.split():
        key, sep, value = token.partition("=")
        if not sep:
            flags = flags or token in _TCP_FLAGS
        elif key == "IN":
            packet["in"] = value or None
        elif key == "OUT":
            packet["out"] = value or None
        elif key == "SRC":
            packet["src"] = value
        elif key == "DST":
            packet["dst"] = value
        elif key == "ID":
            digits = _LEADING_DIGITS.match(value)  # some versions print "ID=123DF"
            if digits:
                packet["ip_id"] = int(digits.group())
        elif key == "MARK":
            packet["mark"] = int(value, 16)
        elif key in _INT_FIELDS and value.isdigit():
            packet[_INT_FIELDS[key]] = int(value)
    if "src" not in packet or "dst" not in packet:
        return None
    if "sport" in packet:
        packet["proto"] = "tcp" if flags else "udp"
    return packet


class XtablesMonitorParser(LineParser):
    fmt = FORMAT
    parse_header = staticmethod(parse_packet)

    def __init__(self):
        super().__init__()
        self._packets = {}  # trace id -> (packet dict, base chain or None until its first TRACE line)

    def parse(self, line, line_no=0):
        words = line.split(None, 3)
        if not words:
            return None
        if len(words) < 4 or words[0] not in ("PACKET:", "TRACE:") or words[1] not in _FAMILY:
            self.bad(line)
            return None
        trace_id = words[2]
        if words[0] == "PACKET:":
            packet = self.header[words[3].strip()]
            if packet is None:
                self.bad(line)
            else:
                self._packets[trace_id] = [packet, None]
            return None
        return self._trace(line, line_no, trace_id, _FAMILY[words[1]], words[3])

    def _trace(self, line, line_no, trace_id, family, rest):
        head, _sep, rule = rest.strip().partition(" ")
        parts = head.split(":")
        context = self._packets.get(trace_id)
        if context is None or len(parts) < 4:
            self.bad(line)
            return None
        table, chain, kind = parts[0], parts[1], parts[2]
        handle = None
        if kind == "rule":
            try:
                handle = int(parts[3], 16)
            except ValueError:
                self.bad(line)
                return None
            verdict = parts[4:]
        elif kind in ("policy", "return"):
            verdict = parts[3:]
        else:
            self.bad(line)
            return None
        if context[1] is None:
            context[1] = chain  # the first chain after a PACKET line is the hooked one
        return TraceEvent(
            FORMAT, line_no, table, chain, kind, context[0], family=family, base_chain=context[1],
            rule_handle=handle, verdict=verdict[0].lower() if verdict and verdict[0] else None,
            target=verdict[1] if len(verdict) > 1 else None, rule=_rule_text(rule.strip()) or None,
            trace_id=trace_id,
        )


def _rule_text(rule):
    """The rule as iptables 1.8.7-1.8.9 print it (`-4 -t raw -A ...`), where 1.8.11 begins it with the command."""
    command, _sep, rest = rule.partition(" ")
    return "%s %s" % (_FAMILY_FLAG[command], rest) if command in _FAMILY_FLAG and rest else rule
