"""The PACS simulator's wider C-FIND over loopback: names in three character sets, sequence matching, optional keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from harness.model import Endpoint
from simulators.corpus import CorpusItem, generate
from simulators.modality import Modality
from simulators.pacs import PacsConfig, PacsSimulator, Quirks

JIS = ["", "ISO 2022 IR 87"]
NAMES = {
    "PG-0001": "Müller^Jürgen",
    "PG-0005": "Yamada^Tarou=山田^太郎=やまだ^たろう",
    "PG-0006": "Wang^XiaoDong=王^小東",
}


@pytest.fixture(scope="module")
def items() -> tuple[CorpusItem, ...]:
    """One object of each named patient: enough to query, quick to store."""
    wanted = ("SC-explicit", "SC_JIS-implicit", "SC_JIS-explicit", "SC_UTF8-explicit")
    return tuple(i for i in generate(1422) if i.key in wanted)


@pytest.fixture(scope="module")
def modality() -> Modality:
    return Modality("PGTEST", acse_timeout=3, dimse_timeout=5, network_timeout=5)


def _start(storage: Path, quirks: Quirks, modality: Modality, items: tuple[CorpusItem, ...]) -> PacsSimulator:
    sim = PacsSimulator(PacsConfig(ae_title="PACS", port=0, storage=storage, quirks=quirks)).start()
    result = modality.store(_endpoint(sim), [i.dataset for i in items])
    assert [o.status for o in result.instances] == [0x0000] * len(items), result.summary()
    return sim


def _endpoint(sim: PacsSimulator) -> Endpoint:
    return Endpoint(sim.config.ae_title, "127.0.0.1", sim.port)


@pytest.fixture(scope="module")
def pacs(
    tmp_path_factory: pytest.TempPathFactory, modality: Modality, items: tuple[CorpusItem, ...]
) -> Iterator[Endpoint]:
    sim = _start(tmp_path_factory.mktemp("pacs"), Quirks(), modality, items)
    try:
        yield _endpoint(sim)
    finally:
        sim.stop()


def _query(level: str, charset: str | list[str] | None = None, **keys: object) -> Dataset:
    ds = Dataset()
    if charset is not None:  # first: the names below are encoded in it
        ds.SpecificCharacterSet = charset
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


@pytest.mark.parametrize(
    ("charset", "name", "found"),
    [
        ("ISO_IR 100", "Müller^Jürgen", ["PG-0001"]),
        ("ISO_IR 100", "MÜLLER*", ["PG-0001"]),
        ("ISO_IR 192", "Müller^Jürgen", ["PG-0001"]),  # the same characters in another encoding
        ("ISO_IR 192", "Wang^XiaoDong=王^小東", ["PG-0006"]),
        ("ISO_IR 192", "*小東", ["PG-0006"]),
        (JIS, "Yamada^Tarou=山田^太郎=やまだ^たろう", ["PG-0005"]),
        (JIS, "山田^太郎", ["PG-0005"]),
        (JIS, "=山田*", ["PG-0005"]),
        (JIS, "=Yamada*", []),
        (None, "*", ["PG-0001", "PG-0005", "PG-0006"]),
    ],
)
def test_names_match_in_any_character_set_and_answer_in_their_own(
    pacs: Endpoint, modality: Modality, charset: str | list[str] | None, name: str, found: list[str]
) -> None:
    r = modality.find(pacs, _query("PATIENT", charset, PatientID="", PatientName=name), "patient")
    assert r.status == 0x0000, r.error
    assert sorted(m.PatientID for m in r.matches) == found
    for m in r.matches:
        assert str(m.PatientName) == NAMES[m.PatientID]
        declared = m.SpecificCharacterSet
        assert (declared if isinstance(declared, str) else list(declared)) == {
            "PG-0001": "ISO_IR 100",
            "PG-0005": JIS,
            "PG-0006": "ISO_IR 192",
        }[m.PatientID]


def _request_query(study_uid: str, *items: Dataset) -> Dataset:
    ds = _query("SERIES", StudyInstanceUID=study_uid, SeriesInstanceUID="")
    ds.RequestAttributesSequence = Sequence(list(items))
    return ds


def _request(requested: str) -> Dataset:
    item = Dataset()
    item.RequestedProcedureID = requested
    item.ScheduledProcedureStepID = ""
    return item


def test_sequence_matching_over_the_wire(pacs: Endpoint, modality: Modality, items: tuple[CorpusItem, ...]) -> None:
    study = next(i for i in items if i.key == "SC_JIS-explicit").study_instance_uid
    r = modality.find(pacs, _request_query(study, _request("RP1006")), "study")
    assert r.status == 0x0000 and len(r.matches) == 1
    answered = r.matches[0].RequestAttributesSequence
    assert [(i.RequestedProcedureID, i.ScheduledProcedureStepID) for i in answered] == [("RP1006", "SPS1006")]
    r = modality.find(pacs, _request_query(study, _request("RP1007")), "study")
    assert (r.status, r.matches) == (0x0000, ())
    # Two items in a sequence key: PS3.4 C.2.2.2.6 allows one; refused as an identifier that does not match.
    r = modality.find(pacs, _request_query(study, _request("RP1006"), _request("RP1007")), "study")
    assert (r.status, r.matches) == (0xA900, ())


def test_optional_keys_and_their_quirks(
    tmp_path: Path, pacs: Endpoint, modality: Modality, items: tuple[CorpusItem, ...]
) -> None:
    keys = {"PatientID": "PG-0005", "PatientName": "", "InstanceAvailability": "", "NumberOfPatientRelatedStudies": ""}
    r = modality.find(pacs, _query("PATIENT", **keys), "patient")
    assert [(m.InstanceAvailability, m.NumberOfPatientRelatedStudies, m.RetrieveAETitle) for m in r.matches] == [
        ("ONLINE", 1, "PACS")
    ]
    # The `availability` and `charset` variants of the reference device.
    sim = _start(tmp_path / "q", Quirks(instance_availability="NEARLINE", answer_charset="ISO_IR 100"), modality, items)
    try:
        r = modality.find(_endpoint(sim), _query("PATIENT", **keys), "patient")
    finally:
        sim.stop()
    assert [(m.InstanceAvailability, m.SpecificCharacterSet, str(m.PatientName)) for m in r.matches] == [
        ("NEARLINE", "ISO_IR 100", "Yamada^Tarou=??^??=???^???")
    ]
