# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel's `martian source` / `martian destination` lines: the evidence log_martians=1 leaves.

    [ 5123.4] IPv4: martian source 203.0.113.12 from 198.51.100.13, on dev b-srv
    [ 5123.4] ll header: 00000000: 06 17 31 ...

Older kernels print no `IPv4: ` prefix; destinations read `martian destination D from S, dev X`.
Records are grouped by kind, addresses and device, with a count and the first and last time.
"""

import re

_MARTIAN = re.compile(r"martian (source|destination) (\S+) from (\S+), (?:on )?dev (\S+)")
_UPTIME = re.compile(r"^\[\s*(\d+\.\d+)\]")


def parse(lines, since_uptime=None, devices=None):
    """[{kind, source, destination, device, count, first_uptime, last_uptime}] from kernel-log lines."""
    groups = {}
    for line in lines:
        found = _MARTIAN.search(line)
        if not found:
            continue
        stamp = _UPTIME.match(line)
        uptime = float(stamp.group(1)) if stamp else None
        if since_uptime is not None and uptime is not None and uptime < since_uptime:
            continue
        kind, destination, source, device = found.groups()  # "martian <kind> <daddr> from <saddr>, ... dev X"
        if devices is not None and device not in devices:
            continue
        key = (kind, source, destination, device)
        group = groups.get(key)
        if group is None:
            group = groups[key] = {"kind": kind, "source": source, "destination": destination, "device": device,
                                   "count": 0, "first_uptime": uptime, "last_uptime": uptime}
        group["count"] += 1
        group["last_uptime"] = uptime
    return list(groups.values())
