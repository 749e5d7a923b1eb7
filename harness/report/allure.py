"""allure-results/ of a comparison: one Allure result per suite case (before and after attached) and per performance
metric (its charts attached as SVG), with severity, epic/feature/story, parameters, ticket links, the environment
and the categories (regressed, expected, noise, inconclusive), in Allure's documented result format."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import msgspec

from harness.batch import Batch
from harness.model import (
    JSON,
    CaseComparison,
    CaseStatus,
    Classification,
    Comparison,
    Direction,
    Manifest,
    MetricComparison,
    PerfDecision,
)
from harness.report._case import split_case
from harness.report._charts import compared, distributions, ratio, standalone
from harness.report._oneline import SERVICE_WORDS, headline, parameter
from harness.report.junit import NOT_JUDGED, PERFORMANCE, candidate_of, sampling_times
from harness.rundir import OutDir

__all__ = ["CATEGORIES", "EPIC", "AllureReporter", "severity"]

_STATUS = {
    CaseStatus.UNCHANGED: "passed",
    CaseStatus.CHANGED_AS_EXPECTED: "passed",
    CaseStatus.REGRESSED: "failed",
    CaseStatus.NOT_APPLICABLE: "skipped",
}
_PARENT_SUITE = "patchgate comparison"
EPIC = "patchgate"
# Allure's categories (categories.json) match a result's status and message; every message starts with its word.
CATEGORIES: list[JSON] = [
    {"name": "Regressed", "matchedStatuses": ["failed"], "messageRegex": "regressed: .*"},
    {"name": "Expected changes", "matchedStatuses": ["passed"], "messageRegex": "expected: .*"},
    {"name": "Noise (differs between baseline replicas)", "matchedStatuses": ["passed"], "messageRegex": "noise: .*"},
    {"name": "Inconclusive", "matchedStatuses": ["skipped"], "messageRegex": "inconclusive: .*"},
]


class AllureReporter:
    """Writes `allure-results/` (`<uuid>-result.json`, attachments, environment.properties, categories.json).

    UUIDs derive from the comparison and the case, so writing the same comparison twice overwrites rather than
    duplicates. `ticket_url` (the profile's `[report] ticket_url`, `{ticket}` in it) links each expected
    difference's policy ticket.
    """

    name = "allure"

    def __init__(self, ticket_url: str = "") -> None:
        self.ticket_url = ticket_url

    def write(self, comparison: Comparison, out: Path, runs: Sequence[Manifest]) -> Path:
        return self.start(comparison, out, runs).wait()

    def start(self, comparison: Comparison, out: Path, runs: Sequence[Manifest]) -> Batch:
        """The results handed to a helper process that writes them (harness.batch); `wait()` on it."""
        results = OutDir(out).allure
        results.mkdir(parents=True, exist_ok=True)
        return Batch(results, self._files(comparison, runs))

    def _files(self, comparison: Comparison, runs: Sequence[Manifest]) -> Iterator[tuple[str, bytes]]:
        start = _start(comparison, runs)
        loosened = _loosened(comparison)
        for case in comparison.cases:
            key = f"{comparison.candidate}|{comparison.created}|{case.case}"
            result = _result(case, str(uuid.uuid5(uuid.NAMESPACE_URL, key)), start, severity(case, loosened))
            result["links"] = self._links(case)
            if case.differences:
                attachments: list[JSON] = []
                for side in ("before", "after"):
                    source = f"{uuid.uuid5(uuid.NAMESPACE_URL, f'{key}|{side}')}-attachment.json"
                    values = {d.path: d.before if side == "before" else d.after for d in case.differences}
                    yield source, _json(values, indent=1)
                    attachments.append({"name": side, "source": source, "type": "application/json"})
                result["attachments"] = attachments
            yield _named(result)
        sampled = sampling_times(runs)
        for metric in comparison.performance:
            key = f"{comparison.candidate}|{comparison.created}|{PERFORMANCE}.{metric.metric}"
            result = _metric(metric, str(uuid.uuid5(uuid.NAMESPACE_URL, key)), start, sampled.get(metric.metric))
            charts = [("distributions", distributions(metric))]
            if compared(metric):
                charts.append(("ratio", ratio(metric)))
            attachments = []
            for name, chart in charts:
                source = f"{uuid.uuid5(uuid.NAMESPACE_URL, f'{key}|{name}')}-attachment.svg"
                yield source, standalone(chart).encode("utf-8")
                attachments.append({"name": name, "source": source, "type": "image/svg+xml"})
            result["attachments"] = attachments
            yield _named(result)
        yield "categories.json", json.dumps(CATEGORIES, indent=1).encode("utf-8")
        yield "environment.properties", _environment(comparison, runs).encode("utf-8")

    def _links(self, case: CaseComparison) -> list[JSON]:
        """One issue link per policy ticket its expected differences cite (none without a URL template)."""
        if not self.ticket_url:
            return []
        tickets = dict.fromkeys(d.ticket for d in case.differences if d.ticket)
        return [{"name": t, "url": self.ticket_url.replace("{ticket}", t), "type": "issue"} for t in tickets]


def severity(case: CaseComparison, loosened: frozenset[tuple[str, str]] = frozenset()) -> str:
    """critical: a regressed difference on a security observation that loosened; other regressions major;
    expected changes minor; the rest normal. `loosened`: (case, observation) pairs (Comparison.security)."""
    if case.status is CaseStatus.REGRESSED:
        names = {name for c, name in loosened if c == case.case}
        regressed = (d.path for d in case.differences if d.classification is Classification.REGRESSED)
        if any(path == n or path.startswith((f"{n}.", f"{n}[")) for path in regressed for n in names):
            return "critical"
        return "major"
    return "minor" if case.status is CaseStatus.CHANGED_AS_EXPECTED else "normal"


def _loosened(comparison: Comparison) -> frozenset[tuple[str, str]]:
    return frozenset((s.case, s.name) for s in comparison.security if s.direction is Direction.LOOSENED)


def _result(case: CaseComparison, uid: str, start: int, level: str) -> dict[str, JSON]:
    module, test = split_case(case.case)
    feature = module.split(".", 1)[0] if module else "suites"  # the suite: storage, query, ...
    parameters: list[JSON] = []
    if said := parameter(case.case):
        parameters.append({"name": "parametrisation", "value": said})
    if case.durations_before:
        seconds = ", ".join("not run" if s is None else f"{s:.3f} s" for s in case.durations_before)
        parameters.append({"name": "baseline durations", "value": seconds, "excluded": True})
    duration = round((case.duration_after or 0.0) * 1000)
    result = _entry(
        uid, case.case, test, _STATUS[case.status], _message(case), (start, start + duration),
        suite=module or case.case, feature=feature, tag=case.status.value, parameters=parameters,
    )  # fmt: skip
    labels = result["labels"]
    assert isinstance(labels, list)
    labels.append({"name": "severity", "value": level})
    if case.service:
        labels.append({"name": "story", "value": SERVICE_WORDS.get(case.service, case.service)})
    return result


def _metric(m: MetricComparison, uid: str, start: int, sampled: float | None) -> dict[str, JSON]:
    """A metric as a test result, `performance.<metric>`, so Allure lists it beside the cases."""
    said = f"{_metric_word(m.decision)}: {m.decision.value}: {m.reason}"
    if m.decision is PerfDecision.EXPECTED and m.declared_reason:
        said += f": as declared: {m.declared_reason}"
    level = (
        "major"
        if m.decision is PerfDecision.REGRESSED
        else "minor"
        if m.decision is PerfDecision.EXPECTED
        else "normal"
    )
    result = _entry(
        uid, f"{PERFORMANCE}.{m.metric}", m.metric, _perf_status(m.decision), said,
        (start, start + round((sampled or 0.0) * 1000)),
        suite=PERFORMANCE, feature=PERFORMANCE, tag=m.decision.value, parameters=[{"name": "unit", "value": m.unit}],
    )  # fmt: skip
    labels = result["labels"]
    assert isinstance(labels, list)
    labels.append({"name": "severity", "value": level})
    return result


def _named(result: dict[str, JSON]) -> tuple[str, bytes]:
    return f"{result['uuid']}-result.json", _json(result)


def _json(value: JSON, indent: int | None = None) -> bytes:
    """UTF-8 JSON; indented (an attachment a reader opens) by json, a result on one line by msgspec, at a third of
    json's time: 10,000 of them in a large comparison."""
    if indent is None:
        return _ENCODE(value)
    return json.dumps(value, ensure_ascii=False, indent=indent).encode("utf-8")


_ENCODE = msgspec.json.Encoder().encode


def _perf_status(decision: PerfDecision) -> str:
    """Regressed fails; a metric not judged (noisy, undecided, missing) is skipped, as in junit.xml; the rest passed."""
    return "failed" if decision is PerfDecision.REGRESSED else "skipped" if decision in NOT_JUDGED else "passed"


def _metric_word(decision: PerfDecision) -> str:
    """The category word a metric's message starts with."""
    if decision is PerfDecision.REGRESSED:
        return "regressed"
    if decision in NOT_JUDGED:
        return "inconclusive"
    return "expected" if decision is PerfDecision.EXPECTED else "judged"


def _entry(
    uid: str,
    full: str,
    name: str,
    status: str,
    message: str,
    span: tuple[int, int],
    *,
    suite: str,
    feature: str,
    tag: str,
    parameters: list[JSON] | None = None,
) -> dict[str, JSON]:
    """One Allure test result; `full` (the case id or `performance.<metric>`) is its history id."""
    history = hashlib.md5(full.encode()).hexdigest()
    return {
        "uuid": uid,
        "historyId": history,
        "testCaseId": history,
        "name": name,
        "fullName": full,
        "status": status,
        "statusDetails": {"message": message, "trace": ""},
        "stage": "finished",
        "start": span[0],
        "stop": span[1],
        "labels": [
            {"name": "parentSuite", "value": _PARENT_SUITE},
            {"name": "suite", "value": suite},
            {"name": "epic", "value": EPIC},
            {"name": "feature", "value": feature},
            {"name": "tag", "value": tag},
            {"name": "framework", "value": "patchgate"},
        ],
        "parameters": parameters or [],
        "links": [],
        "steps": [],
        "attachments": [],
    }


def _message(case: CaseComparison) -> str:
    """`<category>: ...`: the word categories.json matches, then what happened (a regression in one line)."""
    counts = {k: sum(1 for d in case.differences if d.classification is k) for k in Classification}
    before = case.before.value if case.before else "absent"
    after = case.after.value if case.after else "absent"
    if case.status is CaseStatus.REGRESSED:
        return f"regressed: {headline(case)}"
    word = {CaseStatus.CHANGED_AS_EXPECTED: "expected", CaseStatus.NOT_APPLICABLE: "not applicable"}.get(
        case.status, "noise" if counts[Classification.NOISE] else "unchanged"
    )
    head = f"{word}: outcome {before} → {after}"
    if not case.differences:
        return head
    parts = ", ".join(f"{n} {k.value}" for k, n in counts.items() if n)
    return f"{head}; differences: {parts}"


def _start(comparison: Comparison, runs: Sequence[Manifest]) -> int:
    """When the candidate run started (ms), else the comparison's creation time; each result starts there and
    lasts its own duration (the runs record how long each case took, not when it began)."""
    candidate = candidate_of(runs)
    stamp = candidate.started if candidate else comparison.created
    try:
        return int(datetime.fromisoformat(stamp).timestamp() * 1000)
    except ValueError:
        return 0


def _environment(comparison: Comparison, runs: Sequence[Manifest]) -> str:
    """environment.properties: device, variants, each run's image and digests where recorded, patchgate's version."""
    facts = [
        ("device", comparison.device),
        ("baseline.variant", comparison.baseline_variant),
        ("candidate.variant", comparison.candidate_variant),
        ("verdict", comparison.verdict.value),
    ]
    for m in runs:
        run = f"{m.role}-{m.replica}"
        image = m.extra.image
        if image is not None:
            facts.append((f"{run}.image", image.name))
            if image.digests:
                facts.append((f"{run}.image.digests", " ".join(image.digests)))
            elif image.id:
                facts.append((f"{run}.image.id", image.id))
    candidate = candidate_of(runs)
    if candidate is not None:
        facts.append(("patchgate.version", candidate.versions.get("patchgate", "")))
    return "".join(f"{_escape(k)}={_escape(v)}\n" for k, v in facts)


def _escape(text: str) -> str:
    """A .properties key or value on one line: backslash and line breaks escaped, beyond ASCII as \\uXXXX
    (java.util.Properties reads Latin-1; separators after the first need no escape and keys are ours)."""
    out = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return "".join(c if ord(c) < 0x7F else _units(c) for c in out)


def _units(char: str) -> str:
    """`\\uXXXX` escapes of one character: two (a surrogate pair) beyond the Basic Multilingual Plane."""
    data = char.encode("utf-16-be")
    return "".join(f"\\u{int.from_bytes(data[i : i + 2], 'big'):04x}" for i in range(0, len(data), 2))
