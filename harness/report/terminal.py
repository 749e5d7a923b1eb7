"""The plain-text summary of a comparison for terminals and CI logs; text from runs has its control characters escaped."""

from __future__ import annotations

from collections import Counter

from harness.compare.diff import format_side
from harness.compare.security import describe
from harness.errors import printable
from harness.model import (
    CaseStatus,
    Classification,
    Comparison,
    Direction,
    MetricComparison,
    PerfDecision,
    SecurityChange,
)
from harness.report._view import RobustnessRow, Seen, decisions, robustness_rows, worst_first
from harness.verdict import MIXED_ALLOWED, PERFORMANCE

__all__ = ["summary_table"]

_VALUE_WIDTH = 40  # longer values are cut; the reports have them whole


# A terminal shows the first few differences of each regressed case; the report has them all.
_DIFFS_PER_CASE = 4
# ... and the first few security changes, loosened first.
_SECURITY_LINES = 10
_COUNTED = (Direction.LOOSENED, Direction.TIGHTENED, Direction.CHANGED, Direction.NOISY)
# The robustness inputs the terminal names: those whose reaction moved (not noisy, not unchanged).
_MOVED = ("loosened", "tightened", "changed")


def summary_table(comparison: Comparison) -> str:
    """Case counts by status, the performance metrics that moved, the regressed cases with their paths, and a closing
    VERDICT line."""
    counts = Counter(c.status for c in comparison.cases)
    width = max(len(s.value) for s in CaseStatus)
    lines = ["Cases by status"]
    lines += [f"  {s.value:<{width}}  {counts[s]:>5}" for s in CaseStatus]
    lines.append(f"  {'total':<{width}}  {len(comparison.cases):>5}")
    lines += _posture(comparison.security)
    regressed = [c for c in comparison.cases if c.status is CaseStatus.REGRESSED]
    # The reasons are printed below only when no case regressed; a metric they name is not named twice.
    printed = [r for r in comparison.reasons if not regressed or r.startswith(MIXED_ALLOWED)]
    lines += _performance(comparison.performance, printed)
    lines += _robustness(comparison)
    if regressed:
        lines += ["", "Regressed cases"]
        for case in regressed:
            lines.append(f"  {printable(case.case)}")
            changed = [d for d in case.differences if d.classification is Classification.REGRESSED]
            for d in changed[:_DIFFS_PER_CASE]:
                before, after = _cut(format_side(d, "before")), _cut(format_side(d, "after"))
                lines.append(f"    {printable(d.path)}  {d.kind.value}  {before} → {after}")
            if len(changed) > _DIFFS_PER_CASE:
                lines.append(f"    ... and {len(changed) - _DIFFS_PER_CASE} more differences (see report.html)")
        # --allow-mixed: the runs' mix-up is said even when regressions fill the screen.
        warnings = [r for r in comparison.reasons if r.startswith(MIXED_ALLOWED)]
        if warnings:
            lines += ["", "Warnings"] + [f"  {printable(r)}" for r in warnings]
    elif comparison.reasons:
        lines += ["", "Reasons"] + [f"  {printable(r)}" for r in comparison.reasons]
    lines += ["", f"VERDICT: {comparison.verdict.value} (exit {comparison.verdict.exit_code})"]
    return "\n".join(lines)


def _posture(changes: tuple[SecurityChange, ...]) -> list[str]:
    """A count line, then one line per loosened or tightened observation (bounded); nothing if none moved."""
    moved = [c for c in changes if c.direction is Direction.LOOSENED]
    moved += [c for c in changes if c.direction is Direction.TIGHTENED]
    if not moved:
        return []
    count = {d: sum(1 for c in changes if c.direction is d) for d in Direction}
    said = ", ".join(f"{count[d]} {d.value}" for d in _COUNTED if count[d])
    lines = ["", f"Security posture: {said}, {count[Direction.UNCHANGED]} unchanged"]
    for c in moved[:_SECURITY_LINES]:
        judged = "expected" if c.expected else "regressed"
        lines.append(f"  {c.direction.value:<9}  {printable(c.case)}  {printable(describe(c))}  ({judged})")
    if len(moved) > _SECURITY_LINES:
        lines.append(f"  ... and {len(moved) - _SECURITY_LINES} more (see report.html)")
    return lines


def _performance(metrics: tuple[MetricComparison, ...], printed: list[str]) -> list[str]:
    """A count line, then one line per metric that is not unchanged, worst first, unless a printed reason names it."""
    if not metrics:
        return []
    lines = ["", f"Performance: {decisions(metrics)}"]
    for m in worst_first(metrics):
        if m.decision is PerfDecision.UNCHANGED or any(f"{PERFORMANCE}{m.reason}" in r for r in printed):
            continue
        lines.append(f"  {m.decision.value:<9}  {printable(m.reason)}")
    return lines


def _robustness(comparison: Comparison) -> list[str]:
    """One line per robustness input whose reaction changed (loosened, tightened or changed), worst first; else none."""
    if not comparison.robustness:
        return []
    moved = [r for r in robustness_rows(comparison) if r.change in _MOVED]
    if not moved:
        return []
    return ["", *(f"robustness {printable(r.input)}: {_movement(r)} ({r.change})" for r in moved)]


def _movement(row: RobustnessRow) -> str:
    """Baseline 1's reaction → the candidate's, in the fewest words that tell them apart; else C-ECHO if it moved."""
    before, after = row.before[0], row.after
    words = next((w for w in (_kind, _when, _detail) if w(before) != w(after)), _kind)
    said = f"{_cut(words(before))} → {_cut(words(after))}"
    same = words(before) == words(after)  # the C-ECHO after it moved, or only a timing did
    return said + (f", C-ECHO after {row.echo}" if same and "→" in row.echo else "")


def _kind(seen: Seen) -> str:
    return seen.kind or seen.missing


def _when(seen: Seen) -> str:
    return f"{_kind(seen)} ({seen.when})" if seen.when else _kind(seen)


def _detail(seen: Seen) -> str:
    return f"{_kind(seen)}: {seen.detail}" if seen.detail else _kind(seen)


def _cut(text: str) -> str:
    text = printable(text)  # escaped first: the cut then counts what the terminal shows
    return text if len(text) <= _VALUE_WIDTH else text[: _VALUE_WIDTH - 1] + "…"
