# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The interfaces of this network namespace as the packet meets them outside netfilter's hooks: their state
(administratively up, carrier), their addresses, and the drop counters of their qdiscs (tc ingress before the first
hook, the egress qdisc after the last), read through the routing engine (pyroute2, else `ip`/`tc`).

A snapshot is taken when the capture starts and again when it is read; what moved in between is the window's.
Like the SNMP counters, a qdisc's counters count every packet of the interface: they corroborate where the trace
places the packet, and the report says so.
"""

from ansible_collections.packetpath.linux.plugins.module_utils.routing import engines, rt_tables

# What a snapshot keeps per interface: the ingress and egress qdiscs' drops, and the device's own.
COUNTED = ("ingress_drops", "egress_drops", "rx_dropped", "tx_dropped")


def snapshot(engine):
    """{interface name: {ingress_drops, egress_drops, egress_qdisc, rx_dropped, tx_dropped}}."""
    links = {link["ifindex"]: link for link in engine.links()}
    found = {link["name"]: {"ingress_drops": 0, "egress_drops": 0, "egress_qdisc": None,
                            "rx_dropped": link["rx_dropped"], "tx_dropped": link["tx_dropped"]}
             for link in links.values()}
    for qdisc in engine.qdiscs():
        link = links.get(qdisc["ifindex"])
        if link is None:
            continue
        entry = found[link["name"]]
        entry[qdisc["direction"] + "_drops"] += qdisc["drops"]
        if qdisc["direction"] == "egress" and qdisc["parent"] == 0xFFFFFFFF:
            entry["egress_qdisc"] = qdisc["kind"]  # the root qdisc names the discipline
    return found


def moved(before, after):
    """{interface: {counter: increase}} for the interfaces whose counters went up (an interface that appeared in the
    window counts from 0)."""
    delta = {}
    for name, now in sorted(after.items()):
        was = (before or {}).get(name) or {}
        grown = {key: now[key] - was.get(key, 0) for key in COUNTED if now[key] > was.get(key, 0)}
        if grown:
            delta[name] = dict(grown, egress_qdisc=now["egress_qdisc"])
    return delta


def read(runner):
    """A snapshot, or None where no engine answers: the finding then reads no interface counters, and blames no
    qdisc. Through `ip -j` and `tc -j` where both are installed (two processes, ~4 ms, where importing pyroute2 costs
    ~100 ms of CPU on every host of a run), else through pyroute2. The counters are the kernel's either way, so a
    snapshot read one way compares with one read the other (a lab test proves both engines equal); only a missing
    `tc` would read no qdisc at all, hence both or pyroute2."""
    choice = "ip" if runner.which("ip") and runner.which("tc") else "auto"
    engine = engines.choose(choice, runner, rt_tables.RtTables())
    try:
        return snapshot(engine)
    except (OSError, ValueError, KeyError):
        return None
    finally:
        getattr(engine, "close", lambda: None)()
