# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Can this host be traced?  Which tools, privileges and log sources it has."""

import os
import platform

from ansible_collections.packetpath.linux.plugins.module_utils.capture import drop_reasons
from ansible_collections.packetpath.linux.plugins.module_utils.capture.sources import KERNEL_LOG_FILES
from ansible_collections.packetpath.linux.plugins.module_utils.routing import pyroute2_range
from ansible_collections.packetpath.linux.plugins.module_utils.trace import nflog
from ansible_collections.packetpath.linux.plugins.module_utils.trace.detect import parse_iptables_version

TOOLS = (
    "iptables", "ip6tables", "iptables-legacy", "iptables-nft", "iptables-save",
    "xtables-monitor", "nft", "ip", "tc", "journalctl", "dmesg", "systemd-run", "bpftrace",
)


def survey(runner):
    """Everything the other modules will need to know about this host, read-only."""
    tools = {name: runner.which(name) for name in TOOLS}
    version, backend = None, None
    if tools["iptables"]:
        rc, out, err = runner.run([tools["iptables"], "--version"])
        version, backend = parse_iptables_version(out if rc == 0 else err)
    kernel_log = nflog.report()
    bpftrace, unavailable = drop_reasons.availability(runner)
    pyroute2 = pyroute2_range.installed()
    return {
        "kernel": platform.release(),
        "python": platform.python_version(),
        "is_root": os.geteuid() == 0,
        "pyroute2": pyroute2,
        "pyroute2_unsupported": pyroute2_range.too_old(pyroute2),
        "tools": tools,
        "iptables": {"version": version, "backend": backend},
        "kernel_log_files": [path for path in KERNEL_LOG_FILES if os.access(path, os.R_OK)],
        "in_initial_netns": kernel_log["in_initial_netns"],
        "nf_log_all_netns": kernel_log["nf_log_all_netns"],
        # Optional: where it cannot be read, a diagnosis goes on from the trace and the kernel's state alone.
        "drop_reasons": {"available": bpftrace is not None, "bpftrace": bpftrace, "why_not": unavailable},
    }


def problems(facts):
    """Plain-words reasons this host cannot be traced yet (empty when it can)."""
    found = []
    if not facts["is_root"]:
        found.append("not running as root: TRACE rules, sysctls and netlink lookups need root (use become)")
    if not (facts["tools"]["iptables"] or facts["tools"]["nft"]):
        found.append("neither iptables nor nft is installed: no backend can place a TRACE rule")
    if not facts["tools"]["ip"] and not facts["pyroute2"]:
        found.append("neither pyroute2 nor iproute2 (ip) is installed: route lookups are impossible")
    elif not facts["tools"]["ip"] and facts.get("pyroute2_unsupported"):
        found.append("iproute2 (ip) is not installed, and %s: route lookups are impossible"
                     % facts["pyroute2_unsupported"])
    return found
