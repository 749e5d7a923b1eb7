"""allure-results/ of a comparison: one Allure 2 result per suite case, differences attached as JSON."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from harness.model import JSON, CaseComparison, CaseStatus, Classification, Comparison, Manifest, to_json
from harness.report._case import split_case
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
            (results / f"{result['uuid']}-result.json").write_text(
                json.dumps(result, ensure_ascii=False), encoding="utf-8"
            )
        return results


def _result(case: CaseComparison, uid: str, start: int, stop: int) -> dict[str, JSON]:
    module, test = split_case(case.case)
    feature = module.rsplit(".", 1)[0] if "." in module else module or "suites"
    return {
        "uuid": uid,
        "historyId": hashlib.md5(case.case.encode()).hexdigest(),
        "testCaseId": hashlib.md5(case.case.encode()).hexdigest(),
        "name": test,
        "fullName": case.case,
        "status": _STATUS[case.status],
        "statusDetails": {"message": _message(case), "trace": ""},
        "stage": "finished",
        "start": start,
        "stop": stop,
        "labels": [
            {"name": "parentSuite", "value": _PARENT_SUITE},
            {"name": "suite", "value": module or case.case},
            {"name": "feature", "value": feature},
            {"name": "tag", "value": case.status.value},
            {"name": "framework", "value": "patchgate"},
        ],
        "parameters": [],
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
