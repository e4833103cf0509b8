"""A diagnosis's two executions per host: trace_rule capture=true arms (trace on, a detached live capture, the
counters), trace_results source=capture trace_off=true collects and switches the trace off; trace_rule state=absent
ends whatever a failed collection left. Nothing of a capture
outlives its trace: not when it is collected, not when the trace is switched off without collecting, not when the
play dies and the expiry fires."""

import os
import re
import signal
import subprocess
import time

import pytest
from labtools import module, records_dir, running_in, send, traces_left

from ansible_collections.packetpath.linux.plugins.module_utils.capture import fetch, sources

pytestmark = pytest.mark.usefixtures("kube")

NODES = {"node1": "198.51.100.11", "node2": "198.51.100.12", "node3": "198.51.100.13"}  # legacy, iptables-nft, nft
FLOW = {"proto": "udp", "dport": "9999"}


def capture_files(host):
    """The capture spool and records of the host's namespace."""
    directory = os.path.join(records_dir("pp-" + host), "capture")
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def alive(pid):
    """The process runs (a zombie where PID 1 does not reap has ended)."""
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


@pytest.mark.parametrize("host", sorted(NODES))
def test_arm_then_collect_reads_the_packets_and_leaves_nothing(host):
    armed = module(host, "packetpath.linux.trace_rule", dict(FLOW, expires=120, capture=True))
    assert armed["_status"] == "CHANGED", armed["_stdout"]
    assert armed["capture"]["source"] == {"node1": "nflog", "node2": "xtables_monitor", "node3": "nft_monitor"}[host]
    assert capture_files(host) and alive(armed["capture"]["pid"])
    program = armed["capture"]["drop_reasons"]["pid"]  # the kernel's drop reasons, read beside the capture
    assert alive(program)
    send("pp-client", "udp", NODES[host], 9999)
    got = module(host, "packetpath.linux.trace_results", dict(FLOW, source="capture", explain=True, trace_off=True))
    assert got["_status"] == "CHANGED", got["_stdout"]  # the trace switched off in the same execution
    assert got["trace_off"]["removed"] and got["trace_off"]["expiry"], got["trace_off"]
    assert traces_left("pp-" + host) == []
    assert got["source"] == "capture" and got["packets"], got["_stdout"]
    # No neighbour was being asked for: nothing to wait for before the capture ended.
    assert got["capture"] == {"complete": True, "losses": [], "neighbours_awaited": {
        "entries": [], "resolved": True, "seconds": got["capture"]["neighbours_awaited"]["seconds"]}}, got["capture"]
    assert got["capture"]["neighbours_awaited"]["seconds"] < 0.5
    # The counters were read when the capture started, and again now.
    assert got["finding"]["seen"] and got["finding"]["counters"].get("IpInReceives", 0) >= 1, got["finding"]
    assert got["drop_reasons"]["read"] and isinstance(got["drop_reasons"]["drops"], list), got["drop_reasons"]
    assert capture_files(host) == [] and not alive(armed["capture"]["pid"]) and not alive(program)
    off = module(host, "packetpath.linux.trace_rule", dict(FLOW, state="absent"))
    assert off["_status"] == "SUCCESS", off["_stdout"]  # nothing was left to switch off


def test_switching_the_trace_off_ends_a_capture_nobody_collected():
    armed = module("node3", "packetpath.linux.trace_rule", dict(FLOW, expires=120, capture=True))
    pid = armed["capture"]["pid"]
    off = module("node3", "packetpath.linux.trace_rule", dict(FLOW, state="absent"))
    assert off["_status"] == "CHANGED" and off["capture"]["discarded"] == [armed["flow_id"]], off["_stdout"]
    deadline = time.time() + 5
    while alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not alive(pid) and capture_files("node3") == [] and traces_left("pp-node3") == []
    assert running_in("pp-node3", "nft monitor trace") == []


