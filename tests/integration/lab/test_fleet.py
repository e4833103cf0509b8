"""The fleet playbooks on the kube lab, in order: the audit finds exactly the drift seeded into it, the remediation
fixes it (refusing unsafe strict mode, changing nothing in check mode, nothing the second time), and the cleanup
removes everything a killed diagnosis left, and nothing else."""

import json
import os
import re
import signal
import subprocess
import time
import xml.etree.ElementTree as ET

import jsonschema
import pytest
import xmlschema
import yaml
from labtools import BIN, ENV, INVENTORY, ROOT, in_netns, module, run, traces_left

pytestmark = pytest.mark.usefixtures("kube")

HOSTS = ("client", "node1", "node2", "node3")
CHECKS = ("sysctl_expected", "sysctl_drift", "strict_reverse_path", "trace_leftovers", "trace_backend", "pyroute2")
# The common JUnit schema, which `make integration` fetches (see the Makefile).
XSD = os.environ.get("PACKETPATH_JUNIT_XSD", os.path.join(ROOT, "build", "junit-10.xsd"))
with open(os.path.join(ROOT, "schemas", "audit_report.schema.json"), encoding="utf-8") as _handle:
    AUDIT_SCHEMA = json.load(_handle)


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    """The lab's inventory with the fleet's expectations as group variables: loose or off everywhere, and for the
    legacy group (node1) its CNI bridge loose, by interface glob."""
    directory = tmp_path_factory.mktemp("inventory")
    with open(INVENTORY, encoding="utf-8") as handle:
        hosts = yaml.safe_load(handle)
    hosts["all"].setdefault("vars", {})["packetpath_expect"] = {"rp_filter": [2, 0]}
    hosts["all"]["children"]["lab_iptables_legacy"]["vars"] = {"packetpath_expect_by_interface": {"cni*": {"rp_filter": 2}}}
    path = directory / "hosts.yml"
    path.write_text(yaml.safe_dump(hosts))
    return str(path)


def playbook(inventory, name, *args, check=True):
    return run([os.path.join(BIN, "ansible-playbook"), "-i", inventory, "packetpath.linux." + name] + list(args),
               check=check)


def read_report(directory, name="audit"):
    """The audit's (or remediation's) report, valid against the schema that ships with the collection."""
    with open(os.path.join(directory, name + ".json"), encoding="utf-8") as handle:
        report = json.load(handle)
    jsonschema.validate(report, AUDIT_SCHEMA)
    return report


def failing(report):
    return sorted((entry["host"], check["name"]) for entry in report["hosts"] for check in entry["checks"]
                  if check["status"] != "pass" and check["status"] != "skip")


def host_state(host):
    """What a host holds that the playbooks could change: every conf value, our sysctl.d file, the rulesets."""
    conf = in_netns("pp-" + host, ["sysctl", "-a", "-r", r"^net\.ipv[46]\.conf\."]).stdout
    files = "".join(open(os.path.join(root, name), encoding="utf-8").read()
                    for root, _dirs, names in os.walk("/etc/netns/pp-%s/sysctl.d" % host) for name in sorted(names))
    rules = "".join(in_netns("pp-" + host, argv, check=False).stdout
                    for argv in (["iptables-legacy-save"], ["iptables-nft-save"], ["nft", "list", "ruleset"]))
    # Without iptables-save's dated comments and the chains' packet counters (the SSH session moves them).
    return conf, files, re.sub(r"\[\d+:\d+\]", "[]", re.sub(r"^# .*$", "", rules, flags=re.M))


def foreign_rules(host):
    """The host's rules that are not ours, one line each, and how many: iptables `-A` lines and nft rule lines."""
    lines = []
    for argv in (["iptables-legacy-save"], ["iptables-nft-save"], ["ip6tables-legacy-save"], ["ip6tables-nft-save"]):
        lines += ["%s %s" % (argv[0], line) for line in in_netns("pp-" + host, argv, check=False).stdout.splitlines()
                  if line.startswith("-A ")]
    for line in in_netns("pp-" + host, ["nft", "list", "ruleset"]).stdout.splitlines():
        words = line.strip()
        if words and not words.startswith(("table ", "chain ", "}", "type ", "policy ")):
            lines.append("nft " + re.sub(r"counter packets \d+ bytes \d+", "counter", words))  # traffic moves them
    return sorted(line for line in lines if "packetpath" not in line and "nftrace" not in line)


