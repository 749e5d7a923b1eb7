"""The performance parts of the reports: the SVG charts, report.html's section, junit, allure and the terminal."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from harness.compare.engine import compare
from harness.compare.performance import compare_growth, compare_metric, spread
from harness.compare.policy import Policy
from harness.model import CaseRecord, Comparison, Interval, Manifest, MetricComparison, PerfDecision
from harness.profile import ExpectedSlowdown
from harness.report import summary_table, write_reports
from harness.report._charts import TIMES, distributions, ratio
from harness.report._view import build_page
from harness.report.html import render_html
from tests.factories import make_case, make_reference_run
from tests.golden import GOLDEN
from tests.report_charts import SVG, lanes_of, svg

RUNS = ("baseline-1", "baseline-2", "candidate-1")
HOSTILE = "store.<x>&\"'"


def _rounds(scale: float, seed: int, rounds: int = 12, per: int = 6) -> dict[int, list[float]]:
    """Seconds per study around 50 ms times `scale`, a few per cent apart, per round."""
    rng = np.random.default_rng(seed)
    return {k: [float(v) for v in 0.05 * scale * rng.lognormal(0.0, 0.04, per)] for k in range(1, rounds + 1)}


def _measured(metric: str, scale: float, declared: ExpectedSlowdown | None = None) -> MetricComparison:
    """A metric compared by the real statistics: two baselines, a candidate `scale` times as slow."""
    baselines = {"baseline-1": _rounds(1.0, 1), "baseline-2": _rounds(1.0, 2)}
    return compare_metric(metric, baselines, _rounds(scale, 3), declared=declared, resamples=400)


def _decided(
    metric: str, decision: PerfDecision, runs: tuple[str, ...] = RUNS, scales: tuple[float, ...] = ()
) -> MetricComparison:
    """A metric with whatever decision a test needs, its spreads drawn from real values (`scales` times 50 ms)."""
    scales = scales or tuple(1.0 + 0.1 * i for i in range(len(runs)))
    spreads = tuple(spread(run, _rounds(scale, i)) for i, (run, scale) in enumerate(zip(runs, scales, strict=True)))
    bounds = Interval(1.12, 1.30)
    return MetricComparison(
        metric=metric, unit="s/study", ratio=1.2, interval=bounds, per_baseline=(bounds,) * (len(runs) - 1),
        noise=1.01, noise_interval=Interval(0.98, 1.04), threshold=0.1, declared=None, decision=decision,
        reason=f"{metric} 1.20x [1.12, 1.30], {decision.value}", spreads=spreads,
    )  # fmt: skip


def _comparison(*metrics: MetricComparison, regressed_case: bool = False) -> tuple[Comparison, list[Manifest]]:
    def cases(after: bool) -> list[CaseRecord]:
        return [make_case("echo/test_echo.py::test_echo", **{"echo.status": 0xC000 if after and regressed_case else 0})]

    baselines = [make_reference_run(cases(False), "baseline", i) for i in (1, 2)]
    candidate = make_reference_run(cases(True), "candidate")
    comparison = compare(baselines, candidate, Policy(), created="2026-11-28T10:05:00+00:00")
    return dataclasses.replace(comparison, performance=metrics), [r.manifest for r in (*baselines, candidate)]


def _x(root: ET.Element, css: str) -> float:
    (line,) = [e for e in root.iter(f"{SVG}line") if css in e.get("class", "").split()]
    return float(line.get("x1", "nan"))


# --- charts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("replicas", [1, 2, 3])
def test_distributions_draw_one_lane_per_run_with_every_point(replicas: int) -> None:
    runs = (*(f"baseline-{i}" for i in range(1, replicas + 1)), "candidate-1")
    m = _decided("store.study", PerfDecision.SLOWER, runs)
    root = svg(distributions(m))
    lanes = lanes_of(root)
    assert [lane.find(f"{SVG}text").text for lane in lanes] == list(runs)  # type: ignore[union-attr]
    assert [lane.get("class") for lane in lanes][-1] == "pg-lane pg-c"  # the candidate is told apart from baselines
    assert all("pg-b" in (lane.get("class") or "") for lane in lanes[:-1])
    for lane, s in zip(lanes, m.spreads, strict=True):
        assert len(lane.findall(f"{SVG}circle")) == len(s.points) > 0
        assert len([r for r in lane.findall(f"{SVG}rect") if r.get("class") == "pg-box"]) == 1


def test_distributions_share_one_log_axis_so_equal_factors_are_equal_steps() -> None:
    m = _decided("store.study", PerfDecision.REGRESSED, scales=(1.0, 2.0, 4.0))  # each run twice the one before
    root = svg(distributions(m))
    b1, b2, c = [float(e.get("x1", "nan")) for e in root.iter(f"{SVG}line") if e.get("class") == "pg-median"]
    assert b1 < b2 < c
    assert (c - b2) / (b2 - b1) == pytest.approx(1.0, abs=0.1)  # linear: 2.0


def test_a_run_without_values_gets_an_empty_lane_not_a_broken_chart() -> None:
    m = compare_metric("find.study", {"baseline-1": _rounds(1, 1), "baseline-2": _rounds(1, 2)}, {})
    assert m.decision is PerfDecision.MISSING
    lanes = lanes_of(svg(distributions(m)))
    assert len(lanes) == 3 and not lanes[2].findall(f"{SVG}circle")
    assert "no kept round" in "".join(lanes[2].itertext())


def test_the_ratio_chart_places_the_interval_against_one_and_the_threshold() -> None:
    slow = _measured("store.study", 1.5)
    fast = _measured("store.study", 0.7)
    assert (slow.decision, fast.decision) == (PerfDecision.REGRESSED, PerfDecision.FASTER)
    for m in (slow, fast):
        root = svg(ratio(m))
        one, threshold = _x(root, "pg-zero"), _x(root, "pg-threshold")
        (bar,) = [r for r in root.iter(f"{SVG}rect") if "pg-bar" in r.get("class", "")]
        start, end = float(bar.get("x", "nan")), float(bar.get("x", "nan")) + float(bar.get("width", "nan"))
        assert one < threshold
        if m is slow:
            assert start > threshold and "d-regressed" in (bar.get("class") or "")
        else:
            assert end < one and "d-faster" in (bar.get("class") or "")
        against = [e for e in root.iter(f"{SVG}line") if e.get("class") == "pg-against"]
        assert len(against) == len(m.per_baseline) == 2


def test_a_declared_slowdown_gets_its_own_line_right_of_the_threshold() -> None:
    declared = ExpectedSlowdown("store.*", 0.30, "on-access scanning", ticket="SEC-31")
    m = _measured("store.study", 1.2, declared=declared)
    root = svg(ratio(m))
    assert _x(root, "pg-declared") > _x(root, "pg-threshold") > _x(root, "pg-zero")
    assert f"declared 1.30{TIMES}" in "".join(root.itertext())


def test_memory_growth_is_drawn_as_a_difference_on_a_linear_axis_around_zero() -> None:
    def points(slope: float) -> dict[int, list[tuple[float, float]]]:
        return {k: [(10.0 * k + i, 5e7 + slope * (10 * k + i) + 3000 * ((k * 7 + i) % 3)) for i in range(3)]
                for k in range(1, 13)}  # fmt: skip

    m = compare_growth({"baseline-1": points(0), "baseline-2": points(0)}, points(250_000), limit=65536)
    assert m.decision is PerfDecision.REGRESSED and m.unit == "bytes/association"
    root = svg(ratio(m))
    zero, limit = _x(root, "pg-zero"), _x(root, "pg-threshold")
    (bar,) = [r for r in root.iter(f"{SVG}rect") if "pg-bar" in r.get("class", "")]
    # Linear: the limit (65.5 kB) sits about a quarter of the way from 0 to the growth (250 kB), not a ratio's 1x.
    assert zero < limit < float(bar.get("x", "nan"))
    assert 0.2 < (limit - zero) / (float(bar.get("x", "nan")) - zero) < 0.32
    text = "".join(root.itertext())
    assert "limit +65.5 kB" in text and TIMES not in text
    assert len(lanes_of(svg(distributions(m)))) == 3


def test_charts_hold_escaped_text_and_numbers_only() -> None:
    m = dataclasses.replace(
        _decided(HOSTILE, PerfDecision.REGRESSED, ("<b>baseline</b>", "baseline-2", "candidate-1")), unit="s/op"
    )
    for chart in (distributions(m), ratio(m)):
        text = str(chart)
        assert "<x>" not in text and "<b>" not in text and "store.&lt;x&gt;&amp;&#34;&#39;" in text
        assert "<script" not in text and "href" not in text and "url(" not in text
        root = svg(chart)
        assert root.findtext(f"{SVG}title", "").startswith(HOSTILE + ":")  # back as text once parsed
        # Every attribute value is a number, a fixed word or a class list: nothing from the records.
        for element in root.iter():
            for name, value in element.attrib.items():
                assert name in ("class", "role", "aria-label", "text-anchor") or re.fullmatch(r"[-0-9. ]+", value), (
                    name,
                    value,
                )


# --- report.html -----------------------------------------------------------------------------------


def test_the_section_lists_metrics_worst_decision_first() -> None:
    metrics = [_decided(f"m.{d.value}", d) for d in reversed(list(PerfDecision))]
    comparison, runs = _comparison(*metrics)
    section = build_page(comparison, runs).performance
    assert section is not None
    worst_first = ["regressed", "missing", "undecided", "noisy", "expected", "slower", "faster", "unchanged"]
    assert [r.decision for r in section.rows] == worst_first
    assert section.said.startswith("8 metrics: 1 regressed, 1 missing, 1 undecided")
    page = render_html(comparison, runs)
    shown = re.findall(r"<tbody id='metric-\d+'>\s*<tr><td><code>m\.(\w+)</code>", page)
    assert shown == worst_first
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="pg-chart ') == 2 * len(metrics)


def test_the_section_shows_ratio_interval_threshold_declared_noise_and_rates() -> None:
    declared = ExpectedSlowdown("store.*", 0.30, "on-access scanning", ticket="SEC-31")
    m = dataclasses.replace(
        _measured("store.study", 1.2, declared=declared),
        rates={"baseline-1 images/s": 93.97, "baseline-1 MB/s": 0.878, "candidate-1 images/s": 77.55},
    )
    comparison, runs = _comparison(m)
    (row,) = build_page(comparison, runs).performance.rows  # type: ignore[union-attr]
    low = min(i.low for i in m.per_baseline)
    high = max(i.high for i in m.per_baseline)
    assert row.result == f"{m.ratio:.2f}{TIMES} [{low:.2f}, {high:.2f}]"
    assert f"{m.ratio:.2f}x [{low:.2f}, {high:.2f}]" in m.reason  # the verdict's reason quotes the same bounds
    assert row.threshold == f"1.10{TIMES} (10 % slower)"
    assert row.declared == f"declared up to 1.30{TIMES}: on-access scanning (SEC-31)"
    assert row.noise.startswith(f"baselines {m.noise:.2f}{TIMES} [")
    assert [(r.run, r.rates) for r in row.runs] == [
        ("baseline-1", "94.0 images/s, 0.88 MB/s"),
        ("baseline-2", ""),
        ("candidate-1", "77.5 images/s"),
    ]
    assert [(r.values, r.rounds) for r in row.runs] == [(72, 12)] * 3
    page = render_html(comparison, runs)
    assert "on-access scanning (SEC-31)" in page and "94.0 images/s, 0.88 MB/s" in page


def test_a_hostile_metric_name_is_escaped_in_the_page() -> None:
    comparison, runs = _comparison(_decided(HOSTILE, PerfDecision.UNDECIDED))
    page = render_html(comparison, runs)
    assert "store.&lt;x&gt;" in page and "<x>" not in page
    assert "<script" not in page


def test_a_metric_that_could_not_be_compared_shows_why_and_no_ratio_chart() -> None:
    m = compare_metric("find.study", {"baseline-1": _rounds(1, 1), "baseline-2": _rounds(1, 2)}, {})
    comparison, runs = _comparison(m)
    (row,) = build_page(comparison, runs).performance.rows  # type: ignore[union-attr]
    assert row.ratio is None and row.result == "not compared" and row.noise == "—"
    page = render_html(comparison, runs)
    assert m.reason in page and page.count('class="pg-chart ') == 1


def test_without_performance_the_page_has_no_section_and_no_chart_styles() -> None:
    comparison, runs = _comparison()
    page = render_html(comparison, runs)
    assert build_page(comparison, runs).performance is None
    assert "id='performance'" not in page and ".pg-chart" not in page and 'class="pg-chart' not in page
    with_one = render_html(*_comparison(_decided("store.study", PerfDecision.UNCHANGED)))
    assert "id='performance'" in with_one and ".pg-chart" in with_one


# Every report of these recorded comparisons, as written before the performance section existed: a comparison
# without performance must give them byte for byte (re-record only when a report is meant to change; report.html
# was re-recorded when it grouped differences by test, junit.xml and allure-results when they gained real times,
# one-line failures and severities: issue 13; allure-results when msgspec wrote each result on one line, session 29:
# every file parses to the same values as before).
UNCHANGED = {
    "synthetic-106": {
        "report.html": "132b52b7c60d18daa62b55d78924aa07e8dab96433b18a29d3cd7a1e954750ef",
        "junit.xml": "6e6d2e0e46ce5727d825658313992667f4154f6b97c0c697a6e77494ef8ed0be",
        "terminal": "35d74a284a723215ca10556d1ad8bb08b130a4302000bd314758d7f42e0aaac3",
        "allure-results": "e1c0e6e1d6446b69d13b02dd957fa4beb6cdf329721a1e37300bee1bf58399ec",
    },
    "e867b1e0ec8f": {
        "report.html": "394f5dc6c4a8e2f846556bc773d705e354e3be19c9e487caa1931748cb8407aa",
        "junit.xml": "d8b550f53a50f25e9311f37456a4c8c2ff2c4d9a84d29c2fac17bdd5e07b8ea5",
        "terminal": "eb6374a924d55e65c5982fbcf1ccb5a3d922414faaa03dd3dd7dea82315737a5",
        "allure-results": "85301b30db3ea2e9e7e1f7d8a542c64edd549ca30e5914c767390877e696aa7e",
    },
}


@pytest.mark.parametrize("name", sorted(UNCHANGED))
def test_reports_without_performance_are_byte_identical_to_before(tmp_path: Path, name: str) -> None:
    data = json.loads((GOLDEN / f"{name}.comparison.json").read_text(encoding="utf-8"))
    comparison = Comparison.from_json(data)
    assert not comparison.performance
    paths = write_reports(comparison, tmp_path, [Manifest.from_json(m) for m in data["runs"]])
    allure = hashlib.sha256()
    for path in sorted(paths["allure"].iterdir()):
        allure.update(f"{path.name}\n".encode() + path.read_bytes())
    found = {
        "report.html": hashlib.sha256(paths["html"].read_bytes()).hexdigest(),
        "junit.xml": hashlib.sha256(paths["junit"].read_bytes()).hexdigest(),
        # --verbose: the listing of before the grouped summary (issue 13), which the recorded hashes hold
        "terminal": hashlib.sha256(summary_table(comparison, verbose=True).encode()).hexdigest(),
        "allure-results": allure.hexdigest(),
    }
    assert found == UNCHANGED[name], f"a report without performance changed; if that is meant, record: {found}"


# --- junit, allure, terminal ---------------------------------------------------------------------


def test_junit_has_a_testcase_per_metric_failing_when_regressed(tmp_path: Path) -> None:
    metrics = [_measured("store.study", 1.5), _measured("find.study", 1.0), _decided("echo", PerfDecision.UNDECIDED)]
    assert [m.decision for m in metrics] == [PerfDecision.REGRESSED, PerfDecision.UNCHANGED, PerfDecision.UNDECIDED]
    comparison, runs = _comparison(*metrics)
    suite = ET.parse(write_reports(comparison, tmp_path, runs)["junit"]).getroot().find("testsuite")
    assert suite is not None
    cases = {f"{c.get('classname')}.{c.get('name')}": c for c in suite.iter("testcase")}
    assert set(cases) == {
        "echo.test_echo.test_echo",
        "performance.store.study",
        "performance.find.study",
        "performance.echo",
    }
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "1", "1")
    failure = cases["performance.store.study"].find("failure")
    assert failure is not None and failure.get("message") == f"regressed: {metrics[0].reason}"
    assert "\n" not in (failure.get("message") or "")
    assert re.search(r"\ncandidate-1: median 7\d(\.\d)? ms of 72 values", failure.text or "")  # 1.5 x 50 ms
    assert cases["performance.find.study"].find("failure") is None
    assert cases["performance.find.study"].findtext("system-out", "").startswith("unchanged: find.study")
    assert cases["performance.echo"].find("skipped") is not None


def test_allure_has_a_result_per_metric_with_its_charts_as_svg(tmp_path: Path) -> None:
    metrics = [_measured("store.study", 1.5), _decided(HOSTILE, PerfDecision.UNCHANGED)]
    comparison, runs = _comparison(*metrics)
    folder = write_reports(comparison, tmp_path, runs)["allure"]
    results = [json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*-result.json")]
    found = {r["fullName"]: r for r in results if r["fullName"].startswith("performance.")}
    assert set(found) == {"performance.store.study", f"performance.{HOSTILE}"}
    assert found["performance.store.study"]["status"] == "failed"
    assert found[f"performance.{HOSTILE}"]["status"] == "passed"
    for result in found.values():
        assert [a["name"] for a in result["attachments"]] == ["distributions", "ratio"]
        for attachment in result["attachments"]:
            assert attachment["type"] == "image/svg+xml"
            text = (folder / attachment["source"]).read_text(encoding="utf-8")
            root = ET.fromstring(text.encode())
            assert root.tag == f"{SVG}svg" and ".pg-c" in root.findtext(f"{SVG}style", "")  # styled on its own
            assert "<script" not in text and "href" not in text


def test_the_terminal_names_each_moved_metric_once() -> None:
    regressed, slower = _measured("store.study", 1.5), _decided("find.study", PerfDecision.SLOWER)
    unchanged = _measured("echo", 1.0)
    # No case regressed: the verdict's reasons are printed, and they already name the regressed metric.
    comparison, _ = _comparison(regressed, slower, unchanged)
    comparison = dataclasses.replace(comparison, reasons=(f"performance: {regressed.reason}",))
    text = summary_table(comparison)
    assert "Performance: 1 regressed, 1 slower, 1 unchanged" in text
    assert text.count(regressed.reason) == 1 and text.count(slower.reason) == 1
    assert unchanged.reason not in text
    # A case regressed too: the reasons are not printed, so the metric's line is.
    comparison, _ = _comparison(regressed, slower, regressed_case=True)
    comparison = dataclasses.replace(comparison, reasons=("regressed: echo", f"performance: {regressed.reason}"))
    text = summary_table(comparison)
    assert text.count(regressed.reason) == 1
    assert text.index(f"regressed  {regressed.reason}") < text.index(f"slower     {slower.reason}")
