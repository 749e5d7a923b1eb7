"""A router forwards what it received: what reaches the PACS of a study C-STOREd to the device, object by object."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from harness.model import Endpoint
from harness.plugin import Act, Observe
from simulators.corpus import CorpusItem
from simulators.modality import Modality
from simulators.pacs import JOURNAL
from suites._support import (
    SUCCESS_OR_WARNING,
    arrivals_at_pacs,
    clear_received,
    decoded_pixels_sha256,
    wire_objects,
)
from suites._window import wait_for
from suites.workflow._observed import conformance


def _journalled(storage: Path) -> list[str]:
    path = storage / JOURNAL
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    return [str(json.loads(line)["sop_instance_uid"]) for line in text.splitlines() if line.strip()]


@pytest.mark.initiates("forward")
@pytest.mark.action("forward")
def test_forward(
    device: Endpoint,
    modality: Modality,
    corpus: Mapping[str, CorpusItem],
    pacs_storage: Path,
    device_action: Act,
    observe: Observe,
) -> None:
    """C-STORE a study to the device (PS3.4 B.2), then its `forward`: each object at the PACS, attribute by attribute.

    `wire` says per corpus key the transfer syntax it arrived in, on which association, and the
    attributes removed, added or changed against what was sent (Pixel Data by its decoded
    pixels); `iod` dciodvfy's findings. A router that coerces, drops or re-encodes shows here.
    """
    first = next(iter(corpus.values()))
    items = [i for i in corpus.values() if i.study_instance_uid == first.study_instance_uid]
    clear_received(pacs_storage)
    sent = modality.store(device, [i.dataset for i in items])
    observe("forward.sent", [o.status for o in sent.instances])
    assert sent.accepted and all(o.status in SUCCESS_OR_WARNING for o in sent.instances), sent.summary()
    result = device_action("forward", {"study_uid": first.study_instance_uid})
    result.require()
    wanted = {i.sop_instance_uid for i in items}
    wait_for(lambda: wanted & set(_journalled(pacs_storage)), lambda got: got == wanted, result.settle)
    arrivals = arrivals_at_pacs(pacs_storage, wanted)
    objects, iod, per_association = wire_objects(
        items,
        arrivals,
        lambda item, got: (decoded_pixels_sha256(item.dataset), decoded_pixels_sha256(got.dataset)),
        lambda _, got: conformance(got),
    )
    observe(
        "wire",
        {
            "associations": len(per_association),
            "per_association": [per_association[n] for n in sorted(per_association)],
            "calling_ae": sorted({a.calling_ae for a in arrivals}),
            "objects": objects,
        },
    )
    observe("iod", iod)
    missing = sorted(k for k, v in objects.items() if v == "missing")
    assert not missing, f"not forwarded to the PACS within {result.settle:g} s: {missing}"
