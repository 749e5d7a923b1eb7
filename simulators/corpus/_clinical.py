"""The clinical-size objects: a 512x512 signed 16-bit CT stack, a 100-frame 512x512 XA cine and a 3000x3000 DX."""

from __future__ import annotations

import copy
import functools
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian

from simulators.corpus._datasets import _code, _common_modules, _file_meta, _grid, _uid
from simulators.corpus._plan import PLAN, TRANSFER_SYNTAXES, Patient, Series, Study

__all__ = ["CLINICAL", "CT_SLICES", "XA_FRAMES", "ClinicalSeries", "clinical_datasets", "clinical_keys"]

CT_SLICES = 12  # a short 512x512 stack: "several" slices, each 512 KiB
XA_FRAMES = 100  # 6.7 s at 15 frames/s, 26 MB uncompressed
DX_SIZE = 3000  # 18 MB at 16 bits allocated

_Array = npt.NDArray[Any]


@dataclass(frozen=True)
class ClinicalSeries:
    """A clinical-size series: `count` instances (slices, or 1) in each variant, one series per variant."""

    kind: str  # the key prefix, e.g. "CT512"
    template: str  # the small corpus' kind whose common modules it borrows (its SOP class is set after)
    sop_class_uid: str
    modality: str
    study: Study
    number: int  # SeriesNumber of the first variant's series; the next variants follow
    description: str
    time: str
    variants: tuple[str, ...]
    count: int = 1

    def key(self, variant: str, number: int) -> str:
        """`<KIND>-<variant>`, with `-<NN>` (InstanceNumber) for a stack."""
        return f"{self.kind}-{variant}" + (f"-{number:02d}" if self.count > 1 else "")


def _patient(patient_id: str) -> Patient:
    # Looked up, not imported by name: the clinical studies belong to the small corpus' first patient, so the
    # retrieve suites' patient-level C-MOVE and C-GET carry the large objects too (a cardiac work-up).
    return next(s.study.patient for s in PLAN if s.study.patient.patient_id == patient_id)


def _plan() -> tuple[ClinicalSeries, ...]:
    ct_study = Study(
        "clinical-ct",
        _patient("PG-0001"),
        "20240611",
        "071500",
        "ACC2001",
        "2001",
        "CT Thorax mit KM",
        "Schäfer^Anna^^Dr.",
    )
    dx_study = Study(
        "clinical-dx", _patient("PG-0001"), "20240120", "111500", "ACC2002", "2002", "CHEST PA", "WELBY^MARCUS"
    )
    xa_study = Study(
        "clinical-xa", _patient("PG-0001"), "20231002", "133000", "ACC2003", "2003", "CORONARY ANGIOGRAPHY", ""
    )
    return (
        ClinicalSeries(
            "CT512",
            "CT",
            "1.2.840.10008.5.1.4.1.1.2",
            "CT",
            ct_study,
            1,
            "Thorax 5mm",
            "072000",
            ("explicit", "rle"),
            CT_SLICES,
        ),
        ClinicalSeries(
            "DX3000", "DX", "1.2.840.10008.5.1.4.1.1.1.1", "DX", dx_study, 1, "Chest PA", "111800", ("explicit",)
        ),
        ClinicalSeries(
            "XA", "CR", "1.2.840.10008.5.1.4.1.1.12.1", "XA", xa_study, 1, "LCA RAO 30", "134000", ("explicit",)
        ),
    )


CLINICAL = _plan()


def clinical_keys() -> list[str]:
    """The keys of the clinical-size items, in generation order, without making any pixels."""
    return [s.key(v, n) for s in CLINICAL for v in s.variants for n in range(1, s.count + 1)]