def test_the_audit_finds_exactly_the_seeded_drift(inventory, tmp_path):
    clean = playbook(inventory, "audit", "-e", "packetpath_report_dir=%s" % tmp_path,
                     "-e", "packetpath_fail_on_findings=true")
    assert failing(read_report(tmp_path)) == [], clean.stdout
    # One host strict, one with a leftover TRACE rule (and its expiry timer), one whose runtime differs from its
    # persistent value.  Done behind the collection's back, as people do.
    in_netns("pp-client", ["sysctl", "-qw", "net.ipv4.conf.eth1.rp_filter=1"])
    assert module("node2", "packetpath.linux.trace_rule", {"proto": "tcp", "dport": "30080", "expires": 600})[
        "_status"] == "CHANGED"
    assert module("node3", "packetpath.linux.interface_sysctl", {
        "interfaces": ["eth1"], "settings": {"rp_filter": 2}, "persistent": "present"})["_status"] == "CHANGED"
    in_netns("pp-node3", ["sysctl", "-qw", "net.ipv4.conf.eth1.rp_filter=0"])

    before = dict((host, host_state(host)) for host in HOSTS)
    found = playbook(inventory, "audit", "-e", "packetpath_report_dir=%s" % tmp_path,
                     "-e", "packetpath_fail_on_findings=true", "--check",
                     check=False)
    assert found.returncode != 0 and "Fail the run on findings" in found.stdout
    assert dict((host, host_state(host)) for host in HOSTS) == before, "the audit changed something"
    report = read_report(tmp_path)
    assert failing(report) == [("client", "sysctl_expected"), ("node2", "trace_leftovers"), ("node3", "sysctl_drift")]
    checks = dict(((entry["host"], check["name"]), check) for entry in report["hosts"] for check in entry["checks"])
    assert checks[("client", "sysctl_expected")]["findings"] == ["eth1 rp_filter is 1, wanted 2 or 0 (expect)"]
    leftovers = checks[("node2", "trace_leftovers")]["findings"]
    # PREROUTING and OUTPUT, IPv4 and IPv6, then the timer.
    assert [line.split(" -A ")[1].split()[0] for line in leftovers[:4]] == ["PREROUTING", "OUTPUT"] * 2
    assert all(line.startswith("iptables_nft rule of flow ") for line in leftovers[:4])
    assert len(leftovers) == 5 and re.match(r"expiry timer of flow \w+ \(pid \d+, running, due ", leftovers[4])
    assert checks[("node3", "sysctl_drift")]["findings"] == [
        "net.ipv4.conf.eth1.rp_filter: runtime 0, the boot writes 2 (/etc/sysctl.d/90-packetpath-interfaces.conf)"]
    assert report["summary"]["findings"] == 7 and report["summary"]["hosts_clean"] == 1
    # The backend check says whether the kernel's drop reasons can be read (bpftrace, installed by `make`): no finding.
    assert all(checks[(host, "trace_backend")]["details"]["drop_reasons"]["available"] for host in HOSTS)
    assert checks[("node1", "trace_backend")]["summary"].endswith("; the kernel's drop reasons can be read")
    assert re.search(r"node3 +findings +sysctl_drift +net\.ipv4\.conf\.eth1\.rp_filter: runtime 0", found.stdout)

    # Looking only for leftovers needs no expectation; a check that compares against one refuses to run without it.
    alone = module("node2", "packetpath.linux.host_audit", {"checks": ["trace_leftovers"]})
    assert alone["_status"] == "SUCCESS" and not alone["compliant"], alone["_stdout"]
    assert [check["findings"] for check in alone["checks"]] == [leftovers]
    refused = module("node2", "packetpath.linux.host_audit", {"checks": ["trace_leftovers", "sysctl_drift"]})
    assert refused["_status"] == "FAILED" and refused["msg"].startswith(
        "expect: give at least one expectation (expect or expect_by_interface): the checks sysctl_drift compare")

    # The JUnit file: valid against the common JUnit schema, one testcase per host and check.
    schema = xmlschema.XMLSchema(XSD)
    junit = str(tmp_path / "audit.junit.xml")
    schema.validate(junit)
    root = ET.parse(junit).getroot()
    assert len(list(root.iter("testcase"))) == len(HOSTS) * len(CHECKS)
    assert sorted((case.get("classname"), case.get("name")) for case in root.iter("testcase")
                  if case.find("failure") is not None) == failing(report)
    root.set("skipped", "0")  # not an attribute of <testsuites> in the schema: the validator does tell
    assert not schema.is_valid(ET.tostring(root, encoding="unicode"))
    with open(tmp_path / "audit.md", encoding="utf-8") as handle:
        assert "| node3 | findings | pass | fail | skip | pass | pass | pass |" in handle.read()


