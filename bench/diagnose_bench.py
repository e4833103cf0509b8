"""`make bench`: diagnose_port against playbooks of ansible.builtin.ping tasks on the same hosts, in the same run.

- A 3-host incident lab (incidents/forward-drop): the time to the verdict against 3 ping tasks per host, and the
  remote module executions per host, counted by the targets themselves (every module run starts the host's Python
  through a wrapper that notes the network namespace it runs in). Target (issues #14, #28): at most 2 per traced
  host (arm; collect, which switches the trace off), plus the probe on probe_from.
- The arm step on one host of that lab (trace_rule capture=true, then trace off), best of 3, with the kernel's drop
  reasons (a bpftrace program started beside the capture) and without: the time they add per host.
- The `scale` lab, 10 and 50 hosts with forks 25: against as many ping tasks per host as the diagnosis ran. Target
  (issue #7): at most 2x. With PACKETPATH_BENCH_LARGE=100, 100 hosts with forks 50 against their floor too (issue
  #28: within 100 s).
- Both labs against their floor (issue #28): the same SSH round trips as pings (a ping per module execution the
  diagnosis makes on a traced host, one more on probe_from for the probe) plus the probe's own wait, taken from the
  report. And the CPU each costs per host, in the same run: the controller's (this script's children: ansible and
  its ssh clients) and the hosts' (the lab hosts' sshd and everything it ran; the detached capture readers and
  expiry sleepers are not its children and are not counted).

The labs are torn down at the end, also on failure.
"""

import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

import figures

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.path.dirname(sys.executable)
LAB = [sys.executable, "-m", "pplab"]
INVENTORY = "/var/lib/packetpath-lab/inventory.yml"
ENV = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "build", "collections"), ANSIBLE_FORKS="25",
           PYTHONPATH=os.path.join(ROOT, "tests", "lab"), ANSIBLE_HOST_KEY_CHECKING="False")


TICKS = os.sysconf("SC_CLK_TCK")


def playbook(argv, hosts=()):
    """(seconds, output); with `hosts`, also the CPU seconds spent by the controller and by those lab hosts."""
    controller = _children_cpu()
    on_hosts = _hosts_cpu(hosts)
    started = time.perf_counter()
    done = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", INVENTORY] + argv, env=ENV,
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError("ansible-playbook %s failed:\n%s" % (" ".join(argv), done.stdout[-3000:]))
    if hosts:
        return seconds, done.stdout, _children_cpu() - controller, _cpu_delta(on_hosts, _hosts_cpu(hosts))
    return seconds, done.stdout


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _hosts_cpu(hosts):
    """{pid: (start time, CPU ticks of it and its reaped children)} of the processes in the hosts' namespaces."""
    found = {}
    for host in hosts:
        listed = subprocess.run(["ip", "netns", "pids", "pp-" + host], capture_output=True, text=True, check=False)
        for pid in listed.stdout.split():
            try:
                with open("/proc/%s/stat" % pid, encoding="utf-8") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            found[pid] = (fields[19], sum(int(value) for value in fields[11:15]))  # starttime; utime..cstime
    return found


def _cpu_delta(before, after):
    """CPU seconds of the processes that lived through the run (the hosts' sshd: its sessions are its children)."""
    return sum(ticks - before[pid][1] for pid, (start, ticks) in after.items()
               if pid in before and before[pid][0] == start) / TICKS


def floor_playbook(directory, probe_from):
    """A ping per module execution the diagnosis makes on a traced host (arm, collect), and one on probe_from."""
    path = os.path.join(directory, "floor.yml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("- name: Floor\n  hosts: \"{{ limit_hosts | default('all') }}\"\n  gather_facts: false\n"
                     "  tasks:\n    - name: Arm\n      ansible.builtin.ping:\n"
                     "    - name: Probe\n      ansible.builtin.ping:\n      run_once: true\n"
                     "      delegate_to: %s\n    - name: Collect\n      ansible.builtin.ping:\n" % probe_from)
    return path


PROBE_INTERVAL = 0.2  # seconds between the starts of two attempts (the probe module's default)


def probe_wait(report_dir):
    """The seconds the probe spent waiting, from the run's report: its attempts go side by side (the role's
    parallel=true), each started PROBE_INTERVAL after the one before, so the wait ends with the last to end."""
    with open(os.path.join(report_dir, "latest", "report.json"), encoding="utf-8") as handle:
        attempts = (json.load(handle).get("probe") or {}).get("attempts") or []
    return max([PROBE_INTERVAL * number + (attempt.get("latency_ms") or 0) / 1000
                for number, attempt in enumerate(attempts)] or [0])


