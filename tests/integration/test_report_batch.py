"""The Allure results' writer process: every file byte for byte, each failure a RunDirError naming the folder,
never a writer left behind, and the other reports' failure still waits for it."""

from __future__ import annotations

from pathlib import Path

import pytest

import harness.report._batch as batch_module
from harness.compare.engine import compare
from harness.errors import RunDirError
from harness.report import HtmlReporter, write_reports
from harness.report._batch import Batch
from tests.synthetic import synthetic


def test_every_file_is_written_byte_for_byte_over_older_ones(tmp_path: Path) -> None:
    (tmp_path / "old.json").write_bytes(b"a longer, older content")
    files = {
        "old.json": b"{}",
        "empty": b"",
        "caf\u00e9.txt": "d\u00e9j\u00e0 vu".encode(),
        "big.bin": bytes(range(256)) * 5000,
    }
    assert Batch(tmp_path, files.items()).wait() == tmp_path
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files


def test_a_file_that_cannot_be_written_names_the_folder_and_why(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(RunDirError) as caught:
        Batch(tmp_path, [("first", b"1"), ("taken", b"2"), ("never", b"3")]).wait()
    assert caught.value.message == f"{tmp_path}: cannot write: Is a directory", caught.value.message
    assert (tmp_path / "first").read_bytes() == b"1" and not (tmp_path / "never").exists()


def test_a_name_that_leaves_the_folder_is_refused(tmp_path: Path) -> None:
    inside = tmp_path / "inside"
    inside.mkdir()
    with pytest.raises(RunDirError, match="not a plain file name"):
        Batch(inside, [("../escaped", b"x")]).wait()
    assert not (tmp_path / "escaped").exists()


def test_a_writer_past_its_bound_is_killed_and_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_module, "_BASE_TIMEOUT", 0.0)
    monkeypatch.setattr(batch_module, "_PER_FILE", 0.0)
    batch = Batch(tmp_path, ((f"f{i}", b"x" * 1000) for i in range(2000)))
    with pytest.raises(RunDirError, match="2000 files not written within 0 s"):
        batch.wait()
    assert batch._process.returncode is not None  # reaped, not running on


def test_another_reports_failure_still_waits_for_every_allure_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = synthetic(60)
    runs, candidate = made.baselines, made.candidate
    comparison = compare(runs, candidate)

    def broken(*_: object) -> Path:
        raise RunDirError("the html report failed", hint="")

    waited: list[Path] = []
    real_wait = Batch.wait

    def wait(self: Batch) -> Path:
        waited.append(real_wait(self))
        return waited[-1]

    monkeypatch.setattr(HtmlReporter, "write", broken)
    monkeypatch.setattr(Batch, "wait", wait)
    with pytest.raises(RunDirError, match="the html report failed"):
        write_reports(comparison, tmp_path, [r.manifest for r in (*runs, candidate)])
    assert waited == [tmp_path / "allure-results"]
    results = list((tmp_path / "allure-results").glob("*-result.json"))
    assert len(results) == len(comparison.cases) > 0
