"""The incident catalogue (tests/lab/topologies/incidents/): each small lab carries its truth (culprit host, cause
id), and diagnose_port, run across all its hosts, must name that host and that cause, and blame no other host.
Where the catalogue's fix is remediable, packetpath_remediate=true applies it and the probe then succeeds."""

import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import jsonschema
import pytest
import xmlschema
import yaml
from labtools import ENV, ROOT, ansible_playbook, connect, in_netns, lab, module, traces_left
from pplab import topology as lab_topology

INCIDENTS = os.path.join(ROOT, "tests", "lab", "topologies", "incidents")
with open(os.path.join(ROOT, "schemas", "diagnosis_report.schema.json"), encoding="utf-8") as _handle:
    SCHEMA = json.load(_handle)
NAMES = sorted(name[:-4] for name in os.listdir(INCIDENTS) if name.endswith(".yml"))
OLD_PYROUTE2 = "pyroute2 0.5.14 is older than 0.7, the oldest this collection supports"
JUNIT_SCHEMA = xmlschema.XMLSchema(os.environ.get("PACKETPATH_JUNIT_XSD", os.path.join(ROOT, "build", "junit-10.xsd")))


def topology(name):
    with open(os.path.join(INCIDENTS, name + ".yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def truth(name):
    return topology(name)["incident"]


def diagnose(tmp_path, probe, *extra, blocked_fails=False):
    """The run's output and report; with blocked_fails, run with fail_on_blocked=true, which must fail it."""
    report_dir = tmp_path / "report"
    args = ["-e", "packetpath_trace_hosts=all", "-e", "packetpath_report_dir=%s" % report_dir]
    for key, value in probe.items():
        args += ["-e", "packetpath_%s=%s" % (key, value)]
    if blocked_fails:
        args += ["-e", "packetpath_fail_on_blocked=true"]
    run = ansible_playbook("packetpath.linux.diagnose_port", *(args + list(extra)), check=not blocked_fails)
    if blocked_fails:
        assert run.returncode != 0 and "the port is blocked: " in run.stdout, run.stdout[-2000:]
    with open(report_dir / "latest" / "report.json", encoding="utf-8") as handle:
        report = json.load(handle)
    check_junit(report_dir / "latest" / "report.junit.xml", report)
    return run.stdout, report


def check_junit(path, report):
    """The JUnit file is valid for the common schema, and fails the fleet's verdict and the culprit, where there
    is one."""
    JUNIT_SCHEMA.validate(str(path))
    failed = {case.get("classname") for case in ET.parse(path).getroot().iter("testcase") if case.find("failure")
              is not None}
    fleet = report["verdict"]
    if fleet.get("fixed"):  # this run's remediation fixed the port: nothing fails a CI job
        assert failed == set(), failed
        return
    assert failed == ({"fleet"} if fleet["cause"] else set()) | ({fleet["culprit"]} if fleet["culprit"] else set()), \
        failed


def rotated(name):
    """`--userspace` and {host: release} of the incident's managed hosts on a mixed fleet: the releases in turn,
    started as many on as the lab's place in the catalogue, so that over the catalogue each backend meets each
    release (issue #38; tests/unit/lab/test_topology.py checks that it does)."""
    spec = "rotate:%d" % NAMES.index(name)
    topo = lab_topology.load(os.path.join(INCIDENTS, name + ".yml"))
    lab_topology.set_userspace(topo, spec)
    return spec, {host.name: host.userspace for host in topo.managed_hosts}


@pytest.mark.parametrize("name", NAMES)
def test_the_verdict_names_the_culprit_and_the_cause(name, tmp_path, lab_down_after):
    # Without the kernel's drop reasons (hosts where bpftrace cannot run) on a mixed fleet, its hosts spread over
    # Debian 11, 12 and 13; then with them (bpftrace, installed by `make`, on this machine's own release), on the lab
    # built again: the same verdict, but where only the kernel's word can decide. The remediation, where the
    # catalogue has one, runs last.
    incident = truth(name)
    if incident.get("requires") and not os.path.exists(incident["requires"]):  # a kernel feature the incident needs
        pytest.skip("this kernel has no %s: the incident cannot happen here" % incident["requires"])
    userspace, releases = rotated(name)
    for drop_reasons in ("never", "auto"):
        if drop_reasons == "never":
            lab("up", "incidents/" + name, "--userspace", userspace)
        else:
            lab("up", "incidents/" + name)
            releases = {}
        expected = dict(incident, **(incident.get("without_drop_reasons", {}) if drop_reasons == "never" else {}))
        fixed = expected.get("fixed_by_remediate", False) and drop_reasons == "auto"
        output, report = diagnose(tmp_path / drop_reasons, expected["probe"],
                                  "-e", "packetpath_drop_reasons=%s" % drop_reasons,
                                  *(["-e", "packetpath_remediate=true"] if fixed else []),
                                  blocked_fails=drop_reasons == "never")  # a CI job or a cron sees it blocked
        check_verdict(expected, drop_reasons, output, report)
        backends = {host: spec.get("backend", "iptables_nft") for host, spec in topology(name)["hosts"].items()
                    if spec.get("managed", True)}
        assert {row["host"]: row["armed"]["backend"] for row in report["hosts"]} == backends
        # Debian 11's pyroute2 (0.5.14) is older than the route engine takes: `ip -j` answers there, and says why.
        assert {row["host"]: (row["engine"], row.get("engine_reason")) for row in report["hosts"]} == {
            host: ("ip", OLD_PYROUTE2) if releases.get(host) == "debian11" else ("pyroute2", None) for host in backends}
        assert len(re.findall(r"the trace expires by itself at 20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ", output)) == len(backends), output
        if fixed:
            assert report["verdict"]["fix"]["remediable"], report["verdict"]
            assert report["probe_after_fix"]["summary"]["failed"] == 0, report.get("probe_after_fix")
            assert report["verdict"]["fixed"] and ", fixed (probe after the fix: connected " in report["verdict"]["line"]
            # One run, one directory: the report after the fix is written over the first, in the same directory.
            assert len(os.listdir(tmp_path / drop_reasons / "report")) == 2, os.listdir(tmp_path / drop_reasons / "report")
        for host in topology(name)["hosts"]:
            assert traces_left("pp-" + host) == []


def check_verdict(expected, drop_reasons, output, report):
    fleet = report["verdict"]
    jsonschema.validate(report, SCHEMA)  # every report written here, with its documented schema
    assert (fleet["culprit"], fleet["cause"]) == (expected["culprit"], expected["cause"]), (drop_reasons, output)
    blamed = {row["host"]: row["cause"] for row in report["hosts"] if row["cause"]}
    # A loop has more than one host: each names it (the fleet's words name the others).
    culprits = [expected["culprit"]] + expected.get("loop_with", []) if expected["culprit"] else []
    assert blamed == {host: expected["cause"] for host in culprits}, blamed
    assert "[%s]" % expected["cause"] in output
    if expected["culprit"]:
        assert expected["culprit"] + " \u2717" in fleet["line"], fleet["line"]
    else:
        assert "Ruled out on the way" in fleet["words"]
    said = expected.get("words_include", [])
    for words in [said] if isinstance(said, str) else said:
        assert words in fleet["words"], (words, fleet["words"])
    if "fix_command" in expected:  # the fix a person pastes, as the terminal shows it: whole on one line
        culprit, command = re.escape(expected["culprit"]), re.escape(expected["fix_command"])
        assert re.search(r"^fix on %s(: %s  \(| \(.*\):\n  %s\n)" % (culprit, command, command), output, re.M), output
    summary = report["probe"]["summary"]
    assert summary["succeeded"] == expected.get("probe_succeeded", 0), summary
    # A cross only over a probe that failed, and an answer claimed only where one came back (issue #37).
    assert ("\u2717" in fleet["line"]) == bool(expected["culprit"]) and summary["failed"] > 0, (fleet["line"], summary)
    if expected["cause"] in ("no_listener", "rule_reject"):
        assert summary["results"].get("refused") or summary["results"].get("unreachable"), summary
    if "probe_icmp" in expected:  # the ICMP error the probe got, and the address of the host that sent it
        assert report["probe"]["summary"]["icmp"] == [expected["probe_icmp"]], report["probe"]["summary"]
        assert "ICMP %s" % expected["probe_icmp"]["name"] in output
        # The verdict names the host the error came from, by its address.
        sender = "%s (%s)" % (expected["probe_icmp_host"], expected["probe_icmp"]["from"])
        assert "The probe got ICMP %s from %s" % (expected["probe_icmp"]["name"], sender) in fleet["words"], fleet["words"]
    rows = {row["host"]: row for row in report["hosts"]}
    if drop_reasons == "never":
        assert all(row["drop_reasons"] is None for row in rows.values())
    elif "holder_reason" in expected:  # the next hop's holder's kernel word, set beside the sender's cause
        culprit = rows[expected["culprit"]]
        assert expected["holder_reason"] in [drop["reason"] for drop in culprit["kernel_drops"]], culprit
        assert culprit["kernel"] == "corroborates", culprit
        assert "(the kernel agrees: %s" % expected["holder_reason"] in fleet["words"], fleet["words"]
    elif "kernel_reason" in expected:  # the kernel's own word for the drop, next to the cause
        culprit = rows[expected["culprit"]]
        assert expected["kernel_reason"] in [drop["reason"] for drop in culprit["drop_reasons"]], culprit
        assert culprit["kernel"] in ("corroborates", "decides"), culprit
        assert expected["kernel_reason"] in fleet["words"]


def test_a_dead_endpoint_the_probe_missed_is_found_in_every_run(tmp_path, lab_down_after):
    # service-endpoint-gone probed with one attempt per run: the nth spread sends the first run's to 198.18.20.2, the
    # second's to .3, the third's to the gone .4. The two that connect say so (no cross, no cause), and the router,
    # which spreads the service, connects to the endpoints the attempt missed: the gone one is named, with why, in
    # every run. Without check_endpoints, the gone one is "not spoken for".
    lab("up", "incidents/service-endpoint-gone")
    probe = dict(truth("service-endpoint-gone")["probe"], probe_count=1)
    gone = "198.18.20.4:9090"
    why = "the next hop 198.18.20.4 on eth1 does not answer ARP/NDP (neighbour state"
    reached = []
    for run in range(3):
        # A source port of its own per run: conntrack would hold the last run's conversation, with its endpoint.
        output, report = diagnose(tmp_path / str(run), probe, "-e", "packetpath_drop_reasons=never",
                                  "-e", "diagnose_port_probe_sport=%d" % (28100 + run))
        fleet, summary = report["verdict"], report["probe"]["summary"]
        router = {row["host"]: row for row in report["hosts"]}["router"]
        reached += list(router["service"]["reached"])
        assert [(each["host"], each["endpoint"]) for each in fleet["failing_endpoints"]] == [("router", gone)], fleet
        assert why in fleet["failing_endpoints"][0]["words"], fleet
        assert "1 of 3 endpoints fails: %s" % gone in fleet["words"], fleet["words"]
        checked = router["service"]["checked"]  # the endpoints the attempt missed, each connected to by the router
        assert set(checked) == set(router["service"]["endpoints"]) - set(router["service"]["reached"]), checked
        assert all(result == {"answer": "connected", "latency_ms": result["latency_ms"], "words": "connects"}
                   for endpoint, result in checked.items() if endpoint != gone), checked
        assert "router connected to the ones it missed: " in fleet["words"], fleet["words"]
        if summary["succeeded"]:  # the attempt reached a live endpoint: no cross over it, the gone one checked
            assert (fleet["culprit"], fleet["cause"], "\u2717" in fleet["line"]) == (None, None, False), fleet
            assert checked[gone]["answer"] in ("timeout", "unreachable") and why in checked[gone]["words"], checked
            assert "  [passed, but 1 endpoint of the service fails]" in output, output
        else:  # the attempt met the gone endpoint itself: the catalogue's verdict
            assert (fleet["culprit"], fleet["cause"]) == ("router", "neighbour_failed"), fleet
            assert gone not in checked, checked
    assert sorted(reached) == ["198.18.20.2:9090", "198.18.20.3:9090", gone], reached
    _output, report = diagnose(tmp_path / "unchecked", probe, "-e", "packetpath_drop_reasons=never",
                               "-e", "diagnose_port_probe_sport=28110", "-e", "packetpath_check_endpoints=false")
    assert report["verdict"]["failing_endpoints"] == [] and "not reached, so not spoken for" in report["verdict"][
        "words"], report["verdict"]


def test_another_client_s_conversation_held_to_a_gone_endpoint_is_named_beside_a_probe_that_passed(
        tmp_path, lab_down_after):
    # service-stale-conntrack probed from ports of its own: every attempt is a new conversation and reaches the
    # endpoint today's rule chooses, so nothing is crossed out; the client's own fixed-port conversation (25353),
    # which conntrack still sends to the gone endpoint, is named with the command that forgets it.
    lab("up", "incidents/service-stale-conntrack")
    output, report = diagnose(tmp_path, truth("service-stale-conntrack")["probe"], "-e", "packetpath_drop_reasons=never",
                              "-e", "diagnose_port_probe_sport=28200")
    fleet = report["verdict"]
    assert report["probe"]["summary"]["failed"] == 0 and (fleet["culprit"], fleet["cause"]) == (None, None), fleet
    assert "\u2717" not in fleet["line"] and fleet["failing_endpoints"] == []
    held = [(each["host"], each["orig"]["src"], each["orig"]["sport"], each["held"])
            for each in fleet["stale_conversations"]]
    assert held == [("router", "198.18.10.2", 25353, "198.18.20.2:5353")], fleet["stale_conversations"]
    assert ("conntrack on router still holds 1 other conversation to it DNAT'd to an endpoint the rules no longer "
            "choose (each packet of it follows the entry there): 198.18.10.2:25353 held to 198.18.20.2:5353 (forget "
            "it: conntrack -D -p udp --orig-src 198.18.10.2 --orig-dst 198.18.10.1 --sport 25353 --dport 5353)"
            ) in fleet["words"], fleet["words"]
    assert "  [passed, but conntrack holds 1 conversation to a gone endpoint]" in output, output


def test_a_stateful_host_shows_the_request_as_conntrack_holds_it(tmp_path, lab_down_after):
    # reply-dropped's server has a stateful input (ct state established,related accept): conntrack took the SYN,
    # saw the SYN-ACK go out (SYN_RECV) before the output filter dropped it. The client and the router need no
    # conntrack, and track nothing.
    expected = truth("reply-dropped")
    lab("up", "incidents/reply-dropped")
    _output, report = diagnose(tmp_path, expected["probe"])
    rows = {row["host"]: row for row in report["hosts"]}
    entries = rows["server"]["conntrack"]["entries"]
    wanted = {"src": "198.18.10.2", "dst": "198.18.20.2", "sport": report["request"]["probe_sport"], "dport": 8080}
    assert entries and all(entry["orig"] == wanted for entry in entries), entries
    assert all(entry["state"] == "syn_recv" and entry["reply_seen"] and not entry["nat"] for entry in entries), entries
    assert rows["server"]["conntrack"]["table"]["count"] >= len(entries) > 0
    for host in ("client", "router"):
        assert rows[host]["conntrack"] == {"table": {"count": 0, "max": rows[host]["conntrack"]["table"]["max"]},
                                           "entries": []}, rows[host]["conntrack"]


# Both engines in one namespace: pyroute2's dumps and `ip -j`/`tc -j`, decoded into the same links, addresses and
# qdisc counters (the finding reads them through whichever the host has).
ENGINES_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.packetpath.linux.plugins.module_utils._common.command import ProcessRunner
from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis.evidence import interfaces, link_layer
from ansible_collections.packetpath.linux.plugins.module_utils.routing import lookup, netlink, rt_tables
from ansible_collections.packetpath.linux.plugins.module_utils.routing.iproute_cli import IpCommand
from ansible_collections.packetpath.linux.plugins.module_utils.sysctl import conf

found = {}
for name, engine in (("pyroute2", netlink.Pyroute2Engine()), ("ip", IpCommand(ProcessRunner(), rt_tables.RtTables()))):
    found[name] = {"links": engine.links(), "snapshot": interfaces.snapshot(engine),
                   "addresses": sorted(engine.addresses(), key=json.dumps),  # netlink dumps one family at a time
                   "fdb": sorted(engine.fdb(), key=json.dumps),
                   "link_layer": link_layer.facts(lookup.Router(engine), conf.read)}
print(json.dumps(found))
"""


def test_both_engines_read_the_same_links_addresses_and_tc_drops(lab_down_after):
    lab("up", "incidents/tc-ingress-drop")
    assert connect("pp-client", "198.18.20.2", 8080, timeout=1) in ("timeout", "TimeoutError")  # tc ingress drops it
    read = json.loads(in_netns("pp-server", ["python3", "-c", ENGINES_CHILD,
                                             os.path.join(ROOT, "build", "collections")]).stdout)
    assert read["pyroute2"] == read["ip"]
    found = read["pyroute2"]
    eth0 = next(link for link in found["links"] if link["name"] == "eth0")
    assert eth0["admin_up"] and eth0["carrier"] and not eth0["xdp"]
    assert {"ifindex": eth0["ifindex"], "address": "198.18.20.2", "prefixlen": 24, "dad_failed": False} in \
        found["addresses"]
    assert found["snapshot"]["eth0"]["ingress_drops"] >= 1 and found["snapshot"]["eth0"]["egress_drops"] == 0


def test_both_engines_read_the_same_vxlan_device_and_forwarding_database(lab_down_after):
    lab("up", "incidents/vxlan-missing-fdb")
    read = json.loads(in_netns("pp-node2", ["python3", "-c", ENGINES_CHILD,
                                            os.path.join(ROOT, "build", "collections")]).stdout)
    assert read["pyroute2"] == read["ip"]
    links = {link["name"]: link for link in read["pyroute2"]["links"]}
    assert (links["vxlan0"]["kind"], links["vxlan0"]["mac"], links["eth0"]["kind"]) == (
        "vxlan", "00:00:5e:00:53:42", "veth")
    assert links["vxlan0"]["vxlan"] == {"vni": 42, "local": "198.18.50.2", "group": None, "port": 4789,
                                        "learning": False, "link": links["eth0"]["ifindex"]}
    remote = {"ifindex": links["vxlan0"]["ifindex"], "lladdr": "00:00:5e:00:53:41", "dst": "198.18.50.1", "vni": None,
              "port": None, "master": None}
    assert remote in read["pyroute2"]["fdb"], read["pyroute2"]["fdb"]


def test_both_engines_read_an_address_that_failed_duplicate_address_detection(lab_down_after):
    lab("up", "incidents/ipv6-duplicate-address")
    for _wait in range(50):  # DAD answers within a second or two of the address's coming (its random delay first)
        if "dadfailed" in in_netns("pp-server", ["ip", "-6", "address", "show", "dev", "eth0"]).stdout:
            break
        time.sleep(0.1)
    read = json.loads(in_netns("pp-server", ["python3", "-c", ENGINES_CHILD,
                                             os.path.join(ROOT, "build", "collections")]).stdout)
    assert read["pyroute2"] == read["ip"]
    eth0 = next(link for link in read["pyroute2"]["links"] if link["name"] == "eth0")
    held = [entry for entry in read["pyroute2"]["addresses"] if entry["ifindex"] == eth0["ifindex"]]
    assert {"ifindex": eth0["ifindex"], "address": "2001:db8:10::20", "prefixlen": 64, "dad_failed": True} in held
    assert [entry["dad_failed"] for entry in held if entry["address"].startswith("fe80:")] == [False], held


def test_both_engines_read_the_same_link_layer_and_the_routes_that_send_a_link_s_addresses_elsewhere(lab_down_after):
    lab("up", "incidents/arp-filter-overlap")
    read = json.loads(in_netns("pp-server", ["python3", "-c", ENGINES_CHILD,
                                             os.path.join(ROOT, "build", "collections")]).stdout)
    assert read["pyroute2"]["link_layer"] == read["ip"]["link_layer"]
    found = {each["dev"]: each for each in read["pyroute2"]["link_layer"]["interfaces"]}
    assert (found["eth0"]["arp"]["arp_filter"], found["eth0"]["routes_elsewhere"]) == (
        1, [{"dst": "198.18.20.0/25", "dev": "eth1"}]), found["eth0"]
    assert found["eth1"]["routes_elsewhere"] == []  # 198.18.20.0/25 is eth1's own: nothing takes it elsewhere


# Strangers on each host of forward-drop, on the probe's own source port (20000 + 8080 % 10000): SYNs from an
# address of the host's network that is not the probe's, to a host that does not exist across the lab.
FLOODS = {"client": ("198.18.10.77", "198.18.20.99"), "router": ("198.18.20.78", "198.18.10.99"),
          "server": ("198.18.20.77", "198.18.10.98")}


@pytest.mark.parametrize("name", ["forward-drop", "policy-drop"])  # iptables-nft, iptables-legacy
def test_a_flood_on_the_probes_port_leaves_the_verdict_as_it_is(name, tmp_path, lab_down_after):
    """2,000 SYNs a second on each host, on the probe's port: the probe's packets have a trace budget of their own
    (trace_rule's probe_src) and are kept before the strangers', so the verdict is the quiet one."""
    expected = truth(name)
    lab("up", "incidents/" + name)
    flooders = [subprocess.Popen(  # pylint: disable=consider-using-with
        ["ip", "netns", "exec", "pp-" + host, sys.executable, os.path.join(ROOT, "tests", "lab", "flood.py"),
         "--src", src, "--dst", dst, "--sport", "28080", "--rate", "2000", "--seconds", "90"], env=ENV)
        for host, (src, dst) in FLOODS.items()]
    try:
        output, report = diagnose(tmp_path, expected["probe"], "-e", "packetpath_drop_reasons=never")
    finally:
        for flooder in flooders:  # ours, by PID
            flooder.terminate()
            flooder.wait(timeout=10)
    check_verdict(expected, "never", output, report)
    assert report["request"]["probe_src"] == "198.18.10.2"
    rows = {row["host"]: row for row in report["hosts"]}
    # The strangers were there and traced (the flow's own rule), and left out beside the probe's packets.
    assert rows["router"]["seen"] and rows["router"]["packets"] >= 3, rows["router"]
    assert sum(row["strangers"] for row in rows.values()) > 0, rows
    assert "of other traffic on the port left out" in output
    for host in FLOODS:
        assert traces_left("pp-" + host) == []


ASKING = 5.4  # seconds the router asks for its next hop in the test below: within the collection's LONGEST_WAIT


def test_the_collection_waits_for_a_neighbour_still_asked_for_and_the_kernel_s_word_on_it(lab_down_after):
    """A probe far shorter than the kernel's ARP asking (3 probes, 3 s apart): the router's next hop is still
    INCOMPLETE when its capture is collected. The collection waits for the kernel to give up on it: the state is
    FAILED, and the drop of the queued SYN (NEIGH_FAILED) is read, as after a long probe."""
    lab("up", "incidents/neighbour-failed")
    # The router asks 3 times, 1.8 s apart (5.4 s, not Linux's 3): the collection begins while the entry is still
    # INCOMPLETE however late a busy machine starts it (the suite's shards run side by side on 2 cores), and the
    # kernel gives up within the longest the collection waits (neighbours.LONGEST_WAIT, 6 s with the margin).
    in_netns("pp-router", ["sysctl", "-qw", "net.ipv4.neigh.eth1.retrans_time_ms=%d" % (ASKING * 1000 // 3)])
    flow = {"proto": "tcp", "port": "28080"}
    armed = module("router", "packetpath.linux.trace_rule", dict(flow, expires=60, capture=True, drop_reasons="auto"))
    assert armed["_status"] == "CHANGED", armed["_stdout"]
    probe = module("client", "packetpath.linux.probe",
                   {"proto": "tcp", "dst": "198.18.20.2", "dport": 8080, "sport": 28080, "count": 1, "timeout": 0.3})
    assert probe["summary"]["results"] == {"timeout": 1}, probe["_stdout"]
    got = module("router", "packetpath.linux.trace_results", dict(flow, source="capture", explain=True,
                                                                  trace_off=True))
    awaited = got["capture"]["neighbours_awaited"]
    assert {"family": "ipv4", "dev": "eth1", "address": "198.18.20.9", "state": "failed"} in awaited["entries"], awaited
    # Waited for (the entry is in the list only if it was INCOMPLETE when the collection began), and no longer than
    # the device asks (3 solicitations 3 s apart, plus the margin).
    assert awaited["resolved"] and 0 < awaited["seconds"] <= ASKING + 0.5 + 0.1, awaited
    assert got["finding"]["cause"] == "neighbour_failed", got["finding"]["words"]
    assert "neighbour state FAILED" in got["finding"]["words"], got["finding"]["words"]
    if armed["capture"]["drop_reasons"].get("pid"):  # bpftrace runs here (installed by `make`)
        assert "NEIGH_FAILED" in [drop["reason"] for drop in got["drop_reasons"]["drops"]], got["drop_reasons"]
    assert traces_left("pp-router") == []
