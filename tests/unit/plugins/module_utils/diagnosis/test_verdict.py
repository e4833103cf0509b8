"""The fleet report of a diagnosis: every host of the run has a row, those that never reported with their error."""

import json
import xml.etree.ElementTree as ET

from ansible_collections.packetpath.linux.plugins.action import diagnosis_report as action
from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis import diagram, verdict
from ansible_collections.packetpath.linux.plugins.module_utils.probe import summary
from recorded import fixture_path

# As the lab's test_fleet recorded it for a host that does not answer.
UNREACHABLE = ("Task failed: Failed to connect to the host via ssh: ssh: connect to host 198.18.0.250 port 22: "
               "No route to host")
REQUEST = {"port": "8081", "proto": "tcp", "dst": "203.0.113.12", "probe_from": "client"}


def rendered(report):
    """report.md and report.html as the action plugin renders them with the collection's own templates."""
    return action.render(action.with_tasks(dict(report, generator={"collection": "packetpath.linux", "version": "0.1.0"})),
                         action.SHIPPED)


def markdown(report):
    return rendered(report)["report.md"]


def page(report):
    return rendered(report)["report.html"]


def report(_fixture_text, probe_after=None):
    hosts = {"node": {"arm_error": None, "trace": {"packets": []}}, "gone": None}
    probe = {"summary": summary([{"result": "timeout"}] * 3)}
    return verdict.build_report(hosts, REQUEST, probe, probe_after, unreported={"gone": UNREACHABLE},
                                now=1795546212.5)


def test_a_host_that_never_reported_has_a_row_with_its_error(fixture_text):
    built = report(fixture_text)
    rows = {entry["host"]: entry for entry in built["hosts"]}
    assert sorted(rows) == ["gone", "node"]
    assert rows["gone"]["error"] == UNREACHABLE and not rows["gone"]["seen"]
    assert rows["gone"]["cause"] is None and rows["gone"]["words"] == "%s: %s" % (verdict.NOT_REPORTED, UNREACHABLE)
    assert rows["node"]["words"] == "the probe's packets were not seen here"
    assert built["verdict"]["culprit"] is None
    assert "gone  no    -         -     not reported" in verdict.table(built)


def test_a_blocked_port_that_no_host_saw_is_never_passed(fixture_text):
    built = report(fixture_text)  # every attempt timed out, and no traced host saw a packet
    assert (built["verdict"]["cause"], built["verdict"]["culprit"]) == ("not_seen", None)
    assert "[not_seen]" in verdict.table(built) and "(not_seen)" in markdown(built)
    assert "passed" not in verdict.table(built) + markdown(built) + page(built)
    # The same run whose probe connected: nothing is blamed, and nothing was seen either.
    hosts = {"node": {"arm_error": None, "trace": {"packets": []}}}
    quiet = verdict.build_report(hosts, REQUEST, {"summary": summary([{"result": "connected"}] * 3)})
    assert quiet["verdict"]["cause"] is None and verdict.label(quiet["verdict"]) == "nothing seen"


def test_a_capture_that_lost_packets_never_makes_not_seen_a_finding():
    # trace_results' words for a reader killed mid-capture (the lab's test_capture kills one).
    lost = ("the capture's reader (pid 4242) ended before it was collected, without finishing its spool (killed, or "
            "its source failed): packets after its end are missing")
    hosts = {"node": {"arm_error": None, "trace": {"packets": [], "capture": {"complete": False, "losses": [lost]}}}}
    built = verdict.build_report(hosts, REQUEST, {"summary": summary([{"result": "timeout"}] * 3)})
    row = built["hosts"][0]
    assert row["evidence"]["capture_losses"] == [lost]
    assert row["words"].endswith("(the capture may lack packets: %s)" % lost)
    assert built["verdict"]["cause"] == "undecided" and built["verdict"]["words"].endswith(
        ". Not every capture was complete: node: " + lost)


def test_a_hosts_own_text_cannot_break_the_tables_or_drive_the_terminal():
    # Issue #27: a rule comment is the host owner's text; with `|`, a newline and an ESC sequence in it.
    words = 'dropped by filter FORWARD rule 3 "-j DROP -m comment --comment a|b\ncc\x1b[2J```"'
    hosts = {"node": {"arm_error": None, "trace": {"packets": [], "finding": {
        "role": "stopped", "cause": "rule_drop", "words": words, "evidence": {"hops": "rule a|b ```\x1b[2J"}}}}}
    built = verdict.build_report(hosts, REQUEST, {"summary": summary([{"result": "timeout"}] * 3)})
    text = verdict.table(built) + markdown(built) + page(built)
    assert "\x1b" not in text and "\\x1b[2J" in text
    row = next(line for line in markdown(built).splitlines() if line.startswith("| node |"))
    assert row.count(" | ") == 4 and "a\\|b cc" in row, row
    assert "\n````\nrule a|b ```\\x1b[2J\n````\n" in markdown(built)


