"""`make bench`: a diagnose_port run across the `scale` lab against a playbook of as many ansible.builtin.ping tasks
per host, in the same run, with forks 25: our modules' own cost over Ansible's. For 10 and for 50 hosts.

Target (issue #7): at most 2x the ping baseline. The lab is torn down at the end, also on failure.
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
    diagnose = ["packetpath.linux.diagnose_port", "-l", limit, "-e", "trace_hosts=all", "-e", "dport=8081", "-e", "dst=198.18.0.12", "-e",
                "probe_from=h01", "-e", "report_dir=%s/report-%d" % (directory, hosts)]
    seconds, output = playbook(diagnose)
    tasks = tasks_per_host(output, "h03")
    baseline, _output = playbook([ping_playbook(tasks, directory), "-l", limit])
    return seconds, baseline, tasks


def main():
    subprocess.run(LAB + ["down"], env=ENV, capture_output=True, check=False)
    results = {}
    try:
        subprocess.run(LAB + ["up", "scale", "--hosts", "50"], env=ENV, check=True, capture_output=True)
        with tempfile.TemporaryDirectory() as directory:
            for hosts in (10, 50):
                results[hosts] = measure(hosts, directory)
    finally:
        subprocess.run(LAB + ["down"], env=ENV, capture_output=True, check=False)
    print("diagnose_port on the scale lab (iptables-nft hosts: live capture under async), forks 25")
    for hosts, (seconds, baseline, tasks) in sorted(results.items()):
        ratio = seconds / baseline
        print("  %2d hosts: %5.1f s vs %5.1f s for %d ping tasks per host: %.2fx (target <= 2x: %s)" % (
            hosts, seconds, baseline, tasks, ratio, "met" if ratio <= 2 else "MISSED"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
