"""report.html's content as plain words and numbers for the templates, which alone write markup (and escape).

One exception: the charts, SVG markup that `_charts` (performance) and `_glance` (durations per suite, the security
posture) build from numbers and escaped text.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from markupsafe import Markup

from harness.compare.diff import format_side
from harness.compare.security import observation_of, value_words
from harness.model import (
    JSON,
    CaseComparison,
    CaseStatus,
    Classification,
    Comparison,
    Difference,
    DiffKind,
    Direction,
    InputReactions,
    Manifest,
    MetricComparison,
    Outcome,
    PerfDecision,
    Reaction,
    RobustnessSetup,
    Security,
    SecurityChange,
    Verdict,
)
from harness.report._attributes import Attribute, attribute_rows, element_text, is_dataset, is_element, named_path
from harness.report._case import split_case, split_params, suite_of
from harness.report._charts import bounds, compared, distributions, is_difference, ratio, run_class, shown
from harness.report._fold import fold_rows
from harness.report._glance import durations_chart, posture_chart, posture_counts, suite_times
from harness.report._oneline import is_status
from harness.report._status import status_words
from harness.rundir import RunDir
from harness.verdict import PERFORMANCE

__all__ = [
    "MAX_DIFFERENCES",
    "MAX_LINES",
    "NAMED_UP_TO",
    "WORST_FIRST",
    "Page",
    "RegressedTest",
    "RobustnessRow",
    "SharedKind",
    "build_page",
    "decisions",
    "regressed_tests",
    "robustness_rows",
    "worst_first",
]

# A case shows at most this many differences of each kind (shown, noise); comparison.json has them all.
MAX_DIFFERENCES = 20
# The banner says this many kinds of difference per regressed test (report.html lists them all below).
_KINDS_SAID = 2
_VALUE_SAID = 48  # ... and a side of one at most this many characters
# The verdict's reasons that name one regressed case (harness.verdict), grouped by test in the banner.
_CASE_REASON = "regressed: "
_MORE_CASES = "more regressed cases (see the report)"
# Up to this many cases, the folded unchanged and not-applicable cases are also named in their module's row.
NAMED_UP_TO = 1000
# Rows are folded (harness.report._fold) among a case's first this many differences; the rest are counted.
_FOLDED_FROM = 10 * MAX_DIFFERENCES
# A side of a difference shows at most this many lines (a whole dataset is hundreds); comparison.json has it all.
MAX_LINES = 12

_MEANING = {
    Verdict.UNCHANGED: "The patched device (candidate) behaves as the device did before the patch "
    "(baseline), apart from the noise measured between baseline runs.",
    Verdict.CHANGED_AS_EXPECTED: "The patched device behaves differently, but only in the ways the "
    "expected-change policy declares, each with a reason.",
    Verdict.REGRESSED: "The patched device behaves differently in ways the expected-change policy does "
    "not declare. Each regressed difference is listed below.",
    Verdict.INCONCLUSIVE: "The runs cannot support a verdict (a device did not start or crashed, or too "
    "few cases ran). Nothing is claimed about the patch.",
}
_STATUS_WORDS = {
    CaseStatus.REGRESSED: "Regressed",
    CaseStatus.CHANGED_AS_EXPECTED: "Changed as expected",
    CaseStatus.UNCHANGED: "Unchanged",
    CaseStatus.NOT_APPLICABLE: "Not applicable",
}
_ORDER = list(_STATUS_WORDS)  # sections: worst first
# The security posture's groups in reading order, each with what it means; "stayed" is collapsed.
_POSTURE = {
    Direction.LOOSENED: (
        "Loosened",
        "The patched device exposes more (e.g. accepts an older TLS version, listens on a new port, admits an "
        "unknown peer) or protects less (e.g. no longer sends an audit message, no longer refuses a peer).",
    ),
    Direction.TIGHTENED: (
        "Tightened",
        "The patched device exposes less or protects more (e.g. TLS now required, a port no longer listening).",
    ),
    Direction.CHANGED: (
        "Changed, direction unknown",
        "These changed, but their values (text or structured data) do not say whether that is looser or tighter: "
        "each one needs a reader's judgement.",
    ),
    Direction.NOISY: (
        "Noisy",
        "The two runs of the unpatched device already disagree on these, so no direction can be told.",
    ),
}
# The performance section's order: what makes the verdict worse first, then what is only reported.
WORST_FIRST = (
    PerfDecision.REGRESSED,
    PerfDecision.MISSING,
    PerfDecision.UNDECIDED,
    PerfDecision.NOISY,
    PerfDecision.EXPECTED,
    PerfDecision.SLOWER,
    PerfDecision.FASTER,
    PerfDecision.UNCHANGED,
)
# What each decision says; {more} and {less} in words of the metric's unit (see _WORDS).
_DECISION_WORDS = {
    PerfDecision.REGRESSED: "{more} than every baseline beyond the threshold",
    PerfDecision.MISSING: "a run measured none of it",
    PerfDecision.UNDECIDED: "the interval reaches past the threshold: more samples needed (raise performance.budget)",
    PerfDecision.NOISY: "the baselines differ beyond the threshold: not judged",
    PerfDecision.EXPECTED: "{more} beyond the threshold, within the declared change",
    PerfDecision.SLOWER: "{more} than every baseline, not beyond the threshold: reported, not a regression",
    PerfDecision.FASTER: "{less} than every baseline",
    PerfDecision.UNCHANGED: "within the threshold",
}
# Time is slower or faster, memory larger or smaller, memory.growth more or less per association, CPU more or less.
_WORDS = {
    "bytes": ("larger", "smaller"),
    "bytes/association": ("growing more", "growing less"),
    "s CPU/op": ("using more CPU", "using less CPU"),
}
_STOPPED = {
    "decided": "sampling stopped once decided",
    "budget": "sampling stopped at the time budget",
    "max_rounds": "sampling stopped at the most rounds",
}
_NOT_RUN = (None, Outcome.SKIPPED, Outcome.NOT_APPLICABLE)
# A robustness input's change, in the table's order (changes first); the first four are the security machinery's
# directions of its robustness.* observations (severity, C-ECHO after), "changed" also any other regressed or
# expected difference on them, "noisy" a difference between the baselines only.
CHANGES = ("loosened", "tightened", "changed", "noisy", "unchanged")
_ROBUSTNESS = "robustness."
# Said of an unchanged input whose reactions read differently: silent at the deadline, or either side of 1 s.
EDGE = "at a timing's edge: silent is the deadline passing, delayed 1 s or more, and the seconds did not move by the timing rule"
_ECHO = "robustness.answers_echo"
_MEANS = {
    Security.EXPOSURE: "exposure: more of it is looser",
    Security.PROTECTION: "protection: less of it is looser",
    Security.NONE: "",
}


@dataclass(frozen=True)
class Shown:
    """A value as text; `block`: structured data, shown as indented JSON."""

    text: str
    block: bool = False


@dataclass(frozen=True)
class Judged:
    """A classification's badge, then the reason; `undeclared`: say that the policy does not declare it."""

    badge: str  # a Classification value
    reason: str = ""
    undeclared: bool = False


