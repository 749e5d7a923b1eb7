"""The PACS simulator over real associations on 127.0.0.1: store, find, move, get, quirks, entry point."""

from __future__ import annotations

import copy
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom.dsutils import create_file_meta, encode_file_meta

from harness.model import Endpoint
from simulators._net import free_port
from simulators.corpus import CorpusItem, generate
from simulators.index import INDEX_FILENAME
from simulators.modality import Modality, dataset_sha256, file_sha256
from simulators.pacs import JOURNAL, PacsConfig, PacsSimulator, Quirks, part10_header, storage_name
from tests.conftest import wait_for_device
from tests.procs import listening

SC = "1.2.840.10008.5.1.4.1.1.7"
CT = "1.2.840.10008.5.1.4.1.1.2"
MakePacs = Callable[..., PacsSimulator]


@pytest.fixture(scope="module")
def corpus() -> tuple[CorpusItem, ...]:
    return generate(1422)


@pytest.fixture
def make_pacs(tmp_path: Path) -> Iterator[MakePacs]:
    started: list[PacsSimulator] = []

    def make(
        ae_title: str = "PACS",
        *,
        quirks: Quirks | None = None,
        destinations: Mapping[str, tuple[str, int]] | None = None,
        duplicates: str = "overwrite",
    ) -> PacsSimulator:
        config = PacsConfig(
            ae_title=ae_title,
            port=0,
            storage=tmp_path / ae_title,
            destinations=destinations or {},
            quirks=quirks or Quirks(),
            acse_timeout=3,
            dimse_timeout=5,
            network_timeout=5,
            duplicates=duplicates,
        )
        sim = PacsSimulator(config).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture(scope="module")
def modality() -> Modality:
    return Modality("PGTEST", acse_timeout=3, dimse_timeout=5, network_timeout=5)


@pytest.fixture(scope="module")
def shared(
    tmp_path_factory: pytest.TempPathFactory, modality: Modality, corpus: tuple[CorpusItem, ...]
) -> Iterator[tuple[PacsSimulator, PacsSimulator]]:
    """A standard PACS holding the whole corpus, and an empty one it may C-MOVE to as DEST."""
    root = tmp_path_factory.mktemp("shared")
    dest = PacsSimulator(PacsConfig(ae_title="DEST", port=0, storage=root / "dest")).start()
    src = PacsSimulator(
        PacsConfig(ae_title="PACS", port=0, storage=root / "src", destinations={"DEST": ("127.0.0.1", dest.port)})
    ).start()
    try:
        result = modality.store(endpoint(src), [i.dataset for i in corpus])
        assert [o.status for o in result.instances] == [0x0000] * len(corpus), result.summary()
        yield src, dest
    finally:
        src.stop()
        dest.stop()


def endpoint(sim: PacsSimulator) -> Endpoint:
    return Endpoint(sim.config.ae_title, "127.0.0.1", sim.port)


def filled(make_pacs: MakePacs, modality: Modality, items: Sequence[CorpusItem], **kw: object) -> PacsSimulator:
    sim = make_pacs(**kw)
    result = modality.store(endpoint(sim), [i.dataset for i in items])
    assert result.accepted, result.error
    assert all(o.status is not None for o in result.instances), result.summary()
    return sim


def query(**keys: object) -> Dataset:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def secondary_capture(sop_instance_uid: str) -> Dataset:
    """A minimal Secondary Capture object (no pixels) with the given SOP Instance UID."""
    ds = Dataset()
    ds.SOPClassUID = SC
    ds.SOPInstanceUID = sop_instance_uid
    ds.PatientID = "HOSTILE"
    ds.PatientName = "HOSTILE^UID"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "OT"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SC
    ds.file_meta.MediaStorageSOPInstanceUID = sop_instance_uid
    return ds


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
@pytest.mark.parametrize("uid", ["1.2.3.4", "1.2.3.45", "../../x"])
def test_part10_header_is_what_pynetdicom_writes(uid: str) -> None:
    meta = create_file_meta(sop_class_uid=CT, sop_instance_uid=uid, transfer_syntax="1.2.840.10008.1.2.1.99")
    assert part10_header(CT, uid, "1.2.840.10008.1.2.1.99") == b"\0" * 128 + b"DICM" + encode_file_meta(meta)


