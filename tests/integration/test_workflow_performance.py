"""The performance phase on a workflow device: the reference modality's actions timed to what they cause.

workflow.acquire to its first C-STORE at the PACS simulator; workflow.start_procedure and
workflow.complete to its MPPS N-CREATE and N-SET COMPLETED at the RIS simulator.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.model import CaseStatus, Comparison, PerfDecision, Verdict
from harness.rundir import RunDir
from simulators.reference_modality import PERFORMANCE_METRICS
from tests.conftest import ROOT, CliResult, run_cli

RUNS = ("baseline-1", "baseline-2", "candidate-1")
WARMUP = 1
METRICS = ("workflow.acquire", "workflow.start_procedure", "workflow.complete")
# The timed action of each metric, as its case observes it (`action.<name>`).
ACTION = {"workflow.acquire": "acquire", "workflow.start_procedure": "start_procedure", "workflow.complete": "complete"}
# Where each metric's value ends: the simulator's arrival log and the request (message and MPPS status).
ARRIVAL = {
    "workflow.acquire": ("pacs", "C-STORE-RQ"),
    "workflow.start_procedure": ("ris", "N-CREATE-RQ IN PROGRESS"),
    "workflow.complete": ("ris", "N-SET-RQ COMPLETED"),
}
# Only the workflow metrics: the modality's echo metrics are the archive tests' business. Small, so three
# runs fit on a loaded 2-core machine (a block is a reset, a start and an action of up to about a second).
PERFORMANCE = """
[performance]
budget = {budget}
min_rounds = {min_rounds}
max_rounds = {max_rounds}
metrics = {metrics}
"""


def _validate(
    tmp: Path,
    profile_text: str,
    metrics: Sequence[str] = ("workflow.*",),
    budget: int = 30,
    min_rounds: int = 3,
    max_rounds: int = 5,
) -> tuple[CliResult, Path]:
    profile = tmp / "profile.toml"
    performance = PERFORMANCE.format(
        budget=budget, min_rounds=min_rounds, max_rounds=max_rounds, metrics=json.dumps(list(metrics))
    )
    profile.write_text(profile_text + performance, encoding="utf-8")  # [performance] enabled stays false
    out = tmp / "out"
    return run_cli("validate", "--profile", str(profile), "--performance", "--out", str(out), timeout=900), out


def _shipped() -> str:
    return (ROOT / "devices" / "reference-modality" / "profile.toml").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[CliResult, Path]:
    return _validate(tmp_path_factory.mktemp("workflow-performance"), _shipped())


def _comparison(out: Path) -> Comparison:
    return Comparison.from_json(json.loads((out / "comparison.json").read_text(encoding="utf-8")))


def test_the_modality_is_measured_by_its_workflow_actions_and_stays_unchanged(measured: tuple[CliResult, Path]) -> None:
    result, out = measured
    assert result.code == 0, result.stdout + result.stderr
    comparison = _comparison(out)
    assert comparison.verdict is Verdict.UNCHANGED, comparison.reasons
    assert [m.metric for m in comparison.performance] == list(METRICS)
    for judged in comparison.performance:
        assert judged.decision not in (PerfDecision.REGRESSED, PerfDecision.MISSING), (judged.metric, judged.reason)
        assert judged.interleaved and judged.stopped, judged.metric
    for run in RUNS:
        manifest = json.loads((out / "runs" / run / "manifest.json").read_text(encoding="utf-8"))
        assert [m["metric"] for m in manifest["performance"]["metrics"]] == list(METRICS)


def test_every_run_has_its_min_rounds_of_plausible_values(measured: tuple[CliResult, Path]) -> None:
    _, out = measured
    for run in RUNS:
        kept: dict[str, dict[int, list[float]]] = {metric: {} for metric in METRICS}
        for raw in RunDir(out / "runs" / run).perf_samples.read_text(encoding="utf-8").splitlines():
            line = json.loads(raw)
            assert line["metric"] in METRICS and line["failed"] == 0, line
            assert line["statuses"] == {"arrived": 1} and line["ops"] == 1, line
            if line["round"] >= WARMUP:
                kept[line["metric"]][line["round"]] = line["values"]
        cases = [json.loads(x) for x in (out / "runs" / run / "observations.jsonl").read_text().splitlines()]
        for metric, values in kept.items():
            assert len(values) >= 3, (run, metric, values)
            # The action's start -> the request it causes: more than nothing, less than the arrival wait.
            assert all(len(v) == 1 and 0 < v[0] < 10 for v in values.values()), (run, metric, values)
            case = next(c for c in cases if c["case"] == f"performance/test_performance.py::test_metric[{metric}]")
            assert case["outcome"] == "passed", case
            observed = {o["name"]: o["value"] for o in case["observations"]}
            assert observed["perf.metric"] == {"metric": metric, "failures": "none", "statuses": ["arrived"]}
            assert observed[f"action.{ACTION[metric]}"]["outcome"] == "done", observed


def test_each_value_ends_at_the_request_its_metric_names_in_its_simulator_s_arrival_log(
    measured: tuple[CliResult, Path],
) -> None:
    _, out = measured
    run = RunDir(out / "runs" / "candidate-1")
    lines: list[tuple[int, str, str]] = []  # (t_ns, role, kind); the functional suites' requests come first
    for role in ("pacs", "ris"):
        for raw in run.perf_arrivals(role).read_text(encoding="utf-8").splitlines():
            line = json.loads(raw)
            lines.append((line["t_ns"], role, " ".join(filter(None, (line["message"], line.get("mpps_status", ""))))))
    samples = sorted(
        (json.loads(raw) for raw in run.perf_samples.read_text(encoding="utf-8").splitlines()),
        key=lambda sample: sample["started_ns"],
    )
    ends = [s["started_ns"] for s in samples[1:]] + [samples[-1]["started_ns"] + 60 * 10**9]
    for sample, end in zip(samples, ends, strict=True):  # one run's blocks never overlap: each has its window
        block = sorted(line for line in lines if sample["started_ns"] <= line[0] < end)
        t = next(t for t, role, kind in block if (role, kind) == ARRIVAL[sample["metric"]])
        action = t - round(sample["values"][0] * 1e9)  # when the timed action started, by the value
        assert sample["started_ns"] <= action <= t, sample
        before = [kind for t_, _, kind in block if t_ < action]
        # The block's untimed setup came first: complete's step was started, start_procedure's was not
        if sample["metric"] == "workflow.complete":
            assert "N-CREATE-RQ IN PROGRESS" in before, (sample, block)
        if sample["metric"] == "workflow.start_procedure":
            assert "N-CREATE-RQ IN PROGRESS" not in before, (sample, block)


@pytest.mark.parametrize(("variant", "metric"), [(v, m) for v, (m,) in sorted(PERFORMANCE_METRICS.items())])
def test_a_modality_slower_at_one_step_is_regressed_by_that_step_alone(
    tmp_path: Path, variant: str, metric: str
) -> None:
    shipped = _shipped()
    assert shipped.count('"clean-rebuild"') == 1 and "\n[expect]" in shipped
    # The candidate is the variant, which sends what the clean one sends, 2 s later; no [expect].
    slow = shipped.replace('"clean-rebuild"', f'"{variant}"').partition("\n[expect]")[0]
    # Only the metric it slows: the others would only add runtime. More rounds than above: a regression is
    # decided on no fewer than 6 rounds (compare's MIN_DECIDING_ROUNDS) and stops early only when clear at
    # 99.9 %, and under load (average 11-29) the command action's start alone varied from 0.5 to 6 s.
    result, out = _validate(tmp_path, slow + "\n", metrics=[metric], budget=150, min_rounds=6, max_rounds=20)
    assert result.code == 1, result.stdout[-3000:] + result.stderr[-3000:]
    comparison = _comparison(out)
    assert comparison.verdict is Verdict.REGRESSED, comparison.reasons
    judged = comparison.performance[0]
    assert (judged.metric, judged.decision) == (metric, PerfDecision.REGRESSED), judged.reason
    assert any(metric in reason for reason in comparison.reasons), comparison.reasons
    assert metric in result.stdout
    # Slower only: no functional case tells it from the clean modality
    assert comparison.cases and all(
        c.status in (CaseStatus.UNCHANGED, CaseStatus.NOT_APPLICABLE) for c in comparison.cases
    )