def against_floor(hosts, directory, probe_from, diagnosis, report_dir, limit=None):
    """{diagnosis: (seconds, controller CPU, hosts CPU), floor: (...)}, the floor with the probe's wait added."""
    limited = ["-l", limit] if limit else []
    seconds, _output, controller, on_hosts = playbook(diagnosis, hosts)
    floor, _output, floor_controller, floor_hosts = playbook([floor_playbook(directory, probe_from)] + limited, hosts)
    return {"diagnosis": (seconds, controller, on_hosts),
            "floor": (floor + probe_wait(report_dir), floor_controller, floor_hosts)}


def floor_line(label, hosts, measured):
    seconds, controller, on_hosts = measured["diagnosis"]
    floor, floor_controller, floor_hosts = measured["floor"]
    return ("  %s against its floor: %.1f s vs %.1f s: %.2fx; CPU per host %.2f s on the controller and %.2f s on "
            "the host, vs %.2f and %.2f for the floor: +%.2f CPU-s per host" % (
                label, seconds, floor, seconds / floor, controller / hosts, on_hosts / hosts,
                floor_controller / hosts, floor_hosts / hosts,
                (controller + on_hosts - floor_controller - floor_hosts) / hosts))


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
    names = ["h%02d" % number for number in range(1, hosts + 1)]
    limit = ",".join(names)
    # Without the kernel's drop reasons: here every host's bpftrace would compile on the same 2 cores (on a fleet,
    # each on its own host); their cost per host is measured on the incident lab.
    diagnose = ["packetpath.linux.diagnose_port", "-l", limit, "-e", "packetpath_trace_hosts=all",
                "-e", "packetpath_dport=8081",
                "-e", "packetpath_dst=198.18.0.12", "-e", "packetpath_probe_from=h01",
                "-e", "packetpath_report_dir=%s/report-%d" % (directory, hosts),
                "-e", "packetpath_drop_reasons=never"]
    playbook([ping_playbook(1, directory), "-l", limit])  # SSH connections warm for both sides
    seconds, output = playbook(diagnose)
    tasks = tasks_per_host(output, "h03")
    baseline, _output = playbook([ping_playbook(tasks, directory), "-l", limit])
    floor = against_floor(names, directory, "h01", diagnose, "%s/report-%d" % (directory, hosts), limit)
    return seconds, baseline, tasks, floor


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
    seconds, _output = playbook(["packetpath.linux.diagnose_port", "-e", "packetpath_trace_hosts=all",
                                 "-e", "packetpath_dport=8080",
                                 "-e", "packetpath_dst=198.18.20.2", "-e", "packetpath_probe_from=client",
                                 "-e", "packetpath_report_dir=%s/report-incident" % directory] + counting)
    inode = {host: str(os.stat("/run/netns/pp-" + host).st_ino) for host in INCIDENT_HOSTS}
    with open(log, encoding="utf-8") as handle:
        started = handle.read().split()
    executions = {host: started.count(inode[host]) for host in INCIDENT_HOSTS}
    baseline, _output = playbook([ping_playbook(3, directory), "-l", ",".join(INCIDENT_HOSTS)] + counting)
    without, _output = playbook(["packetpath.linux.diagnose_port", "-e", "packetpath_trace_hosts=all",
                                 "-e", "packetpath_dport=8080",
                                 "-e", "packetpath_dst=198.18.20.2", "-e", "packetpath_probe_from=client",
                                 "-e", "packetpath_drop_reasons=never",
                                 "-e", "packetpath_report_dir=%s/report-incident-never" % directory])
    arms = {choice: arm_seconds("router", choice) for choice in ("never", "auto")}
    floor = against_floor(INCIDENT_HOSTS, directory, "client", [
        "packetpath.linux.diagnose_port", "-e", "packetpath_trace_hosts=all", "-e", "packetpath_dport=8080",
        "-e", "packetpath_dst=198.18.20.2",
        "-e", "packetpath_probe_from=client",
        "-e", "packetpath_report_dir=%s/report-floor" % directory], "%s/report-floor" % directory)
    subprocess.run(LAB + ["down"], env=ENV, capture_output=True, check=False)
    return seconds, baseline, executions, without, arms, floor


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


