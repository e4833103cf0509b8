"""The route-lookup engines on the kernel's own bytes, recorded in the lab with `ip -j`'s view of the same state
(tests/unit/fixtures/routing/, `make fixtures ONLY=routing`)."""

import json
import os
import subprocess
import sys

import pytest

from recorded import fixture_path

from ansible_collections.packetpath.linux.plugins.module_utils.routing import netlink
from ansible_collections.packetpath.linux.plugins.module_utils.routing.iproute_cli import IpCommand
from ansible_collections.packetpath.linux.plugins.module_utils.routing.lookup import (
    NUD_STATES,
    Router,
    build,
    rule_matches,
    rule_text,
)
from ansible_collections.packetpath.linux.plugins.module_utils.routing.rt_tables import BUILT_IN, RtTables

FIXTURE = fixture_path("routing", "seed-node-random-fib.json")


@pytest.fixture(scope="module")
def recorded():
    with open(FIXTURE, encoding="utf-8") as handle:
        return json.load(handle)


def parsed(hex_data):
    """pyroute2's own reading of recorded netlink bytes."""
    return list(netlink.Marshal().parse(bytes.fromhex(hex_data)))


def decoded_answer(entry):
    message = parsed(entry["reply"])[0]
    if message["header"]["type"] == netlink.NLMSG_ERROR:
        return None, netlink.error_code(message)
    return netlink.decode_route(message), None


def decoded_rules(chunks):
    return [netlink.decode_rule(message) for chunk in chunks for message in parsed(chunk)
            if message["header"]["type"] == netlink.RTM_NEWRULE]


class NoRunner:
    def which(self, name):
        return "/usr/sbin/" + name


def test_decoded_netlink_answers_are_what_ip_route_get_printed(recorded):
    names = dict((link["ifindex"], link["ifname"]) for link in recorded["links"])
    tables = RtTables(dict(BUILT_IN))
    kinds = set()
    for entry in recorded["route_get"]:
        route, code = decoded_answer(entry)
        expected = entry["ip_route_get"]
        if code:
            assert "error" in expected and expected["error"].endswith(os.strerror(code)), entry["lookup"]
            kinds.add("error")
            continue
        kinds.add(route["type"])
        assert route["type"] == expected.get("type", "unicast"), entry["lookup"]
        assert names.get(route.get("oif")) == expected.get("dev"), entry["lookup"]
        assert route.get("gateway") == expected.get("gateway") and route.get("prefsrc") == expected.get("prefsrc")
        assert str(tables.name(route["table_id"])) == str(expected.get("table", "main")), entry["lookup"]
    assert {"unicast", "error"} <= kinds and len(kinds) >= 3


def test_the_ip_engine_reads_ip_s_json_into_the_same_answers(recorded, monkeypatch):
    monkeypatch.setattr("socket.if_nametoindex",
                        lambda name: dict((l["ifname"], l["ifindex"]) for l in recorded["links"])[name])
    engine = IpCommand(NoRunner(), RtTables(dict(BUILT_IN)))
    for entry in recorded["route_get"]:
        route, code = decoded_answer(entry)
        if code:
            continue
        via_ip = engine.route(entry["ip_route_get"])
        assert (via_ip["type"], via_ip.get("oif"), via_ip.get("gateway"), via_ip.get("prefsrc"),
                via_ip["table_id"]) == (route["type"], route.get("oif"), route.get("gateway"), route.get("prefsrc"),
                                        route["table_id"]), entry["lookup"]


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_rule_dumps_decode_to_what_ip_rule_prints(recorded, family):
    decoded = decoded_rules(recorded["rules"][family])
    via_ip = [IpCommand(NoRunner(), RtTables(dict(BUILT_IN))).rule(entry) for entry in recorded["ip_rule"][family]]
    assert len(decoded) == len(via_ip) >= 3
    for ours, theirs in zip(decoded, via_ip):
        for key in ("priority", "table_id", "src", "dst", "iif", "fwmark", "action"):
            assert ours.get(key) == theirs.get(key), (key, ours, theirs)
    tables = RtTables(dict(BUILT_IN))
    texts = [rule_text(r, tables) for r in decoded]
    assert texts[0] == "0: from all lookup local" and "32766: from all lookup main" in texts


