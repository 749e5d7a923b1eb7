"""Golden comparisons: the inputs of every comparison the compare, verdict, security and report tests build, and
their comparison.json, recorded once so that a faster compare is proven to give the same bytes.

Record (only when compare's output is meant to change, and say why in the commit):

    rm -r tests/data/golden
    .venv/bin/pytest -p tests.golden tests/unit/test_verdict.py tests/unit/test_security.py \\
        tests/unit/test_reports.py tests/integration/test_report_browser.py -k "not screenshot and not colour" -q
    .venv/bin/python -m tests.golden     # the synthetic comparisons

Loaded as a pytest plugin (`-p tests.golden`), it wraps `harness.compare.engine.compare` before the
test modules import it and writes each distinct call's inputs and json report under GOLDEN.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import harness.compare
import harness.compare.engine
from harness.compare.policy import ExpectedChange, Policy
from harness.model import JSON, CaseRecord, Comparison, DiffKind, Manifest, RunRecord, to_json
from harness.report.json_report import JsonReporter

__all__ = ["CREATED", "GOLDEN", "SYNTHETIC", "document", "load_input", "recorded", "report_bytes"]

GOLDEN = Path(__file__).parent / "data" / "golden"
SYNTHETIC = (106, 1000)  # cases of the synthetic comparisons kept (seed 1422)
CREATED = "2026-11-28T10:30:00+00:00"  # the synthetic comparisons' stamp
_NO_POLICY = Policy()


def report_bytes(comparison: Comparison, runs: Sequence[Manifest]) -> str:
    """comparison.json as the json report wrote it when the goldens were recorded: sorted keys, indent 2."""
    return json.dumps(document(comparison, runs), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def document(comparison: Comparison, runs: Sequence[Manifest]) -> dict[str, JSON]:
    """The json report's document: the comparison and its runs' manifests."""
    found = to_json(comparison)
    assert isinstance(found, dict)
    found["runs"] = [to_json(m) for m in runs]
    return found


def recorded() -> list[Path]:
    """Every recorded input file, in name order."""
    return sorted(GOLDEN.glob("*.input.json"))


def load_input(path: Path) -> tuple[list[RunRecord], RunRecord, Policy, dict[str, Any]]:
    """Baselines, candidate, policy and compare's keyword arguments of one recorded call."""
    data = json.loads(path.read_text(encoding="utf-8"))
    runs = [_run(r) for r in data["baselines"]]
    entries = tuple(ExpectedChange(**{**e, "kind": DiffKind(e["kind"]) if e["kind"] else None}) for e in data["policy"])
    return runs, _run(data["candidate"]), Policy(entries), data["keywords"]


def _run(d: dict[str, Any]) -> RunRecord:
    cases = tuple(CaseRecord.from_json(c) for c in d["cases"])
    return RunRecord(d["directory"], Manifest.from_json(d["manifest"]), cases)


def _record_run(run: RunRecord) -> dict[str, JSON]:
    return {"directory": run.directory, "manifest": to_json(run.manifest), "cases": [c.to_json() for c in run.cases]}


def _keep(path: Path, comparison: Comparison, runs: Sequence[Manifest]) -> None:
    """The json report's own file, as it writes it today (which is also `report_bytes`, checked)."""
    with tempfile.TemporaryDirectory() as out:
        written = JsonReporter().write(comparison, Path(out), runs).read_text(encoding="utf-8")
    assert written == report_bytes(comparison, runs), "the json report's layout is no longer the recorded one"
    path.write_text(written, encoding="utf-8")


def _recording(original: Callable[..., Comparison]) -> Callable[..., Comparison]:
    def compare(
        baselines: Sequence[RunRecord], candidate: RunRecord, policy: Policy = _NO_POLICY, **keywords: Any
    ) -> Comparison:
        result = original(baselines, candidate, policy, **keywords)
        inputs: dict[str, JSON] = {
            "test": os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0],
            "baselines": [_record_run(b) for b in baselines],
            "candidate": _record_run(candidate),
            "policy": [to_json(dataclasses.asdict(e)) for e in policy.entries],
            "keywords": keywords,
        }
        text = json.dumps(inputs, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
        name = hashlib.sha256(text.replace(str(inputs["test"]), "").encode()).hexdigest()[:12]
        GOLDEN.mkdir(parents=True, exist_ok=True)
        if not (GOLDEN / f"{name}.input.json").exists():
            (GOLDEN / f"{name}.input.json").write_text(text, encoding="utf-8")
            _keep(GOLDEN / f"{name}.comparison.json", result, [r.manifest for r in (*baselines, candidate)])
        return result

    return compare


def pytest_configure() -> None:
    """Wrap compare before any test module imports it."""
    wrapped = _recording(harness.compare.engine.compare)
    harness.compare.engine.compare = wrapped
    harness.compare.compare = wrapped


def main() -> int:
    from tests.synthetic import synthetic

    GOLDEN.mkdir(parents=True, exist_ok=True)
    for cases in SYNTHETIC:
        s = synthetic(cases)
        comparison = harness.compare.engine.compare(
            s.baselines, s.candidate, s.policy, created="2026-11-28T10:30:00+00:00"
        )
        _keep(
            GOLDEN / f"synthetic-{cases}.comparison.json", comparison, [r.manifest for r in (*s.baselines, s.candidate)]
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
