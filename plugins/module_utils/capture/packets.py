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

from ansible_collections.packetpath.linux.plugins.module_utils._common.memo import Memo
from ansible_collections.packetpath.linux.plugins.module_utils.capture.event import BUILTIN_CHAIN_HOOK, hook_of_chain

# Where a hook comes in one pass through a host: the order a packet's hooks must go up in.
HOOK_POSITION = {"prerouting": 0, "output": 0, "input": 1, "forward": 1, "postrouting": 2}
ENTRY_HOOKS = ("prerouting", "output")
OPEN_LIMIT = 512
# Hops kept per packet. A real pass through a host's tables is tens of hops (kube-proxy's chains included); a
# trace that repeats one packet's hops without end (a loop of jumps, a forged log) would otherwise hold every hop
# in memory: max_packets bounds packets, this bounds each one.
MAX_HOPS = 1000
QUIET_SECONDS = 1.0


class Packet:
    """One packet's pass through one host: its runs of hops in order, and what identifies it."""

    __slots__ = ("key", "occurrence", "runs", "hooks", "last_position", "entry_hook", "moved_on", "entered",
                 "last_entered", "kinship", "_events")

    def __init__(self, key, occurrence=1):
        self.key = key  # a kernel-log key (a tuple) or a trace id
        self.occurrence = occurrence  # the how-manieth packet of its key
        self.runs = []
        self.hooks = []  # the hook of each hop, where known
        self.last_position = -1
        self.entry_hook = None  # prerouting or output: where the pass began
        self.moved_on = False  # seen at a hook past the entry hook
        self.entered = set()  # (table, hook) of each hooked chain entered
        self.last_entered = None
        self.kinship = 0  # how surely a probe's (PacketAssembler's `kinship`)
        self._events = None

    @property
    def packet_id(self):
        """'tcp-57266-2213090174', '.2' on for the key's second packet (worked out for the packets asked about only)."""
        base = legacy_id(self.key) if isinstance(self.key, tuple) else self.key
        return base if self.occurrence == 1 else "%s.%d" % (base, self.occurrence)

    @property
    def events(self):
        """The TraceEvents of every hop (made now: only kept packets need them)."""
        if self._events is None:
            self._events = [event for run in self.runs for event in run.events()]
        return self._events

    @property
    def first(self):
        return self.events[0]

    def headers(self):
        """The distinct header dicts the packet printed (it changes them through NAT)."""
        return [run.packet for run in self.runs]


def legacy_id(key):
    """('tcp', '57266', '2213090174', None, None) -> 'tcp-57266-2213090174'."""
    proto, rest = key[0], key[1:]
    return "-".join([proto or "ip"] + [str(part) for part in rest if part is not None])


