# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small JSON records the collection keeps on a host, one directory per network namespace.

Containers and network namespaces on one host share /run, so the records of
one namespace (expiry sleepers, a log binding to restore) are kept apart by the
namespace's inode and cookie.  /run is a tmpfs: the records vanish with the rules at reboot.
"""

import contextlib
import fcntl
import json
import os
import signal
import socket
import struct
import time

from ansible_collections.packetpath.linux.plugins.module_utils._common import files
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import HostError

ROOT = "/run/packetpath"
SO_NETNS_COOKIE = 71  # linux/socket.h, Linux 5.14


def netns_cookie():
    """The kernel's 64-bit cookie of this network namespace, never given to another one; None before Linux 5.14."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:  # a socket lives in the namespace it was made in
            return struct.unpack("=Q", sock.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8))[0]
    except OSError:
        return None


def namespace_dir():
    """This namespace's directory. Its inode alone does not name it: the kernel hands a deleted namespace's inode to
    the next one at once (seen here: three namespaces made one after another all had inode 4026532177), and a
    namespace deleted with a record of ours left (its sleeper killed) would hand that record to a stranger, whose
    nf_log binding a cleanup would then set. The cookie tells them apart; kernels without it keep the inode alone."""
    inode = os.stat("/proc/self/ns/net").st_ino
    cookie = netns_cookie()
    return os.path.join(ROOT, "net-%d" % inode if cookie is None else "net-%d-%d" % (inode, cookie))


def record_path(*parts):
    return os.path.join(namespace_dir(), *parts)


def _stat(pid):
    """The fields of /proc/PID/stat after the command name (its state first), None where there is no such process."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError, TypeError):
        return None


def start_time(pid):
    """A process's kernel start time (clock ticks since boot), None where it is gone or a zombie: with the PID,
    it names the process we started and no other that got its number later."""
    fields = _stat(pid)
    return None if not fields or fields[0] in ("Z", "X") else int(fields[19])


def stopped(pid):
    """Whether the process is stopped (SIGSTOP, a debugger): it does nothing, signals but SIGKILL and SIGCONT wait."""
    fields = _stat(pid)
    return bool(fields) and fields[0] in ("T", "t")


def ours(found):
    """Whether the recorded process ({pid, started}) still runs: a PID is reused, its start time is not."""
    return bool(found) and found.get("pid") is not None and start_time(found["pid"]) == found.get("started")


def _send(found, signum):
    """Signal the recorded process if it is still ours. It may end between the look and the signal: that is no
    error, and nothing else has its PID yet."""
    if ours(found):
        try:
            os.kill(found["pid"], signum)
        except ProcessLookupError:
            pass


def end(found, signum, within):
    """End the recorded process, only if it is still the one we started: SIGCONT (a stopped process takes no other
    signal until woken), then `signum`, then SIGKILL if it still runs `within` seconds later. True where it was
    running. It returns once the process has ended: whatever it writes as it ends is written by then. SIGCONT goes
    first because it ends nothing: sent after `signum`, it found the process gone or not depending on how fast
    `signum` ended it, and a run made one signal more or less (a CI run failed on ESRCH there)."""
    if not ours(found):
        return False
    _send(found, signal.SIGCONT)
    _send(found, signum)
    deadline = time.monotonic() + within
    while ours(found) and time.monotonic() < deadline:
        time.sleep(0.02)
    _send(found, signal.SIGKILL)
    return True


def read(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def make_dirs(directory):
    """os.makedirs, again if a run in another namespace removed ROOT, empty, between two of its mkdirs."""
    for attempt in range(3):
        try:
            os.makedirs(directory, 0o700, exist_ok=True)
            return
        except FileNotFoundError:
            if attempt == 2:
                raise


TEMPORARY = ".record-"  # mkstemp's unpredictable names start so, the expiry sleeper's too
STALE = 300  # seconds after which a temporary file is a killed writer's: none of ours writes for that long


def _clean_temporaries(directory, now):
    """Remove the temporary files a writer killed before its rename left in the directory."""
    for name in os.listdir(directory):
        if not name.startswith(TEMPORARY):
            continue
        try:
            if now - os.lstat(os.path.join(directory, name)).st_mtime > STALE:
                os.unlink(os.path.join(directory, name))
        except OSError:
            pass  # another run cleaned it first


def write(path, data):
    """Write atomically (files.write_text: a reader sees the old record or the new one, never half of one), readable
    by root alone. Its temporary file starts with TEMPORARY, so a killed writer's is removed by the next write."""
    directory = os.path.dirname(path)
    try:
        make_dirs(directory)
        _clean_temporaries(directory, time.time())
        files.write_text(path, json.dumps(data, sort_keys=True), mode=0o600, temporary_prefix=TEMPORARY)
    except OSError as exc:  # a full or read-only /run: a refusal the caller rolls back from, not a traceback
        raise HostError("cannot write the record %s: %s" % (path, exc.strerror or exc)) from exc


@contextlib.contextmanager
def namespace_lock(timeout=60):
    """One writer per network namespace: every change of ours (rules, the nf_log binding, records, the expiry, a
    capture) happens under an exclusive flock on the namespace itself (/proc/self/ns/net), so nothing is left on
    disk for it, and two runs on one namespace take turns. The expiry sleeper takes it too before it deletes."""
    fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        deadline = time.time() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.time() > deadline:
                    raise HostError("another change of packetpath's in this network namespace has held its lock for "
                                    "%d s; nothing was changed" % timeout)
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def remove(path):
    """Remove a record, and the directories it leaves empty up to ROOT."""
    try:
        os.unlink(path)
    except OSError:
        return
    directory = os.path.dirname(path)
    while directory.startswith(ROOT):
        try:
            os.rmdir(directory)
        except OSError:
            return
        directory = os.path.dirname(directory)


def listdir(*parts):
    try:
        return sorted(os.listdir(record_path(*parts)))
    except OSError:
        return []
