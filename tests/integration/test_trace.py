"""PATCHGATE_TRACE: the lines the modality and a session write, none without it, and their bare replay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom.presentation import build_context

from simulators import _trace as trace_module
from simulators import session as session_module
from simulators._net import LOOPBACK, free_port, qr_sop_class
from simulators._trace import TRACE_VAR
from simulators.commitment_scu import CommitmentListener
from simulators.corpus import DEFAULT_SEED, generate
from simulators.endpoint import Endpoint
from simulators.modality import Modality
from simulators.session import Session
from tests.procs import start_simulator, stop

ROOT = Path(__file__).resolve().parents[2]
_PACS_AE = "TRACEPACS"


def _pacs(storage: Path, reports: int | None = None) -> Generator[Endpoint, None, None]:
    """A PACS simulator; `reports`: the port it sends storage commitment reports to on a new association."""
    args = ["-m", "simulators.pacs", "--ae-title", _PACS_AE, "--port", "0", "--storage", str(storage)]
    if reports is not None:
        args += ["--destination", f"PGMODALITY={LOOPBACK}:{reports}"]
    proc, host, port = start_simulator(args, log=storage.with_suffix(".log"))
    try:
        yield Endpoint(_PACS_AE, host, port)
    finally:
        stop(proc)


@pytest.fixture
def pacs(tmp_path: Path) -> Iterator[Endpoint]:
    yield from _pacs(tmp_path / "pacs")


def _study_query() -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    query.PatientID = "PG-0001"
    return query


def _get_query() -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = generate(DEFAULT_SEED)[
        0
    ].study_instance_uid  # a retrieve names its unique key (PS3.4 C.4.3.2.1)
    return query


def _operations(peer: Endpoint) -> list[Any]:
    """C-ECHO, C-STORE of three corpus items, C-FIND, C-GET on own associations, then C-FIND on a session."""
    items = generate(DEFAULT_SEED)[:3]
    modality = Modality(dimse_timeout=30, network_timeout=30, acse_timeout=30)
    results: list[Any] = [
        modality.echo(peer),
        modality.store(peer, [item.dataset for item in items]),
        modality.find(peer, _study_query(), "study"),
        modality.get(
            peer, _get_query(), "study", sop_classes=[(i.sop_class_uid, i.transfer_syntax_uid) for i in items]
        ),
    ]
    with Session(peer, [build_context(qr_sop_class("study", "find"))], modality=modality) as session:
        results.append(session.find(_study_query(), "study"))
    return results


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_hook_writes_one_line_per_operation(
    pacs: Endpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv(TRACE_VAR, str(trace))
    results = _operations(pacs)
    assert [r.accepted for r in results] == [True] * 5, [r.summary() for r in results]
    lines = _lines(trace)
    assert [line["op"] for line in lines] == ["echo", "store", "find", "get", "associate", "find", "release"]
    peer = {"ae": _PACS_AE, "host": pacs.host, "port": pacs.port, "tls": False}
    assert all(line["peer"] == peer and line["pid"] == os.getpid() for line in lines)
    assert all(line["calling"] == "PGMODALITY" and line["identity"] is None for line in lines)
    assert all("test_trace.py::test_the_hook_writes_one_line_per_operation" in line["case"] for line in lines)
    echo, store, find, get, opened, shared, release = lines
    assert echo["session"] is None and echo["outcome"] == {"accepted": True, "error": "", "status": "0x0000"}
    items = generate(DEFAULT_SEED)[:3]
    assert store["instances"] == [
        {"sop_class": i.sop_class_uid, "sop_instance": i.sop_instance_uid, "syntax": i.transfer_syntax_uid}
        for i in items
    ]
    assert store["statuses"] == ["0x0000"] * 3
    assert find["query"] == _study_query().to_json_dict() and find["model"] == "study"
    assert find["outcome"]["status"] == "0x0000"
    assert get["query"] == _get_query().to_json_dict()
    assert get["pairs"] == [[i.sop_class_uid, i.transfer_syntax_uid] for i in items]
    assert get["outcome"]["status"] == "0x0000"
    assert opened["contexts"] == [
        [qr_sop_class("study", "find"), [str(t) for t in build_context(qr_sop_class("study", "find")).transfer_syntax]]
    ]
    assert opened["roles"] == [] and opened["outcome"]["accepted"] is True
    assert shared["session"] == opened["session"] == release["session"] > 0
    assert shared["query"] == find["query"] and shared["outcome"]["status"] == "0x0000"
    assert all(line["dur"] > 0 for line in lines if line["op"] != "associate")


def test_nothing_is_written_without_the_variable(
    pacs: Endpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TRACE_VAR, raising=False)
    written: list[object] = []
    for module in (trace_module, session_module):  # the one writer, as each module refers to it
        monkeypatch.setattr(module, "trace_line", lambda path, line: written.append(line))
    monkeypatch.chdir(tmp_path)
    results = _operations(pacs)
    assert [r.accepted for r in results] == [True] * 5
    assert written == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pacs", "pacs.log"]


def test_bare_dimse_replays_the_operations_with_the_same_statuses(
    pacs: Endpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv(TRACE_VAR, str(trace))
    _operations(pacs)
    monkeypatch.delenv(TRACE_VAR)
    traced = _lines(trace)
    fresh = _pacs(tmp_path / "fresh")  # an empty one: the replayed C-STORE fills it before the C-FIND and C-GET
    peer = next(fresh)
    try:
        replay = _replay(trace, pacs.port, peer)
    finally:
        fresh.close()
    assert replay["lines"] == replay["replayed"] == len(traced) == 7
    assert replay["skipped"] == {} and replay["associations"] == 5
    ops = [line["op"] for line in traced if line["op"] != "release"]
    assert [r["op"] for r in replay["results"]] == ops
    expected = [line.get("statuses") or line["outcome"].get("status", line["outcome"]["accepted"]) for line in traced]
    assert [r["replayed"] for r in replay["results"]] == [
        e for e, line in zip(expected, traced, strict=True) if line["op"] != "release"
    ]
    assert replay["mismatches"] == 0
    assert sorted(p.name for p in (tmp_path / "fresh").iterdir()), "the replay stored nothing on the fresh PACS"


def _replay(trace: Path, traced_port: int, peer: Endpoint, *extra: str) -> dict[str, Any]:
    done = subprocess.run(
        [
            *(sys.executable, str(ROOT / "scripts" / "bare_dimse.py"), str(trace), "--json"),
            *("--peer", f"{traced_port}={peer.host}:{peer.port}", "--seed", str(DEFAULT_SEED), *extra),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_bare_dimse_replays_storage_commitment_with_its_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report on the same association (kept open) and on a new one (to --report-port), as the suites took them."""
    item = generate(DEFAULT_SEED)[0]
    refs = [(item.sop_class_uid, item.sop_instance_uid)]
    trace = tmp_path / "trace.jsonl"
    listener = CommitmentListener(port=free_port()).start()
    source = _pacs(tmp_path / "pacs", listener.port)
    pacs = next(source)
    try:
        monkeypatch.setenv(TRACE_VAR, str(trace))
        modality = Modality()
        assert modality.store(pacs, [item.dataset]).accepted
        same = modality.commit(pacs, "1.2.826.0.1.3680043.10.1.1", refs, keep_open=5.0)
        new = modality.commit(pacs, "1.2.826.0.1.3680043.10.1.2", refs, keep_open=0.0, listener=listener)
        monkeypatch.delenv(TRACE_VAR)
    finally:
        source.close()
        listener.stop()
    assert (same.how, new.how) == ("same", "new") and not same.error and not new.error
    reports = free_port()
    fresh = _pacs(tmp_path / "fresh", reports)
    peer = next(fresh)
    try:
        without = _replay(trace, pacs.port, peer)
        replay = _replay(trace, pacs.port, peer, "--report-port", str(reports))
    finally:
        fresh.close()
    assert without["skipped"] == {"commit": 2}
    assert replay["skipped"] == {} and replay["mismatches"] == 0
    commits = [r for r in replay["results"] if r["op"] == "commit"]
    assert [r["replayed"] for r in commits] == [["0x0000", False], ["0x0000", False]]  # answered, and reported
    # The device's wait is in the replay's time: kept open, the report comes after its delay (0.2 s).
    assert replay["op_seconds"]["commit"] >= 0.2
