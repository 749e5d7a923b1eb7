"""The `get-warning` reference variant: C-GET ends 0xB000 with a warning sub-operation, every object delivered.

A warning is a served request, so the validation is REGRESSED for the retrieve cases and claims no security change.
The reverse patch and its policy (devices/reference/get-warning-fixed*.toml) are held by test_shipped_profiles.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from harness.demo import demo_profile
from harness.model import CaseStatus, Direction, Endpoint, Verdict
from harness.validation import run_validation
from simulators.corpus import CorpusItem, generate
from simulators.modality import GetResult, Modality, dataset_sha256
from simulators.reference import build

MODALITY = Modality("PGTEST", acse_timeout=3, dimse_timeout=5, network_timeout=5)


@pytest.fixture(scope="module")
def study() -> list[CorpusItem]:
    first = generate(1422)[0]
    return [i for i in generate(1422) if i.study_instance_uid == first.study_instance_uid]


def _get_twice(variant: str, items: list[CorpusItem], storage: Path) -> tuple[GetResult, GetResult]:
    """Store the study, then C-GET it twice (two associations) from the reference device in `variant`."""
    with build(variant, ae_title="REF", port=0, storage=storage) as device:
        peer = Endpoint("REF", "127.0.0.1", device.port)
        stored = MODALITY.store(peer, [i.dataset for i in items]).summary()
        assert {i["status"] for i in stored["instances"]} == {"0x0000"}
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = items[0].study_instance_uid
        pairs = sorted({(i.sop_class_uid, i.transfer_syntax_uid) for i in items})
        return (
            MODALITY.get(peer, query, "study", sop_classes=pairs),
            MODALITY.get(peer, query, "study", sop_classes=pairs),
        )


def test_get_warning_reports_one_warning_sub_operation_and_delivers_every_object(
    study: list[CorpusItem], tmp_path: Path
) -> None:
    sent = {i.sop_instance_uid: dataset_sha256(i.dataset, i.transfer_syntax_uid) for i in study}
    assert len(sent) > 1
    for got in _get_twice("get-warning", study, tmp_path / "warning"):  # every C-GET, not only the first
        assert got.status == 0xB000, got.error
        # Counts as pynetdicom's C-GET SCP keeps them: one warning, the rest completed, none failed.
        assert (got.completed, got.warning, got.failed) == (len(study) - 1, 1, 0)
        assert {r.sop_instance_uid: r.sha256 for r in got.received} == sent
    for got in _get_twice("clean", study, tmp_path / "clean"):
        assert (got.status, got.completed, got.warning, got.failed) == (0x0000, len(study), 0, 0)


def test_get_warning_is_regressed_with_no_security_change_claimed(tmp_path: Path) -> None:
    comparison = run_validation(demo_profile(candidate="get-warning"), tmp_path, replicas=1).comparison
    assert comparison.verdict is Verdict.REGRESSED, comparison.reasons
    regressed = {c.case: c for c in comparison.cases if c.status is CaseStatus.REGRESSED}
    get = regressed["retrieve/test_retrieve.py::test_get[study-root-study]"]
    assert {d.path: (d.before, d.after) for d in get.differences}["get.status"] == ("0x0000", "0xB000")
    assert any(r.startswith("regressed: retrieve/test_retrieve.py::test_get[") for r in comparison.reasons)
    # The access cases' C-GET was served both times: only its status moved, `admitted` did not.
    for case in ("test_unknown_calling_ae[get]", "test_wrong_called_ae[get]"):
        access = regressed[f"access/test_access.py::{case}"]
        assert [d.path for d in access.differences] == ["access.status"], access.differences
    moved = [c for c in comparison.security if c.direction in (Direction.TIGHTENED, Direction.LOOSENED)]
    assert moved == [], moved
    assert not any("tightened" in r or "loosened" in r for r in comparison.reasons), comparison.reasons
