"""The playbooks on an inventory as an SRE writes one: an untraceable first host, --limit, become, hosts that fail
or cannot be reached, module_defaults for the action group, bad input, and the README's quick start."""

import json
import os
import re
import subprocess

import jsonschema
import pytest
import yaml
from labtools import BIN, ENV, INVENTORY, ROOT, run, traces_left

pytestmark = pytest.mark.usefixtures("seed")

# Runs a module with iptables and nft hidden (a non-executable file bound over each, in a mount namespace of the
# module's own): the host then cannot be traced, and arming it says so.
WITHOUT_TOOLS = """#!/bin/sh
exec unshare --mount --propagation private sh -c \\
  'for tool in /usr/sbin/iptables /usr/sbin/ip6tables /usr/sbin/nft; do mount --bind /dev/null "$tool"; done
   exec /usr/bin/python3 "$@"' sh "$@"
"""
SCHEMAS = {}
for _name in ("diagnosis_report", "audit_report"):  # the schemas that ship with the collection
    with open(os.path.join(ROOT, "schemas", _name + ".schema.json"), encoding="utf-8") as _handle:
        SCHEMAS[_name] = json.load(_handle)
UNREACHABLE = {"gone": {"ansible_host": "198.18.0.250", "ansible_ssh_timeout": 5}}  # nothing answers there


def inventory(tmp_path, host_vars=None, extra_hosts=None, all_vars=None):
    """The lab's inventory with a few variables added."""
    with open(INVENTORY, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    hosts = data["all"]["hosts"]
    for host, values in (host_vars or {}).items():
        hosts[host].update(values)
    hosts.update(extra_hosts or {})
    data["all"].setdefault("vars", {}).update(all_vars or {})
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def playbook(inventory_path, name, *args, cwd=None, pipelining=True):
    """ansible-playbook as a person runs it, from `cwd` (where the default report directories go)."""
    env = dict(ENV, PWD=cwd or os.getcwd())
    if not pipelining:
        del env["ANSIBLE_PIPELINING"]  # Ansible's default
    return subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", inventory_path, "packetpath.linux." + name]
                          + list(args), capture_output=True, text=True, timeout=600, cwd=cwd, check=False, env=env)


def diagnosis(tmp_path, inventory_path, *args):
    done = playbook(inventory_path, "diagnose_port", "-e", "packetpath_report_dir=%s" % (tmp_path / "report"), *args)
    path = tmp_path / "report" / "latest" / "report.json"
    report = json.loads(path.read_text()) if path.exists() else None
    if report is not None:
        jsonschema.validate(report, SCHEMAS["diagnosis_report"])
    return done, report


def audit_json(path):
    report = json.loads(path.read_text())
    jsonschema.validate(report, SCHEMAS["audit_report"])
    return report


SEED = ("-e", "packetpath_dport=8081", "-e", "packetpath_dst=203.0.113.12", "-e", "packetpath_probe_from=client")


def test_the_probe_goes_out_when_the_first_traced_host_cannot_be_traced(tmp_path):
    wrapper = tmp_path / "python-without-tools"
    wrapper.write_text(WITHOUT_TOOLS)
    wrapper.chmod(0o755)
    hosts = inventory(tmp_path, host_vars={"client": {"ansible_python_interpreter": str(wrapper)}})
    done, report = diagnosis(tmp_path, hosts, "-e", "packetpath_trace_hosts=client:node", *SEED)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {entry["host"]: entry for entry in report["hosts"]}
    assert rows["client"]["words"].startswith("cannot be traced here: no trace backend"), rows["client"]
    assert report["probe"]["summary"]["results"] == {"timeout": 3}  # the probe went out from the client anyway
    assert rows["node"]["seen"] and rows["node"]["cause"] == "rp_filter" and rows["node"]["words"].startswith(
        "rejected by rp_filter (strict on b-srv)")
    assert not traces_left("pp-node") and not traces_left("pp-client")


def test_a_host_that_cannot_be_reached_has_a_row_with_its_error(tmp_path):
    hosts = inventory(tmp_path, extra_hosts=UNREACHABLE)
    done, report = diagnosis(tmp_path, hosts, "-e", "packetpath_trace_hosts=client:node:gone", *SEED)
    assert done.returncode != 0 and report is not None, done.stdout  # an unreachable host fails the run, and says so
    rows = {entry["host"]: entry for entry in report["hosts"]}
    assert sorted(rows) == ["client", "gone", "node"]
    assert "198.18.0.250" in rows["gone"]["error"] and rows["gone"]["words"].startswith("not reported")
    assert rows["node"]["seen"]
    assert "gone" in done.stdout.split("Where the packet died and why")[1]


