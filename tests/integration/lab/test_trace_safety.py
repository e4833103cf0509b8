"""trace_rule under faults and concurrency, on each backend of the kube lab: a module killed at any point of
`present` leaves no rule without its expiry, and runs on one namespace at the same time take turns (one lock per
namespace): no duplicate rule, one expiry per flow, `absent` always clean."""

import json
import os
import shlex
import signal
import subprocess
import threading
import time

import pytest
from labtools import BIN, ROOT, in_netns, module, records_dir, traces_left

NODES = {"node1": "iptables_legacy", "node2": "iptables_nft", "node3": "nftables"}
FLOW_A = {"proto": "tcp", "dport": "30080"}
FLOW_B = {"proto": "udp", "dport": "9999"}
MODULE = os.path.join(ROOT, "plugins", "modules", "trace_rule.py")

pytestmark = pytest.mark.usefixtures("kube")


def ours(host):
    """Our rules in the host's namespace, as its backends list them (the nft table's lines, the tagged rules)."""
    netns = "pp-" + host
    text = in_netns(netns, ["nft", "list", "table", "inet", "packetpath"], check=False).stdout
    for save in ("iptables-legacy-save", "ip6tables-legacy-save", "iptables-nft-save", "ip6tables-nft-save"):
        text += in_netns(netns, [save], check=False).stdout
    return sorted(line.strip() for line in text.splitlines() if "packetpath:" in line)


def sleepers(host):
    """The expiry sleepers running in the host's namespace: {flow id: count}."""
    counts = {}
    for pid in subprocess.run(["ip", "netns", "pids", "pp-" + host], capture_output=True, text=True,
                              check=False).stdout.split():
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                words = handle.read().split(b"\0")
        except OSError:
            continue
        if b"packetpath-expiry" in words:
            record = json.loads(words[words.index(b"packetpath-expiry") + 1])["record"]
            flow_id = os.path.basename(record)[:-5]
            counts[flow_id] = counts.get(flow_id, 0) + 1
    return counts


