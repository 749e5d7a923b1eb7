"""Inline SVG charts read at a glance: case durations before and after per suite, and the security posture.

Built as `_charts` builds the performance charts: every attribute taken from data is a number formatted `%.2f`,
every label goes through `markupsafe.escape`, so a hostile suite name stays text. No script, no link, no
external resource; colours are CSS classes styled by templates/_glance.css: runs by colours that mean before
(blues `pg-b1`, `pg-b2`) and after (orange `pg-c`), never good or bad; the posture by its judgement (`p-loosened`
...), as the posture section colours it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from harness.model import CaseComparison, Direction, SecurityChange
from harness.report._case import suite_of
from harness.report._charts import quantity

__all__ = [
    "CSS",
    "DOTS_PER_ROW",
    "FLOOR",
    "POSTURE",
    "SuiteTimes",
    "durations_chart",
    "posture_chart",
    "posture_counts",
    "suite_times",
]

CSS = "_glance.css"  # the charts' styles, in templates/
FLOOR = 1e-4  # seconds: the durations axis starts no lower; a shorter case (0 s included) is drawn at its start
# The posture's segments in reading order (what loosened first, what stayed last), each its CSS class p-<name>.
POSTURE = ("loosened", "tightened", "changed", "noisy", "stayed")

DOTS_PER_ROW = 200  # a run's dots in one suite's lane at most (see _thinned); the totals count every case
_WIDTH = 640.0  # px: fits the report's screen width and, scaled down, a printed A4 page
_LABEL = 96.0  # px left of the plot for the suite's name
_PLOT = 330.0  # px: the log axis of case durations
_TOTAL_AT = _LABEL + _PLOT + 12.0  # px: where the totals' bars start
_BAR = 50.0  # px: the longest total's bar
_HEAD = 16.0  # px above the lanes for the legend
_LANE = 16.0  # px per suite: the baseline's dots in its upper half, the candidate's in its lower half
_AXIS = 20.0  # px under the lanes for the ticks and their labels
_NAME = 15  # characters of a suite's name shown; the whole name is in the lane's title
_MINUS = "\u2212"
_ARROW = "\u2192"
_Scale = Callable[[float], float]


@dataclass(frozen=True)
class SuiteTimes:
    """One suite's case durations in seconds: per baseline replica (in replica order), and the candidate's."""

    suite: str
    before: tuple[tuple[float, ...], ...]  # one tuple per baseline replica; empty: no case of it ran there
    after: tuple[float, ...]

    @property
    def total_before(self) -> float | None:
        """The mean over the replicas that ran a case of the suite of their summed durations; None: none did."""
        totals = [sum(r) for r in self.before if r]
        return sum(totals) / len(totals) if totals else None

    @property
    def total_after(self) -> float | None:
        """The candidate's summed durations; None: it ran no case of the suite."""
        return sum(self.after) if self.after else None


def suite_times(cases: Sequence[CaseComparison]) -> tuple[SuiteTimes, ...]:
    """The cases' durations grouped by suite, suites in order of first appearance; a case without any duration
    (a comparison made before durations were kept) is left out, and so is a suite of such cases only."""
    replicas = max((len(c.durations_before) for c in cases), default=0)
    before: dict[str, list[list[float]]] = {}
    after: dict[str, list[float]] = {}
    for c in cases:
        if c.duration_after is None and all(d is None for d in c.durations_before):
            continue
        suite = suite_of(c.case)
        runs = before.setdefault(suite, [[] for _ in range(replicas)])
        for i, d in enumerate(c.durations_before):
            if d is not None:
                runs[i].append(d)
        if c.duration_after is not None:
            after.setdefault(suite, []).append(c.duration_after)
    return tuple(
        SuiteTimes(suite, tuple(tuple(r) for r in runs), tuple(after.get(suite, ()))) for suite, runs in before.items()
    )


