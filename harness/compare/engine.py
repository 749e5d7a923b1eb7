"""The comparison of baseline replicas against a candidate: normalise, diff, mask noise, apply policy, weigh security."""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from harness.compare import security
from harness.compare.belonging import mismatches
from harness.compare.diff import diff_cases
from harness.compare.noise import NoiseMask, measure_noise
from harness.compare.normalise import normalise_run, shared_window
from harness.compare.perf_runs import run_performance
from harness.compare.policy import Policy
from harness.compare.robustness import input_reactions
from harness.model import (
    CaseComparison,
    CaseRecord,
    CaseStatus,
    Classification,
    Comparison,
    Difference,
    Outcome,
    RunRecord,
    SecurityChange,
)
from harness.verdict import decide

__all__ = ["LOOSENING_REFUSED", "NOISE_REASON", "collector_paused", "compare"]

NOISE_REASON = "differs between baseline replicas"
# Why a declared difference stays regressed: the entry was not written for a weaker device.
LOOSENING_REFUSED = "policy entry at {where} matches but does not allow loosening"
_NO_POLICY = Policy()
_NOT_RUN = frozenset({Outcome.NOT_APPLICABLE, Outcome.SKIPPED})


@dataclass(frozen=True)
class _Loosened:
    """The loosened security observations of one case, among all its observation names."""

    names: frozenset[str]
    loosened: frozenset[str]

    def covers(self, path: str) -> bool:
        return bool(self.loosened) and security.observation_of(path, self.names) in self.loosened


def compare(
    baselines: Sequence[RunRecord],
    candidate: RunRecord,
    policy: Policy = _NO_POLICY,
    *,
    created: str | None = None,
    allow_mixed: bool = False,
) -> Comparison:
    """Every case of baseline replica 1 and the candidate, classified, and the verdict.

    `created` stamps the comparison (ISO 8601 UTC); it defaults to now. Runs that do not
    belong together (belonging.mismatches) make it INCONCLUSIVE; with `allow_mixed` they
    are warnings among the reasons and the differences decide.
    """
    with collector_paused(lasting=True):
        return _compare(baselines, candidate, policy, created, allow_mixed)


@contextmanager
def collector_paused(*, lasting: bool = False) -> Iterator[None]:
    """The cyclic garbage collector off for the block, what exists now frozen; both undone after, even on error.

    Run records and comparisons are large trees of immutable values without cycles: every
    collection would rescan them for nothing, which made compare super-linear in the cases
    (the collector's full passes grow with the heap). Reference counting still frees what dies.

    `lasting`: what the block makes outlives it (run records, a comparison) and holds no cycles. It is moved
    to the oldest generation as it is: left in the youngest, uncounted while the collector was off, the next
    young collection would walk all of it (0.26 s after reading 3 x 10,000 cases). Other threads' objects of
    the meantime go with it: their cycles, if any die, wait for a full collection. Not for a block whose
    leftovers are garbage in cycles (Jinja's contexts and macros): the next young collection frees those.
    """
    if not gc.isenabled():  # already off (an outer pause, or the caller's choice): leave it as it is
        yield
        return
    gc.disable()
    gc.freeze()
    try:
        yield
    finally:
        if lasting:
            gc.freeze()  # the block's objects join the frozen ones: a list splice, nothing walked
        gc.unfreeze()
        gc.enable()


