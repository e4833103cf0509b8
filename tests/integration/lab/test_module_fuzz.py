"""Thousands of generated arguments for every module (tests/integration/module_fuzz.py), run in scratch network
namespaces of their own: no traceback, every refusal names an option it was given and changes nothing, check mode
changes nothing, and what an accepted case did its undoing removes. The seed is fixed so that a failure can be
run again (PACKETPATH_FUZZ_SEED picks another). Two runners, one per core, each in its own namespace, share the
modules: a module's cases are the same whichever runner takes it."""

import contextlib
import json
import os
import subprocess
import sys

from labtools import ENV, ROOT, scratch
from module_fuzz import MODULES

SCRATCHES = ("ppscratch-fuzz0", "ppscratch-fuzz1")  # not "pp-": lab-down's and the guard's names
TRACE_FILE = os.path.join(ROOT, "tests", "unit", "fixtures", "traces", "iptables_legacy-kube-node1-icmp4-dmesg.txt")
RUNNER = os.path.join(ROOT, "tests", "integration", "module_fuzz.py")


def test_generated_arguments_never_crash_a_module_and_a_refusal_changes_nothing(tmp_path):
    seed = os.environ.get("PACKETPATH_FUZZ_SEED", "1")
    claims = tmp_path / "claims"
    claims.mkdir()
    with contextlib.ExitStack() as stack:
        runners = []
        for netns in SCRATCHES:
            stack.enter_context(scratch(netns, sysctl_d=True))
            work = tmp_path / netns
            work.mkdir()
            runners.append(subprocess.Popen(  # pylint: disable=consider-using-with
                ["ip", "netns", "exec", netns, sys.executable, RUNNER, os.path.join(ROOT, "build", "collections"),
                 netns, str(work), seed, TRACE_FILE, str(claims)],
                env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            stack.callback(runners[-1].kill)  # ours, by PID, also when the other fails
        outputs = [runner.communicate(timeout=1200) for runner in runners]
    counts, defects = {"cases": 0, "accepted": 0, "check_mode": 0, "modules": [], "seconds": {}}, []
    for runner, (stdout, stderr) in zip(runners, outputs):
        lines = stdout.strip().splitlines()
        assert runner.returncode == 0 and lines, stderr[-3000:]
        found = json.loads(lines[-1])
        defects += lines[:-1]
        for key in ("cases", "accepted", "check_mode", "modules"):
            counts[key] += found.get(key, [] if key == "modules" else 0)
        counts["seconds"].update(found.get("seconds", {}))  # each module's time in its runner, where it went
    # The counts the docs quote (README, docs/safety.md), kept beside the run's durations.
    os.makedirs(os.path.join(ROOT, "build", "integration"), exist_ok=True)
    with open(os.path.join(ROOT, "build", "integration", "fuzz-counts.json"), "w", encoding="utf-8") as handle:
        json.dump(dict(counts, seed=seed), handle, sort_keys=True)
    assert sorted(counts["modules"]) == sorted(MODULES), counts  # each module fuzzed, by one runner
    assert counts["cases"] >= 5000 and counts["accepted"] >= 500 and counts["check_mode"] >= 500, counts
    assert defects == [], "%d of %d cases went wrong (seed %s):\n%s" % (
        len(defects), counts["cases"], seed, "\n".join(line[:600] for line in defects[:40]))
