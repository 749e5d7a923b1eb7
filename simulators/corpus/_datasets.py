"""How the corpus datasets are built from the plan: the common modules, each kind's own, pixel phantoms and a PDF."""

from __future__ import annotations

import copy
import types
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from simulators.corpus._plan import SOP_CLASSES, TRANSFER_SYNTAXES, Series

__all__ = ["IMPLEMENTATION_CLASS_UID", "UID_ROOT", "instance_dataset", "series_dataset"]

# Under Medical Connections' free UID service root; ".10.1422." is patchgate's arc.
UID_ROOT = "1.2.826.0.1.3680043.10.1422."
IMPLEMENTATION_CLASS_UID = UID_ROOT + "0.1"
IMPLEMENTATION_VERSION_NAME = "PATCHGATE_1"

_US_FRAMES = 6

_Array = npt.NDArray[Any]
_Floats = npt.NDArray[np.float64]


def _uid(seed: int, *parts: str) -> UID:
    # One joined source: generate_uid concatenates sources, which would make ("1", "22") == ("12", "2").
    return generate_uid(prefix=UID_ROOT, entropy_srcs=["patchgate-corpus/" + "/".join((str(seed), *parts))])


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def series_dataset(series: Series, seed: int, size: int) -> Dataset:
    """What every instance of `series` shares: the common modules, then its kind's, with `size`x`size` pixels."""
    ds = _common_modules(series, seed)
    rng = np.random.default_rng([seed, zlib.crc32(series.kind.encode())])
    _KIND_BUILDERS[series.kind](ds, series, rng, size)
    return ds


def _common_modules(series: Series, seed: int) -> Dataset:
    """Patient, General Study, General Series, General Equipment and SOP Common modules."""
    study, patient = series.study, series.study.patient
    ds = Dataset()
    # Set first: pydicom encodes the names below in the character set it declares.
    ds.SpecificCharacterSet = list(patient.charset) if len(patient.charset) > 1 else patient.charset[0]
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
    ds.Modality = series.modality
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
    if study.request is not None:  # a series-level sequence real archives index (PS3.4 C.6.1.1.4)
        item = Dataset()
        item.RequestedProcedureID, item.ScheduledProcedureStepID = study.request
        ds.RequestAttributesSequence = Sequence([item])
    return ds


def instance_dataset(base: Dataset, series: Series, seed: int, number: int, variant: str) -> Dataset:
    """Instance `number` of the series, a copy of `base`, with its file meta and in its variant's transfer syntax."""
    syntax = UID(TRANSFER_SYNTAXES[variant])
    ds = copy.deepcopy(base)
    ds.SOPInstanceUID = _uid(seed, "instance", series.key(variant))
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
    return ds


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


def _ct(ds: Dataset, series: Series, rng: np.random.Generator, size: int) -> None:
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


def _mr(ds: Dataset, series: Series, rng: np.random.Generator, size: int) -> None:
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


def _cr(ds: Dataset, series: Series, rng: np.random.Generator, size: int) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.PatientOrientation = ["L", "F"]
    ds.KVP = 110
    _set_pixels(ds, _projection(rng, size), "MONOCHROME2", 12)


def _dx(ds: Dataset, series: Series, rng: np.random.Generator, size: int) -> None:
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


def _us(ds: Dataset, series: Series, rng: np.random.Generator, size: int) -> None:
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


def _sc(ds: Dataset, series: Series, rng: np.random.Generator, size: int) -> None:
    ds.ConversionType = "WSD"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.BurnedInAnnotation = "YES"
    ds.PatientOrientation = ""
    _, xx = _grid(size)
    image = np.rint((xx + 1.0) * 100.0) + rng.integers(0, 8, (size, size))
    image[::4, :] = 255  # text-like bars of a captured screen
    _set_pixels(ds, np.clip(image, 0, 255).astype(np.uint8), "MONOCHROME2", 8)


def _sr(ds: Dataset, series: Series, rng: np.random.Generator, size: int) -> None:
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


def _pdf(ds: Dataset, series: Series, rng: np.random.Generator, size: int) -> None:
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


def _frame_of_reference(ds: Dataset, series: Series) -> None:
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


_KIND_BUILDERS: Mapping[str, Callable[[Dataset, Series, np.random.Generator, int], None]] = types.MappingProxyType(
    {"CT": _ct, "MR": _mr, "CR": _cr, "DX": _dx, "US": _us, "SC": _sc, "SR": _sr, "PDF": _pdf}
)
