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
from itertools import compress, islice, repeat
from operator import itemgetter, ne

from ansible_collections.packetpath.linux.plugins.module_utils._common.memo import Memo
from ansible_collections.packetpath.linux.plugins.module_utils.capture.event import Run, TraceEvent, canonical_address
from ansible_collections.packetpath.linux.plugins.module_utils.capture.parsers.base import LineParser

FORMAT = "kernel_log"
_MARK = "TRACE: "
BATCH = 8192
_first, _second, _third = itemgetter(0), itemgetter(1), itemgetter(2)
_KINDS = frozenset(("rule", "return", "policy"))
_PAIR = re.compile(r"([A-Z]+)=(\S*)")
_PORT_FIELDS = (("SPT", "sport"), ("DPT", "dport"), ("SEQ", "seq"))
_ICMP_FIELDS = (("TYPE", "icmp_type"), ("CODE", "icmp_code"), ("ID", "icmp_id"), ("SEQ", "icmp_seq"))


def _parse_head(head):
    """'nat:KUBE-SEP-X:rule:2' -> (table, chain, None, kind, number), or None (a log repeats a few thousand heads)."""
    parts = head.split(":")
    if len(parts) < 4 or parts[-2] not in _KINDS or not parts[-1].isdigit():
        return None
    return parts[0], ":".join(parts[1:-2]), None, parts[-2], int(parts[-1])  # a chain name may hold a colon


def _int(value, base=10):
    try:
        return int(value, base)
    except (TypeError, ValueError):
        return None


def parse_fields(text):
    """'IN=eth1 OUT= ... PROTO=TCP SPT=1 DPT=2 SEQ=3 ...' -> the packet dict, or None if it is not one."""
    pairs = _PAIR.findall(text)
    fields = dict(pairs)
    src, dst = fields.get("SRC"), fields.get("DST")
    if not src or not dst:
        return None
    proto = fields.get("PROTO", "").lower() or None
    # The family as _common.addresses.family_of decides it, written out: this runs once per line of a log.
    packet = {"in": fields.get("IN") or None, "out": fields.get("OUT") or None, "src": canonical_address(src),
              "dst": canonical_address(dst), "family": "ipv6" if ":" in src else "ipv4", "proto": proto,
              "ttl": _int(fields.get("TTL") or fields.get("HOPLIMIT"))}
    if "FLOWLBL" in fields:
        packet["flowlabel"] = _int(fields["FLOWLBL"])
    if "MARK" in fields:
        packet["mark"] = _int(fields["MARK"], 16)
    if proto in ("icmp", "icmpv6"):
        # An echo has an ID and a SEQ of its own after PROTO=; IPv4's first ID is the IP ID.
        ids = [value for key, value in pairs if key == "ID"]
        if proto == "icmp" and ids:
            packet["ip_id"] = _int(ids[0])
        after = dict(_PAIR.findall(text.partition(" PROTO=")[2]))
        for key, field in _ICMP_FIELDS:
            if key in after:
                packet[field] = _int(after[key])
    else:
        if "ID" in fields:
            packet["ip_id"] = _int(fields["ID"])
        for key, field in _PORT_FIELDS:
            if key in fields:
                packet[field] = _int(fields[key])
    return packet


def packet_key(text):
    """What NAT leaves alone, read straight off the header text without parsing it:
    (protocol, IP ID or IPv6 flow label, TCP SEQ, ICMP echo id, ICMP echo seq); None if it is no header."""
    proto_at = text.find(" PROTO=")
    # What parse_fields needs, or the line is no packet's: a key for a header it rejects would reach the hops.
    if proto_at < 0 or not _value(text, " SRC=", 0, proto_at) or not _value(text, " DST=", 0, proto_at):
        return None
    ident = _value(text, " ID=", 0, proto_at) or _value(text, "FLOWLBL=", 0, proto_at)
    proto = text[proto_at + 7:text.find(" ", proto_at + 7)].lower()
    if proto in ("icmp", "icmpv6"):
        return (proto, ident, None, _value(text, " ID=", proto_at), _value(text, " SEQ=", proto_at))
    return (proto, ident, _value(text, " SEQ=", proto_at), None, None)