@dataclass(frozen=True)
class Run:
    """One row of the runs table."""

    role: str  # "baseline 1"
    variant: str
    description: str  # the profile's, "" when none
    tls: bool  # the variant requires DICOM TLS
    image: str  # "" when not a container
    image_id: str
    status: str
    cases: int
    started: str
    wall_time: str
    memory: tuple[str, ...]  # one line per measured process; empty: not measured
    versions: tuple[str, ...]  # "name: version" (the page says them once, under "What was compared")
    robustness: tuple[str, ...] = ()  # the robustness phase: inputs sent, each revival, an early stop; empty: off
    links: tuple[tuple[str, str], ...] = ()  # (label, relative URL) of the run's records and logs that exist


@dataclass(frozen=True)
class MatrixRow:
    """One suite's cases by status (the columns of _STATUS_WORDS), and their total."""

    suite: str
    counts: tuple[int, ...]
    total: int


@dataclass(frozen=True)
class Matrix:
    """Suite x status: where the changes are, at a glance; the last row is the total."""

    columns: tuple[str, ...]
    rows: tuple[MatrixRow, ...]
    total: MatrixRow


@dataclass(frozen=True)
class Summary:
    """Cases by status and differences by classification."""

    statuses: tuple[tuple[str, int], ...]
    total: int
    classifications: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class PostureRow:
    """One security observation: before → after (or items gained and lost), and how the policy judged it."""

    case: str
    name: str
    means: str  # what more of it means; "" when not said
    added: tuple[Shown, ...]
    removed: tuple[Shown, ...]
    before: Shown
    after: Shown
    judged: Judged


@dataclass(frozen=True)
class PostureGroup:
    """Loosened, tightened, changed or noisy observations."""

    direction: str  # a Direction value
    title: str
    meaning: str
    rows: tuple[PostureRow, ...]


@dataclass(frozen=True)
class Posture:
    """The security posture section; `stayed` rows show `before` only."""

    said: str  # "4 loosened, 2 tightened, 1 stayed the same"
    groups: tuple[PostureGroup, ...]
    stayed: tuple[PostureRow, ...]


@dataclass(frozen=True)
class Package:
    """One changed package; a side of None: not installed there."""

    name: str
    before: str | None
    after: str | None
    judged: Judged


@dataclass(frozen=True)
class Unrecorded:
    """A side whose inventory case did not pass, so it recorded no packages."""

    side: str  # "baseline" or "candidate"
    case: str
    outcome: str


@dataclass(frozen=True)
class Software:
    """The software changes section."""

    unrecorded: tuple[Unrecorded, ...]
    counts: str  # the count sentence; "" when no package changed
    packages: tuple[Package, ...]


@dataclass(frozen=True)
class Side:
    """One side of a difference as shown: text, or a dataset's attributes (`changed` shown, `same` folded)."""

    text: str
    changed: tuple[Attribute, ...] = ()
    same: tuple[Attribute, ...] = ()  # attributes alike on both sides: folded

    @property
    def dataset(self) -> bool:
        return bool(self.changed or self.same)


@dataclass(frozen=True)
class DiffRow:
    """One difference: path, kind, classification, both sides, and the policy's reason ("" when none)."""

    path: str  # bare tags named: `retrieved.dataset.(0008,1030) StudyDescription`
    kind: str
    classification: str
    before: Side
    after: Side
    reason: str
    count: int = 1  # the differences this row stands for: more than one when alike ones are folded into it


@dataclass(frozen=True)
class ChangedCase:
    """A case with differences; noise apart; each kind at most MAX_DIFFERENCES, `*_more` said how many more."""

    anchor: str
    case: str
    status: str  # a CaseStatus value
    status_words: str
    before: str
    after: str
    shown: tuple[DiffRow, ...]
    noise: tuple[DiffRow, ...]
    shown_more: int = 0  # differences not shown (comparison.json has them)
    noise_total: int = 0  # every noise difference of the case, shown or not


@dataclass(frozen=True)
class DiffGroup:
    """The cases of one test with one status: the differences all of them have alike, shown once, then each case
    with its own (a regression that touches 28 stored objects the same way reads as one table, not 28)."""

    anchor: str
    test: str  # the case id without its parameters
    status: str  # a CaseStatus value
    status_words: str
    cases: tuple[ChangedCase, ...]  # each with only what it does not share with the others (noise apart)
    shared: tuple[DiffRow, ...]  # empty for a group of one case: its differences are its own
    shared_more: int = 0

    @property
    def single(self) -> ChangedCase | None:
        """The group's one case, shown as a case of its own; None for a group of several."""
        return self.cases[0] if len(self.cases) == 1 else None


@dataclass(frozen=True)
class CaseRow:
    """One row of the all-cases table."""

    case: str
    status: str
    before: str
    after: str
    differences: int


