"""The performance phase end to end: the reference device's three runs take turns, compare judges every metric."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.model import JSON, Comparison, PerfDecision, Verdict
from harness.perf.records import GO, RoundLine, parse_rounds
from harness.profile import METRICS, RESOURCE_METRICS
from harness.rundir import RunDir
from tests.conftest import ROOT, CliResult, run_cli

RUNS = ("baseline-1", "baseline-2", "candidate-1")
WARMUP = 1
# Every metric but get.last, which the profile's globs leave out (so its case says so).
MEASURED = tuple(m for m in METRICS if m != "get.last")
# Small blocks, so three runs of twelve metrics fit a 20 s budget on a loaded 2-core machine.
PERFORMANCE = """
[performance]
budget = 20
min_rounds = 3
max_rounds = 6
metrics = ["association.*", "echo.*", "store.*", "find.*", "move.*", "get.first", "memory.*", "cpu.*"]
block = { "association.setup" = 4, "echo.latency" = 8, "find.*" = 4 }
"""


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[CliResult, Path]:
    tmp = tmp_path_factory.mktemp("performance")
    profile = tmp / "profile.toml"
    shipped = (ROOT / "devices" / "reference" / "profile.toml").read_text(encoding="utf-8")
    profile.write_text(shipped + PERFORMANCE, encoding="utf-8")  # [performance] enabled stays false: --performance
    out = tmp / "out"
    return run_cli("validate", "--profile", str(profile), "--performance", "--out", str(out), timeout=600), out


def _lines(path: Path) -> Iterator[dict[str, JSON]]:
    for raw in path.read_text(encoding="utf-8").splitlines():
        yield json.loads(raw)


def _rounds(out: Path, run: str) -> list[RoundLine]:
    path = RunDir(out / "runs" / run).perf_rounds
    return parse_rounds(path.read_bytes(), str(path))


def test_the_validation_measures_every_metric_and_stays_unchanged(measured: tuple[CliResult, Path]) -> None:
    result, out = measured
    assert result.code == 0, result.stdout + result.stderr
    comparison = Comparison.from_json(json.loads((out / "comparison.json").read_text(encoding="utf-8")))
    assert comparison.verdict is Verdict.UNCHANGED, comparison.reasons
    # One MetricComparison per metric: the eleven timed ones, then the device's memory and CPU (read from /proc);
    # with at most 5 kept rounds (max_rounds 6, one warm-up) none can be regressed (MIN_DECIDING_ROUNDS).
    assert [m.metric for m in comparison.performance] == [*MEASURED, *RESOURCE_METRICS]
    assert not [m.reason for m in comparison.performance if m.decision is PerfDecision.REGRESSED]
    assert not [m.reason for m in comparison.performance if m.decision is PerfDecision.MISSING]
    assert all(m.interleaved and m.stopped for m in comparison.performance if m.metric in MEASURED)
    for run in RUNS:
        manifest = json.loads((out / "runs" / run / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["performance"]["conductor"] == "interleaved"
        assert manifest["performance"]["resources"] == "proc"
        assert [m["metric"] for m in manifest["performance"]["metrics"]] == list(MEASURED)


def test_every_metric_has_its_min_rounds_in_every_run(measured: tuple[CliResult, Path]) -> None:
    _, out = measured
    for run in RUNS:
        kept: dict[str, set[int]] = {}
        for line in _lines(RunDir(out / "runs" / run).perf_samples):
            assert line["failed"] == 0, line
            if isinstance(line["round"], int) and line["round"] >= WARMUP:
                kept.setdefault(str(line["metric"]), set()).add(line["round"])
        assert {m: len(r) >= 3 for m, r in kept.items()} == dict.fromkeys(MEASURED, True), (run, kept)
    # The numbers stay out of the observations: the performance cases observe statuses only
    cases = [json.loads(x) for x in (out / "runs" / "candidate-1" / "observations.jsonl").read_text().splitlines()]
    perf = [c for c in cases if c["case"].startswith("performance/")]
    assert [c["outcome"] for c in perf] == ["passed"] * len(MEASURED) + ["not_applicable"]
    assert perf[-1]["message"] == "not applicable: the profile's [performance] metrics do not cover 'get.last'"
    assert {o["value"]["failures"] for c in perf for o in c["observations"]} == {"none"}
    assert all(set(o["value"]) == {"metric", "failures", "statuses"} for c in perf for o in c["observations"])
    # ...and after every functional case, before the robustness phase's (the plugin orders the phases last)
    robustness = [c for c in cases if c["case"].startswith("robustness/")]
    assert robustness and cases[-len(robustness) :] == robustness
    assert cases[-len(robustness) - len(METRICS) : -len(robustness)] == perf
    # ...and the audit suite's operations before the other suites' traffic (its first case, before_traffic), so
    # its first window waits for none; the cases recording what they caused after it (after_traffic)
    audit = [c for c in cases if c["case"].startswith("audit/")]
    assert audit[0]["case"] == "audit/test_audit.py::test_application_activity" and cases[0] == audit[0]
    functional = cases[: -len(robustness) - len(METRICS)]
    assert len(audit) > 2 and functional[-len(audit) + 1 :] == audit[1:]


def test_one_run_measures_at_a_time_and_the_order_rotates(measured: tuple[CliResult, Path]) -> None:
    _, out = measured
    merged: dict[int, RoundLine] = {}
    for run in RUNS:
        for line in _rounds(out, run):
            if line.event in (GO, "done") and line.run == run:
                merged[line.seq] = line
    holder = ""
    orders: dict[tuple[str, int], tuple[str, ...]] = {}
    for seq in sorted(merged):  # replayed in the conductor's validation-wide order
        line = merged[seq]
        if line.event == GO:
            assert not holder, f"{line.run} granted {line.metric} round {line.round} while {holder} measured"
            holder = line.run
            orders[(line.metric, line.round)] = line.order
        else:
            assert line.run == holder, f"{line.run} done while {holder} held the slot"
            holder = ""
    for metric in MEASURED:
        first, second = orders[(metric, 0)], orders[(metric, 1)]
        assert first == RUNS and second == (*RUNS[1:], RUNS[0]), (metric, first, second)


def test_compare_redoes_the_same_performance_comparison(measured: tuple[CliResult, Path], tmp_path: Path) -> None:
    _, out = measured
    runs = [str(out / "runs" / run) for run in RUNS]
    result = run_cli(
        "compare", "--baseline", runs[0], "--baseline", runs[1], "--candidate", runs[2], "--out", str(tmp_path)
    )
    assert result.code == 0, result.stdout + result.stderr
    again = json.loads((tmp_path / "comparison.json").read_text(encoding="utf-8"))["performance"]
    # Settings and seed come from the manifests: the same bounds, bit for bit
    assert again == json.loads((out / "comparison.json").read_text(encoding="utf-8"))["performance"]


def test_without_the_phase_nothing_is_measured(tmp_path: Path) -> None:
    result = run_cli("validate", "--demo", "--out", str(tmp_path / "demo"), timeout=300)
    assert result.code == 0, result.stdout + result.stderr
    comparison = json.loads((tmp_path / "demo" / "comparison.json").read_text(encoding="utf-8"))
    assert comparison["verdict"] == "UNCHANGED" and "performance" not in comparison
    for run in RUNS:
        folder = RunDir(tmp_path / "demo" / "runs" / run)
        assert not folder.perf.exists()
        assert "performance" not in json.loads(folder.manifest.read_text(encoding="utf-8"))
    perf = [c for c in comparison["cases"] if c["case"].startswith("performance/")]
    assert [c["status"] for c in perf] == ["not_applicable"] * len(METRICS)
    records = [json.loads(x) for x in (tmp_path / "demo" / "runs" / "candidate-1" / "observations.jsonl").open()]
    assert {r["message"] for r in records if r["case"].startswith("performance/")} == {
        "not applicable: the performance phase is off (enable [performance] in the profile, or pass --performance)"
    }
    others = [c for c in comparison["cases"] if not c["case"].startswith("performance/")]
    assert len([c for c in others if c["before"] == "passed"]) > 50 and all(c["status"] != "regressed" for c in others)
