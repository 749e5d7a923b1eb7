"""simulators.loadgen and simulators.session against real PACS simulator processes on 127.0.0.1 (arrival logs on)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom.dsutils import encode
from pynetdicom.presentation import build_context

from simulators._arrivals import Arrival, read_arrivals
from simulators._net import VERIFICATION, free_port, qr_sop_class
from simulators.corpus import UID_ROOT, CorpusItem, generate
from simulators.endpoint import Endpoint
from simulators.loadgen import (
    Block,
    association_block,
    echo_op,
    find_op,
    fresh_study,
    latency_block,
    retrieve_block,
    store_contexts,
    study_block,
)
from simulators.modality import Modality, Model
from simulators.session import Session, echo_contexts
from tests.procs import start_simulator, stop

_MODALITY = Modality("PGLOADGEN", acse_timeout=5, dimse_timeout=10, network_timeout=10)


@dataclass(frozen=True)
class Pacs:
    """A PACS simulator process: where it listens and its arrival log."""

    peer: Endpoint
    arrivals: Path
    storage: Path


def _start(tmp: Path, ae_title: str, *extra: str) -> tuple[subprocess.Popen[str], Pacs]:
    arrivals = tmp / f"{ae_title}.arrivals.jsonl"
    args = ["-m", "simulators.pacs", "--ae-title", ae_title, "--port", "0", "--storage", str(tmp / ae_title)]
    args += ["--arrivals", str(arrivals), *extra]
    proc, host, port = start_simulator(args, log=tmp / f"{ae_title}.log")
    return proc, Pacs(Endpoint(ae_title, host, port), arrivals, tmp / ae_title)


@pytest.fixture(scope="module")
def corpus() -> tuple[CorpusItem, ...]:
    return generate(1422)


@pytest.fixture(scope="module")
def study(corpus: tuple[CorpusItem, ...]) -> list[Dataset]:
    """The corpus's largest study: PG-0001's (10 objects, three series)."""
    uid = corpus[0].study_instance_uid
    return [i.dataset for i in corpus if i.study_instance_uid == uid]


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory, corpus: tuple[CorpusItem, ...]) -> Iterator[tuple[Pacs, Pacs]]:
    """SRC holding the corpus, which may C-MOVE to DEST; both log arrivals."""
    tmp = tmp_path_factory.mktemp("loadgen")
    dest_proc, dest = _start(tmp, "DEST")
    src_proc = None
    try:
        src_proc, src = _start(tmp, "SRC", "--destination", f"DEST={dest.peer.host}:{dest.peer.port}")
        stored = _MODALITY.store(src.peer, [i.dataset for i in corpus])
        assert [o.status for o in stored.instances] == [0x0000] * len(corpus), stored.summary()
        yield src, dest
    finally:
        if src_proc is not None:
            stop(src_proc)
        stop(dest_proc)


def _since(path: Path, offset: int) -> list[Arrival]:
    return read_arrivals(path, offset)[0]


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _query(**keys: str) -> Dataset:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def test_echo_latency_block_times_n_echoes_after_a_warm_up_on_one_association(pacs: tuple[Pacs, Pacs]) -> None:
    src = pacs[0]
    offset = _size(src.arrivals)
    block = latency_block("echo.latency", lambda: Session(src.peer, echo_contexts(), modality=_MODALITY), echo_op(), 5)
    assert (block.metric, block.ops, block.failed, block.associations) == ("echo.latency", 5, 0, 1)
    assert len(block.values) == 5 and all(v > 0 for v in block.values)
    assert dict(block.statuses) == {"0x0000": 5} and (block.images, block.bytes) == (0, 0)
    seen = _since(src.arrivals, offset)
    assert [a.message for a in seen] == ["C-ECHO-RQ"] * 6  # the warm-up, then the five timed
    assert len({a.association for a in seen}) == 1 and {a.peer_ae for a in seen} == {"PGLOADGEN"}


@pytest.mark.parametrize(
    ("level", "keys"),
    [
        ("PATIENT", ("PatientID",)),
        ("STUDY", ("StudyInstanceUID",)),
        ("SERIES", ("StudyInstanceUID", "SeriesInstanceUID")),
        ("IMAGE", ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")),
    ],
)
def test_find_latency_block_per_level(
    pacs: tuple[Pacs, Pacs], corpus: tuple[CorpusItem, ...], level: str, keys: tuple[str, ...]
) -> None:
    src, item = pacs[0], corpus[0]
    query = _query(QueryRetrieveLevel=level)
    for keyword in keys:
        setattr(query, keyword, str(item.dataset.get(keyword)))
    model: Model = "patient" if level == "PATIENT" else "study"
    contexts = [build_context(qr_sop_class(model, "find"))]
    offset = _size(src.arrivals)
    block = latency_block(
        f"find.{level.lower()}", lambda: Session(src.peer, contexts, modality=_MODALITY), find_op(query, model), 4
    )
    assert (block.ops, block.failed, block.associations, dict(block.statuses)) == (4, 0, 1, {"0x0000": 4})
    assert all(v > 0 for v in block.values)
    assert [a.message for a in _since(src.arrivals, offset)] == ["C-FIND-RQ"] * 5
    # What each timed find answered: one match at this level (the session keeps the matches)
    with Session(src.peer, contexts, modality=_MODALITY) as session:
        assert len(session.find(query, model).matches) == 1


def test_a_refused_find_counts_as_failed_with_its_status(pacs: tuple[Pacs, Pacs]) -> None:
    src = pacs[0]
    bad = _query(QueryRetrieveLevel="PATIENT")  # PATIENT level in the study root: 0xA900 (PS3.4 C.4.1.2.1)
    contexts = [build_context(qr_sop_class("study", "find"))]
    block = latency_block(
        "find.patient", lambda: Session(src.peer, contexts, modality=_MODALITY), find_op(bad, "study"), 3
    )
    assert (block.ops, block.failed, dict(block.statuses)) == (3, 3, {"0xA900": 3})
    assert len(block.values) == 3  # a failed operation's time is kept


def test_an_operation_without_its_context_fails_without_a_status(pacs: tuple[Pacs, Pacs]) -> None:
    src = pacs[0]
    contexts = [build_context(qr_sop_class("study", "find"))]
    query = _query(QueryRetrieveLevel="PATIENT", PatientID="PG-0001")
    block = latency_block(
        "find.patient", lambda: Session(src.peer, contexts, modality=_MODALITY), find_op(query, "patient"), 2
    )
    assert (block.ops, block.failed, dict(block.statuses)) == (2, 2, {"none": 2})


def test_association_block_counts_associations_and_their_outcome(pacs: tuple[Pacs, Pacs]) -> None:
    src = pacs[0]
    contexts = [build_context(VERIFICATION), build_context(qr_sop_class("study", "find"))]
    block = association_block(src.peer, contexts, 3, modality=_MODALITY)
    assert (block.metric, block.ops, block.associations, block.failed) == ("association.setup", 3, 3, 0)
    assert dict(block.statuses) == {"accepted": 3} and all(v > 0 for v in block.values)
    nobody = Endpoint("NOBODY", "127.0.0.1", free_port())
    block = association_block(nobody, contexts, 2, modality=_MODALITY)
    assert (block.ops, block.failed, dict(block.statuses), len(block.values)) == (2, 2, {"none": 2}, 2)


def _encoded_size(ds: Dataset) -> int:
    syntax = UID(ds.file_meta.TransferSyntaxUID)
    data = encode(ds, syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated)
    assert data is not None
    return len(data)


@pytest.mark.parametrize("parallel", [1, 4])
def test_study_block_stores_the_study_under_new_uids(
    pacs: tuple[Pacs, Pacs], study: list[Dataset], parallel: int
) -> None:
    src = pacs[0]
    offset = _size(src.arrivals)
    block = study_block(src.peer, study, parallel, seed=1422, round=3, modality=_MODALITY)
    metric = "store.study" if parallel == 1 else "store.study.parallel"
    assert (block.metric, block.ops, block.failed, block.associations) == (metric, 1, 0, parallel)
    assert (block.images, dict(block.statuses)) == (len(study), {"0x0000": len(study)})
    assert len(block.values) == 1 and block.values[0] > 0
    copies = fresh_study(study, seed=1422, salt=f"{metric}/3")  # the same UIDs study_block made
    assert block.bytes == sum(_encoded_size(ds) for ds in copies)
    stores = [a for a in _since(src.arrivals, offset) if a.message == "C-STORE-RQ"]
    assert sorted(a.sop_instance_uid for a in stores) == sorted(str(ds.SOPInstanceUID) for ds in copies)
    assert len({a.association for a in stores}) == parallel
    # New study, series and instance UIDs; the PACS indexed every copy under them
    new_study = str(copies[0].StudyInstanceUID)
    assert new_study.startswith(UID_ROOT) and new_study != str(study[0].StudyInstanceUID)
    assert {str(ds.SOPInstanceUID) for ds in copies}.isdisjoint(str(ds.SOPInstanceUID) for ds in study)
    indexed: list[str] = []
    for series in dict.fromkeys(str(ds.SeriesInstanceUID) for ds in copies):
        keys = _query(QueryRetrieveLevel="IMAGE", StudyInstanceUID=new_study, SeriesInstanceUID=series)
        keys.SOPInstanceUID = ""
        found = _MODALITY.find(src.peer, keys, "study")
        assert found.status == 0x0000, found.summary()
        indexed += [str(m.SOPInstanceUID) for m in found.matches]
    assert sorted(indexed) == sorted(str(ds.SOPInstanceUID) for ds in copies)


def test_fresh_study_is_seeded_and_leaves_the_originals_alone(study: list[Dataset]) -> None:
    before = [(str(ds.SOPInstanceUID), str(ds.file_meta.MediaStorageSOPInstanceUID)) for ds in study]
    a = fresh_study(study, seed=1, salt="store.study/1")
    assert [str(ds.SOPInstanceUID) for ds in a] == [
        str(ds.SOPInstanceUID) for ds in fresh_study(study, seed=1, salt="store.study/1")
    ]
    assert {str(ds.SOPInstanceUID) for ds in a}.isdisjoint(
        str(ds.SOPInstanceUID) for ds in fresh_study(study, seed=1, salt="store.study/2")
    )
    assert [(str(ds.SOPInstanceUID), str(ds.file_meta.MediaStorageSOPInstanceUID)) for ds in study] == before
    assert all(ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID for ds in a)
    # one new UID per old one: the study's series structure is kept
    assert len({str(ds.SeriesInstanceUID) for ds in a}) == len({str(ds.SeriesInstanceUID) for ds in study})
    assert len({str(ds.StudyInstanceUID) for ds in a}) == 1
    # a patient of its own, so copies never grow what find.patient answers
    assert len({str(ds.PatientID) for ds in a}) == 1 and a[0].PatientID.startswith(str(study[0].PatientID) + "-L")
    assert len(a[0].PatientID) <= 64 and a[0].PatientID != fresh_study(study, seed=1, salt="x")[0].PatientID


def test_get_block_times_first_and_last_object_received(pacs: tuple[Pacs, Pacs], study: list[Dataset]) -> None:
    src = pacs[0]
    pairs = [(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in study]
    query = _query(QueryRetrieveLevel="STUDY", StudyInstanceUID=str(study[0].StudyInstanceUID))
    first, last = retrieve_block(src.peer, query, "get", sop_classes=pairs, modality=_MODALITY)
    assert (first.metric, last.metric) == ("get.first", "get.last")
    for block in (first, last):
        assert (block.ops, block.failed, block.images, block.associations) == (1, 0, len(study), 1)
        assert dict(block.statuses) == {"0x0000": 1} and block.bytes > 0
    assert 0 < first.values[0] <= last.values[0]
    assert first.bytes == sum(_encoded_size(ds) for ds in study)  # stored and sent back as received


def test_move_block_times_first_and_last_arrival_at_the_destination(
    pacs: tuple[Pacs, Pacs], study: list[Dataset]
) -> None:
    src, dest = pacs
    query = _query(QueryRetrieveLevel="STUDY", StudyInstanceUID=str(study[0].StudyInstanceUID))
    offset = _size(src.arrivals)
    first, last = retrieve_block(
        src.peer, query, "move", destination="DEST", arrivals=dest.arrivals, modality=_MODALITY
    )
    assert (first.metric, last.metric) == ("move.first", "move.last")
    for block in (first, last):
        assert (block.ops, block.failed, block.images, dict(block.statuses)) == (1, 0, len(study), {"0x0000": 1})
    assert 0 < first.values[0] <= last.values[0]
    # the move SCP logged each sub-operation it sent, with the C-MOVE's message ID (PS3.7 9.3.1.1)
    sent = [a for a in _since(src.arrivals, offset) if a.direction == "sent"]
    assert sorted(a.sop_instance_uid for a in sent) == sorted(str(ds.SOPInstanceUID) for ds in study)
    assert {a.peer_ae for a in sent} == {"DEST"} and {a.move_originator_message_id for a in sent} == {1}


def test_move_to_an_unknown_destination_fails_with_its_status(pacs: tuple[Pacs, Pacs], study: list[Dataset]) -> None:
    src, dest = pacs
    query = _query(QueryRetrieveLevel="STUDY", StudyInstanceUID=str(study[0].StudyInstanceUID))
    first, last = retrieve_block(
        src.peer, query, "move", destination="NOWHERE", arrivals=dest.arrivals, modality=_MODALITY, wait=0.5
    )
    for block in (first, last):
        assert (block.ops, block.values, block.failed, dict(block.statuses)) == (0, (), 1, {"0xA801": 1})


def test_block_json_line_round_trips() -> None:
    block = Block("find.study", (0.00531, 0.00548), 2, 1, 10, 3, 2, {"0xA900": 1, "0x0000": 1})
    line = json.dumps(block.to_json(round=3, slot=2, started_ns=1764495012345678901))
    d = json.loads(line)
    assert set(d) == {
        "metric", "round", "slot", "started_ns", "ops", "values", "bytes", "images", "failed", "associations", "statuses"
    }  # fmt: skip
    assert (d["round"], d["slot"], d["started_ns"], list(d["statuses"])) == (
        3,
        2,
        1764495012345678901,
        ["0x0000", "0xA900"],
    )
    assert Block.from_json(d) == block
    del d["ops"]
    with pytest.raises(ValueError, match="'ops'"):
        Block.from_json(d)


def test_arrival_log_reads_whole_lines_and_names_a_bad_one(tmp_path: Path) -> None:
    path = tmp_path / "arrivals.jsonl"
    line = {"t_ns": 5, "direction": "received", "message": "C-ECHO-RQ", "association": 1, "peer_ae": "X"}
    path.write_text(json.dumps(line) + "\n" + '{"t_ns": 6, "dir')  # the second still being written
    arrivals, offset = read_arrivals(path)
    assert [a.t_ns for a in arrivals] == [5] and offset == len(json.dumps(line)) + 1
    assert read_arrivals(path, offset) == ([], offset)
    assert read_arrivals(tmp_path / "missing.jsonl") == ([], 0)
    path.write_text(json.dumps(line) + "\nnot json\n")
    with pytest.raises(ValueError, match=rf"{path}: malformed arrival line at byte {offset}"):
        read_arrivals(path)


def test_session_results_after_close(pacs: tuple[Pacs, Pacs], study: list[Dataset]) -> None:
    session = Session(pacs[0].peer, store_contexts(study), modality=_MODALITY)
    assert session.established
    session.close()
    assert not session.echo().accepted and "closed" in session.echo().error
    assert [o.status for o in session.store(study[:2])] == [None, None]
    refused = Session(pacs[0].peer, [build_context("1.2.3.4.5")], modality=_MODALITY)
    assert not refused.established and refused.error == "no presentation context accepted"
    assert refused.find(_query(QueryRetrieveLevel="STUDY"), "study").error == "no presentation context accepted"