def test_echo(make_pacs: MakePacs, modality: Modality) -> None:
    result = modality.echo(endpoint(make_pacs()))
    assert (result.accepted, result.status, result.error) == (True, 0x0000, "")


def test_store_keeps_the_bytes_sent_for_every_class_and_syntax(
    shared: tuple[PacsSimulator, PacsSimulator], corpus: tuple[CorpusItem, ...]
) -> None:
    syntaxes = {i.transfer_syntax_uid for i in corpus}
    assert {"1.2.840.10008.1.2.5", "1.2.840.10008.1.2.1.99"} <= syntaxes  # RLE and deflated covered
    assert len({i.sop_class_uid for i in corpus}) >= 6
    sim = shared[0]  # the fixture checked every C-STORE answered 0x0000
    for item in corpus:
        path = sim.config.storage / storage_name(item.sop_instance_uid)
        assert file_sha256(path) == dataset_sha256(item.dataset, item.transfer_syntax_uid), item.key
        assert dcmread(path).file_meta.TransferSyntaxUID == item.transfer_syntax_uid
    assert len(sim.stored()) == len(corpus)


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
@pytest.mark.parametrize(
    ("duplicates", "second", "kept"),
    [("overwrite", 0x0000, "second"), ("keep", 0x0000, "first"), ("refuse", 0x0111, "first")],
)
def test_a_re_sent_object_is_overwritten_kept_or_refused(
    make_pacs: MakePacs, modality: Modality, corpus: tuple[CorpusItem, ...], duplicates: str, second: int, kept: str
) -> None:
    """PacsConfig.duplicates: what an archive does with a SOP Instance UID it already holds."""
    sim = make_pacs(duplicates=duplicates)
    first = corpus[1].dataset
    again = copy.deepcopy(first)
    again.StudyDescription = "sent again"
    assert [o.status for o in modality.store(endpoint(sim), [first]).instances] == [0x0000]
    assert [o.status for o in modality.store(endpoint(sim), [again]).instances] == [second]
    stored = dcmread(sim.config.storage / storage_name(str(first.SOPInstanceUID)))
    assert stored.StudyDescription == {"first": first, "second": again}[kept].StudyDescription


def test_drop_on_store_removes_the_tags_from_what_is_kept(
    make_pacs: MakePacs, modality: Modality, corpus: tuple[CorpusItem, ...]
) -> None:
    """An ingest filter: the object kept (and so every answer and retrieval) lacks the tag; the rest is as sent."""
    sim = make_pacs(quirks=Quirks(drop_on_store=frozenset({0x00081030})))
    deflated = next(i for i in corpus if i.transfer_syntax_uid == "1.2.840.10008.1.2.1.99")
    for item in (corpus[1], deflated):
        assert [o.status for o in modality.store(endpoint(sim), [item.dataset]).instances] == [0x0000]
        stored = dcmread(sim.config.storage / storage_name(item.sop_instance_uid))
        assert "StudyDescription" not in stored and stored.SOPInstanceUID == item.sop_instance_uid
        assert stored.file_meta.TransferSyntaxUID == item.transfer_syntax_uid
        assert stored.PatientName == item.dataset.PatientName


