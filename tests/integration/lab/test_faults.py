"""Faults of the host under a trace, each in a scratch network namespace of its own (issue #27's fault matrix):
the capture's filesystem full, the namespace deleted while traced, runtime sysctl keys that cannot be written.
Nothing is left behind and nothing is half-applied. The modules run as Ansible runs them on a host: their file,
given its arguments."""

import json
import os
import subprocess
import sys
import time

import pytest
from labtools import ROOT, Footprint, in_netns, scratch

SCRATCH = "ppscratch-faults"  # not "pp-": lab-down's and the guard's names
COLLECTIONS = os.path.join(ROOT, "build", "collections")

# Inside the scratch namespace (and the mount namespace `ip netns exec` gives it): a module file run with its
# arguments, as Ansible runs it on a host; its JSON result. argv: module name, arguments (JSON).
RUN_MODULE = r"""
import json, os, subprocess, sys, tempfile
def run(name, args):
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
        handle.flush()
        out = subprocess.run([sys.executable, os.path.join(ROOT, "plugins", "modules", name + ".py"), handle.name],
                             capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=COLLECTIONS)).stdout
    return json.loads(out.strip().splitlines()[-1])
"""

# The spool's filesystem full: a 256 KiB tmpfs over /run/packetpath (in this mount namespace only), a trace at
# 10,000 packets/s and UDP to loopback until the capture's reader has ended; then the collection. argv: backend.
FULL_SPOOL = RUN_MODULE + r"""
import socket, time
os.makedirs("/run/packetpath", exist_ok=True)
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "packetpath-full", "/run/packetpath"], check=True)
flow = {"proto": "udp", "dst": "127.0.0.1", "dport": "9999"}
armed = run("trace_rule", dict(flow, backend=sys.argv[1], capture=True, expires=60, rate=10000, burst=10000,
                               drop_reasons="never"))
sender, deadline = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), time.time() + 20
while time.time() < deadline and os.path.exists("/proc/%d" % armed["capture"]["pid"]):
    for _ in range(200):
        sender.sendto(b"x" * 64, ("127.0.0.1", 9999))
    time.sleep(0.01)
got = run("trace_results", dict(flow, source="capture", trace_off=True))
left = run("trace_rule", {"state": "absent", "all": True})
print(json.dumps({"armed": armed, "got": got, "left": left, "files": sorted(
    os.path.relpath(os.path.join(top, name), "/run/packetpath") for top, _dirs, names in os.walk("/run/packetpath")
    for name in names)}))
"""


@pytest.fixture
def scratch_netns():
    with scratch(SCRATCH, sysctl_d=True) as netns:
        yield netns


def python_in(netns, code, *args, timeout=120):
    """Python code run inside the namespace with ROOT and COLLECTIONS set; its last line of output as JSON."""
    prelude = "ROOT, COLLECTIONS = %r, %r\n" % (ROOT, COLLECTIONS)
    proc = in_netns(netns, [sys.executable, "-c", prelude + code] + list(args), check=False, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def processes_in(netns):
    return subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, check=False).stdout.split()


@pytest.mark.parametrize("backend", ["iptables_legacy", "nftables"])
def test_a_full_spool_ends_the_capture_and_the_collection_says_what_is_missing(scratch_netns, backend):
    """Issue #27: a full spool filesystem killed the reader, and trace_results then crashed writing its stop file.
    Now the reader ends its monitor and says why, the collection returns what was spooled with the loss named,
    and the trace goes off as asked."""
    found = python_in(scratch_netns, FULL_SPOOL, backend)
    assert found["armed"].get("changed") and found["armed"]["capture"]["pid"], found["armed"]
    got = found["got"]
    assert not got.get("failed"), got.get("msg")
    assert got["capture"]["complete"] is False, got["capture"]
    assert any("could not write its spool (No space left on device)" in why or "its filesystem was full" in why
               for why in got["capture"]["losses"]), got["capture"]
    assert got["packets"], "what was spooled before the filesystem filled is read"
    assert got["trace_off"]["removed"] and not found["left"]["removed"], found["left"]
    assert found["files"] == [], found["files"]
    assert processes_in(scratch_netns) == []


