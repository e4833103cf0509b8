"""The live capture's files. Its ready file: the reader creates it, then writes its PID and a newline, so trace_rule waits for
the whole line (a CI run once read it between the two and failed with "list index out of range"). What a
collection says the capture may lack, and no spool file written through a link (issue #27)."""

import os
import time

import pytest

from ansible_collections.packetpath.linux.plugins.module_utils._common import hoststate
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import HostError
from ansible_collections.packetpath.linux.plugins.module_utils.capture import sources, spool


def test_the_reader_listens_once_its_ready_file_holds_the_whole_line(tmp_path):
    ready = tmp_path / "flow.ready"
    assert spool._listening(str(ready)) is None  # pylint: disable=protected-access  # not created yet
    for partial in ("", "4242"):
        ready.write_text(partial)
        assert spool._listening(str(ready)) is None, repr(partial)  # pylint: disable=protected-access
    ready.write_text("4242\n")
    assert spool._listening(str(ready)) == 4242  # pylint: disable=protected-access


FOUND = {"pid": 4242, "source": "xtables_monitor", "expires_at": 1795546272.0}


def test_the_collection_says_what_the_capture_may_lack():
    assert spool.losses(FOUND, None, True, False) == [
        "the capture's reader (pid 4242) ended before it was collected, without finishing its spool (killed, its "
        "source failed, or its filesystem was full): packets after its end are missing"]
    full = {"ended_by": "spool", "spool_error": "No space left on device", "returncode": -15, "overruns": 0}
    assert spool.losses(FOUND, full, False, True) == [
        "the capture could not write its spool (No space left on device) and ended: packets after that are missing"]
    quit_early = {"ended_by": "source", "returncode": 1, "overruns": 0}  # xtables-monitor's exit on ENOBUFS
    assert spool.losses(FOUND, quit_early, False, True) == [
        "the capture's xtables_monitor ended on its own before it was collected (rc=1): packets after its end are "
        "missing"]
    expired = {"ended_by": "deadline", "returncode": -15, "overruns": 2}
    assert spool.losses(FOUND, expired, False, True) == [
        "the capture had reached its deadline (the trace's expiry) before it was collected: packets after that were "
        "not captured",
        "the kernel dropped trace events 2 time(s) for a full socket buffer (ENOBUFS): the capture missed some packets"]
    assert spool.losses(FOUND, dict(expired, overruns=0), False, False) == []  # stopped by the collection: complete


def test_the_stop_file_is_never_written_through_a_link(tmp_path, monkeypatch):
    monkeypatch.setattr(hoststate, "ROOT", str(tmp_path / "run"))
    files = spool.paths("0123456789ab")
    os.makedirs(os.path.dirname(files["record"]))
    # A reader still running (this process stands in for it): the collection asks it to stop.
    hoststate.write(files["record"], dict(FOUND, pid=os.getpid(), started=hoststate.start_time(os.getpid())))
    target = tmp_path / "precious"
    target.write_text("kept\n")
    os.symlink(str(target), files["stop"])
    with pytest.raises(HostError, match="cannot ask the capture to stop .*Too many levels of symbolic links"):
        spool.collect("0123456789ab")
    assert target.read_text() == "kept\n"


def test_a_reader_that_ended_is_not_asked_to_stop_so_a_full_filesystem_still_gives_what_was_read(tmp_path, monkeypatch):
    """Its spool's filesystem full, the reader ended: the stop file (which could not be written there either) is
    not needed, and the collection returns what was spooled, saying what is missing."""
    monkeypatch.setattr(hoststate, "ROOT", str(tmp_path / "run"))
    files = spool.paths("0123456789ab")
    os.makedirs(os.path.dirname(files["record"]))
    hoststate.write(files["record"], dict(FOUND, started=-1, lines=files["lines"]))  # a reader that no longer runs
    with open(files["lines"], "w") as handle:
        handle.write("what was spooled\n")
    os.chmod(os.path.dirname(files["record"]), 0o500)  # nothing more can be created there, as on a full filesystem
    try:
        found, lines = spool.collect("0123456789ab")
    finally:
        os.chmod(os.path.dirname(files["record"]), 0o700)
    assert lines == files["lines"] and not os.path.exists(files["stop"])
    assert found["losses"][0].startswith("the capture's reader (pid 4242) ended before it was collected")


def test_a_spool_that_cannot_take_a_line_ends_the_reading_and_its_program(tmp_path):
    """/dev/full answers every write with ENOSPC, as a full filesystem does: the reader ends its program (killed by
    PID, not left to write into a closed pipe) and says why in its done file."""
    stream = sources.Stream(["yes", "a trace line"], duration=30)
    files = {"lines": "/dev/full", "done": str(tmp_path / "flow.done")}
    started = time.monotonic()
    spool._serve(stream.lines(), stream, files)  # pylint: disable=protected-access
    assert time.monotonic() - started < 10  # not the 30 s of its duration
    done = hoststate.read(files["done"])
    assert done["ended_by"] == "spool" and done["spool_error"] == "No space left on device"
    assert done["returncode"] == -15  # ended by our SIGTERM


def test_a_reader_whose_ready_file_was_removed_first_ends_quietly(tmp_path):
    """The capture discarded (its files removed) while the reader ends: the reader's clean-up of its ready file
    raised FileNotFoundError, which the spool took for a spool error and answered with a done file written after
    the discard, left for good (found by tests/integration/module_fuzz.py)."""
    ready = tmp_path / "flow.ready"
    stream = sources.Stream(["yes", "a trace line"], duration=30, ready_file=str(ready), settle=0)
    lines = stream.lines()
    assert next(lines) == "a trace line\n" and ready.exists()
    ready.unlink()
    lines.close()  # no FileNotFoundError
    assert stream.returncode == -15


def test_a_reader_that_does_not_finish_when_asked_makes_the_capture_incomplete():
    """Issue #42: alive but not finishing (stopped, stuck) was reported complete. This process runs and is not
    stopped: it is a reader that did not answer in time."""
    alive = dict(FOUND, pid=os.getpid())
    assert spool.losses(alive, None, False, False, stalled=True) == [
        "the capture's reader (pid %d) did not finish its spool when asked (it did not answer within 10 s): packets it "
        "had not written yet are missing" % os.getpid()]
    assert not spool.losses(alive, None, False, False)
