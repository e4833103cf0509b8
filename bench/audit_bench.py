"""`make bench`: the audit playbook across the `scale` lab (50 hosts, forks 25) against a playbook that only
collects the same raw data by hand, in the same run: the conf sysctls, the sysctl.d files, and the rulesets of
the three backends, one command task each (what an SRE's script would gather before reading it).

The ratio is the price of the analysis, the report files and the role's argument checks over raw collection.
The lab is torn down at the end, also on failure.
"""

import json
import os
import subprocess
import sys
import tempfile

import figures
from diagnose_bench import ENV, LAB, playbook

RAW_COMMANDS = (
    "sysctl -a -r '^net\\.ipv[46]\\.conf\\.'",
    "cat /etc/sysctl.conf /etc/sysctl.d/*.conf /usr/lib/sysctl.d/*.conf /run/sysctl.d/*.conf",
    "iptables-legacy-save",
    "iptables-nft-save",
    "nft list ruleset",
)


def raw_playbook(directory):
    path = os.path.join(directory, "raw.yml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("- name: Raw collection\n  hosts: all\n  gather_facts: false\n  tasks:\n")
        for number, command in enumerate(RAW_COMMANDS):
            handle.write("    - name: Collect %d\n      ansible.builtin.shell: %s\n      changed_when: false\n      failed_when: false\n"
                         % (number, json.dumps(command)))  # a JSON string is a YAML string
    return path


def main():
    subprocess.run(LAB + ["down"], env=ENV, capture_output=True, check=False)
    try:
        subprocess.run(LAB + ["up", "scale", "--hosts", "50"], env=ENV, check=True, capture_output=True)
        with tempfile.TemporaryDirectory() as directory:
            playbook([raw_playbook(directory)])  # warm: SSH control masters up for both runs
            audit, _output = playbook(["packetpath.linux.audit", "-e", "packetpath_report_dir=%s" % directory])
            raw, _output = playbook([raw_playbook(directory)])
    finally:
        subprocess.run(LAB + ["down"], env=ENV, capture_output=True, check=False)
    print("audit on the scale lab, 50 hosts, forks 25: %.1f s (all six checks, report files) vs %.1f s to collect "
          "the raw data with %d command tasks: %.2fx" % (audit, raw, len(RAW_COMMANDS), audit / raw))
    figures.add("audit.scale_50_hosts", audit / raw, "of collecting the raw data")
    return 0


if __name__ == "__main__":
    sys.exit(main())
