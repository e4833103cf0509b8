# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Trace events -> packets: which lines belong to one packet's pass through one host.

The nft formats print a trace id.  The kernel log prints none, so a legacy packet
is known by what NAT leaves alone: protocol, IP ID (IPv6: flow label), TCP SEQ or
the ICMP echo id and sequence.  Either way a key can come back: nft reuses trace
ids, the same IP ID shows up on the next host of a lab whose hosts share one
kernel log, a packet to a local address passes output and then prerouting again.
A key whose hooks start over, or that was quiet for more than a second, is
therefore a new packet.

Memory grows with the packets kept (`max_packets`) and the few still open, never
with the input: packets close when they start over, when too many are open, or
at the end, and only the first `max_packets` that pass the filter are kept.
"""

from collections import OrderedDict

from ansible_collections.packetpath.linux.plugins.module_utils.netfilter.trace_event import hook_of_chain

# Where a hook comes in one pass through a host: the order a packet's hooks must go up in.
HOOK_POSITION = {"prerouting": 0, "output": 0, "input": 1, "forward": 1, "postrouting": 2}
ENTRY_HOOKS = ("prerouting", "output")
OPEN_LIMIT = 512
QUIET_SECONDS = 1.0


class Packet:
    """One packet's pass through one host: its events in order, and what identifies it."""

    __slots__ = ("packet_id", "events", "hooks", "last_position", "last_uptime", "visited")

    def __init__(self, packet_id):
        self.packet_id = packet_id
        self.events = []
        self.hooks = []  # the hook of each event, where known
        self.last_position = -1
        self.last_uptime = None
        self.visited = set()  # hooked chains entered, (table, hooked chain)

    @property
    def first(self):
        return self.events[0]


def legacy_key(packet):
    """What survives NAT in a kernel-log packet; cached in the shared header dict."""
    key = packet.get("_key")
    if key is None:
        key = (packet.get("proto"), packet.get("ip_id", packet.get("flowlabel")), packet.get("seq"),
               packet.get("icmp_id"), packet.get("icmp_seq"))
        packet["_key"] = key
    return key


def legacy_id(key):
    proto, ident, seq, icmp_id, icmp_seq = key
    parts = [proto or "ip", ident] + [part for part in (seq, icmp_id, icmp_seq) if part is not None]
    return "-".join(str(part) for part in parts)


class PacketAssembler:
    """Feed events in order; `close()` at the end; `kept` then holds the packets, in order."""

    def __init__(self, max_packets, keep, chain_hooks=None):
        self.max_packets = max_packets
        self.keep = keep  # packet -> bool: the filter
        self.chain_hooks = chain_hooks or {}  # (table, chain) -> hook, from the host's ruleset
        self.kept = []
        self.seen = 0
        self.matched = 0
        self._open = OrderedDict()
        self._occurrences = {}

    def _hook(self, event, packet):
        hooked = event.base_chain or event.chain
        hook = self.chain_hooks.get((event.table, hooked)) or hook_of_chain(hooked)
        if hook is None and event.base_chain is None and packet is not None and packet.hooks:
            hook = packet.hooks[-1]  # a legacy user chain: under the built-in chain that jumped to it
        return hook

    def add(self, event):
        if event.trace_id is not None:
            key = event.trace_id
        else:
            key = legacy_key(event.packet)
        packet = self._open.get(key)
        hook = self._hook(event, packet)
        if packet is not None and self._starts_over(packet, event, hook):
            self._close(key)
            packet = None
        if packet is None:
            packet = self._start(key, event)
        else:
            self._open.move_to_end(key)
        position = HOOK_POSITION.get(hook, packet.last_position)
        packet.last_position = max(position, packet.last_position)
        packet.last_uptime = event.uptime
        packet.visited.add((event.table, event.base_chain or hook))
        packet.events.append(event)
        packet.hooks.append(hook)

    def _starts_over(self, packet, event, hook):
        if event.uptime is not None and packet.last_uptime is not None and (
                event.uptime - packet.last_uptime > QUIET_SECONDS or event.uptime < packet.last_uptime):
            return True
        if event.packet is not packet.events[-1].packet:
            ours, theirs = event.packet.get("ip_id"), packet.events[-1].packet.get("ip_id")
            if ours is not None and theirs is not None and ours != theirs:
                return True  # nft reuses a trace id for a later packet
        position = HOOK_POSITION.get(hook)
        if position is not None and position < packet.last_position:
            return True
        if hook in ENTRY_HOOKS and any(seen not in (hook, None) for seen in packet.hooks):
            return True  # a pass starts at prerouting or output, never comes back to either
        last = packet.events[-1]
        entered = (event.table, event.base_chain or hook)
        return (entered in packet.visited and (last.table, last.base_chain or packet.hooks[-1]) != entered
                and event.chain == (event.base_chain or event.chain))

    def _start(self, key, event):
        self.seen += 1
        base = key if event.trace_id is not None else legacy_id(key)
        count = self._occurrences.get(key, 0) + 1
        self._occurrences[key] = count
        packet = Packet(base if count == 1 else "%s.%d" % (base, count))
        self._open[key] = packet
        if len(self._open) > OPEN_LIMIT:
            self._close(next(iter(self._open)))
        return packet

    def _close(self, key):
        packet = self._open.pop(key)
        if len(self._occurrences) > OPEN_LIMIT * 4:
            # Only keys still open can come back soon enough to need a ".2"; forget the rest.
            self._occurrences = dict((k, v) for k, v in self._occurrences.items()
                                     if k == key or k in self._open)
        if self.keep(packet):
            self.matched += 1
            if len(self.kept) < self.max_packets:
                self.kept.append(packet)

    def close(self):
        while self._open:
            self._close(next(iter(self._open)))
        self.kept.sort(key=lambda packet: packet.first.line_no)
        return self.kept