@dataclass(frozen=True)
class ModuleCount:
    """One suite module's unchanged and not-applicable cases, counted (and named when the comparison is small)."""

    module: str
    unchanged: int
    not_applicable: int
    names: tuple[str, ...]  # the tests of the module counted here; empty past NAMED_UP_TO cases


@dataclass(frozen=True)
class Folded:
    """The cases not shown one by one: unchanged and not applicable ones without differences, per module."""

    said: str  # "9,512 unchanged and 1,650 not applicable cases in 42 suite modules"
    modules: tuple[ModuleCount, ...]
    named: bool  # the modules' rows name their tests


@dataclass(frozen=True)
class PerfRun:
    """One run's share of a metric: how much was kept, and for store.* its throughput (medians)."""

    run: str
    css: str  # the chart's classes for the run ("pg-b pg-b1", "pg-c")
    values: int
    rounds: int
    rates: str  # "94.0 images/s, 0.88 MB/s"; "" when not a store metric


@dataclass(frozen=True)
class MetricRow:
    """One performance metric: the decision, the numbers behind it in words, and its two charts."""

    anchor: str
    metric: str
    unit: str
    decision: str  # a PerfDecision value
    meaning: str  # what the decision says
    result: str  # the ratio and the decision's interval, as the verdict's reason quotes them
    reason: str  # the comparison's own line; shown when nothing could be compared
    threshold: str  # 1 + t, and t in per cent; for memory.growth the limit in bytes per association
    declared: str  # the declared slow-down's bar, its reason and ticket; "" when none
    noise: str  # the baselines against each other, with their interval
    sampling: str  # why sampling stopped, and whether the runs took turns
    runs: tuple[PerfRun, ...]
    distributions: Markup
    ratio: Markup | None  # None: nothing to draw (a run measured none of it, or a median was 0)


@dataclass(frozen=True)
class Performance:
    """The performance section: metrics worst decision first."""

    said: str  # "6 metrics: 1 regressed, 5 unchanged"
    rows: tuple[MetricRow, ...]


@dataclass(frozen=True)
class Seen:
    """A reaction in words: its kind, when ("immediate"), and detail; kind "" with `missing` said: none observed."""

    kind: str
    when: str = ""
    detail: str = ""
    missing: str = ""  # why there is none: the case's outcome ("skipped", "absent (case not run)")


@dataclass(frozen=True)
class RobustnessRow:
    """One robustness input: its reaction before (each distinct baseline one) and after, C-ECHO after, the change."""

    input: str
    case: str
    description: str  # "" when the runs did not record it
    before: tuple[Seen, ...]  # baseline-1's, then any other baseline's that differs from it
    after: Seen
    echo: str  # answers C-ECHO after: "yes", "yes → no", "—" when not observed
    change: str  # one of CHANGES
    status: str  # a CaseStatus value
    status_words: str
    edge: str = ""  # why an unchanged input shows two reactions (EDGE); "" otherwise

    @property
    def noisy(self) -> bool:
        """The baselines reacted differently."""
        return len(self.before) > 1


@dataclass(frozen=True)
class RunRevivals:
    """A run's revivals during the robustness phase, and why it stopped early ("" when it did not)."""

    run: str  # "candidate 1"
    revivals: tuple[str, ...]  # "pdu.pdata.over-max (exited: exit code 70)"
    stopped: str


@dataclass(frozen=True)
class Robustness:
    """The robustness section: inputs with a change first, then the revivals of each run."""

    said: str  # "44 inputs: 1 loosened, 43 unchanged"
    rows: tuple[RobustnessRow, ...]
    runs: tuple[RunRevivals, ...]  # empty: no run manifest was given


@dataclass(frozen=True)
class Page:
    """Everything report.html says, in reading order."""

    title: str
    device: str
    verdict: str
    exit_code: int
    meaning: str
    reasons: tuple[str, ...]
    facts: tuple[tuple[str, str], ...]
    runs: tuple[Run, ...]
    summary: Summary
    matrix: Matrix
    durations: Markup  # every case's duration per suite, before and after; empty: no durations recorded
    posture_chart: Markup  # the security posture's counts as one bar; empty: no security observation
    security: Posture | None  # None: no observation carries a security meaning
    software: Software | None  # None: no software inventory was recorded
    differences: tuple[DiffGroup, ...]
    cases: tuple[CaseRow, ...]  # every case (a template may list them all; the packaged one folds them)
    created: str
    listed: tuple[CaseRow, ...] = ()  # the cases shown one by one: regressed, expected, or with any difference
    folded: Folded | None = None  # None: no case is folded
    performance: Performance | None = None  # None: the runs measured no performance
    robustness: Robustness | None = None  # None: no case observed a robustness reaction


def build_page(
    comparison: Comparison,
    runs: Sequence[Manifest],
    inventory: Mapping[str, frozenset[str]] | None = None,
    *,
    fingerprint: str = "",
    base: Path | None = None,
) -> Page:
    """The page's content; `inventory`: case id → names of its observations tagged as a software inventory;
    `fingerprint`: the evidence pack's signing key ("": no pack); `base`: the folder the page is written into, which
    its links to each run's records are relative to (None: no links)."""
    c = comparison
    return Page(
        title=f"patchgate: {c.device} — {c.verdict.value}",
        device=c.device,
        verdict=c.verdict.value,
        exit_code=c.verdict.exit_code,
        meaning=_MEANING[c.verdict],
        reasons=_headline(c),
        facts=(
            ("Device", c.device),
            ("Baseline (before the patch)", f"{c.baseline_variant}: {', '.join(c.baseline)}"),
            ("Candidate (after the patch)", f"{c.candidate_variant}: {c.candidate}"),
            *_provenance(c, runs),
            ("Compared on", c.created or "unknown"),
            *_evidence(fingerprint),
        ),
        runs=_runs(runs, (*c.baseline, c.candidate), base),
        summary=_summary(c.cases),
        matrix=_matrix(c.cases),
        durations=durations_chart(suite_times(c.cases)),
        posture_chart=posture_chart(posture_counts(c.security)),
        security=_security(c.security) if c.security else None,
        software=_software(c.cases, inventory or {}),
        differences=_differences(c.cases),
        cases=tuple(_case_row(x) for x in c.cases),
        created=c.created or "an unknown date",
        listed=tuple(_case_row(x) for x in c.cases if not _foldable(x)),
        folded=_folded(c.cases),
        performance=_performance(c.performance) if c.performance else None,
        robustness=_robustness_section(c, runs) if c.robustness else None,
    )


