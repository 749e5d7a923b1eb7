"""The at-a-glance charts: case durations per suite before and after, and the security posture as one bar."""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from markupsafe import Markup

from harness.model import CaseComparison, CaseStatus, Direction, Outcome, Security, SecurityChange
from harness.report._case import suite_of
from harness.report._glance import (
    CSS,
    DOTS_PER_ROW,
    FLOOR,
    POSTURE,
    SuiteTimes,
    durations_chart,
    posture_chart,
    posture_counts,
    suite_times,
)

SVG = ""  # inline in HTML: no namespace
HOSTILE = "<script>&\"'"


def _case(case: str, before: tuple[float | None, ...], after: float | None) -> CaseComparison:
    return CaseComparison(
        case, CaseStatus.UNCHANGED, Outcome.PASSED, Outcome.PASSED, durations_before=before, duration_after=after
    )


def _parse(chart: Markup) -> ET.Element:
    root = ET.fromstring(str(chart))
    assert root.tag == f"{SVG}svg"
    return root


def _dots(root: ET.Element) -> dict[str, list[tuple[float, float]]]:
    """Each run class's case dots as (cx, cy), the legend's swatches left out."""
    runs: dict[str, list[tuple[float, float]]] = {}
    for group in root.iter(f"{SVG}g"):
        for dot in group.findall(f"{SVG}circle[@class='gl-dot']"):
            run = group.get("class", "").split()[-1]
            runs.setdefault(run, []).append((float(dot.get("cx", "nan")), float(dot.get("cy", "nan"))))
    return runs


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_suite_of_is_the_first_directory() -> None:
    assert suite_of("storage/test_store.py::test_x[MR-explicit]") == "storage"
    assert suite_of("a/b/test_c.py::TestD::test_e") == "a"
    assert suite_of("test_echo.py::test_echo") == "test_echo"
    assert suite_of("win\\test_w.py::t") == "win"


def test_suite_times_group_by_suite_in_order_of_first_appearance() -> None:
    cases = [
        _case("storage/test_store.py::test_a", (0.5, 0.6), 0.7),
        _case("echo/test_echo.py::test_echo", (0.01, None), 0.02),
        _case("storage/test_store.py::test_b", (None, 0.2), None),
        _case("mwl/test_mwl.py::test_q", (None, None), None),  # no duration anywhere: left out
        _case("old/test_old.py::test_o", (), None),  # a comparison made before durations were kept
    ]
    assert suite_times(cases) == (
        SuiteTimes("storage", ((0.5,), (0.6, 0.2)), (0.7,)),
        SuiteTimes("echo", ((0.01,), ()), (0.02,)),
    )
    storage, echo = suite_times(cases)
    assert storage.total_before == pytest.approx((0.5 + 0.8) / 2) and storage.total_after == pytest.approx(0.7)
    assert echo.total_before == pytest.approx(0.01)  # the replica without the suite is no 0 s in the mean
    assert SuiteTimes("x", ((), ()), ()).total_before is None and SuiteTimes("x", (), ()).total_after is None


def test_one_dot_per_case_duration_per_run() -> None:
    cases = [
        _case(f"s{i % 3}/test_t.py::test_{i}", (0.01 * (i + 1), 0.012 * (i + 1)), 0.02 * (i + 1)) for i in range(30)
    ]
    cases.append(_case("s0/test_t.py::test_none", (None, 0.5), None))
    root = _parse(durations_chart(suite_times(cases)))
    dots = _dots(root)
    assert {k: len(v) for k, v in dots.items()} == {"pg-b1": 30, "pg-b2": 31, "pg-c": 30}
    texts = _texts(root)
    assert {"s0", "s1", "s2", "baseline 1", "baseline 2", "candidate", "total per suite"} <= set(texts)


def test_the_log_axis_orders_durations_and_spaces_decades_evenly() -> None:
    durations = (0.001, 0.01, 0.1, 1.0, 30.0)
    chart = durations_chart([SuiteTimes("storage", (durations,), tuple(reversed(durations)))])
    root = _parse(chart)
    dots = _dots(root)
    xs = [x for x, _ in dots["pg-b1"]]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    steps = [b - a for a, b in itertools.pairwise(xs)]
    assert steps[0] == pytest.approx(steps[1], abs=0.02) == pytest.approx(steps[2], abs=0.02)
    assert steps[3] == pytest.approx(steps[0] * math.log10(30), abs=0.02)
    assert sorted(x for x, _ in dots["pg-c"]) == xs  # the same durations at the same places
    ticks = [t for t in _texts(root) if t.endswith("s")]
    assert ticks == ["1 ms", "10 ms", "100 ms", "1 s", "10 s", "100 s"]
    # The candidate's row is under the baseline's, in the same lane.
    assert min(y for _, y in dots["pg-c"]) > max(y for _, y in dots["pg-b1"])
    assert "31.1 s \u2192 31.1 s (+0 %)" in _texts(root)


def test_a_zero_duration_sits_at_the_axis_floor() -> None:
    root = _parse(durations_chart([SuiteTimes("s", ((0.0, FLOOR / 10, 0.002),), (0.0,))]))
    dots = _dots(root)
    floor_x = dots["pg-b1"][0][0]
    assert [x for x, _ in dots["pg-b1"]][:2] == [floor_x, floor_x] and dots["pg-c"][0][0] == floor_x
    assert dots["pg-b1"][2][0] > floor_x
    assert "100 µs" in _texts(root)  # the axis starts at the floor, and says so
    # Only zeros: an axis of one decade from the floor, no division by zero, no total to compare with.
    only_zero = _parse(durations_chart([SuiteTimes("s", ((0.0,),), (0.0,))]))
    assert "0 s \u2192 0 s" in _texts(only_zero)
    assert all(math.isfinite(x) for run in _dots(only_zero).values() for x, _ in run)


