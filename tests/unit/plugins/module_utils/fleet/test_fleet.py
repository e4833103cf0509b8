"""Expectations, the remediation plan and the fleet report, on conf values recorded in the lab."""

import copy
import json
import os
import xml.etree.ElementTree as ET

import jsonschema
import pytest

from recorded import ROOT, fixture_path

from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import OptionError
from ansible_collections.packetpath.linux.plugins.module_utils.fleet import (
    audit_report,
    expectations,
    remediation,
    strict_sources,
)
from ansible_collections.packetpath.linux.plugins.module_utils.fleet.expectations import Expectations, Snapshot
from ansible_collections.packetpath.linux.plugins.module_utils.fleet.host_audit import _check

with open(os.path.join(ROOT, "schemas", "audit_report.schema.json"), encoding="utf-8") as _handle:
    AUDIT_SCHEMA = json.load(_handle)
from ansible_collections.packetpath.linux.plugins.module_utils.sysctl.boot import BootConfig

SYSCTL = fixture_path("sysctl")
OURS = os.path.join(SYSCTL, "90-packetpath-interfaces.conf")


def snapshot(name):
    with open(os.path.join(SYSCTL, "conf-%s.json" % name)) as handle:
        return Snapshot(json.load(handle))


def applied(snap, plan):
    """The snapshot after the plan's writes, as the kernel would hold them."""
    values = copy.deepcopy(snap.values)
    for change in plan["changes"]:
        values["ipv4"][change["interface"]][change["key"]] = change["after"]
    return Snapshot(values)


def summary(plan):
    return [(c["interface"], c["key"], c["before"], c["after"]) for c in plan["changes"]]


def test_the_seed_node_is_strict_everywhere_and_loose_is_one_write_per_interface():
    snap, wanted = snapshot("seed-node"), Expectations({"rp_filter": [2, 0]})
    rows = expectations.evaluate(wanted, snap)
    assert sorted((r["interface"], r["effective"], r["compliant"]) for r in rows) == [
        ("a-srv", 1, False), ("b-srv", 1, False), ("mgmt0", 1, False)]  # lo is ignored
    plan = remediation.plan(wanted, snap, [])
    # conf/all=1 allows 2 on each interface (max): conf/all stays, as in the incident's fix on b-srv.
    assert summary(plan) == [("a-srv", "rp_filter", 1, 2), ("b-srv", "rp_filter", 1, 2), ("mgmt0", "rp_filter", 0, 2)]
    assert plan["settings"] == [{"interfaces": ["a-srv", "b-srv", "mgmt0"], "settings": {"rp_filter": 2}}]
    after = applied(snap, plan)
    assert all(row["compliant"] for row in expectations.evaluate(wanted, after))
    assert remediation.plan(wanted, after, []) == {"changes": [], "persist": [], "settings": []}


def test_off_needs_conf_all_lowered_and_pins_the_interfaces_nobody_asked_about():
    snap = snapshot("seed-node")
    wanted = Expectations(None, {"b-srv": {"rp_filter": 0}})
    plan = remediation.plan(wanted, snap, [])
    # b-srv can only be off with conf/all off; mgmt0 (own 0) would drop from strict to off with it, so it is pinned.
    assert summary(plan) == [("all", "rp_filter", 1, 0), ("b-srv", "rp_filter", 1, 0), ("mgmt0", "rp_filter", 0, 1)]
    assert "pinned" in plan["changes"][2]["why"]
    assert plan["settings"][0] == {"interfaces": ["all"], "settings": {"rp_filter": 0}}
    after = applied(snap, plan)
    assert [after.effective("rp_filter", name) for name in ("a-srv", "b-srv", "mgmt0")] == [1, 0, 1]


def test_log_martians_is_set_per_interface_not_through_conf_all():
    snap, wanted = snapshot("kube-node1"), Expectations({"log_martians": 1})
    plan = remediation.plan(wanted, snap, [])
    assert summary(plan) == [("cni0", "log_martians", 0, 1), ("eth1", "log_martians", 0, 1),
                             ("mgmt0", "log_martians", 0, 1)]