def test_an_unreachable_probe_from_stops_the_run_before_any_host_is_armed(tmp_path):
    hosts = inventory(tmp_path, extra_hosts=UNREACHABLE)
    done, report = diagnosis(tmp_path, hosts, "-e", "packetpath_trace_hosts=client:node", "-e", "packetpath_dport=8081",
                             "-e", "packetpath_dst=203.0.113.12", "-e", "packetpath_probe_from=gone")
    assert done.returncode != 0 and report is None, done.stdout
    assert "probe_from=gone: unreachable (" in done.stdout and "198.18.0.250" in done.stdout, done.stdout
    assert "Switch the trace on" not in done.stdout
    # No traced host is blamed for it: none of them is unreachable in the recap.
    assert len(re.findall(r"^(client|node) +: .* unreachable=0 ", done.stdout, flags=re.M)) == 2, done.stdout
    assert not traces_left("pp-node") and not traces_left("pp-client")


@pytest.mark.parametrize("args, message", [
    ((), "packetpath_trace_hosts: required (-e packetpath_trace_hosts=PATTERN"),
    (("-e", "packetpath_trace_hosts=", "-e", "packetpath_dport=8081", "-e", "packetpath_dst=203.0.113.12",
      "-e", "packetpath_probe_from=client"),
     "packetpath_trace_hosts: required"),
    (("-e", "packetpath_trace_hosts=nosuchgroup", "-e", "packetpath_dport=8081", "-e", "packetpath_dst=203.0.113.12",
      "-e", "packetpath_probe_from=client"),
     "packetpath_trace_hosts=nosuchgroup: names no host of the inventory"),
    (("-e", "packetpath_trace_hosts=client:node", "-e", "packetpath_dport=70000",
      "-e", "packetpath_dst=203.0.113.12", "-e", "packetpath_probe_from=client"),
     "packetpath_dport=70000: must be a port (1-65535)"),
    (("-e", "packetpath_trace_hosts=client:node", "-e", "packetpath_dport=0", "-e", "packetpath_dst=203.0.113.12",
      "-e", "packetpath_probe_from=client"),
     "packetpath_dport=0: must be a port (1-65535)"),
    (("-e", "packetpath_trace_hosts=client:node", "-e", "packetpath_dport=8081", "-e", "packetpath_dst=203.0.113.12",
      "-e", "packetpath_probe_from=nobody"),
     "packetpath_probe_from=nobody: must be a host of the inventory"),
    (("-e", "packetpath_trace_hosts=client:node", "-e", "packetpath_dport=8081", "-e", "packetpath_dst=203.0.113.12",
      "-e", "packetpath_probe_from=client",
      "-e", "packetpath_family=ipv6"), "packetpath_dst=203.0.113.12: not an ipv6 address (packetpath_family=ipv6)"),
    # The unprefixed inputs of 0.1.0 are not read, and the run says so (remediate among them: it applies no fix).
    (("-e", "trace_hosts=client:node", "-e", "dport=8081", "-e", "dst=203.0.113.12", "-e", "probe_from=client",
      "-e", "remediate=true"), "packetpath_trace_hosts, packetpath_dport, packetpath_dst: required (-e packetpath_trace_"
     "hosts=PATTERN -e packetpath_dport=PORT -e packetpath_dst=ADDRESS); the inputs are prefixed since 0.2.0, so dport, "
     "dst, probe_from, remediate, trace_hosts is not read; nothing was touched"),
])
@pytest.mark.parametrize("limit", [(), ("--limit", "node")], ids=["whole", "limited"])
def test_bad_input_fails_before_any_host_is_touched(tmp_path, args, message, limit):
    """Whatever --limit says (issue #39: the checks were a play on localhost, which --limit skipped), and naming the
    user's input; no host is marked failed for it (the checks once ran in the role, on every host)."""
    done, _report = diagnosis(tmp_path, INVENTORY, *((args or SEED) + limit))
    assert done.returncode != 0
    assert message in " ".join((done.stdout + done.stderr).split()), done.stdout + done.stderr
    assert "Switch the trace on" not in done.stdout and "fatal:" not in done.stdout
    assert not traces_left("pp-node") and not traces_left("pp-client")


