"""The figures `make bench` holds the collection to, and the gate that fails the bench on a regression.

Each bench script adds its figures here as it measures them: a ratio against a baseline measured in the same run
(grep, `ip -batch`, ping tasks, a bare Python start), so that a busy machine slows both sides alike, and where a
target is stated in absolute terms (MB/s, seconds, executions) that value too. After the scripts ran, the gate
(`python bench/figures.py gate`) fails when a figure misses its target, or is more than 20% worse than the figure
recorded for the last release in bench/release.json. `python bench/figures.py record` writes this run's ratios
there: run it for a release, on a quiet machine, and commit the file.
"""

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RELEASE = os.path.join(HERE, "release.json")
FIGURES = os.environ.get("PACKETPATH_BENCH_FIGURES",
                         os.path.join(os.path.dirname(HERE), "build", "bench", "figures.json"))
MARGIN = 0.20  # how much worse than the release's figure a ratio may be


def add(name, ratio, against="", lower_is_better=True, target=None, value=None, unit="", at_least=None, at_most=None):
    """One figure of this run. `ratio` (None for a figure that is only a value) is compared with `target` (if any)
    and with the release's, `value` (in `unit`) with `at_least` or `at_most`."""
    figures = _read(FIGURES, {})
    figures[name] = {"ratio": ratio, "against": against, "lower_is_better": lower_is_better, "target": target,
                     "value": value, "unit": unit, "at_least": at_least, "at_most": at_most}
    os.makedirs(os.path.dirname(FIGURES), exist_ok=True)
    with open(FIGURES, "w", encoding="utf-8") as handle:
        json.dump(figures, handle, indent=1, sort_keys=True)


def start():
    """A new run: the figures of an earlier one are gone."""
    if os.path.exists(FIGURES):
        os.unlink(FIGURES)


def _read(path, default):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return default


def _worse(measured, bound, lower_is_better):
    return measured > bound if lower_is_better else measured < bound


def verdicts(figures, release):
    """(name, figure, what went wrong or None) of every figure of the run."""
    for name, figure in sorted(figures.items()):
        lower, ratio, value, problems = figure["lower_is_better"], figure["ratio"], figure["value"], []
        if figure["target"] is not None and _worse(ratio, figure["target"], lower):
            problems.append("misses its target %s %gx" % ("<=" if lower else ">=", figure["target"]))
        if figure["at_least"] is not None and value < figure["at_least"]:
            problems.append("misses its target >= %g %s" % (figure["at_least"], figure["unit"]))
        if figure["at_most"] is not None and value > figure["at_most"]:
            problems.append("misses its target <= %g %s" % (figure["at_most"], figure["unit"]))
        recorded = release.get(name)
        if recorded is not None and ratio is not None:
            allowed = recorded * (1 + MARGIN) if lower else recorded * (1 - MARGIN)
            if _worse(ratio, allowed, lower):
                problems.append("is more than %d%% worse than the release's %.3gx" % (MARGIN * 100, recorded))
        yield name, figure, "; ".join(problems) or None


def gate():
    figures, release = _read(FIGURES, {}), _read(RELEASE, {"figures": {}})
    if not figures:
        print("bench gate: no figures in %s: run the bench scripts first" % FIGURES)
        return 1
    failed = 0
    print("bench gate: %d figures against their targets and release %s's (%s)" % (
        len(figures), release.get("release"), os.path.relpath(RELEASE)))
    for name, figure, problem in verdicts(figures, release["figures"]):
        shown = [] if figure["ratio"] is None else ["%.3fx %s" % (figure["ratio"], figure["against"])]
        shown += [] if figure["value"] is None else ["%.4g %s" % (figure["value"], figure["unit"])]
        print("  %-40s %-36s %s" % (name, ", ".join(shown), "FAILED: " + problem if problem else "ok"))
        failed += bool(problem)
    print("bench gate: %s" % ("%d of %d figures FAILED" % (failed, len(figures)) if failed else "every figure held"))
    return 1 if failed else 0


def record(release_name):
    figures = _read(FIGURES, {})
    if not figures:
        print("bench record: no figures in %s: run `make bench` first" % FIGURES)
        return 1
    kept = _read(RELEASE, {"figures": {}})["figures"]
    kept.update({name: round(figure["ratio"], 4) for name, figure in figures.items() if figure["ratio"] is not None})
    with open(RELEASE, "w", encoding="utf-8") as handle:
        json.dump({"release": release_name, "recorded": time.strftime("%Y-%m-%d"), "figures": kept}, handle,
                  indent=1, sort_keys=True)
        handle.write("\n")
    print("bench record: %d figures written to %s for release %s" % (len(figures), RELEASE, release_name))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["gate"]:
        sys.exit(gate())
    if sys.argv[1:2] == ["record"] and len(sys.argv) == 3:
        sys.exit(record(sys.argv[2]))
    sys.exit("usage: figures.py gate | record RELEASE")
