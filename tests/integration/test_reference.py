"""The reference device: each patch variant changes exactly what it claims, over real associations."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from harness.model import Endpoint
from simulators._net import free_port
from simulators.corpus import CorpusItem, generate
from simulators.modality import Modality, dataset_sha256
from simulators.pacs import PacsConfig, PacsSimulator, Quirks
from simulators.reference import DESCRIPTIONS, VARIANTS, build
from tests.conftest import wait_for_device

MODALITY = Modality("PGTEST", acse_timeout=3, dimse_timeout=5, network_timeout=5)
# Which observations of the probe below each variant must change (and no others).
EXPECTED_CHANGES = {
    "clean": set(),
    "clean-rebuild": set(),
    "reject-sop": {"store", "get", "move"},  # the refused object is then not there to retrieve
    "store-warning": {"store"},
    "find-case": {"find"},
    "drop-attribute": {"get"},
    "drop-on-store": {"get"},  # what it kept lacks the attribute, so what it sends does
    "move-failure": {"move"},
    "regression": {"store", "find", "get"},
}


@pytest.fixture(scope="module")
def items() -> list[CorpusItem]:
    # One study: CT and Secondary Capture (the class reject-sop refuses), uncompressed.
    return [i for i in generate(1422) if i.key in ("CT-explicit", "SC-explicit", "CT-implicit")]


@pytest.fixture(scope="module")
def dest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PacsSimulator]:
    storage = tmp_path_factory.mktemp("dest")
    with PacsSimulator(PacsConfig(ae_title="DEST", port=0, storage=storage)) as sim:
        yield sim


def probe(variant: str, items: list[CorpusItem], dest: PacsSimulator, storage: Path) -> dict[str, Any]:
    """Store, find (lower-case name), get and move one study; the observations a suite would record."""
    device = build(variant, ae_title="REF", port=0, storage=storage, destinations={"DEST": ("127.0.0.1", dest.port)})
    with device:
        peer = Endpoint("REF", "127.0.0.1", device.port)
        observed: dict[str, Any] = {"store": MODALITY.store(peer, [i.dataset for i in items]).summary()}
        find = Dataset()
        find.QueryRetrieveLevel = "STUDY"
        find.PatientName = "müller^jürgen"
        find.StudyInstanceUID = ""
        observed["find"] = MODALITY.find(peer, find, "study").summary()
        study = Dataset()
        study.QueryRetrieveLevel = "STUDY"
        study.StudyInstanceUID = items[0].study_instance_uid
        pairs = [(i.sop_class_uid, i.transfer_syntax_uid) for i in items]
        got = MODALITY.get(peer, study, "study", sop_classes=pairs)
        observed["get"] = got.summary()
        observed["get_study_description"] = sorted({str(r.dataset.get("StudyDescription")) for r in got.received})
        observed["move"] = MODALITY.move(peer, study, "DEST", "study").summary()
    return observed


def test_variants_are_described() -> None:
    assert set(EXPECTED_CHANGES) <= set(VARIANTS)
    assert set(DESCRIPTIONS) == set(VARIANTS)
    assert all(DESCRIPTIONS[v] and "\n" not in DESCRIPTIONS[v] for v in VARIANTS)
    assert VARIANTS["clean"] == VARIANTS["clean-rebuild"] == Quirks()
    with pytest.raises(KeyError, match="known: clean"):
        build("nope", ae_title="X", port=0, storage=".")


def test_each_variant_changes_only_what_it_claims(items: list[CorpusItem], dest: PacsSimulator, tmp_path: Path) -> None:
    baseline = probe("clean", items, dest, tmp_path / "clean")
    # The baseline itself is standard: everything stored, found, returned intact, moved.
    assert {i["status"] for i in baseline["store"]["instances"]} == {"0x0000"}
    assert baseline["find"]["count"] == 1
    sent = {i.sop_instance_uid: dataset_sha256(i.dataset, i.transfer_syntax_uid) for i in items}
    assert {r["sop_instance_uid"]: r["sha256"] for r in baseline["get"]["received"]} == sent
    assert (baseline["move"]["status"], baseline["move"]["completed"]) == ("0x0000", len(items))
    observed = {v: probe(v, items, dest, tmp_path / v) for v in EXPECTED_CHANGES if v != "clean"}
    for variant, obs in observed.items():
        changed = {k for k in baseline if obs[k] != baseline[k]} - {"get_study_description"}
        assert changed == EXPECTED_CHANGES[variant], variant
    # the direction of each change
    assert {i["status"] for i in observed["store-warning"]["store"]["instances"]} == {"0xB000"}
    assert [c["accepted"] for c in observed["reject-sop"]["store"]["contexts"]].count(False) == 1
    assert observed["find-case"]["find"]["count"] == 0
    assert observed["drop-attribute"]["get_study_description"] == ["None"]
    assert observed["drop-on-store"]["get_study_description"] == ["None"]
    assert baseline["get_study_description"] == ["CT Thorax nativ"]
    assert (observed["move-failure"]["move"]["status"], observed["move-failure"]["move"]["failed"]) == ("0xB000", 1)


def test_entry_point_runs_a_variant_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "simulators.reference", "--variant", "store-warning", "--ae-title", "REF"]
    cmd += ["--port", str(port), "--storage", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_device(Endpoint("REF", "127.0.0.1", port), proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, err
    assert "variant store-warning" in err


def test_unknown_variant_exits_2_listing_the_known_ones(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "simulators.reference", "--variant", "nope", "--ae-title", "REF"]
    proc = subprocess.run([*cmd, "--port", "0", "--storage", str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown variant 'nope'" in lines[0]
    assert all(v in lines[0] for v in VARIANTS)