def at_once(calls):
    """Run module calls from several threads at the same moment; their results in order."""
    results = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def one(index, host, args):
        barrier.wait()
        results[index] = module(host, "packetpath.linux.trace_rule", args)

    threads = [threading.Thread(target=one, args=(index,) + call) for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    return results


@pytest.mark.parametrize("host", sorted(NODES))
def test_runs_at_once_on_one_namespace_take_turns(host):
    alone = module(host, "packetpath.linux.trace_rule", dict(FLOW_A, expires=60))
    expected = ours(host)
    module(host, "packetpath.linux.trace_rule", dict(FLOW_A, state="absent"))
    try:
        results = at_once([(host, dict(FLOW_A, expires=60))] * 3 + [(host, dict(FLOW_B, expires=60))] * 2)
        assert all(result["_status"] in ("CHANGED", "SUCCESS") for result in results), [r["_stdout"] for r in results]
        flow_a, flow_b = results[0]["flow_id"], results[3]["flow_id"]
        assert [line for line in ours(host) if flow_b not in line] == expected  # no duplicate, nothing missing
        assert sleepers(host) == {flow_a: 1, flow_b: 1}
        removed = at_once([(host, dict(FLOW_A, state="absent"))] * 3)
        assert all(result["_status"] in ("CHANGED", "SUCCESS") for result in removed), [r["_stdout"] for r in removed]
        assert [result["_status"] for result in removed].count("CHANGED") == 1
        assert not [line for line in ours(host) if flow_a in line] and sleepers(host) == {flow_b: 1}
        assert alone["flow_id"] == flow_a
    finally:
        module(host, "packetpath.linux.trace_rule", {"state": "absent", "all": True})
    assert traces_left("pp-" + host) == []


def killed_present(host, tmp_path, when):
    """trace_rule present run as a process of ours in the host's namespace, killed (SIGKILL) as soon as
    `when(host)` holds; whether the kill came before the module ended."""
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(FLOW_A, expires=4)}))
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "build", "collections"))
    proc = subprocess.Popen(["ip", "netns", "exec", "pp-" + host, os.path.join(BIN, "python"), MODULE, str(args)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while proc.poll() is None and not when(host) and time.monotonic() < deadline:
        time.sleep(0.002)
    in_time = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return in_time


def expiry_recorded(host):
    """A test of `host`: has an expiry record been written? (The directory is asked for once: the test polls.)"""
    directory = os.path.join(records_dir("pp-" + host), "expiry")
    return lambda _name: os.path.isdir(directory) and any(name.endswith(".json") for name in os.listdir(directory))


@pytest.mark.parametrize("host", sorted(NODES))
@pytest.mark.parametrize("point", ["expiry_recorded", "first_rule_in"])
def test_a_kill_at_any_point_of_present_leaves_nothing_once_the_expiry_fires(host, point, tmp_path):
    when = expiry_recorded(host) if point == "expiry_recorded" else (lambda name: bool(ours(name)))
    killed_present(host, tmp_path, when)
    deadline = time.monotonic() + 20
    while (ours(host) or traces_left("pp-" + host)) and time.monotonic() < deadline:
        time.sleep(0.5)
    try:
        assert ours(host) == [] and traces_left("pp-" + host) == [], "a rule of ours outlived its expiry"
    finally:
        module(host, "packetpath.linux.trace_rule", {"state": "absent", "all": True})


def removed_behind_our_back(host):
    """One rule of ours deleted by someone else: the expiry's delete of it then finds nothing to delete."""
    netns = "pp-" + host
    if NODES[host] == "nftables":
        in_netns(netns, ["nft", "delete", "table", "inet", "packetpath"])
        return
    line = next(line for line in ours(host) if line.startswith("-A "))
    in_netns(netns, ["iptables-legacy" if NODES[host] == "iptables_legacy" else "iptables-nft", "-t", "raw",
                     "-D"] + shlex.split(line)[1:], check=True)


@pytest.mark.parametrize("host", ["node1", "node3"])
def test_a_rule_someone_else_removed_is_no_failure_of_the_expiry(host):
    # What the kernel says of a rule that is not there is no failure: the expiry deletes the rest, keeps no record.
    # (A delete that really fails is kept in the record: tests/unit/.../trace/test_expiry.py runs the sleeper.)
    armed = module(host, "packetpath.linux.trace_rule", dict(FLOW_B, expires=3))
    assert armed["_status"] == "CHANGED", armed["_stdout"]
    try:
        removed_behind_our_back(host)
        deadline = time.monotonic() + 15
        while (ours(host) or traces_left("pp-" + host)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert ours(host) == [] and traces_left("pp-" + host) == [], traces_left("pp-" + host)
        assert sleepers(host) == {}
    finally:
        module(host, "packetpath.linux.trace_rule", {"state": "absent", "all": True})


def programs(host):
    """The bpftrace programs running in the host's namespace (the drop reasons' beside a capture), by PID."""
    found = []
    for pid in subprocess.run(["ip", "netns", "pids", "pp-" + host], capture_output=True, text=True,
                              check=False).stdout.split():
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                if handle.read().split(b"\0")[0].endswith(b"bpftrace"):
                    found.append(int(pid))
        except OSError:
            continue
    return found


@pytest.mark.parametrize("host", ["node1", "node3"])
def test_the_drop_reasons_program_ends_with_trace_off_and_by_itself_before_the_expiry(host):
    flow = dict(FLOW_A, capture=True, expires=8)
    try:
        started = module(host, "packetpath.linux.trace_rule", flow)["capture"]["drop_reasons"]
        assert programs(host) == [started["pid"]], started
        module(host, "packetpath.linux.trace_rule", dict(FLOW_A, state="absent"))
        assert programs(host) == [] and traces_left("pp-" + host) == []
        # Left alone: the program ends by itself with the capture, and the expiry removes every file.
        started = module(host, "packetpath.linux.trace_rule", flow)["capture"]["drop_reasons"]
        assert programs(host) == [started["pid"]], started
        deadline = time.monotonic() + 20
        while (programs(host) or traces_left("pp-" + host)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert programs(host) == [] and traces_left("pp-" + host) == []
    finally:
        module(host, "packetpath.linux.trace_rule", {"state": "absent", "all": True})