def clinical_datasets(seed: int) -> Iterator[tuple[str, str, Dataset]]:
    """(key, variant, dataset) of each clinical-size instance, in `clinical_keys()` order, made one at a time."""
    for series in CLINICAL:
        rng = np.random.default_rng([seed, zlib.crc32(series.kind.encode())])
        pixels = _PIXELS[series.kind](rng) if series.kind in _PIXELS else None
        for offset, variant in enumerate(series.variants):
            base = _base(series, seed, series.number + offset, variant)
            for number in range(1, series.count + 1):
                key = series.key(variant, number)
                ds = copy.deepcopy(base)  # without Pixel Data: 26 MB are not worth copying
                if series.count > 1:  # a stack: each slice its own position and pixels
                    _ct_slice(ds, seed, number)
                elif pixels is not None:
                    ds.add_new(0x7FE00010, "OW" if pixels.dtype.itemsize > 1 else "OB", pixels.tobytes())
                ds.SOPInstanceUID = _uid(seed, "clinical-instance", key)
                ds.InstanceNumber = number
                yield key, variant, _encoded(ds, variant)


def _base(series: ClinicalSeries, seed: int, number: int, variant: str) -> Dataset:
    """The series' shared modules: the small corpus' common ones, then our class, series UID and the kind's own."""
    borrowed = Series(series.template, series.study, number, series.description, series.time, ())
    ds = _common_modules(borrowed, seed)
    ds.SOPClassUID = series.sop_class_uid
    ds.Modality = series.modality
    ds.StationName = f"PG-{series.kind}-01"
    ds.SeriesInstanceUID = _uid(seed, "clinical-series", series.study.key, series.kind, variant)
    if "FrameOfReferenceUID" in ds:  # one frame of reference for the study's stacks, whatever their syntax
        ds.FrameOfReferenceUID = _uid(seed, "clinical-frame", series.study.key, series.kind)
    _MODULES[series.kind](ds)
    return ds


def _encoded(ds: Dataset, variant: str) -> Dataset:
    """File meta for `variant`'s transfer syntax, pixel data compressed if it is a compressed one."""
    syntax = UID(TRANSFER_SYNTAXES[variant])
    ds.file_meta = _file_meta(ds, ExplicitVRLittleEndian if syntax.is_compressed else syntax)
    if syntax.is_compressed:
        ds.compress(syntax, encoding_plugin="pydicom", generate_instance_uid=False)
    ds.file_meta = _file_meta(ds, syntax)
    return ds


# -- CT: a chest phantom in Hounsfield units, stored signed (HU + 1024) with a -1024 intercept ----------------------

_CT_PADDING = -2000  # outside the reconstruction circle, as GE scanners store it, declared as padding


