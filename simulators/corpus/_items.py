"""The corpus objects: generated from the plan, as Part 10 bytes, hashed, written to a folder."""

from __future__ import annotations

import hashlib
import io
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from simulators.corpus._clinical import clinical_datasets, clinical_keys
from simulators.corpus._datasets import instance_dataset, series_dataset
from simulators.corpus._plan import PLAN, TRANSFER_SYNTAXES

__all__ = [
    "CORPUS_SIZES",
    "DEFAULT_SEED",
    "CorpusItem",
    "by_key",
    "corpus_hash",
    "encode",
    "generate",
    "keys",
    "write_folder",
]

DEFAULT_SEED = 1422
# "small": the small objects (kilobytes each); "clinical": those, then realistic sizes (simulators.corpus._clinical).
CORPUS_SIZES = ("small", "clinical")


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


def generate(seed: int = DEFAULT_SEED, *, size: int = 32, corpus_size: str = "small") -> tuple[CorpusItem, ...]:
    """The corpus for `seed`, in plan order (patient, study, series, instance).

    The small objects have `size`x`size` images; `corpus_size="clinical"` appends the
    clinical-size objects (fixed, realistic matrices), so the small part is the same either way.
    """
    if seed < 0:
        raise ValueError(f"corpus seed must be a non-negative integer, got {seed}")
    if not 4 <= size <= 512:
        raise ValueError(f"corpus image size must be within 4..512, got {size}")
    _check_size(corpus_size)
    items: list[CorpusItem] = []
    for series in PLAN:
        base = series_dataset(series, seed, size)
        for number, variant in enumerate(series.variants, start=1):
            ds = instance_dataset(base, series, seed, number, variant)
            items.append(_item(series.key(variant), TRANSFER_SYNTAXES[variant], ds))
    if corpus_size == "clinical":
        items += [_item(key, TRANSFER_SYNTAXES[variant], ds) for key, variant, ds in clinical_datasets(seed)]
    return tuple(items)


def keys(corpus_size: str = "small") -> list[str]:
    """The item keys of a corpus of `corpus_size`, in `generate()` order, without making it (they do not depend on the seed)."""
    _check_size(corpus_size)
    small = [series.key(variant) for series in PLAN for variant in series.variants]
    return small + clinical_keys() if corpus_size == "clinical" else small


def _check_size(corpus_size: str) -> None:
    if corpus_size not in CORPUS_SIZES:
        raise ValueError(f"corpus size must be one of {', '.join(CORPUS_SIZES)}, got {corpus_size!r}")


def _item(key: str, transfer_syntax_uid: str, ds: Dataset) -> CorpusItem:
    return CorpusItem(
        key=key,
        sop_class_uid=str(ds.SOPClassUID),
        transfer_syntax_uid=str(transfer_syntax_uid),
        modality=str(ds.Modality),
        patient_id=str(ds.PatientID),
        study_instance_uid=str(ds.StudyInstanceUID),
        series_instance_uid=str(ds.SeriesInstanceUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        dataset=ds,
    )


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
