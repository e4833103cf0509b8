"""trace_rule under faults and concurrency, on each backend of the kube lab: a module killed at any point of a
first `present` or of a re-arm leaves no rule without its expiry, and eight runs on one namespace at the same time
take turns (one lock per namespace): no duplicate rule, one expiry per flow, `absent` always clean."""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time

import pytest
from labtools import BIN, ROOT, in_netns, module, traces_left

from ansible_collections.packetpath.linux.plugins.module_utils._common.command import ProcessRunner
from ansible_collections.packetpath.linux.plugins.module_utils.capture import drop_reasons

NODES = {"node1": "iptables_legacy", "node2": "iptables_nft", "node3": "nftables"}
FLOW_A = {"proto": "tcp", "dport": "30080"}
FLOW_B = {"proto": "udp", "dport": "9999"}
MODULE = os.path.join(ROOT, "plugins", "modules", "trace_rule.py")

pytestmark = pytest.mark.usefixtures("kube")


def ours(host, as_listed=False):
    """Our rules in the host's namespace, as its backends list them (the nft table's lines, the tagged rules), their
    deadline in the kernel shown as DEADLINE unless `as_listed`: each arm's differs by the second it ran in."""
    netns = "pp-" + host
    text = in_netns(netns, ["nft", "list", "table", "inet", "packetpath"], check=False).stdout
    for save in ("iptables-legacy-save", "ip6tables-legacy-save", "iptables-nft-save", "ip6tables-nft-save"):
        text += in_netns(netns, [save], check=False).stdout
    lines = [line.strip() for line in text.splitlines() if "packetpath:" in line]
    return sorted(lines if as_listed else (DEADLINE.sub(r"\1DEADLINE", line) for line in lines))


DEADLINE = re.compile(r'(--datestop |meta time < )("[^"]*"|\S+)')


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


def test_a_collect_and_an_arm_at_once_on_one_namespace_take_turns():
    """Issue #42: the collection was not under the namespace lock, so an arm of the same flow with capture=true
    while it read (a role's retry, a second operator) replaced the capture under it: "cannot read it: No such
    file", "the capture wrote nothing", a 20 s stall. Now one waits for the other, and both succeed."""
    host, capture = "node2", dict(FLOW_B, expires=60, capture=True, drop_reasons="never")
    failed = []
    try:
        for _round in range(6):
            armed = module(host, "packetpath.linux.trace_rule", capture)
            assert armed["_status"] == "CHANGED", armed["_stdout"]
            results = [None, None]
            barrier = threading.Barrier(2)

            def one(index, name, args):
                barrier.wait()
                results[index] = module(host, name, args)

            threads = [threading.Thread(target=one, args=(0, "packetpath.linux.trace_results",
                                                          dict(FLOW_B, source="capture"))),
                       threading.Thread(target=one, args=(1, "packetpath.linux.trace_rule", capture))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(300)
            failed += [result["_stdout"][-400:] for result in results if result["_status"] not in ("CHANGED", "SUCCESS")]
            module(host, "packetpath.linux.trace_rule", dict(FLOW_B, state="absent"))
        assert failed == [], failed
    finally:
        module(host, "packetpath.linux.trace_rule", {"state": "absent", "all": True})
    assert traces_left("pp-" + host) == []


# The steps of a run, at which it is killed one by one: each command it starts (clone, vfork: iptables, nft, the
# expiry's sleeper), each record it writes or removes (rename, unlink) and the old sleeper it ends (kill).
STEP_SYSCALLS = ("clone", "clone3", "vfork", "fork", "rename", "unlink", "kill")


def run_present(host, tmp_path, args, strace=()):
    """trace_rule run as Ansible runs it on a host (its file, given its arguments) in the host's namespace, under
    `strace` where given; its return code."""
    path = tmp_path / ("args-%s.json" % host)
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "build", "collections"))
    return subprocess.run(["ip", "netns", "exec", "pp-" + host] + list(strace) + [
        os.path.join(BIN, "python"), MODULE, str(path)], env=env, capture_output=True, check=False, timeout=60).returncode


def steps(host, tmp_path, args):
    """[(syscall, n)]: every step syscall one run of the module makes (not its children's), counted by strace."""
    log = tmp_path / ("steps-%s.log" % host)
    assert run_present(host, tmp_path, args, ["strace", "-o", str(log), "-e", "trace=" + ",".join(STEP_SYSCALLS)]) == 0
    made = re.findall(r"^(\w+)\(", log.read_text(), re.M)
    return [(name, n) for name in sorted(set(made)) for n in range(1, made.count(name) + 1)]


