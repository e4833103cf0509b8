"""File sources on odd input: a FIFO is refused instead of hanging, a file with gzip's magic that is no gzip fails
by name instead of a traceback, and one endless line is cut instead of taking the memory. The good lines around
are the seed's real kernel-log lines."""

import gzip
import os
import threading

import pytest
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import HostError
from ansible_collections.packetpath.linux.plugins.module_utils.capture import sources
from recorded import fixture_path

SEED = fixture_path("traces", "legacy-seed-dmesg.txt")


def seed_lines():
    with open(SEED, encoding="utf-8") as handle:
        return handle.readlines()


def test_a_fifo_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(HostError, match="not a regular file; nothing was read"):
        list(sources.read_file(str(fifo)))


def test_gzip_s_magic_without_gzip_fails_by_name(tmp_path):
    fake = tmp_path / "kern.log.2.gz"
    fake.write_bytes(b"\x1f\x8b" + b"not gzip at all\n" * 10)
    with pytest.raises(HostError, match="starts like gzip but cannot be read as gzip"):
        list(sources.read_file(str(fake)))


def test_a_real_gzip_reads_as_the_plain_file(tmp_path):
    packed = tmp_path / "kern.log.2.gz"
    with gzip.open(packed, "wt", encoding="utf-8") as handle:
        handle.writelines(seed_lines())
    assert list(sources.read_file(str(packed))) == seed_lines()


def test_an_endless_line_is_cut_and_the_lines_after_it_are_read(tmp_path):
    good = seed_lines()
    log = tmp_path / "kern.log"
    with open(log, "w", encoding="utf-8") as handle:
        handle.write(good[0])
        handle.write("x" * (3 * sources.MAX_LINE + 17) + "\n")
        handle.writelines(good[1:])
    read = list(sources.read_file(str(log)))
    assert read[0] == good[0] and read[2:] == good[1:]
    assert len(read[1]) == sources.MAX_LINE + 1 and read[1].endswith("\n")


def test_a_ready_file_that_exists_is_refused_and_left_as_it_was(tmp_path):
    """The ready file is the capture's own: created exclusively, not through a symlink, removed only if made."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "ready"
    link.symlink_to(victim)
    for ready in (victim, link):
        stream = sources.Stream(["true"], duration=1, ready_file=str(ready))
        with pytest.raises(HostError, match="ready_file=.*give a path that does not exist yet"):
            list(stream.lines())
    assert victim.read_text() == "precious\n" and link.is_symlink()


def test_a_ready_file_of_ours_is_made_and_removed(tmp_path):
    ready = tmp_path / "ready"
    seen = []
    stream = sources.Stream(["echo", "one line"], duration=5, ready_file=str(ready))
    for line in stream.lines():
        seen.append((line, ready.exists()))
    assert seen == [("one line\n", True)] and not ready.exists()


# A process that opens a NETLINK_NETFILTER socket (as a monitor does) and waits; with an argument, it first sends
# itself a netlink message it does not read, so that its socket holds something (Rmem above 0).
NETFILTER_SOCKET = r"""
import socket, sys, time
sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
sock.bind((0, 0))
if len(sys.argv) > 1:
    # NLMSG_NOOP to itself: queued on its own socket, never read.
    sock.sendto(b"\x10\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", (sock.getsockname()[0], 0))
print("ready", flush=True)
time.sleep(30)
"""


@pytest.mark.parametrize("unread, idle", [(False, True), (True, False)])
def test_a_monitor_is_idle_only_asleep_with_its_netfilter_socket_empty(unread, idle):
    import subprocess
    import sys
    import time
    child = subprocess.Popen([sys.executable, "-c", NETFILTER_SOCKET] + (["unread"] if unread else []),  # pylint: disable=consider-using-with
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        asleep = time.time() + (1 if unread else 5)  # it prints, then goes to sleep: seen idle from then on, or never
        while not sources.idle_monitor(child.pid) and time.time() < asleep:
            time.sleep(0.01)
        assert sources.idle_monitor(child.pid) is idle
    finally:
        child.kill()
        child.wait()
    assert sources.idle_monitor(child.pid) is False  # gone


def test_a_process_without_a_netfilter_socket_is_no_idle_monitor():
    assert sources.idle_monitor(os.getpid()) is False


def write_fifo(path):
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, b"stop\n")
    finally:
        os.close(fd)


def test_a_reader_whose_stop_file_is_a_fifo_sleeps_until_it_is_written(tmp_path, monkeypatch):
    """The capture's spool makes the stop file a FIFO: the reader of an idle source waits in one select() until the
    collection writes it, instead of looking for the file every POLL (~3 ms of CPU a second per reader); once asked,
    it reads what is still coming for `settle` and ends. A stop file that is a path is still looked for."""
    stop = tmp_path / "flow.stop"
    os.mkfifo(str(stop), 0o600)
    waits = []
    real_select = sources.select.select

    def counting(readers, writers, errors, timeout=None):
        waits.append(timeout)
        return real_select(readers, writers, errors, timeout)

    monkeypatch.setattr(sources.select, "select", counting)
    stream = sources.Stream(["sleep", "30"], duration=30, stop_file=str(stop), settle=0.1)
    lines = stream.lines()
    timer = threading.Timer(1.0, write_fifo, (str(stop),))
    timer.start()
    try:
        assert list(lines) == []
    finally:
        timer.cancel()
    asleep = [timeout for timeout in waits if timeout is None or timeout > sources.Stream.POLL]
    assert len(asleep) == 1 and asleep[0] > 25, waits  # one wait, until the deadline or the FIFO
    assert len(waits) < 10 and stream.ended_by == "deadline" and stream.returncode == -15, waits

    # trace_results' stop_file is a path that does not exist yet: looked for, and the reading ends once it exists.
    path = tmp_path / "asked.stop"
    stream = sources.Stream(["sleep", "30"], duration=30, stop_file=str(path), settle=0.1)
    timer = threading.Timer(0.3, path.write_text, ("stop\n",))
    timer.start()
    assert list(stream.lines()) == [] and stream.ended_by == "deadline"