def durations_chart(suites: Sequence[SuiteTimes]) -> Markup:
    """One lane per suite on a shared log-scale seconds axis: each case a dot, the baseline replicas' (blues)
    above the candidate's (orange); right of it each suite's total before (mean of the replicas) and after, as
    bars on a shared linear scale and in words. Empty Markup when there is no duration to draw."""
    values = [v for s in suites for v in (*(x for r in s.before for x in r), *s.after) if math.isfinite(v)]
    if not values:
        return Markup("")
    replicas = max(len(s.before) for s in suites)
    scale, ticks, lo = _log_axis(values)
    most = max((t for s in suites for t in (s.total_before, s.total_after) if t), default=0.0)
    bottom = _HEAD + _LANE * len(suites)
    height = bottom + _AXIS
    title = (
        f"Case durations per suite, log scale from {quantity(lo, 's/op')}: each dot one case, the baseline "
        f"replicas' above the candidate's; then each suite's total time before (mean of the replicas) and after"
    )
    parts = [
        f'<svg class="gl-chart gl-durations" width="{_WIDTH:.2f}" '
        f'height="{height:.2f}" viewBox="0 0 {_WIDTH:.2f} {height:.2f}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>",
        _legend(replicas),
    ]
    for i in range(len(suites)):
        if i % 2:  # every other lane shaded, so a suite's dots read as one row
            y = _HEAD + _LANE * i
            parts.append(f'<rect class="gl-stripe" x="0.00" y="{y:.2f}" width="{_WIDTH:.2f}" height="{_LANE:.2f}"/>')
    for t in ticks:
        x = scale(t)
        parts.append(f'<line class="gl-grid" x1="{x:.2f}" y1="{_HEAD:.2f}" x2="{x:.2f}" y2="{bottom:.2f}"/>')
    for i, s in enumerate(suites):
        parts.append(_suite_lane(s, _HEAD + _LANE * i, scale, lo, most))
    parts.append(f'<g class="gl-axis"><line x1="{_LABEL:.2f}" y1="{bottom:.2f}" x2="{_LABEL + _PLOT:.2f}" ')
    parts.append(f'y2="{bottom:.2f}"/>')
    for t in ticks:
        x = scale(t)
        parts.append(f'<line x1="{x:.2f}" y1="{bottom:.2f}" x2="{x:.2f}" y2="{bottom + 3:.2f}"/>')
        parts.append(_text("gl-tick", x, bottom + 13, quantity(t, "s/op"), "middle"))
    parts.append("</g></svg>")
    return Markup("".join(parts))


def posture_counts(changes: Sequence[SecurityChange]) -> tuple[tuple[str, int], ...]:
    """The security changes counted for `posture_chart`, in its order (an unchanged observation "stayed")."""
    count = Counter("stayed" if c.direction is Direction.UNCHANGED else c.direction.value for c in changes)
    return tuple((name, count[name]) for name in POSTURE)


def posture_chart(counts: Sequence[tuple[str, int]]) -> Markup:
    """One horizontal bar of the security observations, split loosened / tightened / changed / noisy / stayed in
    that order whatever the order given, widths proportional to the counts, a zero count left out; under it each
    segment's count and word, beside a swatch of its colour. Empty Markup when every count is zero."""
    given = dict(counts)
    unknown = sorted(set(given) - set(POSTURE))
    if unknown:
        raise ValueError(f"posture_chart: unknown posture {', '.join(unknown)} (one of {', '.join(POSTURE)})")
    shown = [(name, given[name]) for name in POSTURE if given.get(name, 0) > 0]
    total = sum(n for _, n in shown)
    if not total:
        return Markup("")
    height = 44.0
    said = ", ".join(f"{n} {name}" for name, n in shown)
    title = f"Security posture: {total} observation{'' if total == 1 else 's'}: {said}"
    parts = [
        f'<svg class="gl-chart gl-posture" width="{_WIDTH:.2f}" '
        f'height="{height:.2f}" viewBox="0 0 {_WIDTH:.2f} {height:.2f}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
    ]
    # Each segment at least 3 px wide, so one loosened among hundreds that stayed is still seen; the rest shares.
    least = 3.0
    room = _WIDTH - 2.0 - least * len(shown)
    x, label_x = 1.0, 1.0
    for name, n in shown:
        width = least + room * n / total
        words = f"{n} {name}"
        parts.append(
            f'<g class="p-{name}"><title>{escape(words)}</title><rect class="gl-segment" x="{x:.2f}" y="2.00" '
            f'width="{width:.2f}" height="18.00"/>'
        )
        # The label under its segment's start, pushed right past the label before it (≈6 px a character).
        at = max(x, label_x)
        parts.append(f'<rect class="gl-segment" x="{at:.2f}" y="28.00" width="9.00" height="9.00"/>')
        parts.append(_text("gl-label", at + 12, 36.5, words, "start"))
        label_x = at + 12 + 6.2 * len(words) + 12
        parts.append("</g>")
        x += width
    parts.append("</svg>")
    return Markup("".join(parts))


