"""The expiry's sleeper, run for real in a temp directory (its record there): a delete that fails is tried three
times and kept in the record; one that passes on a later attempt, or finds nothing to delete, is no failure."""

import json
import subprocess
import sys
import time

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