def _evidence(fingerprint: str) -> tuple[tuple[str, str], ...]:
    """The evidence pack's fact: its key's fingerprint (the page is in the pack, so it cannot show the pack's hash)."""
    if not fingerprint:
        return ()
    return (
        (
            "Evidence pack",
            f"evidence.json, signed with the Ed25519 key of SHA-256 fingerprint {fingerprint}; "
            "check with `patchgate verify` on the output directory",
        ),
    )


def _case_row(x: CaseComparison) -> CaseRow:
    return CaseRow(x.case, _STATUS_WORDS[x.status], _outcome(x.before), _outcome(x.after), len(x.differences))


def _foldable(case: CaseComparison) -> bool:
    """Passed in both runs, or not run in either, without a difference (noise included): counted, not listed.

    A case that failed or errored in both runs is unchanged, yet listed: a reader should see it.
    """
    if case.differences:
        return False
    if case.status is CaseStatus.UNCHANGED:
        return case.before is Outcome.PASSED and case.after is Outcome.PASSED
    return case.status is CaseStatus.NOT_APPLICABLE


def _folded(cases: Sequence[CaseComparison]) -> Folded | None:
    """The foldable cases counted per suite module, in module order; named when there are few cases."""
    by_module: dict[str, list[CaseComparison]] = {}
    for case in cases:
        if _foldable(case):
            by_module.setdefault(split_case(case.case)[0] or "(no module)", []).append(case)
    if not by_module:
        return None
    named = len(cases) <= NAMED_UP_TO
    modules = tuple(
        ModuleCount(
            module,
            sum(1 for x in found if x.status is CaseStatus.UNCHANGED),
            sum(1 for x in found if x.status is CaseStatus.NOT_APPLICABLE),
            tuple(split_case(x.case)[1] for x in found) if named else (),
        )
        for module, found in sorted(by_module.items())
    )
    unchanged, not_applicable = sum(m.unchanged for m in modules), sum(m.not_applicable for m in modules)
    n = len(modules)
    said = (
        f"{unchanged:,} unchanged and {not_applicable:,} not applicable case(s) "
        f"in {n:,} suite module{'' if n == 1 else 's'}"
    )
    return Folded(said, modules, named)


@dataclass(frozen=True)
class SharedKind:
    """A kind of difference (path and kind) among a test's regressed cases: its sides when every case has the same."""

    path: str
    kind: str
    sides: tuple[str, str] | None  # (before, after) as format_side says them; None when the cases differ
    values: int  # how many different (before, after) pairs
    cases: int  # in how many of the test's cases
    words: tuple[str, str] | None = None  # `sides` as a person reads them: statuses with meaning, elements as values


@dataclass(frozen=True)
class RegressedTest:
    """The regressed cases of one test (the case id without its parameters) and the kinds of difference they
    have, most widespread first (ties in the order first seen)."""

    test: str
    params: tuple[str, ...]  # "[CT-explicit]", ...; empty for an unparametrised test
    kinds: tuple[SharedKind, ...]

    @property
    def count(self) -> int:
        return max(1, len(self.params))


def _headline(c: Comparison) -> tuple[str, ...]:
    """The verdict's reasons for the banner: its lines per regressed case become one sentence per test (the
    loosenings named first and the performance lines stay as the verdict says them)."""
    per_case = [r for r in c.reasons if r.startswith(_CASE_REASON) or _MORE_CASES in r]
    if not per_case:
        return c.reasons
    kept = [r for r in c.reasons if r not in per_case]
    loosened = [r for r in kept if not r.startswith(PERFORMANCE)]
    return (*loosened, *(_sentence(t) for t in regressed_tests(c.cases)), *kept[len(loosened) :])


def _sentence(t: RegressedTest) -> str:
    said = [f"{named_path(k.path)}: {_cut(k.words[0])} → {_cut(k.words[1])}" if k.words
            else f"{named_path(k.path)} {k.kind.replace('_', ' ')}" for k in t.kinds[:_KINDS_SAID]]  # fmt: skip
    more = f"; and {len(t.kinds) - _KINDS_SAID} more" if len(t.kinds) > _KINDS_SAID else ""
    cases = f"{t.count} cases" if t.params and t.count > 1 else "regressed"
    return f"{t.test} ({cases}): {'; '.join(said)}{more}"


def _cut(text: str) -> str:
    return text if len(text) <= _VALUE_SAID else text[: _VALUE_SAID - 1] + "…"


def regressed_tests(cases: Sequence[CaseComparison]) -> tuple[RegressedTest, ...]:
    """The regressed cases grouped by test, in the order of their first case."""
    tests: dict[str, list[CaseComparison]] = {}
    for case in cases:
        if case.status is CaseStatus.REGRESSED:
            tests.setdefault(split_params(case.case)[0], []).append(case)
    grouped: list[RegressedTest] = []
    for test, members in tests.items():
        kinds: dict[tuple[str, str], list[Difference]] = {}
        service = members[0].service
        for case in members:
            for d in case.differences:
                if d.classification is Classification.REGRESSED:
                    kinds.setdefault((d.path, d.kind.value), []).append(d)
        shared = []
        for (path, kind), diffs in kinds.items():
            pairs = {(format_side(d, "before"), format_side(d, "after")) for d in diffs}
            sides = next(iter(pairs)) if len(pairs) == 1 else None
            words = (_said(diffs[0], "before", service), _said(diffs[0], "after", service)) if sides else None
            shared.append(SharedKind(path, kind, sides, len(pairs), len({d.case for d in diffs}), words))
        shared.sort(key=lambda k: -k.cases)  # stable: first seen first among equals
        params = tuple(split_params(c.case)[1] for c in members if c.case != test)
        grouped.append(RegressedTest(test, params, tuple(shared)))
    return tuple(grouped)


