"""`make integration`: the integration suite in shards that run side by side, each on a machine of its own.

Shard 0 runs on this machine as it is. Every other shard runs in namespaces of its own, made by `unshare` (as root):
a network namespace (its own root namespace: the lab's management bridge, its links), a mount namespace in which
/run is a fresh tmpfs (the lab's namespaces under /run/netns, the collection's records under /run/packetpath, the
lab's state directory), /etc an overlay over the machine's whose changes stay in that tmpfs, with an empty tmpfs of
its own on /etc/netns, /sys the sysfs of its network namespace, and a PID namespace whose first process (this script, --init) reaps what is left
and whose end ends whatever still runs there. A shard can therefore build the same lab, with the same names and
addresses, beside the other, and its guard sees only its own machine. Nothing a shard makes outlives it.

Which tests a shard runs is decided by tests/integration/conftest.py; this script checks that the shards' tests
are disjoint and together the whole suite, prints each shard's output, and ends with one line for the suite.
PACKETPATH_SHARDS sets the count (default 2, one per core here; 1 runs the suite as one pytest on the machine).
"""

import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RECORDED = os.path.join(ROOT, "build", "integration")
SHARD_LAB_DIR = "/run/packetpath-lab"  # on the shard's own /run
MACHINE_LAB_DIR = "/var/lib/packetpath-lab"  # pplab's default (tests/lab/pplab/state.py)
OUTCOMES = ("passed", "failed", "skipped", "error", "errors", "xfailed", "xpassed", "deselected")


def isolate(argv):
    """argv run as the first process of a shard's own network, mount and PID namespaces."""
    return ["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private",
            sys.executable, os.path.abspath(__file__), "--init", "--"] + list(argv)


def _mount(*argv):
    subprocess.run(["mount"] + list(argv), check=True)


def init(argv):
    """In the shard's namespaces: its /run, /etc and /sys, loopback up; then argv, reaping every process that ends
    here until argv's own does. Its exit status is argv's."""
    if os.getpid() != 1:
        raise SystemExit("--init runs as the first process of a PID namespace of its own (see isolate())")
    _mount("-t", "tmpfs", "-o", "mode=0755", "pp-shard-run", "/run")
    for folder in ("/run/.shard/upper", "/run/.shard/work"):
        os.makedirs(folder)
    _mount("-t", "overlay", "pp-shard-etc", "-o",
           "lowerdir=/etc,upperdir=/run/.shard/upper,workdir=/run/.shard/work", "/etc")
    # /etc/netns of its own, empty: the machine's (shard 0's lab writes there) shows through an overlay's lower layer.
    os.makedirs("/etc/netns", exist_ok=True)  # in the overlay's upper layer, where the machine has none
    _mount("-t", "tmpfs", "-o", "mode=0755", "pp-shard-etc-netns", "/etc/netns")
    subprocess.run(["umount", "-l", "/sys"], check=True)
    _mount("-t", "sysfs", "pp-shard-sys", "/sys")
    mounts = {line.split()[1]: line.split()[2] for line in open("/proc/self/mounts", encoding="utf-8")}
    if [mounts.get(path) for path in ("/run", "/etc", "/etc/netns", "/sys")] != ["tmpfs", "overlay", "tmpfs", "sysfs"]:
        raise SystemExit("the shard's /run, /etc, /etc/netns and /sys are not its own: %s" % mounts)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    child = os.fork()
    if child == 0:
        os.execvp(argv[0], argv)
    while True:
        pid, status = os.wait()
        if pid == child:
            return os.waitstatus_to_exitcode(status)


def counts(output):
    """{outcome: n} of pytest's closing line ('3 failed, 240 passed, 2 skipped in 601.2s')."""
    lines = [line for line in output.splitlines() if re.search(r"\d+ (%s)\b.* in [\d.]+s" % "|".join(OUTCOMES), line)]
    found = {}
    for number, outcome in re.findall(r"(\d+) (\w+)", lines[-1] if lines else ""):
        if outcome in OUTCOMES:
            outcome = "errors" if outcome == "error" else outcome
            found[outcome] = found.get(outcome, 0) + int(number)
    return found