class PacketAssembler:
    """Feed events in order; `close()` at the end; `kept` then holds the packets, in order."""

    def __init__(self, max_packets, keep, chain_hooks=None, kinship=None):
        self.max_packets = max_packets
        self.keep = keep  # packet -> bool: the filter
        # packet -> 0, 1 or 2: how surely it is a probe's (Flow.kinship). Where a probe was sent, the surest packets
        # the host saw are kept, before and without the others: a flood on the port cannot crowd them out, and a
        # stranger's packet never decides. Packets not known to be the probe's at all are left out, and counted.
        self.kinship = kinship
        self.chain_hooks = chain_hooks or {}  # (table, chain) -> hook, from the host's ruleset
        self.kept = []
        self.seen = 0
        self.matched = 0
        self.hops_skipped = 0  # hops past MAX_HOPS of a packet, left out
        self.strangers = 0  # packets on the port left out as not (or less surely) the probe's
        self.matched_kin = [0, 0, 0]  # packets matched, by kinship
        self.kept_kin = [0, 0, 0]  # packets kept, by kinship
        self._open = OrderedDict()
        self._occurrences = {}
        self._chains = Memo(self._chain_info)

    def _chain_info(self, hop):
        """(hook or None, the hooked chain entered or None, whether the hop takes the hook of the hop before: a
        legacy user chain, under the built-in chain that jumped to it) of a hop shape."""
        table, chain, base_chain = hop[0], hop[1], hop[2]
        hooked = base_chain or chain
        hook = self.chain_hooks.get((table, hooked)) or hook_of_chain(hooked)
        in_hooked = chain == base_chain if base_chain else chain in BUILTIN_CHAIN_HOOK
        return hook, (table, hook) if in_hooked else None, hook is None and not base_chain

    def add_run(self, run):
        """Hops that share one header dict (one packet's, consecutive), in order."""
        key = run.key
        packet = self._open.get(key)
        if packet is not None:
            self._open.move_to_end(key)
            if self._new_packet(packet, run):
                self._close(key)
                packet = None
            elif len(packet.hooks) >= MAX_HOPS:
                self.hops_skipped += len(run.hops)
                return
        hooks, previous = [], None
        for info in map(self._chains.__getitem__, run.hops):
            if info == previous:
                # The same hook and chain entered as the hop before, which did not start over: neither does this
                # one, and it changes nothing the hop before did not (most hops of a log; the walk below is the
                # parser's costliest Python per hop).
                hooks.append(hooks[-1])
                continue
            previous = info
            hook, entering, inherits = info
            if inherits:
                hook = hooks[-1] if hooks else (packet.hooks[-1] if packet is not None and packet.hooks else None)
            if packet is None:
                packet = self._start(key, hook)
            elif (entering or hook != (hooks[-1] if hooks else packet.hooks[-1])) and self._starts_over(
                    packet, hook, entering):
                # Only a new hook or a hooked chain entered can start a new pass: split the run there.
                self._split(packet, run, hooks)
                packet = self._restart(key, hook)
                hooks = []
            if hook is not None and hook != packet.entry_hook:
                packet.moved_on = True
            position = HOOK_POSITION.get(hook, -1)
            if position > packet.last_position:
                packet.last_position = position
            if entering:
                packet.entered.add(entering)
                packet.last_entered = entering
            hooks.append(hook)
        packet.runs.append(run)
        packet.hooks.extend(hooks)

    @staticmethod
    def _new_packet(packet, run):
        """A key seen again after a quiet second, or nft's trace id reused with another IP ID."""
        uptime, last_uptime = run.uptime(0), packet.runs[-1].uptime(-1)
        if uptime is not None and last_uptime is not None and (
                uptime - last_uptime > QUIET_SECONDS or uptime < last_uptime):
            return True
        if not isinstance(run.key, str):
            return False
        last = packet.runs[-1].packet
        ours, theirs = run.packet.get("ip_id"), last.get("ip_id")
        return last is not run.packet and ours is not None and theirs is not None and ours != theirs

    @staticmethod
    def _split(packet, run, hooks):
        """The hops of `run` before the split belong to the packet that ends there."""
        if hooks:
            head = run.split(len(hooks))
            packet.runs.append(head)
            packet.hooks.extend(hooks)

    def _restart(self, key, hook):
        self._close(key)
        return self._start(key, hook)

    @staticmethod
    def _starts_over(packet, hook, entering):
        if HOOK_POSITION.get(hook, 9) < packet.last_position:
            return True
        if hook in ENTRY_HOOKS and (packet.moved_on or hook != packet.entry_hook):
            return True  # a pass starts at prerouting or output, and never comes back to either
        # A hooked chain entered again after another one: the same key's next packet.
        return entering is not None and entering != packet.last_entered and entering in packet.entered

    def _start(self, key, hook):
        self.seen += 1
        count = self._occurrences.get(key, 0) + 1
        self._occurrences[key] = count
        packet = Packet(key, count)
        packet.entry_hook = hook
        self._open[key] = packet
        if len(self._open) > OPEN_LIMIT:
            self._close(next(iter(self._open)))
        return packet

    def _close(self, key):
        packet = self._open.pop(key)
        if len(self._occurrences) > OPEN_LIMIT * 4:
            # Only keys still open can come back soon enough to need a ".2"; forget the rest.
            self._occurrences = {k: v for k, v in self._occurrences.items()
                                 if k == key or k in self._open}
        if self.keep(packet):
            self.matched += 1
            packet.kinship = self.kinship(packet) if self.kinship else 0
            self.matched_kin[packet.kinship] += 1
            if len(self.kept) < self.max_packets:
                self.kept.append(packet)
                self.kept_kin[packet.kinship] += 1
            elif any(self.kept_kin[:packet.kinship]):
                # In place of the latest packet kept that is less surely the probe's. Looked for only where there
                # is one: a scan of every kept packet at each packet past max_packets took a 500 MB log's parse
                # from 3.8 s to 7 s.
                index = next(index for index in range(len(self.kept) - 1, -1, -1)
                             if self.kept[index].kinship < packet.kinship)
                self.kept_kin[self.kept.pop(index).kinship] -= 1
                self.kept.append(packet)
                self.kept_kin[packet.kinship] += 1

    def close(self):
        while self._open:
            self._close(next(iter(self._open)))
        if self.kinship:
            surest = max(kin for kin in (2, 1, 0) if self.matched_kin[kin] or kin == 0)
            self.strangers = self.matched - (self.matched_kin[surest] if surest else 0)
            self.kept = [packet for packet in self.kept if surest and packet.kinship == surest]
        self.kept.sort(key=lambda packet: packet.runs[0].line_no)
        return self.kept