def _provenance(c: Comparison, runs: Sequence[Manifest]) -> tuple[tuple[str, str], ...]:
    """What exactly was compared, for a reader years later: profile, corpus, policy, images, patchgate itself."""
    facts: list[tuple[str, str]] = []
    profiles = {(m.profile_path, m.profile_sha256) for m in runs}
    if profiles:
        facts.append(("Profile", _per_run(runs, lambda m: f"{m.profile_path}, SHA-256 {m.profile_sha256}")))
    if any(m.corpus for m in runs):
        facts.append(("Corpus", _per_run(runs, _corpus)))
    if c.policy_sha256:
        facts.append(("Expected-change policy", f"SHA-256 {c.policy_sha256}"))
    if any(m.extra.image for m in runs):
        facts.append(("Images", "; ".join(f"{m.role} {m.replica}: {_image(m)}" for m in runs)))
    if runs:
        first = runs[0].versions
        said = f"{first.get('patchgate', 'unknown')}, commit {first.get('patchgate commit', 'not recorded')}"
        facts.append(("patchgate", _per_run(runs, lambda m: said if m.versions == first else _patchgate(m))))
        others = ", ".join(f"{k} {v}" for k, v in sorted(first.items()) if not k.startswith("patchgate"))
        facts.append(("Harness software", _per_run(runs, lambda m: others if m.versions == first else _software_of(m))))
    return tuple(facts)


def _per_run(runs: Sequence[Manifest], said: Callable[[Manifest], str]) -> str:
    """One line when every run says the same, else one per run (a mixed comparison must show it)."""
    lines = [said(m) for m in runs]
    if len(set(lines)) == 1:
        return lines[0]
    return "; ".join(f"{m.role} {m.replica}: {line}" for m, line in zip(runs, lines, strict=True))


def _corpus(m: Manifest) -> str:
    if m.corpus is None:
        return "none recorded"
    k = m.corpus
    fresh = "; UIDs and patient ids its own in each run, mapped back when compared" if k.identity else ""
    return f"{k.items} objects ({k.size}, seed {k.seed}), SHA-256 {k.sha256}{fresh}"


def _image(m: Manifest) -> str:
    image = m.extra.image
    if image is None:
        return "a local process"
    return f"{image.name} {image.id}" + (f" ({', '.join(image.digests)})" if image.digests else "")


def _patchgate(m: Manifest) -> str:
    return f"{m.versions.get('patchgate', 'unknown')}, commit {m.versions.get('patchgate commit', 'not recorded')}"


def _software_of(m: Manifest) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(m.versions.items()) if not k.startswith("patchgate"))


def _runs(runs: Sequence[Manifest], directories: Sequence[str], base: Path | None) -> tuple[Run, ...]:
    """The runs table's rows, with links to each run's records when the page knows where it is written."""
    if base is None or len(directories) != len(runs):
        return tuple(_run(m) for m in runs)
    return tuple(_run(m, _links(RunDir(Path(d)), base)) for m, d in zip(runs, directories, strict=True))


def _links(run: RunDir, base: Path) -> tuple[tuple[str, str], ...]:
    """The run's records and logs that exist, as URLs relative to `base` (the output folder travels whole)."""
    wanted = (
        ("manifest", run.manifest),
        ("observations", run.observations),
        ("junit", run.junit),
        ("device log", run.log("device")),
        ("suites log", run.log("pytest")),
        ("all logs", run.logs),
    )
    return tuple(
        (label, urllib.parse.quote(Path(os.path.relpath(path, base)).as_posix()) + ("/" if path.is_dir() else ""))
        for label, path in wanted
        if path.exists()
    )


def _run(m: Manifest, links: tuple[tuple[str, str], ...] = ()) -> Run:
    image = m.extra.image
    return Run(
        role=f"{m.role} {m.replica}",
        variant=m.variant,
        description=m.extra.description,
        tls=m.extra.tls is True,
        image=image.name if image else "",
        image_id=image.id[:19] if image else "",
        status=m.status.value + (f": {m.status_detail}" if m.status_detail else ""),
        cases=m.cases_collected,
        started=m.started,
        wall_time=_wall_time(m),
        memory=_memory(m),
        versions=tuple(f"{k}: {v}" for k, v in sorted(m.versions.items())),
        robustness=_robustness(m),
        links=links,
    )


def _robustness(m: Manifest) -> tuple[str, ...]:
    """What the robustness phase did to the device: the corpus, each revival and why, and why it stopped early."""
    setup = m.robustness
    if setup is None:
        return ()
    said = [f"robustness: {len(setup.inputs)} inputs of corpus {setup.corpus_version}"]
    said += [f"revived after {r.input} ({r.reaction}: {r.detail})" for r in setup.revivals]
    return tuple(said + ([f"stopped early: {setup.stopped}"] if setup.stopped else []))


def _memory(m: Manifest) -> tuple[str, ...]:
    """Peak memory of the device and the PACS simulator, as the run measured them when they stopped."""
    peaks = m.extra.memory_peak_bytes or {}
    return tuple(f"{role} {value / 1e6:.0f} MB" for role, value in sorted(peaks.items()) if value is not None)


def _wall_time(m: Manifest) -> str:
    seconds = m.timings.get("total")
    if seconds is None:
        try:
            seconds = (datetime.fromisoformat(m.finished) - datetime.fromisoformat(m.started)).total_seconds()
        except (ValueError, TypeError):
            return "unknown"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)} min {rest:.1f} s" if minutes else f"{rest:.1f} s"


