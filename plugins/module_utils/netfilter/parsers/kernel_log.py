# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Legacy TRACE lines, as the kernel log prints them (dmesg, kern.log, messages, the journal).

    May  8 16:30:29 ceph3 kernel: [324781.838389] TRACE: nat:OUTPUT:rule:1 IN= OUT=enp3s0 SRC=... ID=57266 ...

No packet id and no verdict are printed: packets are told apart later by IP ID
and TCP SEQ, verdicts looked up in iptables-save or inferred from the next hop.
Lines of one packet repeat the same header fields until NAT changes them, so the
field text is parsed once and the resulting dict shared (the speed of this
parser is that cache: a 500 MB log is mostly repeats).
"""

import time
from datetime import datetime

from ansible_collections.packetpath.linux.plugins.module_utils.netfilter.parsers.base import LineParser
from ansible_collections.packetpath.linux.plugins.module_utils.netfilter.trace_event import (
    TraceEvent,
    canonical_address,
)

FORMAT = "kernel_log"
_MARK = "TRACE: "
_KINDS = ("rule", "return", "policy")
_INT_FIELDS = {"TTL": "ttl", "HOPLIMIT": "ttl", "SPT": "sport", "DPT": "dport", "SEQ": "seq", "FLOWLBL": "flowlabel"}


def parse_fields(text):
    """'IN=eth1 OUT= ... PROTO=TCP SPT=1 DPT=2 SEQ=3 ...' -> the packet dict, or None if it is not one."""
    packet = {}
    proto = None
    for token in text.split():
        key, sep, value = token.partition("=")
        if not sep:
            continue  # flags (DF, SYN, ...) and the OPT (...) blob
        if key == "IN":
            packet["in"] = value or None
        elif key == "OUT":
            packet["out"] = value or None
        elif key == "SRC":
            packet["src"] = canonical_address(value)
        elif key == "DST":
            packet["dst"] = canonical_address(value)
        elif key == "PROTO":
            proto = value.lower()
            packet["proto"] = "icmpv6" if proto == "icmpv6" else proto
        elif key == "ID":
            # The IP ID comes before PROTO; an ICMP echo's own ID after it.
            packet["icmp_id" if proto else "ip_id"] = int(value)
        elif key == "SEQ" and proto in ("icmp", "icmpv6"):
            packet["icmp_seq"] = int(value)
        elif key == "TYPE":
            packet["icmp_type"] = int(value)
        elif key == "CODE":
            packet["icmp_code"] = int(value)
        elif key == "MARK":
            packet["mark"] = int(value, 16)
        elif key == "LEN" and "length" not in packet:
            packet["length"] = int(value)
        elif key in _INT_FIELDS:
            packet[_INT_FIELDS[key]] = int(value)
    if "src" not in packet or "dst" not in packet:
        return None
    return packet


def _split_stamp(prefix):
    """(whole seconds part, fraction) of the line's time stamp: the cache key and what to add to it."""
    if not prefix[:1].isdigit():
        return prefix[:15], 0.0  # 'May  8 16:30:29'
    stamp = prefix.split(" ", 1)[0]  # '2026-11-24T10:11:12.123456+00:00'
    if stamp[19:20] != ".":
        return stamp, 0.0
    end = 20
    while end < len(stamp) and stamp[end].isdigit():
        end += 1
    return stamp[:19] + stamp[end:], float("0." + stamp[20:end])


def _syslog_time(seconds, now):
    """Epoch of an RFC 3339 stamp, or of 'May  8 16:30:29' (local time, no year: the latest not in the future)."""
    if seconds[:1].isdigit():
        return datetime.fromisoformat(seconds.replace("Z", "+00:00")).timestamp()
    year = time.localtime(now).tm_year
    for candidate in (year, year - 1):
        moment = time.mktime(time.strptime("%d %s" % (candidate, seconds.replace("  ", " ")), "%Y %b %d %H:%M:%S"))
        if moment <= now + 86400:
            return moment
    return moment


class KernelLogParser(LineParser):
    """Turns kernel-log lines into TraceEvents; other kernel messages are passed over."""

    fmt = FORMAT

    def __init__(self):
        super(KernelLogParser, self).__init__()
        self._stamps = {}
        self._now = time.time()

    def _wall_time(self, prefix):
        seconds, fraction = _split_stamp(prefix)
        epoch = self._stamps.get(seconds, False)
        if epoch is False:
            if len(self._stamps) > 1024:
                self._stamps.clear()
            try:
                epoch = _syslog_time(seconds, self._now)
            except ValueError:
                epoch = None
            self._stamps[seconds] = epoch
        return None if epoch is None else epoch + fraction

    def parse(self, line, line_no=0):
        start = line.find(_MARK)
        if start < 0:
            self.other_lines += 1
            return None
        rest = line[start + 7:]
        space = rest.find(" ")
        head = rest[:space] if space > 0 else rest
        parts = head.split(":")
        if len(parts) < 4 or parts[-2] not in _KINDS or not parts[-1].isdigit():
            self.bad(line)
            return None
        packet = self.header(rest[space + 1:], parse_fields)
        if packet is None:
            self.bad(line)
            return None
        uptime = wall = host = None
        if start:
            prefix = line[:start]
            bracket = prefix.rfind("[")
            if bracket >= 0:
                try:
                    uptime = float(prefix[bracket + 1:prefix.index("]", bracket)])
                except ValueError:
                    uptime = None
            if bracket != 0 and prefix[:1] != "[":
                wall = self._wall_time(prefix)
                words = prefix.split()
                if "kernel:" in words:
                    host = words[words.index("kernel:") - 1]
        return TraceEvent(
            FORMAT, line_no, parts[0], ":".join(parts[1:-2]), parts[-2], packet,
            family="ipv6" if ":" in packet["src"] else "ipv4", rule_number=int(parts[-1]),
            time=wall, uptime=uptime, host=host,
        )