def test_the_matched_rule_leads_to_the_table_that_answered(recorded):
    names = dict((link["ifindex"], link["ifname"]) for link in recorded["links"])
    index_of = dict((name, index) for index, name in names.items())
    rules = {}
    for family in ("ipv4", "ipv6"):
        rules[family] = sorted(decoded_rules(recorded["rules"][family]), key=lambda rule: rule["priority"])
    checked = 0
    for entry in recorded["route_get"]:
        route, code = decoded_answer(entry)
        if code:
            continue
        lookup = build(entry["lookup"], index_of)
        matching = [r for r in rules[lookup.family] if r["action"] == "lookup" and rule_matches(r, lookup, names)]
        # The kernel walks the matching rules in order; the answer came from one of their tables.
        assert route["table_id"] in [r["table_id"] for r in matching], entry["lookup"]
        checked += 1
    assert checked > 100


# Decodes the recorded answers with the pyroute2 on sys.path; prints its version and what it decoded.
DECODE_WITH = r"""
import json, sys
from importlib import metadata
from ansible_collections.packetpath.linux.plugins.module_utils.routing import netlink
recorded = json.load(open(sys.argv[1], encoding="utf-8"))
def decode(hex_data):
    for message in netlink.Marshal().parse(bytes.fromhex(hex_data)):
        kind = message["header"]["type"]
        if kind == netlink.NLMSG_ERROR:
            yield {"errno": netlink.error_code(message)}
        elif kind == netlink.RTM_NEWROUTE:
            yield netlink.decode_route(message)
        elif kind == netlink.RTM_NEWRULE:
            yield netlink.decode_rule(message)
print(json.dumps({"version": metadata.version("pyroute2"),
                  "route_get": [next(decode(entry["reply"])) for entry in recorded["route_get"]],
                  "rules": {family: [rule for chunk in chunks for rule in decode(chunk)]
                            for family, chunks in recorded["rules"].items()}}))
"""


def pyroute2_range():
    """The pyroute2 releases `make unit` installs under build/pyroute2/<version>: both ends of the supported range."""
    directories = os.environ.get("PACKETPATH_PYROUTE2_DIRS", "").split()
    assert directories, "PACKETPATH_PYROUTE2_DIRS is empty: run the unit tests through `make unit`"
    return directories


@pytest.mark.parametrize("directory", pyroute2_range(), ids=os.path.basename)
def test_both_ends_of_the_pyroute2_range_decode_the_recorded_answers_alike(recorded, directory):
    collections = netlink.__file__.split(os.sep + "ansible_collections" + os.sep, maxsplit=1)[0]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([directory, collections]))
    done = subprocess.run([sys.executable, "-c", DECODE_WITH, FIXTURE], env=env, capture_output=True, text=True,
                          check=True)
    there = json.loads(done.stdout)
    assert there["version"] == os.path.basename(directory)
    here = [decoded_answer(entry) for entry in recorded["route_get"]]
    assert there["route_get"] == [route if code is None else {"errno": code} for route, code in here]
    for family, chunks in recorded["rules"].items():
        assert there["rules"][family] == decoded_rules(chunks)


NEIGHBOURS = fixture_path("routing", "neighbour-failed-router-neigh.json")
# Decodes the recorded neighbour dumps with the pyroute2 on sys.path.
DECODE_NEIGHBOURS = r"""
import json, sys
from ansible_collections.packetpath.linux.plugins.module_utils.routing import netlink
recorded = json.load(open(sys.argv[1], encoding="utf-8"))
print(json.dumps({family: [netlink.decode_neighbour(message) for chunk in chunks
                           for message in netlink.Marshal().parse(bytes.fromhex(chunk))
                           if message["header"]["type"] == netlink.RTM_NEWNEIGH]
                  for family, chunks in recorded["netlink"].items()}))
"""


class RecordedIp:
    """`ip -j neigh show` as it answered in the lab, by family."""

    def __init__(self, recorded):
        self.recorded = recorded

    def which(self, name):
        return "/usr/sbin/" + name

    def run(self, argv, data=None):
        return 0, json.dumps(self.recorded["ip_neigh"]["ipv6" if "-6" in argv else "ipv4"]), ""


def neighbour_view(entries, names):
    """(dev, dst, states) as `ip neigh` shows them: it hides NOARP entries (loopback's)."""
    return sorted((names[entry["ifindex"]], entry["dst"], tuple(
        name for bit, name in sorted(NUD_STATES.items()) if entry["state"] & bit)) for entry in entries
        if entry["state"] != 0x40)