def test_remediation_refuses_strict_mode_against_an_asymmetric_source(inventory, tmp_path):
    wanted = json.dumps({"packetpath_expect_by_interface": {"mgmt0": {"rp_filter": 1}},
                         "packetpath_strict_sources": {"mgmt0": ["198.51.100.0/24"]}})
    before = dict((host, host_state(host)) for host in HOSTS)
    # One host per batch, no failure allowed: the client (first) refuses, and the run stops before the nodes.
    # A bare `force` (as an inventory might set for its own reasons) does not turn the refusal off.
    refused = playbook(inventory, "remediate_rp_filter", "-e", wanted, "-e", "packetpath_target=all",
                       "-e", "force=true",
                       "-e", "packetpath_remediate_serial=1",
                       "-e", "packetpath_remediate_max_fail_percentage=0",
                       "-e", "packetpath_report_dir=%s" % tmp_path, check=False)
    assert refused.returncode != 0
    assert ("strict rp_filter on mgmt0 would drop packets from 198.51.100.0/24: the route back to 198.51.100.1 "
            "leaves via eth1") in refused.stdout
    assert re.findall(r"^fatal: \[(\w+)\]", refused.stdout, flags=re.M) == ["client"]
    assert "[node1]" not in refused.stdout
    assert dict((host, host_state(host)) for host in HOSTS) == before
    # With force the same plan goes ahead (shown here in check mode, which changes nothing).
    forced = playbook(inventory, "remediate_rp_filter", "-e", wanted, "-e", "packetpath_target=client",
                      "-e", "packetpath_remediate_force=true",
                      "-e", "packetpath_report_dir=%s" % tmp_path, "--check", "--diff")
    assert "+net.ipv4.conf.mgmt0.rp_filter = 1" in forced.stdout
    assert dict((host, host_state(host)) for host in HOSTS) == before


def test_remediation_refuses_without_a_host_pattern_or_an_expectation_and_changes_nothing(inventory, tmp_path):
    before = dict((host, host_state(host)) for host in HOSTS)
    untargeted = playbook(inventory, "remediate_rp_filter", "-e", "packetpath_report_dir=%s" % tmp_path, check=False)
    # The refusal is Ansible's error for the play's hosts line (playbook_inputs), on stderr.
    untargeted_said = " ".join((untargeted.stdout + untargeted.stderr).split())
    assert untargeted.returncode != 0 and "packetpath_target=: required (an inventory pattern" in untargeted_said
    # The unprefixed `target` of 0.1.0 (or an inventory's) chooses no host to write to.
    bare = playbook(inventory, "remediate_rp_filter", "-e", "target=client",
                    "-e", "packetpath_report_dir=%s" % tmp_path,
                    check=False)
    bare_said = " ".join((bare.stdout + bare.stderr).split())
    assert bare.returncode != 0 and "required (an inventory pattern" in bare_said
    assert "the inputs are prefixed since 0.2.0, so target is not read; nothing was touched" in bare_said
    # The lab's own inventory sets no expectation: the audit's defaults are never written.
    unexpected = playbook(INVENTORY, "remediate_rp_filter", "-e", "packetpath_target=client",
                          "-e", "packetpath_report_dir=%s" % tmp_path,
                          check=False)
    assert unexpected.returncode != 0 and "packetpath_expect: no expectation is set for client" in unexpected.stdout
    assert "Apply the wanted values" not in unexpected.stdout
    assert dict((host, host_state(host)) for host in HOSTS) == before