def test_the_report_says_when_and_what_the_probe_said_in_words(fixture_text):
    built = report(fixture_text, probe_after={"summary": summary([{"result": "connected"}] * 3)})
    assert built["generated_at"] == "2026-11-24T18:50:12Z"
    assert built["request"]["port"] == 8081  # an integer, though the playbook's template gave text
    text = markdown(built)
    assert "probe from client: 3 attempts: timeout 3.\nGenerated 2026-11-24T18:50:12Z by packetpath.linux 0.1.0." in text
    assert "After the fix the probe says: 3 attempts: connected 3." in text
    html = page(built)
    assert '<span class="probe">3 attempts: timeout 3</span>' in html
    assert '<span class="probe-after-fix">3 attempts: connected 3</span>' in html
    assert "<time>2026-11-24T18:50:12Z</time>" in html and '<span class="version">0.1.0</span>' in html


def test_a_probe_that_could_not_be_sent_says_why():
    assert verdict.probe_text({"failed": True, "msg": "probe_from unreachable"}) == (
        "the probe could not be sent: probe_from unreachable")
    assert verdict.probe_text(None) == "no probe"


def test_every_fix_is_a_task_that_parses_and_a_command_a_person_can_run():
    import yaml
    from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis import causes
    facts = {"interface": "b-srv", "family": "ipv4", "route": "198.18.20.0/24", "table": 100, "max": 65536,
             "dev": "eth1", "admin": "down", "address": "198.18.20.2", "owner": "server", "owner_dev": "eth0",
             "mac": "02:00:00:00:00:02", "permanent": True, "link_dev": "eth0", "all_ignores": True,
             "entry_mac": "02:00:00:00:00:02", "remote": "198.18.50.2", "differs": "the address differs",
             "vtep": "198.18.50.9", "bridge": "br0", "sysctl": "bridge-nf-call-iptables", "chain": "DOCKER-USER",
             "tool": "iptables", "iptables": True, "proto": "udp", "src": "198.18.10.2", "dst": "198.18.10.1",
             "sport": 25353, "dport": 5353}
    commands = {}
    for cause_id in causes.CATALOGUE:
        fix = causes.fix(cause_id, **facts)
        if fix is None:
            continue
        task = yaml.safe_load(action.fix_task(fix, "node"))[0]
        assert task[fix["module"]] == fix["args"] and task["name"].endswith("(on node)"), task
        commands[cause_id] = verdict.fix_command(fix)
    assert commands["rp_filter"] == "sysctl -w net.ipv4.conf.b-srv.rp_filter=2"
    assert commands["forwarding_disabled"] == "sysctl -w net.ipv4.conf.b-srv.forwarding=1"
    assert commands["blackhole_route"] == "ip -4 route del 198.18.20.0/24 table 100"
    assert commands["link_down"] == "ip link set dev eth1 up"
    assert commands["neighbour_wrong_lladdr"] == "ip -4 neigh replace 198.18.20.2 lladdr 02:00:00:00:00:02 dev eth1 " \
                                                 "nud permanent"
    assert commands["arp_ignored"] == "sysctl -w net.ipv4.conf.eth0.arp_ignore=0 net.ipv4.conf.all.arp_ignore=0"
    assert commands["vxlan_no_fdb"] == "bridge fdb append 02:00:00:00:00:02 dev eth1 dst 198.18.50.2"
    assert commands["conntrack_stale_nat"] == "conntrack -D -p udp --orig-src 198.18.10.2 --orig-dst 198.18.10.1 " \
                                              "--sport 25353 --dport 5353"
    assert commands["bridge_netfilter_drop"] == "iptables -I DOCKER-USER -i br0 -o br0 -j ACCEPT"
    assert commands["vxlan_remote_mismatch"] == "bridge fdb replace 02:00:00:00:00:02 dev eth1 dst 198.18.50.9"
    learned = dict(facts)
    learned["permanent"] = False  # an entry ARP learned: forgotten, and learned again
    assert verdict.fix_command(causes.fix("neighbour_wrong_lladdr", **learned)) == "ip -4 neigh del 198.18.20.2 dev eth1"


