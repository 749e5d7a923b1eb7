"""Run directories: cases survive per line; a corrupted line or missing directory is a clear error."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from harness import rundir
from harness.context import SuiteContext
from harness.errors import RunDirError
from harness.model import CaseRecord, Endpoint, Manifest, Observation, Outcome, PerfSetup, to_json
from harness.rundir import RunDir, read_run
from tests.factories import make_manifest


def _manifest() -> Manifest:
    return make_manifest(run_id="baseline-1-x", versions={"python": "3"}, timings={"total": 1.0})


def _write(tmp_path: Path, n: int = 3) -> Path:
    run = RunDir(tmp_path)
    writer = run.case_writer()
    for i in range(n):
        writer.write(CaseRecord(f"t.py::case[{i}]", Outcome.PASSED, 0.1, "", (Observation("x", {"i": i}),)))
    writer.close()
    run.write_manifest(_manifest())
    return tmp_path


def test_round_trip(tmp_path: Path) -> None:
    run = read_run(_write(tmp_path))
    assert run.manifest == _manifest()
    assert [c.observed()["x"]["i"] for c in run.cases] == [0, 1, 2]


def test_corrupted_line_names_file_and_line(tmp_path: Path) -> None:
    _write(tmp_path)
    path = RunDir(tmp_path).observations
    lines = path.read_text().splitlines()
    lines[1] = lines[1][: len(lines[1]) // 2]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RunDirError, match=r"observations\.jsonl:2: corrupted observation line"):
        read_run(tmp_path)


def test_blank_lines_are_skipped_and_numbers_count_every_line(tmp_path: Path) -> None:
    _write(tmp_path, 2)
    path = RunDir(tmp_path).observations
    first, second = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(first + b"\n  \n" + second + b"{not json\n")
    cases = RunDir(tmp_path).iter_cases()
    assert [next(cases).case, next(cases).case] == ["t.py::case[0]", "t.py::case[1]"]
    with pytest.raises(RunDirError, match=r"observations\.jsonl:5: corrupted observation line"):
        list(RunDir(tmp_path).iter_cases())


_OBSERVED = '{"case":"t.py::c","outcome":"passed","duration":%s,"observations":[{"name":"x","value":%s%s}]}'
_LINES = [
    *(_OBSERVED % ("0.5", v, "") for v in ("1", "1.0", "true", "null", '"é"', '{"b":1,"a":2}', '{"a":1,"a":2}')),
    *(_OBSERVED % ("0.5", v, "") for v in ("123456789012345678901234567890", "-0.0", "5e-324", "1e400", "1E5")),
    *(_OBSERVED % ("0.5", v, "") for v in ("NaN", "-Infinity", r'"\ud800"', r'"\u0000"', "[[[[[]]]]]")),
    _OBSERVED % ("1", "1", ""),  # an integer duration reads as a float
    _OBSERVED % ('"1.5"', "1", ""),  # from_json takes a number as a string: so does the reader
    _OBSERVED % ("null", "1", ""),
    _OBSERVED % ("0.5", "1", ',"tags":[1,"a"]'),
    _OBSERVED % ("0.5", "1", ',"security":"exposure","tags":["a"]'),
    _OBSERVED % ("0.5", "1", ',"security":"bogus"'),
    '{"case":7,"outcome":"passed"}',
    '{"case":"a","case":"b","outcome":"failed","message":"m","service":"echo","extra":[1]}',
    '{"case":"a","outcome":"bogus"}',
    '{"case":"a","outcome":"passed","observations":[{"name":"x"}]}',
    '{"case":"a","outcome":"passed","observations":null}',
    '["case"]',
]


@pytest.mark.parametrize("line", _LINES)
def test_a_line_reads_as_json_and_from_json_read_it(tmp_path: Path, line: str) -> None:
    """The typed decoder, or json where it refuses a line: the same record, types, signs and key order included,
    or the same corrupted-line error."""
    RunDir(tmp_path).observations.write_text(line + "\n", encoding="utf-8", errors="surrogatepass")
    try:
        expected: object = _exactly(CaseRecord.from_json(json.loads(line)))
    except (ValueError, KeyError, TypeError, AttributeError):
        expected = RunDirError
    try:
        got: object = _exactly(next(RunDir(tmp_path).iter_cases()))
    except RunDirError:
        got = RunDirError
    assert got == expected


def test_a_line_nested_too_deep_to_read_is_a_corrupted_line(tmp_path: Path) -> None:
    """Deeper than either decoder goes (a RecursionError in both): the file and line named, not a traceback."""
    _write(tmp_path, 1)
    deep = _OBSERVED % ("0.5", "[" * 100_000 + "]" * 100_000, "")
    with RunDir(tmp_path).observations.open("a", encoding="utf-8") as handle:
        handle.write(deep + "\n")
    with pytest.raises(RunDirError, match=r"observations\.jsonl:2: corrupted observation line \(RecursionError"):
        list(RunDir(tmp_path).iter_cases())


def test_a_line_the_writer_writes_takes_the_typed_decoder(tmp_path: Path) -> None:
    line = RunDir(_write(tmp_path, 1)).observations.read_bytes()
    assert _exactly(rundir._DECODE(line)) == _exactly(next(RunDir(tmp_path).iter_cases()))


def _exactly(case: CaseRecord) -> str:
    """A record as text that differs where its values differ in type, sign or key order (`==` says 1 == 1.0)."""
    assert type(case.observations) is tuple
    observed = tuple((o.name, o.value, o.security.value, o.tags) for o in case.observations)
    return repr((case.case, case.outcome.value, case.duration, case.message, case.service, observed))


def test_observations_that_cannot_be_read_name_the_file(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert list(run.iter_cases()) == []  # none written yet
    run.observations.mkdir()
    with pytest.raises(RunDirError, match=r"observations\.jsonl: cannot read: Is a directory") as caught:
        list(run.iter_cases())
    assert caught.value.hint == "rerun that variant"


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="run directory not found"):
        read_run(tmp_path / "nope")


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match=r"manifest\.json: missing"):
        read_run(tmp_path)


def test_appending_writer_keeps_earlier_cases(tmp_path: Path) -> None:
    _write(tmp_path, 2)
    writer = RunDir(tmp_path).case_writer()
    writer.write(CaseRecord("t.py::late", Outcome.FAILED, 0.0, "boom"))
    writer.close()
    assert [c.case for c in read_run(tmp_path).cases] == ["t.py::case[0]", "t.py::case[1]", "t.py::late"]


@pytest.mark.parametrize(("every", "syncs"), [(0.0, 20 + 1), (3600.0, 1)])
def test_the_writer_fsyncs_at_most_every_sync_every_and_at_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every: float, syncs: int
) -> None:
    """Every line is written at once (a killed run keeps it); the fsyncs are spaced, and one comes at close."""
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    monkeypatch.setattr(rundir, "SYNC_EVERY", every)
    run = RunDir(tmp_path)
    writer = run.case_writer()
    for i in range(20):
        writer.write(CaseRecord(f"t.py::case[{i}]", Outcome.PASSED, 0.0, ""))
        assert len(run.read_cases()) == i + 1  # on the file before the next case, synced or not
    writer.close()
    assert len(calls) == syncs


def test_second_run_into_the_same_directory_is_refused(tmp_path: Path) -> None:
    _write(tmp_path)
    with pytest.raises(RunDirError, match="already holds a run"):
        RunDir(tmp_path).prepare()


def test_manifest_that_is_not_an_object_is_a_clear_error(tmp_path: Path) -> None:
    _write(tmp_path)
    RunDir(tmp_path).manifest.write_text("[]\n")
    with pytest.raises(RunDirError, match="not a valid manifest"):
        read_run(tmp_path)


def test_context_and_progress_round_trip(tmp_path: Path) -> None:
    from harness.context import SuiteContext
    from harness.model import Endpoint

    run = RunDir(tmp_path)
    assert run.collected() == 0  # nothing collected yet: no progress file
    run.write_collected(7)
    assert run.collected() == 7
    context = SuiteContext(
        str(tmp_path), Endpoint("DEV", "127.0.0.1", 104), Endpoint("PACS", "127.0.0.1", 105), "s", "MOD", ("echo",), 3
    )
    run.write_context(context)
    assert run.read_context() == context
    assert run.endpoints.stat().st_mode & 0o777 == 0o600  # it holds the device's identity credentials
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporary behind


def test_the_simulator_journals_are_where_the_simulators_write_them(tmp_path: Path) -> None:
    """RunDir names the RIS and commitment journals; the simulators (which cannot import harness) write them."""
    from simulators.commitment import COMMITMENT
    from simulators.ris import REQUESTS

    run = RunDir(tmp_path)
    assert run.ris_requests == run.ris_dir / REQUESTS
    assert run.commitment_journal == run.pacs_storage / COMMITMENT
    assert run.log("ris") == tmp_path / "logs" / "ris.log"


def test_a_context_with_a_ris_round_trips_and_an_old_one_has_none(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    context = SuiteContext(
        str(tmp_path), Endpoint("DEV", "127.0.0.1", 104), Endpoint("PACS", "127.0.0.1", 105), "s", "MOD", ("echo",), 3
    )
    with_ris = replace(
        context,
        ris=Endpoint("PGRIS", "127.0.0.1", 106),
        ris_requests=str(run.ris_requests),
        commitment_log=str(run.commitment_journal),
    )
    run.write_context(with_ris)
    assert run.read_context() == with_ris
    old = to_json(context)
    assert isinstance(old, dict)
    for name in ("ris", "ris_requests", "commitment_log"):
        del old[name]  # written before they existed
    assert SuiteContext.from_json(old, str(tmp_path)) == context


def test_every_file_name_lives_in_the_run_directory_type() -> None:
    """Nothing else in harness/ spells a run-directory file name (the type owns them)."""
    root = Path(__file__).resolve().parents[2] / "harness"
    names = ('"manifest.json"', '"observations.jsonl"', '"endpoints.json"', '"collected"', '"heartbeat"')
    names += ('"comparison.json"', '"junit.xml"', '"allure-results"', '"pytest.ini"', '"inventory.json"')
    names += ('"requests.jsonl"', '"commitment.jsonl"')
    offenders = [
        f"{path.relative_to(root)}: {name}"
        for path in root.rglob("*.py")
        if path.name != "rundir.py"
        for name in names
        if name in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


@pytest.mark.parametrize("content", ["null\n", "[]\n", "{}\n", "\udcff"])
def test_a_manifest_that_is_null_a_list_empty_or_not_utf8_is_a_run_dir_error(tmp_path: Path, content: str) -> None:
    _write(tmp_path)
    RunDir(tmp_path).manifest.write_bytes(content.encode("utf-8", "surrogateescape"))
    with pytest.raises(RunDirError, match=r"manifest\.json: not a valid manifest"):
        read_run(tmp_path)


def test_a_manifest_that_is_a_directory_is_a_run_dir_error(tmp_path: Path) -> None:
    RunDir(tmp_path).manifest.mkdir()
    with pytest.raises(RunDirError, match=r"manifest\.json: not a valid manifest"):
        read_run(tmp_path)


def test_a_second_writer_is_refused_at_once(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    with run.lock(), pytest.raises(RunDirError, match=r"another patchgate \(pid \d+\) is writing here"), run.lock():
        pass
    with run.lock():  # released: the next writer gets it
        pass


def test_a_crashed_writer_releases_its_lock(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = "import sys, os; from harness.rundir import RunDir; RunDir(sys.argv[1]).lock().__enter__(); os._exit(9)"
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=False, timeout=60)
    with RunDir(tmp_path).lock():  # the OS dropped the dead process's lock
        pass


def test_a_failed_write_leaves_no_torn_line(tmp_path: Path) -> None:
    """A full disk in the middle of a line: the writer undoes it; the reader keeps every whole line."""
    _write(tmp_path, 2)
    run = RunDir(tmp_path)
    with run.observations.open("ab") as handle:  # what a writer killed mid-line leaves
        handle.write(b'{"case": "t.py::cut", "outc')
    assert run.torn_tail() == len(b'{"case": "t.py::cut", "outc')
    assert [c.case for c in run.read_cases()] == ["t.py::case[0]", "t.py::case[1]"]


def test_no_space_refuses_a_run_before_it_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.rundir

    monkeypatch.setattr(harness.rundir, "MIN_FREE_BYTES", 2**62)  # more than any disk has
    with pytest.raises(RunDirError, match=r"no space left on .*KiB free, a run needs at least"):
        RunDir(tmp_path / "run").prepare()


def test_partial_allure_files_of_a_killed_suites_process_are_discarded(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.allure.mkdir()
    (run.allure / "a-result.json").write_text("{}")
    (run.allure / "b-container.json.tmp").write_text('{"uuid": "b", "chil')
    run.discard_partial()
    assert sorted(p.name for p in run.allure.iterdir()) == ["a-result.json"]


def test_manifest_without_performance_has_no_key_and_one_with_it_round_trips(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.write_manifest(_manifest())
    assert "performance" not in json.loads(run.manifest.read_text())
    setup = PerfSetup(
        spec={"budget": 20.0, "warmup_rounds": 2},
        conductor="interleaved",
        resources="proc",
        metrics=({"metric": "echo.latency", "rounds": 5, "stopped": "decided"},),
    )
    run.write_manifest(replace(_manifest(), performance=setup))
    assert run.read_manifest().performance == setup
    assert setup.warmup_rounds == 2


def test_an_unfinished_progress_write_is_dropped_and_the_last_one_kept(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.write_collected(12)
    torn = tmp_path / "progress.json.tmp"
    torn.write_text('{"collec')  # a suites process killed between write and rename
    run.drop_unfinished_progress()
    assert not torn.exists() and run.collected() == 12
    run.drop_unfinished_progress()  # nothing to drop: no error