def measure_large(hosts, directory):
    """The scale lab at `hosts` hosts with forks 50 (issue #28's 100-host target): the diagnosis against its floor
    only (the ping baseline of as many tasks would take minutes more)."""
    names = ["h%02d" % number for number in range(1, hosts + 1)]
    limit = ",".join(names)
    diagnose = ["packetpath.linux.diagnose_port", "-l", limit, "-e", "packetpath_trace_hosts=all",
                "-e", "packetpath_dport=8081", "-e", "packetpath_dst=198.18.0.12", "-e", "packetpath_probe_from=h01",
                "-e", "packetpath_report_dir=%s/report-%d" % (directory, hosts), "-e", "packetpath_drop_reasons=never"]
    forks = ENV["ANSIBLE_FORKS"]
    ENV["ANSIBLE_FORKS"] = "50"
    try:
        playbook([ping_playbook(1, directory), "-l", limit])  # SSH connections warm for both sides
        return against_floor(names, directory, "h01", diagnose, "%s/report-%d" % (directory, hosts), limit)
    finally:
        ENV["ANSIBLE_FORKS"] = forks


def main():
    # PACKETPATH_BENCH_LARGE=100: the scale lab at that many hosts too, forks 50 (about 6 more minutes at 100).
    large = int(os.environ.get("PACKETPATH_BENCH_LARGE") or 0)
    subprocess.run(LAB + ["down"], env=ENV, capture_output=True, check=False)
    results = {}
    try:
        with tempfile.TemporaryDirectory() as directory:
            incident = measure_incident(directory)
        subprocess.run(LAB + ["up", "scale", "--hosts", str(max(50, large))], env=ENV, check=True,
                       capture_output=True)
        with tempfile.TemporaryDirectory() as directory:
            for hosts in (10, 50):
                results[hosts] = measure(hosts, directory)
            large_floor = measure_large(large, directory) if large else None
    finally:
        subprocess.run(LAB + ["down"], env=ENV, capture_output=True, check=False)
    seconds, baseline, executions, without, arms, floor = incident
    print("diagnose_port on a 3-host incident lab (forward-drop): %.1f s to the verdict vs %.1f s for 3 ping tasks "
          "per host: %.2fx (with the kernel's drop reasons; without them %.1f s: %.2fx)" % (
              seconds, baseline, seconds / baseline, without, without / baseline))
    print("  arming one host (best of 3): %.2f s without drop reasons, %.2f s with them: +%.2f s per host" % (
        arms["never"], arms["auto"], arms["auto"] - arms["never"]))
    print("  remote module executions per host: %s (target <= 2 per traced host, plus the probe on client: %s)" % (
        ", ".join("%s %d" % item for item in sorted(executions.items())),
        "met" if executions["client"] <= 3 and max(executions["router"], executions["server"]) <= 2 else "MISSED"))
    print(floor_line("with drop reasons,", len(INCIDENT_HOSTS), floor))
    figures.add("diagnose_port.incident_3_hosts", seconds / baseline, "of 3 ping tasks per host", target=1.5)
    figures.add("diagnose_port.incident_3_hosts_floor", floor["diagnosis"][0] / floor["floor"][0], "of its floor")
    figures.add("diagnose_port.executions_on_probe_from", None, value=executions["client"], unit="executions",
                at_most=3)
    figures.add("diagnose_port.executions_per_traced_host", None,
                value=max(executions["router"], executions["server"]), unit="executions", at_most=2)
    print("diagnose_port on the scale lab (iptables-nft hosts: trace_rule capture=true, detached; drop_reasons=never),"
          " forks 25")
    for hosts, (seconds, baseline, tasks, floor) in sorted(results.items()):
        ratio = seconds / baseline
        print("  %2d hosts: %5.1f s vs %5.1f s for %d ping tasks per host: %.2fx (target <= 2x: %s)" % (
            hosts, seconds, baseline, tasks, ratio, "met" if ratio <= 2 else "MISSED"))
        print(floor_line("%d hosts" % hosts, hosts, floor))
        figures.add("diagnose_port.scale_%d_hosts" % hosts, ratio, "of %d ping tasks per host" % tasks, target=2)
    if large_floor:
        seconds = large_floor["diagnosis"][0]
        print(floor_line("%d hosts, forks 50" % large, large, large_floor) + " (target %d s: %s)" % (
            100, "met" if seconds <= 100 else "MISSED"))
        figures.add("diagnose_port.scale_%d_hosts_forks_50" % large, seconds / large_floor["floor"][0],
                    "of its floor", value=seconds, unit="s", at_most=100)
    return 0


if __name__ == "__main__":
    sys.exit(main())
