# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The neighbours this namespace is still asking for (ARP/NDP entries in state INCOMPLETE), waited for before the
capture ends.

A packet sent to a neighbour that does not answer is queued on its entry, and dropped only when the kernel gives up
asking: mcast_solicit (+ app_solicit) probes, retrans_time apart, about 3 s after the first packet. A probe that
ends sooner (its attempts side by side, a short timeout) is collected while the entry is still INCOMPLETE: the
kernel's drop reason (NEIGH_FAILED) is not reported yet, and the entry's end not known. So the collection waits
for the entries that are being resolved to end, one way or the other, at most as long as the kernel itself asks:
the wait is an event (the entry's state), bounded by the device's own settings, and costs nothing where no
neighbour is unresolved.
"""

import os
import time

from ansible_collections.packetpath.linux.plugins.module_utils.routing.lookup import NUD_STATES, nud_names

INCOMPLETE = next(bit for bit, name in NUD_STATES.items() if name == "incomplete")
FAMILIES = ("ipv4", "ipv6")
POLL = 0.05  # seconds between two readings of the neighbour tables
MARGIN = 0.5  # seconds past the device's last probe: the kernel's timer runs with jitter
LONGEST_WAIT = 6.0  # seconds in all, however many entries begin to be resolved while waiting (a busy host)


def table(engine, names):
    """{(family, dev, address): NUD state bits} of this namespace's neighbour entries."""
    return {(family, names.get(entry["ifindex"], str(entry["ifindex"])), entry["dst"]): entry["state"]
            for family in FAMILIES for entry in engine.neighbours(family) if entry.get("dst")}


def longest_resolution(family, dev, proc="/proc/sys/net"):
    """The seconds the kernel asks for a neighbour on `dev` before it declares it failed: (mcast_solicit +
    app_solicit) x retrans_time. 3 s with Linux's defaults, read per device (the default's where unreadable)."""
    def setting(name, default):
        for scope in (dev, "default"):
            try:
                with open(os.path.join(proc, family, "neigh", scope, name)) as handle:
                    return int(handle.read().split()[0])
            except (OSError, ValueError, IndexError):
                continue
        return default
    probes = setting("mcast_solicit", 3) + setting("app_solicit", 0)
    return max(1, probes) * setting("retrans_time_ms", 1000) / 1000.0


def settle(engine, names, proc="/proc/sys/net", clock=time.monotonic, sleep=time.sleep):
    """Wait until no neighbour entry of this namespace is INCOMPLETE, at most the longest resolution among the
    devices of those found so (from when each was first seen) plus a margin, LONGEST_WAIT in all. Returns {seconds,
    resolved (none is left INCOMPLETE), entries: [{family, dev, address, state}] waited for, with the state each
    ended in ("failed", "reachable", ...; "gone" where the entry went)}; seconds 0 and no entries where none was."""
    started = clock()
    waited, deadline = [], None
    while True:
        now = table(engine, names)
        pending = [key for key, state in sorted(now.items()) if state & INCOMPLETE]
        for key in pending:
            if key not in waited:
                waited.append(key)
                ends = clock() + longest_resolution(key[0], key[1], proc) + MARGIN
                deadline = min(started + LONGEST_WAIT, ends if deadline is None else max(deadline, ends))
        if not pending or clock() >= deadline:
            break
        sleep(POLL)
    return {"seconds": round(clock() - started, 3), "resolved": not pending,
            "entries": [{"family": family, "dev": dev, "address": address, "state": _state(now.get((family, dev, address)))}
                        for family, dev, address in waited]}


def _state(bits):
    if bits is None:
        return "gone"
    return ",".join(nud_names(bits)) or "none"
