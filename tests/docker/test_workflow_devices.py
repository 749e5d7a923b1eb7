"""Real third-party workflow devices in containers: each shipped profile held to its [expect] verdict, once.

Orthanc's Modality Worklists plugin and DCMTK's wlmscpfs as worklist providers, Orthanc as a storage
commitment SCP, and Orthanc as a modality driven through its REST API. For each: the identical candidate is
UNCHANGED with the workflow cases really run (not all "not applicable"), and the changed candidate is
REGRESSED naming exactly the cases its option changes, then CHANGED_AS_EXPECTED under its policy (the same
runs compared again: the devices do not run twice). One baseline replica each keeps the module short; with
no second replica nothing is masked as noise, so an UNCHANGED here is the stricter one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.model import CaseStatus, Comparison, Verdict
from harness.profile import Profile, load_profile
from harness.rundir import read_run
from harness.validation import compare_runs, policy_for, run_validation
from tests.conftest import ROOT
from tests.shipped import expected_verdict

DEVICES = ROOT / "devices"
# The worklist cases whose answers hold another station's items, which FilterIssuerAet takes away.
FILTERED = {
    f"worklist/test_worklist.py::test_worklist[{case}]"
    for case in (
        "universal", "station-other", "modality", "patient-id", "patient-id-list", "patient-name-star",
        "patient-name-question", "patient-name-lowercase", "accession-wildcard", "date", "date-range",
        "date-open-end", "time-open-end",
    )
} | {"worklist/test_worklist.py::test_cancel", "worklist/test_worklist.py::test_whole_sps_item"}  # fmt: skip
COMMITMENT_CASES = {
    f"commitment/test_commitment.py::{case}"
    for case in (
        "test_all_held", "test_one_missing", "test_unknown_instance", "test_class_conflict",
        "test_duplicate_transaction", "test_report_association[same]", "test_report_association[new]",
    )
}  # fmt: skip
# The initiator cases Orthanc as a modality can take part in (it has no MPPS SCU).
MODALITY_CASES = {
    "workflow/test_worklist_query.py::test_worklist_query",
    "workflow/test_images.py::test_images",
    "workflow/test_commitment.py::test_commitment_all_held",
    "workflow/test_commitment.py::test_commitment_failure",
    "workflow/test_scenario.py::test_scenario",
}


def _ran(comparison: Comparison, prefix: str) -> set[str]:
    """The cases under `prefix` that ran (passed or failed) in the baseline: the suite applied to the device."""
    return {c.case for c in comparison.cases if c.case.startswith(prefix) and c.before in ("passed", "failed")}


def _regressed(comparison: Comparison) -> set[str]:
    return {c.case for c in comparison.cases if c.status is CaseStatus.REGRESSED}


def _under_policy(profile: Profile, validated: Path, policy: Path) -> Comparison:
    """The runs of `validated` compared again under `policy`."""
    runs = validated / "runs"
    baselines = [read_run(d) for d in sorted(runs.glob("baseline-*"))]
    candidate = read_run(runs / "candidate-1")
    return compare_runs(baselines, candidate, policy_for(profile, [policy]), validated / "declared").comparison


def _regressed_then_declared(device: str, name: str, tmp_path: Path) -> tuple[Comparison, Comparison]:
    """`devices/DEVICE/NAME.toml` validated alone (REGRESSED), then the same runs under `NAME-policy.toml`
    (CHANGED_AS_EXPECTED), each as its [expect] key says: (bare, declared) for the caller's finer checks."""
    path = DEVICES / device / f"{name}.toml"
    profile = load_profile(path)
    bare = run_validation(profile, tmp_path, replicas=1).comparison
    assert bare.verdict is expected_verdict(path) is Verdict.REGRESSED, bare.reasons
    policy = DEVICES / device / f"{name}-policy.toml"
    declared = _under_policy(profile, tmp_path, policy)
    assert declared.verdict is expected_verdict(policy) is Verdict.CHANGED_AS_EXPECTED, declared.reasons
    return bare, declared


# Orthanc's worklist plugin answers a malformed date with Success and no match, where the suite wants a Failure.
ORTHANC_BAD_DATE = "worklist/test_worklist.py::test_bad_query[bad-date]"


