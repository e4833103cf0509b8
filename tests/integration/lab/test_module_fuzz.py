"""Thousands of generated arguments for every module (tests/integration/module_fuzz.py), run in a scratch network
namespace of their own: no traceback, every refusal names an option it was given and changes nothing, check mode
changes nothing, and what an accepted case did its undoing removes. The seed is fixed so that a failure can be
run again (PACKETPATH_FUZZ_SEED picks another)."""

import json
import os
import sys

from labtools import ROOT, in_netns, scratch

SCRATCH = "ppscratch-fuzz"  # not "pp-": lab-down's and the guard's names
TRACE_FILE = os.path.join(ROOT, "tests", "unit", "fixtures", "traces", "iptables_legacy-kube-node1-icmp4-dmesg.txt")
RUNNER = os.path.join(ROOT, "tests", "integration", "module_fuzz.py")


def test_generated_arguments_never_crash_a_module_and_a_refusal_changes_nothing(tmp_path):
    with scratch(SCRATCH, sysctl_d=True):
        seed = os.environ.get("PACKETPATH_FUZZ_SEED", "1")
        proc = in_netns(SCRATCH, [sys.executable, RUNNER, os.path.join(ROOT, "build", "collections"), SCRATCH,
                                  str(tmp_path), seed, TRACE_FILE], check=False, timeout=1200)
        lines = proc.stdout.strip().splitlines()
        assert proc.returncode == 0 and lines, proc.stderr[-3000:]
        counts, defects = json.loads(lines[-1]), lines[:-1]
        assert counts["cases"] >= 5000 and counts["accepted"] >= 500 and counts["check_mode"] >= 500, counts
        assert defects == [], "%d of %d cases went wrong (seed %s):\n%s" % (
            len(defects), counts["cases"], seed, "\n".join(line[:600] for line in defects[:40]))
