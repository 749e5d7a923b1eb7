"""Inline SVG charts of a performance metric: each run's distribution on a shared axis, and the candidate's ratio.

Built from numbers and escaped text only: every attribute taken from data is a number formatted `%.2f`, every
label goes through `markupsafe.escape`, so a hostile run or metric name stays text. No script, no link, no
external resource; colours are CSS classes (`pg-b1`, `pg-b2`, `pg-c`, `d-<decision>`) styled by
templates/_performance.css, which `standalone` embeds for a chart shown on its own (an Allure attachment).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from importlib import resources

from markupsafe import Markup, escape

from harness.model import MetricComparison, Spread

__all__ = [
    "CSS",
    "TIMES",
    "bounds",
    "compared",
    "distributions",
    "is_difference",
    "quantity",
    "ratio",
    "run_class",
    "shown",
    "standalone",
]

CSS = "_performance.css"  # the chart classes' styles, in templates/ (layout.html includes it when there are charts)
TIMES = "\u00d7"  # MULTIPLICATION SIGN, after a ratio, as the design writes them
_LABEL = 92.0  # px left of the plot for a lane's run name
_PLOT = 360.0  # px: the plot's width (design 11: 360 x 20 px per lane)
_RIGHT = 14.0  # px right of the plot, so the last tick label fits
_LANE = 20.0
_AXIS = 20.0  # px under the plot for ticks and their labels
_GAP = 46.0  # px at least between two tick labels
_TOP = 4.0
_SECONDS = ("s/op", "s/study", "s CPU/op")
_Scale = Callable[[float], float]


def is_difference(m: MetricComparison) -> bool:
    """memory.growth is a difference in bytes per association, not a ratio (design 7.5)."""
    return m.unit == "bytes/association"


def compared(m: MetricComparison) -> bool:
    """Whether the metric has a ratio (or difference) to draw: a metric that could not be judged holds 0 for all."""
    low, high = bounds(m)
    return bool(m.per_baseline) and all(math.isfinite(x) for x in (low, high, m.ratio))


def bounds(m: MetricComparison) -> tuple[float, float]:
    """The decision's interval: the lowest lower and the highest upper bound against each baseline replica.

    These are the bounds the verdict's reason quotes (L_min, U_max); the pooled `interval` is narrower.
    """
    if not m.per_baseline:
        return m.interval.low, m.interval.high
    return min(i.low for i in m.per_baseline), max(i.high for i in m.per_baseline)


def shown(m: MetricComparison, x: float) -> str:
    """A number of the comparison (ratio, bound, threshold, noise): "1.21" and the times sign, or signed bytes."""
    return quantity(x, "bytes", signed=True) if is_difference(m) else f"{x:.2f}{TIMES}"


def run_class(index: int, runs: int) -> str:
    """The CSS classes of a run in `spreads` order (the baselines, then the candidate last)."""
    return "pg-c" if index == runs - 1 else f"pg-b pg-b{index + 1}"


def quantity(value: float, unit: str, *, signed: bool = False) -> str:
    """A value in words of its unit: seconds as s, ms or µs; bytes as B, kB, MB or GB (decimal, as the runs table)."""
    sign = "\u2212" if value < 0 else "+" if signed and value > 0 else ""
    size = abs(value)
    if unit in _SECONDS:
        steps: Sequence[tuple[float, str]] = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))
    elif unit.startswith("bytes"):
        steps = ((1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1.0, "B"))
    else:
        return f"{sign}{_figure(size)}"
    scale, name = next(((s, n) for s, n in steps if size >= s), steps[-1])
    return f"{sign}{_figure(size / scale)} {name}"


def distributions(m: MetricComparison) -> Markup:
    """One lane per run on a shared axis (log, or linear for bytes of memory.growth): the points as a strip of
    dots, a box from q25 to q75, whiskers at q05 and q95, a tick at the median."""
    spreads = m.spreads
    values = [v for s in spreads for v in (*s.quantiles, *s.points)]
    log = not is_difference(m) and bool(values) and min(values) > 0
    lo, hi = (min(values), max(values)) if values else (1.0, 10.0)
    scale, ticks = _axis(lo, hi, log)
    height = _TOP + _LANE * max(1, len(spreads)) + _AXIS
    # memory.growth's values are each run's memory at rest (bytes); the growth compared is their slope.
    what = "memory at rest in bytes" if is_difference(m) else f"values in {m.unit}"
    scale_words = "log scale" if log else "linear scale"
    title = f"{m.metric}: each run's {what} ({scale_words}); box q25 to q75, whiskers q05 to q95, median tick"
    parts = [_open("pg-dist", height, title)]
    for i, s in enumerate(spreads):
        parts.append(_lane(s, run_class(i, len(spreads)), _TOP + _LANE * i, scale, m.unit))
    parts.append(_ticks(ticks, scale, _TOP + _LANE * max(1, len(spreads)), lambda t: quantity(t, m.unit)))
    parts.append("</svg>")
    return Markup("".join(parts))


def ratio(m: MetricComparison) -> Markup:
    """The decision's interval as a bar, the point estimate as a tick, each baseline's interval as a thin line, and
    lines at no change and at the threshold (and at a declared slow-down): a log axis around 1.0 for a ratio, a
    linear one around 0 for memory.growth's difference."""
    difference = is_difference(m)
    low, high = bounds(m)
    zero = 0.0 if difference else 1.0
    bar = m.threshold if difference else 1.0 + m.threshold
    declared = None
    if m.declared is not None:
        declared = m.threshold * (1 + m.declared) if difference else 1.0 + m.declared
    marks = [low, high, zero, bar, m.ratio, *(x for i in m.per_baseline for x in (i.low, i.high))]
    if declared is not None:
        marks.append(declared)
    if not difference:
        marks.append(1.0 / (1.0 + m.threshold))  # room for as much faster as the threshold is slower
    marks = [x for x in marks if math.isfinite(x) and (difference or x > 0)]
    scale, ticks = _axis(min(marks), max(marks), not difference)
    rows = len(m.per_baseline)
    top = 14.0 if declared is None else 26.0  # px above the bar: a row for each line's label
    height = top + 14.0 + 6.0 * rows + _AXIS
    plot_bottom = height - _AXIS

    def show(x: float) -> str:
        return shown(m, x)

    what = "candidate minus the largest baseline, bytes per association" if difference else "candidate ÷ baselines"
    title = f"{m.metric}: {what}: {show(m.ratio)} [{show(low)}, {show(high)}]; threshold {show(bar)}"
    parts = [_open("pg-ratio", height, title)]
    x0 = scale(zero)
    parts.append(f'<line class="pg-zero" x1="{x0:.2f}" y1="{top - 4:.2f}" x2="{x0:.2f}" y2="{plot_bottom:.2f}"/>')
    xt = scale(bar)
    parts.append(f'<line class="pg-threshold" x1="{xt:.2f}" y1="{top - 4:.2f}" x2="{xt:.2f}" y2="{plot_bottom:.2f}"/>')
    parts.append(_beside(xt, top - 4, f"{'limit' if difference else 'threshold'} {show(bar)}"))
    if declared is not None:
        xd = scale(declared)
        parts.append(
            f'<line class="pg-declared" x1="{xd:.2f}" y1="{top - 16:.2f}" x2="{xd:.2f}" y2="{plot_bottom:.2f}"/>'
        )
        parts.append(_beside(xd, top - 16, f"declared {show(declared)}"))
    parts.append(_text("pg-label", _LABEL - 6, top + 10, "candidate", "end"))
    xl, xh = scale(low), scale(high)
    parts.append(
        f'<rect class="pg-bar d-{escape(m.decision.value)}" x="{xl:.2f}" y="{top + 3:.2f}" '
        f'width="{max(xh - xl, 1.0):.2f}" height="8.00"/>'
    )
    xr = scale(m.ratio)
    parts.append(f'<line class="pg-point" x1="{xr:.2f}" y1="{top + 1:.2f}" x2="{xr:.2f}" y2="{top + 13:.2f}"/>')
    for i, interval in enumerate(m.per_baseline):
        y = top + 16.0 + 6.0 * i
        a, b = scale(interval.low), scale(interval.high)
        parts.append(
            f'<g class="pg-b pg-b{i + 1}"><title>against baseline {i + 1}: [{escape(show(interval.low))}, '
            f'{escape(show(interval.high))}]</title><line class="pg-against" x1="{a:.2f}" y1="{y:.2f}" '
            f'x2="{max(b, a + 1):.2f}" y2="{y:.2f}"/></g>'
        )
    parts.append(_ticks([zero, *ticks], scale, plot_bottom, show))
    parts.append("</svg>")
    return Markup("".join(parts))


