"""Per-run corpus identity: fresh UIDs and PatientIDs per run, in the fixed corpus's order, mapped back exactly."""

from __future__ import annotations

import dataclasses
import io

import pydicom
import pytest

from harness.compare.normalise import normalise_run
from harness.model import CorpusInfo, Outcome
from simulators.corpus import (
    UID_ROOT,
    corpus_hash,
    encode,
    fixed_patient_id,
    generate,
    identity_of,
    index,
    patient_id,
    reidentify,
)
from simulators.modality import FindResult
from suites._scope import Scope
from tests.factories import make_case, make_run


@pytest.fixture(scope="module")
def fixed() -> tuple:  # type: ignore[type-arg]
    return generate()


def test_the_identity_is_six_base32_characters_derived_from_the_run_id() -> None:
    tag = identity_of("baseline-1-0123abcd")
    assert tag == identity_of("baseline-1-0123abcd") and len(tag) == 6 and tag.isalnum() and tag.isupper()
    assert identity_of("baseline-2-0123abcd") != tag


def test_fixed_identity_is_the_corpus_as_it_was(fixed: tuple) -> None:  # type: ignore[type-arg]
    same = reidentify(fixed, "")
    assert same.items == fixed and same.uids == {} and same.prefixes == {}


def test_a_run_gets_its_own_uids_and_patient_ids_and_nothing_else_changes(fixed: tuple) -> None:  # type: ignore[type-arg]
    run = reidentify(fixed, "DKKC6U")
    assert corpus_hash(run.items) != corpus_hash(fixed)
    assert corpus_hash(fixed) == corpus_hash(generate()), "the fixed items were modified"
    for old, new in zip(fixed, run.items, strict=True):
        assert new.key == old.key and new.patient_id == patient_id(old.patient_id, "DKKC6U")
        assert new.patient_id.startswith("PGDKKC6U-") and fixed_patient_id(new.patient_id) == old.patient_id
        for uid in ("study_instance_uid", "series_instance_uid", "sop_instance_uid"):
            theirs, mine = getattr(old, uid), getattr(new, uid)
            assert mine != theirs and mine.startswith(UID_ROOT) and run.uids[mine] == theirs
        read = pydicom.dcmread(io.BytesIO(encode(new)))
        assert read.file_meta.MediaStorageSOPInstanceUID == new.sop_instance_uid
        assert read.PatientName == old.dataset.PatientName and read.StudyDate == old.dataset.StudyDate
        if "PixelData" in old.dataset:
            assert read.PixelData == old.dataset.PixelData
    assert run.prefixes == {"PGDKKC6U-": "PG-"}


def test_a_runs_uids_sort_as_the_fixed_ones_do(fixed: tuple) -> None:  # type: ignore[type-arg]
    """Devices answer in UID order and the query suites sort matches: the same order every run."""
    run = reidentify(fixed, "Q2AB7Z")
    pairs = list(run.uids.items())
    assert sorted(pairs, key=lambda p: p[0]) == sorted(pairs, key=lambda p: p[1])
    assert all(len(mine) == len(theirs) <= 64 for mine, theirs in pairs)
    assert all(pydicom.uid.UID(mine).is_valid for mine, _ in pairs)


def test_normalisation_maps_a_runs_identities_back_to_the_fixed_corpus(fixed: tuple) -> None:  # type: ignore[type-arg]
    run = reidentify(fixed, "DKKC6U")
    item, original = run.items[0], fixed[0]
    corpus = CorpusInfo(1422, "0" * 64, UID_ROOT.rstrip("."), len(fixed), identity="DKKC6U", uids=run.uids,
                        prefixes=run.prefixes)  # fmt: skip
    case = make_case(
        "query/test_find.py::test_find[x]",
        Outcome.PASSED,
        0.1,
        find={
            "matches": [{"00100020": {"vr": "LO", "Value": [item.patient_id]}, "0020000D": {"vr": "UI", "Value": [item.study_instance_uid]}}],
            "query": "PGDKKC6U-000?",
            "unexpected": [item.sop_instance_uid],
            "patients": {item.patient_id: 1},
            "sop_instance_uid": item.sop_instance_uid,
        },
    )  # fmt: skip
    value = normalise_run(make_run((case,), corpus=corpus)).cases[0].observations[0].value
    assert value == {
        "matches": [{"00100020": {"vr": "LO", "Value": [original.patient_id]}, "0020000D": {"vr": "UI", "Value": [original.study_instance_uid]}}],
        "query": "PG-000?",
        "unexpected": [original.sop_instance_uid],
        "patients": {original.patient_id: 1},
        "sop_instance_uid": original.sop_instance_uid,
    }  # fmt: skip
    # A fixed run's values stay as they are.
    plain = dataclasses.replace(corpus, identity="", uids={}, prefixes={})
    assert normalise_run(make_run((case,), corpus=plain)).cases[0].observations[0].value == case.observations[0].value


def test_manifest_corpus_keeps_its_old_shape_when_fixed_and_round_trips_when_per_run() -> None:
    fixed_info = CorpusInfo(1422, "a" * 64, UID_ROOT, 25)
    assert set(fixed_info.to_json()) == {"seed", "sha256", "uid_root", "items", "size"}
    per_run = dataclasses.replace(fixed_info, identity="DKKC6U", uids={"1.2.3": "1.2.4"}, prefixes={"PGDKKC6U-": "PG-"})
    assert CorpusInfo.from_json(per_run.to_json()) == per_run


def test_scope_leaves_out_other_runs_objects_and_keeps_the_devices_own(fixed: tuple) -> None:  # type: ignore[type-arg]
    mine, theirs = reidentify(fixed, "AAAAAA").items, reidentify(fixed, "BBBBBB").items

    def match(**keys: str) -> pydicom.Dataset:
        ds = pydicom.Dataset()
        for keyword, value in keys.items():
            setattr(ds, keyword, value)
        return ds

    matches = (
        match(PatientID=mine[0].patient_id),
        match(PatientID=theirs[0].patient_id),  # another run's patient
        match(PatientID=fixed[0].patient_id),  # a fixed run's
        match(StudyInstanceUID=theirs[0].study_instance_uid),  # another run's study
        match(StudyInstanceUID=mine[0].study_instance_uid, SOPInstanceUID="1.3.6.1.4.1.9590.1"),  # device-made UID
        match(PatientID="PG-OTHER"),  # not a corpus patient id: kept
        match(Modality="CT"),  # names nothing: kept
    )
    result = FindResult(True, 0, matches)
    kept = Scope(mine, "AAAAAA").own(result).matches
    assert kept == (matches[0], matches[4], matches[5], matches[6])
    assert Scope(fixed, "").own(result) is result, "with fixed identities every match stays"


def test_the_index_of_a_run_keeps_the_plan_order(fixed: tuple) -> None:  # type: ignore[type-arg]
    run = reidentify(fixed, "DKKC6U").items
    assert [fixed_patient_id(p.patient_id) for p in index(run)] == [p.patient_id for p in index(fixed)]
