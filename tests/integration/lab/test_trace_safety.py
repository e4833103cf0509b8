"""trace_rule under faults and concurrency, on each backend of the kube lab: a module killed at any point of a
first `present` or of a re-arm leaves no rule without its expiry, and eight runs on one namespace at the same time
take turns (one lock per namespace): no duplicate rule, one expiry per flow, `absent` always clean."""

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
        results = at_once([(host, dict(FLOW_A, expires=60))] * 6 + [(host, dict(FLOW_B, expires=60))] * 2)
        assert all(result["_status"] in ("CHANGED", "SUCCESS") for result in results), [r["_stdout"] for r in results]
        flow_a, flow_b = results[0]["flow_id"], results[6]["flow_id"]
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


def killed_present(host, tmp_path, when, args=None):
    """trace_rule present run as a process of ours in the host's namespace, killed (SIGKILL) as soon as
    `when(host)` holds; whether the kill came before the module ended."""
    path = tmp_path / ("args-%s.json" % host)
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args or dict(FLOW_A, expires=4)}))
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "build", "collections"))
    proc = subprocess.Popen(["ip", "netns", "exec", "pp-" + host, os.path.join(BIN, "python"), MODULE, str(path)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while proc.poll() is None and not when(host) and time.monotonic() < deadline:
        time.sleep(0.002)
    in_time = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return in_time


def after(seconds):
    """A test of killed_present: `seconds` have passed since it was made (the module's start)."""
    start = time.monotonic()
    return lambda _host: time.monotonic() - start >= seconds


def nothing_left_by(host, seconds):
    """Whether every rule, sleeper and record of ours is gone from the host within `seconds` (the expiry's work)."""
    deadline = time.monotonic() + seconds
    while (ours(host) or traces_left("pp-" + host) or sleepers(host)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return not (ours(host) or traces_left("pp-" + host) or sleepers(host))


def on_every_node(test):
    """Run test(host) on the three nodes (one backend each) at once, each in its own namespace; the hosts where it
    failed, with what it said."""
    failures = {}

    def one(host):
        try:
            test(host)
        except AssertionError as exc:
            failures[host] = str(exc)
        finally:
            module(host, "packetpath.linux.trace_rule", {"state": "absent", "all": True})

    threads = [threading.Thread(target=one, args=(host,)) for host in sorted(NODES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    return failures


def module_seconds(host, tmp_path, args):
    """How long one run of trace_rule with `args` takes on the host, as killed_present starts it (not killed)."""
    start = time.monotonic()
    killed_present(host, tmp_path, lambda _host: False, args)
    took = time.monotonic() - start
    module(host, "packetpath.linux.trace_rule", {"state": "absent", "all": True})
    return took


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


@pytest.mark.parametrize("fraction", [0.2, 0.4, 0.6, 0.8, 0.95])
def test_a_kill_at_any_time_of_a_first_present_leaves_nothing_once_the_expiry_fires(fraction, tmp_path):
    """Kills spread over a first `present`'s whole run (its length measured on each node first), on the three
    backends at once."""
    args = dict(FLOW_A, expires=3)

    def test(host):
        killed_present(host, tmp_path, after(fraction * module_seconds(host, tmp_path, args)), args)
        assert nothing_left_by(host, 12), "a rule of ours outlived its expiry: %s" % (ours(host) or sleepers(host))

    assert on_every_node(test) == {}


def rule_at_rate(rate):
    return lambda host: any("--limit %d/sec" % rate in line or "limit rate %d/second" % rate in line
                            for line in ours(host))


def expiry_record(host):
    directory = os.path.join(records_dir("pp-" + host), "expiry")
    for name in os.listdir(directory) if os.path.isdir(directory) else ():
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            continue  # being replaced
    return None


REARM_POINTS = {
    # The new sleeper started beside the old one, the new expiry recorded, the first rule at the new rate in.
    "two_sleepers": lambda first: lambda host: 2 in sleepers(host).values(),
    "new_expiry_recorded": lambda first: lambda host: (expiry_record(host) or first)["expires_at"] != first["expires_at"],
    "new_rule_in": lambda first: rule_at_rate(20),
}


@pytest.mark.parametrize("point", sorted(REARM_POINTS) + [0.2, 0.5, 0.8])
def test_a_kill_at_any_point_of_a_re_arm_leaves_a_deadline(point, tmp_path):
    """Issue #27: a kill while a second `present` of the same flow re-armed it (a new rate) left its rules without
    any expiry in 3 of 57 kills. Killed at each step (and at times spread over its run), the rules still go."""
    first, again = dict(FLOW_A, expires=6, rate=10), dict(FLOW_A, expires=3, rate=20)

    def test(host):
        took = module_seconds(host, tmp_path, again) if not isinstance(point, str) else None
        armed = module(host, "packetpath.linux.trace_rule", first)
        assert armed["_status"] == "CHANGED", armed["_stdout"]
        when = REARM_POINTS[point](expiry_record(host)) if took is None else after(point * took)
        killed_present(host, tmp_path, when, again)
        assert nothing_left_by(host, 15), "a rule of ours outlived both expiries: %s" % (ours(host) or sleepers(host))

    assert on_every_node(test) == {}


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
