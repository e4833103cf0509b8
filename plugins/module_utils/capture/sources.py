# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where trace lines come from: log files (plain or gzipped), the journal, the kernel ring buffer,
and the two monitors that print nft trace events while they run.

Every source is a generator of text lines, read as they come (never the whole
input in memory).  The journal and the ring buffer are turned into lines the
kernel-log parser reads like dmesg's: `[uptime] message`, with the journal's
wall time in front.
"""

import ctypes
import ctypes.util
import errno
import gzip
import io
import json
import os
import select
import signal
import stat
import subprocess
import time
import zlib
from datetime import datetime, timezone

from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import HostError

KERNEL_LOG_FILES = ("/var/log/kern.log", "/var/log/messages")
KMSG = "/dev/kmsg"
CHUNK = 8 << 20
NEARBY = 1 << 20  # how far apart the lines of one packet can be in a log file
MAX_LINE = 64 << 10  # characters; a kernel-log or monitor line is well under 1 KiB
_GZIP_MAGIC = b"\x1f\x8b"


def _open(path):
    """The file as bytes, through gzip where it starts with gzip's magic. Only a regular file: a FIFO would hang."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise HostError("path=%r: not a regular file; nothing was read" % path)
        with open(path, "rb") as probe:
            gzipped = probe.read(2) == _GZIP_MAGIC
        return gzip.open(path, "rb") if gzipped else open(path, "rb")
    except OSError as exc:
        raise HostError("path=%r: cannot read it: %s" % (path, exc.strerror or exc))


def read_file(path):
    """Lines of a log file; a gzipped one (a rotated kern.log.2.gz) is read through gzip. A line longer than
    MAX_LINE is cut there (the parsers count it as unreadable): one endless line must not take the memory."""
    try:
        with io.TextIOWrapper(_open(path), encoding="utf-8", errors="replace") as handle:
            while True:
                line = handle.readline(MAX_LINE)
                if not line:
                    return
                if len(line) == MAX_LINE and not line.endswith("\n"):
                    while True:  # the rest of an overlong line, dropped
                        rest = handle.readline(MAX_LINE)
                        if not rest or rest.endswith("\n"):
                            break
                    line += "\n"
                yield line
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise HostError("path=%r: starts like gzip but cannot be read as gzip: %s; nothing was read" % (path, exc))


class _Block:
    """Whole lines data[low:high] of a file, read in one piece; never copied."""

    __slots__ = ("data", "low", "high")

    def __init__(self, data, low, high):
        self.data, self.low, self.high = data, low, high

    def lines_with(self, needle, found):
        """Add the start offset of every line that contains `needle` to `found`."""
        data, high = self.data, self.high
        at = data.find(needle, self.low, high)
        while at >= 0:
            found.add(max(data.rfind(b"\n", self.low, at) + 1, self.low))
            end = data.find(b"\n", at, high)
            at = data.find(needle, end, high) if end >= 0 else -1

    def line_at(self, start):
        end = self.data.find(b"\n", start, self.high)
        return self.data[start:end + 1 if end >= 0 else self.high]


def _blocks(path):
    """The file in large blocks of whole lines; a line cut by a read is a small block of its own."""
    with _open(path) as handle:
        rest = b""
        while True:
            data = handle.read(CHUNK)
            if not data:
                if rest:
                    yield _Block(rest, 0, len(rest))
                return
            first = data.find(b"\n") + 1
            if rest or not first:
                joined = rest + data[:first] if first else rest + data
                if not first:
                    rest = joined[:NEARBY]  # an endless line keeps only its head
                    continue
                yield _Block(joined, 0, len(joined))
                first_line_end = first
            else:
                first_line_end = 0
            cut = data.rfind(b"\n") + 1
            if cut > first_line_end:
                yield _Block(data, first_line_end, cut)
            rest = data[cut:]


def lines_of_packets(path, needles, packet_needles):
    """The lines of a kernel-log file that can belong to the packets wanted, found with bytes.find.

    `needles` are texts one line of every wanted packet contains (`SPT=40001 `); the
    packet's other lines (before or after NAT changed those fields) are found by what
    NAT leaves alone: `packet_needles(line)` gives those (`ID=57266 `) for a line
    found.  A packet's lines lie close together, so they are looked for up to
    NEARBY bytes before and after the line found.  Everything else is never decoded,
    which is what makes fetching one packet out of a large log about as fast as grep.
    The caller parses what comes out as usual.
    """
    window = []  # [block, offsets found], the recent blocks, oldest first
    following = {}  # packet needle -> bytes read since its last line
    for block in _blocks(path):
        found = set()
        for needle in needles:
            block.lines_with(needle, found)
        fresh = set()
        for start in list(found):
            fresh.update(n for n in packet_needles(block.line_at(start)) if n not in following)
        for needle in fresh:
            for earlier, earlier_found in window:
                earlier.lines_with(needle, earlier_found)
            following[needle] = 0
        size = block.high - block.low
        for needle in list(following):
            before = len(found)
            block.lines_with(needle, found)
            following[needle] = 0 if len(found) > before or needle in fresh else following[needle] + size
            if following[needle] > NEARBY:
                del following[needle]
        window.append((block, found))
        while len(window) > 1 and sum(b.high - b.low for b, _found in window[1:]) >= NEARBY:
            yield from _decoded(*window.pop(0))
    for block, found in window:
        yield from _decoded(block, found)


