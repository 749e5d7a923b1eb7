"""The file writer process (harness.batch): every file byte for byte, each failure a RunDirError naming the folder,
never a writer left behind, the other reports' failure still waits for it, and a stream's files renamed whole."""

from __future__ import annotations

from pathlib import Path

import pytest

import harness.batch as batch_module
from harness.batch import Batch, Stream
from harness.compare.engine import compare
from harness.errors import RunDirError
from harness.report import HtmlReporter, write_reports
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


def test_a_stream_writes_each_file_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    folder = tmp_path / "allure-results"
    stream = Stream(folder)
    files = {f"{i}-result.json": b"x" * (i * 997) for i in range(300)}  # more than a pipe holds
    for name, data in files.items():
        stream.put(name, data)
    assert stream.close() == folder
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files


def test_a_stream_whose_writer_stopped_says_why_at_the_next_file(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    stream = Stream(tmp_path)
    stream.put("first", b"1")
    stream.put("taken", b"2")  # the writer stops here: a folder stands where the file goes
    with pytest.raises(RunDirError) as caught:
        for i in range(10_000):  # the writer is gone before a pipe's worth is handed over
            stream.put(f"later{i}", b"y" * 100)
    assert caught.value.message == f"{tmp_path}: cannot write: Is a directory", caught.value.message
    assert (tmp_path / "first").read_bytes() == b"1" and not list(tmp_path.glob("later*"))
    assert stream._process.returncode == 1


def test_a_writer_that_cannot_start_names_the_interpreter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_module.sys, "executable", str(tmp_path / "no-python"))
    for start in (lambda: Batch(tmp_path, [("a", b"1")]), lambda: Stream(tmp_path / "results")):
        with pytest.raises(RunDirError) as caught:
            start()
        said = caught.value.message
        assert said.startswith(f"{tmp_path}") and "the file writer process did not start" in said, said
        assert f"{tmp_path / 'no-python'}: No such file or directory" in said and "cannot write" not in said