def _matrix(cases: Sequence[CaseComparison]) -> Matrix:
    """Cases by suite (the first folder of the case id) and status, suites in the order the runs met them."""
    by_suite: dict[str, Counter[CaseStatus]] = {}
    for c in cases:
        by_suite.setdefault(suite_of(c.case), Counter())[c.status] += 1
    everything: Counter[CaseStatus] = sum(by_suite.values(), Counter())

    def row(name: str, counts: Counter[CaseStatus]) -> MatrixRow:
        return MatrixRow(name, tuple(counts[s] for s in _ORDER), sum(counts.values()))

    return Matrix(
        columns=tuple(_STATUS_WORDS[s] for s in _ORDER),
        rows=tuple(row(name, counts) for name, counts in by_suite.items()),
        total=row("Total", everything),
    )


def _summary(cases: Sequence[CaseComparison]) -> Summary:
    by_status = Counter(c.status for c in cases)
    by_class = Counter(d.classification for c in cases for d in c.differences)
    return Summary(
        statuses=tuple((_STATUS_WORDS[s], by_status[s]) for s in _ORDER),
        total=len(cases),
        classifications=tuple((k.value.capitalize(), by_class[k]) for k in Classification),
    )


def _security(changes: Sequence[SecurityChange]) -> Posture:
    """Loosened and tightened (always, even when empty), changed and noisy (when any), and what stayed."""
    count = Counter(c.direction for c in changes)
    said = [f"{count[d]} {_POSTURE[d][0].split(',')[0].lower()}" for d in _POSTURE if count[d]]
    said.append(f"{count[Direction.UNCHANGED]} stayed the same")
    groups = tuple(
        PostureGroup(d.value, title, meaning, tuple(_posture_row(c) for c in changes if c.direction is d))
        for d, (title, meaning) in _POSTURE.items()
        if count[d] or d in (Direction.LOOSENED, Direction.TIGHTENED)
    )
    stayed = tuple(_posture_row(c) for c in changes if c.direction is Direction.UNCHANGED)
    return Posture(", ".join(said), groups, stayed)


def _posture_row(c: SecurityChange) -> PostureRow:
    return PostureRow(
        case=c.case,
        name=c.name,
        means=_MEANS[c.security],
        added=tuple(_value(v) for v in c.added),
        removed=tuple(_value(v) for v in c.removed),
        before=_value(c.before, c.absent == "before"),
        after=_value(c.after, c.absent == "after"),
        judged=_judged(c),
    )


def _value(value: JSON, absent: bool = False) -> Shown:
    """Plain words for simple values, indented JSON only for structured ones."""
    structured = isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, dict | list) for v in value))
    if structured and not absent:
        return Shown(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True), block=True)
    return Shown(value_words(value, absent=absent))


def _judged(c: SecurityChange) -> Judged:
    if c.direction is Direction.NOISY:
        return Judged(Classification.NOISE.value, c.reason or "differs between baseline runs")
    if c.expected:
        return Judged(Classification.EXPECTED.value, c.reason)
    return Judged(Classification.REGRESSED.value, c.reason, undeclared=True)


def _software(cases: Sequence[CaseComparison], inventory: Mapping[str, frozenset[str]]) -> Software | None:
    """Every installed package the patch changed, with both versions; None when no case recorded an inventory."""
    found = [c for c in cases if c.case in inventory]
    if all(c.before in _NOT_RUN and c.after in _NOT_RUN for c in found):
        return None  # no inventory, or the device ran as a local process
    # A side whose inventory case did not pass recorded no packages: claiming "nothing changed" would be false.
    unrecorded = tuple(
        Unrecorded(side, c.case, _outcome(outcome))
        for c in found
        for side, outcome in (("baseline", c.before), ("candidate", c.after))
        if outcome is not Outcome.PASSED
    )
    changed = sorted(
        ((name, d) for c in found for d in c.differences if (name := _package(d.path, inventory[c.case]))),
        key=lambda pair: (pair[1].path, pair[1].case),
    )
    packages = tuple(
        Package(
            name,
            None if d.kind is DiffKind.EXTRA else _version(d.before),
            None if d.kind is DiffKind.MISSING else _version(d.after),
            _classified(d),
        )
        for name, d in changed
    )
    return Software(unrecorded, _package_counts([d for _, d in changed]) if changed else "", packages)


def _package(path: str, names: frozenset[str]) -> str:
    """The package a difference path is about (`packages.libssl3` → `libssl3`); "" for a whole inventory."""
    name = observation_of(path, names)
    return path[len(name) + 1 :] if name and path.startswith(f"{name}.") else ""


def _package_counts(diffs: Sequence[Difference]) -> str:
    """The count sentence; upgraded or downgraded is not told, as that needs each packager's version ordering."""
    kinds = Counter(d.kind for d in diffs)
    added, removed = kinds[DiffKind.EXTRA], kinds[DiffKind.MISSING]
    n = len(diffs)
    return (
        f"{n} package{'' if n == 1 else 's'} changed: {n - added - removed} changed version, "
        f"{added} added, {removed} removed."
    )


def _version(value: JSON) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _classified(d: Difference) -> Judged:
    return Judged(d.classification.value, d.reason, undeclared=d.classification is Classification.REGRESSED)


def _differences(cases: Sequence[CaseComparison]) -> tuple[DiffGroup, ...]:
    """Cases with differences grouped by test and status, worst status first, then by test."""
    changed = sorted((c for c in cases if c.differences), key=lambda c: (_ORDER.index(c.status), c.case))
    groups: dict[tuple[CaseStatus, str], list[CaseComparison]] = {}
    for c in changed:
        groups.setdefault((c.status, split_params(c.case)[0]), []).append(c)
    built: list[DiffGroup] = []
    anchor = 0
    for (status, test), members in groups.items():
        # Each difference's key once: the sides formatted, which at 10,000 cases is most of the work.
        keyed = [[(d, _key(d)) for d in c.differences if d.classification is not Classification.NOISE] for c in members]
        shared = _shared(keyed)
        own: list[ChangedCase] = []
        for c, pairs in zip(members, keyed, strict=True):
            anchor += 1
            own.append(_changed(anchor, c, [d for d, k in pairs if k not in shared]))
        rows, more = _rows([d for d, k in keyed[0] if k in shared], members[0].service)
        built.append(
            DiffGroup(
                anchor=f"group-{len(built) + 1}",
                test=test,
                status=status.value,
                status_words=_STATUS_WORDS[status],
                cases=tuple(own),
                shared=rows,
                shared_more=more,
            )
        )
    return tuple(built)