def test_a_fix_command_is_safe_to_paste_whatever_the_host_named_its_interfaces():
    # Issue #42: an interface name is the host's text; the kernel's sysctl key writes a dot in it as a slash.
    import subprocess
    from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis import causes
    hostile = verdict.fix_command(causes.fix("rp_filter", interface="$(touch pwned)", family="ipv4"))
    assert hostile == "sysctl -w 'net.ipv4.conf.$(touch pwned).rp_filter=2'"
    assert subprocess.run(["sh", "-c", "printf '%s\\n' " + hostile.split(" ", 2)[2]], capture_output=True,
                          text=True, check=True).stdout == "net.ipv4.conf.$(touch pwned).rp_filter=2\n"
    assert verdict.fix_command(causes.fix("rp_filter", interface="eth0.100", family="ipv4")) == \
        "sysctl -w net.ipv4.conf.eth0/100.rp_filter=2"
    assert verdict.fix_command(causes.fix("link_down", dev="a b;c", admin="down")) == "ip link set dev 'a b;c' up"


def rp_filter_on_node():
    """One host, node, whose finding is the seed's rp_filter, and a probe that timed out 3 times."""
    from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis import causes
    found = causes.finding("rp_filter", "request", {}, explanation="rejected by rp_filter (strict on b-srv)",
                           interface="b-srv", family="ipv4")
    packet = {"fate": "vanished_after", "path": "PREROUTING", "last_hop": "raw:PREROUTING:policy", "hops": []}
    return ({"node": {"trace": {"packets": [packet], "finding": dict(found, seen=True, role="stopped")}}},
            {"summary": summary([{"result": "timeout"}] * 3)})


def test_the_fix_is_shown_under_the_verdict_and_applied_only_when_it_was():
    hosts, failed = rp_filter_on_node()
    before = verdict.build_report(hosts, REQUEST, failed)
    assert "fix on node: sysctl -w net.ipv4.conf.b-srv.rp_filter=2  (remediable: run again with -e packetpath_remediate=true)" \
        in verdict.table(before)
    assert "applied" not in markdown(before) + page(before)
    after = verdict.build_report(hosts, REQUEST, failed, {"summary": summary([{"result": "connected"}] * 3)})
    assert "(applied by packetpath_remediate=true)" in verdict.table(after) and "Fix (applied by packetpath_remediate=true)" in \
        markdown(after)


def test_a_run_that_fixed_the_port_reads_fixed_and_fails_no_ci_job():
    hosts, failed = rp_filter_on_node()
    for after, fixed in (({"summary": summary([{"result": "connected"}] * 3)}, True),
                         ({"summary": summary([{"result": "connected"}] * 2 + [{"result": "timeout"}])}, False)):
        built = verdict.build_report(hosts, REQUEST, failed, after)
        fleet = built["verdict"]
        junit = ET.fromstring(verdict.junit(built).split("\n", 1)[1])
        if fixed:  # blocked, then fixed: the cause stays named, and every first line says it was fixed
            assert fleet["line"] == "node \u2717, fixed (probe after the fix: connected 3)" and fleet["fixed"], fleet
            assert fleet["cause"] == "rp_filter" and junit.get("failures") == "0"
            assert "# Why did tcp port 8081 fail? Fixed by this run" in markdown(built)
            assert "<title>Why did tcp port 8081 fail? Fixed by this run</title>" in page(built)
        else:  # one attempt after the fix still failed: not fixed, and the run still reads blocked
            assert fleet["line"] == "node \u2717" and "fixed" not in fleet, fleet
            assert junit.get("failures") == "2" and "# Why does tcp port 8081 fail?" in markdown(built)


def test_the_report_says_how_each_host_was_armed_and_which_engine_answered():
    armed = {"backend": "iptables_nft", "capture": "xtables_monitor", "expires_at": 1795546512.5,
             "drop_reasons": {"pid": 4250}}
    hosts = {"node": {"arm_error": None, "armed": armed, "trace": {"packets": [], "finding": {"engine": "pyroute2"}}}}
    built = verdict.build_report(hosts, REQUEST, {"summary": summary([{"result": "connected"}] * 3)})
    assert (built["hosts"][0]["armed"], built["hosts"][0]["engine"]) == (armed, "pyroute2")
    assert "Armed with iptables_nft (capture xtables_monitor), routes looked up with pyroute2." in \
        markdown(built)
    assert "Armed with iptables_nft (capture xtables_monitor)" in page(built)


