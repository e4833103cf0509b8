"""Record real trace output in the kube lab, through trace_rule itself: `make fixtures`.

For each backend node and each case (TCP, UDP, ICMP over IPv4; TCP and ICMPv6 over
IPv6) it switches a trace on, sends one bounded packet from the client, captures what
the backend prints, switches the trace off, and writes the lines unedited under
tests/unit/fixtures/traces/.  The lab is torn down at the end, also on failure.
"""

import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

import yaml
from labtools import ROOT, Monitor, connect, in_netns, journal, lab, module, module_on, nflog_monitor, send
from routing_lab import FORWARDING, LOOKUP_CHILD, apply_fib, ip_argv, random_fib, random_lookups

OUT = os.path.join(ROOT, "tests", "unit", "fixtures", "traces")
NODES = {"node1": ("iptables_legacy", "11"), "node2": ("iptables_nft", "12"), "node3": ("nftables", "13")}
CASES = {
    "tcp4": ({"proto": "tcp", "dport": "30080"}, "tcp", "198.51.100.%s", 30080),
    "udp4": ({"proto": "udp", "dport": "9999"}, "udp", "198.51.100.%s", 9999),
    "icmp4": ({"proto": "icmp", "dst": "198.51.100.%s"}, "icmp", "198.51.100.%s", 0),
    "tcp6": ({"proto": "tcp", "dport": "30080", "family": "ipv6"}, "tcp", "2001:db8:100::%s", 30080),
    "icmp6": ({"proto": "icmpv6", "dst": "2001:db8:100::%s"}, "icmp", "2001:db8:100::%s", 0),
}


def probe(proto, address, port):
    if proto == "tcp":
        connect("pp-client", address, port, timeout=1)
    else:
        send("pp-client", proto, address, port)


def in_root_of(host):
    """The words that run a command with the tools of a host that runs from a release root (pplab's `userspace`):
    in its sshd's mount namespace, with its root."""
    state = journal()
    pid = next(entry["pid"] for entry in state["resources"] if entry["kind"] == "process"
               and entry["what"] == "sshd" and entry["host"] == host)
    return ["nsenter", "--target", str(pid), "--mount", "--root", "--wd", "--"]


def record(host, case, release=None):
    backend, suffix = NODES[host]
    tools = in_root_of(host) if release else []
    flow, proto, address, port = CASES[case]
    flow = dict((k, v % suffix if "%s" in v else v) for k, v in flow.items())
    address = address % suffix
    result = module(host, "packetpath.linux.trace_rule", dict(flow, expires=60, hooks=["prerouting"]))
    assert result["_status"] == "CHANGED", result["_stdout"]
    if backend == "iptables_legacy":  # the kernel log's lines, as NFLOG of the host's namespace delivers them
        monitor = nflog_monitor("pp-" + host, seconds=3)
        probe(proto, address, port)
        lines = [line for line in monitor.stop().splitlines() if "IN=eth1" in line]
        name = "%s-kube-%s-%s-nflog.txt" % (backend, host, case)
    else:
        argv = ["xtables-monitor", "--trace"] if backend == "iptables_nft" else ["nft", "monitor", "trace"]
        monitor = Monitor("pp-" + host, tools + argv)
        probe(proto, address, port)
        lines = monitor.stop().splitlines()
        name = "%s-kube-%s-%s.txt" % ("xtables-monitor" if backend == "iptables_nft" else "nft-monitor", host, case)
        name = os.path.join(release, name) if release else name
    ruleset = host_ruleset(host, backend, tools)
    module(host, "packetpath.linux.trace_rule", {"state": "absent", "all": True})
    if not lines:
        raise AssertionError("no trace for %s on %s" % (case, host))
    write(name, lines)
    for kind, text in ruleset.items():
        write(name.rsplit(".", 1)[0] + "." + kind, text.splitlines())


def write(name, lines):
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    print("%-60s %3d lines" % (name, len(lines)))


def host_ruleset(host, backend, tools=()):
    """What trace_results reads on the host at fetch time: legacy tables and saves, or nft's base chains."""
    netns = "pp-" + host
    if backend != "iptables_legacy":
        return {"nft-list-chains": in_netns(netns, list(tools) + ["nft", "list", "chains"]).stdout}
    ruleset = {}
    for family, command, names in (("ipv4", "iptables-legacy-save", "ip_tables_names"),
                                   ("ipv6", "ip6tables-legacy-save", "ip6_tables_names")):
        ruleset["%s-tables" % family] = in_netns(netns, ["cat", "/proc/net/" + names]).stdout
        ruleset["%s-save" % family] = in_netns(netns, [command]).stdout
    return ruleset