def test_an_exact_name_beats_a_glob_which_beats_expect_key_by_key():
    wanted = Expectations({"rp_filter": [2, 0], "log_martians": 1},
                          {"c*": {"rp_filter": 0}, "cni0": {"rp_filter": 1}, "default": {"rp_filter": 2}})
    assert wanted.for_interface("cni0") == {"rp_filter": ([1], "expect_by_interface.cni0"),
                                            "log_martians": ([1], "expect")}
    assert wanted.for_interface("cni1")["rp_filter"] == ([0], "expect_by_interface.c*")
    assert wanted.for_interface("lo") == {}
    assert wanted.for_interface("default") == {"rp_filter": ([2], "expect_by_interface.default")}
    # conf/default is checked by its own value, which the kube node has at 0.
    rows = expectations.evaluate(wanted, snapshot("kube-node1"))
    assert [r for r in rows if r["interface"] == "default"][0]["effective"] == 0


def test_drift_against_our_file_and_its_fix_persists_what_runs():
    snap = snapshot("kube-node1")
    boot = BootConfig.from_files([OURS])
    rows = expectations.drift(["rp_filter", "log_martians"], snap, boot)
    # The file says 2 and 1 for eth1 and cni*; the recorded node runs 0 and 0 there (conf/all=2 makes it loose).
    assert sorted((r["interface"], r["key"], r["runtime"], r["persistent"]) for r in rows) == [
        ("cni0", "log_martians", 0, 1), ("cni0", "rp_filter", 0, 2),
        ("eth1", "log_martians", 0, 1), ("eth1", "rp_filter", 0, 2)]
    plan = remediation.plan(Expectations({"rp_filter": [2, 0]}), snap, rows)
    assert plan["changes"] == []
    assert plan["settings"] == [{"interfaces": ["cni0", "eth1"], "settings": {"log_martians": 0, "rp_filter": 0}}]


@pytest.mark.parametrize("args,message", [
    (({"rp_filter": 5},), "expect.rp_filter=5: must be one of 0, 1, 2"),
    ((None, {"cni*": {"rp_filter": [2, 7]}}), "expect_by_interface.cni*.rp_filter=7"),
    ((None, {"all": {"rp_filter": 2}}), "expect_by_interface.all: conf/all is not an interface"),
    ((None, {"eth 0": {"rp_filter": 2}}), "expect_by_interface: 'eth 0' is not an interface name"),
    (({"rp_filter": []},), "expect.rp_filter=[]: list at least one allowed value"),
    ((None, None), "expect: give at least one expectation"),
])
def test_bad_expectations_name_the_option_and_value(args, message):
    with pytest.raises(OptionError) as raised:
        Expectations(*args)
    assert message in str(raised.value)


def test_expectations_are_required_only_by_the_checks_that_compare_against_them():
    with pytest.raises(OptionError) as raised:
        Expectations(None, None, needed_by=["sysctl_expected", "sysctl_drift"])
    assert "the checks sysctl_expected, sysctl_drift compare against it" in str(raised.value)
    nothing = Expectations(None, None, needed_by=[])
    assert nothing.keys() == [] and nothing.for_interface("eth0") == {}


@pytest.mark.parametrize("value,message", [
    ({"eth1": ["2001:db8::/32"]}, "strict_sources.eth1: 2001:db8::/32 is IPv6"),
    ({"eth1": ["198.51.100.0/33"]}, "strict_sources.eth1: '198.51.100.0/33' is not a network"),
    ({"eth1": "198.51.100.0/24"}, "strict_sources.eth1='198.51.100.0/24': a list of networks"),
])
def test_bad_strict_sources(value, message):
    with pytest.raises(OptionError) as raised:
        strict_sources.check(value)
    assert message in str(raised.value)


def test_strict_sources_by_glob_and_name():
    sources = strict_sources.check({"b-*": ["198.51.100.0/24"], "b-srv": ["203.0.113.0/24", "198.51.100.0/24"]})
    assert [str(n) for n in strict_sources.networks_for(sources, "b-srv")] == ["198.51.100.0/24", "203.0.113.0/24"]
    assert strict_sources.networks_for(sources, "a-srv") == []