def check_selection(count):
    """Problems with the shards' selections: a test in two shards, or in none."""
    chosen = []
    for index in range(count):
        with open(os.path.join(RECORDED, "selected-%d.json" % index), encoding="utf-8") as handle:
            chosen.append(json.load(handle))
    everything, seen, problems = set(chosen[0]["collected"]), {}, []
    for index, shard in enumerate(chosen):
        if set(shard["collected"]) != everything:
            problems.append("shard %d collected another suite than shard 0" % index)
        for nodeid in shard["selected"]:
            if nodeid in seen:
                problems.append("%s is in shards %d and %d" % (nodeid, seen[nodeid], index))
            seen[nodeid] = index
    problems += ["%s is in no shard" % nodeid for nodeid in sorted(everything - set(seen))]
    return problems


def main(pytest_args):
    count = int(os.environ.get("PACKETPATH_SHARDS", "2"))
    os.makedirs(RECORDED, exist_ok=True)
    started, running = time.monotonic(), []
    for index in range(count):
        for stale in ("selected-%d.json" % index, "durations-%d.json" % index):
            if os.path.exists(os.path.join(RECORDED, stale)):
                os.unlink(os.path.join(RECORDED, stale))
        argv = [sys.executable, "-m", "pytest", "-q", "--durations=10", "-p", "no:cacheprovider",
                "--basetemp=%s" % os.path.join(RECORDED, "tmp-%d" % index)] + list(pytest_args)
        env = dict(os.environ, PACKETPATH_SHARD="%d/%d" % (index, count))
        if index:
            # Its own lab state and SSH masters, on its own /run: the same addresses as shard 0's lab must never
            # share a master connection.
            # The release roots are the machine's cache, one for every shard (built once, under a lock).
            env.update(PACKETPATH_LAB_DIR=SHARD_LAB_DIR, ANSIBLE_SSH_CONTROL_PATH_DIR="/run/packetpath-ansible-cp",
                       PACKETPATH_LAB_ROOTS=os.environ.get("PACKETPATH_LAB_ROOTS") or os.path.join(
                           os.environ.get("PACKETPATH_LAB_DIR", MACHINE_LAB_DIR), "roots"))
        log = open(os.path.join(RECORDED, "shard-%d.log" % index), "w", encoding="utf-8")  # pylint: disable=consider-using-with
        running.append((subprocess.Popen(isolate(argv) if index else argv, env=env, stdout=log,  # pylint: disable=consider-using-with
                                         stderr=subprocess.STDOUT, cwd=ROOT), log))
    total, failed = {}, False
    for index, (proc, log) in enumerate(running):
        status = proc.wait()
        log.close()
        with open(log.name, encoding="utf-8") as handle:
            output = handle.read()
        print("===== shard %d of %d (exit %d) =====" % (index, count, status))
        print(output.rstrip())
        for outcome, number in counts(output).items():
            total[outcome] = total.get(outcome, 0) + number
        failed |= status != 0
    problems = check_selection(count) if count > 1 else []
    for problem in problems:
        print("shards: %s" % problem)
    merged = {}
    for index in range(count):
        path = os.path.join(RECORDED, "durations-%d.json" % index)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                merged.update(json.load(handle))
    with open(os.path.join(RECORDED, "durations.json"), "w", encoding="utf-8") as handle:
        json.dump(merged, handle, indent=1, sort_keys=True)
    print("%d shards side by side in %.0f s; %d errors" % (count, time.monotonic() - started, total.get("errors", 0)))
    print("integration: %d passed, %d failed, %d skipped" % (
        total.get("passed", 0), total.get("failed", 0) + total.get("errors", 0), total.get("skipped", 0)))
    return 1 if failed or problems or total.get("failed") or total.get("errors") else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--init"]:
        sys.exit(init(sys.argv[3:] if sys.argv[2:3] == ["--"] else sys.argv[2:]))
    sys.exit(main(sys.argv[1:]))
