"""The bench's gate (bench/figures.py): which figures fail `make bench`. Only the judging is tested here; the
timing is not a test."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "bench"))
import figures  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture
def bench(tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "FIGURES", str(tmp_path / "build" / "figures.json"))
    monkeypatch.setattr(figures, "RELEASE", str(tmp_path / "release.json"))

    def release(**recorded):
        (tmp_path / "release.json").write_text(json.dumps({"release": "1.2.3", "figures": recorded}))

    figures.start()
    return release


def failures():
    return {name: problem for name, _figure, problem in
            figures.verdicts(figures._read(figures.FIGURES, {}), figures._read(figures.RELEASE, {})["figures"])
            if problem}


def test_a_figure_more_than_20_percent_worse_than_the_release_fails_the_bench(bench, capsys):
    bench(**{"parse": 10.0, "lookups": 2.0})
    figures.add("parse", 12.0, "of grep's time")  # lower is better: 20% worse is still held
    figures.add("lookups", 1.6, "of ip -batch", lower_is_better=False)  # higher is better: 20% lower is held
    assert failures() == {} and figures.gate() == 0
    figures.add("parse", 12.1, "of grep's time")
    figures.add("lookups", 1.59, "of ip -batch", lower_is_better=False)
    assert set(failures()) == {"parse", "lookups"} and "worse than the release's 10x" in failures()["parse"]
    assert figures.gate() == 1 and "2 of 2 figures FAILED" in capsys.readouterr().out


def test_a_missed_target_fails_the_bench_whatever_the_release_says(bench):
    bench(fetch=1.6)
    figures.add("fetch", 1.6, "of grep", target=1.5)
    figures.add("memory", None, value=101, unit="MB", at_most=100)
    figures.add("rate", 3.0, "of grep", value=149.9, unit="MB/s", at_least=150)
    assert failures() == {"fetch": "misses its target <= 1.5x", "memory": "misses its target <= 100 MB",
                          "rate": "misses its target >= 150 MB/s"}


def test_a_new_figure_is_held_to_its_target_only_and_recording_keeps_the_others(bench):
    bench(old=1.0)
    figures.add("new", 5.0, "of ping")
    assert failures() == {}
    assert figures.record("1.3.0") == 0
    recorded = figures._read(figures.RELEASE, {})
    assert recorded["release"] == "1.3.0" and recorded["figures"] == {"old": 1.0, "new": 5.0}


def test_a_bench_that_measured_nothing_fails(bench):
    assert figures.gate() == 1
