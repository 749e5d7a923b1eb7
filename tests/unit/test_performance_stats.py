"""Performance statistics: round-paired bootstrap, the decision table, samples.jsonl, records and verdict lines."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

from harness.compare._bootstrap import generator, median_replicates
from harness.compare.engine import compare
from harness.compare.performance import (
    GROWTH,
    MIN_DECIDING_ROUNDS,
    PerfSettings,
    RunSamples,
    StoppingRule,
    compare_growth,
    compare_metric,
    compare_performance,
    decide,
    parse_samples,
    read_samples,
    settled,
    spread,
)
from harness.compare.policy import Policy
from harness.errors import RunDirError
from harness.model import Comparison, MetricComparison, PerfDecision, Verdict, to_json
from harness.profile import ExpectedSlowdown, PerformanceSpec
from harness.report.json_report import JsonReporter
from harness.verdict import decide as verdict
from tests.factories import make_case, make_run

# Bootstrap resamples in these tests: 1000 (the default is 2000); the whole file runs in a few seconds.
RESAMPLES = 1000
_ROOT = Path(__file__).resolve().parents[2]
Rounds = dict[int, tuple[float, ...]]


def _rounds(
    seed: int,
    scale: float = 1.0,
    *,
    rounds: int = 20,
    block: int = 10,
    cv: float = 0.2,
    drift: Sequence[float] | None = None,
    first: int = 1,
) -> Rounds:
    """Synthetic latencies: lognormal around 5 ms times scale, `block` values per round; `drift` multiplies each round."""
    rng = np.random.default_rng(seed)
    factors = drift if drift is not None else [1.0] * rounds
    return {
        first + k: tuple(float(v) for v in scale * factors[k] * rng.lognormal(np.log(0.005), cv, block))
        for k in range(rounds)
    }


def _compare(candidate: Rounds, *baselines: Rounds, **options: object) -> MetricComparison:
    named = {f"baseline-{i}": b for i, b in enumerate(baselines or (_rounds(1), _rounds(2)), start=1)}
    return compare_metric("store.study", named, candidate, resamples=RESAMPLES, seed=1422, **options)  # type: ignore[arg-type]


def test_identical_distributions_are_unchanged() -> None:
    m = _compare(_rounds(3))
    assert m.decision is PerfDecision.UNCHANGED, m.reason
    assert m.interval.low < 1 < m.interval.high and all(i.high <= 1.10 for i in m.per_baseline)
    assert "within the threshold 1.10x" in m.reason


def test_a_candidate_thirty_percent_slower_regresses_with_an_interval_containing_the_effect() -> None:
    m = _compare(_rounds(3, 1.3))
    assert m.decision is PerfDecision.REGRESSED
    assert m.interval.low < 1.3 < m.interval.high
    assert min(i.low for i in m.per_baseline) > 1.10
    assert m.reason.startswith("store.study 1.")
    assert ", threshold 1.10x, baselines " in m.reason
    assert (m.unit, m.threshold, m.declared, len(m.per_baseline)) == ("s/study", 0.10, None, 2)


def test_a_faster_candidate_is_faster() -> None:
    m = _compare(_rounds(3, 0.7))
    assert m.decision is PerfDecision.FASTER
    assert max(i.high for i in m.per_baseline) < 1


def test_five_percent_slower_with_tight_data_is_slower_never_regressed() -> None:
    tight = dict(rounds=30, block=20, cv=0.02)
    m = _compare(_rounds(3, 1.05, **tight), _rounds(1, **tight), _rounds(2, **tight))  # type: ignore[arg-type]
    assert m.decision is PerfDecision.SLOWER, m.reason
    assert 1.0 < min(i.low for i in m.per_baseline) < 1.10 and m.ratio == pytest.approx(1.05, abs=0.01)
    assert "slower than every baseline, not beyond the threshold 1.10x" in m.reason


def test_baselines_that_disagree_beyond_the_threshold_are_noisy_and_never_regressed() -> None:
    m = _compare(_rounds(3, 1.5), _rounds(1), _rounds(2, 1.4))
    assert m.decision is PerfDecision.NOISY
    assert m.noise_interval.low > 1.10 and 1.3 < m.noise < 1.5
    assert "baselines differ 1.39x [1.35x, 1.45x] beyond the threshold 1.10x: not judged" in m.reason


@pytest.mark.parametrize(("up_to", "decision"), [(0.30, PerfDecision.EXPECTED), (0.05, PerfDecision.REGRESSED)])
def test_a_declared_slowdown_covers_what_it_declares_and_no_more(up_to: float, decision: PerfDecision) -> None:
    entry = ExpectedSlowdown("store.*", up_to, "on-access scanning", "SEC-31")
    m = _compare(_rounds(3, 1.2), declared=entry)
    assert m.decision is decision, m.reason
    assert (m.declared, m.declared_reason) == (up_to, "on-access scanning (SEC-31)")
    assert f"declared up to {1 + up_to:.2f}x" in m.reason


def test_round_pairing_removes_a_drift_common_to_all_runs() -> None:
    # Every run is 1.5x slower in the same half of the rounds (a busy minute on the machine), values tight.
    drift = [1.5 if k % 2 else 1.0 for k in range(20)]
    runs = [_rounds(seed, drift=drift, cv=0.05) for seed in (1, 2, 3)]
    named = {"baseline-1": runs[0], "baseline-2": runs[1]}
    paired = compare_metric("find.study", named, runs[2], resamples=RESAMPLES, seed=1)
    naive = compare_metric("find.study", named, runs[2], resamples=RESAMPLES, seed=1, pairing="values")
    assert paired.decision is PerfDecision.UNCHANGED, paired.reason
    assert naive.ratio == paired.ratio  # same data, same estimate: only the interval differs
    # Value by value, each run's share of slow values varies on its own, so its median jumps between the two
    # modes: the naive interval cannot exclude the threshold where the paired one does.
    assert naive.decision is PerfDecision.UNDECIDED, naive.reason
    assert max(i.high for i in naive.per_baseline) > 1.10 >= max(i.high for i in paired.per_baseline)


def test_the_same_input_gives_identical_floats() -> None:
    first, second = _compare(_rounds(3, 1.1)), _compare(_rounds(3, 1.1))
    assert to_json(first) == to_json(second)
    assert first.per_baseline[0].low == second.per_baseline[0].low  # bit for bit, not approximately
    # The generator's seed comes from the metric id and the seed through SHA-256: this draw is fixed forever.
    assert generator("store.study", 1422).integers(0, 1000, 3).tolist() == _GOLDEN_DRAW
    other = compare_metric("find.study", {"b": _rounds(1), "c": _rounds(2)}, _rounds(3, 1.1), resamples=RESAMPLES)
    assert other.per_baseline != first.per_baseline  # another metric id draws other rounds


_GOLDEN_DRAW = [946, 278, 987]  # numpy PCG64 from the SHA-256 seed: the same on every machine


def test_scaling_every_run_gives_the_same_decision() -> None:
    def scaled(rounds: Rounds, by: float) -> Rounds:
        return {k: tuple(v * by for v in vs) for k, vs in rounds.items()}

    base = [_rounds(1), _rounds(2), _rounds(3, 1.15)]
    small = _compare(base[2], base[0], base[1])
    large = _compare(scaled(base[2], 1000), scaled(base[0], 1000), scaled(base[1], 1000))
    assert small.decision is large.decision
    assert large.ratio == pytest.approx(small.ratio, rel=1e-12)
    assert large.interval.low == pytest.approx(small.interval.low, rel=1e-12)


def _growth(seed: int, slope: float, rounds: int = 20) -> dict[int, tuple[tuple[float, float], ...]]:
    """Rest rss after each block: 40 MB + slope * associations so far + 200 kB noise; 10 associations per block."""
    rng = np.random.default_rng(seed)
    return {k: ((10.0 * k, 40e6 + slope * 10 * k + float(rng.normal(0, 2e5))),) for k in range(1, rounds + 1)}


def test_memory_growth_is_a_difference_of_slopes() -> None:
    baselines = {"baseline-1": _growth(1, 1000.0), "baseline-2": _growth(2, 1000.0)}
    leak = compare_growth(baselines, _growth(3, 200_000.0), resamples=RESAMPLES, seed=1)
    assert leak.decision is PerfDecision.REGRESSED, leak.reason
    assert leak.unit == "bytes/association" and leak.ratio == pytest.approx(199_000, rel=0.05)
    assert leak.interval.low > 65536 and leak.reason.startswith("memory.growth +")
    clean = compare_growth(baselines, _growth(4, 1000.0), resamples=RESAMPLES, seed=1)
    assert clean.decision is PerfDecision.UNCHANGED, clean.reason
    assert abs(clean.ratio) < 65536
    # A declared slow-down counts for memory growth only when it names memory.growth itself.
    assert Policy(slowdowns=(ExpectedSlowdown("*", 5.0, "r"),)).slowdown_for(GROWTH) is None
    entry = ExpectedSlowdown(GROWTH, 3.0, "cache warms up")
    declared = compare_growth(baselines, _growth(3, 200_000.0), declared=entry, resamples=RESAMPLES, seed=1)
    assert declared.decision is PerfDecision.EXPECTED, declared.reason


def test_five_hundred_a_a_comparisons_with_an_instance_effect_rarely_regress() -> None:
    # Each process gets its own persistent 3 % offset (the instance effect of design 7.3), none is slower by design.
    effects = np.random.default_rng(500).normal(0.0, 0.03, size=(500, 3))
    regressed = 0
    for case in range(500):
        runs = [_rounds(case * 3 + j, float(np.exp(effects[case, j])), rounds=12, block=10) for j in range(3)]
        got = decide(
            {"baseline-1": runs[0], "baseline-2": runs[1]}, runs[2], metric="find.study", threshold=0.10,
            resamples=RESAMPLES, seed=case,
        )  # fmt: skip
        regressed += got is PerfDecision.REGRESSED
    assert regressed <= 5


def test_the_stopping_rule_stops_within_the_threshold_or_on_a_regression_at_the_stricter_confidence() -> None:
    named = {"baseline-1": _rounds(1), "baseline-2": _rounds(2)}
    common = dict(metric="find.study", threshold=0.10, resamples=RESAMPLES)
    assert settled(named, _rounds(3), **common) is PerfDecision.UNCHANGED  # type: ignore[arg-type]
    assert settled(named, _rounds(3, 2.0), **common) is PerfDecision.REGRESSED  # type: ignore[arg-type]
    # Regressed at 95 % but not at 99.9 % on six rounds: sampling goes on.
    few = {"baseline-1": _rounds(1, rounds=6), "baseline-2": _rounds(2, rounds=6)}
    candidate = _rounds(3, 1.22, rounds=6)
    assert decide(few, candidate, **common) is PerfDecision.REGRESSED  # type: ignore[arg-type]
    assert settled(few, candidate, **common) is None  # type: ignore[arg-type]


def test_a_run_without_kept_rounds_is_missing() -> None:
    m = compare_metric("find.study", {"baseline-1": _rounds(1), "baseline-2": _rounds(2)}, {}, resamples=10)
    assert (m.decision, m.reason) == (PerfDecision.MISSING, "find.study: no kept round in candidate-1")
    assert [s.n for s in m.spreads] == [200, 200, 0] and (m.ratio, m.per_baseline) == (0.0, ())


def test_spread_has_seven_quantiles_and_at_most_200_points() -> None:
    s = spread("baseline-1", _rounds(1, rounds=30))
    assert (s.run, s.n, s.rounds, len(s.quantiles), len(s.points)) == ("baseline-1", 300, 30, 7, 200)
    assert s.points[0] == s.quantiles[0] and s.points[-1] == s.quantiles[-1] and list(s.points) == sorted(s.points)
    assert spread("b", {1: (3.0, 1.0, 2.0)}).points == (1.0, 2.0, 3.0)


def _line(metric: str, round_: int, values: Sequence[float], **extra: object) -> str:
    return json.dumps({"metric": metric, "round": round_, "slot": 1, "values": list(values), **extra}) + "\n"


def test_samples_are_read_by_metric_and_round_without_the_warmup(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    path.write_text(
        _line("find.study", 0, [9.0])
        + _line("find.study", 1, [0.005, 0.006])
        + _line("store.study", 1, [0.5], bytes=2_000_000, images=10)
        + _line("find.study", 1, [0.007])
        + '{"metric": "find.study", "round": 2, "val'  # a write cut short by a kill: left out
    )
    read = read_samples(path, run="candidate-1")
    assert read.values == {"find.study": {1: (0.005, 0.006, 0.007)}, "store.study": {1: (0.5,)}}
    assert read.rates == {"store.study": {"images/s": 20.0, "MB/s": 4.0}}
    assert read_samples(tmp_path / "absent.jsonl", run="x").values == {}


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("not json\n", "not a JSON line"),
        ('{"metric": "m", "round": -1, "values": []}\n', "round: expected an integer"),
        ('{"metric": "m", "round": 1, "values": [0.1, "x"]}\n', "values: expected an array of finite numbers"),
        ('{"round": 1, "values": [0.1]}\n', "metric: expected a metric id"),
    ],
)
def test_a_bad_samples_line_names_file_and_line(line: str, words: str) -> None:
    with pytest.raises(RunDirError) as caught:
        parse_samples((_line("m", 1, [0.1]) + line).encode(), "runs/c/perf/samples.jsonl", run="c")
    assert caught.value.message.startswith(f"runs/c/perf/samples.jsonl:2: {words}")
    assert "samples.jsonl line is one JSON object" in caught.value.hint


def test_compare_performance_takes_thresholds_by_glob_and_slowdowns_from_the_policy() -> None:
    def run(name: str, scale: float, seed: int) -> RunSamples:
        return RunSamples(name, {"find.study": _rounds(seed, scale), "store.study": _rounds(seed + 10, scale)})

    policy = Policy(slowdowns=(ExpectedSlowdown("store.*", 0.5, "scanning", "SEC-31"),))
    settings = PerfSettings(thresholds={"find.*": 0.5}, bootstrap=RESAMPLES)
    got = compare_performance(
        [run("baseline-1", 1, 1), run("baseline-2", 1, 2)], run("candidate-1", 1.3, 3), policy, settings
    )
    assert [(m.metric, m.threshold, m.decision) for m in got] == [
        ("find.study", 0.5, PerfDecision.SLOWER),  # 1.3x is slower, but within its own threshold of 1.5x
        ("store.study", 0.10, PerfDecision.EXPECTED),
    ]
    assert [s.run for s in got[0].spreads] == ["baseline-1", "baseline-2", "candidate-1"]


# Verdict lines --------------------------------------------------------------------------------------------


def _metric(decision: PerfDecision, **fields: object) -> MetricComparison:
    m = _compare(_rounds(3, 1.3))
    return dataclasses.replace(m, decision=decision, **fields)  # type: ignore[arg-type]


def _verdict(*metrics: MetricComparison, strict: bool = False) -> tuple[Verdict, tuple[str, ...]]:
    cases = [make_case("echo/test_echo.py::test_0", status=0)]
    runs = [make_run(cases, replica=1), make_run(cases, replica=2)]
    comparison = compare(runs, make_run(cases, "candidate"), created="2026-11-30T12:00:00+00:00")
    return verdict(
        runs, make_run(cases, "candidate"), comparison.cases, noisy_cases=(), performance=metrics, strict=strict
    )


def test_verdict_lines_for_performance() -> None:
    assert _verdict() == (Verdict.UNCHANGED, ("1 case(s) compared, no change outside baseline noise",))
    m = _compare(_rounds(3, 1.3))
    decision, lines = _verdict(m)
    assert decision is Verdict.REGRESSED
    assert lines == (f"performance: {m.reason}",)
    assert lines[0].startswith("performance: store.study 1.") and ", threshold 1.10x, baselines " in lines[0]
    expected = _compare(_rounds(3, 1.2), declared=ExpectedSlowdown("store.*", 0.3, "scanning", "SEC-31"))
    assert _verdict(expected) == (
        Verdict.CHANGED_AS_EXPECTED,
        (f"performance: {expected.reason}: as declared: scanning (SEC-31)",),
    )
    noisy = _metric(PerfDecision.NOISY, reason="store.study baselines differ")
    assert _verdict(noisy) == (
        Verdict.UNCHANGED,
        ("1 case(s) compared, no change outside baseline noise", "warning: performance: store.study baselines differ"),
    )
    assert _verdict(noisy, strict=True) == (Verdict.INCONCLUSIVE, ("performance: store.study baselines differ",))
    lost = compare_metric("find.study", {"baseline-1": _rounds(1), "baseline-2": _rounds(2)}, {}, resamples=10)
    assert _verdict(lost) == (Verdict.INCONCLUSIVE, ("performance: find.study: no kept round in candidate-1",))
    new = compare_metric("find.study", {"baseline-1": {}, "baseline-2": _rounds(2)}, _rounds(3), resamples=10)
    assert _verdict(new)[0] is Verdict.UNCHANGED and _verdict(new)[1][-1].startswith("warning: performance: ")


def test_a_comparison_without_performance_reads_and_writes_as_before() -> None:
    older: Mapping[str, object] = {
        "device": "dev", "baseline": ["runs/baseline-1"], "candidate": "runs/candidate-1", "verdict": "UNCHANGED",
        "reasons": ["1 case(s) compared"], "cases": [], "baseline_variant": "before", "candidate_variant": "after",
        "created": "2026-11-30T12:00:00+00:00", "security": [],
    }  # fmt: skip
    read = Comparison.from_json(older)
    assert read.performance == ()
    assert to_json(read) == older  # no "performance" key appears
    with_perf = Comparison.from_json({**older, "performance": [to_json(_compare(_rounds(3, 1.3)))]})
    again = Comparison.from_json(json.loads(json.dumps(to_json(with_perf))))
    assert again == with_perf and again.performance[0].decision is PerfDecision.REGRESSED


def test_median_replicates_draw_the_same_rounds_for_every_run() -> None:
    # Two runs whose rounds hold one value each, equal to the round number: each replicate's medians must match.
    same = {k: (float(k),) for k in range(1, 12)}
    reps = median_replicates({"a": same, "b": same}, sorted(same), generator("m", 0), 50)
    assert np.array_equal(reps["a"], reps["b"]) and len(set(reps["a"].tolist())) > 5


def test_comparison_json_holds_the_performance_and_reads_back(tmp_path: Path) -> None:
    cases = [make_case("echo/test_echo.py::test_0", status=0)]
    runs = [make_run(cases, replica=1), make_run(cases, replica=2), make_run(cases, "candidate")]
    plain = compare(runs[:2], runs[2], created="2026-11-30T12:00:00+00:00")
    measured = dataclasses.replace(plain, performance=(_compare(_rounds(3, 1.3)), _compare(_rounds(4))))
    for comparison in (plain, measured):
        path = JsonReporter().write(comparison, tmp_path, [r.manifest for r in runs])
        document = json.loads(path.read_text(encoding="utf-8"))
        assert ("performance" in document) is bool(comparison.performance)
        assert Comparison.from_json(document) == comparison


def test_runs_without_common_rounds_are_resampled_each_on_its_own_and_zero_medians_are_too_coarse() -> None:
    named = {"baseline-1": _rounds(1), "baseline-2": _rounds(2)}
    apart = compare_metric("find.study", named, _rounds(3, 1.3, first=101), resamples=RESAMPLES)
    together = compare_metric("find.study", named, _rounds(3, 1.3), resamples=RESAMPLES)
    assert apart.decision is together.decision is PerfDecision.REGRESSED
    assert apart.ratio == together.ratio and apart.per_baseline != together.per_baseline
    zeros = {k: (0.0, 0.0) for k in range(1, 7)}
    coarse = compare_metric("cpu.per_operation", {"baseline-1": zeros, "baseline-2": zeros}, zeros, resamples=10)
    assert (coarse.decision, coarse.unit) == (PerfDecision.UNDECIDED, "s CPU/op")
    assert coarse.reason == "cpu.per_operation: a median is 0 s CPU/op: too coarse to compare"


def test_the_stopping_rule_takes_the_conductors_values_by_run_label() -> None:
    rule = StoppingRule(PerfSettings(bootstrap=RESAMPLES), seed=1)
    clean = {"baseline-1": _rounds(1), "baseline-2": _rounds(2), "candidate-1": _rounds(3)}
    assert rule("find.study", clean) == "decided"
    unsure = {
        "baseline-1": _rounds(1, rounds=3),
        "baseline-2": _rounds(2, rounds=3),
        "candidate-1": _rounds(3, 1.12, rounds=3),
    }
    assert rule("find.study", unsure) is None
    assert rule("find.study", {"baseline-1": _rounds(1), "baseline-2": _rounds(2)}) is None  # no candidate


def test_each_kind_of_metric_has_its_own_default_threshold() -> None:
    settings = PerfSettings(threshold=0.1, memory_threshold=0.3, cpu_threshold=0.4, thresholds={"cpu.*": 0.5})
    assert [settings.threshold_for(m) for m in ("find.study", "memory.peak", "cpu.per_operation")] == [0.1, 0.3, 0.5]
    assert PerfSettings(cpu_threshold=0.4).threshold_for("cpu.per_operation") == 0.4
    assert PerfSettings.of(PerformanceSpec(cpu_threshold=0.25)).cpu_threshold == 0.25


def test_fewer_rounds_than_min_deciding_rounds_never_regress() -> None:
    n = MIN_DECIDING_ROUNDS
    few = _compare(_rounds(3, 1.6, rounds=n - 1), _rounds(1, rounds=n - 1), _rounds(2, rounds=n - 1))
    assert few.decision is PerfDecision.UNDECIDED, few.reason
    assert min(i.low for i in few.per_baseline) > 1.10  # the bound is past the threshold: only the rounds hold it back
    assert f"from only {n - 1} rounds in common, too few to decide (at least {n}" in few.reason
    enough = _compare(_rounds(3, 1.6, rounds=n), _rounds(1, rounds=n), _rounds(2, rounds=n))
    assert enough.decision is PerfDecision.REGRESSED, enough.reason
    # Faster or slower-not-beyond are reports, not verdicts: they stand on few rounds.
    assert (
        _compare(_rounds(3, 0.5, rounds=3), _rounds(1, rounds=3), _rounds(2, rounds=3)).decision is PerfDecision.FASTER
    )


def test_a_comparison_without_performance_metrics_never_imports_numpy(tmp_path: Path) -> None:
    """numpy costs 0.1-0.2 s to import, a fifth to a third of a 106-case `patchgate compare`: only comparing a
    metric loads it."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from harness.compare.engine import compare\n"
        "from harness.report import write_reports\n"
        "import harness.cli, harness.validation\n"
        "from tests.synthetic import synthetic\n"
        "made = synthetic(30)\n"
        "comparison = compare(made.baselines, made.candidate, made.policy)\n"
        "write_reports(comparison, Path(sys.argv[1]), [r.manifest for r in (*made.baselines, made.candidate)])\n"
        "assert comparison.cases and not comparison.performance\n"
        "print('numpy' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=_ROOT
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False", "numpy was imported"