_Key = tuple[str, str, str, str, str]


def _key(d: Difference) -> _Key:
    return (d.path, d.kind.value, d.classification.value, format_side(d, "before"), format_side(d, "after"))


def _shared(keyed: Sequence[Sequence[tuple[Difference, _Key]]]) -> frozenset[_Key]:
    """The differences (noise apart) every case of a group of several has alike; none for a group of one."""
    if len(keyed) < 2:
        return frozenset()
    return frozenset(set.intersection(*({k for _, k in pairs} for pairs in keyed)))


def _changed(i: int, c: CaseComparison, own: Sequence[Difference]) -> ChangedCase:
    """`own`: the case's differences to show (noise apart: they are listed folded, each one)."""
    noise = [d for d in c.differences if d.classification is Classification.NOISE]
    shown, shown_more = _rows(own, c.service)
    return ChangedCase(
        anchor=f"case-{i}",
        case=c.case,
        status=c.status.value,
        status_words=_STATUS_WORDS[c.status],
        before=_outcome(c.before),
        after=_outcome(c.after),
        shown=shown,
        noise=tuple(_diff_row(d, c.service) for d in noise[:MAX_DIFFERENCES]),
        shown_more=shown_more,
        noise_total=len(noise),
    )


def _rows(diffs: Sequence[Difference], service: str) -> tuple[tuple[DiffRow, ...], int]:
    """The rows shown for `diffs` (alike ones folded, at most MAX_DIFFERENCES) and how many differences are not."""
    rows = fold_rows([_diff_row(d, service) for d in diffs[:_FOLDED_FROM]], _alike)
    shown = tuple(rows[:MAX_DIFFERENCES])
    return shown, len(diffs) - sum(r.count for r in shown)


def _said(d: Difference, side: Literal["before", "after"], service: str) -> str:
    """One side on one line: as the difference table shows it, a dataset as its size, other JSON compact."""
    shown = _side(d, side, service)
    if shown.dataset or is_status(d) or is_element(d.before if side == "before" else d.after):
        return shown.text
    return format_side(d, side)


def _alike(row: DiffRow) -> Hashable:
    """Rows that say the same but for one segment of their path fold into one."""
    return (row.kind, row.classification, row.before, row.after, row.reason)


def _diff_row(d: Difference, service: str) -> DiffRow:
    """`service`: the case's, whose status table says what a status code means."""
    return DiffRow(
        path=named_path(d.path),
        kind=d.kind.value.replace("_", " "),
        classification=d.classification.value,
        before=_side(d, "before", service),
        after=_side(d, "after", service),
        reason=d.reason,
    )


def _side(d: Difference, side: Literal["before", "after"], service: str) -> Side:
    """A status with its meaning, an element as its value and VR, a dataset as attribute rows (those alike on both
    sides folded), anything else as comparison.json's JSON, cut to MAX_LINES."""
    value, other = (d.before, d.after) if side == "before" else (d.after, d.before)
    text = format_side(d, side, pretty=True)
    if text == "(absent)" or d.path == "outcome":
        return Side(text)
    if is_status(d):
        return Side(status_words(value, service))
    if is_element(value):
        assert isinstance(value, dict)
        return Side(f"{element_text(value)} ({value['vr']})")
    if is_dataset(value):
        assert isinstance(value, dict)
        alike = {k for k, v in value.items() if isinstance(other, dict) and other.get(k) == v}
        rows = attribute_rows(value)
        changed = tuple(r for r, k in zip(rows, sorted(value, key=str.upper), strict=True) if k not in alike)
        same = tuple(r for r, k in zip(rows, sorted(value, key=str.upper), strict=True) if k in alike)
        return Side(f"{len(rows)} attributes", changed, same)
    return Side(_lines(text))


def _lines(text: str) -> str:
    """At most MAX_LINES lines of `text`, then how many more there are."""
    lines = text.split("\n")
    if len(lines) <= MAX_LINES:
        return text
    return "\n".join([*lines[:MAX_LINES], f"… and {len(lines) - MAX_LINES} more lines in comparison.json"])


def _outcome(outcome: Outcome | None) -> str:
    return outcome.value if outcome else "absent (case not run)"


def _performance(metrics: Sequence[MetricComparison]) -> Performance:
    """Every metric, worst decision first; metrics with the same decision in the order the runs measured them."""
    n = len(metrics)
    said = f"{n} metric{'' if n == 1 else 's'}: {decisions(metrics)}"
    return Performance(said, tuple(_metric_row(i, m) for i, m in enumerate(worst_first(metrics), start=1)))


def worst_first(metrics: Sequence[MetricComparison]) -> list[MetricComparison]:
    """The metrics in WORST_FIRST order of their decisions; those with the same decision in the runs' order."""
    return sorted(metrics, key=lambda m: WORST_FIRST.index(m.decision))


def decisions(metrics: Sequence[MetricComparison]) -> str:
    """How many metrics got each decision, worst first: "1 regressed, 5 unchanged"."""
    count = Counter(m.decision for m in metrics)
    return ", ".join(f"{count[d]} {d.value}" for d in WORST_FIRST if count[d])