@pytest.mark.parametrize("stopped", [False, True], ids=["left alone", "reader and program stopped"])
def test_a_capture_ends_with_its_trace_when_the_play_dies(stopped):
    """The expiry removes the trace and the capture's files. It ends the reader and the drop reasons' program before
    it removes their files: a CI run found a done file the reader wrote after they went (its own end is due at about
    the same time, not surely first). Stopped (SIGSTOP), neither would ever end by itself."""
    armed = module("node2", "packetpath.linux.trace_rule", dict(FLOW, expires=4, capture=True))
    assert armed["_status"] == "CHANGED", armed["_stdout"]
    reader, program = armed["capture"]["pid"], armed["capture"]["drop_reasons"]["pid"]
    if stopped:
        for pid in (reader, program):
            os.kill(pid, signal.SIGSTOP)
    deadline = time.time() + 20
    while (traces_left("pp-node2") or capture_files("node2") or alive(reader) or alive(program)) and \
            time.time() < deadline:
        time.sleep(0.5)
    assert traces_left("pp-node2") == [] and capture_files("node2") == []
    assert not alive(reader) and not alive(program)
    assert running_in("pp-node2", "xtables-monitor --trace") == []


def test_check_mode_starts_nothing_and_bad_input_changes_nothing():
    checked = module("node3", "packetpath.linux.trace_rule", dict(FLOW, expires=120, capture=True), check=True)
    assert checked["capture"] == {"would_start": "nft_monitor", "drop_reasons": {"would_start": "/usr/bin/bpftrace"}}
    assert capture_files("node3") == []
    never = module("node3", "packetpath.linux.trace_rule", dict(FLOW, expires=0, capture=True))
    assert never["_status"] == "FAILED" and "capture=True: needs expires" in never["msg"], never["_stdout"]
    nothing = module("node3", "packetpath.linux.trace_results", dict(FLOW, source="capture"))
    assert nothing["_status"] == "FAILED" and "no capture of this flow" in nothing["msg"], nothing["_stdout"]
    assert traces_left("pp-node3") == [] and capture_files("node3") == []
    elsewhere = module("node3", "packetpath.linux.trace_results", dict(FLOW, source="dmesg", trace_off=True))
    assert elsewhere["_status"] == "FAILED" and "trace_off=True: goes with source=capture" in elsewhere["msg"], \
        elsewhere["_stdout"]


@pytest.mark.parametrize("host, monitor", [("node2", "xtables-monitor --trace"), ("node3", "nft monitor trace")])
def test_a_killed_reader_takes_its_monitor_along_and_the_collection_says_packets_are_missing(host, monitor):
    """Issue #27: a reader killed by SIGKILL left its monitor running for good, and the collection then reported a
    complete capture with no packet."""
    armed = module(host, "packetpath.linux.trace_rule", dict(FLOW, expires=120, capture=True))
    assert armed["_status"] == "CHANGED", armed["_stdout"]
    os.kill(armed["capture"]["pid"], 9)
    deadline = time.time() + 5
    while running_in("pp-" + host, monitor) and time.time() < deadline:
        time.sleep(0.1)
    assert running_in("pp-" + host, monitor) == [], "the monitor outlived its reader"
    got = module(host, "packetpath.linux.trace_results", dict(FLOW, source="capture", trace_off=True))
    assert got["_status"] == "CHANGED" and got["capture"]["complete"] is False, got["_stdout"]
    assert "ended before it was collected, without finishing its spool" in got["capture"]["losses"][0]
    assert "ended before it was collected" in got["_stderr"], got["_stderr"]  # a warning too
    assert traces_left("pp-" + host) == [] and capture_files(host) == []


@pytest.mark.parametrize("host", sorted(NODES))
def test_a_stopped_reader_makes_the_capture_incomplete_and_is_ended_with_its_monitor(host):
    """Issue #42: a reader stopped (SIGSTOP) while packets came was reported complete with half of them, after a
    10 s stall, and outlived the collection and the trace. Now the collection sees it stopped, says what is missing,
    and ends it (woken to take its SIGTERM, so its monitor goes too)."""
    armed = module(host, "packetpath.linux.trace_rule", dict(FLOW, expires=120, capture=True, drop_reasons="never"))
    assert armed["_status"] == "CHANGED", armed["_stdout"]
    reader = armed["capture"]["pid"]
    os.kill(reader, signal.SIGSTOP)
    send("pp-client", "udp", NODES[host], 9999)
    started = time.monotonic()
    got = module(host, "packetpath.linux.trace_results", dict(FLOW, source="capture", trace_off=True))
    assert got["_status"] == "CHANGED" and got["capture"]["complete"] is False, got["_stdout"]
    assert got["capture"]["losses"] == [
        "the capture's reader (pid %d) did not finish its spool when asked (it is stopped): packets it had not "
        "written yet are missing" % reader], got["capture"]
    assert time.monotonic() - started < 9.5  # no wait for a reader that cannot answer (END_TIMEOUT is 10 s)
    assert not alive(reader) and running_in("pp-" + host, "monitor") == []
    assert traces_left("pp-" + host) == [] and capture_files(host) == []


