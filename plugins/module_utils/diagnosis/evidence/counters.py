# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel's SNMP counters of this network namespace (what `nstat` reads), and what moved across a window.

Counters corroborate, they do not prove: every packet of the namespace shares them, so a report says which moved,
by how much, and that other traffic may have moved them too.
"""

# conntrack's own statistics (per CPU, in hex; what `conntrack -S` sums), where conntrack is loaded.
CONNTRACK_STAT = "/proc/net/stat/nf_conntrack"
FILES = ("/proc/net/snmp", "/proc/net/netstat", "/proc/net/snmp6")
CONNTRACK_NAMES = {"invalid": "NfctInvalid", "drop": "NfctDrop", "early_drop": "NfctEarlyDrop",
                   "insert_failed": "NfctInsertFailed"}


def parse(text):
    """{nstat name: value} from one of FILES: /proc/net/snmp and netstat hold header/value line pairs
    ("Ip: Forwarding ..." then "Ip: 1 ..."); snmp6 holds "Ip6InReceives   12" lines."""
    counters = {}
    pending = {}
    for line in text.splitlines():
        prefix, _colon, rest = line.partition(":")
        if _colon and " " not in prefix:
            fields = rest.split()
            if prefix not in pending:
                pending[prefix] = fields
                continue
            names = pending.pop(prefix)
            for name, value in zip(names, fields):
                if value.lstrip("-").isdigit():
                    counters[prefix + name] = int(value)
        else:
            words = line.split()
            if len(words) == 2 and words[1].lstrip("-").isdigit():
                counters[words[0]] = int(words[1])
    return counters


def parse_conntrack_stat(text):
    """{nstat-like name: sum over the CPUs} of /proc/net/stat/nf_conntrack's columns that count drops."""
    lines = text.split("\n")
    names = lines[0].split()
    totals = {}
    for line in lines[1:]:
        for name, value in zip(names, line.split()):
            if name in CONNTRACK_NAMES:
                totals[CONNTRACK_NAMES[name]] = totals.get(CONNTRACK_NAMES[name], 0) + int(value, 16)
    return totals


def snapshot(paths=FILES + (CONNTRACK_STAT,)):
    """Every counter of this network namespace's files (a file the kernel lacks, e.g. snmp6 without IPv6 or the
    conntrack statistics without conntrack, is skipped)."""
    counters = {}
    for path in paths:
        parser = parse_conntrack_stat if path.endswith("/stat/nf_conntrack") else parse
        try:
            with open(path) as handle:
                counters.update(parser(handle.read()))
        except OSError:
            continue
    return counters


def moved(before, after):
    """{name: increase} for the counters that went up between two snapshots. The kernel prints IcmpMsg's per-type
    counters only once they are not zero: one missing before counts from 0."""
    return {name: after[name] - before.get(name, 0) for name in sorted(after) if after[name] > before.get(name, 0)}
