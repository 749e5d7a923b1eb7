"""The comparison of baseline replicas against a candidate: normalise, diff, mask noise, apply policy."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime

# `harness.verdict` imports this package's modules; importing the module (not the
# name) keeps either import order working, and decide is looked up at call time.
from harness import verdict
from harness.compare.diff import diff_cases
from harness.compare.noise import NoiseMask, measure_noise
from harness.compare.normalise import normalise_run
from harness.compare.policy import Policy
from harness.model import (
    CaseComparison,
    CaseRecord,
    CaseStatus,
    Classification,
    Comparison,
    Difference,
    Outcome,
    RunRecord,
)

__all__ = ["NOISE_REASON", "compare"]

NOISE_REASON = "differs between baseline replicas"
_NO_POLICY = Policy()
_NOT_RUN = frozenset({Outcome.NOT_APPLICABLE, Outcome.SKIPPED})


def compare(
    baselines: Sequence[RunRecord],
    candidate: RunRecord,
    policy: Policy = _NO_POLICY,
    *,
    created: str | None = None,
) -> Comparison:
    """Every case of baseline replica 1 and the candidate, classified, and the verdict.

    `created` stamps the comparison (ISO 8601 UTC); it defaults to now.
    """
    normal = [normalise_run(b) for b in baselines]
    after = normalise_run(candidate)
    noise = measure_noise(normal)
    first = normal[0].by_case() if normal else {}
    now = after.by_case()
    cases = tuple(
        _case(case, first.get(case), now.get(case), noise, policy) for case in sorted(first.keys() | now.keys())
    )
    decision, reasons = verdict.decide(normal, after, cases, noisy_cases=noise.cases)
    return Comparison(
        device=candidate.manifest.device,
        baseline=tuple(b.directory for b in baselines),
        candidate=candidate.directory,
        verdict=decision,
        reasons=reasons,
        cases=cases,
        baseline_variant=baselines[0].manifest.variant if baselines else "",
        candidate_variant=candidate.manifest.variant,
        created=created or datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _case(
    case: str, before: CaseRecord | None, after: CaseRecord | None, noise: NoiseMask, policy: Policy
) -> CaseComparison:
    differences = tuple(_classify(d, noise, policy) for d in diff_cases(before, after))
    kinds = {d.classification for d in differences}
    if before and after and before.outcome in _NOT_RUN and after.outcome in _NOT_RUN:
        status = CaseStatus.NOT_APPLICABLE
    elif Classification.REGRESSED in kinds:
        status = CaseStatus.REGRESSED
    elif Classification.EXPECTED in kinds:
        status = CaseStatus.CHANGED_AS_EXPECTED
    else:
        status = CaseStatus.UNCHANGED
    return CaseComparison(
        case=case,
        status=status,
        before=before.outcome if before else None,
        after=after.outcome if after else None,
        differences=differences,
    )


def _classify(diff: Difference, noise: NoiseMask, policy: Policy) -> Difference:
    if noise.covers(diff):
        return dataclasses.replace(diff, classification=Classification.NOISE, reason=NOISE_REASON)
    entry = policy.match(diff)
    if entry is not None:
        reason = f"{entry.reason} ({entry.ticket})" if entry.ticket else entry.reason
        return dataclasses.replace(diff, classification=Classification.EXPECTED, reason=reason)
    return diff
