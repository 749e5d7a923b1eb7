"""Orthanc as an acquisition modality, through its REST API: pick the worklist entry, make its images, send them.

The `acquire` device action of devices/orthanc-modality/profile.toml runs this in the harness process
(`where = "host"`: the device runs on host networking, so its REST API is on the host's loopback).
One REST call cannot do it: the images must exist in Orthanc before they can be sent, and a C-STORE
takes Orthanc identifiers, which only the creation returns. So, as a modality's console would:

1. POST /modalities/{ris}/find-worklist: the entry with the item's Accession Number at this station;
2. POST /tools/create-dicom, twice: a series of two Secondary Capture images with the entry's patient,
   study and request attributes copied in (IHE RAD-8 / RAD TF-2x Table A.1-1);
3. POST /modalities/{pacs}/store, synchronously: the series on one association.

Standard library only (it runs with the harness's interpreter). Prints one JSON line of what was
done; exits 0 when the PACS took every image, 1 with the reason on stderr otherwise, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import base64
import json
import struct
import sys
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from typing import Any

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
IMAGES = 2  # per series: enough to show that a series, not one object, travels on one association
_TIMEOUT = 30.0  # seconds per REST call; the action's own deadline bounds the whole


class Failed(Exception):
    """A step that did not do what a modality needs: the message says which and why."""


def _call(base: str, method: str, path: str, body: object = None) -> Any:
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(
        base.rstrip("/") + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:500]
        raise Failed(f"{method} {path}: HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise Failed(f"{method} {path}: {exc}") from None


def _png(seed: int, size: int = 16) -> str:
    """A small grayscale PNG as a data URI (no imaging library): the pixel data of one image."""
    rows = b"".join(b"\x00" + bytes((x * 13 + y * 7 + seed * 31) % 256 for x in range(size)) for y in range(size))

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)  # 8-bit grayscale
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def worklist_entry(base: str, ris: str, accession: str, station: str) -> dict[str, Any]:
    """The one worklist entry for `accession` at `station`, as Orthanc's find-worklist answers it."""
    query = {
        "AccessionNumber": accession,
        "PatientName": "",
        "PatientID": "",
        "PatientBirthDate": "",
        "PatientSex": "",
        "StudyInstanceUID": "",
        "RequestedProcedureID": "",
        "RequestedProcedureDescription": "",
        "ReferringPhysicianName": "",
        "RequestedProcedureCodeSequence": [],
        "ReferencedStudySequence": [],
        "ScheduledProcedureStepSequence": [
            {
                "ScheduledStationAETitle": station,
                "Modality": "",
                "ScheduledProcedureStepID": "",
                "ScheduledProcedureStepDescription": "",
                "ScheduledProtocolCodeSequence": [],
            }
        ],
    }
    answers = _call(base, "POST", f"/modalities/{ris}/find-worklist", query)
    if not isinstance(answers, list) or len(answers) != 1:
        raise Failed(f"find-worklist for accession {accession} at {station}: expected one entry, got {answers!r}")
    entry: dict[str, Any] = answers[0]
    return entry


def image_tags(entry: dict[str, Any]) -> dict[str, Any]:
    """What the images copy from the worklist entry (RAD TF-2x Table A.1-1), and what a capture adds."""
    steps = entry.get("ScheduledProcedureStepSequence") or [{}]
    step = steps[0]
    # Copied only when the worklist has items: an empty Referenced Study Sequence is no valid image attribute.
    referenced = (
        {"ReferencedStudySequence": entry["ReferencedStudySequence"]} if entry.get("ReferencedStudySequence") else {}
    )
    return {
        **referenced,
        "SOPClassUID": SECONDARY_CAPTURE,
        "ConversionType": "WSD",  # workstation: a Secondary Capture's Type 1 conversion type
        "PatientName": entry.get("PatientName", ""),
        "PatientID": entry.get("PatientID", ""),
        "PatientBirthDate": entry.get("PatientBirthDate", ""),
        "PatientSex": entry.get("PatientSex", ""),
        "StudyInstanceUID": entry.get("StudyInstanceUID", ""),
        "AccessionNumber": entry.get("AccessionNumber", ""),
        "StudyDescription": entry.get("RequestedProcedureDescription", ""),
        "StudyID": entry.get("RequestedProcedureID", ""),  # RAD TF-2x A.1: the Requested Procedure ID
        "ReferringPhysicianName": entry.get("ReferringPhysicianName", ""),
        "Modality": step.get("Modality", "OT"),
        "SeriesNumber": "1",
        "SeriesDescription": "patchgate acquisition",
        "Laterality": "",  # Type 2C: unknown here, so empty
        "PatientOrientation": "",  # Type 2C: a capture has no patient orientation to state
        "ProcedureCodeSequence": entry.get("RequestedProcedureCodeSequence", []),
        "RequestAttributesSequence": [
            {
                "RequestedProcedureID": entry.get("RequestedProcedureID", ""),
                "ScheduledProcedureStepID": step.get("ScheduledProcedureStepID", ""),
                "ScheduledProcedureStepDescription": step.get("ScheduledProcedureStepDescription", ""),
                "ScheduledProtocolCodeSequence": step.get("ScheduledProtocolCodeSequence", []),
            }
        ],
    }


def acquire(base: str, ris: str, pacs: str, accession: str, station: str) -> dict[str, Any]:
    """The three steps; what was sent (Orthanc's job answer) and the SOP instances made."""
    tags = image_tags(worklist_entry(base, ris, accession, station))
    series = ""
    instances: list[str] = []
    for number in range(1, IMAGES + 1):
        # Force: the worklist's Study Instance UID (and then the first image's series) is kept, not made anew.
        body = {"Tags": {**tags, "InstanceNumber": str(number)}, "Content": _png(number), "Force": True}
        made = _call(base, "POST", "/tools/create-dicom", body)
        if not series:
            series = str(made["ParentSeries"])
            tags["SeriesInstanceUID"] = _call(base, "GET", f"/series/{series}")["MainDicomTags"]["SeriesInstanceUID"]
        instances.append(str(made["ID"]))
    sent = _call(base, "POST", f"/modalities/{pacs}/store", {"Resources": [series], "Synchronous": True})
    if not isinstance(sent, dict) or sent.get("FailedInstancesCount", 1) != 0:
        raise Failed(f"C-STORE to {pacs}: {sent!r}")
    return {"accession": accession, "instances": len(instances), "sent": sent.get("InstancesCount")}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True, help="Orthanc's REST API, e.g. http://127.0.0.1:8042")
    parser.add_argument("--ris", required=True, help="the RIS's name in Orthanc's DicomModalities")
    parser.add_argument("--pacs", required=True, help="the PACS's name in Orthanc's DicomModalities")
    parser.add_argument("--accession", required=True, help="the worklist item's Accession Number")
    parser.add_argument("--station", required=True, help="this modality's station AE title")
    args = parser.parse_args(argv)
    try:
        done = acquire(args.url, args.ris, args.pacs, args.accession, args.station)
    except Failed as exc:
        print(f"orthanc_acquire: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(done, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