def _decoded(block, found):
    for start in sorted(found):
        yield block.line_at(start).decode("utf-8", "replace")


def kernel_log_file():
    for path in KERNEL_LOG_FILES:
        if os.path.isfile(path):
            return path
    raise HostError("source=kernel_log: neither %s exists on this host; try source=journal or "
                    "source=dmesg" % " nor ".join(KERNEL_LOG_FILES))


def _kmsg_line(record):
    """'6,1234,2066621295,-;TRACE: ...' -> '[ 2066.621295] TRACE: ...' (continuation lines dropped)."""
    head, _sep, message = record.partition(";")
    fields = head.split(",")
    if len(fields) < 3 or not fields[2].isdigit():
        return None
    micros = int(fields[2])
    return "[%5d.%06d] %s\n" % (micros // 1000000, micros % 1000000, message.split("\n", 1)[0])


def read_kernel_ring(runner):
    """The kernel ring buffer, through /dev/kmsg (each reader has its own position: nothing is consumed)."""
    try:
        fd = os.open(KMSG, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        fd = None
    if fd is None:
        rc, out, err = runner.run([runner.which("dmesg") or "dmesg"])
        if rc != 0:
            raise HostError("source=dmesg: neither %s nor dmesg could be read: %s" % (KMSG, err.strip()))
        yield from out.splitlines(True)
        return
    try:
        while True:
            try:
                record = os.read(fd, 8192)
            except OSError as exc:
                if exc.errno == errno.EAGAIN:
                    return
                if exc.errno == errno.EPIPE:  # overwritten while we read: go on with the next record
                    continue
                raise
            if not record:
                return
            line = _kmsg_line(record.decode("utf-8", "replace"))
            if line:
                yield line
    finally:
        os.close(fd)


def _journal_line(text):
    """One `journalctl -o json` record -> '<RFC 3339> <host> kernel: [uptime] message'."""
    try:
        record = json.loads(text)
    except ValueError:
        return text  # not JSON: the parser counts it
    message = record.get("MESSAGE")
    if isinstance(message, list):  # journald stores non-UTF-8 messages as byte arrays
        message = bytes(message).decode("utf-8", "replace")
    if not isinstance(message, str):
        return None
    stamp = ""
    if record.get("__REALTIME_TIMESTAMP"):
        moment = datetime.fromtimestamp(int(record["__REALTIME_TIMESTAMP"]) / 1e6, timezone.utc)
        stamp = moment.isoformat()
    uptime = record.get("_SOURCE_MONOTONIC_TIMESTAMP")
    clock = "[%5d.%06d] " % divmod(int(uptime), 1000000) if uptime and uptime.isdigit() else ""
    return "%s %s kernel: %s%s\n" % (stamp, record.get("_HOSTNAME", "-"), clock, message)


def journal_args(journalctl, since_epoch):
    argv = [journalctl, "-k", "-o", "json", "--no-pager"]
    if since_epoch is not None:
        argv.append("--since=@%d" % int(since_epoch))
    return argv


def read_journal(lines):
    for text in lines:
        line = _journal_line(text)
        if line:
            yield line


PR_SET_PDEATHSIG = 1  # linux/prctl.h
NETLINK_NETFILTER = 12


def listening(pid, group, longest):
    """Wait until the process listens on the netlink group (its socket subscribed, as /proc/<pid>/net/netlink shows
    it), at most `longest` seconds; without a group, wait `longest` (the monitor subscribes right after it
    starts). xtables-monitor's subscribed socket has a port id other than its PID, so the socket is found by the
    inodes of the process's own descriptors."""
    deadline = time.time() + longest
    while group is not None and time.time() < deadline:
        if _subscribed(pid, group):
            return True
        time.sleep(0.01)
    if group is None:
        time.sleep(longest)
    return False


def _netfilter_sockets(pid):
    """The rows of /proc/<pid>/net/netlink (sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode) of the process's
    own NETLINK_NETFILTER sockets, found by the inodes of its descriptors; None where it cannot be read (not
    started yet, or gone)."""
    try:
        inodes = set()
        for fd in os.listdir("/proc/%d/fd" % pid):
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
        with open("/proc/%d/net/netlink" % pid) as handle:
            rows = [line.split() for line in handle.readlines()[1:]]
    except OSError:
        return None
    return [row for row in rows if len(row) >= 10 and row[1] == str(NETLINK_NETFILTER) and row[9] in inodes]


def _subscribed(pid, group):
    rows = _netfilter_sockets(pid)  # None: the caller's deadline decides
    return bool(rows) and any(int(row[3], 16) & (1 << (group - 1)) for row in rows)


def _monitor(pid):
    """(its process state, the bytes of events its netfilter sockets hold unread) of a monitor we started; None
    where it cannot be read (gone) or has no such socket."""
    rows = _netfilter_sockets(pid)
    try:
        with open("/proc/%d/stat" % pid) as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None
    return (state, sum(int(row[4]) for row in rows if row[4].isdigit())) if rows else None


def stalled_monitor(pid):
    """Why a monitor we started still held events of the kernel's when its reading ended, in words; None where it
    held none. A monitor stopped (SIGSTOP) or stuck reads nothing while its socket fills: its reader saw no line and
    nothing failed, so without this the capture was called complete with the events it never printed."""
    state, unread = _monitor(pid) or ("", 0)
    if state in ("T", "t"):
        return "was stopped%s" % (" with %d bytes of events unread" % unread if unread else "")
    return "had %d bytes of events unread" % unread if unread else None


def busy_monitor(pid):
    """Whether a monitor we started runs and still holds events it has not printed: worth waiting for, a little."""
    state, unread = _monitor(pid) or ("T", 0)
    return state not in ("T", "t") and unread > 0


def idle_monitor(pid):
    """Whether a monitor we started has printed every event the kernel gave it: its netfilter sockets hold nothing
    (Rmem 0) and it sleeps, waiting for more (not between a read and its print)."""
    return _monitor(pid) == ("S", 0)


def _dies_with(parent):
    """For the program a reader starts (xtables-monitor, nft monitor): the kernel ends it when its reader dies, also
    by SIGKILL, which runs no cleanup of ours. Without it a killed reader left its monitor running for good."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

    def arrange():
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the reader died before the request took effect
            os._exit(1)  # pylint: disable=protected-access  # in the child, before exec: nothing of ours to clean

    return arrange


def _stop_fifo(path):
    """The stop file as an fd select() wakes on once it is written, where it is a FIFO (the capture's spool makes
    it one; opened for reading and writing, so it never reads as ended while nobody writes); None where it is a path
    to look for (trace_results' stop_file)."""
    try:
        if path and stat.S_ISFIFO(os.lstat(path).st_mode):
            return os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        pass
    return None


class Stream:
    """A live source we start, read until it ends, `duration` passes or `enough()` says so.

    By default a program: read line by line, and ended by its PID (we started it), SIGTERM first.  `ready_file` is
    created once it listens and removed when it is done, so a playbook running this under `async` can wait for it
    before sending traffic; the capture ends as soon as `stop_file` exists, so the playbook need not wait out
    `duration`.  Subclasses read another kind of source (a netlink socket) through `_start`, `_read` and `_end`.
    """

    # Seconds between two looks at a stop file that is a path to look for, and the quiet that shows the events have
    # all been read once it is there (with the source's own word that it holds none, _drained). A stop file that is
    # a FIFO (the capture's spool makes it one) wakes the reader when it is written instead: an idle reader then
    # sleeps until its deadline, where looking every POLL cost each one ~3 ms of CPU a second (100 readers of a
    # 100-host run: 15% of this machine's two cores).
    POLL = 0.05
    SETTLE_BUSY = 2.0

    def __init__(self, argv, duration=None, ready_file=None, stop_file=None, settle=0.3, group=None):
        self.argv = argv
        self.group = group  # the netlink group (NETLINK_NETFILTER) the program listens on, where it is a monitor
        self.duration = duration
        self.ready_file = ready_file
        self.stop_file = stop_file
        self.settle = settle
        self.enough = lambda: False
        self.returncode = None
        self.ended_by = None  # what ended the reading: "deadline" (duration, stop file, enough) or "source"
        self.overruns = 0  # times the kernel dropped events for a full socket buffer (ENOBUFS)
        self.stalled = None  # where the monitor held events it had not printed when the reading ended: why, in words
        self._buffered = b""

    def _start(self):
        """Open the source."""
        try:
            # stderr joins stdout: a monitor's complaints are then counted and shown like unreadable lines.
            proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                                    stdin=subprocess.DEVNULL, env=dict(os.environ, LC_ALL="C", LANG="C"),
                                    preexec_fn=_dies_with(os.getpid()))  # pylint: disable=subprocess-popen-preexec-fn
        except OSError as exc:
            raise HostError("cannot start %s: %s" % (self.argv[0], exc))
        if self.ready_file:
            listening(proc.pid, self.group, self.settle)
        return proc

    def _read(self, source):
        """The complete lines that arrived, or None at the end of the source."""
        chunk = os.read(source.stdout.fileno(), 65536)
        if not chunk:
            return None
        *complete, self._buffered = (self._buffered + chunk).split(b"\n")
        return [line.decode("utf-8", "replace") + "\n" for line in complete]

    def _end(self, source):
        if source.poll() is None:
            if self.group is not None:
                self.stalled = stalled_monitor(source.pid)
            os.kill(source.pid, signal.SIGTERM)
            os.kill(source.pid, signal.SIGCONT)  # a stopped monitor takes its SIGTERM only once it runs
            try:
                source.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.kill(source.pid, signal.SIGKILL)
                source.wait()
        self.returncode = source.returncode
        source.stdout.close()

    @staticmethod
    def _readable(source):
        """What select() waits on."""
        return source.stdout

    @staticmethod
    def _ended(source):
        return source.poll() is not None

    def _printing(self, source):
        return self.group is not None and busy_monitor(source.pid)

    def _drained(self, source):
        """Whether nothing the kernel has sent is still on its way to us (the pipe was just found empty): the
        monitor's socket is empty and it waits. Without a netlink group to look at, never: the settle decides."""
        return self.group is not None and idle_monitor(source.pid)

    def _stop_asked(self, stop_fd, ready):
        """Whether the reading was asked to end: its stop FIFO among what the last select() found `ready`, or the
        stop file that is a path there."""
        if stop_fd is not None:
            return stop_fd in ready
        return bool(self.stop_file) and os.path.exists(self.stop_file)

    def lines(self):
        source = self._start()
        readable = self._readable(source)
        deadline = time.time() + self.duration if self.duration else None
        created = False
        stop_fd = _stop_fifo(self.stop_file)
        try:
            if self.ready_file:
                # Created here, exclusively and not through a symlink; removed only because we created it.
                try:
                    fd = os.open(self.ready_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                except OSError as exc:
                    raise HostError("ready_file=%r: %s; it is created by the capture, give a path that does not "
                                    "exist yet" % (self.ready_file, exc.strerror or exc))
                created = True
                with os.fdopen(fd, "w") as handle:
                    handle.write("%d\n" % os.getpid())
            self.ended_by = "source"
            stopping = False
            last_call = None
            ready = []
            while True:
                timeout = None if deadline is None else deadline - time.time()
                if timeout is not None and timeout <= 0:
                    if stopping and time.time() < last_call and self._printing(source):
                        deadline = time.time() + self.POLL  # a busy monitor still printing what it holds
                        continue
                    self.ended_by = "deadline"
                    break
                if not stopping and self._stop_asked(stop_fd, ready):
                    # The last events of the probe may still be coming in: read until they are all in (an event,
                    # _drained), at most `settle` seconds, and up to SETTLE_BUSY more while the monitor still
                    # prints what it holds (a loaded machine).
                    stopping = True
                    deadline = min(deadline or time.time() + self.settle, time.time() + self.settle)
                    last_call = time.time() + self.settle + self.SETTLE_BUSY
                    continue
                looking = stopping or stop_fd is None and self.stop_file
                waits = [readable] if stopping or stop_fd is None else [readable, stop_fd]
                ready, _w, _x = select.select(waits, [], [], timeout if not looking else
                                              self.POLL if timeout is None else min(self.POLL, timeout))
                if readable not in ready:  # the time to look again, or the stop FIFO written
                    if self._ended(source):
                        break
                    if stopping and self._drained(source):
                        self.ended_by = "deadline"
                        break
                    continue
                lines = self._read(source)
                if lines is None:
                    break
                yield from lines
                if self.enough():
                    deadline = min(deadline or time.time() + self.settle, time.time() + self.settle)
            if self._buffered:
                yield self._buffered.decode("utf-8", "replace")
        finally:
            if stop_fd is not None:
                os.close(stop_fd)
            self._end(source)
            if created:
                try:
                    os.unlink(self.ready_file)
                except FileNotFoundError:  # removed by whoever discarded the capture first
                    pass
