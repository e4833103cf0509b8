"""`make bench`: route_lookup's netlink engine against `ip -batch`, in the same run, in a namespace of our own.

A namespace gets 1,000 routes; 10,000 `route get`s are answered (a) by the engine, one call,
pipelined on one netlink socket, and (b) by `ip -batch` reading the same 10,000 commands.
Target (issue #6): at least 50,000 lookups/s in the engine, within 8x of `ip -batch`.
The namespace is deleted at the end, also on failure.
"""

import json
import os
import random
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTIONS = os.path.join(os.path.dirname(HERE), "build", "collections")
NETNS = "pp-bench-route"
LOOKUPS = 10000
ROUTES = 1000

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.packetpath.linux.plugins.module_utils.routing.lookup import Router
from ansible_collections.packetpath.linux.plugins.module_utils.routing.rtnetlink import RtNetlink
specs = [{"dst": d} for d in json.load(sys.stdin)]
router = Router(RtNetlink())
started = time.perf_counter()
answers = router.lookup(specs)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "errors": sum(1 for a in answers if "error" in a),
                  "devs": sorted(set(str(a.get("dev")) for a in answers))}))
"""


def netns(*argv, stdin=None):
    return subprocess.run(["ip", "netns", "exec", NETNS] + list(argv), input=stdin, capture_output=True, text=True,
                          check=True)


def build(rng):
    subprocess.run(["ip", "netns", "add", NETNS], check=True)
    netns("ip", "link", "set", "lo", "up")
    commands = []
    for index in range(4):
        commands += ["link add r%d type veth peer name r%dp" % (index, index), "link set r%d up" % index,
                     "link set r%dp up" % index, "addr add 198.18.%d.1/24 dev r%d" % (200 + index, index)]
    for index in range(ROUTES):
        prefix = "198.19.%d.%d/32" % (index // 250, index % 250)
        commands.append("route add %s via 198.18.%d.%d" % (prefix, 200 + index % 4, 2 + rng.randrange(200)))
    netns("ip", "-batch", "-", stdin="\n".join(commands) + "\n")


def main():
    rng = random.Random(6)
    subprocess.run(["ip", "netns", "del", NETNS], capture_output=True, check=False)
    try:
        build(rng)
        targets = ["198.19.%d.%d" % (rng.randrange(4), rng.randrange(250)) for _number in range(LOOKUPS)]
        started = time.perf_counter()
        netns("ip", "-batch", "-", stdin="".join("route get %s\n" % t for t in targets))
        batch_seconds = time.perf_counter() - started
        engine = json.loads(netns(sys.executable, "-c", CHILD, COLLECTIONS, stdin=json.dumps(targets)).stdout)
    finally:
        subprocess.run(["ip", "netns", "del", NETNS], capture_output=True, check=False)
    engine_rate = LOOKUPS / engine["seconds"]
    batch_rate = LOOKUPS / batch_seconds
    print("route lookups: %d on a table of %d routes" % (LOOKUPS, ROUTES))
    print("  ip -batch:               %8.0f lookups/s (%.3f s, the process included)" % (batch_rate, batch_seconds))
    print("  route_lookup engine:     %8.0f lookups/s (%.3f s, answers explained; %d errors, devices %s)" % (
        engine_rate, engine["seconds"], engine["errors"], ", ".join(engine["devs"])))
    print("  ip -batch is %.1fx the engine (target <= 8x: %s); engine target >= 50,000/s: %s" % (
        batch_rate / engine_rate, "met" if batch_rate / engine_rate <= 8 else "MISSED",
        "met" if engine_rate >= 50000 else "MISSED"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