@pytest.mark.parametrize("directory", pyroute2_range(), ids=os.path.basename)
def test_neighbour_dumps_decode_to_what_ip_neigh_printed_and_the_router_names_the_failed_next_hop(directory,
                                                                                                  monkeypatch):
    with open(NEIGHBOURS, encoding="utf-8") as handle:
        recorded = json.load(handle)
    collections = netlink.__file__.split(os.sep + "ansible_collections" + os.sep, maxsplit=1)[0]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([directory, collections]))
    decoded = json.loads(subprocess.run([sys.executable, "-c", DECODE_NEIGHBOURS, NEIGHBOURS], env=env,
                                        capture_output=True, text=True, check=True).stdout)
    names = {link["ifindex"]: link["ifname"] for link in recorded["links"]}
    monkeypatch.setattr("socket.if_nametoindex", {name: index for index, name in names.items()}.__getitem__)
    via_ip = IpCommand(RecordedIp(recorded), RtTables(dict(BUILT_IN)))
    for family in ("ipv4", "ipv6"):
        assert neighbour_view(decoded[family], names) == neighbour_view(via_ip.neighbours(family), names)
    router = Router(via_ip, RtTables(dict(BUILT_IN)))
    router.names = names
    assert router.neighbour("ipv4", "eth1", "198.18.20.9") == ["failed"]
    assert router.neighbour("ipv4", "eth1", "198.18.20.2") == []


# Encodes lookups of every shape both ways with the pyroute2 on sys.path: by pyroute2 each time (request), and from
# the shape's first message with the values written in place (Requests). Prints the version and the mismatches.
ENCODE_WITH = r"""
import itertools, json, sys
from importlib import metadata
from ansible_collections.packetpath.linux.plugins.module_utils.routing import netlink
from ansible_collections.packetpath.linux.plugins.module_utils.routing.lookup import Lookup
requests = netlink.Requests()
lookups = []
for number, (family, src, iif, oif, mark, uid, proto, ports, tos) in enumerate(itertools.product(
        ("ipv4", "ipv6"), (False, True), (None, 3), (None, 7), (None, 0, 0x1ff), (None, 1000), (None, "tcp", "udp"),
        (None, (40000 + 7, 8080)), (0, 0x10))):
    for turn in range(2):  # the second of each shape comes from the first one's bytes
        value = number * 2 + turn
        dst = "198.18.%d.%d" % (value // 250 % 250, value % 250) if family == "ipv4" else "2001:db8::%x" % value
        source = ("198.19.0.%d" % (value % 250) if family == "ipv4" else "2001:db8:1::%x" % value) if src else None
        lookups.append(Lookup(family, dst, src=source, iif=iif, oif=oif, mark=mark, uid=uid, proto=proto,
                              sport=ports and ports[0] + turn, dport=ports and ports[1] + turn, tos=tos))
mismatches = [repr(lookup) for sequence, lookup in enumerate(lookups, 1)
              if requests.encode(lookup, sequence) != netlink.request(lookup, sequence)]
print(json.dumps({"version": metadata.version("pyroute2"), "lookups": len(lookups),
                  "templated": len(requests._shapes), "mismatches": mismatches[:5]}))
"""


@pytest.mark.parametrize("directory", pyroute2_range(), ids=os.path.basename)
def test_a_request_written_from_its_shape_s_first_message_is_what_pyroute2_encodes(directory):
    collections = netlink.__file__.split(os.sep + "ansible_collections" + os.sep, maxsplit=1)[0]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([directory, collections]))
    there = json.loads(subprocess.run([sys.executable, "-c", ENCODE_WITH], env=env, capture_output=True, text=True,
                                      check=True).stdout)
    assert there["version"] == os.path.basename(directory)
    # 1,152 combinations twice; a shape is the family and which selectors are set (not tos, not the mark's value)
    assert (there["lookups"], there["templated"]) == (2304, 256)
    assert there["mismatches"] == [], there["mismatches"]


class Which:
    """A host's commands, as `which` finds them."""

    def __init__(self, *installed):
        self.installed = installed

    def which(self, name):
        return "/usr/sbin/" + name if name in self.installed else None


def test_auto_answers_a_small_request_through_ip_and_a_batch_through_pyroute2():
    from ansible_collections.packetpath.linux.plugins.module_utils.routing import engines
    tables = RtTables(dict(BUILT_IN))
    assert engines.choose("auto", Which("ip"), tables, lookups=1).name == "ip"
    assert engines.choose("auto", Which("ip"), tables, lookups=engines.IP_UP_TO).name == "ip"
    past = engines.choose("auto", Which("ip"), tables, lookups=engines.IP_UP_TO + 1)
    assert past.name == ("pyroute2" if netlink.HAS_PYROUTE2 else "ip")
    getattr(past, "close", lambda: None)()
    without_ip = engines.choose("auto", Which(), tables, lookups=1)  # the count alone never picks a missing ip
    assert without_ip.name == ("pyroute2" if netlink.HAS_PYROUTE2 else "ip")
    getattr(without_ip, "close", lambda: None)()
    assert engines.choose("ip", Which("ip"), tables, lookups=1000).name == "ip"
