"""Storage: each corpus object (SOP class x transfer syntax) is stored, then retrieved bit-identical."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from pydicom import Dataset

from harness.model import Endpoint
from harness.plugin import Observe
from simulators.corpus import CorpusItem
from simulators.modality import Modality, dataset_sha256
from suites._support import SUCCESS_OR_WARNING, dataset_json, query, status_hex


def _image_query(item: CorpusItem) -> Dataset:
    return query(
        "IMAGE",
        StudyInstanceUID=item.study_instance_uid,
        SeriesInstanceUID=item.series_instance_uid,
        SOPInstanceUID=item.sop_instance_uid,
    )


@pytest.mark.service("store")
def test_store_then_retrieve(
    corpus_key: str,  # one case per corpus item, of the run's corpus size (suites/conftest.py)
    device: Endpoint,
    modality: Modality,
    corpus: Mapping[str, CorpusItem],
    services: tuple[str, ...],
    observe: Observe,
) -> None:
    item = corpus[corpus_key]
    stored = modality.store(device, [item.dataset])
    observe("store", stored.summary())
    outcome = stored.instances[0]
    assert outcome.status in SUCCESS_OR_WARNING, f"C-STORE {status_hex(outcome.status)}: {outcome.error}"
    if "get" not in services:
        return  # nothing declared to retrieve with: the store itself is the observation
    got = modality.get(
        device, _image_query(item), "study", sop_classes=[(item.sop_class_uid, item.transfer_syntax_uid)]
    )
    sent = dataset_sha256(item.dataset, item.transfer_syntax_uid)
    received = [r for r in got.received if r.sop_instance_uid == item.sop_instance_uid]
    observe(
        "retrieved",
        {
            "status": status_hex(got.status),
            "completed": got.completed,
            "failed": got.failed,
            "instances": len(got.received),
            "bit_identical": bool(received) and received[0].sha256 == sent,
            "transfer_syntax": received[0].transfer_syntax_uid if received else None,
            "dataset": dataset_json(received[0].dataset) if received else None,
        },
    )
    assert received, f"C-GET returned no instance (status {status_hex(got.status)}, {got.error})"
    assert received[0].sha256 == sent, "the retrieved object is not bit-identical to the stored one"
