"""What the reference modality sends for a worklist item, no network: its MWL query, its images, its MPPS datasets.

Images are corpus objects (simulators.corpus) of the item's modality, made again per Scheduled
Procedure Step from a seed derived from its SPS ID, so two runs send the same objects apart from the
UIDs, dates and times the modality makes. Patient, study and request attributes are copied from the
worklist answer as IHE RAD TF-2x Table A.1-1 lists them; `Behaviour` says which copies a patch forgets.
"""

from __future__ import annotations

import copy
import datetime
import functools
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from simulators.corpus import CorpusItem, by_key, generate
from simulators.reference_modality.behaviour import Behaviour
from simulators.workflow_scu import MPPS, mpps_in_progress

__all__ = [
    "IMAGES_PER_SERIES",
    "Clock",
    "PerformedStep",
    "corpus_kind",
    "images",
    "mpps_create",
    "now",
    "sps_id",
    "worklist_query",
]

# The corpus series a modality's images are made from (simulators.corpus kinds); any other: Secondary Capture.
_KINDS: Mapping[str, str] = {"CT": "CT", "MR": "MR", "CR": "CR", "DX": "DX", "US": "US"}
# Two instances per series, from the corpus' implicit and explicit items of the kind (CT and MR: two slices).
_VARIANTS = ("implicit", "explicit")
IMAGES_PER_SERIES = len(_VARIANTS)
# Patient attributes copied from the worklist answer (RAD TF-2x A.1-1; PS3.3 C.7.1.1).
_PATIENT = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex")
# Attributes dated with the moment of acquisition, when the corpus object has them.
_ACQUIRED = (("SeriesDate", "SeriesTime"), ("ContentDate", "ContentTime"), ("AcquisitionDate", "AcquisitionTime"))
_INSTANCE_CREATED = ("InstanceCreationDate", "InstanceCreationTime")


@dataclass(frozen=True)
class Clock:
    """A moment as DICOM writes it, in UTC (harness.compare normalises in UTC): DA and TM with microseconds.

    Microseconds, so two moments of one run never share a value by chance: normalisation numbers
    values by first appearance, and a chance collision in one run only would read as a difference.
    """

    date: str  # YYYYMMDD
    time: str  # HHMMSS.ffffff


def now() -> Clock:
    moment = datetime.datetime.now(datetime.UTC)
    return Clock(moment.strftime("%Y%m%d"), moment.strftime("%H%M%S.%f"))


@dataclass(frozen=True)
class PerformedStep:
    """The MPPS a procedure runs under, as the images reference it (RAD-8: Referenced PPS Sequence, PPS ID, start)."""

    sop_instance_uid: str
    pps_id: str
    start: Clock
    description: str


def sps_id(item: Dataset) -> str:
    """The Scheduled Procedure Step ID of a worklist answer ("" if it has none)."""
    steps = item.get("ScheduledProcedureStepSequence") or []
    return str(steps[0].get("ScheduledProcedureStepID", "") or "") if steps else ""


