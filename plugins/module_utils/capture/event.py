# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every trace parser produces: one TraceEvent per hop a packet takes.

The three formats (kernel log, xtables-monitor, nft monitor) say the same
things in different words; their parsers translate them into this one type, so
grouping into packets and explaining where a packet stopped never needs to know
which format it came from.

`packet` is a dict of the packet's header fields as that hop saw them.  Parsers
hand out the same dict object for hops that saw the same headers, which keeps
memory low and makes "did NAT change anything here?" an identity test.
"""

import ipaddress

from ansible_collections.packetpath.linux.plugins.module_utils._common.memo import Memo

BUILTIN_CHAIN_HOOK = {
    "PREROUTING": "prerouting",
    "INPUT": "input",
    "FORWARD": "forward",
    "OUTPUT": "output",
    "POSTROUTING": "postrouting",
}


class TraceEvent:
    """One line of a trace that says where a packet was: a rule, a return or a policy."""

    __slots__ = ("fmt", "line_no", "table", "chain", "kind", "packet", "family", "table_family", "base_chain",
                 "rule_number", "rule_handle", "verdict", "target", "rule", "trace_id", "time", "uptime", "host",
                 "stamp")

    # Positional on purpose: the kernel-log parser makes one per line of a large log.
    def __init__(self, fmt, line_no, table, chain, kind, packet, family=None, table_family=None, base_chain=None,
                 rule_number=None, rule_handle=None, verdict=None, target=None, rule=None, trace_id=None,
                 time=None, uptime=None, host=None, stamp=None):
        self.fmt = fmt
        self.line_no = line_no
        self.table = table
        self.chain = chain
        self.kind = kind  # rule | return | policy
        self.packet = packet
        self.family = family  # ipv4 | ipv6
        self.table_family = table_family  # nft: ip, ip6, inet, ...
        self.base_chain = base_chain  # the hooked chain this hop is evaluated under, where known
        self.rule_number = rule_number  # legacy: position in the chain, 1-based
        self.rule_handle = rule_handle  # xtables-monitor: the rule's handle
        self.verdict = verdict
        self.target = target  # the chain of a jump or goto
        self.rule = rule
        self.trace_id = trace_id  # the nft formats' packet id
        self.time = time  # seconds since the epoch, where the line says (see stamp)
        self.uptime = uptime  # the kernel's clock (dmesg's [seconds]), where the line says
        self.host = host  # the host name a syslog line names
        self.stamp = stamp  # a syslog line's time stamp and host, read into time and host only when needed


def _short_address(text):
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


_SHORT_ADDRESSES = Memo(_short_address)


def canonical_address(text):
    """The kernel log prints IPv6 in full (2001:0db8:0000:...); nft and users write it short."""
    return _SHORT_ADDRESSES[text] if ":" in text else text


def hook_of_chain(chain):
    """The hook of a chain named after it (iptables' built-in chains, common nft names), else None."""
    hook = BUILTIN_CHAIN_HOOK.get(chain)
    if hook:
        return hook
    name = chain.lower()
    for prefix, hook in (("prerouting", "prerouting"), ("postrouting", "postrouting"), ("pre", "prerouting"),
                         ("post", "postrouting"), ("input", "input"), ("forward", "forward"),
                         ("output", "output"), ("out", "output"), ("in", "input"), ("fwd", "forward")):
        if name.startswith(prefix) or name.endswith("_" + prefix):
            return hook
    return None


class Run:
    """Consecutive hops of one packet that printed the same headers: what parsers hand on.

    `hops` holds (table, chain, base_chain, kind, number) per hop and `key` what
    identifies the packet, which is all that grouping lines into packets needs.
    The header dict and the TraceEvents are made only when asked for: for the
    packets kept, or filtered by their headers.  Most lines of a large log never
    need either.
    """

    __slots__ = ("key", "hops", "line_no", "_packet", "_text", "_events", "_parser", "_stamps")

    def __init__(self, key, hops, line_no, packet=None, events=None, parser=None, text=None, stamps=None):
        self.key = key  # the trace id, or what NAT leaves alone (see packets.py)
        self.hops = hops
        self.line_no = line_no  # of the first hop
        self._packet = packet
        self._text = text  # the headers as printed, parsed into `packet` when asked
        self._events = events
        self._parser = parser  # makes the packet and the events when asked
        self._stamps = stamps  # per hop, what the line said before the trace (its time)

    @classmethod
    def of_event(cls, event):
        hop = (event.table, event.chain, event.base_chain, event.kind, event.rule_number)
        return cls(event.trace_id, [hop], event.line_no, packet=event.packet, events=[event])

    @property
    def packet(self):
        if self._packet is None:
            self._packet = self._parser.headers_of(self._text)
        return self._packet

    def split(self, count):
        """Cut the first `count` hops off into a run of their own (a packet ended inside this run)."""
        head = Run(self.key, self.hops[:count], self.line_no, self._packet,
                   None if self._events is None else self._events[:count], self._parser, self._text,
                   None if self._stamps is None else self._stamps[:count])
        self.hops = self.hops[count:]
        if self._events is not None:
            self._events = self._events[count:]
        if self._stamps is not None:
            self._stamps = self._stamps[count:]
        self.line_no += count
        return head

    def add(self, hops, stamps):
        self.hops.extend(hops)
        self._stamps.extend(stamps)

    def events(self):
        if self._events is None:
            self._events = self._parser.events_of(self, self._stamps)
        return self._events

    def uptime(self, index):
        """The kernel's clock at a hop (first: 0, last: -1), without making events."""
        if self._events is not None:
            return self._events[index].uptime
        return self._parser.clock(self._stamps[index])[0]
