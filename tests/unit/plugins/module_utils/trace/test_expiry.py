"""The expiry's sleeper, run for real in a temp directory (its record there): a delete that fails is tried three
times and kept in the record; one that passes on a later attempt, or finds nothing to delete, is no failure."""

import errno
import json
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.packetpath.linux.plugins.module_utils._common import hoststate
from ansible_collections.packetpath.linux.plugins.module_utils.fleet import host_audit
from ansible_collections.packetpath.linux.plugins.module_utils.trace import expiry


def fire(tmp_path, commands):
    """The sleeper with these delete commands, due in half a second; its record afterwards (None once removed)."""
    record = tmp_path / "packetpath" / "net-1-2" / "expiry" / "0123456789ab.json"  # as ROOT/net-<inode>-<cookie>
    record.parent.mkdir(parents=True)
    plan = {"expires_at": time.time() + 0.5, "commands": [[argv, None] for argv in commands], "record": str(record),
            "drop_empty_nft_table": None, "nf_log": None}
    with subprocess.Popen([sys.executable, "-c", expiry.SLEEPER, expiry.MARKER, json.dumps(plan)]) as sleeper:
        record.write_text(json.dumps({"pid": sleeper.pid}))  # as arm() writes it: the record names its sleeper
        assert sleeper.wait(timeout=30) == 0
    return json.loads(record.read_text()) if record.exists() else None


def test_a_delete_that_keeps_failing_is_tried_three_times_and_kept_in_the_record(tmp_path):
    after = tmp_path / "after"
    kept = fire(tmp_path, [["sh", "-c", "echo 'Another app is currently holding the xtables lock' >&2; exit 4"],
                           ["touch", str(after)]])
    assert kept["failed"] == [{"argv": kept["failed"][0]["argv"], "rc": 4, "attempts": 3,
                               "stderr": "Another app is currently holding the xtables lock"}]
    assert after.exists(), "the deletes after a failed one still ran"
    # The audit's trace_leftovers names it from the record as the sleeper kept it.
    assert host_audit._failed_delete(kept["failed"][0]).endswith(  # pylint: disable=protected-access
        "failed 3 times: Another app is currently holding the xtables lock")


def test_a_delete_that_passes_on_its_third_attempt_is_no_failure(tmp_path):
    count = tmp_path / "count"
    assert fire(tmp_path, [["sh", "-c", "n=$(cat %s 2>/dev/null || echo 0); echo $((n + 1)) > %s; [ $n -ge 2 ]"
                            % (count, count)]]) is None
    assert count.read_text().strip() == "3"
    assert list(tmp_path.iterdir()) == [count], "the record's directories, emptied, stay behind"


def test_nothing_to_delete_is_no_failure(tmp_path):
    # nft's answer for a chain that is not there (never inserted, or removed by someone else), and iptables'.
    for message in ("Error: Could not process rule: No such file or directory",
                    "iptables: Bad rule (does a matching rule exist in that chain?)."):
        (tmp_path / message[:3]).mkdir()
        assert fire(tmp_path / message[:3], [["sh", "-c", "echo '%s' >&2; exit 1" % message]]) is None


def cannot_fork(*_args, **_kwargs):
    raise OSError(errno.EAGAIN, "fork: Resource temporarily unavailable")


def running(flow_id):
    """The flow's sleeper once it runs the sleeper's code (until its exec, /proc shows the forking Python)."""
    deadline = time.time() + 5
    while expiry.current(flow_id) is None and time.time() < deadline:
        time.sleep(0.02)
    return expiry.current(flow_id)


def test_a_rearm_keeps_the_old_deadline_until_the_new_one_is_recorded(tmp_path, monkeypatch):
    """Issue #27: a kill (here: a sleeper that cannot start) in the middle of a re-arm left the flow without any
    deadline, because the old sleeper was ended first."""
    monkeypatch.setattr(hoststate, "ROOT", str(tmp_path))
    flow_id = "0123456789ab"
    first = expiry.arm(flow_id, "nftables", time.time() + 60, [])
    try:
        running(flow_id)
        with monkeypatch.context() as broken:
            broken.setattr(expiry.subprocess, "Popen", cannot_fork)
            with pytest.raises(OSError):
                expiry.arm(flow_id, "nftables", time.time() + 120, [])
        assert expiry.current(flow_id) == first, "the old sleeper and its record must stay"
        second = expiry.arm(flow_id, "nftables", time.time() + 120, [])
        assert second["pid"] != first["pid"] and running(flow_id) == second
        deadline = time.time() + 5
        while hoststate.start_time(first["pid"]) == first["started"] and time.time() < deadline:
            time.sleep(0.05)  # SIGTERM'd; gone once reaped (pytest's process is its parent: wait for it)
            try:
                os.waitpid(first["pid"], os.WNOHANG)
            except ChildProcessError:
                pass
        assert hoststate.start_time(first["pid"]) != first["started"], "the old sleeper ended once the new one ran"
    finally:
        expiry.cancel(flow_id)