def worklist_query(station_ae: str, date: str, modality: str, behaviour: Behaviour) -> Dataset:
    """The broad MWL query of IHE RAD-5 (PS3.4 K.6.1.2): this station, this date, every return key the modality copies."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"  # answers may come in any character set; ours is UTF-8
    for keyword in (
        "AccessionNumber",
        "ReferringPhysicianName",
        *_PATIENT,
        "StudyInstanceUID",
        "RequestedProcedureDescription",
        "RequestedProcedureID",
        "RequestedProcedurePriority",
    ):
        setattr(ds, keyword, "")
    ds.ReferencedStudySequence = DicomSequence()
    ds.RequestedProcedureCodeSequence = DicomSequence()
    step = Dataset()
    step.Modality = modality
    if behaviour.query_station:
        step.ScheduledStationAETitle = station_ae
    step.ScheduledProcedureStepStartDate = date
    step.ScheduledProcedureStepStartTime = ""
    step.ScheduledPerformingPhysicianName = ""
    step.ScheduledProcedureStepDescription = ""
    step.ScheduledProtocolCodeSequence = DicomSequence()
    step.ScheduledProcedureStepID = ""
    ds.ScheduledProcedureStepSequence = DicomSequence([step])
    return ds


def mpps_create(
    item: Dataset, *, station_ae: str, pps_id: str, start: Clock, modality: str, behaviour: Behaviour
) -> Dataset:
    """The N-CREATE attribute list (RAD-6): IN PROGRESS, the Scheduled Step Attributes Sequence copied from `item`."""
    ds = mpps_in_progress(  # a copy: the attribute list must not share elements with the worklist answer
        copy.deepcopy(item),
        station_ae=station_ae,
        pps_id=pps_id,
        start_date=start.date,
        start_time=start.time,
        modality=modality,
    )
    if not behaviour.accession_in_mpps:
        ds.ScheduledStepAttributesSequence[0].AccessionNumber = ""  # Type 2: present, the copy forgotten
    return ds


def corpus_kind(modality: str) -> str:
    """The corpus series kind whose objects stand for images of `modality`."""
    return _KINDS.get(modality.strip().upper(), "SC")


@functools.lru_cache(maxsize=16)
def _corpus(seed: int) -> Mapping[str, CorpusItem]:
    return by_key(generate(seed))


def _seed(sps: str) -> int:
    """The corpus seed of a procedure step: fixed by its ID, so every run makes the same pixels for it."""
    return zlib.crc32(sps.encode("utf-8"))


def images(
    item: Dataset,
    *,
    modality: str,
    series_uid: str,
    series_number: int,
    acquired: Clock,
    step: PerformedStep | None,
    behaviour: Behaviour,
) -> list[Dataset]:
    """The objects acquired for worklist answer `item`: attributes copied in, new SOP Instance UIDs, one series.

    `step` is the MPPS the images belong to (None when the procedure was not started: no PPS references).
    """
    sps = item.ScheduledProcedureStepSequence[0]
    kind = corpus_kind(modality or str(sps.get("Modality", "")))
    corpus = _corpus(_seed(sps_id(item)))
    syntax = UID(ImplicitVRLittleEndian if behaviour.implicit_only else ExplicitVRLittleEndian)
    made: list[Dataset] = []
    for variant in _VARIANTS:
        ds = copy.deepcopy(corpus[f"{kind}-{variant}"].dataset)
        _copy_worklist(ds, item, sps, behaviour)
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_number
        ds.SOPInstanceUID = generate_uid()  # the modality's own UIDs: not under the corpus root
        if modality:
            ds.Modality = modality
        start = step.start if step is not None else acquired
        ds.StudyDate, ds.StudyTime = start.date, start.time
        for date_keyword, time_keyword in (*_ACQUIRED, _INSTANCE_CREATED):
            if date_keyword in ds or date_keyword == "SeriesDate":  # the others only where the object has them
                setattr(ds, date_keyword, acquired.date)
                setattr(ds, time_keyword, acquired.time)
        if step is not None:
            ref = Dataset()
            ref.ReferencedSOPClassUID = MPPS
            ref.ReferencedSOPInstanceUID = step.sop_instance_uid
            ds.ReferencedPerformedProcedureStepSequence = DicomSequence([ref])
            ds.PerformedProcedureStepID = step.pps_id
            ds.PerformedProcedureStepStartDate = step.start.date
            ds.PerformedProcedureStepStartTime = step.start.time
            ds.PerformedProcedureStepDescription = step.description
        elif "ReferencedPerformedProcedureStepSequence" in ds:
            del ds.ReferencedPerformedProcedureStepSequence
        if "PixelData" in ds and not syntax.is_implicit_VR:
            # Explicit VR: 8-bit native pixels are OB, wider ones OW (PS3.5 8.2, A.2).
            ds["PixelData"].VR = "OB" if int(ds.get("BitsAllocated", 16)) <= 8 else "OW"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = syntax
        made.append(ds)
    return made


def _copy_worklist(ds: Dataset, item: Dataset, sps: Dataset, behaviour: Behaviour) -> None:
    """Patient, study and request attributes from the worklist answer (RAD TF-2x A.1-1; PS3.3 C.4.13, C.7.3.1)."""
    for keyword in ("SpecificCharacterSet", *_PATIENT):
        if keyword in ds:
            del ds[keyword]
    # First, as the worklist answer had it: the names below are in that character set.
    if "SpecificCharacterSet" in item:
        ds.SpecificCharacterSet = item.SpecificCharacterSet
    for keyword in _PATIENT:
        if keyword in item:
            ds[keyword] = copy.deepcopy(item[keyword])
    ds.StudyInstanceUID = item.StudyInstanceUID
    ds.AccessionNumber = str(item.get("AccessionNumber", "") or "") if behaviour.accession_in_images else ""
    ds.ReferringPhysicianName = item.get("ReferringPhysicianName", "")
    ds.StudyID = str(item.get("RequestedProcedureID", "") or "")[:16]
    ds.StudyDescription = str(item.get("RequestedProcedureDescription", "") or "")
    if item.get("ReferencedStudySequence"):  # Type 3 in the image (PS3.3 C.7.2.1): no empty sequence
        ds.ReferencedStudySequence = copy.deepcopy(item.ReferencedStudySequence)
    elif "ReferencedStudySequence" in ds:
        del ds.ReferencedStudySequence
    ds.ProcedureCodeSequence = copy.deepcopy(item.get("RequestedProcedureCodeSequence", DicomSequence()))
    request = Dataset()
    if behaviour.accession_in_images:
        request.AccessionNumber = ds.AccessionNumber
    request.RequestedProcedureID = str(item.get("RequestedProcedureID", "") or "")
    request.RequestedProcedureDescription = ds.StudyDescription
    request.RequestedProcedureCodeSequence = copy.deepcopy(ds.ProcedureCodeSequence)
    request.ScheduledProcedureStepID = str(sps.get("ScheduledProcedureStepID", "") or "")
    request.ScheduledProcedureStepDescription = str(sps.get("ScheduledProcedureStepDescription", "") or "")
    request.ScheduledProtocolCodeSequence = copy.deepcopy(sps.get("ScheduledProtocolCodeSequence", DicomSequence()))
    ds.RequestAttributesSequence = DicomSequence([request])
    ds.ProtocolName = _meaning(sps.get("ScheduledProtocolCodeSequence")) or request.ScheduledProcedureStepDescription


def _meaning(codes: object) -> str:
    """The Code Meaning of a code sequence's first item ("" if none)."""
    if isinstance(codes, DicomSequence) and len(codes):
        return str(codes[0].get("CodeMeaning", "") or "")
    return ""
