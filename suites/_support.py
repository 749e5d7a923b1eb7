"""Helpers the suites share: DICOM JSON observations with bulk data as hashes, and hashes of stored files."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.tag import Tag
from pydicom.uid import UID
from pynetdicom.dsutils import split_dataset

from harness.model import Endpoint
from simulators.corpus import CorpusItem
from simulators.endpoint import PROBE_AE_TITLE
from simulators.modality import Modality
from simulators.pacs import JOURNAL
from simulators.ris import RequestLine, read_requests

__all__ = [
    "SERVICES",
    "SUCCESS_OR_WARNING",
    "Arrival",
    "arrivals_at_pacs",
    "ask",
    "attribute_diff",
    "clear_received",
    "dataset_json",
    "decoded_pixels_sha256",
    "device_requests",
    "query",
    "status_hex",
    "wire_objects",
]

# One parameter per DICOM service, each with its marker: undeclared services are recorded as not applicable.
SERVICES = [pytest.param(s, marks=pytest.mark.service(s), id=s) for s in ("echo", "store", "find", "move", "get")]


def ask(service: str, modality: Modality, peer: Endpoint, item: CorpusItem, pacs: Endpoint) -> Any:
    """One request of `service` about `item`'s study (store: the item itself); the Modality result."""
    study = query("STUDY", StudyInstanceUID=item.study_instance_uid)
    calls: Mapping[str, Callable[[], Any]] = {
        "echo": lambda: modality.echo(peer),
        # The object is one the store suite stores anyway, so letting it in changes no count.
        "store": lambda: modality.store(peer, [item.dataset]),
        "find": lambda: modality.find(peer, query("STUDY", StudyInstanceUID="", StudyDate=""), "study"),
        "move": lambda: modality.move(peer, study, pacs.ae_title, "study"),
        "get": lambda: modality.get(peer, study, "study", sop_classes=[(item.sop_class_uid, item.transfer_syntax_uid)]),
    }
    return calls[service]()


# PS3.4 C-STORE: success, or warnings that still mean "stored" (coercion, elements discarded, mismatch).
SUCCESS_OR_WARNING = frozenset({0x0000, 0xB000, 0xB006, 0xB007})


def _bulk(element: Any) -> str:
    return "sha256:" + hashlib.sha256(element.value if isinstance(element.value, bytes) else b"").hexdigest()


def dataset_json(ds: Dataset) -> dict[str, Any]:
    """The DICOM JSON model of `ds` with binary values over 64 bytes replaced by their sha256."""
    return ds.to_json_dict(bulk_data_threshold=64, bulk_data_element_handler=lambda el: _bulk(el))


def status_hex(status: int | None) -> str:
    return "none" if status is None else f"0x{status:04X}"


def query(level: str, **keys: str) -> Dataset:
    """A C-FIND/C-MOVE/C-GET identifier: QueryRetrieveLevel plus the given keywords."""
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def _dicom_files(storage: Path) -> Iterable[tuple[Path, str]]:
    """(path, SOP Instance UID) of every DICOM file under `storage`; other files (the index) are passed over."""
    for path in sorted(storage.rglob("*")):
        if not path.is_file():
            continue
        try:
            yield path, str(dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID)
        except (InvalidDicomError, OSError, ValueError, AttributeError):
            continue  # not a DICOM file: the index, a journal


def clear_received(storage: Path) -> None:
    """Remove what the PACS simulator received so far, and its journal (its index may go stale; the files are the truth)."""
    for path, _ in list(_dicom_files(storage)):
        path.unlink(missing_ok=True)
    (storage / JOURNAL).unlink(missing_ok=True)


@dataclass(frozen=True)
class Arrival:
    """One object as it arrived at a receiver: on which association, from whom, in which syntax, and what."""

    sop_instance_uid: str
    transfer_syntax_uid: str
    association: int  # numbered by the receiver, from 1 in the order associations first delivered
    calling_ae: str
    encoded: bytes  # the dataset bytes as received (no file meta)
    dataset: Dataset


def arrivals_at_pacs(storage: Path, uids: Iterable[str]) -> list[Arrival]:
    """What the PACS simulator received of `uids` since clear_received, one Arrival per C-STORE, in order.

    Association numbers restart at 1 here (the simulator counts over its lifetime). A received
    file the journal does not name is a harness fault (a simulator from other code): AssertionError.
    """
    wanted = set(uids)
    lines: list[dict[str, Any]] = []
    journal = storage / JOURNAL
    if journal.exists():
        for number, text in enumerate(journal.read_text(encoding="utf-8").splitlines(), 1):
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError as exc:
                raise AssertionError(
                    f"{journal}:{number}: not a JSON line ({exc}); a torn journal is a PACS fault"
                ) from exc
    journaled = {str(line["sop_instance_uid"]) for line in lines}
    unjournaled = sorted(uid for _, uid in _dicom_files(storage) if uid in wanted and uid not in journaled)
    assert not unjournaled, (
        f"the PACS simulator stored {unjournaled[:3]} but its {JOURNAL} does not say how they arrived: "
        "is the simulators image built from this checkout? (python -m harness.images --only simulators)"
    )
    renumber: dict[int, int] = {}
    loaded: dict[str, tuple[bytes, Dataset]] = {}
    arrivals = []
    for line in lines:
        uid = str(line["sop_instance_uid"])
        if uid not in wanted:
            continue
        path = storage / str(line["file"])
        if uid not in loaded and path.is_file():
            _, offset = split_dataset(path)
            loaded[uid] = (path.read_bytes()[offset:], dcmread(path))
        if uid not in loaded:
            continue  # journaled, then overwritten or removed: the file is the truth
        association = renumber.setdefault(int(line["association"]), len(renumber) + 1)
        encoded, ds = loaded[uid]
        arrivals.append(
            Arrival(uid, str(line["transfer_syntax_uid"]), association, str(line["calling_ae"]), encoded, ds)
        )
    return arrivals