def test_hostile_sop_instance_uids_stay_inside_the_folder(
    make_pacs: MakePacs, modality: Modality, tmp_path: Path
) -> None:
    sim = make_pacs()
    before = {p for p in tmp_path.rglob("*") if sim.config.storage not in p.parents}
    hostile = ["..", "../../x", "a/b", "/etc/passwd", "a\x00b", "1..2", ".", "1.2.3/../../z"]
    result = modality.store(endpoint(sim), [secondary_capture(uid) for uid in hostile])
    assert [o.status for o in result.instances] == [0x0000] * len(hostile), result.summary()
    after = {p for p in tmp_path.rglob("*") if sim.config.storage not in p.parents}
    assert after == before  # nothing written outside the storage folder
    names = sorted(
        p.name for p in sim.config.storage.iterdir() if not p.name.startswith(INDEX_FILENAME) and p.name != JOURNAL
    )
    assert len(names) == len(hostile)  # no object clobbered another
    assert all(re.fullmatch(r"x-[0-9a-f]{64}\.dcm", n) for n in names), names
    stored = {i.sop_instance_uid for i in sim.stored()}
    assert stored == set(hostile)


def test_find_patient_root_levels(
    shared: tuple[PacsSimulator, PacsSimulator], modality: Modality, corpus: tuple[CorpusItem, ...]
) -> None:
    peer = endpoint(shared[0])
    # PATIENT, wildcard "?" and counts
    r = modality.find(
        peer,
        query(QueryRetrieveLevel="PATIENT", PatientID="PG-000?", PatientName="", NumberOfPatientRelatedStudies=""),
        "patient",
    )
    assert r.status == 0x0000
    assert [(m.PatientID, m.NumberOfPatientRelatedStudies) for m in r.matches] == [
        ("PG-0001", 1),
        ("PG-0002", 2),
        ("PG-0003", 1),
        ("PG-0004", 1),
        ("PG-0005", 1),
        ("PG-0006", 1),
    ]
    assert all(m.QueryRetrieveLevel == "PATIENT" and m.RetrieveAETitle == "PACS" for m in r.matches)
    # STUDY with closed, open-ended and open-started date ranges
    for dates, expected in (
        ("20230101-20230630", ["20230214"]),
        ("20230301-", ["20230909"]),
        ("-20230301", ["20230214"]),
    ):
        r = modality.find(
            peer,
            query(QueryRetrieveLevel="STUDY", PatientID="PG-0002", StudyDate=dates, StudyInstanceUID=""),
            "patient",
        )
        assert [m.StudyDate for m in r.matches] == expected, dates
    # SERIES and IMAGE need the unique keys above them
    ct = next(i for i in corpus if i.key == "CT-explicit")
    r = modality.find(
        peer,
        query(
            QueryRetrieveLevel="SERIES",
            PatientID="PG-0001",
            StudyInstanceUID=ct.study_instance_uid,
            Modality="CT",
            SeriesInstanceUID="",
            NumberOfSeriesRelatedInstances="",
        ),
        "patient",
    )
    assert [(m.SeriesInstanceUID, m.NumberOfSeriesRelatedInstances) for m in r.matches] == [(ct.series_instance_uid, 3)]
    r = modality.find(
        peer,
        query(
            QueryRetrieveLevel="IMAGE",
            PatientID="PG-0001",
            StudyInstanceUID=ct.study_instance_uid,
            SeriesInstanceUID=ct.series_instance_uid,
            SOPInstanceUID="",
            InstanceNumber="",
        ),
        "patient",
    )
    assert sorted(m.SOPInstanceUID for m in r.matches) == sorted(
        i.sop_instance_uid for i in corpus if i.series_instance_uid == ct.series_instance_uid
    )


