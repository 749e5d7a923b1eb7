"""The reference modality without a network: its variants, its worklist query, its MPPS datasets, its images, its CLI."""

from __future__ import annotations

import dataclasses
import io
from copy import deepcopy
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from simulators.corpus import UID_ROOT
from simulators.reference_modality import DESCRIPTIONS, VARIANTS, Behaviour
from simulators.reference_modality.cli import main
from simulators.reference_modality.procedure import (
    Clock,
    PerformedStep,
    images,
    mpps_create,
    sps_id,
    worklist_query,
)
from simulators.ris import ScheduledItem, scheduled_items
from simulators.workflow_scu import MPPS

DATE = "20261130"
CLEAN = Behaviour()


def _items() -> dict[str, ScheduledItem]:
    return {i.key: i for i in scheduled_items(1422, DATE, "REFMOD")}


def _item(key: str = "SPS-1") -> Dataset:
    return _items()[key].dataset()


STEP = PerformedStep("1.2.3.4.5", "PPS-PGSPS0001", Clock(DATE, "101500.000001"), "CT Thorax 5 mm")


def _images(item: Dataset, behaviour: Behaviour = CLEAN, step: PerformedStep | None = STEP) -> list[Dataset]:
    return images(
        item,
        modality="",
        series_uid="1.2.3.9",
        series_number=1,
        acquired=Clock(DATE, "101501.000002"),
        step=step,
        behaviour=behaviour,
    )


# -- variants -----------------------------------------------------------------------------------


def test_each_variant_is_described_and_the_rebuild_changes_nothing() -> None:
    assert set(VARIANTS) == set(DESCRIPTIONS)
    assert VARIANTS["clean"] == VARIANTS["clean-rebuild"] == Behaviour()
    for name, behaviour in VARIANTS.items():
        if name not in ("clean", "clean-rebuild"):
            assert behaviour != Behaviour(), f"{name} changes nothing"


def test_the_regression_variant_is_four_variants_at_once() -> None:
    parts = ("no-accession-in-images", "completed-twice", "query-without-station", "ignores-commitment-failure")
    changed: dict[str, object] = {}
    for name in parts:
        for f in dataclasses.fields(Behaviour):
            value = getattr(VARIANTS[name], f.name)
            if value != getattr(CLEAN, f.name):
                changed[f.name] = value
    assert len(changed) == 4
    assert VARIANTS["regression"] == dataclasses.replace(CLEAN, **changed)  # type: ignore[arg-type]
    for name in parts:
        assert name in DESCRIPTIONS["regression"]


# -- RAD-5: the worklist query --------------------------------------------------------------------


def test_the_worklist_query_names_its_station_and_date() -> None:
    """A broad MWL query (PS3.4 K.6.1.2.1; IHE RAD TF-2 4.5.4.1.2): station AE title and date as matching keys."""
    query = worklist_query("REFMOD", DATE, "", CLEAN)
    step = query.ScheduledProcedureStepSequence[0]
    assert step.ScheduledStationAETitle == "REFMOD"
    assert step.ScheduledProcedureStepStartDate == DATE
    assert step.Modality == "" and step.ScheduledProcedureStepID == ""  # return keys, universal
    for keyword in ("PatientName", "PatientID", "AccessionNumber", "StudyInstanceUID", "RequestedProcedureID"):
        assert query[keyword].value in ("", None), keyword  # return keys: the query is not patient-based
    assert worklist_query("REFMOD", DATE, "CT", CLEAN).ScheduledProcedureStepSequence[0].Modality == "CT"


def test_query_without_station_leaves_the_station_key_out() -> None:
    step = worklist_query("REFMOD", DATE, "", VARIANTS["query-without-station"]).ScheduledProcedureStepSequence[0]
    assert "ScheduledStationAETitle" not in step
    assert step.ScheduledProcedureStepStartDate == DATE