def test_remediation_in_check_mode_shows_the_change_and_makes_none(inventory, tmp_path):
    before = dict((host, host_state(host)) for host in HOSTS)
    shown = playbook(inventory, "remediate_rp_filter", "-e", "packetpath_target=all",
                     "-e", "packetpath_report_dir=%s" % tmp_path, "--check",
                     "--diff")
    assert dict((host, host_state(host)) for host in HOSTS) == before
    assert "-net.ipv4.conf.eth1.rp_filter = 1\n+net.ipv4.conf.eth1.rp_filter = 2" in shown.stdout  # client
    assert "-net.ipv4.conf.eth1.rp_filter = 2\n+net.ipv4.conf.eth1.rp_filter = 0" in shown.stdout  # node3's file
    assert re.search(r"client +: ok=\d+ +changed=1 ", shown.stdout) and re.search(r"node1 +: ok=\d+ +changed=0 ",
                                                                                  shown.stdout)


def test_remediation_in_batches_then_clean_then_nothing_to_do(inventory, tmp_path):
    first = playbook(inventory, "remediate_rp_filter", "-e", "packetpath_target=all",
                     "-e", "packetpath_report_dir=%s" % tmp_path,
                     "-e", "packetpath_remediate_serial=2",
                     "-e", "packetpath_remediate_max_fail_percentage=0")
    assert len(re.findall(r"^PLAY \[Apply the wanted", first.stdout, flags=re.M)) == 2  # two batches of two
    report = read_report(tmp_path, "remediation")
    by_host = dict((entry["host"], entry) for entry in report["hosts"])
    assert [(c["interface"], c["key"], c["before"], c["after"]) for c in by_host["client"]["changes"]] == [
        ("eth1", "rp_filter", 1, 2)]
    assert [(c["interface"], c["before"], c["after"]) for c in by_host["node3"]["changes"]] == [("eth1", 2, 0)]
    assert (by_host["client"]["before"], by_host["client"]["status"]) == ("findings", "clean")
    # The remediation touches sysctls only: node2's leftover trace is for the cleanup.
    assert failing(report) == [("node2", "trace_leftovers")]
    assert in_netns("pp-client", ["sysctl", "-n", "net.ipv4.conf.eth1.rp_filter"]).stdout.strip() == "2"
    with open("/etc/netns/pp-client/sysctl.d/90-packetpath-interfaces.conf", encoding="utf-8") as handle:
        assert "net.ipv4.conf.eth1.rp_filter = 2" in handle.read()

    playbook(inventory, "cleanup")
    audit = playbook(inventory, "audit", "-e", "packetpath_report_dir=%s" % tmp_path,
                     "-e", "packetpath_fail_on_findings=true")
    assert failing(read_report(tmp_path)) == [] and "4 hosts: 4 clean" in audit.stdout

    again = playbook(inventory, "remediate_rp_filter", "-e", "packetpath_target=all",
                     "-e", "packetpath_report_dir=%s" % tmp_path)
    assert len(re.findall(r"^(?:client|node\d) +: ok=\d+ +changed=0 ", again.stdout, flags=re.M)) == len(HOSTS)