def test_find_study_root_levels(
    shared: tuple[PacsSimulator, PacsSimulator], modality: Modality, corpus: tuple[CorpusItem, ...]
) -> None:
    peer = endpoint(shared[0])
    # STUDY, universal: every study, with the requested keys filled from the objects
    r = modality.find(
        peer,
        query(QueryRetrieveLevel="STUDY", StudyInstanceUID="", StudyDescription="", NumberOfStudyRelatedInstances=""),
        "study",
    )
    assert r.status == 0x0000 and len(r.matches) == len({i.study_instance_uid for i in corpus})
    by_uid = {m.StudyInstanceUID: m for m in r.matches}
    for item in corpus:
        match = by_uid[item.study_instance_uid]
        assert match.StudyDescription == item.dataset.StudyDescription
        count = sum(1 for i in corpus if i.study_instance_uid == item.study_instance_uid)
        assert match.NumberOfStudyRelatedInstances == count
    # STUDY, PN case-insensitive single value and non-ASCII wildcard
    r = modality.find(peer, query(QueryRetrieveLevel="STUDY", PatientName="doe^jane", StudyDate=""), "study")
    assert sorted(m.StudyDate for m in r.matches) == ["20230214", "20230909"]
    r = modality.find(peer, query(QueryRetrieveLevel="STUDY", PatientName="MÜLLER*"), "study")
    assert len(r.matches) == 1
    # SERIES with a UID list, IMAGE with a UID list
    us = [i for i in corpus if i.key.startswith(("US-", "PDF-"))]
    series = sorted({i.series_instance_uid for i in us})
    r = modality.find(
        peer,
        query(
            QueryRetrieveLevel="SERIES",
            StudyInstanceUID=us[0].study_instance_uid,
            SeriesInstanceUID="\\".join(series),
            Modality="",
        ),
        "study",
    )
    assert sorted(m.SeriesInstanceUID for m in r.matches) == series
    two = [i.sop_instance_uid for i in us if i.series_instance_uid == series[0]][:2]
    r = modality.find(
        peer,
        query(
            QueryRetrieveLevel="IMAGE",
            StudyInstanceUID=us[0].study_instance_uid,
            SeriesInstanceUID=series[0],
            SOPInstanceUID="\\".join(two),
        ),
        "study",
    )
    assert sorted(m.SOPInstanceUID for m in r.matches) == sorted(two)
    # no match is an empty success
    r = modality.find(peer, query(QueryRetrieveLevel="STUDY", PatientName="NOBODY"), "study")
    assert (r.status, r.matches) == (0x0000, ())