# -- RAD-6: MPPS N-CREATE -------------------------------------------------------------------------


def test_mpps_create_copies_the_scheduled_step() -> None:
    """N-CREATE IN PROGRESS with the Scheduled Step Attributes Sequence from the worklist (PS3.4 F.7.2.1, Table F.7.2-1)."""
    item = _items()["SPS-1"]
    ds = mpps_create(
        item.dataset(), station_ae="REFMOD", pps_id="PPS-1", start=STEP.start, modality="CT", behaviour=CLEAN
    )
    assert ds.PerformedProcedureStepStatus == "IN PROGRESS"
    assert ds.PerformedStationAETitle == "REFMOD"
    assert (ds.PerformedProcedureStepStartDate, ds.PerformedProcedureStepStartTime) == (DATE, "101500.000001")
    ssas = ds.ScheduledStepAttributesSequence[0]
    assert ssas.AccessionNumber == item.accession_number
    assert ssas.StudyInstanceUID == item.study_instance_uid
    assert ssas.RequestedProcedureID == item.requested_procedure_id
    assert ssas.ScheduledProcedureStepID == item.sps_id
    assert ds.PatientID == item.patient_id and str(ds.PatientName) == item.patient_name


def test_no_accession_in_mpps_leaves_the_type_2_attribute_empty() -> None:
    item = _item()
    ds = mpps_create(
        item,
        station_ae="REFMOD",
        pps_id="PPS-1",
        start=STEP.start,
        modality="CT",
        behaviour=VARIANTS["no-accession-in-mpps"],
    )
    ssas = ds.ScheduledStepAttributesSequence[0]
    assert "AccessionNumber" in ssas and ssas.AccessionNumber == ""
    assert ssas.StudyInstanceUID  # the rest is still copied
    assert item.AccessionNumber == "PGA0001"  # the worklist answer is untouched: the images still copy it


# -- RAD-8: the images ----------------------------------------------------------------------------


def test_images_carry_the_worklist_and_mpps_attributes() -> None:
    """RAD TF-2x Table A.1-1: patient, study, request attributes and the PPS reference copied into each image."""
    item = _items()["SPS-1"]
    made = _images(item.dataset())
    assert len(made) == 2
    assert len({ds.SOPInstanceUID for ds in made}) == 2
    for ds in made:
        assert ds.PatientID == item.patient_id and str(ds.PatientName) == item.patient_name
        assert ds.StudyInstanceUID == item.study_instance_uid
        assert ds.AccessionNumber == item.accession_number
        assert ds.SeriesInstanceUID == "1.2.3.9"
        assert ds.Modality == "CT"
        assert not ds.SOPInstanceUID.startswith(UID_ROOT)  # made by the modality, not the corpus
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        request = ds.RequestAttributesSequence[0]
        assert request.RequestedProcedureID == item.requested_procedure_id
        assert request.ScheduledProcedureStepID == item.sps_id
        assert request.AccessionNumber == item.accession_number
        ref = ds.ReferencedPerformedProcedureStepSequence[0]
        assert (ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID) == (MPPS, STEP.sop_instance_uid)
        assert ds.PerformedProcedureStepID == STEP.pps_id
        assert ds.PerformedProcedureStepStartTime == STEP.start.time
        assert ds.ProcedureCodeSequence[0].CodeValue == item.requested_procedure_code[0]
        assert "ReferencedStudySequence" not in ds  # Type 3: the worklist references no study, so none


def test_images_follow_the_scheduled_modality() -> None:
    items = _items()
    assert {ds.Modality for ds in _images(items["SPS-2"].dataset())} == {"CR"}
    assert {ds.Modality for ds in _images(items["SPS-3"].dataset())} == {"US"}
    assert {ds.Modality for ds in _images(items["SPS-4"].dataset())} == {"MR"}


