# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where legacy TRACE goes: the logger bound to nf_log/<pf> of this network namespace (2 = IPv4, 10 = IPv6).

For the time of a legacy trace, trace_rule binds it to nfnetlink_log: the hops then arrive on NFLOG group 0 of
this namespace (capture/nflog_reader.py reads them), so a host reads its own packets and no other namespace's.
The kernel log, the other way, is one for the whole machine: hosts that share interface names (pods, lab hosts)
read each other's lines there, and outside the initial namespace nothing reaches it unless nf_log_all_netns=1 is
set in the initial one.  The binding found before is recorded and put back when our last legacy rule goes
(trace_rule state=absent, or the expiry).  Only where nfnetlink_log cannot be had is the kernel logger bound
instead, with a warning that says so.
"""

import os

from ansible_collections.packetpath.linux.plugins.module_utils._common import hoststate

NF_LOG = "/proc/sys/net/netfilter/nf_log/%d"
LOGGERS = "/proc/net/netfilter/nf_log"  # per family: the bound logger and the ones that could be
PF = {"ipv4": 2, "ipv6": 10}
NFLOG = "nfnetlink_log"
KERNEL_LOGGER = {"ipv4": "nf_log_ipv4", "ipv6": "nf_log_ipv6"}
ALL_NETNS = "/proc/sys/net/netfilter/nf_log_all_netns"
RECORD = "nf_log_binding.json"
CROSS_TALK = ("legacy TRACE of this host goes to the kernel log, which every network namespace of the machine "
              "shares: lines of other namespaces with the same interface names can mix in")


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


def available(family):
    """Whether nfnetlink_log can be bound for the family (it is registered: built in, or its module loaded)."""
    for line in (_read(LOGGERS) or "").splitlines():
        number, _sep, rest = line.strip().partition(" ")
        if number == str(PF[family]):
            return NFLOG in rest
    return False


def report():
    """The bindings and the namespace facts, as they are now."""
    all_netns = _read(ALL_NETNS)
    return {
        "bindings": {family: _read(NF_LOG % pf) for family, pf in PF.items()},
        "in_initial_netns": in_initial_netns(),
        "nf_log_all_netns": None if all_netns is None else all_netns == "1",
    }


def _load_nfnetlink_log(runner, families, notes):
    """Load nfnetlink_log where it is a module not loaded yet; True when every family can then use it."""
    if all(available(family) for family in families):
        return True
    modprobe = runner.which("modprobe")
    if modprobe:
        rc, _out, err = runner.run([modprobe, NFLOG])
        if rc == 0:
            notes.append("loaded the %s kernel module, so that legacy TRACE can be read in this namespace" % NFLOG)
        else:
            notes.append("modprobe %s failed: %s" % (NFLOG, err.strip()))
    return all(available(family) for family in families)


def bind(runner, families, check_mode):
    """Bind nfnetlink_log for the families (the kernel logger where it cannot be had).

    Returns (changes as `family: [before, after]`, the logger the trace goes to, warnings)."""
    notes = []
    wanted = {family: NFLOG for family in families}
    if not _load_nfnetlink_log(runner, families, notes):
        wanted = {family: KERNEL_LOGGER[family] for family in families}
        notes.append("%s cannot be had on this host: %s" % (NFLOG, CROSS_TALK))
    changes = {}
    path = hoststate.record_path(RECORD)
    record = hoststate.read(path) or {}
    for family, logger in wanted.items():
        before = _read(NF_LOG % PF[family])
        if before == logger or (logger != NFLOG and before not in ("NONE", None)):
            continue  # already ours, or a kernel logger someone chose: leave it
        changes[family] = [before, logger]
        record.setdefault(family, before)  # the first binding we found is what goes back
    if changes and not check_mode:
        # Recorded before it is written: a kill in between leaves a record that puts back what is still there,
        # never a binding nobody remembers.
        hoststate.write(path, record)
        for family, (_before, logger) in sorted(changes.items()):
            _write(NF_LOG % PF[family], logger)
    logger = "nflog" if set(wanted.values()) == {NFLOG} else "kernel_log"
    if logger == "kernel_log" and in_initial_netns() is False:
        notes.append("this is not the initial network namespace: the kernel log gets legacy TRACE from here only "
                     "if net.netfilter.nf_log_all_netns=1 is set in the initial namespace (not readable from here)")
    return changes, logger, notes


def changed_bindings():
    """The families whose binding we changed and have not put back yet."""
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


def restore_plan():
    """What the expiry puts back when the last legacy flow of ours expires: {path of nf_log/<pf>: value}, and the
    record to remove.  The sleeper runs stdlib only, so it gets paths and values, not this module."""
    return {"record": hoststate.record_path(RECORD),
            "files": {family: NF_LOG % pf for family, pf in PF.items()}}
