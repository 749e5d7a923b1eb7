"""Security posture on the reference device: a lost audit trail is REGRESSED, declared hardenings are expected."""

from __future__ import annotations

from pathlib import Path

from harness.demo import demo_profile
from harness.model import CaseStatus, Comparison, Direction, Outcome, Verdict
from harness.validation import run_validation
from tests.conftest import ROOT

POLICIES = ROOT / "devices" / "reference"
FUNCTIONAL = ("storage/", "query/", "retrieve/", "verification/")


def _changes(comparison: Comparison, direction: Direction) -> dict[tuple[str, str], object]:
    return {(c.case, c.name): c.after for c in comparison.security if c.direction is direction}


def test_a_device_that_stops_auditing_is_regressed(tmp_path: Path) -> None:
    comparison = run_validation(demo_profile(candidate="no-audit"), tmp_path, replicas=1).comparison
    assert comparison.verdict is Verdict.REGRESSED, comparison.reasons
    loosened = _changes(comparison, Direction.LOOSENED)
    assert loosened[("audit/test_audit.py::test_events[store]", "events")] == []
    assert loosened[("audit/test_audit.py::test_application_activity", "sent")] is False
    line = next(r for r in comparison.reasons if r.startswith("audit/test_audit.py::test_events[store]"))
    assert "security loosened" in line and "DICOM Instances Transferred" in line, line
    # Only the audit trail changed: every functional case is unchanged.
    functional = [c for c in comparison.cases if c.case.startswith(FUNCTIONAL)]
    assert functional and all(c.status is CaseStatus.UNCHANGED for c in functional)


def test_tls_required_is_expected_with_its_policy_and_functions_unchanged_over_tls(tmp_path: Path) -> None:
    profile = demo_profile(candidate="tls-required")
    bare = run_validation(profile, tmp_path / "bare", replicas=1)
    assert bare.comparison.verdict is Verdict.REGRESSED, bare.comparison.reasons
    candidate = bare.runs[-1]
    assert candidate.device_endpoint is not None and candidate.device_endpoint.tls
    assert bare.runs[0].device_endpoint is not None and not bare.runs[0].device_endpoint.tls
    tightened = _changes(bare.comparison, Direction.TIGHTENED)
    assert tightened[("tls/test_tls.py::test_plain_tcp", "admitted")] is False
    assert not _changes(bare.comparison, Direction.LOOSENED)  # TLS 1.2+ only: nothing weaker was let in
    # The functional suites ran over TLS against the candidate and found the same behaviour.
    functional = [c for c in bare.comparison.cases if c.case.startswith(FUNCTIONAL)]
    assert len(functional) > 40
    assert all(c.status is CaseStatus.UNCHANGED for c in functional), [
        c.case for c in functional if c.status is not CaseStatus.UNCHANGED
    ]
    assert sum(c.after is Outcome.PASSED for c in functional) > 40

    declared = run_validation(profile, tmp_path / "declared", replicas=1, policy_files=[POLICIES / "tls-policy.toml"])
    assert declared.comparison.verdict is Verdict.CHANGED_AS_EXPECTED, declared.comparison.reasons
    assert any("SEC-50" in r for r in declared.comparison.reasons)


def test_known_peers_refuses_and_audits_the_refusal(tmp_path: Path) -> None:
    policy = POLICIES / "known-peers-policy.toml"
    comparison = run_validation(
        demo_profile(candidate="known-peers"), tmp_path, replicas=1, policy_files=[policy]
    ).comparison
    assert comparison.verdict is Verdict.CHANGED_AS_EXPECTED, comparison.reasons
    tightened = _changes(comparison, Direction.TIGHTENED)
    for service in ("echo", "store", "find", "move", "get"):
        assert tightened[(f"access/test_access.py::test_unknown_calling_ae[{service}]", "admitted")] is False
    refused = {
        c.name: c.after for c in comparison.security if c.case == "audit/test_audit.py::test_refused_association"
    }
    assert refused["admitted"] is False and refused["security_alert"] is True, refused


def test_a_warning_is_no_refusal_store_warning_is_changed_as_expected(tmp_path: Path) -> None:
    """C-STORE 0x0000 -> 0xB000 (coercion): served both times. It used to read as "tightened: admitted
    true -> false" in the access cases, a security claim that was false, and the profile was REGRESSED."""
    from harness.profile import load_profile

    comparison = run_validation(load_profile(POLICIES / "store-warning.toml"), tmp_path, replicas=1).comparison
    assert comparison.verdict is Verdict.CHANGED_AS_EXPECTED, comparison.reasons
    moved = [c for c in comparison.security if c.direction in (Direction.TIGHTENED, Direction.LOOSENED)]
    assert moved == [], moved