JOURNALD = """
mount -t tmpfs tmpfs /run/systemd 2>/dev/null || { mkdir -p /run/systemd && mount -t tmpfs tmpfs /run/systemd; }
mkdir -p /run/systemd/journal /run/log/journal
mount -t tmpfs tmpfs /run/log/journal
/lib/systemd/systemd-journald >/dev/null 2>&1 &
sleep 3
journalctl -k -o json --no-pager
kill $!
"""


def record_seed_journal():
    """The seed's incident as journald stores it: `journalctl -k -o json` of the client's and node's TRACE lines.

    journald runs in a private mount namespace (its /run on a tmpfs), reads the kernel ring
    buffer like on any systemd host, and is gone when the namespace is.
    """
    lab("up", "seed")
    try:
        markers = {}
        flow = {"proto": "tcp", "dport": "8081", "expires": 60}
        markers["client"] = module("client", "packetpath.linux.trace_rule", dict(flow, hooks=["output"]))["marker"]
        markers["node"] = module("node", "packetpath.linux.trace_rule", dict(flow, hooks=["prerouting"]))["marker"]
        connect("pp-client", "192.0.2.80", 8081, timeout=1.2)
        time.sleep(0.5)
        for host in ("client", "node"):
            ruleset = host_ruleset(host, "iptables_legacy")
            for kind, text in ruleset.items():
                write("iptables_legacy-seed-%s.%s" % (host, kind), text.splitlines())
            module(host, "packetpath.linux.trace_rule", {"state": "absent", "all": True})
        with tempfile.NamedTemporaryFile("w", suffix=".sh") as script:
            script.write(JOURNALD)
            script.flush()
            out = subprocess.run(["unshare", "-m", "--propagation", "private", "bash", script.name], check=True,
                                 capture_output=True, text=True, timeout=60).stdout
        since = min(m["uptime"] for m in markers.values()) * 1e6
        records = [line for line in out.splitlines()
                   if int(json.loads(line).get("_SOURCE_MONOTONIC_TIMESTAMP", 0)) >= since]
        if not any("TRACE:" in line for line in records):
            raise AssertionError("journald recorded no TRACE line")
        write("journald-seed-kernel.json", records)
    finally:
        lab("down")


# A dump as the kernel answers it: the hex of every chunk up to NLMSG_DONE (for the children below).
RAW_DUMP = r"""
def raw_dump(engine, message_class, kind, family):
    dump = message_class()
    dump["family"] = netlink.FAMILY[family]
    dump["header"].update(type=kind, flags=netlink.NLM_F_REQUEST | netlink.NLM_F_DUMP, sequence_number=engine._next())
    dump.encode()
    engine.sock.sendall(bytes(dump.data))
    chunks, done = [], False
    while not done:
        data = engine.sock.recv(1 << 20)
        chunks.append(data.hex())
        done = any(message["header"]["type"] == netlink.NLMSG_DONE for message in engine.marshal.parse(data))
    return chunks
"""

# Runs in the node's namespace: raw rtnetlink answers (hex) for lookups and the rule dumps, asked with the engine's
# own pyroute2 messages, so the decoders can be tested on the kernel's bytes.
NETLINK_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from pyroute2.netlink.rtnl.fibmsg import fibmsg
from ansible_collections.packetpath.linux.plugins.module_utils.routing import netlink
from ansible_collections.packetpath.linux.plugins.module_utils.routing.lookup import Router, build
engine = netlink.Pyroute2Engine()
index_of = Router(engine).index_of
out = {"route_get": [], "rules": {}}
for spec in json.load(sys.stdin):
    engine.sock.sendall(netlink.request(build(spec, index_of), engine._next()))
    out["route_get"].append({"lookup": spec, "reply": engine.sock.recv(65536).hex()})
for family in ("ipv4", "ipv6"):
    out["rules"][family] = raw_dump(engine, fibmsg, netlink.RTM_GETRULE, family)
