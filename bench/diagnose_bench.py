"""`make bench`: diagnose_port against playbooks of ansible.builtin.ping tasks on the same hosts, in the same run.

- A 3-host incident lab (incidents/forward-drop): the time to the verdict against 3 ping tasks per host, and the
  remote module executions per host, counted by the targets themselves (every module run starts the host's Python
  through a wrapper that notes the network namespace it runs in). Target (issues #14, #28): at most 2 per traced
  host (arm; collect, which switches the trace off), plus the probe on probe_from.
- The arm step on one host of that lab (trace_rule capture=true, then trace off), best of 3, with the kernel's drop
  reasons (a bpftrace program started beside the capture) and without: the time they add per host.
- The `scale` lab, 10 and 50 hosts with forks 25: against as many ping tasks per host as the diagnosis ran. Target
  (issue #7): at most 2x.

The labs are torn down at the end, also on failure.
"""

import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.path.dirname(sys.executable)
LAB = [sys.executable, "-m", "pplab"]
INVENTORY = "/var/lib/packetpath-lab/inventory.yml"
ENV = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "build", "collections"), ANSIBLE_FORKS="25",
           PYTHONPATH=os.path.join(ROOT, "tests", "lab"), ANSIBLE_HOST_KEY_CHECKING="False")


def playbook(argv):
    started = time.perf_counter()
    done = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", INVENTORY] + argv, env=ENV,
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError("ansible-playbook %s failed:\n%s" % (" ".join(argv), done.stdout[-3000:]))
    return seconds, done.stdout


def tasks_per_host(output, host):
    """ok + changed + skipped + failed of one host in the recap: the tasks it went through."""
    found = re.search(r"^%s\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)\s+skipped=(\d+)" % host,
                      output, re.M)
    return sum(int(found.group(i)) for i in (1, 3, 4))


def ping_playbook(count, directory):
    path = os.path.join(directory, "ping-%d.yml" % count)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("- name: Baseline\n  hosts: \"{{ limit_hosts | default('all') }}\"\n  gather_facts: false\n"
                     "  tasks:\n")
        for number in range(count):
            handle.write("    - name: Ping %d\n      ansible.builtin.ping:\n" % number)
    return path


def measure(hosts, directory):
    limit = ",".join("h%02d" % number for number in range(1, hosts + 1))
    # Without the kernel's drop reasons: here every host's bpftrace would compile on the same 2 cores (on a fleet,
    # each on its own host); their cost per host is measured on the incident lab.
    diagnose = ["packetpath.linux.diagnose_port", "-l", limit, "-e", "trace_hosts=all", "-e", "dport=8081",
                "-e", "dst=198.18.0.12", "-e", "probe_from=h01", "-e", "report_dir=%s/report-%d" % (directory, hosts),
                "-e", "drop_reasons=never"]
    seconds, output = playbook(diagnose)
    tasks = tasks_per_host(output, "h03")
    baseline, _output = playbook([ping_playbook(tasks, directory), "-l", limit])
    return seconds, baseline, tasks


# The targets' Python, noting each start: one line per remote module execution, with the namespace's inode.
COUNTING_PYTHON = """#!/bin/sh
echo "$(stat -L -c %%i /proc/self/ns/net)" >> %s
exec /usr/bin/python3 "$@"
"""
INCIDENT_HOSTS = ("client", "router", "server")