@pytest.mark.parametrize(
    ("model", "keys"),
    [
        ("study", {"QueryRetrieveLevel": "PATIENT"}),
        ("patient", {"QueryRetrieveLevel": "BOGUS"}),
        ("study", {"QueryRetrieveLevel": "SERIES", "SeriesInstanceUID": ""}),
        ("patient", {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": ""}),
    ],
)
def test_find_bad_identifier_fails(make_pacs: MakePacs, modality: Modality, model: str, keys: dict[str, str]) -> None:
    r = modality.find(endpoint(make_pacs()), query(**keys), model)  # type: ignore[arg-type]
    assert r.accepted and r.status == 0xA900 and r.matches == ()


def test_find_pn_case_sensitive_quirk(make_pacs: MakePacs, modality: Modality, corpus: tuple[CorpusItem, ...]) -> None:
    doe = [i for i in corpus if i.patient_id == "PG-0002"]
    peer = endpoint(filled(make_pacs, modality, doe, quirks=Quirks(pn_case_insensitive=False)))
    assert modality.find(peer, query(QueryRetrieveLevel="STUDY", PatientName="doe^jane"), "study").matches == ()
    assert len(modality.find(peer, query(QueryRetrieveLevel="STUDY", PatientName="DOE^JANE"), "study").matches) == 2


def test_move_to_a_second_pacs_arrives_bit_identical(
    shared: tuple[PacsSimulator, PacsSimulator], modality: Modality, corpus: tuple[CorpusItem, ...]
) -> None:
    src, dest = shared
    study = next(i for i in corpus if i.patient_id == "PG-0003").study_instance_uid
    wanted = [i for i in corpus if i.study_instance_uid == study]
    r = modality.move(endpoint(src), query(QueryRetrieveLevel="STUDY", StudyInstanceUID=study), "DEST", "study")
    assert (r.status, r.completed, r.failed, r.warning, r.remaining) == (0x0000, len(wanted), 0, 0, 0)
    assert r.pending_responses == len(wanted) and r.failed_uids == ()
    for item in wanted:
        path = dest.config.storage / storage_name(item.sop_instance_uid)
        assert file_sha256(path) == dataset_sha256(item.dataset, item.transfer_syntax_uid), item.key
    assert len(dest.stored()) == len(wanted)
    # Patient root at PATIENT level moves everything the patient has
    r = modality.move(endpoint(src), query(QueryRetrieveLevel="PATIENT", PatientID="PG-0002"), "DEST", "patient")
    assert (r.status, r.completed) == (0x0000, sum(1 for i in corpus if i.patient_id == "PG-0002"))
    assert len(dest.stored()) == len(wanted) + r.completed


def test_move_unknown_destination_and_bad_identifier(
    shared: tuple[PacsSimulator, PacsSimulator], modality: Modality, corpus: tuple[CorpusItem, ...]
) -> None:
    src = shared[0]
    ident = query(QueryRetrieveLevel="STUDY", StudyInstanceUID=corpus[0].study_instance_uid)
    r = modality.move(endpoint(src), ident, "NOWHERE", "study")
    assert (r.accepted, r.status, r.completed) == (True, 0xA801, 0)
    r = modality.move(endpoint(src), query(QueryRetrieveLevel="STUDY", StudyInstanceUID=""), "DEST", "study")
    assert r.status is not None and 0xC000 <= r.status <= 0xCFFF  # refused, not an empty success


def test_move_failure_quirk(make_pacs: MakePacs, modality: Modality, corpus: tuple[CorpusItem, ...]) -> None:
    dest = make_pacs("DEST")
    src = filled(
        make_pacs,
        modality,
        [i for i in corpus if i.patient_id == "PG-0004"],
        quirks=Quirks(fail_first_move_suboperation=True),
        destinations={"DEST": ("127.0.0.1", dest.port)},
    )
    study = next(i for i in corpus if i.patient_id == "PG-0004").study_instance_uid
    wanted = [i for i in src.stored() if i.study_instance_uid == study]
    r = modality.move(endpoint(src), query(QueryRetrieveLevel="STUDY", StudyInstanceUID=study), "DEST", "study")
    assert (r.status, r.completed, r.failed) == (0xB000, len(wanted) - 1, 1)
    assert r.failed_uids == (wanted[0].sop_instance_uid,)
    assert sorted(i.sop_instance_uid for i in dest.stored()) == sorted(i.sop_instance_uid for i in wanted[1:])


def test_get_returns_bit_identical_objects(
    shared: tuple[PacsSimulator, PacsSimulator], modality: Modality, corpus: tuple[CorpusItem, ...]
) -> None:
    sim = shared[0]
    pairs = [(i.sop_class_uid, i.transfer_syntax_uid) for i in corpus]
    study = corpus[0].study_instance_uid
    r = modality.get(
        endpoint(sim), query(QueryRetrieveLevel="STUDY", StudyInstanceUID=study), "study", sop_classes=pairs
    )
    wanted = {i.sop_instance_uid: i for i in corpus if i.study_instance_uid == study}
    assert (r.status, r.completed, r.failed) == (0x0000, len(wanted), 0)
    assert {x.sop_instance_uid for x in r.received} == set(wanted)
    for got in r.received:
        item = wanted[got.sop_instance_uid]
        assert got.transfer_syntax_uid == item.transfer_syntax_uid
        assert got.sha256 == dataset_sha256(item.dataset, item.transfer_syntax_uid), item.key
    # Patient root at IMAGE level, one object
    one = corpus[0]
    r = modality.get(
        endpoint(sim),
        query(
            QueryRetrieveLevel="IMAGE",
            PatientID=one.patient_id,
            StudyInstanceUID=one.study_instance_uid,
            SeriesInstanceUID=one.series_instance_uid,
            SOPInstanceUID=one.sop_instance_uid,
        ),
        "patient",
        sop_classes=pairs,
    )
    assert (r.status, [x.sop_instance_uid for x in r.received]) == (0x0000, [one.sop_instance_uid])


def test_drop_attribute_quirk_on_get_and_move(
    make_pacs: MakePacs, modality: Modality, corpus: tuple[CorpusItem, ...]
) -> None:
    dest = make_pacs("DEST")
    sim = filled(
        make_pacs,
        modality,
        [i for i in corpus if i.key.startswith("MR-")],
        quirks=Quirks(drop_on_retrieve=frozenset({0x00081030})),
        destinations={"DEST": ("127.0.0.1", dest.port)},
    )
    item = next(i for i in corpus if i.key == "MR-explicit")
    assert "StudyDescription" in item.dataset
    ident = query(
        QueryRetrieveLevel="IMAGE",
        StudyInstanceUID=item.study_instance_uid,
        SeriesInstanceUID=item.series_instance_uid,
        SOPInstanceUID=item.sop_instance_uid,
    )
    r = modality.get(endpoint(sim), ident, "study", sop_classes=[(item.sop_class_uid, item.transfer_syntax_uid)])
    assert r.status == 0x0000 and len(r.received) == 1
    assert "StudyDescription" not in r.received[0].dataset
    assert r.received[0].sha256 != dataset_sha256(item.dataset, item.transfer_syntax_uid)
    assert modality.move(endpoint(sim), ident, "DEST", "study").status == 0x0000
    moved = dcmread(dest.config.storage / storage_name(item.sop_instance_uid))
    assert "StudyDescription" not in moved and moved.PatientID == item.patient_id
    # the stored original keeps it: C-FIND still answers it
    ident.StudyDescription = ""
    assert modality.find(endpoint(sim), ident, "study").matches[0].StudyDescription == item.dataset.StudyDescription


def test_rejected_sop_class_and_store_status_quirks(
    make_pacs: MakePacs, modality: Modality, corpus: tuple[CorpusItem, ...]
) -> None:
    sim = make_pacs(quirks=Quirks(rejected_sop_classes=frozenset({SC}), store_status=0xB000))
    items = [i for i in corpus if i.key in ("SC-explicit", "CT-explicit")]
    r = modality.store(endpoint(sim), [i.dataset for i in items])
    assert r.accepted
    by_class = {c.abstract_syntax: c for c in r.contexts}
    assert by_class[SC].accepted is False and by_class[SC].result_reason == 3  # abstract syntax not supported
    assert by_class[CT].accepted is True
    outcome = {o.sop_class_uid: o for o in r.instances}
    assert outcome[SC].status is None and "rejected" in outcome[SC].error
    assert outcome[CT].status == 0xB000
    assert [i.sop_class_uid for i in sim.stored()] == [CT]


def test_entry_point_answers_echo_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "simulators.pacs", "--ae-title", "CLIPACS", "--port", str(port)]
    cmd += ["--storage", str(tmp_path / "store"), "--destination", "DEST=127.0.0.1:11113"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        wait_for_device(Endpoint("CLIPACS", "127.0.0.1", port), proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, err
    assert "C-ECHO from" in err and "association from" in err


def test_entry_point_rejects_a_malformed_destination(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "simulators.pacs", "--ae-title", "X", "--port", "0", "--storage", str(tmp_path)]
    proc = subprocess.run([*cmd, "--destination", "nohost"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "AE=host:port" in proc.stderr


def test_entry_point_on_port_0_prints_the_port_it_bound(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "simulators.pacs", "--ae-title", "ANYPORT", "--port", "0"]
    cmd += ["--storage", str(tmp_path / "store"), "--max-associations", "8", "--acse-timeout", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        host, port = listening(proc)  # the shared bound: imports take long on a loaded 2-core machine
        assert host == "127.0.0.1" and port > 0, (host, port)
        wait_for_device(Endpoint("ANYPORT", host, port), proc)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0
