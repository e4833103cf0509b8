"""Running commands and ending processes, the careful way."""

import os
import signal
import subprocess
import time

ENV = dict(os.environ, LC_ALL="C")


class CommandError(RuntimeError):
    pass


def run(argv, check=True, netns=None, stdin=None, timeout=None):
    """Run argv (inside `netns` when given); return its stdout."""
    if netns:
        argv = ["ip", "netns", "exec", netns] + list(argv)
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=ENV, check=False, timeout=timeout)
    if check and proc.returncode != 0:
        raise CommandError("%s failed (rc=%d): %s" % (" ".join(argv), proc.returncode, proc.stderr.strip()))
    return proc.stdout


def start_time(pid):
    """The kernel's start time of a running process: with the PID it names one process for good.

    A zombie counts as ended (None): it has exited, and where PID 1 does not reap
    orphans (as in some containers) it stays a zombie for good.
    """
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def alive(pid, started):
    return started is not None and start_time(pid) == started


def end_process(pid, started, grace=3.0):
    """Stop the process we started, and only it: the start time guards against a reused PID."""
    if not alive(pid, started):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not alive(pid, started):
            return True
        time.sleep(0.05)
    if alive(pid, started):
        os.kill(pid, signal.SIGKILL)
    return True


def netns_pids(netns):
    out = run(["ip", "netns", "pids", netns], check=False)
    return [int(p) for p in out.split()]


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise CommandError("timed out after %ss waiting for %s" % (timeout, what))
