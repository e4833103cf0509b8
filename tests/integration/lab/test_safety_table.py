"""docs/safety.md's table of adversarial input, run as it is written: each row on kube's node3 must fail with the
text of its last column, and leave nothing of ours on the host."""

import json
import os
import re

import pytest
from labtools import ROOT, module, traces_left

TABLE = os.path.join(ROOT, "docs", "safety.md")
ROW = re.compile(r"^\| (\w+) \| `(\{.*\})` \| (.+) \|$")

pytestmark = pytest.mark.usefixtures("kube")


def rows():
    with open(TABLE, encoding="utf-8") as handle:
        found = [ROW.match(line.strip()) for line in handle]
    return [match.groups() for match in found if match]


@pytest.fixture(scope="module")
def odd_files(tmp_path_factory):
    """The files the table names: made here, on the filesystem the lab's hosts share."""
    directory = tmp_path_factory.mktemp("odd")
    fifo = directory / "fifo"
    os.mkfifo(fifo)
    fake_gzip = directory / "kern.log.2.gz"
    fake_gzip.write_bytes(b"\x1f\x8b" + b"not gzip\n" * 100)
    return {"fifo": str(fifo), "fake_gzip": str(fake_gzip)}


def test_the_table_has_a_row_for_every_module_that_takes_input():
    assert {name for name, _args, _outcome in rows()} == {"trace_rule", "trace_results", "interface_sysctl",
                                                          "route_lookup", "probe", "host_audit", "audit_report",
                                                          "diagnosis_report"}


@pytest.mark.parametrize("name, args, outcome", rows(), ids=lambda value: value[:40] if isinstance(value, str) else "")
def test_each_row_fails_as_the_table_says_and_changes_nothing(name, args, outcome, odd_files):
    for key, path in odd_files.items():
        args = args.replace("{%s}" % key, path)
    result = module("node3", "packetpath.linux." + name, json.loads(args))
    assert result["_status"] == "FAILED" and outcome in result["msg"], result["_stdout"]
    assert re.search(r"nothing was (changed|read|sent|written)", result["msg"]), result["msg"]
    assert traces_left("pp-node3") == []
