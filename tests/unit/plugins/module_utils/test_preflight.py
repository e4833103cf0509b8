import json

from replay import ReplayRunner

from ansible_collections.packetpath.linux.plugins.module_utils import preflight
from ansible_collections.packetpath.linux.plugins.module_utils.routing import pyroute2_range


def test_survey_reads_the_backend_from_iptables_version(fixture_text):
    recorded = json.loads(fixture_text("preflight-lab-node.json"))
    version = (recorded["tools"]["iptables"], "--version")
    answer = (0, fixture_text("iptables-version/iptables-1.8.9-legacy.txt"), "")
    runner = ReplayRunner(recorded["tools"], {version: answer})
    facts = preflight.survey(runner)
    assert runner.calls == [(list(version), None)]
    assert facts["iptables"] == {"version": "1.8.9", "backend": "iptables_legacy"}
    assert {name: facts["tools"][name] for name in recorded["tools"]} == recorded["tools"]


def test_survey_without_iptables_runs_nothing():
    runner = ReplayRunner({}, {})
    facts = preflight.survey(runner)
    assert runner.calls == []
    assert facts["iptables"] == {"version": None, "backend": None}


def test_a_lab_host_as_recorded_has_no_problems(fixture_text):
    assert preflight.problems(json.loads(fixture_text("preflight-lab-node.json"))) == []


def test_problems_name_each_missing_piece(fixture_text):
    facts = json.loads(fixture_text("preflight-lab-node.json"))
    facts["is_root"] = False
    facts["tools"] = dict.fromkeys(facts["tools"])
    facts["pyroute2"] = None
    found = preflight.problems(facts)
    assert len(found) == 3
    assert found[0].startswith("not running as root")
    assert "neither iptables nor nft" in found[1]
    assert "neither pyroute2 nor iproute2" in found[2]


def test_drop_reasons_say_why_they_cannot_be_read(monkeypatch):
    monkeypatch.setattr(preflight.os, "geteuid", lambda: 0)
    assert preflight.survey(ReplayRunner({}, {}))["drop_reasons"] == {
        "available": False, "bpftrace": None, "why_not": "bpftrace is not installed"}
    monkeypatch.setattr(preflight.os, "geteuid", lambda: 1000)
    assert preflight.survey(ReplayRunner({}, {}))["drop_reasons"]["why_not"].startswith("not root")


def test_a_pyroute2_older_than_the_range_is_named_and_lookups_go_through_ip(fixture_text):
    # The versions Debian ships: 0.5.14 (11), 0.7.2 (12), 0.7.7 (13); and PyPI's 0.9.7, the newest tested.
    # Debian's 0.7.2 says its __version__ is "unknown": not a version, so nothing is claimed from it.
    assert [pyroute2_range.too_old(version) for version in ("0.7.2", "0.7.7", "0.9.7", None, "unknown")] == [None] * 5
    assert pyroute2_range.too_old("0.5.14") == "pyroute2 0.5.14 is older than 0.7, the oldest this collection supports"
    facts = dict(json.loads(fixture_text("preflight-lab-node.json")), pyroute2="0.5.14",
                 pyroute2_unsupported=pyroute2_range.too_old("0.5.14"))
    assert preflight.problems(facts) == []  # ip answers instead
    facts["tools"]["ip"] = None
    assert preflight.problems(facts) == ["iproute2 (ip) is not installed, and pyroute2 0.5.14 is older than 0.7, the "
                                         "oldest this collection supports: route lookups are impossible"]