# The records' filesystem full before the arm: a tmpfs of one 4 KiB page over /run/packetpath (this mount namespace
# only), filled; then trace_rule asked to arm, and what it left. argv: backend.
RECORDS_FULL = RUN_MODULE + r"""
os.makedirs("/run/packetpath", exist_ok=True)
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k,nr_inodes=4", "packetpath-full", "/run/packetpath"],
               check=True)
filler = os.open("/run/packetpath/filler", os.O_WRONLY | os.O_CREAT, 0o600)
try:
    while True:
        os.write(filler, b"x" * 1024)
except OSError:
    os.close(filler)
armed = run("trace_rule", {"proto": "udp", "dport": "9999", "backend": sys.argv[1], "capture": True, "expires": 60,
                           "drop_reasons": "never"})
left = run("trace_rule", {"state": "absent", "all": True, "backend": sys.argv[1]})
print(json.dumps({"armed": armed, "left": left}))
"""


@pytest.mark.parametrize("backend", ["iptables_legacy", "nftables"])
def test_a_full_records_filesystem_at_arm_is_a_refusal_that_leaves_nothing(scratch_netns, backend):
    """Issue #42: hoststate.write's OSError (No space left on device) ended the arm in a traceback."""
    found = python_in(scratch_netns, RECORDS_FULL, backend)
    armed = found["armed"]
    assert armed.get("failed") and "Traceback" not in armed["msg"] and "MODULE FAILURE" not in armed["msg"], armed
    assert "cannot write the record /run/packetpath/" in armed["msg"] and "No space left on device" in armed["msg"], \
        armed["msg"]
    assert not found["left"].get("removed"), found["left"]  # the failed arm took back what it had done
    assert processes_in(scratch_netns) == []


# An arm with capture that died after it started its reader and the drop reasons' program, before it wrote the
# capture's record (the record removed, as it never was); then absent all=true. argv: backend.
ARM_WITHOUT_RECORD = RUN_MODULE + r"""
import time
sys.path.insert(0, COLLECTIONS)
from ansible_collections.packetpath.linux.plugins.module_utils._common import hoststate
from ansible_collections.packetpath.linux.plugins.module_utils.capture import spool
armed = run("trace_rule", {"proto": "udp", "dport": "9999", "backend": sys.argv[1], "capture": True, "expires": 60})
found = spool.record(armed["flow_id"])
os.unlink(spool.paths(armed["flow_id"])["record"])
started = [(found["pid"], found["started"])] + [(found["drop_reasons"]["pid"], found["drop_reasons"]["started"])
                                                 for _ in [1] if "pid" in found["drop_reasons"]]
left = run("trace_rule", {"state": "absent", "all": True})
time.sleep(0.2)
print(json.dumps({"armed": armed, "left": left, "programs": len(started),
                  "running": [pid for pid, when in started if hoststate.start_time(pid) == when],
                  "files": hoststate.listdir(spool.DIRECTORY)}))
"""


@pytest.mark.parametrize("backend", ["iptables_legacy", "iptables_nft", "nftables"])
def test_a_capture_left_without_its_record_is_ended_and_removed_by_absent_all(scratch_netns, backend):
    """Issue #42: an arm killed between starting its reader (and bpftrace) and recording them left the processes
    until the expiry and the spool files for good; absent all=true found captures by their records only."""
    found = python_in(scratch_netns, ARM_WITHOUT_RECORD, backend)
    assert found["armed"].get("changed") and found["armed"]["capture"]["pid"], found["armed"]
    assert found["left"]["capture"]["discarded"] == [found["armed"]["flow_id"]], found["left"]
    assert found["running"] == [] and found["files"] == [], found
    assert processes_in(scratch_netns) == []


ARM_THEN_LEAVE = RUN_MODULE + r"""
armed = run("trace_rule", {"proto": "udp", "dport": "9999", "backend": sys.argv[1], "capture": True, "expires": 4,
                           "drop_reasons": "never"})
print(json.dumps(armed))
"""