def _metric_row(i: int, m: MetricComparison) -> MetricRow:
    difference = is_difference(m)
    drawn = compared(m)

    def show(x: float) -> str:
        return shown(m, x)

    more, less = _WORDS.get(m.unit, ("slower", "faster"))
    low, high = bounds(m)
    if not drawn:
        result = "not compared"
    elif difference:
        result = f"{show(m.ratio)} per association [{show(low)}, {show(high)}]"
    else:
        result = f"{show(m.ratio)} [{low:.2f}, {high:.2f}]"
    declared = ""
    if difference:
        threshold = f"limit {show(m.threshold)} per association"
        if m.declared is not None:
            declared = f"declared up to {show(m.threshold * (1 + m.declared))}"
    else:
        threshold = f"{show(1 + m.threshold)} ({m.threshold * 100:.0f} % {more})"
        if m.declared is not None:
            declared = f"declared up to {show(1 + m.declared)}"
    if declared and m.declared_reason:
        declared += f": {m.declared_reason}"
    runs = len(m.spreads)
    if not drawn:
        noise = "—"
    elif runs <= 2:
        noise = "one baseline: no noise floor"
    else:
        low_n, high_n = m.noise_interval.low, m.noise_interval.high
        noise = f"baselines {show(m.noise)} [{show(low_n)}, {show(high_n)}]"
    sampling = _STOPPED.get(m.stopped, f"sampling stopped: {m.stopped}" if m.stopped else "")
    order = "the runs took turns" if m.interleaved else "the runs were measured one after another"
    return MetricRow(
        anchor=f"metric-{i}",
        metric=m.metric,
        unit=m.unit,
        decision=m.decision.value,
        meaning=_DECISION_WORDS[m.decision].format(more=more, less=less),
        result=result,
        reason=m.reason,
        threshold=threshold,
        declared=declared,
        noise=noise,
        sampling="; ".join(x for x in (sampling, order) if x),
        runs=tuple(
            PerfRun(s.run, run_class(j, runs), s.n, s.rounds, _rates(m.rates, s.run)) for j, s in enumerate(m.spreads)
        ),
        distributions=distributions(m),
        ratio=ratio(m) if drawn else None,
    )


def _rates(rates: Mapping[str, float], run: str) -> str:
    """A run's throughput medians (`rates` is keyed "RUN images/s", "RUN MB/s")."""
    shown = [
        (f"{rates[k]:.1f} images/s" if name == "images/s" else f"{rates[k]:.2f} MB/s")
        for name in ("images/s", "MB/s")
        if (k := f"{run} {name}") in rates
    ]
    return ", ".join(shown)


def _robustness_section(c: Comparison, runs: Sequence[Manifest]) -> Robustness:
    rows = robustness_rows(c)
    count = Counter(r.change for r in rows)
    n = len(rows)
    said = f"{n} input{'' if n == 1 else 's'}: " + ", ".join(f"{count[w]} {w}" for w in CHANGES if count[w])
    revivals = tuple(_revivals(m, m.robustness) for m in runs if m.robustness is not None)
    return Robustness(said, rows, revivals)


def _revivals(m: Manifest, setup: RobustnessSetup) -> RunRevivals:
    said = tuple(
        f"{r.input} ({r.reaction}: {r.detail})" if r.detail else f"{r.input} ({r.reaction})" for r in setup.revivals
    )
    return RunRevivals(f"{m.role} {m.replica}", said, setup.stopped)


def robustness_rows(c: Comparison) -> tuple[RobustnessRow, ...]:
    """Every robustness input of the comparison, those with a change first (CHANGES order), then in corpus order."""
    cases = {x.case: x for x in c.cases}
    security: dict[str, list[SecurityChange]] = {}
    for change in c.security:
        if change.name.startswith(_ROBUSTNESS):
            security.setdefault(change.case, []).append(change)
    rows = [_robustness_row(r, cases.get(r.case), security.get(r.case, [])) for r in c.robustness]
    return tuple(sorted(rows, key=lambda row: CHANGES.index(row.change)))  # stable: corpus order within a change


def _robustness_row(r: InputReactions, case: CaseComparison | None, changes: Sequence[SecurityChange]) -> RobustnessRow:
    status = case.status if case is not None else CaseStatus.UNCHANGED
    first = _seen(r.before[0] if r.before else None, case.before if case else None)
    others = [_seen(x, None) for x in r.before[1:] if x is not None and x != r.before[0]]
    before = (first, *dict.fromkeys(others))  # each differing baseline reaction once, in replica order
    echo = next((x for x in changes if x.name == _ECHO), None)
    after = _seen(r.after, case.after if case else None)
    change = _change(case, changes, len(before) > 1)
    # Unchanged, yet read differently after: the comparison left out a class made of a timing (diff.TIMED_CLASSES).
    differs = first.kind and after.kind and (first.kind, first.when) != (after.kind, after.when)
    return RobustnessRow(
        input=r.input,
        case=r.case,
        description=r.description,
        before=before,
        after=after,
        echo=_echo(echo),
        change=change,
        status=status.value,
        status_words=_STATUS_WORDS[status],
        edge=EDGE if change == "unchanged" and differs else "",
    )


def _seen(reaction: Reaction | None, outcome: Outcome | None) -> Seen:
    if reaction is None:
        return Seen("", missing=_outcome(outcome) if outcome is not Outcome.PASSED else "no reaction recorded")
    return Seen(reaction.kind, reaction.when, reaction.detail)


def _echo(change: SecurityChange | None) -> str:
    """Whether the device answered C-ECHO after the input: "yes", or "yes → no" when it moved; "—" when not seen."""
    if change is None:
        return "—"
    before = _yes_no(change.before, change.absent == "before")
    after = _yes_no(change.after, change.absent == "after")
    return before if before == after else f"{before} → {after}"


def _yes_no(value: JSON, absent: bool) -> str:
    if absent:
        return "—"
    return ("yes" if value else "no") if isinstance(value, bool) else value_words(value)


def _change(case: CaseComparison | None, changes: Sequence[SecurityChange], noisy: bool) -> str:
    """The security machinery's direction first (loosened outranks tightened), then the case's own differences."""
    directions = {x.direction for x in changes}
    for direction in (Direction.LOOSENED, Direction.TIGHTENED, Direction.CHANGED):
        if direction in directions:
            return direction.value
    own = case.differences if case is not None else ()
    if any(d.classification is not Classification.NOISE for d in own):
        return "changed"
    if noisy or Direction.NOISY in directions or own:
        return "noisy"
    return "unchanged"