@pytest.mark.parametrize("host, monitor", [("node2", "xtables-monitor --trace"), ("node3", "nft monitor trace")])
def test_a_stopped_monitor_makes_the_capture_incomplete_and_is_ended(host, monitor):
    """Issue #42: the monitor stopped (SIGSTOP) under a live reader read none of the packets that came, its socket
    filling, while the reader, alive, saw no line and no failure: the capture was called complete with what it had
    before. Now the reader finds the monitor stopped with the events unread when it ends, and says so."""
    armed = module(host, "packetpath.linux.trace_rule", dict(FLOW, expires=120, capture=True, drop_reasons="never"))
    assert armed["_status"] == "CHANGED", armed["_stdout"]
    pids = running_in("pp-" + host, monitor)
    assert len(pids) == 1, pids
    os.kill(int(pids[0]), signal.SIGSTOP)
    for _packet in range(3):
        send("pp-client", "udp", NODES[host], 9999)
    got = module(host, "packetpath.linux.trace_results", dict(FLOW, source="capture", trace_off=True))
    assert got["_status"] == "CHANGED" and got["capture"]["complete"] is False, got["_stdout"]
    assert any(re.search(r"monitor was stopped with \d+ bytes of events unread when the capture ended: the events "
                         r"it had not printed are missing", loss) for loss in got["capture"]["losses"]), got["capture"]
    assert running_in("pp-" + host, monitor) == [] and not alive(armed["capture"]["pid"])
    assert traces_left("pp-" + host) == [] and capture_files(host) == []


@pytest.mark.parametrize("host, monitor", [("node2", "xtables-monitor --trace"), ("node3", "nft monitor trace")])
def test_a_killed_monitor_ends_the_capture_and_the_collection_says_so(host, monitor):
    """The fault matrix's other half: the monitor program killed under its reader (as xtables-monitor ends itself
    on ENOBUFS). The reader records that its source ended, and the collection says packets after it are missing."""
    armed = module(host, "packetpath.linux.trace_rule", dict(FLOW, expires=120, capture=True, drop_reasons="never"))
    assert armed["_status"] == "CHANGED", armed["_stdout"]
    pids = running_in("pp-" + host, monitor)
    assert len(pids) == 1, pids
    os.kill(int(pids[0]), 9)
    got = module(host, "packetpath.linux.trace_results", dict(FLOW, source="capture", trace_off=True))
    assert got["_status"] == "CHANGED" and got["capture"]["complete"] is False, got["_stdout"]
    assert "ended on its own before it was collected (rc=-9)" in got["capture"]["losses"][0], got["capture"]
    assert alive(armed["capture"]["pid"]) is False
    assert traces_left("pp-" + host) == [] and capture_files(host) == []


@pytest.mark.parametrize("host, argv", [("node2", ["xtables-monitor", "--trace"]), ("node3", ["nft", "monitor", "trace"])])
def test_a_monitor_is_ready_once_it_listens_not_after_a_fixed_sleep(host, argv):
    """The capture's start waits for the monitor's netlink subscription (issue #28: no fixed sleeps where an event
    can be waited for); a process that never subscribes is not taken for ready."""
    for program, subscribes in ((argv, True), (["sleep", "5"], False)):
        with subprocess.Popen(["ip", "netns", "exec", "pp-" + host] + program, stdout=subprocess.DEVNULL) as proc:
            try:
                assert sources.listening(proc.pid, fetch.NFNLGRP_NFTRACE, 5.0 if subscribes else 0.3) is subscribes
            finally:
                proc.terminate()
