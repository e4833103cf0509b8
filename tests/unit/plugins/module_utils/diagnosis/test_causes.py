"""The docs' catalogue table is the catalogue: the same ids, evidence, words and remediability, and the incident
labs it names are the labs whose truth is that cause."""

import os
import re

import yaml
from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis import causes, finding, verdict

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 5))
INCIDENTS = os.path.join(ROOT, "tests", "lab", "topologies", "incidents")


def docs_rows():
    with open(os.path.join(ROOT, "docs", "diagnose_port.md"), encoding="utf-8") as handle:
        lines = [line for line in handle if line.startswith("| `")]
    return {cells[0].strip("`"): cells for cells in
            ([cell.strip() for cell in line.strip().strip("|").split(" | ")] for line in lines)
            if cells[0].strip("`") in causes.CATALOGUE}


def proving_labs():
    labs = {"rp_filter": ["seed"]}  # the original incident, `make demo`
    for name in sorted(os.listdir(INCIDENTS)):
        with open(os.path.join(INCIDENTS, name), encoding="utf-8") as handle:
            labs.setdefault(yaml.safe_load(handle)["incident"]["cause"], []).append(name[:-4])
    return labs


def test_the_docs_table_is_the_catalogue_and_names_the_labs_that_prove_it():
    rows, labs = docs_rows(), proving_labs()
    assert sorted(rows) == sorted(causes.CATALOGUE)
    assert set(labs) == set(causes.CATALOGUE), set(labs) ^ set(causes.CATALOGUE)
    for cause_id, cause in causes.CATALOGUE.items():
        _id, layer, detector, evidence, words, _fix, remediable, reasons, proved_by = rows[cause_id]
        assert (layer, detector, evidence, words, remediable) == (
            cause.layer, "`%s`" % cause.detector, cause.evidence, cause.words, "yes" if cause.remediable else "no")
        assert reasons == (", ".join("`%s`" % reason for reason in cause.drop_reasons) or "-")
        assert cause.layer in causes.LAYERS
        named = [part.strip().strip("`") for part in proved_by.split(",")]
        assert named == labs[cause_id], (cause_id, proved_by)  # every cause is proved by a lab


def test_every_cause_names_a_detector_and_the_docs_give_the_detectors_in_the_order_they_are_asked():
    host = [name for name, _detect in finding.DETECTORS] + [finding.KERNEL_WORD]
    fleet = [name for name, _join in verdict.UNDECIDED_JOINS + verdict.UNANSWERED_JOINS]
    for cause in causes.CATALOGUE.values():
        assert cause.detector in host + fleet, (cause.id, cause.detector)
    assert set(host + fleet) == {cause.detector for cause in causes.CATALOGUE.values()}  # no detector names nothing
    with open(os.path.join(ROOT, "docs", "diagnose_port.md"), encoding="utf-8") as handle:
        text = handle.read()
    paragraph = text[text.index('The column "decided by"'):text.index("| cause | layer | decided by |")]
    named = [name for name in re.findall(r"`([a-z0-9_]+)`", paragraph) if name != "neighbour_failed"]
    assert named == host + fleet, named
