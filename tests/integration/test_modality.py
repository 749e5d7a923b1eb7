"""The modality SCU against a PACS simulator on 127.0.0.1: results, hashes, rejections, CLI."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pynetdicom.dsutils import split_dataset

from harness.model import Endpoint
from simulators._net import free_port
from simulators.corpus import CorpusItem, generate, write_folder
from simulators.modality import Modality, dataset_sha256, file_sha256
from simulators.pacs import PacsConfig, PacsSimulator, Quirks, storage_name

SC = "1.2.840.10008.5.1.4.1.1.7"


@pytest.fixture(scope="module")
def corpus() -> tuple[CorpusItem, ...]:
    return generate(1422)


@pytest.fixture
def pacs(tmp_path: Path) -> Iterator[PacsSimulator]:
    with PacsSimulator(PacsConfig(ae_title="PACS", port=0, storage=tmp_path / "pacs")) as sim:
        yield sim


def endpoint(sim: PacsSimulator) -> Endpoint:
    return Endpoint(sim.config.ae_title, "127.0.0.1", sim.port)


MODALITY = Modality("PGTEST", acse_timeout=3, dimse_timeout=5, network_timeout=5)


def test_echo_to_a_closed_port_is_a_result_not_an_exception() -> None:
    result = MODALITY.echo(Endpoint("NOBODY", "127.0.0.1", free_port()))
    assert (result.accepted, result.status) == (False, None)
    assert result.error == "no connection (refused or unreachable)"
    assert result.summary() == {"accepted": False, "status": None, "error": result.error}


def test_a_silent_peer_times_out_within_the_acse_timeout() -> None:
    with socket.socket() as silent:  # accepts TCP (kernel backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        impatient = Modality(acse_timeout=0.5, dimse_timeout=1, network_timeout=1)
        start = time.monotonic()
        result = impatient.echo(Endpoint("SILENT", "127.0.0.1", silent.getsockname()[1]))
        assert time.monotonic() - start < 5
    assert (result.accepted, result.error) == (False, "no answer to the association request (ACSE timeout)")


def test_canonical_hash_agrees_with_part10_files_for_every_syntax(
    corpus: tuple[CorpusItem, ...], tmp_path: Path
) -> None:
    paths = write_folder(corpus, tmp_path)
    for item, path in zip(corpus, paths, strict=True):
        assert file_sha256(path) == dataset_sha256(item.dataset, item.transfer_syntax_uid), item.key


def test_store_files_sends_their_bytes_and_summaries_are_deterministic(
    corpus: tuple[CorpusItem, ...], tmp_path: Path
) -> None:
    items = [i for i in corpus if i.patient_id == "PG-0003"]  # US multi-frame and PDF, deflated included
    paths = write_folder(items, tmp_path / "files")
    summaries = []
    for n in range(2):
        with PacsSimulator(PacsConfig(ae_title="PACS", port=0, storage=tmp_path / f"pacs{n}")) as sim:
            result = MODALITY.store(endpoint(sim), paths)
            assert result.accepted and [o.status for o in result.instances] == [0x0000] * len(items)
            for item, path in zip(items, paths, strict=True):
                stored = sim.config.storage / storage_name(item.sop_instance_uid)
                assert _dataset_bytes(stored) == _dataset_bytes(path)  # sent as-is, deflate included
            summaries.append(json.dumps(result.summary(), sort_keys=False))
    assert summaries[0] == summaries[1]
    proposed = [(c["abstract_syntax"], c["transfer_syntax"]) for c in json.loads(summaries[0])["contexts"]]
    assert proposed == list(dict.fromkeys((i.sop_class_uid, i.transfer_syntax_uid) for i in items))


def _dataset_bytes(path: Path) -> bytes:
    _, offset = split_dataset(path)
    return path.read_bytes()[offset:]


def test_store_with_every_context_rejected(corpus: tuple[CorpusItem, ...], tmp_path: Path) -> None:
    quirks = Quirks(rejected_sop_classes=frozenset({SC}))
    sc = [i for i in corpus if i.sop_class_uid == SC]
    with PacsSimulator(PacsConfig(ae_title="PACS", port=0, storage=tmp_path, quirks=quirks)) as sim:
        result = MODALITY.store(endpoint(sim), [i.dataset for i in sc])
    assert result.accepted is False and result.error == "no presentation context accepted"
    assert len(result.contexts) == len({i.transfer_syntax_uid for i in sc})
    assert all(not c.accepted and c.result_reason == 3 for c in result.contexts)
    assert all(o.status is None and "rejected" in o.error for o in result.instances)


def test_store_reports_unreadable_items_and_sends_the_rest(
    pacs: PacsSimulator, corpus: tuple[CorpusItem, ...], tmp_path: Path
) -> None:
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not dicom at all")
    bare = Dataset()
    bare.PatientID = "X"
    result = MODALITY.store(endpoint(pacs), [junk, bare, corpus[0].dataset])
    assert [o.status for o in result.instances] == [None, None, 0x0000]
    assert result.instances[0].error and result.instances[1].error and not result.instances[2].error


def test_get_reports_objects_it_could_not_take(pacs: PacsSimulator, corpus: tuple[CorpusItem, ...]) -> None:
    study = [i for i in corpus if i.patient_id == "PG-0004"]
    MODALITY.store(endpoint(pacs), [i.dataset for i in study])
    accept = [(i.sop_class_uid, i.transfer_syntax_uid) for i in study if not i.key.endswith("-rle")]
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study[0].study_instance_uid
    result = MODALITY.get(endpoint(pacs), query, "study", sop_classes=accept)
    assert (result.status, result.completed, result.failed) == (0xB000, len(study) - 1, 1)
    assert {r.sop_instance_uid for r in result.received} == {
        i.sop_instance_uid for i in study if not i.key.endswith("-rle")
    }
    json.dumps(result.summary())


def test_get_keeps_the_bytes_as_received_and_a_decodable_dataset(
    pacs: PacsSimulator, corpus: tuple[CorpusItem, ...]
) -> None:
    study = [i for i in corpus if i.patient_id == "PG-0004"]  # MR implicit, explicit and RLE
    MODALITY.store(endpoint(pacs), [i.dataset for i in study])
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study[0].study_instance_uid
    result = MODALITY.get(
        endpoint(pacs), query, "study", sop_classes=[(i.sop_class_uid, i.transfer_syntax_uid) for i in study]
    )
    assert result.completed == len(study)
    by_uid = {i.sop_instance_uid: i for i in study}
    for got in result.received:
        item = by_uid[got.sop_instance_uid]
        assert got.association == 1  # C-GET sub-operations come on the C-GET's own association
        assert got.transfer_syntax_uid == item.transfer_syntax_uid
        assert (
            hashlib.sha256(got.encoded).hexdigest()
            == got.sha256
            == dataset_sha256(item.dataset, item.transfer_syntax_uid)
        )
        # pynetdicom leaves the file meta without a transfer syntax; the pixels must still decode.
        assert got.dataset.file_meta.TransferSyntaxUID == item.transfer_syntax_uid
        assert (got.dataset.pixel_array == item.dataset.pixel_array).all(), item.key


def test_move_and_find_summaries_are_json(pacs: PacsSimulator, corpus: tuple[CorpusItem, ...]) -> None:
    MODALITY.store(endpoint(pacs), [corpus[0].dataset])
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    query.PatientName = ""
    found = MODALITY.find(endpoint(pacs), query, "study")
    summary = found.summary()
    assert summary["status"] == "0x0000" and summary["count"] == 1
    assert summary["matches"][0]["00100010"]["Value"][0]["Alphabetic"] == "Müller^Jürgen"
    assert json.loads(json.dumps(summary)) == summary
    moved = MODALITY.move(endpoint(pacs), query, "UNKNOWN", "study")
    assert moved.summary()["status"] == "0xA801"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "simulators.modality", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_cli_echo_store_find(pacs: PacsSimulator, corpus: tuple[CorpusItem, ...], tmp_path: Path) -> None:
    write_folder(corpus[:3], tmp_path / "in")
    common = ["--port", str(pacs.port), "--peer-ae", "PACS"]
    echo = _cli(*common, "echo")
    assert echo.returncode == 0, echo.stderr
    assert json.loads(echo.stdout) == {"accepted": True, "status": "0x0000", "error": ""}
    store = _cli(*common, "store", str(tmp_path / "in"))
    assert store.returncode == 0, store.stderr
    assert [i["status"] for i in json.loads(store.stdout)["instances"]] == ["0x0000"] * 3
    find = _cli(*common, "find", "--model", "patient", "--level", "PATIENT", "-k", "PatientID=PG-0001")
    assert json.loads(find.stdout)["count"] == 1
    closed = _cli("--port", str(free_port()), "echo")
    assert closed.returncode == 1 and json.loads(closed.stdout)["accepted"] is False


def test_a_device_that_aborts_mid_store_ends_the_store_at_once(corpus: tuple[CorpusItem, ...]) -> None:
    """The items after an abort read "association closed", not a DIMSE timeout each (10 s an item before)."""
    from pynetdicom import AE, evt

    stored: list[str] = []

    def on_store(event: evt.Event) -> int:
        stored.append(str(event.request.AffectedSOPInstanceUID))
        if len(stored) == 3:  # a device stopping (or crashing) mid-association
            event.assoc.abort()
        return 0x0000

    ae = AE(ae_title="ABORTER")
    for item in corpus[:8]:
        ae.add_supported_context(item.sop_class_uid, [item.transfer_syntax_uid])
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        items = [item.dataset for item in corpus[:8]]
        result = MODALITY.store(Endpoint("ABORTER", "127.0.0.1", server.server_address[1]), items)
    finally:
        server.shutdown()
    errors = [outcome.error for outcome in result.instances]
    assert [o.status for o in result.instances[:2]] == [0x0000, 0x0000], errors
    assert errors[2].startswith("no response from the peer"), errors  # the one in flight
    assert errors[3:] == ["association closed before the item was sent"] * 5, errors
