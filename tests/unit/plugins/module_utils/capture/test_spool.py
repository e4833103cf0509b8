"""The live capture's files. Its ready file: the reader creates it, then writes its PID and a newline, so trace_rule waits for
the whole line (a CI run once read it between the two and failed with "list index out of range"). What a
collection says the capture may lack, and no spool file written through a link (issue #27)."""

import os

import pytest

from ansible_collections.packetpath.linux.plugins.module_utils._common import hoststate
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import HostError
from ansible_collections.packetpath.linux.plugins.module_utils.capture import spool


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
        "the capture's reader (pid 4242) ended before it was collected, without finishing its spool (killed, or its "
        "source failed): packets after its end are missing"]
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
    hoststate.write(files["record"], dict(FOUND, started=-1))  # a reader that no longer runs
    target = tmp_path / "precious"
    target.write_text("kept\n")
    os.symlink(str(target), files["stop"])
    with pytest.raises(HostError, match="cannot ask the capture to stop .*Too many levels of symbolic links"):
        spool.collect("0123456789ab")
    assert target.read_text() == "kept\n"
