# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fetch a trace and say, per packet, where it went and where and why it stopped.

source -> lines -> parser (one per format) -> events -> packets -> hops -> flowgraph.
Everything streams: memory grows with the packets kept, not with the input.
"""

import gc
import ipaddress
import math
import re
import socket
import time
from contextlib import contextmanager
from datetime import datetime

from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import OptionError
from ansible_collections.packetpath.linux.plugins.module_utils.capture import flowgraph, hops, sources, summary
from ansible_collections.packetpath.linux.plugins.module_utils.capture.hooks import EMPTY, HookInventory
from ansible_collections.packetpath.linux.plugins.module_utils.capture.legacy_rules import RULE_SOURCE, LegacyRules
from ansible_collections.packetpath.linux.plugins.module_utils.capture.packets import PacketAssembler
from ansible_collections.packetpath.linux.plugins.module_utils.capture.parsers.kernel_log import KernelLogParser
from ansible_collections.packetpath.linux.plugins.module_utils.capture.parsers.nft_monitor import NftMonitorParser
from ansible_collections.packetpath.linux.plugins.module_utils.capture.parsers.xtables_monitor import (
    XtablesMonitorParser,
)
from ansible_collections.packetpath.linux.plugins.module_utils.trace import backends

PARSERS = {"kernel_log": KernelLogParser, "xtables_monitor": XtablesMonitorParser, "nft_monitor": NftMonitorParser}
SOURCES = ("auto", "capture", "nflog", "kernel_log", "journal", "dmesg", "file", "xtables_monitor", "nft_monitor")
LIVE_SOURCES = ("nflog", "xtables_monitor", "nft_monitor")
# NFLOG messages are written out as the kernel log's lines for the same hops: one legacy parser either way.
SOURCE_FORMAT = {"nflog": "kernel_log", "kernel_log": "kernel_log", "journal": "kernel_log", "dmesg": "kernel_log",
                 "xtables_monitor": "xtables_monitor", "nft_monitor": "nft_monitor"}
# Every backend is read live, in the host's own namespace (legacy: NFLOG group 0, see trace_rule's binding).
BACKEND_SOURCE = {"iptables_legacy": "nflog", "iptables_nft": "xtables_monitor", "nftables": "nft_monitor"}
MONITOR_ARGV = {"xtables_monitor": ["xtables-monitor", "--trace"], "nft_monitor": ["nft", "monitor", "trace"]}
NFNLGRP_NFTRACE = 9  # linux/netfilter/nfnetlink.h: where nftables' trace events (both monitors) are sent
_DETECT_LINES = 2000


def moment(option, value):
    """A point in time -> (epoch or None, uptime or None).

    Accepts the `marker` trace_rule returns ({time, epoch, uptime}), seconds since
    the epoch, or an ISO 8601 time (without a zone: this host's local time).
    """
    if value in (None, ""):
        return None, None
    if isinstance(value, dict):
        epoch, uptime = value.get("epoch"), value.get("uptime")
        if epoch is None and value.get("time"):
            epoch = moment(option, value["time"])[0]
        if epoch is None and uptime is None:
            raise OptionError(option, value, "a marker needs epoch, time or uptime")
        return (None if epoch is None else _seconds(option, value, epoch)), (
            None if uptime is None else _seconds(option, value, uptime))
    text = str(value).strip()
    try:
        float(text.lstrip("@"))
    except ValueError:
        pass  # not a number: an ISO 8601 time, or nothing
    else:
        return _seconds(option, value, text.lstrip("@")), None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp(), None
    except ValueError:
        raise OptionError(option, value, "not a time (ISO 8601, seconds since the epoch, or the marker of trace_rule)")


def _seconds(option, value, number):
    """A finite number of seconds, or the option's error (float() takes nan and inf; no line is that late or early)."""
    try:
        seconds = float(number)
    except (TypeError, ValueError):
        raise OptionError(option, value, "not a time (a finite number of seconds since the epoch)")
    if not math.isfinite(seconds):
        raise OptionError(option, value, "not a time (a finite number of seconds since the epoch)")
    return seconds


class TimeWindow:
    """since <= line < until, on the kernel's clock where both sides have it (same boot), else wall time."""

    def __init__(self, since, until, kernel_clock):
        self.since_epoch, self.since_uptime = moment("since", since)
        self.until_epoch, self.until_uptime = moment("until", until)
        self.kernel_clock = kernel_clock
        bounds = (self.since_epoch, self.since_uptime, self.until_epoch, self.until_uptime)
        self.active = any(bound is not None for bound in bounds)
        self.uses_wall_time = self.since_epoch is not None or self.until_epoch is not None

    def admits_time(self, epoch, uptime):
        if self.kernel_clock and uptime is not None and (
                self.since_uptime is not None or self.until_uptime is not None):
            return self._inside(self.since_uptime, self.until_uptime, uptime)
        if epoch is not None:
            return self._inside(self.since_epoch, self.until_epoch, epoch)
        return True

    @staticmethod
    def _inside(low, high, value):
        return (low is None or value >= low) and (high is None or value < high)


def detect_format(lines):
    """(format, the lines read to find out) from the first lines that look like a trace."""
    head = []
    for line in lines:
        head.append(line)
        text = line.lstrip()
        if text.startswith("trace id "):
            return "nft_monitor", head
        if text.startswith("PACKET: ") or (text.startswith("TRACE: ") and text.split(" ", 2)[1] in ("2", "10")):
            return "xtables_monitor", head
        if "TRACE: " in line:
            return "kernel_log", head
        if len(head) >= _DETECT_LINES:
            break
    return "kernel_log", head


def _chain(head, rest):
    yield from head
    yield from rest


_PACKET_NEEDLE = re.compile(rb" (ID|FLOWLBL)=(\d+) ")


def _packet_needles(line):
    """What a legacy packet's every line carries whatever NAT did: its IP ID (IPv6: flow label)."""
    found = _PACKET_NEEDLE.search(line.split(b" PROTO=", 1)[0])
    return [b" %s=%s " % found.groups()] if found else []


def kernel_log_needles(flow, packet_id):
    """Texts that lines of the wanted packets contain, for finding them without parsing the rest; None if none."""
    if packet_id is not None:
        parts = packet_id.split(".")[0].split("-")
        if len(parts) >= 2 and parts[1].isdigit():
            return [b" ID=%s " % parts[1].encode(), b"FLOWLBL=%s " % parts[1].encode()]
        return None
    if flow is None:
        return None
    if flow.sport and flow.sport[0] == flow.sport[1]:
        return [b"SPT=%d " % flow.sport[0]]
    for key, network in (("SRC", flow.src), ("DST", flow.dst)):
        if network:
            net = ipaddress.ip_network(network)
            if net.num_addresses == 1:
                # The kernel log prints IPv6 addresses in full.
                address = net.network_address.exploded if net.version == 6 else str(net.network_address)
                return [("%s=%s " % (key, address)).encode()]
    if flow.dport and flow.dport[0] == flow.dport[1]:
        return [b"DPT=%d " % flow.dport[0]]
    return None


def choose_source(runner, source, flow):
    """The source to read, and why: `auto` follows the backend holding this collection's rules."""
    if source != "auto":
        return source, "chosen by the source option"
    holding = [(b.name, r.flow_id) for b in backends.installed(runner) for r in b.list_rules()]
    if not holding:
        raise OptionError("source", "auto", "no trace rule of this collection on this host to follow; switch one on "
                          "with packetpath.linux.trace_rule, or name the source")
    wanted = flow.flow_id if flow is not None else None
    backend = next((name for name, flow_id in holding if flow_id == wanted), holding[0][0])
    return BACKEND_SOURCE[backend], "this collection's trace rules are in %s" % backend


def _lines(runner, source, path, duration, ready_file, stop_file, window):
    if source == "file":
        if not path:
            raise OptionError("source", "file", "give path")
        return sources.read_file(path), None
    if source == "kernel_log":
        return sources.read_file(path or sources.kernel_log_file()), None
    if source == "dmesg":
        return sources.read_kernel_ring(runner), None
    if source == "nflog":
        # Imported here: it brings pyroute2 (~240 ms on 0.7), which no other source needs.
        from ansible_collections.packetpath.linux.plugins.module_utils.capture import nflog_reader  # pylint: disable=import-outside-toplevel
        if not nflog_reader.HAS_PYROUTE2:
            raise OptionError("source", source, "reading NFLOG needs pyroute2, not installed on this host; read the "
                              "kernel log instead (source=dmesg), which every namespace of the host shares")
        stream = nflog_reader.NflogStream(duration=duration, ready_file=ready_file, stop_file=stop_file)
        return stream.lines(), stream
    if source == "journal":
        journalctl = runner.which("journalctl")
        if not journalctl:
            raise OptionError("source", "journal", "journalctl is not installed on this host")
        stream = sources.Stream(sources.journal_args(journalctl, window.since_epoch))
        return sources.read_journal(stream.lines()), stream
    program = runner.which(MONITOR_ARGV[source][0])
    if not program:
        raise OptionError("source", source, "%s is not installed on this host" % MONITOR_ARGV[source][0])
    stream = sources.Stream([program] + MONITOR_ARGV[source][1:], duration=duration, ready_file=ready_file,
                            stop_file=stop_file, group=NFNLGRP_NFTRACE)
    return stream.lines(), stream


def live_lines(runner, backend, duration, ready_file, stop_file):
    """(source, lines not read yet, the stream that reads them) of the live source that follows a backend's trace in
    this namespace."""
    source = BACKEND_SOURCE[backend]
    lines, stream = _lines(runner, source, None, duration, ready_file, stop_file, TimeWindow(None, None, False))
    return source, lines, stream


@contextmanager
def _collector_paused():
    """The cyclic garbage collector off while a trace is read, back as it was after.

    A parse makes millions of short-lived tuples, lists and runs and no reference cycles, so the collector's passes
    over them find nothing and cost a fifth of a 100 MB log's parse (1.59-1.63 s with it, 1.23-1.32 s without).
    Memory is still returned as each object's last reference goes.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _host_ruleset(runner, fmt):
    """(LegacyRules, HookInventory) of this host now, for the format's backend."""
    if fmt == "kernel_log":
        legacy = backends.make("iptables_legacy", runner)
        tables = {family: legacy.legacy_tables(family) for family in ("ipv4", "ipv6")}
        saves = {family: legacy.save(family) for family in ("ipv4", "ipv6")}
        return LegacyRules(saves), HookInventory.legacy(tables, "host")
    nft = runner.which("nft")
    if not nft:
        return LegacyRules({}), EMPTY
    rc, out, _err = runner.run([nft, "list", "chains"])
    return LegacyRules({}), (HookInventory.nft(out, "host") if rc == 0 else EMPTY)


def _local_interfaces():
    return [name for _index, name in socket.if_nameindex()]


class TraceReader:
    """Lines of one format -> explained packets.  Knows nothing of where the lines come from,
    so the unit tests feed it recorded output with the ruleset recorded beside it."""

    def __init__(self, fmt, flow=None, window=None, max_packets=100, packet_id=None, interfaces=None,
                 rules=None, inventory=EMPTY):
        self.fmt = fmt
        self.flow = flow
        self.window = window or TimeWindow(None, None, False)
        self.packet_id = packet_id
        self.interfaces = interfaces
        self.rules = rules or LegacyRules({})
        self.inventory = inventory
        self.parser = PARSERS[fmt]()
        kinship = self._kinship if flow is not None and flow.probe_src else None
        self.assembler = PacketAssembler(max_packets, self._keep, inventory.chain_hooks(), kinship)
        self.elsewhere = 0
        self.counts = {}

    def _keep(self, packet):
        if self.flow is None and self.interfaces is None and self.packet_id is None:
            return True
        if self.packet_id is not None and packet.packet_id != self.packet_id:
            return False
        headers = packet.headers()
        if self.interfaces is not None and any(h.get(side) and h[side] not in self.interfaces
                                               for h in headers for side in ("in", "out")):
            self.elsewhere += 1
            return False
        return self.flow is None or any(self.flow.matches(h) for h in headers)

    def _kinship(self, packet):
        return max([0] + [self.flow.kinship(h) for h in packet.headers()])

    def _admits(self, run):
        """A run lasts microseconds: its first hop's time stands for all of its hops."""
        first = run.events()[0] if self.window.uses_wall_time else None
        if first is not None and first.stamp:
            self.parser.resolve(first)
        return self.window.admits_time(first.time if first is not None else None, run.uptime(0))

    def read(self, lines):
        add, window = self.assembler.add_run, self.window
        events = outside = 0
        with _collector_paused():
            for run in self.parser.runs(lines):
                if window.active and not self._admits(run):
                    outside += len(run.hops)
                    continue
                events += len(run.hops)
                add(run)
        self.counts = {"lines_read": self.parser.lines_read, "trace_events": events, "events_outside_window": outside}
        packets = self.assembler.close()
        for packet in packets:
            for event in packet.events:
                if event.stamp:
                    self.parser.resolve(event)
        return self._explain(packets)

    @property
    def stats(self):
        assembler = self.assembler
        return dict(self.counts, packets_seen=assembler.seen, packets_matched=assembler.matched,
                    packets_kept=len(assembler.kept), packets_elsewhere=self.elsewhere,
                    hops_skipped=assembler.hops_skipped, packets_of_strangers=assembler.strangers,
                    other_lines=self.parser.other_lines,
                    unparsable_lines=self.parser.unparsable, unparsable_samples=self.parser.samples)

    @property
    def truncated(self):
        assembler = self.assembler  # strangers left out beside a probe's packets are not a loss
        return assembler.matched - assembler.strangers > len(assembler.kept) or assembler.hops_skipped > 0

    def _explain(self, packets):
        built = [(packet, hops.build_hops(packet, self.rules, self.interfaces)) for packet in packets]
        seen = {}
        for packet, packet_hops in built:
            seen.setdefault(packet.first.family, []).extend(flowgraph.seen_steps(packet_hops))
        # One reader reads one format: a family's steps are the same for each of its packets (worked out per packet,
        # they cost packets x steps: 0.6 s of a 50 MB log's 1,000 packets).
        legacy = self.fmt == "kernel_log"
        steps_of = {family: self.inventory.for_family(family, steps, legacy) for family, steps in seen.items()}
        explained = []
        for packet, packet_hops in built:
            first = packet.first
            steps = steps_of[first.family]
            entry = {
                "id": packet.packet_id,
                "family": first.family,
                "proto": first.packet.get("proto"),
                "flow": summary.flow_text(packet_hops[0]),
                "host": first.host,
                "time": first.time,
                "uptime": first.uptime,
                "hops": packet_hops,
            }
            entry.update(flowgraph.analyse(packet_hops, steps))
            entry["summary"] = summary.render(entry)
            explained.append(entry)
        return explained


class Fetch:
    """One fetch on this host: choose and open the source, read the host's ruleset, read the trace."""

    def __init__(self, runner, source="auto", path=None, fmt="auto", flow=None, since=None, until=None,
                 max_packets=100, packet_id=None, duration=10, ready_file=None, stop_file=None, host_ruleset=True,
                 this_netns_only=None):
        self.runner = runner
        self.stop_file = stop_file
        self.source = source
        self.path = path
        self.fmt = fmt
        self.flow = flow
        self.since = since
        self.until = until
        self.max_packets = max_packets
        self.packet_id = packet_id
        self.duration = duration
        self.ready_file = ready_file
        self.host_ruleset = host_ruleset
        self.this_netns_only = this_netns_only

    def run(self):
        window = TimeWindow(self.since, self.until, kernel_clock=False)  # bad times fail before anything runs
        source, reason = choose_source(self.runner, self.source, self.flow)
        window.kernel_clock = source in ("dmesg", "journal")
        lines, stream = _lines(self.runner, source, self.path, self.duration, self.ready_file, self.stop_file, window)
        fmt = SOURCE_FORMAT.get(source) if self.fmt == "auto" else self.fmt
        if fmt is None:
            fmt, head = detect_format(lines)
            lines = _chain(head, lines)
        needles = kernel_log_needles(self.flow, self.packet_id) if fmt == "kernel_log" and source in (
            "file", "kernel_log") else None
        if needles:
            lines.close()
            lines = sources.lines_of_packets(self.path or sources.kernel_log_file(), needles,
                                             _packet_needles)
        # The kernel log is shared by every namespace: keep the hops on this host's interfaces (NFLOG is this
        # namespace's own).
        only_here = self.this_netns_only if self.this_netns_only is not None else (
            fmt == "kernel_log" and source not in ("file", "nflog"))
        rules, inventory = _host_ruleset(self.runner, fmt) if self.host_ruleset else (LegacyRules({}), EMPTY)
        reader = TraceReader(fmt, flow=self.flow, window=window, max_packets=self.max_packets,
                             packet_id=self.packet_id, interfaces=set(_local_interfaces()) if only_here else None,
                             rules=rules, inventory=inventory)
        if stream is not None and source in LIVE_SOURCES:
            stream.enough = lambda: reader.assembler.seen >= self.max_packets
        started = time.time()
        packets = reader.read(lines)
        result = {
            "changed": False,
            "source": source,
            "source_reason": reason,
            "format": fmt,
            "packets": packets,
            "truncated": reader.truncated,
            "stats": dict(reader.stats, seconds=round(time.time() - started, 3)),
            "ruleset": {"read": self.host_ruleset, "hooks_from": inventory.source,
                        "rule_texts": RULE_SOURCE if rules else None},
        }
        if stream is not None and stream.returncode not in (None, 0, -15) and not packets:
            result["warnings"] = ["%s ended with rc=%s" % (stream.argv[0], stream.returncode)]
        return result
