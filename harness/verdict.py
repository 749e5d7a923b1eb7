"""The verdict of a comparison: whether the runs can be trusted, and if so what changed."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from harness.model import (
    CaseComparison,
    CaseStatus,
    Classification,
    Difference,
    Direction,
    MetricComparison,
    Outcome,
    PerfDecision,
    RunRecord,
    RunStatus,
    SecurityChange,
    Verdict,
)
from harness.wording import describe, format_side

__all__ = ["MAX_LISTED", "MIN_RAN_FRACTION", "MIXED", "MIXED_ALLOWED", "PERFORMANCE", "decide"]

# The candidate must run at least this share of the cases the baseline ran.
MIN_RAN_FRACTION = 0.9
# Reasons list at most this many regressed cases; the report has them all.
MAX_LISTED = 20
# How a reason says the runs do not belong together, and that someone compared them anyway.
MIXED = "mixed runs: "
MIXED_ALLOWED = "warning: mixed runs allowed: "
# How a reason about a performance metric starts (after "warning: " when it only warns).
PERFORMANCE = "performance: "
_WARN = frozenset({PerfDecision.NOISY, PerfDecision.UNDECIDED})
_RAN = frozenset({Outcome.PASSED, Outcome.FAILED, Outcome.ERROR})
_SHORT = 40  # longest value quoted in a one-line reason


def decide(
    baselines: Sequence[RunRecord],
    candidate: RunRecord,
    cases: Sequence[CaseComparison],
    *,
    noisy_cases: Collection[str],
    security: Sequence[SecurityChange] = (),
    mixed: Sequence[str] = (),
    allow_mixed: bool = False,
    performance: Sequence[MetricComparison] = (),
    strict: bool = False,
) -> tuple[Verdict, tuple[str, ...]]:
    """The verdict and its reasons, one line each, from what compare() found; nothing is measured here.

    `noisy_cases` are the cases that differ between baseline replicas (compare's noise
    measurement). `security` is the comparison's security posture: a loosening not
    allowed by the policy is named first. `mixed` says why the runs do not belong
    together: INCONCLUSIVE, named first, unless `allow_mixed`, which turns them into
    warnings after the verdict's own reasons. `performance` holds the metrics compared
    (harness.compare.performance): regressed ones regress, expected ones change as expected,
    a metric the candidate lacks and the baselines have is INCONCLUSIVE, and noisy or
    undecided ones are warnings, INCONCLUSIVE when `strict` ([performance] strict).
    """
    problems = _untrustworthy(baselines, candidate, noisy_cases)
    if not allow_mixed:
        problems = [f"{MIXED}{m}" for m in mixed] + problems
    unsure = [m for m in performance if m.decision in _WARN or m.decision is PerfDecision.MISSING]
    problems += [f"{PERFORMANCE}{m.reason}" for m in unsure if (strict and m.decision in _WARN) or _lost(m)]
    verdict, lines = (Verdict.INCONCLUSIVE, problems) if problems else _judge(cases, security, performance)
    if allow_mixed:
        lines = lines + [f"{MIXED_ALLOWED}{m}" for m in mixed]
    if not problems:
        lines = lines + [f"warning: {PERFORMANCE}{m.reason}" for m in unsure]
    # Details (a device's stderr, an odd case id) may hold newlines; CI logs want one line each.
    return verdict, tuple(" | ".join(line.splitlines()) for line in lines)


def _lost(metric: MetricComparison) -> bool:
    """A metric every baseline measured and the candidate did not (spreads: the baselines, then the candidate)."""
    if metric.decision is not PerfDecision.MISSING or len(metric.spreads) < 2:
        return False
    *before, after = metric.spreads
    return after.n == 0 and all(s.n > 0 for s in before)


def _judge(
    cases: Sequence[CaseComparison], security: Sequence[SecurityChange], performance: Sequence[MetricComparison] = ()
) -> tuple[Verdict, list[str]]:
    """The verdict of trustworthy runs, from the classified differences and the performance decisions."""
    # Differences of a case run in neither (skipped vs not applicable) say nothing about the device.
    regressed = [c for c in cases if c.status is CaseStatus.REGRESSED]
    loosened = [s for s in security if s.direction is Direction.LOOSENED]
    slower = [f"{PERFORMANCE}{m.reason}" for m in performance if m.decision is PerfDecision.REGRESSED]
    declared = [
        f"{PERFORMANCE}{m.reason}: as declared: {m.declared_reason}"
        for m in performance
        if m.decision is PerfDecision.EXPECTED
    ]
    if slower and not regressed:
        return Verdict.REGRESSED, slower
    if regressed:
        # A loosening outranks any other regression: it is listed first, in security words.
        refused = [s for s in loosened if not s.expected]
        named = {s.case for s in refused}
        listed = [(s.case, _loosened_line(s)) for s in refused]
        listed += [(c.case, _regressed_line(c)) for c in regressed if c.case not in named]
        lines = [line for _, line in listed[:MAX_LISTED]]
        left = len({c.case for c in regressed} - {case for case, _ in listed[:MAX_LISTED]})
        if left:
            lines.append(f"... and {left} more regressed cases (see the report)")
        return Verdict.REGRESSED, lines + slower
    expected = [c for c in cases if c.status is CaseStatus.CHANGED_AS_EXPECTED]
    if declared and not expected:
        return Verdict.CHANGED_AS_EXPECTED, declared
    if expected:
        reasons = sorted(
            {d.reason for c in expected for d in c.differences if d.classification is Classification.EXPECTED}
        )
        lines = [f"{len(expected)} case(s) changed as the policy expects"]
        lines += [f"expected: {r}" for r in reasons]
        allowed = [
            f"{s.case}: security loosened as the policy allows: {describe(s)} ({s.reason})"
            for s in loosened
            if s.expected
        ]
        lines += allowed[:MAX_LISTED]
        if len(allowed) > MAX_LISTED:
            lines.append(f"... and {len(allowed) - MAX_LISTED} more allowed loosenings (see the report)")
        return Verdict.CHANGED_AS_EXPECTED, lines + declared
    compared = sum(1 for c in cases if c.status is not CaseStatus.NOT_APPLICABLE)
    return Verdict.UNCHANGED, [f"{compared} case(s) compared, no change outside baseline noise"]


def _regressed_line(case: CaseComparison) -> str:
    """One line per regressed case: its first difference in full, then how many more."""
    changed = [d for d in case.differences if d.classification is Classification.REGRESSED]
    if not changed:
        return f"regressed: {case.case}"
    first = changed[0]
    more = f" (+{len(changed) - 1} more)" if len(changed) > 1 else ""
    return f"regressed: {case.case}: {first.path} {first.kind.value}{_values(first)}{more}"


def _loosened_line(change: SecurityChange) -> str:
    """`case: security loosened: accepted false → true (policy entry at FILE:LINE matches but ...)`."""
    why = f" ({change.reason})" if change.reason else ""
    return f"{change.case}: security loosened: {describe(change)}{why}"


def _untrustworthy(baselines: Sequence[RunRecord], candidate: RunRecord, noisy_cases: Collection[str]) -> list[str]:
    """Why the runs cannot support a verdict, if they cannot."""
    problems: list[str] = []
    if not baselines:
        problems.append("no baseline run to compare against")
    runs = [*baselines, candidate]
    for run in runs:
        m = run.manifest
        if m.status is not RunStatus.COMPLETED:
            detail = f": {m.status_detail}" if m.status_detail else ""
            problems.append(f"{_name(run)} did not complete ({m.status.value}){detail}")
    for run in runs:
        robustness = run.manifest.robustness
        if robustness is not None and robustness.stopped:  # inputs left unsent are no evidence either way
            problems.append(f"{_name(run)}: the robustness phase stopped early: {robustness.stopped}")
    for run in runs:
        if _ran(run) == 0:
            problems.append(f"{_name(run)} ran no case ({len(run.cases)} recorded, none passed, failed or errored)")
    if baselines and _ran(candidate) and _ran(baselines[0]):
        ran, wanted = _ran(candidate), _ran(baselines[0])
        if ran < MIN_RAN_FRACTION * wanted:
            problems.append(
                f"{_name(candidate)} ran {ran} case(s), fewer than {MIN_RAN_FRACTION:.0%} "
                f"of the {wanted} the baseline ran"
            )
    all_cases = {c.case for b in baselines for c in b.cases}
    if len(baselines) > 1 and len(noisy_cases) > len(all_cases) / 2:
        problems.append(
            f"the baseline replicas disagree on {len(noisy_cases)} of {len(all_cases)} cases: "
            "the device is too noisy to compare"
        )
    return problems


def _ran(run: RunRecord) -> int:
    return sum(1 for c in run.cases if c.outcome in _RAN)


def _name(run: RunRecord) -> str:
    m = run.manifest
    return f"{m.role} run {m.replica} ({run.directory or m.run_id})"


def _values(diff: Difference) -> str:
    """` (before → after)` when both sides are short enough for one line."""
    before, after = format_side(diff, "before"), format_side(diff, "after")
    if len(before) > _SHORT or len(after) > _SHORT or "\n" in before + after:
        return ""
    return f" ({before} → {after})"