def _value(text, name, start, end=None):
    at = text.find(name, start, end) if end is not None else text.find(name, start)
    if at < 0:
        return None
    at += len(name)
    return text[at:text.find(" ", at)]


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
    parse_header = staticmethod(parse_fields)

    def __init__(self):
        super().__init__()
        self._now = time.time()
        self._epochs = Memo(self._epoch, limit=1024)  # syslog stamp (to the second) -> epoch
        self._heads = Memo(_parse_head)

    def _epoch(self, seconds):
        try:
            return _syslog_time(seconds, self._now)
        except ValueError:
            return None

    def resolve(self, event):
        """Read a syslog line's time stamp and host name into the event (done only when they are needed)."""
        prefix, event.stamp = event.stamp, None
        if not prefix:
            return
        seconds, fraction = _split_stamp(prefix)
        epoch = self._epochs[seconds]
        event.time = None if epoch is None else epoch + fraction
        words = prefix.split()
        if "kernel:" in words[1:]:
            event.host = words[words.index("kernel:") - 1]

    @staticmethod
    def clock(prefix):
        """(uptime, syslog stamp) from what precedes 'TRACE: ': '[ 2066.621295] ' or 'May  8 ... kernel: [3.2] '."""
        if prefix[-2:] != "] ":
            return None, prefix or None
        bracket = prefix.rfind("[")
        try:
            uptime = float(prefix[bracket + 1:-2])
        except ValueError:
            uptime = None
        return uptime, prefix[:bracket] or None

    def headers_of(self, text):
        return self.header[text]

    def events_of(self, run, prefixes):
        packet, family, events = run.packet, run.packet["family"], []
        for offset, ((table, chain, _base, kind, number), prefix) in enumerate(zip(run.hops, prefixes)):
            uptime, stamp = self.clock(prefix)
            events.append(TraceEvent(FORMAT, run.line_no + offset, table, chain, kind, packet, family,
                                     rule_number=number, uptime=uptime, stamp=stamp))
        return events

    def parse(self, line, line_no=0):
        """One line -> a TraceEvent, or None."""
        for run in self.runs((line,), line_no - 1):
            return run.events()[0]
        return None

    def runs(self, lines, line_no=0):
        """Runs: the stretches of consecutive lines that print the same headers.

        The lines of one packet repeat its headers until NAT changes them.  Lines are
        taken in batches and split, compared and looked up with map() over the whole
        batch, so the Python code here runs once per run, not once per line: that is
        what lets it keep up with a large log.
        """
        lines = iter(lines)
        previous = None  # the headers of the line before
        run = None
        while True:
            batch = list(islice(lines, BATCH))
            if not batch:
                break
            first_no, line_no = line_no + 1, line_no + len(batch)
            parts = list(map(str.partition, batch, repeat(_MARK)))
            numbers = range(first_no, line_no + 1)
            marked = list(map(bool, map(_second, parts)))
            if not all(marked):
                self.other_lines += marked.count(False)
                parts, batch, numbers = (list(compress(items, marked)) for items in (parts, batch, numbers))
            split = list(map(str.partition, map(_third, parts), repeat(" ")))
            fields = list(map(_third, split))
            heads = list(map(self._heads.get, map(_first, split)))
            prefixes = list(map(_first, parts))
            starts = list(compress(range(len(fields)), map(ne, fields, [previous] + fields[:-1])))
            previous = fields[-1] if fields else previous
            ends = starts[1:] + [len(fields)]
            self._extend(run, batch, split, heads, prefixes, 0, starts[0] if starts else len(fields))
            for cut, end in zip(starts, ends):
                if run is not None and run.hops:
                    yield run
                key = packet_key(fields[cut])
                hops = heads[cut:end]
                if key is not None and None not in hops:
                    # The whole run within this batch, every head read (most runs): made with its hops at once.
                    run = Run(key, hops, numbers[cut], None, None, self, fields[cut], prefixes[cut:end])
                    continue
                run = None if key is None else Run(key, [], numbers[cut], None, None, self, fields[cut], [])
                self._extend(run, batch, split, heads, prefixes, cut, end)
        self.lines_read = line_no
        if run is not None and run.hops:
            yield run

    def _extend(self, run, batch, split, heads, prefixes, start, end):
        """Add lines start..end (one packet's, same headers) to the run; a bad head or header is counted."""
        if start == end:
            return
        stretch = heads[start:end]
        if run is not None and None not in stretch:
            run.add(stretch, prefixes[start:end])
            return
        for index in range(start, end):
            head = heads[index] or self._heads[_first(split[index])]
            if head is None or run is None:
                self.bad(batch[index])
                continue
            run.add((head,), (prefixes[index],))