def _without_device_values(ds: Dataset) -> bytes:
    """The encoded object with the UIDs, dates and times the modality makes blanked."""
    copy = deepcopy(ds)
    for keyword in ("SOPInstanceUID", "SeriesTime", "ContentTime", "AcquisitionTime", "InstanceCreationTime"):
        if keyword in copy:
            setattr(copy, keyword, "")
    copy.file_meta.MediaStorageSOPInstanceUID = "1.2"
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, copy, enforce_file_format=True)
    return buffer.getvalue()


def test_images_are_the_same_for_a_step_every_time_and_differ_between_steps() -> None:
    item = _item("SPS-3")
    first, second = _images(item), _images(item)
    assert [_without_device_values(d) for d in first] == [_without_device_values(d) for d in second]
    assert first[0].SOPInstanceUID != second[0].SOPInstanceUID
    other = _images(_item("SPS-5"))  # CT too, another seed: other pixels
    assert first[0].PixelData != other[0].PixelData


def test_a_japanese_name_survives_encoding_in_the_worklists_character_set(tmp_path: Path) -> None:
    """PS3.5 6.1.2.5.3: the image declares the worklist's Specific Character Set, so the name reads back the same."""
    item = _items()["SPS-5"]  # ISO 2022 IR 87
    made = _images(item.dataset())[0]
    assert list(made.SpecificCharacterSet) == ["", "ISO 2022 IR 87"]
    path = tmp_path / "image.dcm"
    pydicom.dcmwrite(path, made, enforce_file_format=True)
    assert str(pydicom.dcmread(path).PatientName) == item.patient_name


def test_variants_change_only_their_attribute_in_images() -> None:
    item = _item()
    no_accession = _images(item, VARIANTS["no-accession-in-images"])[0]
    assert no_accession.AccessionNumber == ""
    assert "AccessionNumber" not in no_accession.RequestAttributesSequence[0]
    assert no_accession.RequestAttributesSequence[0].RequestedProcedureID  # only the accession is forgotten
    implicit = _images(item, VARIANTS["implicit-only"])[0]
    assert implicit.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian


def test_images_of_a_procedure_not_started_reference_no_mpps() -> None:
    ds = _images(_item(), step=None)[0]
    assert "ReferencedPerformedProcedureStepSequence" not in ds
    assert "PerformedProcedureStepID" not in ds


def test_sps_id_of_a_worklist_answer() -> None:
    assert sps_id(_item("SPS-4")) == "PGSPS0004"
    assert sps_id(Dataset()) == ""


# -- the command line -----------------------------------------------------------------------------

_ARGS = ["--ae-title", "REFMOD", "--port", "0", "--http-port", "0", "--ris", "PGRIS=127.0.0.1:1"]
_ARGS += ["--pacs", "PGPACS=127.0.0.1:2"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--variant", "nope"], "--variant 'nope' is unknown; known: clean, clean-rebuild"),
        (["--variant", "clean", "--date", "2026-11-30"], "--date '2026-11-30': expected YYYYMMDD"),
        (["--variant", "clean", "--service-ae", "A" * 17], "--service-ae 'AAAAAAAAAAAAAAAAA': an AE title is"),
        (["--variant", "clean", "--ris", "PGRIS"], "--ris: expected AE=host:port"),
    ],
    ids=["variant", "date", "ae-title", "peer"],
)
def test_a_bad_argument_is_named(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*_ARGS, "--state", str(tmp_path), *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["acquire"], "acquire needs the Scheduled Procedure Step ID"),
        (["worklist", "PGSPS0001"], "worklist takes no Scheduled Procedure Step ID"),
        (["--control", "ftp://x", "worklist"], "--control must be http://HOST:PORT"),
    ],
    ids=["no-step", "extra-step", "url"],
)
def test_ctl_names_a_bad_argument(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    control = [] if "--control" in args else ["--control", "http://127.0.0.1:9"]
    with pytest.raises(SystemExit) as exit_info:
        main(["ctl", *control, *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
