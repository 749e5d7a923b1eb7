"""Mutation tests: every behaviour-changing reference variant is caught; the clean patch never false-alarms."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.demo import demo_profile, demo_text, known_variants
from harness.model import CaseStatus, Classification, Verdict
from harness.profile import parse_profile
from harness.validation import run_validation
from simulators.reference import PERFORMANCE_METRICS, ROBUSTNESS_INPUTS
from tests.mutation import SharedBaseline, variant_table, with_variants

CLEAN = {"clean", "clean-rebuild"}
# Variants after which no verdict about behaviour can be trusted.
INCONCLUSIVE = {"crash-on-find"}
# Variants only the performance phase shows: tests/integration/test_performance_variants.py holds them.
PERFORMANCE = set(PERFORMANCE_METRICS)
# Variants only the robustness phase shows: tests/integration/test_robustness_phase.py holds them.
ROBUSTNESS = set(ROBUSTNESS_INPUTS)

# For each behaviour-changing variant, a case that must be named as regressed.
MUST_NAME = {
    "reject-sop": "storage/test_store.py::test_store_then_retrieve[SC-explicit]",
    "store-warning": "storage/test_store.py::test_store_then_retrieve[CT-explicit]",
    "find-case": "query/test_find.py::test_find[patient-name-lowercase]",
    "drop-attribute": "retrieve/test_retrieve.py::test_get[study-root-study]",
    "drop-on-store": "storage/test_store.py::test_store_then_retrieve[CT-explicit]",
    "move-failure": "retrieve/test_retrieve.py::test_move[study-root-study]",
    "move-reencode": "retrieve/test_retrieve.py::test_move[patient-root-patient]",
    "iod-invalid": "retrieve/test_retrieve.py::test_move[study-root-series]",
    # C-GET final 0xB000 with a warning sub-operation; no security change (tests/integration/test_get_warning.py).
    "get-warning": "retrieve/test_retrieve.py::test_get[study-root-study]",
    "regression": "query/test_find.py::test_find[patient-name-lowercase]",
    "availability": "query/test_return_keys.py::test_return_keys[study]",
    "charset": "query/test_charset.py::test_charset_answer[jis]",
    # Security posture (tests/integration/test_security_posture.py checks what the report says).
    "no-audit": "audit/test_audit.py::test_events[store]",
    "tls-required": "tls/test_tls.py::test_plain_tcp",
    "known-peers": "access/test_access.py::test_unknown_calling_ae[echo]",
    # Association negotiation (suites/negotiation): an implementation upgrade, a transfer syntax dropped.
    "implementation-version": "negotiation/test_negotiation.py::test_implementation",
    "no-jpeg2000": "negotiation/test_negotiation.py::test_transfer_syntaxes[store-CT]",
    # Storage commitment SCP (suites/commitment): nothing committed, no commitment at all, a report out of order.
    "commit-nothing": "commitment/test_commitment.py::test_all_held",
    "commitment-rejected": "commitment/test_commitment.py::test_all_held",
    "report-before-response": "commitment/test_commitment.py::test_report_association[same]",
}


# For the variants of each kind of observation (issue 9): a fragment of a regressed difference's path in
# that case, so the report names what changed, not only where ("different" would not do).
MUST_SAY = {
    "store-warning": "store.instances[0].status",
    "get-warning": "get.status",
    "drop-attribute": "attributes.removed.StudyDescription (0008,1030)",
    "drop-on-store": "retrieved.dataset.00081030",
    "move-reencode": "wire.objects.CT-rle.transfer_syntax",
    "iod-invalid": "iod.CT-rle.errors.",
    "availability": "InstanceAvailability",
    "charset": "PatientName",
    "implementation-version": "implementation.",
    "no-jpeg2000": "transfer_syntaxes.1.2.840.10008.1.2.4.90",
    "commit-nothing": "commit.report.failed",
    "report-before-response": "commit.how.order",
}


def test_every_behaviour_changing_variant_has_an_expectation() -> None:
    assert set(known_variants()) - CLEAN - INCONCLUSIVE - PERFORMANCE - ROBUSTNESS == set(MUST_NAME)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> SharedBaseline:
    """One baseline run of the demo profile holding a variant table per variant here (as `--demo VARIANT` writes
    its candidate, TLS posture included), for every case of this module on this xdist worker."""
    variants = (*sorted(MUST_NAME), *INCONCLUSIVE)
    tables = {v: variant_table(demo_text(candidate=v), "candidate") for v in variants}
    profile = parse_profile(with_variants(demo_text("clean", "clean"), tables), "<mutation:reference>")
    return SharedBaseline(profile, tmp_path_factory.mktemp("reference"))


@pytest.mark.parametrize("variant", sorted(MUST_NAME))
def test_behaviour_change_is_regressed(variant: str, shared: SharedBaseline, tmp_path: Path) -> None:
    comparison = shared.compare(variant, tmp_path)
    assert comparison.verdict is Verdict.REGRESSED, comparison.reasons
    regressed = {c.case for c in comparison.cases if c.status is CaseStatus.REGRESSED}
    assert MUST_NAME[variant] in regressed, sorted(regressed)
    assert any(MUST_NAME[variant] in reason for reason in comparison.reasons) or len(regressed) > 20
    if variant in MUST_SAY:
        named = next(c for c in comparison.cases if c.case == MUST_NAME[variant])
        paths = [d.path for d in named.differences if d.classification is Classification.REGRESSED]
        assert any(MUST_SAY[variant] in p for p in paths), paths


def test_a_device_that_crashes_is_inconclusive(shared: SharedBaseline, tmp_path: Path) -> None:
    comparison = shared.compare("crash-on-find", tmp_path)
    assert comparison.verdict is Verdict.INCONCLUSIVE
    assert comparison.verdict.exit_code == 2
    assert any("candidate" in r and "device_crashed" in r for r in comparison.reasons), comparison.reasons


# Four clean validations, each its own case so that xdist spreads them over the workers; all must be UNCHANGED.
# The false-alarm rate is measured outside CI, 20 validations in a row (scripts/bench_false_alarms.py, results in
# docs/benchmarks.md); ten here cost five minutes of every CI run for little more than four say.
@pytest.mark.parametrize("attempt", range(4), ids=lambda n: f"attempt-{n + 1}")
def test_clean_patch_gives_no_false_alarm(attempt: int, tmp_path: Path) -> None:
    comparison = run_validation(demo_profile(candidate="clean-rebuild"), tmp_path).comparison
    assert comparison.verdict is Verdict.UNCHANGED, (attempt, comparison.reasons)
