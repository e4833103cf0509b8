"""Shards of the integration suite (shards.py runs them side by side, each on a machine of its own): which tests a
shard runs, and how long each test took, for the next balance.

PACKETPATH_SHARD=i/n keeps shard i's tests of n. Every shard collects the whole suite and splits it the same way:
a test module goes whole to one shard (its module-scoped lab is built once), the incident catalogue test by test
(each brings its own lab up); the largest first, each to the shard with the least so far, by the seconds recorded
in durations.json (a test it does not know counts DEFAULT_SECONDS). The tests about the machine itself run on it
(shard 0)."""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DURATIONS = os.path.join(HERE, "durations.json")
RECORDED = os.path.join(ROOT, "build", "integration")
DEFAULT_SECONDS = 15.0
ON_THE_MACHINE = ("lab/test_lab.py", "lab/test_footprint.py")  # the real root namespace, /etc and /run
ONE_BY_ONE = ("lab/test_incidents.py",)
SHARD = os.environ.get("PACKETPATH_SHARD")


def _path(item):
    return os.path.relpath(str(item.fspath), HERE)


def _group(item):
    return item.nodeid if _path(item) in ONE_BY_ONE else _path(item)


def assign(items, count, durations):
    """{group: shard}: the machine's own tests to shard 0, then the groups largest first, each to the shard with the
    fewest seconds so far."""
    seconds = {}
    for item in items:
        seconds[_group(item)] = seconds.get(_group(item), 0.0) + durations.get(item.nodeid, DEFAULT_SECONDS)
    loads, owner = [0.0] * count, {}
    for group in sorted(seconds, key=lambda name: (name.split("::")[0] not in ON_THE_MACHINE, -seconds[name], name)):
        shard = 0 if group.split("::")[0] in ON_THE_MACHINE else min(range(count), key=lambda index: loads[index])
        owner[group] = shard
        loads[shard] += seconds[group]
    return owner


def pytest_collection_modifyitems(config, items):
    if not SHARD:
        return
    index, count = (int(part) for part in SHARD.split("/"))
    try:
        with open(DURATIONS, encoding="utf-8") as handle:
            durations = json.load(handle)
    except FileNotFoundError:
        durations = {}
    owner = assign(items, count, durations)
    kept = [item for item in items if owner[_group(item)] == index]
    config.hook.pytest_deselected(items=[item for item in items if owner[_group(item)] != index])
    collected = [item.nodeid for item in items]
    items[:] = kept
    # What shards.py checks: the shards' selections are disjoint and together the whole suite.
    os.makedirs(RECORDED, exist_ok=True)
    with open(os.path.join(RECORDED, "selected-%d.json" % index), "w", encoding="utf-8") as handle:
        json.dump({"collected": collected, "selected": [item.nodeid for item in kept]}, handle)


_SECONDS = {}


def pytest_runtest_logreport(report):
    _SECONDS[report.nodeid] = _SECONDS.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session):
    if not SHARD or not _SECONDS:
        return
    os.makedirs(RECORDED, exist_ok=True)
    with open(os.path.join(RECORDED, "durations-%s.json" % SHARD.split("/")[0]), "w", encoding="utf-8") as handle:
        json.dump({nodeid: round(seconds, 2) for nodeid, seconds in sorted(_SECONDS.items())}, handle, indent=1)