@pytest.mark.parametrize("name, args, message", [
    ("remediate_rp_filter", (), "packetpath_target=: required (an inventory pattern"),
    ("remediate_rp_filter", ("-e", "packetpath_target=node", "-e", "packetpath_remediate_max_fail_percentage=150"),
     "packetpath_remediate_max_fail_percentage=150: must be a percentage (0-100)"),
    ("audit", ("-e", "packetpath_fail_on_findings=maybe"), "packetpath_fail_on_findings=maybe: must be a boolean"),
    ("preflight", ("-e", "packetpath_target=nosuchgroup"), "packetpath_target=nosuchgroup: names no host"),
    ("cleanup", ("-e", "target=node"), "target=node: not read (the inputs are prefixed since 0.2.0)"),
])
def test_the_fleet_playbooks_check_their_inputs_under_limit(name, args, message):
    done = playbook(INVENTORY, name, "--limit", "node", *args)
    assert done.returncode != 0 and message in " ".join((done.stdout + done.stderr).split()), done.stdout + done.stderr
    assert "ok: [node]" not in done.stdout and "changed: [node]" not in done.stdout


@pytest.mark.parametrize("name", ["audit", "preflight", "cleanup"])
def test_an_unprefixed_target_is_refused_not_taken_for_every_host(name):
    done = playbook(INVENTORY, name, "-e", "target=client", "-e", "fail_on_problems=true")
    assert done.returncode != 0, done.stdout
    assert "target=client: not read (the inputs are prefixed since 0.2.0): give packetpath_target" in done.stdout
    assert "ok: [client]" not in done.stdout and "changed: [client]" not in done.stdout


def test_audit_with_limit_covers_exactly_the_run_and_fails_on_findings(tmp_path):
    expect = json.dumps({"packetpath_expect": {"rp_filter": [0, 2]}, "packetpath_fail_on_findings": True,
                         "packetpath_report_dir": str(tmp_path)})
    done = playbook(INVENTORY, "audit", "--limit", "node", "-e", expect)
    assert done.returncode != 0 and "findings" in done.stdout, done.stdout
    report = audit_json(tmp_path / "audit.json")
    assert [entry["host"] for entry in report["hosts"]] == ["node"]
    again = playbook(INVENTORY, "audit", "--limit", "client,localhost", "-e", expect)
    report = audit_json(tmp_path / "audit.json")
    assert again.returncode == 0, again.stdout
    assert [entry["host"] for entry in report["hosts"]] == ["client"]


def test_become_on_the_hosts_and_never_on_the_controller(tmp_path):
    done = playbook(INVENTORY, "audit", "-b", "--become-user", "root", "-e", "packetpath_report_dir=%s" % tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "audit.json").exists()
    done, report = diagnosis(tmp_path, INVENTORY, "-b", "--become-user", "root",
                             "-e", "packetpath_trace_hosts=client:node", *SEED)
    assert done.returncode == 0 and report["hosts"][1]["seen"], done.stdout + done.stderr


@pytest.mark.parametrize("namespace, outcome", [("pp-client", "ok=1"),
                                                ("no-such", "netns='no-such': /run/netns/no-such does not exist")])
def test_module_defaults_of_the_action_group_reach_every_member(tmp_path, namespace, outcome):
    """preflight, the member that had no netns, takes the group's default like the others."""
    play = tmp_path / "defaults.yml"
    play.write_text(yaml.safe_dump([{
        "name": "Survey a namespace from the node, through the group's defaults",
        "hosts": "node", "gather_facts": False,
        "module_defaults": {"group/packetpath.linux.packetpath": {"netns": namespace}},
        "tasks": [{"name": "Survey", "packetpath.linux.preflight": {}}]}]))
    done = run([os.path.join(BIN, "ansible-playbook"), "-i", INVENTORY, str(play)], check=False)
    assert outcome in done.stdout, done.stdout
    assert "Unsupported parameters" not in done.stdout
    with open(os.path.join(ROOT, "meta", "runtime.yml"), encoding="utf-8") as handle:
        members = yaml.safe_load(handle)["action_groups"]["packetpath"]
    assert "audit_report" not in members and "diagnosis_report" not in members


def test_the_readme_quick_start_runs_as_written(tmp_path):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    block = readme.split("<!-- quick-start:", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split() for line in block.strip().splitlines()]
    assert len(commands) == 4 and all(argv[:3] == ["ansible-playbook", "-i", "inventory.yml"] for argv in commands)
    hosts = inventory(tmp_path, all_vars={"ansible_become": True})
    for argv in commands:
        done = playbook(hosts, argv[3].split(".")[-1], *argv[4:], cwd=str(tmp_path), pipelining=False)
        assert done.returncode == 0, "%s\n%s%s" % (" ".join(argv), done.stdout, done.stderr)
        assert "reserved name" not in done.stdout + done.stderr
    assert (tmp_path / "packetpath-report" / "latest" / "report.json").exists() and (tmp_path / "packetpath-audit" / "audit.json").exists()
    assert not traces_left("pp-node") and not traces_left("pp-client")