def measure_incident(directory):
    """(seconds to the verdict, seconds for 3 pings per host, {host: remote executions})."""
    log = os.path.join(directory, "executions.log")
    wrapper = os.path.join(directory, "counting-python")
    with open(wrapper, "w", encoding="utf-8") as handle:
        handle.write(COUNTING_PYTHON % log)
    os.chmod(wrapper, 0o755)
    counting = ["-e", "ansible_python_interpreter=%s" % wrapper]
    subprocess.run(LAB + ["up", "incidents/forward-drop"], env=ENV, check=True, capture_output=True)
    seconds, _output = playbook(["packetpath.linux.diagnose_port", "-e", "trace_hosts=all", "-e", "dport=8080",
                                 "-e", "dst=198.18.20.2", "-e", "probe_from=client",
                                 "-e", "report_dir=%s/report-incident" % directory] + counting)
    inode = {host: str(os.stat("/run/netns/pp-" + host).st_ino) for host in INCIDENT_HOSTS}
    with open(log, encoding="utf-8") as handle:
        started = handle.read().split()
    executions = {host: started.count(inode[host]) for host in INCIDENT_HOSTS}
    baseline, _output = playbook([ping_playbook(3, directory), "-l", ",".join(INCIDENT_HOSTS)] + counting)
    without, _output = playbook(["packetpath.linux.diagnose_port", "-e", "trace_hosts=all", "-e", "dport=8080",
                                 "-e", "dst=198.18.20.2", "-e", "probe_from=client", "-e", "drop_reasons=never",
                                 "-e", "report_dir=%s/report-incident-never" % directory])
    arms = {choice: arm_seconds("router", choice) for choice in ("never", "auto")}
    subprocess.run(LAB + ["down"], env=ENV, capture_output=True, check=False)
    return seconds, baseline, executions, without, arms


def arm_seconds(host, drop_reasons, runs=3):
    """The best of `runs` arms of one host (trace_rule capture=true, as the role arms it), each switched off after."""
    best = None
    for _run in range(runs):
        argv = [os.path.join(BIN, "ansible"), "-i", INVENTORY, host, "-m", "packetpath.linux.trace_rule", "-a"]
        started = time.perf_counter()
        done = subprocess.run(argv + ["proto=tcp port=48080 expires=60 capture=true drop_reasons=%s" % drop_reasons],
                              env=ENV, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError("arming %s failed:\n%s" % (host, done.stdout[-3000:]))
        subprocess.run(argv + ["proto=tcp port=48080 state=absent"], env=ENV, capture_output=True, check=False)
        best = seconds if best is None else min(best, seconds)
    return best


def main():
    subprocess.run(LAB + ["down"], env=ENV, capture_output=True, check=False)
    results = {}
    try:
        with tempfile.TemporaryDirectory() as directory:
            incident = measure_incident(directory)
        subprocess.run(LAB + ["up", "scale", "--hosts", "50"], env=ENV, check=True, capture_output=True)
        with tempfile.TemporaryDirectory() as directory:
            for hosts in (10, 50):
                results[hosts] = measure(hosts, directory)
    finally:
        subprocess.run(LAB + ["down"], env=ENV, capture_output=True, check=False)
    seconds, baseline, executions, without, arms = incident
    print("diagnose_port on a 3-host incident lab (forward-drop): %.1f s to the verdict vs %.1f s for 3 ping tasks "
          "per host: %.2fx (with the kernel's drop reasons; without them %.1f s: %.2fx)" % (
              seconds, baseline, seconds / baseline, without, without / baseline))
    print("  arming one host (best of 3): %.2f s without drop reasons, %.2f s with them: +%.2f s per host" % (
        arms["never"], arms["auto"], arms["auto"] - arms["never"]))
    print("  remote module executions per host: %s (target <= 2 per traced host, plus the probe on client: %s)" % (
        ", ".join("%s %d" % item for item in sorted(executions.items())),
        "met" if executions["client"] <= 3 and max(executions["router"], executions["server"]) <= 2 else "MISSED"))
    print("diagnose_port on the scale lab (iptables-nft hosts: trace_rule capture=true, detached; drop_reasons=never),"
          " forks 25")
    for hosts, (seconds, baseline, tasks) in sorted(results.items()):
        ratio = seconds / baseline
        print("  %2d hosts: %5.1f s vs %5.1f s for %d ping tasks per host: %.2fx (target <= 2x: %s)" % (
            hosts, seconds, baseline, tasks, ratio, "met" if ratio <= 2 else "MISSED"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
