"""Run directories: cases survive per line; a corrupted line or missing directory is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import RunDirError
from harness.model import CaseRecord, Manifest, Observation, Outcome
from harness.record import OBSERVATIONS, CaseWriter, read_run, write_manifest
from tests.factories import make_manifest


def _manifest() -> Manifest:
    return make_manifest(run_id="baseline-1-x", versions={"python": "3"}, timings={"total": 1.0})


def _write(tmp_path: Path, n: int = 3) -> Path:
    writer = CaseWriter(tmp_path / OBSERVATIONS)
    for i in range(n):
        writer.write(CaseRecord(f"t.py::case[{i}]", Outcome.PASSED, 0.1, "", (Observation("x", {"i": i}),)))
    writer.close()
    write_manifest(tmp_path, _manifest())
    return tmp_path


def test_round_trip(tmp_path: Path) -> None:
    run = read_run(_write(tmp_path))
    assert run.manifest == _manifest()
    assert [c.observed()["x"]["i"] for c in run.cases] == [0, 1, 2]


def test_corrupted_line_names_file_and_line(tmp_path: Path) -> None:
    _write(tmp_path)
    path = tmp_path / OBSERVATIONS
    lines = path.read_text().splitlines()
    lines[1] = lines[1][: len(lines[1]) // 2]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RunDirError, match=rf"{OBSERVATIONS}:2: corrupted observation line"):
        read_run(tmp_path)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="run directory not found"):
        read_run(tmp_path / "nope")


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match=r"manifest\.json: missing"):
        read_run(tmp_path)


def test_appending_writer_keeps_earlier_cases(tmp_path: Path) -> None:
    _write(tmp_path, 2)
    writer = CaseWriter(tmp_path / OBSERVATIONS)
    writer.write(CaseRecord("t.py::late", Outcome.FAILED, 0.0, "boom"))
    writer.close()
    assert [c.case for c in read_run(tmp_path).cases] == ["t.py::case[0]", "t.py::case[1]", "t.py::late"]
