"""schemas/diagnosis_report.schema.json is the report: its causes and layers are the catalogue's, and reports built
from what the incident labs recorded validate against it (the lab tests validate every report they write)."""

import json
import os

import jsonschema
import pytest
from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis import causes, finding, verdict
from ansible_collections.packetpath.linux.plugins.module_utils.probe import summary
from test_finding import INCIDENTS, RecordedEvidence, recorded_incident

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 5))
with open(os.path.join(ROOT, "schemas", "diagnosis_report.schema.json"), encoding="utf-8") as _handle:
    SCHEMA = json.load(_handle)


def test_the_schema_names_every_cause_and_layer_of_the_catalogue():
    assert set(SCHEMA["$defs"]["cause"]["enum"]) == set(causes.CATALOGUE) | {causes.UNDECIDED, causes.NOT_SEEN, None}
    assert set(SCHEMA["$defs"]["layer"]["enum"]) == set(causes.LAYERS) | {None}
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def incident_report(name):
    """The report of an incident's culprit as recorded, beside a host that never reported."""
    recorded = recorded_incident(name)
    port, result = recorded["port"], recorded["result"]
    # Decided again from what was recorded, where one port traced it; as decided in the lab where several did.
    found = result["finding"] if isinstance(port, list) else finding.explain(result["packets"], (port, port),
                                                                             RecordedEvidence(result))
    traced = {"arm_error": None, "trace": {"packets": result["packets"], "finding": found}}
    hosts = {recorded["incident"]["culprit"]: traced, "gone": None}
    probe = {"attempts": [{"result": "timeout"}] * 2, "summary": summary([{"result": "timeout"}] * 2)}
    return verdict.build_report(hosts, {"port": 8080, "proto": "tcp", "trace_hosts": ["gone"]}, probe,
                                unreported={"gone": "unreachable"})


@pytest.mark.parametrize("name", INCIDENTS)
def test_a_report_of_each_incident_as_recorded_validates(name):
    report = incident_report(name)
    jsonschema.validate(json.loads(json.dumps(report)), SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(dict(report, verdict=dict(report["verdict"], cause="passed")), SCHEMA)


@pytest.mark.parametrize("name", INCIDENTS)
def test_the_terminal_table_of_each_incident_fits_120_columns_and_keeps_the_fix_whole(name):
    """Issue #39: the CAUSE column and the verdict's words ran past 150 characters. Prose wraps, a host's cause is
    cut (the report files keep every word), and the fix command stays whole on one line, to be copied."""
    report = incident_report(name)
    lines = verdict.table(report).splitlines()
    command = verdict.fix_command(report["verdict"]["fix"]) if report["verdict"]["fix"] else None
    assert [line for line in lines if len(line) > verdict.COLUMNS and line.strip() != command] == []
    assert command is None or any(command in line for line in lines)


def test_the_evidence_of_the_incidents_reads_as_words_not_json():
    """Issue #39: the HTML and Markdown reports showed a host's evidence as raw JSON."""
    lines = [text for name in INCIDENTS for host in incident_report(name)["hosts"]
             for _what, text in verdict.evidence_lines(host)]
    assert len(lines) > len(INCIDENTS)
    assert [text for text in lines if '{"' in text or '["' in text or "null" in text] == []
