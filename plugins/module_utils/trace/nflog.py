# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The path from a legacy TRACE rule to the kernel log.

Legacy TRACE prints through the logger bound to nf_log/<pf> (2 = IPv4,
10 = IPv6).  Unbound ("NONE"), nothing may be printed: we bind the kernel-log
logger and restore NONE when our last legacy rule goes.  Bound to
nfnetlink_log, the lines go to NFLOG, not the kernel log: we say so and leave it.
Outside the initial namespace nothing reaches the kernel log unless the initial
namespace has nf_log_all_netns=1, which cannot be read from here: we say that too.
"""

import os

from ansible_collections.packetpath.linux.plugins.module_utils._common import hoststate

NF_LOG = "/proc/sys/net/netfilter/nf_log/%d"
PF = {"ipv4": 2, "ipv6": 10}
KERNEL_LOGGER = {"ipv4": "nf_log_ipv4", "ipv6": "nf_log_ipv6"}
ALL_NETNS = "/proc/sys/net/netfilter/nf_log_all_netns"
RECORD = "nf_log_binding.json"


def _read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def _write(path, value):
    with open(path, "w") as handle:
        handle.write(value)


def in_initial_netns():
    """True/False, or None when it cannot be told.

    The kernel registers nf_log_all_netns in the initial namespace only, so its
    presence answers the question even where /proc/1/ns/net is unreadable (containers).
    """
    if os.path.exists(ALL_NETNS):
        return True
    if os.path.isdir(os.path.dirname(ALL_NETNS)):
        return False
    return None


def report():
    """The bindings and the namespace facts, as they are now."""
    all_netns = _read(ALL_NETNS)
    return {
        "bindings": {family: _read(NF_LOG % pf) for family, pf in PF.items()},
        "in_initial_netns": in_initial_netns(),
        "nf_log_all_netns": None if all_netns is None else all_netns == "1",
    }


def warnings(state):
    found = []
    for family, binding in state["bindings"].items():
        if binding == "nfnetlink_log":
            found.append("nf_log/%d is bound to nfnetlink_log: %s legacy TRACE goes to NFLOG, not the kernel log"
                         % (PF[family], family))
    if state["in_initial_netns"] is False:
        found.append("this is not the initial network namespace: legacy TRACE output reaches the kernel log only "
                     "if net.netfilter.nf_log_all_netns=1 is set in the initial namespace (not readable from here)")
    elif state["nf_log_all_netns"] is False:
        found.append("net.netfilter.nf_log_all_netns=0: legacy TRACE inside containers or other namespaces "
                     "of this host prints nothing (this namespace is fine)")
    return found


def bind_kernel_logger(families, check_mode):
    """Bind the kernel-log logger where nothing is bound; return the changes as `family: [before, after]`."""
    changes = {}
    record = hoststate.read(hoststate.record_path(RECORD)) or {}
    for family in families:
        path = NF_LOG % PF[family]
        if _read(path) == "NONE":
            changes[family] = ["NONE", KERNEL_LOGGER[family]]
            if not check_mode:
                _write(path, KERNEL_LOGGER[family])
                record[family] = "NONE"
    if record and not check_mode:
        hoststate.write(hoststate.record_path(RECORD), record)
    return changes


def changed_bindings():
    """The families whose kernel-log binding we changed and have not put back yet."""
    return list(hoststate.read(hoststate.record_path(RECORD)) or {})


def restore(families, check_mode):
    """Put back the bindings we changed, for the families that have no legacy rule of ours left."""
    path = hoststate.record_path(RECORD)
    record = hoststate.read(path) or {}
    restored = {}
    for family in families:
        if family in record:
            restored[family] = [_read(NF_LOG % PF[family]), record[family]]
            if not check_mode:
                _write(NF_LOG % PF[family], record.pop(family))
    if not check_mode and restored:
        if record:
            hoststate.write(path, record)
        else:
            hoststate.remove(path)
    return restored