print(json.dumps(out))
"""


def record_routing():
    """The seed node with random routes, tables and rules: the kernel's netlink bytes and `ip -j`'s view of them."""
    rng = random.Random(20261124)
    lab("up", "seed")
    try:
        apply_fib(in_netns, "pp-node", random_fib(rng))
        in_netns("pp-node", ["sysctl", "-qw"] + FORWARDING)
        lookups = random_lookups(rng, 200) + [{"dst": "203.0.113.12", "src": "198.51.100.13", "iif": "b-srv"}]
        collections = os.path.join(ROOT, "build", "collections")
        raw = json.loads(in_netns("pp-node", ["python3", "-c", RAW_DUMP + NETLINK_CHILD, collections],
                                  stdin=json.dumps(lookups)).stdout)
        reference = json.loads(in_netns("pp-node", ["python3", "-c", LOOKUP_CHILD],
                                        stdin=json.dumps([ip_argv(l) for l in lookups])).stdout)
        for answer, expected in zip(raw["route_get"], reference):
            answer["ip_route_get"] = expected
        raw["links"] = json.loads(in_netns("pp-node", ["ip", "-j", "link"]).stdout)
        raw["ip_rule"] = dict((family, json.loads(in_netns("pp-node", ["ip", "-j", flag, "rule"]).stdout))
                              for family, flag in (("ipv4", "-4"), ("ipv6", "-6")))
        write("../routing/seed-node-random-fib.json", [json.dumps(raw, indent=1, sort_keys=True)])
    finally:
        lab("down")


def record_traces(releases=None):
    """Each backend's trace of each case on the kube lab's nodes; `traces:debian11,debian13` records the two
    monitors' texts (xtables-monitor, nft monitor trace) with those releases' tools instead, under traces/<release>/
    (legacy TRACE is the kernel's text, read by the collection's own NFLOG reader on every release)."""
    for release in releases or [None]:
        hosts = [host for host in NODES if not release or NODES[host][0] != "iptables_legacy"]
        lab("up", "kube", *(["--userspace", ",".join("%s=%s" % (host, release) for host in hosts)] if release else []))
        try:
            if release:
                os.makedirs(os.path.join(OUT, release), exist_ok=True)
            for host in hosts:
                for case in CASES:
                    record(host, case, release)
        finally:
            lab("down")


def record_backends():
    """Our rules as each kind of backend lists them once armed with an expiry the kernel keeps (issue #42): a
    TCP flow with one, and on the nftables node an ICMP flow without (expires=0) beside it."""
    out = os.path.join(ROOT, "tests", "unit", "fixtures", "backends")
    lab("up", "kube")
    try:
        for host, expires in (("node1", [600]), ("node2", [600]), ("node3", [600, 0])):
            flows = [{"proto": "tcp", "dport": "30080"}, {"proto": "icmp", "dst": "198.51.100.13"}]
            for flow, seconds in zip(flows, expires):
                result = module(host, "packetpath.linux.trace_rule", dict(flow, expires=seconds))
                assert result["_status"] == "CHANGED", result["_stdout"]
        texts = {"iptables-legacy-S-PREROUTING-until.txt": ("node1", ["iptables-legacy", "-t", "raw", "-S",
                                                                      "PREROUTING"]),
                 "iptables-nft-S-PREROUTING-until.txt": ("node2", ["iptables-nft", "-t", "raw", "-S", "PREROUTING"]),
                 "nft-a-list-table-inet-packetpath-until.txt": ("node3", ["env", "TZ=UTC", "nft", "-a", "list", "table",
                                                                          "inet", "packetpath"])}
        for name, (host, argv) in texts.items():
            with open(os.path.join(out, name), "w", encoding="utf-8") as handle:
                handle.write(in_netns("pp-" + host, argv).stdout)
        module_on(list(NODES), "packetpath.linux.trace_rule", {"state": "absent", "all": True})
    finally:
        lab("down")


# Reads every per-interface conf value of the namespace it runs in, as expectations.Snapshot holds them.
READ_CONF = r"""
import json, os
names = {"ipv4": ["rp_filter", "log_martians", "forwarding", "accept_redirects"], "ipv6": ["forwarding"]}
out = {}
for family, wanted in names.items():
    base = "/proc/sys/net/%s/conf" % family
    for interface in sorted(os.listdir(base)):
        for name in wanted:
            with open(os.path.join(base, interface, name)) as handle:
                out.setdefault(family, {}).setdefault(interface, {})[name] = int(handle.read())
print(json.dumps(out, indent=1, sort_keys=True))
"""


def record_sysctl():
    """The conf values of the seed's node (strict, the incident) and of kube's node1, and our sysctl.d file as
    interface_sysctl writes it for a name and a glob."""
    out = os.path.join(ROOT, "tests", "unit", "fixtures", "sysctl")
    os.makedirs(out, exist_ok=True)
    for topology, hosts in (("seed", ("node", "client")), ("kube", ("node1",))):
        lab("up", topology)
        try:
            for host in hosts:
                text = in_netns("pp-" + host, [sys.executable, "-c", READ_CONF]).stdout
                with open(os.path.join(out, "conf-%s-%s.json" % (topology, host)), "w") as handle:
                    handle.write(text)
            if topology == "kube":
                result = module("node1", "packetpath.linux.interface_sysctl", {
                    "interfaces": ["eth1", "cni*"], "settings": {"rp_filter": 2, "log_martians": 1},
                    "persistent": "present"})
                assert result["_status"] == "CHANGED", result["_stdout"]
                with open("/etc/netns/pp-node1/sysctl.d/90-packetpath-interfaces.conf") as source:
                    with open(os.path.join(out, "90-packetpath-interfaces.conf"), "w") as handle:
                        handle.write(source.read())
        finally:
            lab("down")


# Incidents whose culprit decides from the kernel's answers beyond the trace (routes, neighbours, links, qdiscs,
# sockets, rule texts that the monitors print): the culprit's trace_results with explain, as the role runs it. Where
# the culprit cannot decide alone, the other host of the fleet's join is recorded too: the host that sent it the
# packet (`sent_by` in the truth: its trace sees nothing, or it holds the address the sender asked for) or the one it
# sent the packet to (`sent_to`: the holder of its next hop's address).
EXPLAINED = ("accept-queue-full", "arp-ignore-vip", "bridge-docker-forward", "conntrack-full", "conntrack-invalid",
             "dnat-no-route", "forward-reject", "link-down", "mark-policy-route", "martian-source", "neighbour-failed",
             "neighbour-stale-mac", "policy-drop", "prohibit-route-v6", "qdisc-drop", "reply-neighbour-failed-v6",
             "reply-routed-elsewhere", "routing-loop", "tc-ingress-drop", "tc-ingress-drop-untraced",
             "udp-receive-buffer-full-v6", "unreachable-route", "vxlan-missing-fdb",
             "vxlan-port-mismatch", "service-stale-conntrack", "service-endpoint-gone", "ipv6-duplicate-address",
             "duplicate-address-answered", "proxy-arp-off", "ipv6-disabled", "arp-filter-overlap")
JOINED = ("sent_by", "sent_to")
SPORT = 48080


def record_incidents(names=EXPLAINED):
    """For each incident of EXPLAINED: the culprit traced both ways by the probe's source port and captured as the
    role does (with the kernel's drop reasons), one probe from probe_from, the capture collected with explain; the
    module's packets and finding, unedited, and the culprit's socket tables."""
    out = os.path.join(ROOT, "tests", "unit", "fixtures", "incidents")
    os.makedirs(out, exist_ok=True)
    for name in names:
        topology = os.path.join(ROOT, "tests", "lab", "topologies", "incidents", name + ".yml")
        with open(topology, encoding="utf-8") as handle:
            truth = yaml.safe_load(handle)["incident"]
        probe_args = truth["probe"]
        sport = truth.get("stale_sport", SPORT)  # a lab whose incident is one client port's conversation
        flow = {"proto": probe_args["proto"], "port": str(sport)}
        count = truth.get("record_count", 2)
        if "record_count" in truth:  # each attempt a conversation of its own, traced as the role traces them
            with open(topology, encoding="utf-8") as handle:
                segments = yaml.safe_load(handle)["segments"].values()
            source = next(port["addresses"][0].split("/")[0] for segment in segments
                          for host, port in segment["ports"].items() if host == probe_args["probe_from"])
            flow = dict(flow, port="%d:%d" % (sport, sport + count - 1), probe_src=source)
        joined = [key for key in JOINED if key in truth]
        hosts = [truth["culprit"]] + [truth[key] for key in joined]
        lab("up", "incidents/" + name)
        try:
            for host in hosts:  # armed as the role arms: the capture, and the kernel's drop reasons beside it
                armed = module(host, "packetpath.linux.trace_rule", dict(flow, expires=60, capture=True))
                assert armed["_status"] == "CHANGED" and "pid" in armed["capture"]["drop_reasons"], armed
            module(probe_args["probe_from"], "packetpath.linux.probe", {
                "proto": probe_args["proto"], "dst": probe_args["dst"], "dport": probe_args["dport"],
                "sport": sport, "count": count, "timeout": 1, "parallel": "record_count" in truth})
            collected = {host: module(host, "packetpath.linux.trace_results", dict(
                flow, source="capture", explain=True, max_packets=20)) for host in hosts}
            for host in hosts:
                module(host, "packetpath.linux.trace_rule", dict(flow, state="absent"))
            results = {}
            for host in hosts:
                result = {key: collected[host][key] for key in ("packets", "finding")}
                # The socket tables, which a finding names only where nothing listens, and conntrack's statistics.
                result["proc_net"] = {path: in_netns("pp-" + host, ["cat", path]).stdout
                                      for path in ("/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp",
                                                   "/proc/net/udp6", "/proc/net/stat/nf_conntrack")}
                results[host] = result
            recorded = {"incident": truth, "port": [sport, sport + count - 1] if "record_count" in truth else sport,
                        "result": results.pop(truth["culprit"])}
            for key in joined:
                recorded[key] = results[truth[key]]
            if not joined:
                assert recorded["result"]["finding"]["cause"] == truth["cause"], [
                    (p["hops"][0].get("sport"), p["hops"][0].get("dport"), p.get("fate")) for p in recorded["result"]["packets"]]
            with open(os.path.join(out, name + ".json"), "w", encoding="utf-8") as handle:
                json.dump(recorded, handle, indent=1, sort_keys=True)
                handle.write("\n")
        finally:
            lab("down")


# The neighbour tables of the namespace it runs in, as the kernel sends them (pyroute2 ndmsg dumps, both families).
NEIGHBOUR_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from pyroute2.netlink.rtnl.ndmsg import ndmsg
from ansible_collections.packetpath.linux.plugins.module_utils.routing import netlink
engine = netlink.Pyroute2Engine()
print(json.dumps({family: raw_dump(engine, ndmsg, netlink.RTM_GETNEIGH, family) for family in ("ipv4", "ipv6")}))
"""


def record_neighbours():
    """The router of incidents/neighbour-failed after one probe: its next hop FAILED, the client REACHABLE; the
    kernel's netlink bytes and `ip -j neigh`'s view of the same table."""
    lab("up", "incidents/neighbour-failed")
    try:
        # While the router still asks (its next hop INCOMPLETE: the first of three ARP probes a second apart), then
        # when it has given up (FAILED).
        asking = threading.Thread(target=connect, args=("pp-client", "198.18.20.2", 8080), kwargs={"timeout": 5})
        asking.start()
        time.sleep(0.5)
        resolving = {family: json.loads(in_netns("pp-router", ["ip", "-j", flag, "neigh", "show"]).stdout)
                     for family, flag in (("ipv4", "-4"), ("ipv6", "-6"))}
        asking.join()
        time.sleep(4)  # three ARP probes a second apart, then FAILED
        collections = os.path.join(ROOT, "build", "collections")
        child = ["python3", "-c", RAW_DUMP + NEIGHBOUR_CHILD, collections]
        raw = {"netlink": json.loads(in_netns("pp-router", child).stdout),
               "ip_neigh": {family: json.loads(in_netns("pp-router", ["ip", "-j", flag, "neigh", "show"]).stdout)
                            for family, flag in (("ipv4", "-4"), ("ipv6", "-6"))},
               "ip_neigh_resolving": resolving,
               "links": json.loads(in_netns("pp-router", ["ip", "-j", "link"]).stdout)}
        write("../routing/neighbour-failed-router-neigh.json", [json.dumps(raw, indent=1, sort_keys=True)])
    finally:
        lab("down")


PARTS = {"incidents": record_incidents, "neighbours": record_neighbours, "traces": record_traces,
         "journal": record_seed_journal, "routing": record_routing, "sysctl": record_sysctl,
         "backends": record_backends}


def main(parts):
    """`make fixtures` records everything; `make fixtures ONLY=routing` (or incidents, traces, journal, sysctl,
    backends) one part; `ONLY=incidents:NAME,NAME` some incidents."""
    for part in parts or list(PARTS):
        part, _colon, names = part.partition(":")  # incidents:link-down,qdisc-drop records only those
        PARTS[part](*([names.split(",")] if names else []))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