def _tag_name(tag: int) -> str:
    """`StudyDescription (0008,1030)`; a private or unknown tag by its number only."""
    t = Tag(tag)
    keyword = keyword_for_tag(t)
    number = f"({t.group:04X},{t.element:04X})"
    return f"{keyword} {number}" if keyword else number


def _comparable(ds: Dataset, pixels: str | None) -> dict[str, Any]:
    """The DICOM JSON model of `ds`, Pixel Data as the digest of its decoded pixels (`pixels`) if given."""
    model = dataset_json(ds)
    if pixels is not None and "7FE00010" in model:
        model["7FE00010"] = {"decoded_sha256": pixels}
    return model


def attribute_diff(
    stored: Dataset, received: Dataset, pixels: tuple[str | None, str | None] = (None, None)
) -> dict[str, dict[str, Any]]:
    """Attributes of `received` removed, added or changed against `stored`, by `Keyword (gggg,eeee)`.

    Values are DICOM JSON elements (bulk data as hashes), so run-specific values normalise as
    elsewhere. `pixels` (stored, received) are digests of decoded Pixel Data: with them, a
    re-encoded image whose pixels are equal shows no Pixel Data change (its VR, OB or OW, aside).
    """
    before, after = _comparable(stored, pixels[0]), _comparable(received, pixels[1])
    removed = {_tag_name(int(t, 16)): v for t, v in before.items() if t not in after}
    added = {_tag_name(int(t, 16)): v for t, v in after.items() if t not in before}
    changed = {
        _tag_name(int(t, 16)): {"stored": v, "received": after[t]}
        for t, v in before.items()
        if t in after and json.dumps(v, sort_keys=True) != json.dumps(after[t], sort_keys=True)
    }
    return {"removed": removed, "added": added, "changed": changed}


def wire_objects(
    items: Iterable[CorpusItem],
    arrivals: Iterable[Arrival],
    pixels: Callable[[CorpusItem, Arrival], tuple[str | None, str | None]],
    conformance: Callable[[CorpusItem, Arrival], Any],
) -> tuple[dict[str, Any], dict[str, Any], Counter[int]]:
    """Per corpus key what reached the PACS (transfer syntax by name, association, attribute diff), or "missing";
    per key the IOD findings `conformance` gives; and the objects that arrived per association number.

    `pixels(item, arrival)` gives the (sent, received) decoded pixel digests the diff compares Pixel Data by.
    """
    arrived = list(arrivals)
    first: dict[str, Arrival] = {}
    for arrival in arrived:
        first.setdefault(arrival.sop_instance_uid, arrival)
    objects: dict[str, Any] = {}
    iod: dict[str, Any] = {}
    for item in items:
        got = first.get(item.sop_instance_uid)
        if got is None:
            objects[item.key] = "missing"
            continue
        objects[item.key] = {
            "transfer_syntax": UID(got.transfer_syntax_uid).name,
            "association": got.association,
            "attributes": attribute_diff(item.dataset, got.dataset, pixels(item, got)),
        }
        iod[item.key] = conformance(item, got)
    return objects, iod, Counter(a.association for a in arrived)


def device_requests(path: Path) -> Callable[[], list[RequestLine]]:
    """Reads a RIS request journal as it is now, without the harness's own C-ECHOs (calling AE PROBE_AE_TITLE).

    Those come at times of their own (readiness, health), so `seq` and `association` numbers are not
    comparable between runs: observe what was asked.
    """
    return lambda: [line for line in read_requests(path) if line.calling_ae != PROBE_AE_TITLE]


def decoded_pixels_sha256(ds: Dataset) -> str | None:
    """sha256 over the decoded pixels (with their shape and type) of `ds`; None if it has none or they cannot be decoded."""
    if "PixelData" not in ds:
        return None
    try:
        pixels = ds.pixel_array
    except Exception:  # noqa: BLE001  # no decoder for the syntax, or broken data: compare encoded bytes instead
        return None
    digest = hashlib.sha256(f"{pixels.dtype.str}{pixels.shape}".encode())
    digest.update(pixels.tobytes())
    return "sha256:" + digest.hexdigest()
