# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A dead-man switch: the host removes a trace by itself when its time is up.

Arming starts a detached sleeper (a new session, so the end of the SSH session
or of the controller does not stop it) with the exact commands that delete the
flow's rules.  Its PID and kernel start time are recorded per network namespace;
cancelling checks both, and the marker in its command line, before it signals,
so it can only ever end the sleeper it started.
"""

import json
import os
import signal
import subprocess
import sys

from ansible_collections.packetpath.linux.plugins.module_utils._common import hoststate

MARKER = "packetpath-expiry"
DIRECTORY = "expiry"
ENDED_WITHIN = 2.0  # seconds cancel() waits for a signalled sleeper to be gone (it ends at once on SIGTERM)

# Runs on the target with the target's Python, stdlib only, detached from the module.
SLEEPER = r"""
import fcntl, json, os, signal, subprocess, sys, tempfile, time
ATTEMPTS = 3
# What iptables (both flavours) and nft answer for a rule, chain or table that is not there: never inserted (a kill
# before the insert) or removed by someone else. Nothing of ours is left then: not a failure.
GONE = ("does a matching rule exist", "No chain/target/match by that name", "No such file or directory")
plan = json.loads(sys.argv[2])
while time.time() < plan["expires_at"]:
    time.sleep(min(1.0, max(0.0, plan["expires_at"] - time.time())))