def standalone(chart: Markup) -> str:
    """A chart as a file of its own: its styles embedded (no report.css around it), an XML declaration."""
    css = resources.files("harness.report").joinpath("templates", CSS).read_text(encoding="utf-8")
    head, sep, rest = str(chart).partition(">")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{head}{sep}<style>{css}</style>{rest}\n'


def _open(kind: str, height: float, title: str) -> str:
    width = _LABEL + _PLOT + _RIGHT
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="pg-chart {kind}" width="{width:.2f}" height="{height:.2f}" '
        f'viewBox="0 0 {width:.2f} {height:.2f}" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    )


def _lane(s: Spread, css: str, top: float, scale: _Scale, unit: str) -> str:
    y = top + _LANE / 2
    parts = [f'<g class="pg-lane {css}">', _text("pg-label", _LABEL - 6, y + 4, s.run, "end")]
    if s.n == 0 or len(s.quantiles) != 7:
        parts.append(_text("pg-note", _LABEL + 4, y + 4, "no kept round", "start"))
        return "".join([*parts, "</g>"])
    _, q05, q25, q50, q75, q95, _ = s.quantiles
    said = (
        f"{s.run}: {s.n} values in {s.rounds} rounds; median {quantity(q50, unit)}; "
        f"q25 to q75 {quantity(q25, unit)} to {quantity(q75, unit)}; q05 to q95 {quantity(q05, unit)} to "
        f"{quantity(q95, unit)}"
    )
    parts.append(f"<title>{escape(said)}</title>")
    a, b = scale(q05), scale(q95)
    parts.append(f'<line class="pg-whisker" x1="{a:.2f}" y1="{y:.2f}" x2="{b:.2f}" y2="{y:.2f}"/>')
    for x in (a, b):
        parts.append(f'<line class="pg-whisker" x1="{x:.2f}" y1="{y - 3:.2f}" x2="{x:.2f}" y2="{y + 3:.2f}"/>')
    left, right = scale(q25), scale(q75)
    parts.append(
        f'<rect class="pg-box" x="{left:.2f}" y="{y - 6:.2f}" width="{max(right - left, 1.0):.2f}" height="12.00"/>'
    )
    for i, p in enumerate(s.points):
        # A fixed jitter of five rows, so equal values stay visible as a cluster; the same for every rendering.
        parts.append(f'<circle class="pg-dot" cx="{scale(p):.2f}" cy="{y + (i % 5 - 2) * 1.6:.2f}" r="1.40"/>')
    xm = scale(q50)
    parts.append(f'<line class="pg-median" x1="{xm:.2f}" y1="{y - 8:.2f}" x2="{xm:.2f}" y2="{y + 8:.2f}"/>')
    return "".join([*parts, "</g>"])


