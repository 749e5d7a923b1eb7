"""allure-results/ of a comparison: one Allure 2 result per suite case (differences attached as JSON) and per
performance metric (its charts attached as SVG)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from harness.model import (
    JSON,
    CaseComparison,
    CaseStatus,
    Classification,
    Comparison,
    Manifest,
    MetricComparison,
    PerfDecision,
    to_json,
)
from harness.report._case import split_case
from harness.report._charts import compared, distributions, ratio, standalone
from harness.report.junit import NOT_JUDGED, PERFORMANCE
from harness.rundir import OutDir

__all__ = ["AllureReporter"]

_STATUS = {
    CaseStatus.UNCHANGED: "passed",
    CaseStatus.CHANGED_AS_EXPECTED: "passed",
    CaseStatus.REGRESSED: "failed",
    CaseStatus.NOT_APPLICABLE: "skipped",
}
_PARENT_SUITE = "patchgate comparison"


class AllureReporter:
    """Writes `allure-results/<uuid>-result.json` (and `-attachment.json`) for `allure generate`.

    UUIDs derive from the comparison and the case, so writing the same comparison twice
    overwrites rather than duplicates.
    """

    name = "allure"

    def write(self, comparison: Comparison, out: Path, runs: Sequence[Manifest]) -> Path:
        results = OutDir(out).allure
        results.mkdir(parents=True, exist_ok=True)
        start, stop = _span(comparison, runs)
        for case in comparison.cases:
            key = f"{comparison.candidate}|{comparison.created}|{case.case}"
            result = _result(case, str(uuid.uuid5(uuid.NAMESPACE_URL, key)), start, stop)
            if case.differences:
                source = f"{uuid.uuid5(uuid.NAMESPACE_URL, key + '|differences')}-attachment.json"
                (results / source).write_text(
                    json.dumps(to_json(case.differences), ensure_ascii=False), encoding="utf-8"
                )
                result["attachments"] = [{"name": "differences", "source": source, "type": "application/json"}]
            _write(results, result)
        for metric in comparison.performance:
            key = f"{comparison.candidate}|{comparison.created}|{PERFORMANCE}.{metric.metric}"
            result = _metric(metric, str(uuid.uuid5(uuid.NAMESPACE_URL, key)), start, stop)
            charts = [("distributions", distributions(metric))]
            if compared(metric):
                charts.append(("ratio", ratio(metric)))
            attachments: list[JSON] = []
            for name, chart in charts:
                source = f"{uuid.uuid5(uuid.NAMESPACE_URL, f'{key}|{name}')}-attachment.svg"
                (results / source).write_text(standalone(chart), encoding="utf-8")
                attachments.append({"name": name, "source": source, "type": "image/svg+xml"})
            result["attachments"] = attachments
            _write(results, result)
        return results


def _result(case: CaseComparison, uid: str, start: int, stop: int) -> dict[str, JSON]:
    module, test = split_case(case.case)
    feature = module.rsplit(".", 1)[0] if "." in module else module or "suites"
    return _entry(
        uid, case.case, test, _STATUS[case.status], _message(case), (start, stop),
        suite=module or case.case, feature=feature, tag=case.status.value,
    )  # fmt: skip


def _metric(m: MetricComparison, uid: str, start: int, stop: int) -> dict[str, JSON]:
    """A metric as a test result, `performance.<metric>`, so Allure lists it beside the cases."""
    said = f"{m.decision.value}: {m.reason}"
    if m.decision is PerfDecision.EXPECTED and m.declared_reason:
        said += f": as declared: {m.declared_reason}"
    return _entry(
        uid, f"{PERFORMANCE}.{m.metric}", m.metric, _perf_status(m.decision), said, (start, stop),
        suite=PERFORMANCE, feature=PERFORMANCE, tag=m.decision.value, parameters=[{"name": "unit", "value": m.unit}],
    )  # fmt: skip


def _write(results: Path, result: dict[str, JSON]) -> None:
    (results / f"{result['uuid']}-result.json").write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")


def _perf_status(decision: PerfDecision) -> str:
    """Regressed fails; a metric not judged (noisy, undecided, missing) is skipped, as in junit.xml; the rest passed."""
    return "failed" if decision is PerfDecision.REGRESSED else "skipped" if decision in NOT_JUDGED else "passed"


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
    """One Allure 2 test result; `full` (the case id or `performance.<metric>`) is its history id."""
    return {
        "uuid": uid,
        "historyId": hashlib.md5(full.encode()).hexdigest(),
        "testCaseId": hashlib.md5(full.encode()).hexdigest(),
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
    counts = {k: sum(1 for d in case.differences if d.classification is k) for k in Classification}
    before = case.before.value if case.before else "absent"
    after = case.after.value if case.after else "absent"
    head = f"{case.status.value}: outcome {before} → {after}"
    if not case.differences:
        return head
    parts = ", ".join(f"{n} {k.value}" for k, n in counts.items() if n)
    regressed = [d.path for d in case.differences if d.classification is Classification.REGRESSED]
    tail = f"; regressed paths: {', '.join(regressed)}" if regressed else ""
    return f"{head}; differences: {parts}{tail}"


def _span(comparison: Comparison, runs: Sequence[Manifest]) -> tuple[int, int]:
    """Start and stop (ms) of the candidate run, else the comparison's creation time."""
    candidate = next((m for m in runs if m.role == "candidate"), None)
    stamps = (candidate.started, candidate.finished) if candidate else (comparison.created, comparison.created)
    try:
        start, stop = (int(datetime.fromisoformat(s).timestamp() * 1000) for s in stamps)
    except ValueError:
        return 0, 0
    return start, max(start, stop)