def test_what_a_host_gathered_comes_from_its_arming_and_its_collection():
    # trace_rule capture=true's result as the role registers it, and a failed one (rescued).
    armed = {"changed": True, "backend": "nftables", "expires_at": "2026-12-05T11:40:00Z", "flow_id": "pp-1",
             "marker": {"time": "2026-12-05T11:35:00Z", "epoch": 1796470500.0, "uptime": 2601.7},
             "capture": {"pid": 4242, "source": "nft_monitor", "format": "nft_monitor",
                         "drop_reasons": {"unavailable": "drop_reasons=never"}}, "netns": "pp-pod1"}
    trace = {"changed": True, "packets": [], "finding": {"engine": "pyroute2"}, "trace_off": {"changed": True}}
    assert verdict.gathered(trace, armed) == {"arm_error": None, "trace": trace, "armed": {
        "backend": "nftables", "capture": "nft_monitor", "expires_at": "2026-12-05T11:40:00Z",
        "drop_reasons": {"unavailable": "drop_reasons=never"}, "netns": "pp-pod1", "since": "2026-12-05T11:35:00Z"}}
    row = verdict.build_report({"node": verdict.gathered(trace, armed)}, REQUEST, None)["hosts"][0]
    assert verdict.armed_text(row) == ("Armed with nftables (capture nft_monitor) in network namespace pp-pod1, routes "
                                       "looked up with pyroute2.")
    failed = {"failed": True, "msg": "backend=auto: no trace backend found; nothing was changed"}
    skipped = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}
    data = verdict.gathered(skipped, failed)
    assert data == {"arm_error": failed["msg"], "armed": None, "trace": {}}
    row = verdict.build_report({"node": data}, REQUEST, None)["hosts"][0]
    assert (row["traced"], row["words"]) == (False, "cannot be traced here: " + failed["msg"])


def test_the_verdict_names_the_host_an_icmp_error_to_the_probe_came_from():
    error = {"type": 11, "code": 0, "name": "time exceeded", "from": "198.18.20.2"}
    probe = {"summary": summary([{"result": "unreachable", "icmp": error}] * 3)}
    hosts = {"peer": {"arm_error": None, "trace": {"packets": [], "finding": {"addresses": ["198.18.20.2"]}}},
             "node": {"arm_error": None, "trace": {"packets": [], "finding": {"addresses": ["198.18.10.1"]}}}}
    words = verdict.build_report(hosts, REQUEST, probe)["verdict"]["words"]
    assert words.endswith(". The probe got ICMP time exceeded from peer (198.18.20.2)"), words
    del hosts["peer"]
    words = verdict.build_report(hosts, REQUEST, probe)["verdict"]["words"]
    assert words.endswith(". The probe got ICMP time exceeded from 198.18.20.2"), words


def test_the_diagram_draws_a_sent_packet_from_a_local_process_through_postrouting():
    sent = {"host": "client", "path": "routing decision \u2192 output \u2192 postrouting \u2192 out eth0",
            "fate": "sent", "evidence": {}}
    drawn = diagram.svg(sent)
    lit = ' stroke="#2a7" stroke-width="4"/>'
    edges = {name: diagram.NODES[name] for name in ("local process", "output", "postrouting", "routing decision")}

    def line(start, end):
        (x1, y1), (x2, y2) = edges[start], edges[end]
        return '<line x1="%d" y1="%d" x2="%d" y2="%d"' % (x1 + 75, y1 + 18, x2 + 75, y2 + 18)
    assert line("local process", "output") + lit in drawn and line("output", "postrouting") + lit in drawn
    assert "routing decision" not in diagram._steps(sent["path"])  # pylint: disable=protected-access


def test_the_junit_file_fails_the_culprit_and_the_fleet_and_errs_where_a_host_never_reported(fixture_text):
    built = report(fixture_text)  # node saw nothing, gone never reported, the probe timed out: not_seen
    root = ET.fromstring(verdict.junit(built).split("\n", 1)[1])
    suite = root.find("testsuite")
    outcomes = {case.get("classname"): [child.tag for child in case] for case in suite.iter("testcase")}
    assert outcomes == {"fleet": ["failure"], "gone": ["error"], "node": ["system-out"]}, outcomes
    assert suite.find("testcase/failure").get("type") == "not_seen"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
    passed = verdict.build_report({"node": {"arm_error": None, "trace": {"packets": []}}}, REQUEST,
                                  {"summary": summary([{"result": "connected"}] * 3)})
    assert ET.fromstring(verdict.junit(passed).split("\n", 1)[1]).get("failures") == "0"


