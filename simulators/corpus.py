"""The deterministic synthetic DICOM corpus: same seed, same datasets, same bytes, same hash.

`generate(seed)` builds 25 Part 10 objects for 4 patients in 5 studies (dates 2021-2024):

    patient  study       series (kind: transfer syntaxes)
    PG-0001  2021-03-04  CT Image, Secondary Capture, Basic Text SR
    PG-0002  2023-02-14  CR Image
    PG-0002  2023-09-09  Digital X-Ray (for presentation)
    PG-0003  2024-05-17  Ultrasound Multi-frame (6 RGB frames), Encapsulated PDF
    PG-0004  2022-11-20  MR Image

Each series holds one object in several transfer syntaxes, each a separate instance
(key "<KIND>-<syntax>", InstanceNumber 1, 2, ...) with identical pixel data or content
(CT and MR instances differ only in slice position):
Implicit VR LE ("implicit"), Explicit VR LE ("explicit"), and a compressed one that
pydicom 3 encodes offline with no plugin: RLE Lossless ("rle") for image objects,
Deflated Explicit VR LE ("deflated") for SR and PDF; the Secondary Capture also has
a deflated variant, so deflated pixel data is covered too.

Only UIDs and pixel values depend on the seed; demographics, dates and texts are fixed,
and `index()` tells query suites what to expect. Every UID the corpus makes starts with
UID_ROOT, so UIDs a device generates can be told apart from ours. RLE uses pydicom's own
encoder (not whichever plugin is installed) so the bytes do not depend on the environment.
"""

from __future__ import annotations

import copy
import hashlib
import io
import re
import types
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

__all__ = [
    "DEFAULT_SEED",
    "IMPLEMENTATION_CLASS_UID",
    "SOP_CLASSES",
    "TRANSFER_SYNTAXES",
    "UID_ROOT",
    "CorpusItem",
    "InstanceEntry",
    "PatientEntry",
    "SeriesEntry",
    "StudyEntry",
    "by_key",
    "corpus_hash",
    "encode",
    "generate",
    "index",
    "write_folder",
]

# Under Medical Connections' free UID service root; ".10.1422." is patchgate's arc.
UID_ROOT = "1.2.826.0.1.3680043.10.1422."
IMPLEMENTATION_CLASS_UID = UID_ROOT + "0.1"
IMPLEMENTATION_VERSION_NAME = "PATCHGATE_1"
DEFAULT_SEED = 1422

# Object kind -> SOP Class UID, the classes the corpus covers.
SOP_CLASSES: Mapping[str, str] = types.MappingProxyType(
    {
        "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
        "MR": "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
        "CR": "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
        "DX": "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image Storage - For Presentation
        "US": "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame Image Storage
        "SC": "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
        "SR": "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR Storage
        "PDF": "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF Storage
    }
)

# Variant name (the suffix of an item key) -> Transfer Syntax UID.
TRANSFER_SYNTAXES: Mapping[str, str] = types.MappingProxyType(
    {
        "implicit": ImplicitVRLittleEndian,
        "explicit": ExplicitVRLittleEndian,
        "rle": RLELossless,
        "deflated": DeflatedExplicitVRLittleEndian,
    }
)

# Where Modality is not the kind: Secondary Capture has no modality of its own ("OT", other).
_MODALITIES = types.MappingProxyType({"SC": "OT", "PDF": "DOC"})
_CHARSET = "ISO_IR 100"
_US_FRAMES = 6
_IMAGE_VARIANTS = ("implicit", "explicit", "rle")
_DOCUMENT_VARIANTS = ("implicit", "explicit", "deflated")

_Array = npt.NDArray[Any]
_Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CorpusItem:
    """One corpus object: a dataset with file meta, ready to write or send in its transfer syntax."""

    key: str  # stable id, "<KIND>-<variant>", e.g. "CT-explicit", "US-rle"
    sop_class_uid: str
    transfer_syntax_uid: str
    modality: str
    patient_id: str
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    # Mutable, so kept out of equality and hashing; never modify it, copy it.
    dataset: Dataset = field(compare=False, repr=False)


@dataclass(frozen=True)
class InstanceEntry:
    """One instance in the corpus index."""

    key: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    instance_number: int