@pytest.mark.parametrize(
    ("device", "name", "suite", "at_least", "failing"),
    [
        ("orthanc-worklist", "profile.toml", "worklist/", 25, {ORTHANC_BAD_DATE}),
        ("dcmtk-worklist", "profile.toml", "worklist/", 25, set()),
        ("orthanc", "commitment.toml", "commitment/", 7, set()),
        ("orthanc-modality", "profile.toml", "workflow/", 5, set()),
    ],
)
def test_identical_workflow_device_is_unchanged(
    device: str, name: str, suite: str, at_least: int, failing: set[str], images: dict[str, str], tmp_path: Path
) -> None:
    """The same image and configuration twice: UNCHANGED, with the device's workflow suite applied (not skipped)
    and passing but for the device's known deviations: a device that stopped working fails here, not UNCHANGED."""
    path = DEVICES / device / name
    comparison = run_validation(load_profile(path), tmp_path, replicas=1).comparison
    assert comparison.verdict is expected_verdict(path) is Verdict.UNCHANGED, comparison.reasons
    ran = _ran(comparison, suite)
    assert len(ran) >= at_least, sorted(ran)
    failed = {c.case for c in comparison.cases if c.case in ran and c.before == "failed"}
    assert failed == failing, sorted(failed ^ failing)
    if device == "orthanc-modality":
        assert ran == MODALITY_CASES, sorted(ran)


def test_orthanc_worklist_filter_is_regressed_then_expected(images: dict[str, str], tmp_path: Path) -> None:
    """FilterIssuerAet on: the other station's two items leave every answer that held them (PS3.4 K.6.1.2: a
    query without a station key matches every station), and a zero-length SPS sequence key now fails."""
    bare, declared = _regressed_then_declared("orthanc-worklist", "filtered", tmp_path)
    assert _regressed(bare) == FILTERED, sorted(_regressed(bare) ^ FILTERED)
    assert any("WL-7" in reason for reason in declared.reasons), declared.reasons


def test_wlmscpfs_character_set_is_regressed_then_expected(images: dict[str, str], tmp_path: Path) -> None:
    """--keep-char-set: each answer now carries its file's Specific Character Set (PS3.3 C.12.1.1.2) and the
    Japanese and Chinese names decode; which items match does not change."""
    bare, _ = _regressed_then_declared("dcmtk-worklist", "charset", tmp_path)
    regressed = [c for c in bare.cases if c.status is CaseStatus.REGRESSED]
    assert len(regressed) >= 15 and all(c.case.startswith("worklist/") for c in regressed), _regressed(bare)
    other = {(c.case, d.path) for c in regressed for d in c.differences if not d.path.startswith("mwl.answers[")}
    assert not other, sorted(other)  # the answers' content only: no status, no count of matches


def test_orthanc_commitment_refused_is_regressed_then_expected(images: dict[str, str], tmp_path: Path) -> None:
    """AllowStorageCommitment false for the modality: Orthanc aborts on every N-ACTION (no report, PS3.4 J.3.3),
    so every commitment case and nothing else changes."""
    bare, declared = _regressed_then_declared("orthanc", "commitment-refused", tmp_path)
    assert _regressed(bare) == COMMITMENT_CASES, sorted(_regressed(bare) ^ COMMITMENT_CASES)
    assert any("SEC-60" in reason for reason in declared.reasons), declared.reasons


def test_orthanc_modality_utf8_is_regressed_then_expected(images: dict[str, str], tmp_path: Path) -> None:
    """DefaultEncoding Utf8: Orthanc's query and images declare ISO_IR 192 (PS3.3 C.12.1.1.2) and the Chinese
    patient's name reaches the images intact (RAD TF-2x Table A.1-1: ihe.patient_name becomes ok); what it
    queries, sends and commits is the same."""
    bare, declared = _regressed_then_declared("orthanc-modality", "utf8", tmp_path)
    changed = {
        "workflow/test_images.py::test_images",
        "workflow/test_scenario.py::test_scenario",
        "workflow/test_worklist_query.py::test_worklist_query",
    }
    assert _regressed(bare) == changed, sorted(_regressed(bare) ^ changed)
    scenario = next(c for c in bare.cases if c.case == "workflow/test_scenario.py::test_scenario")
    fixed = next(d for d in scenario.differences if d.path == "ihe.patient_name")
    assert str(fixed.before).startswith("mismatch") and fixed.after == "ok", fixed
    assert any("ENC-3" in reason for reason in declared.reasons), declared.reasons
