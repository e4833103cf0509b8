"""AWX (Automation Controller) runs a job through ansible-runner and keeps what the job's set_stats gave as its
artifacts: the Artifacts tab shows them, and later workflow nodes read them as variables. The diagnosis and the
audit are read from there here, the way AWX reads them, from a project whose site playbook is one import line
(docs/fleet.md) - issue #39."""

import os

import ansible_runner
import yaml
from labtools import BIN, ENV, INVENTORY, lab

INCIDENT = "service-stale-conntrack"  # a culprit, a cause and a fix a person pastes


def run_job(tmp_path, name, playbook, extravars):
    """A job as AWX runs it: a private data directory with the project, the inventory, the extra variables."""
    job = tmp_path / name
    (job / "project").mkdir(parents=True)
    (job / "project" / "site.yml").write_text("- ansible.builtin.import_playbook: %s\n" % playbook)
    envvars = {key: value for key, value in ENV.items() if key.startswith(("ANSIBLE_", "PACKETPATH_"))}
    envvars["PATH"] = BIN + os.pathsep + os.environ.get("PATH", "")
    runner = ansible_runner.run(private_data_dir=str(job), playbook="site.yml", inventory=INVENTORY,
                                extravars=extravars, envvars=envvars, quiet=True, timeout=600)
    stdout = runner.stdout.read()
    stats = [event for event in runner.events if event.get("event") == "playbook_on_stats"]
    assert stats, stdout[-3000:]
    return runner, stats[-1]["event_data"].get("artifact_data") or {}, stdout


def test_the_verdict_and_the_audit_are_the_job_s_artifacts(tmp_path, lab_down_after):
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "lab", "topologies", "incidents",
                           INCIDENT + ".yml"), encoding="utf-8") as handle:
        truth = yaml.safe_load(handle)["incident"]
    lab("up", "incidents/" + INCIDENT)
    extravars = {"packetpath_trace_hosts": "all", "packetpath_report_dir": str(tmp_path / "reports"),
                 "packetpath_drop_reasons": "never"}
    extravars.update(("packetpath_%s" % key, value) for key, value in truth["probe"].items())
    runner, artifacts, stdout = run_job(tmp_path, "diagnose", "packetpath.linux.diagnose_port", extravars)
    assert runner.status == "successful", stdout[-3000:]
    diagnosis = artifacts["packetpath_diagnosis"]
    found = diagnosis["verdict"]
    assert (found["culprit"], found["cause"], found["label"]) == (truth["culprit"], truth["cause"], truth["cause"])
    assert truth["culprit"] + " \u2717" in found["line"] and truth["words_include"] in found["words"], found
    assert found["fix_command"] == truth["fix_command"] and found["fix"]["remediable"] is False, found
    assert diagnosis["probe"]["succeeded"] == truth["probe_succeeded"], diagnosis["probe"]
    rows = {row["host"]: row for row in diagnosis["hosts"]}
    assert sorted(rows) == sorted(diagnosis["causes"]) and rows[truth["culprit"]]["cause"] == truth["cause"]
    assert all(path.startswith(str(tmp_path / "reports")) for path in diagnosis["files"]), diagnosis["files"]

    runner, artifacts, stdout = run_job(tmp_path, "audit", "packetpath.linux.audit",
                                        {"packetpath_report_dir": str(tmp_path / "audit")})
    assert runner.status == "successful", stdout[-3000:]
    audit = artifacts["packetpath_audit"]
    assert audit["summary"]["hosts"] == len(rows), audit["summary"]
    assert sorted(audit["findings"]) == sorted(audit["hosts_not_clean"]), audit
    assert all(findings and all(": " in finding for finding in findings) for findings in audit["findings"].values())
    assert audit["files"] and all(path.startswith(str(tmp_path / "audit")) for path in audit["files"]), audit