def _legend(replicas: int) -> str:
    """The runs' colours over the plot, and what the totals are over their column."""
    runs = [(f"pg-b pg-b{i + 1}", f"baseline {i + 1}" if replicas > 1 else "baseline") for i in range(replicas)]
    runs.append(("pg-c", "candidate"))
    parts, x = [], _LABEL
    for css, name in runs:
        parts.append(f'<g class="{css}"><circle class="gl-key" cx="{x + 3:.2f}" cy="8.00" r="3.00"/>')
        parts.append(_text("gl-note", x + 9, 11.5, name, "start") + "</g>")
        x += 9 + 6.2 * len(name) + 14
    parts.append(_text("gl-note", _TOTAL_AT, 11.5, "total per suite", "start"))
    return "".join(parts)


def _suite_lane(s: SuiteTimes, top: float, scale: _Scale, lo: float, most: float) -> str:
    up, down = top + _LANE * 0.3, top + _LANE * 0.7  # the baseline's row, the candidate's row
    before, after = s.total_before, s.total_after
    said = f"{s.suite}: {_seconds(before)} {_ARROW} {_seconds(after)}"
    counts = ", ".join(f"baseline {i + 1} {len(r)} cases" for i, r in enumerate(s.before))
    name = s.suite if len(s.suite) <= _NAME else s.suite[: _NAME - 1] + "\u2026"
    parts = [
        f'<g class="gl-lane"><title>{escape(f"{said} ({counts}, candidate {len(s.after)} cases)")}</title>',
        _text("gl-label", _LABEL - 6, top + _LANE / 2 + 4, name, "end"),
    ]
    rows = [(f"pg-b pg-b{i + 1}", r, up) for i, r in enumerate(s.before)]
    rows.append(("pg-c", s.after, down))
    for css, durations, y in rows:
        parts.append(f'<g class="{css}">')
        for k, d in enumerate(_thinned([d for d in durations if math.isfinite(d)])):
            # A fixed jitter of three rows, so equal durations stay visible as a cluster; the same every rendering.
            cy = y + (k % 3 - 1) * 1.5
            parts.append(f'<circle class="gl-dot" cx="{scale(max(d, lo)):.2f}" cy="{cy:.2f}" r="1.50"/>')
        parts.append("</g>")
    for css, total, y in (("pg-b pg-b1", before, up), ("pg-c", after, down)):
        if total and most:
            width = max(_BAR * total / most, 1.0)
            parts.append(
                f'<g class="{css}"><rect class="gl-total" x="{_TOTAL_AT:.2f}" y="{y - 2:.2f}" '
                f'width="{width:.2f}" height="4.00"/></g>'
            )
    parts.append(_text("gl-note", _TOTAL_AT + _BAR + 6, top + _LANE / 2 + 4, _totals(before, after), "start"))
    parts.append("</g>")
    return "".join(parts)


def _thinned(durations: list[float]) -> list[float]:
    """At most DOTS_PER_ROW durations: past that, evenly spaced order statistics, which keep the distribution's
    shape (a 10,000-case comparison would otherwise draw 30,000 dots, megabytes of SVG no eye can tell apart)."""
    if len(durations) <= DOTS_PER_ROW:
        return durations
    ordered = sorted(durations)
    last = len(ordered) - 1
    return [ordered[round(i * last / (DOTS_PER_ROW - 1))] for i in range(DOTS_PER_ROW)]


def _totals(before: float | None, after: float | None) -> str:
    """The totals in words, "2.53 s → 2.65 s (+5 %)"; the change left out when there is nothing before to divide by."""
    text = f"{_seconds(before)} {_ARROW} {_seconds(after)}"
    if before and after is not None:
        change = (after / before - 1) * 100
        sign = _MINUS if change < 0 else "+"
        text += f" ({sign}{abs(change):.0f} %)"
    return text


def _seconds(total: float | None) -> str:
    if total is None:
        return "none"
    return quantity(total, "s/op") if total else "0 s"  # not "0 ns": nothing measurable, in the axis's unit


def _log_axis(values: Sequence[float]) -> tuple[_Scale, list[float], float]:
    """A log scale over whole decades from the shortest duration (not under FLOOR) to the longest, its decade
    ticks, and its start (shorter durations are drawn there)."""
    positive = [v for v in values if v > 0]
    lo = max(FLOOR, 10.0 ** math.floor(math.log10(min(positive)))) if positive else FLOOR
    hi = max(positive, default=lo)
    a, b = round(math.log10(lo)), max(math.ceil(math.log10(hi)), round(math.log10(lo)) + 1)

    def scale(x: float) -> float:
        return _LABEL + (math.log10(max(x, lo)) - a) / (b - a) * _PLOT

    return scale, [10.0**e for e in range(a, b + 1)], lo


def _text(css: str, x: float, y: float, text: str, anchor: str) -> str:
    return f'<text class="{css}" x="{x:.2f}" y="{y:.2f}" text-anchor="{anchor}">{escape(text)}</text>'