@dataclass(frozen=True)
class SeriesEntry:
    """One series in the corpus index, instances by InstanceNumber."""

    series_instance_uid: str
    modality: str
    series_number: int
    series_description: str
    instances: tuple[InstanceEntry, ...]


@dataclass(frozen=True)
class StudyEntry:
    """One study in the corpus index, series by SeriesNumber."""

    study_instance_uid: str
    study_date: str
    study_time: str
    accession_number: str
    study_id: str
    study_description: str
    referring_physician_name: str
    series: tuple[SeriesEntry, ...]

    @property
    def modalities(self) -> tuple[str, ...]:
        """ModalitiesInStudy as a sorted tuple."""
        return tuple(sorted({s.modality for s in self.series}))

    @property
    def instance_count(self) -> int:
        return sum(len(s.instances) for s in self.series)


@dataclass(frozen=True)
class PatientEntry:
    """One patient in the corpus index, studies by StudyDate."""

    patient_id: str
    patient_name: str
    patient_birth_date: str
    patient_sex: str
    studies: tuple[StudyEntry, ...]


# ---------------------------------------------------------------- the fixed study plan


@dataclass(frozen=True)
class _Patient:
    patient_id: str
    name: str
    birth_date: str
    sex: str


@dataclass(frozen=True)
class _Study:
    key: str
    patient: _Patient
    date: str
    time: str
    accession: str
    study_id: str
    description: str
    referring: str


@dataclass(frozen=True)
class _Series:
    kind: str
    study: _Study
    number: int
    description: str
    time: str
    variants: tuple[str, ...]


_MUELLER = _Patient("PG-0001", "Müller^Jürgen", "19561023", "M")
_DOE = _Patient("PG-0002", "DOE^JANE", "19800101", "F")
_VAN_DIJK = _Patient("PG-0003", "van Dijk^Anna^Maria", "19921207", "F")
_SMITH = _Patient("PG-0004", "Smith^John^^Dr.", "19700515", "M")

_CHEST_CT = _Study(
    "chest-ct", _MUELLER, "20210304", "083015", "ACC1001", "1001", "CT Thorax nativ", "Schäfer^Anna^^Dr."
)
_CHEST_CR = _Study("chest-cr", _DOE, "20230214", "101500", "ACC1002", "1002", "CHEST PA", "WELBY^MARCUS")
_HAND_DX = _Study("hand-dx", _DOE, "20230909", "141000", "ACC1003", "1003", "Hand left", "Welby^Marcus")
_ABDOMEN_US = _Study("abdomen-us", _VAN_DIJK, "20240517", "093000", "ACC1004", "1004", "US Abdomen", "de Vries^Pieter")
_BRAIN_MR = _Study("brain-mr", _SMITH, "20221120", "161545", "ACC1005", "1005", "MRI BRAIN W/O", "")

_PLAN = (
    _Series("CT", _CHEST_CT, 1, "Axial 5mm", "083500", _IMAGE_VARIANTS),
    _Series("SC", _CHEST_CT, 2, "Dosisbericht", "084500", (*_IMAGE_VARIANTS, "deflated")),
    _Series("SR", _CHEST_CT, 3, "Befund", "120000", _DOCUMENT_VARIANTS),
    _Series("CR", _CHEST_CR, 1, "PA", "101800", _IMAGE_VARIANTS),
    _Series("DX", _HAND_DX, 1, "Hand PA", "141200", _IMAGE_VARIANTS),
    _Series("US", _ABDOMEN_US, 1, "Liver cine", "093500", _IMAGE_VARIANTS),
    _Series("PDF", _ABDOMEN_US, 2, "Scanned report", "100000", _DOCUMENT_VARIANTS),
    _Series("MR", _BRAIN_MR, 1, "T1 SAG", "162000", _IMAGE_VARIANTS),
)


# ---------------------------------------------------------------- public API


