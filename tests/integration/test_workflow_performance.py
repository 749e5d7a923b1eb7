"""The performance phase on a workflow device: the reference modality's acquire timed to its first C-STORE at the PACS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.model import Comparison, PerfDecision, Verdict
from harness.rundir import RunDir
from tests.conftest import ROOT, CliResult, run_cli

RUNS = ("baseline-1", "baseline-2", "candidate-1")
WARMUP = 1
METRIC = "workflow.acquire"
CASE = f"performance/test_performance.py::test_metric[{METRIC}]"
# Only the workflow metric: the modality's echo metrics are the archive tests' business. Small, so three
# runs fit on a loaded 2-core machine (a block is a reset, a start and a command action of about a second).
PERFORMANCE = """
[performance]
budget = {budget}
min_rounds = {min_rounds}
max_rounds = {max_rounds}
metrics = ["workflow.*"]
"""


def _validate(
    tmp: Path, profile_text: str, budget: int = 30, min_rounds: int = 3, max_rounds: int = 5
) -> tuple[CliResult, Path]:
    profile = tmp / "profile.toml"
    performance = PERFORMANCE.format(budget=budget, min_rounds=min_rounds, max_rounds=max_rounds)
    profile.write_text(profile_text + performance, encoding="utf-8")  # [performance] enabled stays false
    out = tmp / "out"
    return run_cli("validate", "--profile", str(profile), "--performance", "--out", str(out), timeout=900), out


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[CliResult, Path]:
    shipped = (ROOT / "devices" / "reference-modality" / "profile.toml").read_text(encoding="utf-8")
    return _validate(tmp_path_factory.mktemp("workflow-performance"), shipped)


def _comparison(out: Path) -> Comparison:
    return Comparison.from_json(json.loads((out / "comparison.json").read_text(encoding="utf-8")))


def test_the_modality_is_measured_by_its_acquire_and_stays_unchanged(measured: tuple[CliResult, Path]) -> None:
    result, out = measured
    assert result.code == 0, result.stdout + result.stderr
    comparison = _comparison(out)
    assert comparison.verdict is Verdict.UNCHANGED, comparison.reasons
    assert [m.metric for m in comparison.performance] == [METRIC]
    judged = comparison.performance[0]
    assert judged.decision not in (PerfDecision.REGRESSED, PerfDecision.MISSING), judged.reason
    assert judged.interleaved and judged.stopped
    for run in RUNS:
        manifest = json.loads((out / "runs" / run / "manifest.json").read_text(encoding="utf-8"))
        assert [m["metric"] for m in manifest["performance"]["metrics"]] == [METRIC]


def test_every_run_has_its_min_rounds_of_plausible_values(measured: tuple[CliResult, Path]) -> None:
    _, out = measured
    for run in RUNS:
        kept: dict[int, list[float]] = {}
        for raw in RunDir(out / "runs" / run).perf_samples.read_text(encoding="utf-8").splitlines():
            line = json.loads(raw)
            assert line["metric"] == METRIC and line["failed"] == 0, line
            assert line["statuses"] == {"arrived": 1} and line["ops"] == 1, line
            if line["round"] >= WARMUP:
                kept[line["round"]] = line["values"]
        assert len(kept) >= 3, (run, kept)
        # Start of the command action -> first C-STORE-RQ: more than nothing, less than the arrival wait.
        assert all(0 < v[0] < 10 for v in kept.values()) and all(len(v) == 1 for v in kept.values()), (run, kept)
        cases = [json.loads(x) for x in (out / "runs" / run / "observations.jsonl").read_text().splitlines()]
        case = next(c for c in cases if c["case"] == CASE)
        assert case["outcome"] == "passed", case
        observed = {o["name"]: o["value"] for o in case["observations"]}
        assert observed["perf.metric"] == {"metric": METRIC, "failures": "none", "statuses": ["arrived"]}
        assert observed["action.acquire"] == {"outcome": "done", "exit_code": 0}


def test_a_modality_that_waits_before_sending_is_regressed_by_its_acquire(tmp_path: Path) -> None:
    shipped = (ROOT / "devices" / "reference-modality" / "profile.toml").read_text(encoding="utf-8")
    assert shipped.count('"clean-rebuild"') == 1 and "\n[expect]" in shipped
    # The candidate is the slow-acquire variant, which sends what the clean one sends, 2 s later; no [expect].
    slow = shipped.replace('"clean-rebuild"', '"slow-acquire"').partition("\n[expect]")[0]
    # More rounds than above: a regression is decided on no fewer than 6 rounds (compare's MIN_DECIDING_ROUNDS on
    # main since 6d014ba) and stops early only when clear at 99.9 %, and under load
    # (average 11-29) the command action's start alone varied from 0.5 to 6 s.
    result, out = _validate(tmp_path, slow + "\n", budget=150, min_rounds=6, max_rounds=20)
    assert result.code == 1, result.stdout[-3000:] + result.stderr[-3000:]
    comparison = _comparison(out)
    assert comparison.verdict is Verdict.REGRESSED, comparison.reasons
    judged = comparison.performance[0]
    assert (judged.metric, judged.decision) == (METRIC, PerfDecision.REGRESSED), judged.reason
    assert any(METRIC in reason for reason in comparison.reasons), comparison.reasons
    assert METRIC in result.stdout
    # Slower only: no functional case tells it from the clean modality
    assert not [c.case for c in comparison.cases if c.status.value == "regressed"]
