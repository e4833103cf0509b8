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

from ansible_collections.packetpath.linux.plugins.module_utils.netfilter.trace_event import (
    BUILTIN_CHAIN_HOOK,
    hook_of_chain,
)

# Where a hook comes in one pass through a host: the order a packet's hooks must go up in.
HOOK_POSITION = {"prerouting": 0, "output": 0, "input": 1, "forward": 1, "postrouting": 2}
ENTRY_HOOKS = ("prerouting", "output")
OPEN_LIMIT = 512
QUIET_SECONDS = 1.0


class Packet:
    """One packet's pass through one host: its events in order, and what identifies it."""

    __slots__ = ("packet_id", "events", "hooks", "last_position", "last_uptime", "entry_hook", "moved_on",
                 "entered", "last_entered")

    def __init__(self, packet_id):
        self.packet_id = packet_id
        self.events = []
        self.hooks = []  # the hook of each event, where known
        self.last_position = -1
        self.last_uptime = None
        self.entry_hook = None  # prerouting or output: where the pass began
        self.moved_on = False  # seen at a hook past the entry hook
        self.entered = set()  # (table, hook) of each hooked chain entered
        self.last_entered = None

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
        self._chains = {}

    def _chain_info(self, event):
        """(hook or None, whether the event is in the hooked chain itself), cached per table and chain."""
        name = (event.table, event.chain, event.base_chain)
        info = self._chains.get(name)
        if info is None:
            hooked = event.base_chain or event.chain
            hook = self.chain_hooks.get((event.table, hooked)) or hook_of_chain(hooked)
            in_hooked = event.chain == event.base_chain if event.base_chain else event.chain in BUILTIN_CHAIN_HOOK
            info = (hook, in_hooked)
            if len(self._chains) > 4096:
                self._chains.clear()
            self._chains[name] = info
        return info

    def add_run(self, events):
        """Events that share one header dict (one packet's, consecutive), in order."""
        first = events[0]
        key = first.trace_id if first.trace_id is not None else legacy_key(first.packet)
        packet = self._open.get(key)
        if packet is not None:
            self._open.move_to_end(key)
            last = packet.events[-1].packet
            if last is not first.packet:
                ours, theirs = first.packet.get("ip_id"), last.get("ip_id")
                if ours is not None and theirs is not None and ours != theirs:
                    self._close(key)  # nft reuses a trace id for a later packet
                    packet = None
        chains = self._chains
        for event in events:
            hook, in_hooked = chains.get((event.table, event.chain, event.base_chain)) or self._chain_info(event)
            if hook is None and not event.base_chain and packet is not None and packet.hooks:
                hook = packet.hooks[-1]  # a legacy user chain: under the built-in chain that jumped to it
            entering = (event.table, hook) if in_hooked else None
            if packet is None:
                packet = self._start(key, event, hook)
            elif (hook != packet.hooks[-1] or entering or event.uptime != packet.last_uptime) and self._starts_over(
                    packet, event, hook, entering):
                # Only a new hook, a hooked chain entered, or time passing can start a new pass.
                packet = self._restart(key, event, hook)
            elif hook is not None and hook != packet.entry_hook:
                packet.moved_on = True
            position = HOOK_POSITION.get(hook, -1)
            if position > packet.last_position:
                packet.last_position = position
            packet.last_uptime = event.uptime
            if entering:
                packet.entered.add(entering)
                packet.last_entered = entering
            packet.events.append(event)
            packet.hooks.append(hook)

    def _restart(self, key, event, hook=None):
        self._close(key)
        return self._start(key, event, hook)

    @staticmethod
    def _starts_over(packet, event, hook, entering):
        if event.uptime is not None and packet.last_uptime is not None and (
                event.uptime - packet.last_uptime > QUIET_SECONDS or event.uptime < packet.last_uptime):
            return True
        if HOOK_POSITION.get(hook, 9) < packet.last_position:
            return True
        if hook in ENTRY_HOOKS and (packet.moved_on or hook != packet.entry_hook):
            return True  # a pass starts at prerouting or output, and never comes back to either
        # A hooked chain entered again after another one: the same key's next packet.
        return entering is not None and entering != packet.last_entered and entering in packet.entered

    def _start(self, key, event, hook):
        self.seen += 1
        base = key if event.trace_id is not None else legacy_id(key)
        count = self._occurrences.get(key, 0) + 1
        self._occurrences[key] = count
        packet = Packet(base if count == 1 else "%s.%d" % (base, count))
        packet.entry_hook = hook
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
