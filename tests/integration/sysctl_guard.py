"""The machine-wide sysctls the lab or a module could touch, and what changed between two snapshots.

The integration suite snapshots them in the root namespace before its first test and compares after its last
lab-down: a shared machine must come out of `make test` with every such key as it was.

`/proc/sys/net` shows the keys of the namespace of the process that reads it, so a snapshot runs in a child
process (`python -m sysctl_guard [NETNS]`): in the root namespace for the guard, inside a scratch namespace for
the guard's own test, which proves it fails when a key changes without changing anything outside the lab.
"""

import json
import os
import stat
import subprocess
import sys

PROC_SYS = "/proc/sys"
# net.* (every netns-local key the lab or a module writes: conf, nf_log, netfilter), and the keys outside net.*
# that applying the machine's own sysctl.d files would write (they are not per network namespace).
WATCHED = ("net", "fs/protected_fifos", "fs/protected_regular", "fs/protected_symlinks", "fs/protected_hardlinks",
           "kernel/pid_max")


def _walk(root):
    """(relative path, value) of every writable key under `root`: read-only ones are counters, not settings."""
    if os.path.isfile(root):
        paths = [root]
    else:
        paths = [os.path.join(top, name) for top, _dirs, names in os.walk(root) for name in names]
    for path in paths:
        try:
            if not os.stat(path).st_mode & stat.S_IWUSR:
                continue
            with open(path, encoding="utf-8", errors="replace") as handle:
                yield os.path.relpath(path, PROC_SYS), handle.read().strip()
        except OSError:  # write-only or unreadable until set (ipv6 stable_secret), or gone meanwhile
            continue


def read_here():
    return dict(item for watched in WATCHED for item in _walk(os.path.join(PROC_SYS, watched)))


def snapshot(netns=None):
    """The watched keys as the root namespace (or `netns`) sees them."""
    argv = [sys.executable, os.path.abspath(__file__)]
    if netns:
        argv = ["ip", "netns", "exec", netns] + argv
    return json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)


def changes(before, after):
    """{key: (before, after)} for every key whose value differs; a key that exists on one side only is an interface
    that came or went (a lab link left behind is caught by the lab's own machine-state check)."""
    return {key: (value, after[key]) for key, value in before.items() if key in after and after[key] != value}


def assert_unchanged(before, after):
    """Fail with every key that changed, as `key: before -> after`."""
    changed = changes(before, after)
    assert not changed, "machine-wide sysctls changed outside the lab: " + ", ".join(
        "%s: %s -> %s" % (key, old, new) for key, (old, new) in sorted(changed.items()))


if __name__ == "__main__":
    json.dump(read_here(), sys.stdout)