def test_a_hostile_suite_name_stays_text() -> None:
    chart = durations_chart(suite_times([_case(f"{HOSTILE}/test_x.py::test_y", (0.1,), 0.2)]))
    root = _parse(chart)
    assert HOSTILE in _texts(root)
    assert not list(root.iter("script")) and not list(root.iter(f"{SVG}script"))
    assert "<script>" not in str(chart) and "&lt;script&gt;&amp;&#34;&#39;" in str(chart)


def test_a_long_suite_name_is_shortened_and_whole_in_the_title() -> None:
    name = "a-suite-with-a-very-long-name"
    root = _parse(durations_chart([SuiteTimes(name, ((0.1,),), (0.2,))]))
    assert "a-suite-with-a\u2026" in _texts(root) and name not in _texts(root)
    assert any(name in (t.text or "") for t in root.iter(f"{SVG}title"))


def test_nothing_to_draw_is_no_chart() -> None:
    assert durations_chart([]) == Markup("")
    assert durations_chart(suite_times([_case("s/test_t.py::test_a", (None, None), None)])) == Markup("")
    assert posture_chart([]) == Markup("") == posture_chart([("loosened", 0), ("stayed", 0)])


def test_the_posture_bar_in_order_with_zero_counts_left_out() -> None:
    chart = posture_chart([("stayed", 40), ("noisy", 0), ("tightened", 3), ("loosened", 1), ("changed", 2)])
    root = _parse(chart)
    groups = [g for g in root.iter(f"{SVG}g")]
    assert [g.get("class") for g in groups] == ["p-loosened", "p-tightened", "p-changed", "p-stayed"]
    assert _texts(root) == ["1 loosened", "3 tightened", "2 changed", "40 stayed"]
    bars = [g.findall(f"{SVG}rect")[0] for g in groups]
    widths = [float(b.get("width", "nan")) for b in bars]
    xs = [float(b.get("x", "nan")) for b in bars]
    assert xs == sorted(xs)
    assert widths[3] > widths[1] > widths[2] > widths[0] >= 3.0  # proportional, and the smallest still seen
    assert (widths[3] - 3) / (widths[1] - 3) == pytest.approx(40 / 3, rel=1e-3)
    labels = [float(t.get("x", "nan")) for t in root.iter(f"{SVG}text")]
    assert labels == sorted(labels) and len(set(labels)) == 4  # pushed apart, never on top of each other


def test_the_posture_refuses_an_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown posture worse"):
        posture_chart([("worse", 1)])


def test_posture_counts_from_the_security_changes() -> None:
    def change(direction: Direction) -> SecurityChange:
        return SecurityChange("tls/test_tls.py::t", "tls.accepted", Security.EXPOSURE, True, False, direction)

    changes = [change(Direction.UNCHANGED)] * 5 + [change(Direction.LOOSENED), change(Direction.NOISY)]
    assert posture_counts(changes) == (("loosened", 1), ("tightened", 0), ("changed", 0), ("noisy", 1), ("stayed", 5))
    texts = _texts(_parse(posture_chart(posture_counts(changes))))
    assert texts == ["1 loosened", "1 noisy", "5 stayed"]


def test_sixteen_suites_fit_a_third_of_a_printed_a4_page() -> None:
    """The regression demo's 259 cases in 16 suites: the chart is 640 px wide at most (_glance.css), and an A4
    page's printable height (277 mm) is 1047 CSS px, so a third of it is 349 px."""
    cases = [_case(f"suite{i % 16}/test_t.py::test_{i}", (0.001 * i, 0.001 * i), 0.0011 * i) for i in range(1, 260)]
    root = _parse(durations_chart(suite_times(cases)))
    assert root.get("viewBox") == f"0 0 640.00 {root.get('height')}"
    assert float(root.get("height", "nan")) <= 1047 / 3
    assert sum(len(v) for v in _dots(root).values()) == 3 * 259


def test_every_class_the_charts_use_is_styled() -> None:
    """_glance.css styles each class the SVG carries but the two that only name a part for a reader's own CSS."""
    css = (Path(__file__).resolve().parents[2] / "harness" / "report" / "templates" / CSS).read_text(encoding="utf-8")
    styled = set(re.findall(r"\.([a-z][\w-]*)", css))
    charts = [
        durations_chart([SuiteTimes("s", ((0.1,), (0.2,), (0.3,)), (0.4,))]),
        posture_chart([(name, 1) for name in POSTURE]),
    ]
    used = {c for chart in charts for m in re.findall(r'class="([^"]+)"', str(chart)) for c in m.split()}
    assert used - styled == {"gl-durations", "gl-lane"}


def test_a_big_suite_draws_its_distribution_not_every_case() -> None:
    many = tuple(float(i) / 1000 for i in range(1, 5001))
    svg = durations_chart([SuiteTimes("storage", (many,), many[:10])])
    root = ET.fromstring(str(svg))
    dots = [c for c in root.iter("circle") if c.get("class") == "gl-dot"]
    assert len(dots) == DOTS_PER_ROW + 10  # the baseline's 5,000 thinned, the candidate's 10 as they are
    xs = sorted(float(c.get("cx", "0")) for c in dots[:DOTS_PER_ROW])
    assert xs == sorted(xs) and len(set(xs)) > DOTS_PER_ROW // 2  # spread over the range, not one cluster
    assert "baseline 1 5000 cases" in svg  # the lane still counts, and totals, every case