lock = os.open("/proc/self/ns/net", os.O_RDONLY)
fcntl.flock(lock, fcntl.LOCK_EX)  # hoststate.namespace_lock: one writer per namespace
failed = []
for argv, stdin in plan["commands"]:
    for attempt in range(1, ATTEMPTS + 1):  # a lock held by another writer passes with time
        done = subprocess.run(argv, input=stdin, universal_newlines=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if done.returncode == 0 or any(words in done.stderr for words in GONE):
            break
        if attempt < ATTEMPTS:
            time.sleep(attempt)
    else:
        failed.append({"argv": argv, "rc": done.returncode, "stderr": done.stderr.strip()[-300:],
                       "attempts": ATTEMPTS})
nf_log = plan.get("nf_log")
if nf_log:  # the last legacy flow of ours puts back the nf_log binding trace_rule found
    directory = os.path.dirname(plan["record"])
    others = []
    for name in os.listdir(directory):
        if name.endswith(".json") and os.path.join(directory, name) != plan["record"]:
            try:
                with open(os.path.join(directory, name)) as handle:
                    others.append(json.load(handle).get("backend"))
            except (OSError, ValueError):
                others.append("iptables_legacy")
    if "iptables_legacy" not in others:
        try:
            with open(nf_log["record"]) as handle:
                bindings = json.load(handle)
        except (OSError, ValueError):
            bindings = {}
        for family, value in bindings.items():
            with open(nf_log["files"][family], "w") as handle:
                handle.write(value)
        if bindings:
            os.unlink(nf_log["record"])
if plan.get("drop_empty_nft_table"):
    nft, table = plan["drop_empty_nft_table"]
    listed = subprocess.run([nft, "list", "table", "inet", table], universal_newlines=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if listed.returncode == 0 and "chain " not in listed.stdout:
        subprocess.run([nft, "delete", "table", "inet", table], stderr=subprocess.DEVNULL)
# A live capture of the flow (trace_rule capture=true) goes with the trace. Its reader and drop reasons' program end
# by themselves at about this time, but not surely before this: one that ended after its files went would write its
# done file into a directory that was removed. Each is ended here first and waited for, known as ours by the PID it
# wrote and the file it holds open (spool._unrecorded's test).
capture = os.path.join(os.path.dirname(os.path.dirname(plan["record"])), "capture")
flow_id = os.path.basename(plan["record"])[:-len(".json")]


def started(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def holds(pid, path):
    try:
        names = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return False
    for name in names:
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, name)) == os.path.realpath(path):
                return True
        except OSError:
            pass
    return False


def pid_in(path, prefix):
    try:
        with open(path) as handle:
            word = handle.readline().strip()
    except OSError:
        return None
    return int(word[len(prefix):]) if word.startswith(prefix) and word[len(prefix):].isdigit() else None


def end(pid, writes, signum):
    if not pid or not holds(pid, writes):
        return
    since = started(pid)
    for each in (signal.SIGCONT, signum):  # as hoststate.end: waking first ends nothing
        try:
            os.kill(pid, each)
        except OSError:
            return
    deadline = time.time() + 10
    while started(pid) == since and time.time() < deadline:
        time.sleep(0.05)
    if started(pid) == since:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


prefix = os.path.join(capture, flow_id)
end(pid_in(prefix + ".ready", ""), prefix + ".lines", signal.SIGTERM)
end(pid_in(prefix + ".drops.log", "pid "), prefix + ".drops", signal.SIGINT)
for suffix in (".lines", ".ready", ".stop", ".done", ".json", ".drops", ".drops.log", ".reasons"):
    try:
        os.unlink(os.path.join(capture, flow_id + suffix))
    except OSError:
        pass
try:
    os.rmdir(capture)
except OSError:
    pass
try:
    with open(plan["record"]) as handle:
        kept = json.load(handle)
    mine = kept.get("pid") == os.getpid()
except (OSError, ValueError):
    mine = False
if mine and failed:
    # The record stays, saying what could not be deleted: trace_rule's leftovers and the audit show it, and
    # trace_rule state=absent (or all) removes what is left and the record with it.
    kept.update(failed=failed, fired_at=time.time())
    descriptor, temporary = tempfile.mkstemp(dir=os.path.dirname(plan["record"]), prefix=".record-")  # as hoststate
    with os.fdopen(descriptor, "w") as handle:
        json.dump(kept, handle)
    os.rename(temporary, plan["record"])
elif mine:
    os.unlink(plan["record"])
    expiry = os.path.dirname(plan["record"])
    for directory in (expiry, os.path.dirname(expiry), os.path.dirname(os.path.dirname(expiry))):  # up to ROOT
        try:
            os.rmdir(directory)
        except OSError:
            break
"""


def _is_our_sleeper(record):
    if not hoststate.ours(record):
        return False
    try:
        with open("/proc/%d/cmdline" % record["pid"], "rb") as handle:
            return MARKER.encode() in handle.read().split(b"\0")
    except OSError:
        return False


def record_path(flow_id):
    return hoststate.record_path(DIRECTORY, flow_id + ".json")


def record(flow_id):
    """The flow's record, also when its sleeper no longer runs (it was killed); None when there is none."""
    return hoststate.read(record_path(flow_id))


def current(flow_id):
    """The armed sleeper of a flow, or None (also when it has already fired)."""
    found = record(flow_id)
    if found and _is_our_sleeper(found):
        return found
    return None


def armed_flows():
    return [name[:-5] for name in hoststate.listdir(DIRECTORY) if name.endswith(".json")]


def arm(flow_id, backend, expires_at, actions, drop_empty_nft_table=None, nf_log=None):
    """Start the sleeper that runs `actions` at `expires_at` (an epoch: the deadline the rules carry in the kernel
    too); return its record (pid, expires_at, ...).  `nf_log` (trace.nflog.restore_plan()) makes it
    put back the nf_log binding when no other legacy flow of ours is left.

    A re-arm starts the new sleeper and records it before it ends the old one: killed at any point in between, the
    flow keeps a deadline (the old sleeper's, or the new one's, or both; a second delete finds nothing and is no
    failure)."""
    previous = record(flow_id)
    path = record_path(flow_id)
    plan = {
        "expires_at": expires_at,
        "commands": [action.as_plan() for action in actions],
        "record": path,
        "drop_empty_nft_table": drop_empty_nft_table,
        "nf_log": nf_log,
    }
    proc = subprocess.Popen(  # pylint: disable=consider-using-with  # detached on purpose: never waited for
        [sys.executable, "-c", SLEEPER, MARKER, json.dumps(plan)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        close_fds=True, start_new_session=True,
    )
    armed = {
        "pid": proc.pid,
        "started": hoststate.start_time(proc.pid),
        "flow_id": flow_id,
        "backend": backend,
        "expires_at": plan["expires_at"],
    }
    try:
        hoststate.write(path, armed)
    except BaseException:
        os.kill(proc.pid, signal.SIGTERM)  # ours, just started: without its record nobody could end it
        raise
    if previous and previous.get("pid") != proc.pid and _is_our_sleeper(previous):
        hoststate.end(previous, signal.SIGTERM, ENDED_WITHIN)
    return armed


def cancel(flow_id):
    """End the flow's sleeper if it still runs, and wait (ENDED_WITHIN seconds at most) until it has: a trace
    switched off leaves no process of ours running behind the answer. True when one was ended."""
    found = record(flow_id)
    hoststate.remove(record_path(flow_id))
    return bool(found) and _is_our_sleeper(found) and hoststate.end(found, signal.SIGTERM, ENDED_WITHIN)
