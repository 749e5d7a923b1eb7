"""suites._shared.SharedFind against the PACS simulator: one association for many C-FINDs, the same answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from harness.model import Endpoint
from simulators.corpus import generate
from simulators.modality import Modality
from simulators.pacs import PacsConfig, PacsSimulator
from suites._shared import REOPENED, SharedFind


@pytest.fixture(scope="module")
def modality() -> Modality:
    return Modality("PGTEST", acse_timeout=5, dimse_timeout=10, network_timeout=10)


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory, modality: Modality) -> Iterator[Endpoint]:
    sim = PacsSimulator(PacsConfig(ae_title="PACS", port=0, storage=Path(tmp_path_factory.mktemp("pacs")))).start()
    try:
        peer = Endpoint("PACS", "127.0.0.1", sim.port)
        items = [i.dataset for i in generate(1422)[:6]]
        assert modality.store(peer, items).accepted
        yield peer
    finally:
        sim.stop()


def _studies() -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = ""
    ds.PatientID = ""
    return ds


def _patients() -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "PATIENT"
    ds.PatientID = ""
    return ds


def _answers(result: object) -> list[dict[str, object]]:
    return sorted((m.to_json_dict() for m in result.matches), key=str)  # type: ignore[attr-defined]


def test_many_finds_share_one_association_and_answer_as_their_own_would(pacs: Endpoint, modality: Modality) -> None:
    shared = SharedFind(pacs, modality)
    try:
        first = shared.find(_studies(), "study")
        assoc = shared._session.assoc if shared._session else None
        second = shared.find(_patients(), "patient")
        assert assoc is not None and shared._session is not None and shared._session.assoc is assoc
        assert (first.status, second.status) == (0x0000, 0x0000)
        assert first.matches and second.matches
        assert _answers(first) == _answers(modality.find(pacs, _studies(), "study"))
        assert _answers(second) == _answers(modality.find(pacs, _patients(), "patient"))
        assert (first.error, second.error, shared.reopened) == ("", "", 0)
    finally:
        shared.close()
    assert shared._session is None and not assoc.is_established


def test_an_association_found_aborted_is_reopened_once_and_the_result_says_so(
    pacs: Endpoint, modality: Modality
) -> None:
    shared = SharedFind(pacs, modality)
    try:
        before = shared.find(_studies(), "study")
        assert shared._session is not None
        shared._session.assoc.abort()  # as a device that drops idle associations would
        after = shared.find(_studies(), "study")
        assert shared.reopened == 1 and after.error == REOPENED
        assert (after.status, _answers(after)) == (0x0000, _answers(before))
        again = shared.find(_studies(), "study")
        assert shared.reopened == 1 and again.error == ""
    finally:
        shared.close()