def generate(seed: int = DEFAULT_SEED, *, size: int = 32) -> tuple[CorpusItem, ...]:
    """The corpus for `seed`, with `size`x`size` images, in plan order (patient, study, series, instance)."""
    if seed < 0:
        raise ValueError(f"corpus seed must be a non-negative integer, got {seed}")
    if not 4 <= size <= 512:
        raise ValueError(f"corpus image size must be within 4..512, got {size}")
    items: list[CorpusItem] = []
    for series in _PLAN:
        rng = np.random.default_rng([seed, zlib.crc32(series.kind.encode())])
        base = _series_dataset(series, seed)
        _KIND_BUILDERS[series.kind](base, series, rng, size)
        for number, variant in enumerate(series.variants, start=1):
            items.append(_instance(base, series, seed, number, variant))
    return tuple(items)


def encode(item: CorpusItem) -> bytes:
    """The item as DICOM Part 10 file bytes (preamble, file meta, dataset in its transfer syntax)."""
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, item.dataset, enforce_file_format=True)
    return buffer.getvalue()


def corpus_hash(items: Iterable[CorpusItem]) -> str:
    """sha256 (hex) over every item's key and Part 10 bytes, in key order."""
    digest = hashlib.sha256()
    for item in sorted(items, key=lambda i: i.key):
        data = encode(item)
        # Length-prefixed, so moving bytes between items changes the hash.
        digest.update(f"{item.key}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def write_folder(items: Iterable[CorpusItem], folder: str | Path) -> list[Path]:
    """Write each item to `folder/<key>.dcm` (folder created if missing); the paths in item order."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for item in items:
        path = target / (re.sub(r"[^A-Za-z0-9._-]", "_", item.key) + ".dcm")
        path.write_bytes(encode(item))
        paths.append(path)
    return paths


def by_key(items: Iterable[CorpusItem]) -> Mapping[str, CorpusItem]:
    """Items by key, read-only."""
    return types.MappingProxyType({i.key: i for i in items})


def index(items: Iterable[CorpusItem]) -> tuple[PatientEntry, ...]:
    """What the items hold as patients -> studies -> series -> instances, read from their datasets.

    Sorted by PatientID, StudyDate, SeriesNumber and InstanceNumber, so query suites can
    count expected matches at every Q/R level.
    """
    tree: dict[str, dict[str, dict[str, list[CorpusItem]]]] = {}
    for item in items:
        by_study = tree.setdefault(item.patient_id, {})
        by_series = by_study.setdefault(item.study_instance_uid, {})
        by_series.setdefault(item.series_instance_uid, []).append(item)
    return tuple(_patient_entry(studies) for _, studies in sorted(tree.items()))


# ---------------------------------------------------------------- index helpers


def _patient_entry(studies: Mapping[str, Mapping[str, list[CorpusItem]]]) -> PatientEntry:
    entries = sorted((_study_entry(s) for s in studies.values()), key=lambda e: (e.study_date, e.study_time))
    ds = next(iter(next(iter(studies.values())).values()))[0].dataset
    return PatientEntry(
        patient_id=str(ds.PatientID),
        patient_name=str(ds.PatientName),
        patient_birth_date=str(ds.PatientBirthDate),
        patient_sex=str(ds.PatientSex),
        studies=tuple(entries),
    )


def _study_entry(series: Mapping[str, list[CorpusItem]]) -> StudyEntry:
    entries = sorted((_series_entry(s) for s in series.values()), key=lambda e: e.series_number)
    ds = next(iter(series.values()))[0].dataset
    return StudyEntry(
        study_instance_uid=str(ds.StudyInstanceUID),
        study_date=str(ds.StudyDate),
        study_time=str(ds.StudyTime),
        accession_number=str(ds.AccessionNumber),
        study_id=str(ds.StudyID),
        study_description=str(ds.StudyDescription),
        referring_physician_name=str(ds.ReferringPhysicianName),
        series=tuple(entries),
    )


def _series_entry(items: list[CorpusItem]) -> SeriesEntry:
    ds = items[0].dataset
    instances = sorted(
        (
            InstanceEntry(
                i.key, i.sop_instance_uid, i.sop_class_uid, i.transfer_syntax_uid, int(i.dataset.InstanceNumber)
            )
            for i in items
        ),
        key=lambda e: e.instance_number,
    )
    return SeriesEntry(
        series_instance_uid=str(ds.SeriesInstanceUID),
        modality=str(ds.Modality),
        series_number=int(ds.SeriesNumber),
        series_description=str(ds.SeriesDescription),
        instances=tuple(instances),
    )


# ---------------------------------------------------------------- dataset building


def _uid(seed: int, *parts: str) -> UID:
    # One joined source: generate_uid concatenates sources, which would make ("1", "22") == ("12", "2").
    return generate_uid(prefix=UID_ROOT, entropy_srcs=["patchgate-corpus/" + "/".join((str(seed), *parts))])


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _series_dataset(series: _Series, seed: int) -> Dataset:
    """Patient, General Study, General Series, General Equipment and SOP Common modules."""
    study, patient = series.study, series.study.patient
    ds = Dataset()
    ds.SpecificCharacterSet = _CHARSET
    ds.InstanceCreationDate = study.date
    ds.InstanceCreationTime = series.time
    ds.SOPClassUID = SOP_CLASSES[series.kind]
    ds.StudyDate = study.date
    ds.SeriesDate = study.date
    ds.ContentDate = study.date
    ds.StudyTime = study.time
    ds.SeriesTime = series.time
    ds.ContentTime = series.time
    ds.AccessionNumber = study.accession
    ds.Modality = _MODALITIES.get(series.kind, series.kind)
    ds.Manufacturer = "patchgate"
    ds.InstitutionName = "Synthetic General Hospital"
    ds.ReferringPhysicianName = study.referring
    ds.StationName = f"PG-{series.kind}-01"
    ds.StudyDescription = study.description
    ds.SeriesDescription = series.description
    ds.ManufacturerModelName = "corpus"
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.IssuerOfPatientID = "PATCHGATE"
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.SoftwareVersions = "1"
    ds.StudyInstanceUID = _uid(seed, "study", study.key)
    ds.SeriesInstanceUID = _uid(seed, "series", study.key, series.kind)
    ds.StudyID = study.study_id
    ds.SeriesNumber = series.number
    if series.kind in ("CT", "MR"):
        ds.FrameOfReferenceUID = _uid(seed, "frame", study.key, series.kind)
    return ds


def _instance(base: Dataset, series: _Series, seed: int, number: int, variant: str) -> CorpusItem:
    key = f"{series.kind}-{variant}"
    syntax = UID(TRANSFER_SYNTAXES[variant])
    ds = copy.deepcopy(base)
    ds.SOPInstanceUID = _uid(seed, "instance", key)
    ds.InstanceNumber = number
    if "ImagePositionPatient" in ds:  # slices of a stack, 5 mm apart
        x, y, _ = ds.ImagePositionPatient
        ds.ImagePositionPatient = [x, y, -5.0 * number]
        ds.SliceLocation = -5.0 * number
    if syntax == ImplicitVRLittleEndian and "PixelData" in ds:
        ds["PixelData"].VR = "OW"  # implicit VR Pixel Data is always OW (PS3.5 A.1), 8-bit too
    ds.file_meta = _file_meta(ds, ExplicitVRLittleEndian if syntax.is_compressed else syntax)
    if syntax.is_compressed:
        ds.compress(syntax, encoding_plugin="pydicom", generate_instance_uid=False)
    ds.file_meta = _file_meta(ds, syntax)  # a fresh, complete group 2 whatever compress() touched
    return CorpusItem(
        key=key,
        sop_class_uid=str(ds.SOPClassUID),
        transfer_syntax_uid=str(syntax),
        modality=str(ds.Modality),
        patient_id=str(ds.PatientID),
        study_instance_uid=str(ds.StudyInstanceUID),
        series_instance_uid=str(ds.SeriesInstanceUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        dataset=ds,
    )


def _file_meta(ds: Dataset, syntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = UID(syntax)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


def _set_pixels(ds: Dataset, frames: _Array, photometric: str, bits_stored: int) -> None:
    """Image Pixel module consistent with `frames` (rows, cols[, 3]) or (n, rows, cols[, 3])."""
    rgb = photometric == "RGB"
    multi = frames.ndim == (4 if rgb else 3)
    shape = frames.shape[1:] if multi else frames.shape
    bits = frames.dtype.itemsize * 8
    ds.SamplesPerPixel = 3 if rgb else 1
    ds.PhotometricInterpretation = photometric
    if rgb:
        ds.PlanarConfiguration = 0
    if multi:
        ds.NumberOfFrames = frames.shape[0]
    ds.Rows, ds.Columns = int(shape[0]), int(shape[1])
    ds.BitsAllocated = bits
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    ds.add_new(
        0x7FE00010, "OW" if bits > 8 else "OB", np.ascontiguousarray(frames).astype("<u" + str(bits // 8)).tobytes()
    )


def _grid(size: int) -> tuple[_Floats, _Floats]:
    """Coordinates in -1..1 for a size x size image."""
    axis = np.linspace(-1.0, 1.0, size)
    yy, xx = np.meshgrid(axis, axis, indexing="ij")
    return yy, xx


def _phantom(rng: np.random.Generator, size: int, levels: tuple[float, float, float], noise: float) -> _Array:
    """Background, an ellipse and an off-centre disc, plus Gaussian noise; rounded to uint16."""
    yy, xx = _grid(size)
    image: _Floats = np.full((size, size), levels[0])
    image[(xx / 0.8) ** 2 + (yy / 0.65) ** 2 <= 1.0] = levels[1]
    image[(xx - 0.3) ** 2 + (yy + 0.1) ** 2 <= 0.04] = levels[2]
    image += rng.normal(0.0, noise, image.shape)
    return np.clip(np.rint(image), 0, 4095).astype(np.uint16)


def _ct(ds: Dataset, series: _Series, rng: np.random.Generator, size: int) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.BodyPartExamined = "CHEST"
    ds.PatientPosition = "HFS"
    ds.KVP = 120
    ds.SliceThickness = 5.0
    ds.AcquisitionNumber = 1
    _frame_of_reference(ds, series)
    ds.PixelSpacing = [round(350.0 / size, 4)] * 2
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    _set_pixels(ds, _phantom(rng, size, (24.0, 1064.0, 1724.0), 12.0), "MONOCHROME2", 12)


def _mr(ds: Dataset, series: _Series, rng: np.random.Generator, size: int) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.BodyPartExamined = "HEAD"
    ds.PatientPosition = "HFS"
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.SliceThickness = 5.0
    ds.RepetitionTime = 500.0
    ds.EchoTime = 15.0
    ds.EchoTrainLength = 1
    ds.MagneticFieldStrength = 1.5
    ds.AcquisitionNumber = 1
    _frame_of_reference(ds, series)
    ds.PixelSpacing = [round(240.0 / size, 4)] * 2
    _set_pixels(ds, _phantom(rng, size, (8.0, 900.0, 2100.0), 20.0), "MONOCHROME2", 12)


def _projection(rng: np.random.Generator, size: int) -> _Array:
    """A radiograph-like gradient with a bright block, 12 bits."""
    yy, xx = _grid(size)
    image = 1800.0 + 900.0 * yy - 400.0 * xx**2
    image[(abs(xx) < 0.25) & (abs(yy) < 0.6)] += 1200.0
    image += rng.normal(0.0, 15.0, image.shape)
    return np.clip(np.rint(image), 0, 4095).astype(np.uint16)


def _cr(ds: Dataset, series: _Series, rng: np.random.Generator, size: int) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.PatientOrientation = ["L", "F"]
    ds.KVP = 110
    _set_pixels(ds, _projection(rng, size), "MONOCHROME2", 12)


def _dx(ds: Dataset, series: _Series, rng: np.random.Generator, size: int) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.BodyPartExamined = "HAND"
    ds.Laterality = "L"
    ds.ImageLaterality = "L"
    ds.ViewPosition = "PA"
    ds.PatientOrientation = ["R", "F"]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.DetectorType = "SCINTILLATOR"
    ds.ImagerPixelSpacing = [round(240.0 / size, 4)] * 2
    ds.KVP = 55
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "US"
    ds.PixelIntensityRelationship = "LIN"
    ds.PixelIntensityRelationshipSign = 1
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    ds.AnatomicRegionSequence = Sequence([_code("T-D8700", "SRT", "Hand")])
    _set_pixels(ds, _projection(rng, size), "MONOCHROME2", 12)


def _us(ds: Dataset, series: _Series, rng: np.random.Generator, size: int) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY", "ABDOMINAL", "0001"]
    ds.BodyPartExamined = "ABDOMEN"
    ds.LossyImageCompression = "00"
    ds.BurnedInAnnotation = "NO"
    ds.FrameTime = 40.0
    ds.CineRate = 25
    ds.FrameIncrementPointer = 0x00181063  # Frame Time
    yy, xx = _grid(size)
    sector = (np.hypot(xx, yy + 1.0) <= 1.9) & (np.abs(xx) <= (yy + 1.0) * 0.7)
    frames = np.zeros((_US_FRAMES, size, size, 3), dtype=np.uint8)
    for n in range(_US_FRAMES):
        speckle = rng.rayleigh(45.0, (size, size)) * sector
        gray = np.clip(np.rint(speckle), 0, 255).astype(np.uint8)
        frames[n] = gray[..., None]
        # A Doppler blob moving across the sector: colour, so the RGB planes differ.
        blob = np.hypot(xx - (-0.4 + 0.16 * n), yy - 0.3) <= 0.18
        frames[n][blob] = (200, 30, 30)
    _set_pixels(ds, frames, "RGB", 8)


def _sc(ds: Dataset, series: _Series, rng: np.random.Generator, size: int) -> None:
    ds.ConversionType = "WSD"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.BurnedInAnnotation = "YES"
    ds.PatientOrientation = ""
    _, xx = _grid(size)
    image = np.rint((xx + 1.0) * 100.0) + rng.integers(0, 8, (size, size))
    image[::4, :] = 255  # text-like bars of a captured screen
    _set_pixels(ds, np.clip(image, 0, 255).astype(np.uint8), "MONOCHROME2", 8)


def _sr(ds: Dataset, series: _Series, rng: np.random.Generator, size: int) -> None:
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    ds.PerformedProcedureCodeSequence = Sequence()
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    ds.ConceptNameCodeSequence = Sequence([_code("18748-4", "LN", "Diagnostic Imaging Report")])
    findings = (
        ("121071", "DCM", "Finding", "Keine Auffälligkeiten im Thorax."),
        ("121076", "DCM", "Conclusion", "Unauffälliger Befund."),
    )
    content = []
    for value, scheme, meaning, text in findings:
        item = Dataset()
        item.RelationshipType = "CONTAINS"
        item.ValueType = "TEXT"
        item.ConceptNameCodeSequence = Sequence([_code(value, scheme, meaning)])
        item.TextValue = text
        content.append(item)
    ds.ContentSequence = Sequence(content)


def _pdf(ds: Dataset, series: _Series, rng: np.random.Generator, size: int) -> None:
    study = series.study
    ds.ConversionType = "SD"
    ds.BurnedInAnnotation = "YES"
    ds.AcquisitionDateTime = study.date + series.time
    ds.DocumentTitle = "Ultrasound report"
    ds.ConceptNameCodeSequence = Sequence()
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    document = _pdf_bytes(
        (
            "Ultrasound report (synthetic, patchgate)",
            f"Patient {study.patient.patient_id}, accession {study.accession}",
            f"Study date {study.date}: liver normal in size and echotexture.",
        )
    )
    ds.EncapsulatedDocumentLength = len(document)
    # OB values are even-length; the length element keeps the unpadded size.
    ds.add_new(0x00420011, "OB", document + b"\0" * (len(document) % 2))


def _frame_of_reference(ds: Dataset, series: _Series) -> None:
    """Frame of Reference (its UID is set with the series) and Image Plane position."""
    ds.PositionReferenceIndicator = ""
    ds.ImagePositionPatient = [-120.0, -120.0, 0.0]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def _pdf_bytes(lines: tuple[str, ...]) -> bytes:
    """A minimal valid one-page PDF 1.4 with `lines` in Helvetica and a correct xref table."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    text = "".join(f"({escape(line)}) Tj T* " for line in lines)
    stream = f"BT /F1 12 Tf 16 TL 72 720 Td {text}ET".encode("latin-1")
    objects = (
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    )
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


_KIND_BUILDERS: Mapping[str, Callable[[Dataset, _Series, np.random.Generator, int], None]] = types.MappingProxyType(
    {"CT": _ct, "MR": _mr, "CR": _cr, "DX": _dx, "US": _us, "SC": _sc, "SR": _sr, "PDF": _pdf}
)