def test_cleanup_after_a_killed_diagnosis_leaves_nothing_of_ours_and_every_foreign_rule(inventory, tmp_path):
    foreign = dict((host, foreign_rules(host)) for host in HOSTS)
    assert sum(len(rules) for rules in foreign.values()) > 30  # kube-proxy's chains on three backends
    argv = [os.path.join(BIN, "ansible-playbook"), "-i", inventory, "packetpath.linux.diagnose_port",
            "-e", "packetpath_trace_hosts=all", "-e", "packetpath_dport=30080", "-e", "packetpath_dst=198.51.100.12",
            "-e", "packetpath_probe_from=client", "-e", "packetpath_report_dir=%s" % tmp_path]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,  # pylint: disable=consider-using-with
                            start_new_session=True)
    deadline = time.time() + 90
    while not all(traces_left("pp-" + host) for host in HOSTS):
        assert time.time() < deadline and proc.poll() is None, "the diagnosis never switched every trace on"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the playbook and its ssh sessions: the traces stay (expiry 300 s)
    proc.wait()
    assert all(traces_left("pp-" + host) for host in HOSTS)

    cleaned = playbook(inventory, "cleanup")
    for host in HOSTS:
        assert traces_left("pp-" + host) == [], host
        assert foreign_rules(host) == foreign[host], host
    summaries = re.findall(r'^ok: \[(\w+)\] => \{\n +"msg": \[\n +"([^"]+)"', cleaned.stdout, flags=re.M)
    # On iptables, per hook: the flow's rule for each family, and the probe's two for its address's family (4 x 2);
    # on nftables one chain per hook, the probe's rules in it.
    assert sorted(summaries) == [
        ("client", "removed 8 rules, 0 nftables tables, 1 expiry timers"),
        # node1 is iptables-legacy: its nf_log binding, bound to NFLOG for the trace, goes back too.
        ("node1", "removed 8 rules, 0 nftables tables, 1 expiry timers, put back the nf_log binding of ipv4, ipv6"),
        ("node2", "removed 8 rules, 0 nftables tables, 1 expiry timers"),
        ("node3", "removed 2 rules, 1 nftables tables, 1 expiry timers")], cleaned.stdout
    twice = playbook(inventory, "cleanup")
    assert len(re.findall(r"^(?:client|node\d) +: ok=\d+ +changed=0 ", twice.stdout, flags=re.M)) == len(HOSTS)
    assert twice.stdout.count('"removed 0 rules, 0 nftables tables, 0 expiry timers"') == len(HOSTS)


def test_a_host_that_cannot_be_reached_is_reported_as_not_audited(inventory, tmp_path):
    extra = tmp_path / "gone.yml"
    # An address on the management bridge where no host answers: SSH fails with no route to the host.
    extra.write_text(yaml.safe_dump({"all": {"hosts": {"gone": {"ansible_host": "198.18.0.250"}}}}))
    run([os.path.join(BIN, "ansible-playbook"), "-i", inventory, "-i", str(extra), "packetpath.linux.audit",
         "-e", "packetpath_report_dir=%s" % tmp_path, "-e", "ansible_ssh_timeout=5"], check=False)
    report = read_report(tmp_path)
    gone = [entry for entry in report["hosts"] if entry["host"] == "gone"][0]
    assert gone["status"] == "error" and "198.18.0.250" in gone["error"]
    assert [check["status"] for check in gone["checks"]] == ["error"] * len(CHECKS)
    assert report["summary"]["hosts_not_audited"] == 1 and report["summary"]["hosts_clean"] == len(HOSTS)
    xmlschema.XMLSchema(XSD).validate(str(tmp_path / "audit.junit.xml"))


def test_preflight_lists_every_host_also_one_that_cannot_be_reached(inventory, tmp_path):
    extra = tmp_path / "gone.yml"
    extra.write_text(yaml.safe_dump({"all": {"hosts": {"gone": {"ansible_host": "198.18.0.250"}}}}))
    done = run([os.path.join(BIN, "ansible-playbook"), "-i", inventory, "-i", str(extra), "packetpath.linux.preflight",
                "-e", "ansible_ssh_timeout=5"], check=False)
    rows = re.findall(r'^([a-z][\w.-]*) +(True|-) ', done.stdout, re.M)  # the table's rows, as say prints them
    assert sorted(host for host, _root in rows) == sorted(HOSTS + ("gone",)), done.stdout
    assert re.search(r'^gone +- +- .*unreachable: .*198\.18\.0\.250', done.stdout, re.M), done.stdout
