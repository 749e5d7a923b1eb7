"""junit.xml of a comparison: one testcase per suite case and per performance metric, a failure for each regressed one.

Times are the candidate's: a case's duration in the candidate run, the suites' time of the candidate run, a
metric's sampling time; "0" where the runs did not record one (comparisons made before they were carried).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from harness.compare.diff import format_side
from harness.model import (
    CaseComparison,
    CaseStatus,
    Classification,
    Comparison,
    Difference,
    Direction,
    Manifest,
    MetricComparison,
    Outcome,
    PerfDecision,
)
from harness.report._case import split_case
from harness.report._charts import is_difference, quantity
from harness.report._oneline import headline, regressed
from harness.rundir import OutDir

__all__ = ["NOT_JUDGED", "PERFORMANCE", "JUnitReporter", "candidate_of", "sampling_times", "seconds", "xml_text"]

# Characters XML 1.0 cannot hold at all, even escaped; observations may carry any bytes.
_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SUITE = "patchgate comparison"
# A performance metric's testcase is `performance.<metric>`: this classname, the metric as its name.
PERFORMANCE = "performance"
# Metrics not judged (design 7.5: warnings, or INCONCLUSIVE) are skipped: CI shows them as neither passed nor failed.
NOT_JUDGED = frozenset({PerfDecision.NOISY, PerfDecision.UNDECIDED, PerfDecision.MISSING})


def candidate_of(runs: Sequence[Manifest]) -> Manifest | None:
    """The candidate run's manifest among a comparison's runs, if given."""
    return next((m for m in runs if m.role == "candidate"), None)


def seconds(value: float | None) -> str:
    """A `time` attribute: seconds with millisecond precision, "0" when not recorded."""
    return f"{value:.3f}" if value else "0"


def xml_text(text: str) -> str:
    """Text with XML-invalid characters replaced by U+FFFD (ElementTree escapes the rest)."""
    return _INVALID.sub("\ufffd", text)


class JUnitReporter:
    """Writes `junit.xml`, which CI servers show as a test run: regressed cases fail."""

    name = "junit"

    def write(self, comparison: Comparison, out: Path, runs: Sequence[Manifest]) -> Path:
        cases, metrics = comparison.cases, comparison.performance
        failures = sum(1 for c in cases if c.status is CaseStatus.REGRESSED)
        failures += sum(1 for m in metrics if m.decision is PerfDecision.REGRESSED)
        skipped = sum(1 for c in cases if c.status is CaseStatus.NOT_APPLICABLE)
        skipped += sum(1 for m in metrics if m.decision in NOT_JUDGED)
        root = ET.Element("testsuites", name=_SUITE)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=_SUITE,
            tests=str(len(cases) + len(metrics)),
            failures=str(failures),
            errors="0",
            skipped=str(skipped),
            time=seconds(_suites_time(runs)),
            timestamp=xml_text(comparison.created),
        )
        properties = ET.SubElement(suite, "properties")
        facts = [
            ("verdict", comparison.verdict.value),
            ("exit_code", str(comparison.verdict.exit_code)),
            ("device", comparison.device),
            ("baseline_variant", comparison.baseline_variant),
            ("candidate_variant", comparison.candidate_variant),
        ]
        facts += [(f"reason.{i}", r) for i, r in enumerate(comparison.reasons, start=1)]
        if comparison.security:
            # Counts only: CI dashboards chart them; report.html says which observations.
            facts += [
                (f"security.{d.value}", str(sum(1 for s in comparison.security if s.direction is d))) for d in Direction
            ]
        for name, value in facts:
            ET.SubElement(properties, "property", name=name, value=xml_text(value))
        for case in cases:
            _testcase(suite, case)
        sampled = sampling_times(runs)
        for metric in metrics:
            _metric(suite, metric, sampled.get(metric.metric))
        ET.indent(root)
        path = OutDir(out).junit
        ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
        return path


def _testcase(suite: ET.Element, case: CaseComparison) -> None:
    module, test = split_case(case.case)
    element = ET.SubElement(
        suite, "testcase", classname=xml_text(module), name=xml_text(test), time=seconds(case.duration_after)
    )
    if case.status is CaseStatus.REGRESSED:
        # The message is the one line a CI reporter shows; the body lists every regressed difference.
        failure = ET.SubElement(element, "failure", type="regressed", message=xml_text(headline(case)))
        failure.text = xml_text("\n".join(_line(d) for d in regressed(case)))
    elif case.status is CaseStatus.NOT_APPLICABLE:
        ET.SubElement(
            element,
            "skipped",
            message=xml_text(f"not applicable: baseline {_outcome(case.before)}, candidate {_outcome(case.after)}"),
        )
    expected = _of(case, Classification.EXPECTED)
    noise = _of(case, Classification.NOISE)
    if expected or noise:
        lines = [f"expected: {_line(d)} — {d.reason}" for d in expected]
        lines += [f"noise: {_line(d)}" for d in noise]
        ET.SubElement(element, "system-out").text = xml_text("\n".join(lines))


def _metric(suite: ET.Element, m: MetricComparison, sampled: float | None) -> None:
    """`performance.<metric>`: failed when regressed, skipped when not judged, else passed; the reason as one line."""
    element = ET.SubElement(suite, "testcase", classname=PERFORMANCE, name=xml_text(m.metric), time=seconds(sampled))
    line = xml_text(f"{m.decision.value}: {' '.join(m.reason.splitlines())}")
    if m.decision is PerfDecision.REGRESSED:
        runs = () if is_difference(m) else m.spreads  # memory.growth's values are memory at rest, not what it compares
        medians = [f"{s.run}: median {quantity(s.quantiles[3], m.unit)} of {s.n} values" for s in runs if s.n]
        ET.SubElement(element, "failure", type="regressed", message=line).text = xml_text("\n".join([line, *medians]))
    elif m.decision in NOT_JUDGED:
        ET.SubElement(element, "skipped", message=line)
    else:
        said = f"{line}: as declared: {m.declared_reason}" if m.decision is PerfDecision.EXPECTED else line
        ET.SubElement(element, "system-out").text = xml_text(said)


def _suites_time(runs: Sequence[Manifest]) -> float | None:
    candidate = candidate_of(runs)
    return candidate.timings.get("suites") if candidate else None


def sampling_times(runs: Sequence[Manifest]) -> dict[str, float]:
    """Metric -> seconds the conductor sampled it (the candidate's manifest, harness.perf.conductor.MetricSummary)."""
    candidate = candidate_of(runs)
    found: dict[str, float] = {}
    for summary in candidate.performance.metrics if candidate and candidate.performance else ():
        value = summary.get("seconds")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            found[str(summary.get("metric", ""))] = float(value)
    return found


def _of(case: CaseComparison, classification: Classification) -> list[Difference]:
    return [d for d in case.differences if d.classification is classification]


def _line(diff: Difference) -> str:
    return f"{diff.path} [{diff.kind.value}]: {format_side(diff, 'before')} → {format_side(diff, 'after')}"


def _outcome(outcome: Outcome | None) -> str:
    return outcome.value if outcome else "absent"