@pytest.mark.parametrize("backend", ["iptables_legacy", "iptables_nft", "nftables"])
def test_a_namespace_deleted_while_traced_takes_the_trace_and_its_files_along_at_the_expiry(scratch_netns, backend):
    """`ip netns del` only unmounts the name: the namespace lives on while our sleeper and capture are in it. At the
    expiry they end, the rules go with the namespace, and the records directory of that namespace is removed."""
    inode = os.stat("/run/netns/" + scratch_netns).st_ino
    armed = python_in(scratch_netns, ARM_THEN_LEAVE, backend)
    assert armed.get("changed") and armed["capture"]["pid"], armed
    ours = [int(pid) for pid in processes_in(scratch_netns)]
    assert ours, "the sleeper and the capture run in the namespace"
    subprocess.run(["ip", "netns", "del", scratch_netns], check=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(os.path.exists("/proc/%d" % pid) for pid in ours):
        time.sleep(0.2)
    assert not any(os.path.exists("/proc/%d" % pid) for pid in ours), "a process of ours outlived the expiry"
    left = os.listdir("/run/packetpath") if os.path.isdir("/run/packetpath") else []
    assert not [name for name in left if name.startswith("net-%d-" % inode)], left


# Runtime keys that cannot be written: a read-only bind mount (in this mount namespace only) over one key, or over
# the whole of /proc/sys/net; then interface_sysctl asked to set two keys now and in its file. argv: what is
# read-only.
READ_ONLY = RUN_MODULE + r"""
target = {"one key": "/proc/sys/net/ipv4/conf/eth1/log_martians", "all of /proc/sys/net": "/proc/sys/net"}[sys.argv[1]]
subprocess.run(["mount", "--bind", target, target], check=True)
subprocess.run(["mount", "-o", "remount,bind,ro", target], check=True)
keys = ["/proc/sys/net/ipv4/conf/eth1/rp_filter", "/proc/sys/net/ipv4/conf/eth1/log_martians"]
before = [open(key).read() for key in keys]
got = run("interface_sysctl", {"interfaces": ["eth1"], "settings": {"rp_filter": 2, "log_martians": 1},
                               "persistent": "present"})
print(json.dumps({"got": got, "before": before, "after": [open(key).read() for key in keys],
                  "files": os.listdir("/etc/sysctl.d")}))
"""


@pytest.mark.parametrize("read_only", ["one key", "all of /proc/sys/net"])
def test_runtime_keys_that_cannot_be_written_change_nothing_at_all(scratch_netns, read_only):
    """Issue #27: with the runtime side unwritable the file was written and the runtime was not (half-applied).
    Now the keys are checked first: the task fails naming the key, and neither the file nor a value changed."""
    found = python_in(scratch_netns, READ_ONLY, read_only)
    assert found["got"].get("failed"), found["got"]
    assert "log_martians" in found["got"]["msg"] and "nothing was changed" in found["got"]["msg"], found["got"]["msg"]
    assert found["after"] == found["before"] and found["files"] == []


# interface_sysctl asked, from the machine's own namespace, for a scratch namespace's persistent file (its
# /etc/netns/<ns>/sysctl.d). argv: the namespace.
PERSIST_IN = RUN_MODULE + r"""
got = run("interface_sysctl", {"netns": sys.argv[1], "interfaces": ["eth1"], "settings": {"rp_filter": 2},
                               "persistent": "present"})
print(json.dumps(got))
"""


def test_a_namespace_s_etc_netns_directory_that_is_a_link_is_never_written_through(tmp_path):
    """Issue #42: /etc/netns/<ns> itself a symbolic link - the sysctl.d file was written where it points. Now every
    directory on the way below /etc is checked, as sysctl.d and the file were."""
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "sysctl.d").mkdir(parents=True)
    with scratch(SCRATCH + "-l") as netns:
        footprint = Footprint()
        link = "/etc/netns/" + netns
        try:
            if not os.path.isdir("/etc/netns"):
                footprint.makedirs("/etc/netns")
            os.symlink(str(elsewhere), link)
            before = in_netns(netns, ["cat", "/proc/sys/net/ipv4/conf/eth1/rp_filter"]).stdout
            proc = subprocess.run([sys.executable, "-c", "ROOT, COLLECTIONS = %r, %r\n" % (ROOT, COLLECTIONS) +
                                   PERSIST_IN, netns], capture_output=True, text=True, check=True)
            got = json.loads(proc.stdout.strip().splitlines()[-1])
            assert got.get("failed") and "%s is a symbolic link" % link in got["msg"], got
            assert "nothing was changed" in got["msg"], got["msg"]
            assert os.listdir(elsewhere / "sysctl.d") == []
            assert in_netns(netns, ["cat", "/proc/sys/net/ipv4/conf/eth1/rp_filter"]).stdout == before
        finally:
            if os.path.islink(link):
                os.unlink(link)
            footprint.undo()
