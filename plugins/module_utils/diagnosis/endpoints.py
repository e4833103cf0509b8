# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The endpoints of a service that none of the probe's attempts reached, each connected to once from the host that
spreads the service over them (issue #37, item 4).

A probe's attempts reach the endpoints NAT happens to choose for them: one attempt in three reaches a dead pod
behind a service of three, and a probe that connected three times may never have met it. The host that does the
NAT knows every endpoint (its nat rules) and has a route to each, so it asks each one it has no answer from: one
TCP connect, all side by side, bounded in time. Where one fails, what this host's routing and neighbour table say
of the way to it is the evidence; a reset is the endpoint's own answer.

It is what this host sees: a connect from it goes out through its OUTPUT path, not the FORWARD path the service's
traffic takes, so a failure is reported as "from <host>", and a success speaks for the endpoint and the way to it,
not for the forwarding rules.
"""

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.packetpath.linux.plugins.module_utils._common.addresses import family_of
from ansible_collections.packetpath.linux.plugins.module_utils.probe import Probe

MAX_ENDPOINTS = 16  # a service of hundreds of pods is asked about its first 16 unreached endpoints, no more
# Seconds a connect waits: past the kernel's 3 ARP/NDP solicitations 1 s apart (its defaults), an endpoint nobody
# answers for has an entry the kernel gave up on (FAILED) and the connect its EHOSTUNREACH.
TIMEOUT = 3.5
_UNANSWERED_STATES = ("failed", "incomplete")


def split(endpoint):
    """'198.18.20.4:9090' -> ('198.18.20.4', 9090); the port is after the last colon (IPv6 addresses hold colons)."""
    address, _colon, port = endpoint.rpartition(":")
    return address.strip("[]"), int(port)


def connect(endpoint, timeout=TIMEOUT):
    """One TCP connect from this namespace to the endpoint: the probe's attempt, as the probe module makes it."""
    address, port = split(endpoint)
    return Probe("tcp", address, port, count=1, timeout=timeout).run()[0]


def check(service, router):
    """{endpoint: {answer, latency_ms, next_hop, words}} for the service's endpoints none of the probe's attempts
    reached (at most MAX_ENDPOINTS), each connected to once, side by side; {} where every endpoint was reached."""
    unreached = service.get("not_reached")[:MAX_ENDPOINTS]
    if not unreached:
        return {}
    with ThreadPoolExecutor(max_workers=len(unreached)) as pool:
        answers = list(pool.map(connect, unreached))
    router.forget_neighbours()  # the connects just made (or failed to make) the entries they needed
    return {endpoint: _judged(endpoint, answer, router) for endpoint, answer in zip(unreached, answers)}


def _judged(endpoint, attempt, router):
    result = {"answer": attempt["result"], "latency_ms": attempt.get("latency_ms")}
    if attempt["result"] == "connected":
        result["words"] = "connects"
        return result
    address, port = split(endpoint)
    family = family_of(address)
    answer = router.lookup([{"dst": address, "family": family}])[0]
    if answer.get("type") != "unicast" or not answer.get("dev"):
        result["words"] = "fails (%s): this host has no route to it (%s)" % (
            attempt["result"], answer.get("type") or answer.get("error") or "no answer")
        return result
    gateway, dev = answer.get("gateway") or address, answer["dev"]
    state = router.neighbour(family, dev, gateway)
    result["next_hop"] = {"address": gateway, "dev": dev, "neighbour": state}
    named = "/".join(name.upper() for name in state) or "none"
    if attempt["result"] == "refused":
        result["words"] = "fails: nothing listens on port %d there (it answered with a TCP reset)" % port
    elif any(name in _UNANSWERED_STATES for name in state):
        result["words"] = "fails (%s): the next hop %s on %s does not answer ARP/NDP (neighbour state %s)" % (
            attempt["result"], gateway, dev, named)
    else:
        result["words"] = "fails (%s); the next hop %s on %s answers ARP/NDP (neighbour state %s): the endpoint or a " \
                          "host on the way to it is silent" % (attempt["result"], gateway, dev, named)
    return result
