"""Cases for services the profile does not declare are skipped and recorded as not applicable."""

from __future__ import annotations

from pathlib import Path

from harness.demo import demo_text
from harness.model import CaseStatus, Outcome, Verdict
from harness.profile import parse_profile
from harness.rundir import read_run
from harness.validation import run_validation


def test_undeclared_services_are_not_applicable(tmp_path: Path) -> None:
    text = demo_text("clean-rebuild", "clean").replace(
        'services = ["echo", "store", "find", "move", "get", "commitment"]', 'services = ["echo", "store"]'
    )
    assert 'services = ["echo", "store"]' in text, "the reference profile's services line changed"
    profile = parse_profile(text, str(tmp_path / "store-only.toml"))
    result = run_validation(profile, tmp_path / "out", replicas=1)
    comparison = result.comparison
    assert comparison.verdict is Verdict.UNCHANGED, comparison.reasons

    by_case = {c.case: c for c in comparison.cases}
    query_and_retrieve = [c for name, c in by_case.items() if name.startswith(("query/", "retrieve/"))]
    assert query_and_retrieve
    assert {c.status for c in query_and_retrieve} == {CaseStatus.NOT_APPLICABLE}
    assert by_case["verification/test_echo.py::test_echo"].status is CaseStatus.UNCHANGED

    run = read_run(tmp_path / "out" / "runs" / "candidate-1")
    records = run.by_case()
    na = records["query/test_find.py::test_find[study-universal]"]
    assert na.outcome is Outcome.NOT_APPLICABLE
    assert "does not declare 'find'" in na.message
    # Without C-GET declared, the storage case records the store only.
    store = records["storage/test_store.py::test_store_then_retrieve[CT-explicit]"]
    assert store.outcome is Outcome.PASSED
    assert set(store.observed()) == {"store"}