def _beside(x: float, y: float, text: str) -> str:
    """A line's label on the side of it with more room, so it stays inside the chart."""
    right = x < _LABEL + _PLOT / 2
    return _text("pg-note", x + 3 if right else x - 3, y, text, "start" if right else "end")


def _text(css: str, x: float, y: float, text: str, anchor: str) -> str:
    return f'<text class="{css}" x="{x:.2f}" y="{y:.2f}" text-anchor="{anchor}">{escape(text)}</text>'


def _ticks(ticks: Sequence[float], scale: _Scale, y: float, label: Callable[[float], str]) -> str:
    """An axis line with tick labels; a tick closer than _GAP to one before it in `ticks` is left out (first wins)."""
    parts = [f'<g class="pg-axis"><line x1="{_LABEL:.2f}" y1="{y:.2f}" x2="{_LABEL + _PLOT:.2f}" y2="{y:.2f}"/>']
    kept: list[tuple[float, float]] = []
    for t in ticks:
        x = scale(t)
        if _LABEL <= x <= _LABEL + _PLOT and all(abs(x - k) >= _GAP for k, _ in kept):
            kept.append((x, t))
    for x, t in sorted(kept):
        parts.append(f'<line x1="{x:.2f}" y1="{y:.2f}" x2="{x:.2f}" y2="{y + 3:.2f}"/>')
        parts.append(_text("pg-tick", x, y + 14, label(t), "middle"))
    return "".join([*parts, "</g>"])


def _axis(lo: float, hi: float, log: bool) -> tuple[_Scale, list[float]]:
    """A scale from values to x (px) over [lo, hi] padded by 5 % of the span, and tick values inside it."""
    if log:
        a, b = math.log10(lo), math.log10(hi)
        if b - a < 1e-9:
            a, b = a - 0.05, b + 0.05
        pad = (b - a) * 0.05
        a, b = a - pad, b + pad

        def log_scale(x: float) -> float:
            return _LABEL + (math.log10(x) - a) / (b - a) * _PLOT

        return log_scale, _log_ticks(10**a, 10**b)
    if hi - lo < 1e-12 * max(1.0, abs(hi)):
        lo, hi = lo - max(1.0, abs(lo) * 0.05), hi + max(1.0, abs(hi) * 0.05)
    pad = (hi - lo) * 0.05
    lo, hi = lo - pad, hi + pad

    def linear_scale(x: float) -> float:
        return _LABEL + (x - lo) / (hi - lo) * _PLOT

    return linear_scale, _linear_ticks(lo, hi)


def _log_ticks(lo: float, hi: float, most: int = 5) -> list[float]:
    """Powers of ten, else 1-2-5, else 1..9 steps inside [lo, hi] (at least three); else even steps."""
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    for mantissas in ((1,), (1, 2, 5), tuple(range(1, 10))):
        ticks = [m * 10.0**e for e in range(first, last + 1) for m in mantissas if lo <= m * 10.0**e <= hi]
        if len(ticks) >= 3:
            step = math.ceil(len(ticks) / most)
            return ticks[::step]
    return _linear_ticks(lo, hi)


def _linear_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Multiples of a 1-2-5 step inside [lo, hi], about `count` of them."""
    raw = (hi - lo) / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    start = math.ceil(lo / step)
    return [k * step for k in range(start, math.floor(hi / step) + 1)]


def _figure(x: float) -> str:
    """Three significant figures, without trailing zeros after the point."""
    if x == 0:
        return "0"
    digits = max(0, 2 - math.floor(math.log10(x)))
    text = f"{x:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
