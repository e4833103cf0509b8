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

import re
import time
from datetime import datetime

from ansible_collections.packetpath.linux.plugins.module_utils.netfilter.parsers.base import CACHE_LIMIT, LineParser
from ansible_collections.packetpath.linux.plugins.module_utils.netfilter.trace_event import (
    TraceEvent,
    canonical_address,
)

FORMAT = "kernel_log"
_MARK = "TRACE: "
_KINDS = frozenset(("rule", "return", "policy"))
_PAIR = re.compile(r"([A-Z]+)=(\S*)")
_PORT_FIELDS = (("SPT", "sport"), ("DPT", "dport"), ("SEQ", "seq"))
_ICMP_FIELDS = (("TYPE", "icmp_type"), ("CODE", "icmp_code"), ("ID", "icmp_id"), ("SEQ", "icmp_seq"))


def _int(value, base=10):
    try:
        return int(value, base)
    except (TypeError, ValueError):
        return None


def parse_fields(text):
    """'IN=eth1 OUT= ... PROTO=TCP SPT=1 DPT=2 SEQ=3 ...' -> the packet dict, or None if it is not one.

    The IP part and the transport part are read apart: ICMP echoes have an ID and a SEQ
    of their own after PROTO=, which must not be taken for the IP ID or a TCP SEQ.
    """
    ip_part, _sep, l4_part = text.partition(" PROTO=")
    ip = dict(_PAIR.findall(ip_part))
    src, dst = ip.get("SRC"), ip.get("DST")
    if not src or not dst:
        return None
    packet = {"in": ip.get("IN") or None, "out": ip.get("OUT") or None, "src": canonical_address(src),
              "dst": canonical_address(dst), "family": "ipv6" if ":" in src else "ipv4"}
    for key, field in (("ID", "ip_id"), ("TTL", "ttl"), ("HOPLIMIT", "ttl"), ("FLOWLBL", "flowlabel"),
                       ("LEN", "length")):
        if key in ip:
            packet[field] = _int(ip[key])
    if _sep:
        proto, _space, rest = l4_part.partition(" ")
        proto = proto.lower()
        packet["proto"] = proto
        l4 = dict(_PAIR.findall(rest))
        names = _ICMP_FIELDS if proto in ("icmp", "icmpv6") else _PORT_FIELDS
        for key, field in names:
            if key in l4:
                packet[field] = _int(l4[key])
        if "MARK" in l4:
            packet["mark"] = _int(l4["MARK"], 16)
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
        self._heads = {}
        self._now = time.time()

    def resolve(self, event):
        """Read a syslog line's time stamp and host name into the event (done only when they are needed)."""
        prefix, event.stamp = event.stamp, None
        if not prefix:
            return
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
        event.time = None if epoch is None else epoch + fraction
        words = prefix.split()
        if "kernel:" in words[1:]:
            event.host = words[words.index("kernel:") - 1]

    def _head(self, head):
        """'nat:KUBE-SEP-X:rule:2' -> (table, chain, kind, number), cached: a log repeats a few thousand heads."""
        info = self._heads.get(head)
        if info is None:
            parts = head.split(":")
            if len(parts) < 4 or parts[-2] not in _KINDS or not parts[-1].isdigit():
                return None
            info = (parts[0], ":".join(parts[1:-2]), parts[-2], int(parts[-1]))  # a chain name may hold a colon
            if len(self._heads) > CACHE_LIMIT:
                self._heads.clear()
            self._heads[head] = info
        return info

    def parse(self, line, line_no=0):
        """One line -> a TraceEvent, or None."""
        for _packet, events in self.runs((line,), line_no - 1):
            return events[0]
        return None

    def runs(self, lines, line_no=0):
        """(packet dict, [TraceEvent, ...]) for each stretch of consecutive lines that print the same headers.

        The lines of one packet repeat its headers until NAT changes them, so most
        lines cost a comparison with the line before, not a parse.
        """
        headers = None
        run = None
        heads, make, head_of = self._heads, TraceEvent, self._head
        for line_no, line in enumerate(lines, line_no + 1):
            prefix, mark, rest = line.partition(_MARK)
            if not mark:
                self.other_lines += 1
                continue
            head, _space, fields = rest.partition(" ")
            info = heads.get(head) or head_of(head)
            if info is None:
                self.bad(line)
                continue
            if fields != headers:
                packet = self.header(fields, parse_fields)
                if packet is None:
                    self.bad(line)
                    continue
                if run:
                    yield run
                headers, run, family = fields, (packet, []), packet["family"]
            uptime = stamp = None
            if prefix:
                if prefix[-2:] == "] ":
                    bracket = prefix.rfind("[")
                    try:
                        uptime = float(prefix[bracket + 1:-2])
                    except ValueError:
                        pass
                    stamp = prefix[:bracket] or None
                else:
                    stamp = prefix
            run[1].append(make(FORMAT, line_no, info[0], info[1], info[2], run[0], family, None, None, info[3], None,
                               None, None, None, None, None, uptime, None, stamp))
        self.lines_read = line_no
        if run:
            yield run