def killed_at(host, tmp_path, args, syscall, n):
    """The module killed (SIGKILL, by strace's fault injection) as it enters its n-th `syscall`: before the command
    starts, the record is renamed into place, the old sleeper is ended. Whether it died there."""
    rc = run_present(host, tmp_path, args, ["strace", "-o", "/dev/null", "-e", "trace=" + syscall,
                                            "-e", "inject=%s:signal=SIGKILL:when=%d" % (syscall, n)])
    return rc in (-signal.SIGKILL, 128 + signal.SIGKILL)


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
        thread.join(600)
    return failures


@pytest.mark.parametrize("re_arm", [False, True], ids=["first_present", "re_arm"])
def test_a_kill_at_every_step_leaves_no_rule_past_its_expiry(re_arm, tmp_path):
    """Issue #27: a kill while a second `present` of the same flow re-armed it (a new rate) left its rules without
    any expiry in 3 of 57 kills. Here a first `present`, and a re-arm of a flow traced already, are killed at each of
    their steps in turn, on the three backends at once: every time, the rules go by the expiry (the old one's or
    the new one's), with the sleepers and records."""
    first, again = dict(FLOW_A, expires=2, rate=10), dict(FLOW_A, expires=1, rate=20)
    absent_all = {"state": "absent", "all": True}

    def test(host):
        killed_run = again if re_arm else first
        if re_arm:
            assert run_present(host, tmp_path, first) == 0
        plan = steps(host, tmp_path, killed_run)
        assert run_present(host, tmp_path, absent_all) == 0
        assert len(plan) >= 10, plan
        for syscall, n in plan:
            if re_arm:
                assert run_present(host, tmp_path, first) == 0
            assert killed_at(host, tmp_path, killed_run, syscall, n), "not killed at %s #%d" % (syscall, n)
            assert nothing_left_by(host, 10), "killed at %s #%d of %s, a rule of ours outlived its expiry: %s" % (
                syscall, n, plan, ours(host) or sleepers(host) or traces_left("pp-" + host))

    assert on_every_node(test) == {}


def removed_behind_our_back(host):
    """One rule of ours deleted by someone else: the expiry's delete of it then finds nothing to delete."""
    netns = "pp-" + host
    if NODES[host] == "nftables":
        in_netns(netns, ["nft", "delete", "table", "inet", "packetpath"])
        return
    line = next(line for line in ours(host, as_listed=True) if line.startswith("-A "))
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


READ_BOTH_WAYS = """
import json, socket, sys, time
from ansible_collections.packetpath.linux.plugins.module_utils.capture import drop_reasons
from ansible_collections.packetpath.linux.plugins.module_utils.flow import Flow
flow = Flow.from_params({"proto": "udp", "dport": "9999"})
started = [drop_reasons.start(sys.argv[1], flow, 10, sys.argv[2] + way, by_name=way == "name")
           for way in ("offset", "name")]
try:
    for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"nobody listens", (address, 9999))
    time.sleep(0.5)
finally:
    for found in started:
        drop_reasons.stop(found)
print(json.dumps([[line for line in open(found["files"]["drops"]) if line.startswith("D ")] for found in started]))
"""


def test_the_drop_reasons_program_reads_the_kernel_s_members_by_offset_as_bpftrace_reads_them_by_name(tmp_path):
    """The offsets of sk_buff's, net_device's and net's members come from the running kernel's BTF (0.4 s less to
    compile than bpftrace resolving the names); both programs, run at once on the same dropped datagrams (no socket
    on the port), print the same drops: device, namespace, headers."""
    bpftrace, unavailable = drop_reasons.availability(ProcessRunner())
    if unavailable:  # the same test trace_rule makes: bpftrace is installed by make, the kernel's BTF may be absent
        pytest.skip("the kernel's drop reasons cannot be read here: %s" % unavailable)
    output = in_netns("pp-node1", ["env", "PYTHONPATH=" + os.path.join(ROOT, "build", "collections"), sys.executable,
                                   "-c", READ_BOTH_WAYS, bpftrace, str(tmp_path / "drops-")]).stdout
    by_offset, by_name = json.loads(output)
    assert [line.split()[:-1] for line in by_offset] == [line.split()[:-1] for line in by_name]  # but the clock
    drops = [drop_reasons.parse_line(line, {}, {1: "lo"}, 0) for line in by_offset]
    assert [(drop["dev"], drop["src"], drop["dst"], drop["dport"]) for drop in drops] == [
        ("lo", "127.0.0.1", "127.0.0.1", 9999), ("lo", "::1", "::1", 9999)], by_offset