def fleet():
    """Two hosts' checks built from the recorded nodes, and one host that could not be audited."""
    seed_rows = expectations.evaluate(Expectations({"rp_filter": [2, 0]}), snapshot("seed-node"))
    kube_rows = expectations.evaluate(Expectations({"rp_filter": [2, 0]}), snapshot("kube-node1"))

    def checks(rows):
        findings = ["%s rp_filter is %s" % (r["interface"], r["effective"]) for r in rows if not r["compliant"]]
        return [_check("sysctl_expected", findings, "ok", "not ok", {"values": rows}),
                {"name": "pyroute2", "status": "skip", "summary": "not installed", "findings": [], "details": {}}]
    return {"node": {"checks": checks(seed_rows)}, "node1": {"checks": checks(kube_rows)},
            # As the lab's test_fleet recorded it for a host that does not answer.
            "gone": {"unreachable": True, "msg": "Task failed: Failed to connect to the host via ssh: ssh: connect to "
                                                 "host 198.18.0.250 port 22: No route to host"}}


def test_report_counts_every_host_and_check():
    report = audit_report.build(fleet(), ["sysctl_expected", "pyroute2"])
    assert report["schema"] == "packetpath.linux/audit/v1"
    jsonschema.validate(json.loads(json.dumps(report)), AUDIT_SCHEMA)  # the schema that ships with the collection
    statuses = [(h["host"], h["status"]) for h in report["hosts"]]
    assert statuses == [("gone", "error"), ("node", "findings"), ("node1", "clean")]
    assert report["summary"] == {"hosts": 3, "hosts_clean": 1, "hosts_with_findings": 1, "hosts_not_audited": 1,
                                 "checks": 6, "passed": 1, "failed": 1, "skipped": 2, "errors": 2, "findings": 3}
    assert "No route to host" in report["hosts"][0]["error"]


def test_junit_has_a_testcase_per_host_and_check():
    root = ET.fromstring(audit_report.junit(audit_report.build(fleet(), ["sysctl_expected", "pyroute2"])))
    assert (root.tag, root.get("tests"), root.get("failures"), root.get("errors")) == ("testsuites", "6", "1", "2")
    cases = dict(((case.get("classname"), case.get("name")), case) for case in root.iter("testcase"))
    assert len(cases) == 6
    failure = cases[("node", "sysctl_expected")].find("failure")
    assert failure.text.splitlines() == ["a-srv rp_filter is 1", "b-srv rp_filter is 1", "mgmt0 rp_filter is 1"]
    assert cases[("gone", "pyroute2")].find("error") is not None
    assert cases[("node1", "pyroute2")].find("skipped").get("message") == "not installed"


def test_markdown_and_table_show_before_and_after():
    hosts = fleet()
    before = dict(hosts, node1=hosts["node"])
    changes = {"node1": [{"interface": "b-srv", "key": "rp_filter", "before": 1, "after": 2, "why": "wanted"}]}
    report = audit_report.build(hosts, ["sysctl_expected"], before, changes, "remediation")
    jsonschema.validate(json.loads(json.dumps(report)), AUDIT_SCHEMA)
    text = audit_report.markdown(report)
    assert "| node1 | findings -> clean | pass |" in text
    assert "- changed `rp_filter` on b-srv: 1 -> 2 (wanted)" in text
    table = audit_report.table(report).splitlines()
    assert table[2].split()[:2] == ["node", "findings"] and "findings -> clean" in table[3]
    assert table[-1] == "3 hosts: 1 clean, 1 with findings, 1 not audited; 3 findings"


def test_junit_stays_valid_xml_whatever_a_host_or_a_finding_holds():
    hosts = fleet()
    hosts["node\x01"] = hosts.pop("node")
    report = audit_report.build(hosts, ["sysctl_expected", "pyroute2"])
    root = ET.fromstring(audit_report.junit(report))  # raises on a control character that reached the file
    assert "node\ufffd" in [suite.get("name") for suite in root.iter("testsuite")]
