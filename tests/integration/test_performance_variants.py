"""The reference device's performance variants: each is REGRESSED naming its metric, with the metric's interval."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.demo import demo_profile
from harness.model import CaseStatus, MetricComparison, PerfDecision, Verdict
from harness.validation import run_validation
from simulators.reference import PERFORMANCE_METRICS
from tests.report_charts import SVG, lanes_of, svg
from tests.report_tables import table_rows

LEAK = 262144  # bytes simulators.reference's `leak` keeps per association
# For each performance variant, the metric that must be named as regressed.
MUST_REGRESS = {"slow-store": "store.study", "leak": "memory.growth"}
# A 10 % slower C-FIND sits on the default threshold itself: whether it is detected is a question of
# power, measured over many validations by scripts/bench_perf_power.py (docs/benchmarks.md), not here.
BY_BENCHMARK = {"slow-find"}


def test_every_performance_variant_is_held() -> None:
    assert set(PERFORMANCE_METRICS) == set(MUST_REGRESS) | BY_BENCHMARK


@pytest.mark.parametrize("variant", sorted(MUST_REGRESS))
def test_a_performance_variant_is_regressed_naming_its_metric(variant: str, tmp_path: Path) -> None:
    # `--demo VARIANT` switches the performance phase on for the variant's metrics (harness.demo)
    validation = run_validation(demo_profile(candidate=variant), tmp_path, replicas=1)
    comparison = validation.comparison
    assert comparison.verdict is Verdict.REGRESSED, comparison.reasons
    by_metric = {m.metric: m for m in comparison.performance}
    named = by_metric[MUST_REGRESS[variant]]
    assert named.decision is PerfDecision.REGRESSED, named.reason
    # Beyond the threshold at 95 %, not only as a point estimate (memory.growth: bytes per association over the limit)
    bar = named.threshold if variant == "leak" else 1 + named.threshold
    assert named.interval.low > bar, named.reason
    # The verdict's reasons name the metric with its interval, e.g. "store.study 1.23x [1.14, 1.31], threshold 1.10x"
    line = next(r for r in comparison.reasons if MUST_REGRESS[variant] + " " in r)
    assert f"[{'+' if variant == 'leak' else ''}" in line and ("threshold" in line or "limit" in line), line
    # Only the performance phase shows it: no functional case changed
    assert [c.case for c in comparison.cases if c.status is CaseStatus.REGRESSED] == []
    if variant == "leak":  # the growth it measured is the leak's size, not just "more"
        assert 0.8 * LEAK < named.ratio < 1.3 * LEAK, named.reason
    _report_draws_it(validation.reports["html"].read_text(encoding="utf-8"), named, line)


def _report_draws_it(page: str, named: MetricComparison, line: str) -> None:
    """report.html as a reader sees the metric: its row decided, each run's values drawn, the verdict's interval."""
    (row,) = [r for r in table_rows(page, "performance") if r and r[0].split()[:1] == [named.metric]]
    assert row[1].split()[0] == "regressed", row
    body = re.search(rf"<tbody id='[^']*'>\s*<tr><td><code>{re.escape(named.metric)}</code>.*?</tbody>", page, re.S)
    assert body is not None, named.metric
    dist, ratio = (svg(chart) for chart in re.findall(r"<svg .*?</svg>", body.group(0), re.S))
    drawn = lanes_of(dist)
    assert [lane.find(f"{SVG}text").text for lane in drawn] == [s.run for s in named.spreads]  # type: ignore[union-attr]
    for lane, spread in zip(drawn, named.spreads, strict=True):  # the run's values as dots (at most 200 of them)
        assert len(lane.findall(f"{SVG}circle")) == min(spread.n, 200) > 0, spread.run
    (bar,) = [r for r in ratio.iter(f"{SVG}rect") if "pg-bar" in r.get("class", "").split()]
    assert "d-regressed" in bar.get("class", "").split()
    if named.metric == "store.study":  # a ratio: the chart states the bounds the verdict's reason quotes
        quoted = re.search(r"\[(\d+\.\d\d), (\d+\.\d\d)\]", line)
        assert quoted is not None, line
        assert f"[{quoted[1]}\u00d7, {quoted[2]}\u00d7]" in ratio.get("aria-label", ""), (line, ratio.get("aria-label"))