def recorded_router(name):
    """The culprit of an incident lab as its trace_results recorded it there (tests/unit/fixtures/incidents)."""
    with open(fixture_path("incidents", name + ".json"), encoding="utf-8") as handle:
        result = json.load(handle)["result"]
    return {"arm_error": None, "trace": {"packets": result["packets"], "finding": result["finding"]}}


def test_a_probe_that_got_through_is_never_crossed_out():
    # forward-reject's router, whose trace named its REJECT rule: had the probe connected every time (a rule that
    # rejects other packets than the probe's), no host is crossed out and the row names no cause.
    hosts = {"router": recorded_router("forward-reject")}
    built = verdict.build_report(hosts, REQUEST, {"summary": summary([{"result": "connected"}] * 3)})
    fleet, row = built["verdict"], built["hosts"][0]
    assert (fleet["culprit"], fleet["cause"], fleet["fix"]) == (None, None, None)
    assert "\u2717" not in fleet["line"] and verdict.label(fleet) == "passed"
    assert row["cause"] is None and row["set_aside"]["cause"] == "rule_reject"
    assert row["set_aside"]["why"] == "the probe got through in 3 of 3 attempts"
    assert fleet["words"].startswith("the probe got through in 3 of 3 attempts (connected 3)")
    assert "Set aside: router's trace suggested rule_reject, but the probe got through" in fleet["words"]
    junit = ET.fromstring(verdict.junit(built))
    assert junit.get("failures") == "0", verdict.junit(built)


def test_an_answer_is_claimed_only_where_the_probe_got_one():
    hosts = {"router": recorded_router("forward-reject")}
    # As recorded: ICMP port unreachable reached the client, which reads it as refused: the REJECT stands.
    refused = verdict.build_report(hosts, REQUEST, {"summary": summary([{"result": "refused"}] * 3)})["verdict"]
    assert (refused["culprit"], refused["cause"]) == ("router", "rule_reject")
    assert refused["words"].startswith("router: rejected by filter:FORWARD")
    # Every attempt timed out: nothing answered, so a REJECT (which answers) does not explain it.
    silent = verdict.build_report(hosts, REQUEST, {"summary": summary([{"result": "timeout"}] * 3)})
    assert (silent["verdict"]["culprit"], silent["verdict"]["cause"]) == (None, "undecided")
    assert "none of the probe's 3 failed attempts got an answer (timeout 3)" in silent["hosts"][0]["set_aside"]["why"]
    # Without a probe (real traffic traced), the trace is judged on its own.
    alone = verdict.build_report(hosts, REQUEST, None)["verdict"]
    assert (alone["culprit"], alone["cause"]) == ("router", "rule_reject")


def test_attempts_that_differ_are_said_and_the_failed_ones_explained():
    hosts = {"router": recorded_router("forward-reject")}
    attempts = [{"result": "connected"}, {"result": "refused"}, {"result": "connected"}]
    fleet = verdict.build_report(hosts, REQUEST, {"summary": summary(attempts)})["verdict"]
    assert (fleet["culprit"], fleet["cause"]) == ("router", "rule_reject")
    assert fleet["words"].startswith("2 of 3 attempts got through and 1 failed (connected 2, refused 1); the failed "
                                     "ones: router: rejected by")


def test_a_conversations_cause_stands_only_where_its_attempt_failed():
    # forward-reject's router as recorded, its finding from the conversation of port 48080; a probe of two attempts
    # side by side (48080, 48081), as a NAT spread would send them to two places.
    router = recorded_router("forward-reject")
    found = router["trace"]["finding"]
    found["conversations"] = [{"sport": 48080, "role": "stopped", "cause": "rule_reject", "words": found["words"]},
                              {"sport": 48081, "role": "forwarded", "cause": None, "words": "passed (forwarded)"}]
    hosts = {"router": router}
    as_found = [{"result": "refused", "source_port": 48080}, {"result": "connected", "source_port": 48081}]
    fleet = verdict.build_report(hosts, REQUEST, {"attempts": as_found, "summary": summary(as_found)})["verdict"]
    assert (fleet["culprit"], fleet["cause"]) == ("router", "rule_reject")
    assert "1 failed (connected 1, refused 1; the failed from port 48080); the failed ones: router" in fleet["words"]
    crossed = [{"result": "connected", "source_port": 48080}, {"result": "refused", "source_port": 48081}]
    built = verdict.build_report(hosts, REQUEST, {"attempts": crossed, "summary": summary(crossed)})
    assert (built["verdict"]["culprit"], built["verdict"]["cause"]) == (None, "undecided")
    assert built["hosts"][0]["set_aside"]["why"] == (
        "it was found in the conversation from port 48080, whose attempt got through (the failed ones came from 48081)")
