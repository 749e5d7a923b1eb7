"""Mutation tests of the workflow suites: every behaviour-changing reference modality variant is REGRESSED, in the right case.

The candidate is devices/reference-modality/profile.toml's with its `--variant` replaced, compared with one
baseline run (a real change needs no noise floor) that every variant shares, as tests/integration/test_mutation.py
does for the reference device.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.model import CaseStatus, Classification, Verdict
from harness.profile import parse_profile
from simulators.reference_modality import PERFORMANCE_METRICS, VARIANTS
from tests.conftest import ROOT
from tests.mutation import SharedBaseline, variant_table, with_variants

PROFILE = ROOT / "devices" / "reference-modality" / "profile.toml"
CLEAN = {"clean", "clean-rebuild"}
# Slower only: tests/integration/test_workflow_performance.py holds them (the functional suites see no change).
PERFORMANCE = set(PERFORMANCE_METRICS)
_COMMIT_ALL = "workflow/test_commitment.py::test_commitment_all_held"
_COMMIT_FAILURE = "workflow/test_commitment.py::test_commitment_failure"
_IMAGES = "workflow/test_images.py::test_images"
_MPPS = "workflow/test_mpps.py::test_mpps_completed"
_QUERY = "workflow/test_worklist_query.py::test_worklist_query"

# For each behaviour-changing variant, the cases that must be named as regressed (workflow.md section 9).
MUST_NAME: dict[str, tuple[str, ...]] = {
    "no-accession-in-images": (_IMAGES, "workflow/test_scenario.py::test_scenario"),
    "no-accession-in-mpps": (_MPPS,),
    "completed-twice": (_MPPS,),
    "completed-without-series": (_MPPS,),
    "query-without-station": (_QUERY,),
    "implicit-only": (_IMAGES,),
    "commit-new-association": (_COMMIT_ALL,),
    "no-commitment": (_COMMIT_ALL,),
    "ignores-commitment-failure": (_COMMIT_FAILURE,),
    "refuses-report-role": (_COMMIT_ALL,),
    "regression": (_QUERY, _IMAGES, _MPPS, _COMMIT_FAILURE),
}

# A fragment of a regressed difference's path in the first named case: the report says what changed.
MUST_SAY = {
    "no-accession-in-images": "images.1.attributes.00080050",  # Accession Number
    "no-accession-in-mpps": "ihe.accession_number",
    "completed-twice": "mpps.set.statuses",
    "completed-without-series": "mpps.set.statuses",
    "query-without-station": "mwl.query.keys",
    "implicit-only": "transfer_syntax",
    "commit-new-association": "commit.how",
    "no-commitment": "commit.requested",
    "ignores-commitment-failure": "commit.failure_reaction",
    "refuses-report-role": "commit.role",
    "regression": "mwl.query.keys",
}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> SharedBaseline:
    """One baseline run of profile.toml holding a copy of its candidate table per variant, the `--variant`
    replaced, for every case of this module on this xdist worker."""
    text = PROFILE.read_text(encoding="utf-8")
    shipped = '"--variant", "clean-rebuild"'
    table = variant_table(text, "candidate")
    assert table.count(shipped) == 1, f"{PROFILE}: expected one {shipped} in [variants.candidate] to replace"
    tables = {v: table.replace(shipped, f'"--variant", "{v}"') for v in sorted(MUST_NAME)}
    profile = parse_profile(with_variants(text, tables), "<mutation:reference-modality>")
    return SharedBaseline(profile, tmp_path_factory.mktemp("modality"))


def test_every_behaviour_changing_variant_has_an_expectation() -> None:
    assert set(VARIANTS) - CLEAN - PERFORMANCE == set(MUST_NAME) == set(MUST_SAY)


@pytest.mark.parametrize("variant", sorted(MUST_NAME))
def test_behaviour_change_is_regressed(variant: str, shared: SharedBaseline, tmp_path: Path) -> None:
    comparison = shared.compare(variant, tmp_path)
    assert comparison.verdict is Verdict.REGRESSED, comparison.reasons
    regressed = {c.case for c in comparison.cases if c.status is CaseStatus.REGRESSED}
    for case in MUST_NAME[variant]:
        assert case in regressed, (case, sorted(regressed))
        assert any(case in reason for reason in comparison.reasons), comparison.reasons
    named = next(c for c in comparison.cases if c.case == MUST_NAME[variant][0])
    paths = [d.path for d in named.differences if d.classification is Classification.REGRESSED]
    assert any(MUST_SAY[variant] in p for p in paths), paths