def _ct(ds: Dataset) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.BodyPartExamined = "CHEST"
    ds.PatientPosition = "HFS"
    ds.KVP = 120
    ds.XRayTubeCurrent = 250
    ds.ExposureTime = 500
    ds.ConvolutionKernel = "STANDARD"
    ds.SliceThickness = 5.0
    ds.SpacingBetweenSlices = 5.0
    ds.AcquisitionNumber = 1
    ds.PositionReferenceIndicator = ""
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [0.703125, 0.703125]  # a 360 mm field of view
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenter = [40, -600]
    ds.WindowWidth = [400, 1500]
    ds.WindowCenterWidthExplanation = ["MEDIASTINUM", "LUNG"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 512
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.add_new(0x00280120, "SS", _CT_PADDING)  # Pixel Padding Value


def _ct_slice(ds: Dataset, seed: int, number: int) -> None:
    """Slice `number` of the stack into `ds`: its position and its stored values."""
    z = -5.0 * number
    ds.ImagePositionPatient = [-180.0, -180.0, z]
    ds.SliceLocation = z
    ds.add_new(0x7FE00010, "OW", _ct_pixels(seed, number).tobytes())


@functools.lru_cache(maxsize=CT_SLICES)
def _ct_pixels(seed: int, number: int) -> _Array:
    """Stored values of slice `number` (cached: every variant of the stack has the same pixels), little-endian int16.

    Air, fat, soft tissue, two lungs (growing down the stack), heart, aorta, spine and ribs, in
    HU + 1024 with 8 HU noise; -2000 outside the reconstruction circle.
    """
    xx, yy, body, organs = _chest_static()
    grow = 0.26 + 0.06 * (number - 1) / max(CT_SLICES - 1, 1)
    hu = body.copy()
    for side in (-1.0, 1.0):
        hu[((xx - side * 0.36) / grow) ** 2 + ((yy + 0.02) / (grow * 1.5)) ** 2 <= 1.0] = -850
    hu = np.where(organs != 0, organs, hu)  # the mediastinum, spine and ribs lie over the lungs' ellipses
    rng = np.random.default_rng([seed, zlib.crc32(b"CT512"), number])
    noise = np.rint(rng.standard_normal(hu.shape, dtype=np.float32) * 8.0)
    stored: _Array = np.clip(hu + 1024 + noise, 0, 4095).astype("<i2")
    stored[np.hypot(xx, yy) > 1.0] = _CT_PADDING
    stored.flags.writeable = False
    return stored


@functools.cache
def _chest_static() -> tuple[_Array, _Array, _Array, _Array]:
    """(x, y, HU of air, fat and soft tissue, HU of the organs drawn over the lungs or 0), the same on every slice."""
    yy, xx = _grid(512)
    body = np.full((512, 512), -1000, dtype=np.int16)
    body[(xx / 0.85) ** 2 + (yy / 0.62) ** 2 <= 1.0] = -100  # subcutaneous fat
    body[(xx / 0.78) ** 2 + (yy / 0.55) ** 2 <= 1.0] = 40  # muscle and soft tissue
    organs = np.zeros((512, 512), dtype=np.int16)
    organs[((xx - 0.08) / 0.2) ** 2 + ((yy + 0.05) / 0.17) ** 2 <= 1.0] = 45  # heart
    organs[(xx + 0.08) ** 2 + (yy - 0.18) ** 2 <= 0.06**2] = 250  # contrast-filled aorta
    organs[xx**2 + (yy - 0.38) ** 2 <= 0.085**2] = 700  # vertebral body
    organs[xx**2 + (yy - 0.38) ** 2 <= 0.05**2] = 250  # its cancellous core
    ribs = np.abs(np.sin(np.arctan2(yy, xx) * 9.0)) > 0.93
    ring = (xx / 0.8) ** 2 + (yy / 0.585) ** 2
    organs[ribs & (ring > 0.86) & (ring <= 0.95)] = 900
    for array in (xx, yy, body, organs):
        array.flags.writeable = False
    return xx, yy, body, organs


# -- DX: a 3000x3000 chest radiograph, 14 of 16 bits stored ------------------------------------------------------


def _dx(ds: Dataset) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.BodyPartExamined = "CHEST"
    ds.ImageLaterality = "U"
    ds.ViewPosition = "PA"
    ds.ViewCodeSequence = Sequence([_code("399348003", "SCT", "postero-anterior")])
    ds.PatientOrientation = ["L", "F"]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.DetectorType = "SCINTILLATOR"
    ds.ImagerPixelSpacing = [0.143, 0.143]  # a 43 cm detector
    ds.PositionerType = ""
    ds.KVP = 125
    ds.ExposureTime = 8
    ds.XRayTubeCurrent = 320
    ds.DistanceSourceToDetector = 1800.0
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "US"
    ds.WindowCenter = 7000
    ds.WindowWidth = 10000
    ds.PresentationLUTShape = "IDENTITY"
    ds.PixelIntensityRelationship = "LIN"
    ds.PixelIntensityRelationshipSign = 1
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    ds.AnatomicRegionSequence = Sequence([_code("51185008", "SCT", "Chest")])
    ds.AcquisitionContextSequence = Sequence()
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = DX_SIZE
    ds.BitsAllocated = 16
    ds.BitsStored = 14
    ds.HighBit = 13
    ds.PixelRepresentation = 0


def _chest_radiograph(rng: np.random.Generator) -> _Array:
    """Dark lungs, bright spine, mediastinum and heart; drawn at 1/4 resolution, upsampled, then noise; uint16."""
    low = DX_SIZE // 4
    yy, xx = _grid(low)
    image = np.full((low, low), 1500.0)  # the direct beam beside the patient
    body = (xx / 0.9) ** 2 + (yy / 1.1) ** 2 <= 1.0
    image[body] = 9000.0
    for side in (-1.0, 1.0):
        image[((xx - side * 0.38) / 0.3) ** 2 + ((yy + 0.05) / 0.65) ** 2 <= 1.0] = 4500.0
    image[body & (np.abs(xx) < 0.09)] += 3500.0  # spine and mediastinum
    image[((xx + 0.05) / 0.22) ** 2 + ((yy - 0.3) / 0.25) ** 2 <= 1.0] = 10500.0  # heart
    full = np.repeat(np.repeat(image.astype(np.int32), 4, axis=0), 4, axis=1)
    full += rng.integers(-64, 65, full.shape, dtype=np.int32)  # quantum noise, uniform: cheaper than Gaussian
    stored: _Array = np.clip(full, 0, 2**14 - 1).astype("<u2")
    return stored


# -- XA: a 100-frame coronary cine, 8 bits, a contrast bolus filling the vessels -------------------------------


def _xa(ds: Dataset) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY", "SINGLE PLANE"]
    ds.BodyPartExamined = "HEART"
    ds.PatientOrientation = ""
    ds.LossyImageCompression = "00"
    ds.BurnedInAnnotation = "NO"
    ds.PixelIntensityRelationship = "LOG"
    ds.RescaleIntercept = 0  # identity Modality LUT, as angiography systems send it
    ds.RescaleSlope = 1
    ds.RescaleType = "US"
    ds.RadiationSetting = "GR"
    ds.KVP = 80
    ds.XRayTubeCurrent = 600
    ds.ExposureTime = 6
    ds.DistanceSourceToDetector = 1100.0
    ds.DistanceSourceToPatient = 750.0
    ds.PositionerMotion = "STATIC"
    ds.PositionerPrimaryAngle = -30.0
    ds.PositionerSecondaryAngle = 0.0
    ds.IntensifierSize = 250.0
    ds.ImagerPixelSpacing = [0.2, 0.2]
    ds.FrameTime = 66.7
    ds.CineRate = 15
    ds.RecommendedDisplayFrameRate = 15
    ds.StartTrim = 1
    ds.StopTrim = XA_FRAMES
    ds.FrameDelay = 0.0
    ds.FrameIncrementPointer = 0x00181063  # Frame Time
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames = XA_FRAMES
    ds.Rows = ds.Columns = 512
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0


def _angiogram(rng: np.random.Generator) -> _Array:
    """Three vessels the contrast reaches further frame by frame, on a noisy background; (frames, 512, 512) uint8."""
    yy, xx = _grid(512)
    base = np.rint(170.0 - 30.0 * (xx**2 + yy**2)).astype(np.int16)
    vessels = np.zeros((512, 512), dtype=bool)
    reach = np.full((512, 512), 2.0, dtype=np.float32)  # how far down a vessel a point is, 0..1
    for bend, width in ((0.6, 0.03), (-0.4, 0.022), (0.15, 0.018)):
        near = np.abs(xx - (bend * (yy + 1.0) ** 2 / 2.0 - 0.1)) < width
        vessels |= near
        reach[near] = np.minimum(reach[near], (yy[near] + 1.0) / 2.0)
    frames = np.empty((XA_FRAMES, 512, 512), dtype=np.uint8)
    for n in range(XA_FRAMES):
        filled = vessels & (reach <= min(1.0, n / (XA_FRAMES * 0.6)))
        image = base - 110 * filled + rng.integers(-6, 7, (512, 512), dtype=np.int16)
        frames[n] = np.clip(image, 0, 255).astype(np.uint8)
    return frames


_MODULES: dict[str, Callable[[Dataset], None]] = {"CT512": _ct, "DX3000": _dx, "XA": _xa}
# Pixels shared by every instance of a series (a stack makes its own per slice).
_PIXELS: dict[str, Callable[[np.random.Generator], _Array]] = {"DX3000": _chest_radiograph, "XA": _angiogram}
