# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fewest sysctl writes that make a host meet its expectations, and keep what it does now at boot.

The kernel combines conf/all with each interface's own value (rp_filter is the
max of the two, log_martians their OR), so an interface cannot always be fixed
on its own: an interface that must be loose (2) while conf/all says strict (1)
can be, but one that must be off (0) needs conf/all lowered.  Lowering conf/all
moves every interface, so the interfaces nobody asked about are then pinned to
the value they have now.  conf/all is changed only when nothing else works.

An interface whose effective value is already allowed is left alone: the first
allowed value is the one written, and only where the current one is not allowed.
"""

from ansible_collections.packetpath.linux.plugins.module_utils.sysctl import conf


def _writes_for(snapshot, key, all_value, goals):
    """{interface: own value} so every goal is met under conf/all = all_value; None when that cannot be."""
    family, name = conf.family_and_name(key)
    writes = {}
    for interface, goal in goals.items():
        if snapshot.effective(key, interface, all_value) == goal:
            continue
        fitting = [value for value in conf.KEYS[key][1]
                   if snapshot.effective(key, interface, all_value, own=value) == goal]
        if not fitting:
            return None
        current = snapshot.get(family, interface, name)
        writes[interface] = current if current in fitting else fitting[0]
    return writes


def _plan_key(expectations, snapshot, key):
    family, name = conf.family_and_name(key)
    all_now = snapshot.get(family, "all", name)
    goals, wanted = {}, set()
    for interface, expected in snapshot.targets(expectations, key):
        effective = snapshot.effective(key, interface)
        if effective is None:
            continue
        if expected is not None and effective not in expected[0]:
            goals[interface] = expected[0][0]
            wanted.add(interface)
        else:
            goals[interface] = effective  # allowed already, or not expected: stays as it is
    if not wanted:
        return []
    best = None
    for all_value in [all_now] + [value for value in conf.KEYS[key][1] if value != all_now]:
        writes = _writes_for(snapshot, key, all_value, goals)
        if writes is not None:
            cost = (all_value != all_now, len(writes))
            if best is None or cost < best[0]:
                best = (cost, all_value, writes)
    _cost, all_value, writes = best
    changes = []
    if all_value != all_now:
        changes.append({"interface": "all", "key": key, "before": all_now, "after": all_value,
                        "why": "conf/all=%s keeps %s from its wanted value" % (all_now, ", ".join(sorted(wanted)))})
    for interface, value in sorted(writes.items()):
        changes.append({"interface": interface, "key": key, "before": snapshot.get(family, interface, name),
                        "after": value, "why": "wanted: effective %s" % goals[interface] if interface in wanted
                        else "pinned: keeps effective %s while conf/all changes" % goals[interface]})
    return changes


def plan(expectations, snapshot, drift_rows):
    """Runtime writes (also written to our file) and, for drift, the runtime value written to our file."""
    changes = []
    for key in expectations.keys():
        changes += _plan_key(expectations, snapshot, key)
    touched = set((change["interface"], change["key"]) for change in changes)
    persist = [{"interface": row["interface"], "key": row["key"], "before": row["persistent"],
                "after": row["runtime"], "why": "persist the runtime value: the boot would write %s (%s)"
                % (row["persistent"], row["file"])}
               for row in drift_rows if (row["interface"], row["key"]) not in touched]
    return {"changes": changes, "persist": persist, "settings": group(changes, persist)}


def group(changes, persist):
    """interface_sysctl calls: one per set of identical settings, conf/all first (the order of the writes)."""
    per_interface = {}
    for change in changes + persist:
        per_interface.setdefault(change["interface"], {})[change["key"]] = change["after"]
    calls = []
    for interface in sorted(per_interface, key=lambda name: (name != "all", name)):
        settings = per_interface[interface]
        same = next((call for call in calls if call["settings"] == settings and "all" not in call["interfaces"]),
                    None)
        if same and interface != "all":
            same["interfaces"].append(interface)
        else:
            calls.append({"interfaces": [interface], "settings": settings})
    return calls