PREREQUISITES = """---
- name: What packetpath's modules use, on the node
  hosts: node
  gather_facts: false
  roles:
    - role: packetpath.linux.prerequisites
      prerequisites_backends: %s
      prerequisites_drop_reasons: true
"""


@pytest.mark.parametrize("backends, outcome", [('["nftables", "iptables"]', "ok"),
                                               ('["nftables", "ipfw"]', "prerequisites_backends")])
def test_the_prerequisites_role_finds_everything_installed_and_refuses_a_backend_it_does_not_know(tmp_path, backends,
                                                                                                  outcome):
    """In check mode on the lab's node, whose machine has every package (the bootstrap installs them): nothing to
    install, nothing changed. An unknown backend is refused by the role's argument spec, naming it."""
    play = tmp_path / "prerequisites.yml"
    play.write_text(PREREQUISITES % backends)
    done = run([os.path.join(BIN, "ansible-playbook"), "-i", INVENTORY, str(play), "--check", "--diff"], check=False)
    recap = done.stdout[done.stdout.index("PLAY RECAP"):]
    if outcome == "ok":
        assert done.returncode == 0 and "changed=0" in recap and "failed=0" in recap, done.stdout + done.stderr
        assert "TASK [packetpath.linux.prerequisites : Install what packetpath's modules need on this host]" in done.stdout
    else:
        assert done.returncode != 0 and "prerequisites_backends" in done.stdout and "ipfw" in done.stdout, done.stdout


def test_the_playbooks_pipeline_unless_the_inventory_or_packetpath_pipelining_says_not(tmp_path):
    """With Ansible's own default (no pipelining), a diagnosis sends its modules through SSH's standard input: no
    module file is put on a host. An inventory's ansible_pipelining=false is kept, and packetpath_pipelining=false
    turns it off."""
    puts = re.compile(r"^<(\S+)> PUT .*AnsiballZ_", re.M)  # a module file put on a host, by its address
    with open(INVENTORY, encoding="utf-8") as handle:
        client = yaml.safe_load(handle)["all"]["hosts"]["client"]["ansible_host"]
    for host_vars, extra, pipelined in (({}, (), True), ({"client": {"ansible_pipelining": False}}, (), False),
                                        ({}, ("-e", "packetpath_pipelining=false"), False)):
        done = playbook(inventory(tmp_path, host_vars), "diagnose_port", "-vvv", "-e", "packetpath_trace_hosts=client",
                        "-e", "packetpath_report_dir=%s" % (tmp_path / "report"), *(SEED + extra), pipelining=False)
        assert done.returncode == 0, done.stdout[-3000:]
        assert (client in puts.findall(done.stdout)) is not pipelined, (host_vars, extra)


# sudo where it requires a tty (sudoers' requiretty): it refuses a command without one, as pipelining runs it (SSH
# without -tt). As the become_exe, it then runs the command as given (the lab logs in as root already).
SUDO_REQUIRING_A_TTY = """#!/bin/sh
tty -s || { echo "sudo: sorry, you must have a tty to run sudo" >&2; exit 1; }
while [ $# -gt 0 ]; do case "$1" in -u) shift 2; break;; -*) shift;; *) break;; esac; done
exec "$@"
"""


def test_preflight_says_where_sudo_requires_a_tty_and_packetpath_pipelining_false_serves_it(tmp_path):
    sudo = tmp_path / "sudo"
    sudo.write_text(SUDO_REQUIRING_A_TTY)
    sudo.chmod(0o755)
    # To another user than the one logged in (root), or Ansible skips become; the module files of a run without
    # pipelining then need to be readable by it.
    become = ("-b", "--become-user", "daemon", "-e", "ansible_become_exe=%s" % sudo,
              "-e", "ansible_shell_allow_world_readable_temp=true", "-e", "packetpath_target=client")
    refused = playbook(INVENTORY, "preflight", *become, pipelining=False)
    assert refused.returncode != 0, refused.stdout[-3000:]
    assert "sudo requires a tty here, which pipelining cannot give: set packetpath_pipelining=false" in \
        refused.stdout, refused.stdout[-3000:]  # the host's row in the table, and its failure after it
    served = playbook(INVENTORY, "preflight", *(become + ("-e", "packetpath_pipelining=false")), pipelining=False)
    assert served.returncode == 0 and "must have a tty" not in served.stdout, served.stdout[-3000:]
