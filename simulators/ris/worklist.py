"""The RIS's scheduled procedures: one Requested Procedure with one Scheduled Procedure Step per item, from the corpus patients.

`scheduled_items(seed, date, station_ae)` is deterministic: the same seed, date and station give
the same items, and `write_wl_folder` the same `.wl` bytes. Only UIDs depend on the seed (they
start with the corpus' UID_ROOT, so they survive normalisation); demographics come from the
corpus plan, so a worklist patient is one the archive suites already know.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread, dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from simulators.corpus import IMPLEMENTATION_CLASS_UID, PATIENTS, UID_ROOT, Patient
from simulators.workflow_scu import MWL_FIND

__all__ = ["LOCKFILE", "OTHER_STATION", "ScheduledItem", "read_wl_folder", "scheduled_items", "write_wl_folder"]

# The station two items are scheduled on, so a query by Scheduled Station AE Title has something to leave out.
OTHER_STATION = "OTHERSTN"
# wlmscpfs refuses a worklist folder without this (empty) file; Orthanc ignores it.
LOCKFILE = "lockfile"
_CODING_SCHEME = "99PG"  # a private coding scheme (PS3.3 8.2: "99" prefix)
_DATE = re.compile(r"\d{8}")

# (patient ID, modality, requested procedure (code, meaning), scheduled protocol (code, meaning), other station)
_SCHEDULE: tuple[tuple[str, str, tuple[str, str], tuple[str, str], bool], ...] = (
    ("PG-0001", "CT", ("RPCTTHX", "CT Thorax"), ("CTTHX5", "CT Thorax 5 mm"), False),
    ("PG-0002", "CR", ("RPCRCHEST", "Chest PA"), ("CRPA", "Chest PA standing"), False),
    ("PG-0003", "US", ("RPUSABD", "US Abdomen"), ("USLIVER", "Liver survey"), False),
    ("PG-0004", "MR", ("RPMRBRAIN", "MRI Brain"), ("MRT1SAG", "T1 sagittal"), False),
    ("PG-0005", "CT", ("RPCTHEAD", "CT Head"), ("CTHEAD", "CT Head native"), False),
    ("PG-0006", "MR", ("RPMRKNEE", "MRI Knee"), ("MRPD", "PD fat sat"), False),
    ("PG-0002", "DX", ("RPDXHAND", "Hand"), ("DXHAND", "Hand PA"), True),
    ("PG-0004", "CT", ("RPCTABD", "CT Abdomen"), ("CTABD", "CT Abdomen venous"), True),
)
_FIRST_START = 8 * 60  # minutes after midnight: 08:00, then every 75 minutes up to 16:45
_SPACING = 75


@dataclass(frozen=True)
class ScheduledItem:
    """One Requested Procedure with one Scheduled Procedure Step (PS3.3 C.4.10, C.4.11), as the RIS serves it."""

    key: str  # "SPS-1": stable, used by suites and action placeholders
    patient_id: str
    patient_name: str
    birth_date: str
    sex: str
    charset: tuple[str, ...]  # the patient's SpecificCharacterSet values
    accession_number: str  # "PGA0001"
    requested_procedure_id: str  # "PGRP0001"
    requested_procedure_description: str
    requested_procedure_code: tuple[str, str, str]  # (value, scheme, meaning)
    study_instance_uid: str  # UID_ROOT-based, seeded
    sps_id: str  # "PGSPS0001"
    sps_description: str
    scheduled_protocol_code: tuple[str, str, str]
    station_ae: str  # the device's AE title, or OTHER_STATION
    modality: str
    start_date: str  # YYYYMMDD
    start_time: str  # HHMMSS

    def dataset(self) -> Dataset:
        """The MWL item: the PS3.4 K.6.1.2.2 return keys we have values for, SPS as one item."""
        ds = Dataset()
        # First: pydicom encodes the names below in the character set it declares.
        ds.SpecificCharacterSet = list(self.charset) if len(self.charset) > 1 else self.charset[0]
        ds.AccessionNumber = self.accession_number
        ds.ReferringPhysicianName = ""
        ds.ReferencedStudySequence = DicomSequence()
        ds.PatientName = self.patient_name
        ds.PatientID = self.patient_id
        ds.IssuerOfPatientID = "PATCHGATE"
        ds.PatientBirthDate = self.birth_date
        ds.PatientSex = self.sex
        ds.StudyInstanceUID = self.study_instance_uid
        ds.RequestedProcedureDescription = self.requested_procedure_description
        ds.RequestedProcedureCodeSequence = DicomSequence([_code(self.requested_procedure_code)])
        ds.RequestedProcedureID = self.requested_procedure_id
        ds.RequestedProcedurePriority = "ROUTINE"
        sps = Dataset()
        sps.Modality = self.modality
        sps.ScheduledStationAETitle = self.station_ae
        sps.ScheduledProcedureStepStartDate = self.start_date
        sps.ScheduledProcedureStepStartTime = self.start_time
        sps.ScheduledPerformingPhysicianName = ""
        sps.ScheduledProcedureStepDescription = self.sps_description
        sps.ScheduledProtocolCodeSequence = DicomSequence([_code(self.scheduled_protocol_code)])
        sps.ScheduledProcedureStepID = self.sps_id
        ds.ScheduledProcedureStepSequence = DicomSequence([sps])
        return ds

    def placeholders(self) -> dict[str, str]:
        """The `item.*` values an action template may name."""
        return {
            "item.key": self.key,
            "item.sps_id": self.sps_id,
            "item.accession_number": self.accession_number,
            "item.requested_procedure_id": self.requested_procedure_id,
            "item.patient_id": self.patient_id,
            "item.patient_name": self.patient_name,
            "item.study_uid": self.study_instance_uid,
            "item.modality": self.modality,
            "item.station_ae": self.station_ae,
        }


def _code(code: tuple[str, str, str]) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code
    return item


def _patient(patient_id: str) -> Patient:
    return next(p for p in PATIENTS if p.patient_id == patient_id)


def scheduled_items(seed: int, date: str, station_ae: str) -> tuple[ScheduledItem, ...]:
    """The worklist for `seed` on `date` (YYYYMMDD) at `station_ae`: eight items, two of them on OTHER_STATION.

    ValueError (naming the value) for a date that is not eight digits or an AE title not of 1-16 characters.
    """
    if not _DATE.fullmatch(date):
        raise ValueError(f"worklist date must be YYYYMMDD, got {date!r} (hint: the run's worklist.date)")
    station = station_ae.strip()
    if not 1 <= len(station) <= 16 or "\\" in station:
        raise ValueError(f"station AE title must be 1-16 characters without a backslash, got {station_ae!r}")
    items: list[ScheduledItem] = []
    for n, (patient_id, modality, procedure, protocol, other) in enumerate(_SCHEDULE, start=1):
        patient = _patient(patient_id)
        minutes = _FIRST_START + (n - 1) * _SPACING
        uid = generate_uid(prefix=UID_ROOT, entropy_srcs=[f"patchgate-ris/{seed}/study/{n}"])
        items.append(
            ScheduledItem(
                key=f"SPS-{n}",
                patient_id=patient.patient_id,
                patient_name=patient.name,
                birth_date=patient.birth_date,
                sex=patient.sex,
                charset=patient.charset,
                accession_number=f"PGA{n:04d}",
                requested_procedure_id=f"PGRP{n:04d}",
                requested_procedure_description=procedure[1],
                requested_procedure_code=(procedure[0], _CODING_SCHEME, procedure[1]),
                study_instance_uid=str(uid),
                sps_id=f"PGSPS{n:04d}",
                sps_description=protocol[1],
                scheduled_protocol_code=(protocol[0], _CODING_SCHEME, protocol[1]),
                station_ae=OTHER_STATION if other else station,
                modality=modality,
                start_date=date,
                start_time=f"{minutes // 60:02d}{minutes % 60:02d}00",
            )
        )
    return tuple(items)


def write_wl_folder(items: Iterable[ScheduledItem], folder: str | Path) -> list[Path]:
    """Write each item as `folder/<key>.wl` (Part 10, Explicit VR LE) and an empty LOCKFILE; the item paths.

    The layout Orthanc's worklist plugin reads (`Database`), and one called-AE folder of wlmscpfs `-dfp`.
    """
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    (target / LOCKFILE).touch()
    paths: list[Path] = []
    for item in items:
        ds = item.dataset()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = UID(MWL_FIND)
        meta.MediaStorageSOPInstanceUID = generate_uid(prefix=UID_ROOT, entropy_srcs=[f"wl/{item.study_instance_uid}"])
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
        meta.ImplementationVersionName = "PATCHGATE_1"
        ds.file_meta = meta
        path = target / f"{item.key}.wl"
        dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return paths


def read_wl_folder(folder: str | Path) -> tuple[Dataset, ...]:
    """The MWL items of a folder's `*.wl` files, by file name, without file meta: what an MWL device seeded so serves.

    ValueError naming the folder or the file when there is none or one is not DICOM.
    """
    paths = sorted(Path(folder).glob("*.wl"))
    if not paths:
        raise ValueError(f"no .wl files in {folder} (hint: the harness seeds {{worklist.dir}} for a device with mwl)")
    items: list[Dataset] = []
    for path in paths:
        try:
            ds = dcmread(path)
        except (OSError, InvalidDicomError) as exc:
            raise ValueError(f"{path}: not a worklist file ({exc})") from None
        items.append(Dataset(ds))  # the dataset alone: answers never carry file meta
    return tuple(items)