def _compare(
    baselines: Sequence[RunRecord], candidate: RunRecord, policy: Policy, created: str | None, allow_mixed: bool
) -> Comparison:
    window = shared_window(r.manifest for r in (*baselines, candidate))
    normal = [normalise_run(b, window) for b in baselines]
    after = normalise_run(candidate, window)
    noise = measure_noise(normal)
    replicas = [b.by_case() for b in normal]
    first = replicas[0] if replicas else {}
    now = after.by_case()
    # Security tags as recorded (normalisation keeps values only), the candidate's first.
    raw = [candidate.by_case(), *(b.by_case() for b in baselines)]
    cases: list[CaseComparison] = []
    changes: list[SecurityChange] = []
    for case in sorted(first.keys() | now.keys()):
        tags = security.tags_of(*(r.get(case) for r in raw))
        posture = security.classify(case, [r.get(case) for r in replicas], now.get(case), tags)
        names = security.names_of(first.get(case), now.get(case))
        loosened = _Loosened(names, security.loosened_names(posture))
        compared = _case(case, first.get(case), now.get(case), noise, policy, loosened)
        compared = dataclasses.replace(
            compared,
            durations_before=tuple(r[case].duration if case in r else None for r in replicas),
            duration_after=now[case].duration if case in now else None,
            service=next((r.service for r in (now.get(case), first.get(case)) if r is not None and r.service), ""),
        )
        cases.append(compared)
        changes.extend(security.settle(posture, compared.differences, names))
    performance, strict = run_performance(baselines, candidate, policy)  # ((), False) when no run measured any
    decision, reasons = decide(
        normal,
        after,
        cases,
        noisy_cases=noise.cases,
        security=changes,
        mixed=mismatches(baselines, candidate),
        allow_mixed=allow_mixed,
        performance=performance,
        strict=strict,
    )
    return Comparison(
        device=candidate.manifest.device,
        baseline=tuple(b.directory for b in baselines),
        candidate=candidate.directory,
        verdict=decision,
        reasons=reasons,
        cases=tuple(cases),
        baseline_variant=baselines[0].manifest.variant if baselines else "",
        candidate_variant=candidate.manifest.variant,
        created=created or datetime.now(UTC).isoformat(timespec="seconds"),
        policy_sha256=policy.sha256(),
        security=tuple(changes),
        performance=performance,
        robustness=input_reactions(replicas, now, [*(b.manifest for b in baselines), candidate.manifest]),
    )


def _case(
    case: str,
    before: CaseRecord | None,
    after: CaseRecord | None,
    noise: NoiseMask,
    policy: Policy,
    loosened: _Loosened,
) -> CaseComparison:
    """The case's differences classified, and its status."""
    differences = tuple(_classify(d, noise, policy, loosened.covers(d.path)) for d in diff_cases(before, after))
    kinds = {d.classification for d in differences}
    if before and after and before.outcome in _NOT_RUN and after.outcome in _NOT_RUN:
        status = CaseStatus.NOT_APPLICABLE
    elif Classification.REGRESSED in kinds:
        status = CaseStatus.REGRESSED
    elif Classification.EXPECTED in kinds:
        status = CaseStatus.CHANGED_AS_EXPECTED
    else:
        status = CaseStatus.UNCHANGED
    tags: dict[str, set[str]] = {}
    for o in (o for record in (before, after) if record for o in record.observations if o.tags):
        tags.setdefault(o.name, set()).update(o.tags)
    return CaseComparison(
        case=case,
        status=status,
        before=before.outcome if before else None,
        after=after.outcome if after else None,
        differences=differences,
        tags={name: tuple(sorted(found)) for name, found in tags.items()},
    )


def _classify(diff: Difference, noise: NoiseMask, policy: Policy, loosening: bool) -> Difference:
    """NOISE, EXPECTED, or REGRESSED; `loosening`: the difference lies on a loosened security observation."""
    if noise.covers(diff):
        return dataclasses.replace(diff, classification=Classification.NOISE, reason=NOISE_REASON)
    entry = policy.match(diff, loosening=loosening)
    if entry is not None:
        reason = f"{entry.reason} ({entry.ticket})" if entry.ticket else entry.reason
        return dataclasses.replace(diff, classification=Classification.EXPECTED, reason=reason, ticket=entry.ticket)
    blocked = policy.match(diff) if loosening else None
    if blocked is not None:
        return dataclasses.replace(diff, reason=LOOSENING_REFUSED.format(where=blocked.where))
    return diff
