"""Command line: python -m pplab up TOPOLOGY [--hosts N] [--userspace SPEC] | down | roots | status | validate."""

import argparse
import json
import os
import sys

from . import build, roots, system, teardown, topology
from .state import Journal, Lock, path

TOPOLOGIES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "topologies")


def topology_path(name):
    """A shipped topology by name (`seed`, `incidents/forwarding-off`), or a path to any file."""
    if name.endswith(".yml") or os.path.isabs(name):
        return name
    return os.path.join(TOPOLOGIES, name + ".yml")


def shipped():
    """Every shipped topology's name, the incident catalogue's too."""
    names = []
    for folder in ("", "incidents"):
        names += sorted(os.path.join(folder, f[:-4]) for f in os.listdir(os.path.join(TOPOLOGIES, folder))
                        if f.endswith(".yml"))
    return names


def status():
    journal = Journal()
    if not journal.resources:
        print("no lab is up")
        return 0
    print("lab %s (%s)" % (journal.topology, "complete" if journal.data.get("complete") else "INCOMPLETE"))
    for entry in journal.resources:
        if entry["kind"] == "process":
            state = "running" if system.alive(entry["pid"], entry["started"]) else "gone"
            print("  %-8s %-10s pid %-7d %s" % (entry["what"], entry["host"], entry["pid"], state))
    print("inventory: %s" % path("inventory.yml"))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="pplab", description="packetpath.linux test lab")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build a topology (idempotent)")
    up.add_argument("topology", help="a name under tests/lab/topologies or a path")
    up.add_argument("--hosts", type=int, default=None, help="host count, for the scale topology")
    up.add_argument("--userspace", default=None,
                    help="the hosts' Debian releases over the topology's own: 'rotate' (the managed hosts in order "
                         "get %s, and again; 'rotate:N' starts N on) or host=release,..." % ", ".join(roots.RELEASES))
    sub.add_parser("down", help="remove everything the lab made (idempotent)")
    sub.add_parser("roots", help="build the Debian release roots this machine lacks (once; kept by lab-down)")
    sub.add_parser("status", help="show the lab")
    sub.add_parser("validate", help="check every shipped topology").add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 and args.command in ("up", "down", "roots"):
        parser.error("the lab creates network namespaces: run it as root")
    if args.command == "validate":
        loaded = {name: len(topology.load(topology_path(name)).hosts) for name in shipped()}
        print(json.dumps(loaded) if args.json else "\n".join("%s: %d hosts" % kv for kv in loaded.items()))
        return 0
    if args.command == "status":
        return status()
    if args.command == "roots":
        for release in roots.RELEASES:
            if roots.needs_root(release):
                print("%s: %s" % (release, roots.ensure(release)))
        return 0
    with Lock():
        if args.command == "down":
            teardown.down()
            return 0
        try:
            topo = topology.load(topology_path(args.topology), args.hosts)
        except (OSError, topology.TopologyError) as exc:
            parser.error("topology %s: %s" % (args.topology, exc))
        try:
            topology.set_userspace(topo, args.userspace)
        except topology.TopologyError as exc:
            parser.error("--userspace %s: %s" % (args.userspace, exc))
        key = topo.name if args.hosts is None else "%s:%d" % (topo.name, args.hosts)
        key += "" if args.userspace is None else "@" + args.userspace
        try:
            build.up(topo, key, teardown.down)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # whatever failed, build nothing half-way
            print("lab-up failed: %s: %s\nremoving what was built" % (type(exc).__name__, exc), file=sys.stderr)
            teardown.down()
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
