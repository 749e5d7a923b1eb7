"""The corpus plan: the fixed patients, studies and series the synthetic corpus is made of, and their variants."""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass

from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless

__all__ = ["PATIENTS", "PLAN", "SOP_CLASSES", "TRANSFER_SYNTAXES", "Patient", "Series", "Study"]

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
_IMAGE_VARIANTS = ("implicit", "explicit", "rle")
_DOCUMENT_VARIANTS = ("implicit", "explicit", "deflated")


@dataclass(frozen=True)
class Patient:
    """A patient of the plan: the demographics every one of their instances carries."""

    patient_id: str
    name: str
    birth_date: str
    sex: str
    # SpecificCharacterSet of all their objects; "" as a first value is the default repertoire (PS3.5 6.1.2.5.2).
    charset: tuple[str, ...] = ("ISO_IR 100",)


@dataclass(frozen=True)
class Study:
    """A study of the plan; `key` seeds its UIDs."""

    key: str
    patient: Patient
    date: str
    time: str
    accession: str
    study_id: str
    description: str
    referring: str
    # (RequestedProcedureID, ScheduledProcedureStepID): one RequestAttributesSequence item in each series.
    request: tuple[str, str] | None = None


@dataclass(frozen=True)
class Series:
    """A series of the plan: one object of `kind`, one instance per transfer syntax variant."""

    kind: str  # a SOP_CLASSES key
    study: Study
    number: int
    description: str
    time: str
    variants: tuple[str, ...]  # TRANSFER_SYNTAXES keys, one instance each
    label: str = ""  # the key's prefix when a kind has several series in the plan (default: the kind)

    @property
    def modality(self) -> str:
        return _MODALITIES.get(self.kind, self.kind)

    def key(self, variant: str) -> str:
        """The stable id of this series' instance in `variant`, "<KIND>-<variant>" (or "<label>-<variant>")."""
        return f"{self.label or self.kind}-{variant}"


_MUELLER = Patient("PG-0001", "Müller^Jürgen", "19561023", "M")
_DOE = Patient("PG-0002", "DOE^JANE", "19800101", "F")
_VAN_DIJK = Patient("PG-0003", "van Dijk^Anna^Maria", "19921207", "F")
_SMITH = Patient("PG-0004", "Smith^John^^Dr.", "19700515", "M")
# Non-Latin-1 names, each in its own character set: the PS3.5 H.3.1 example in Japanese ISO 2022
# (JIS X 0208 ideographic and phonetic groups behind escape sequences), and the J.3 example in UTF-8.
_YAMADA = Patient("PG-0005", "Yamada^Tarou=山田^太郎=やまだ^たろう", "19750402", "M", ("", "ISO 2022 IR 87"))
_WANG = Patient("PG-0006", "Wang^XiaoDong=王^小東", "19880811", "M", ("ISO_IR 192",))

_CHEST_CT = Study("chest-ct", _MUELLER, "20210304", "083015", "ACC1001", "1001", "CT Thorax nativ", "Schäfer^Anna^^Dr.")
_CHEST_CR = Study("chest-cr", _DOE, "20230214", "101500", "ACC1002", "1002", "CHEST PA", "WELBY^MARCUS")
_HAND_DX = Study("hand-dx", _DOE, "20230909", "141000", "ACC1003", "1003", "Hand left", "Welby^Marcus")
_ABDOMEN_US = Study("abdomen-us", _VAN_DIJK, "20240517", "093000", "ACC1004", "1004", "US Abdomen", "de Vries^Pieter")
_BRAIN_MR = Study("brain-mr", _SMITH, "20221120", "161545", "ACC1005", "1005", "MRI BRAIN W/O", "")
_REQUEST_1006, _REQUEST_1007 = ("RP1006", "SPS1006"), ("RP1007", "SPS1007")
_YAMADA_SC = Study("yamada-sc", _YAMADA, "20240122", "113000", "ACC1006", "1006", "Screen capture", "", _REQUEST_1006)
_WANG_SC = Study("wang-sc", _WANG, "20241008", "151500", "ACC1007", "1007", "Screen capture", "Li^Na", _REQUEST_1007)

PLAN = (
    Series("CT", _CHEST_CT, 1, "Axial 5mm", "083500", _IMAGE_VARIANTS),
    Series("SC", _CHEST_CT, 2, "Dosisbericht", "084500", (*_IMAGE_VARIANTS, "deflated")),
    Series("SR", _CHEST_CT, 3, "Befund", "120000", _DOCUMENT_VARIANTS),
    Series("CR", _CHEST_CR, 1, "PA", "101800", _IMAGE_VARIANTS),
    Series("DX", _HAND_DX, 1, "Hand PA", "141200", _IMAGE_VARIANTS),
    Series("US", _ABDOMEN_US, 1, "Liver cine", "093500", _IMAGE_VARIANTS),
    Series("PDF", _ABDOMEN_US, 2, "Scanned report", "100000", _DOCUMENT_VARIANTS),
    Series("MR", _BRAIN_MR, 1, "T1 SAG", "162000", _IMAGE_VARIANTS),
    # Small on purpose (every item is a store and a retrieve case in every suite): they are here for their names.
    Series("SC", _YAMADA_SC, 1, "Capture", "113500", ("implicit", "explicit"), "SC_JIS"),
    Series("SC", _WANG_SC, 1, "Capture", "152000", ("explicit",), "SC_UTF8"),
)

# Every patient of the plan once, in plan order (the RIS schedules procedures for them: simulators.ris.worklist).
PATIENTS: tuple[Patient, ...] = tuple(dict.fromkeys(series.study.patient for series in PLAN))
