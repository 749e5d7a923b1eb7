"""read_runs: run directories read back normalised, the later runs sharing the first's equal values,
giving what normalising the raw records gives, and a comparison equal to one of the raw records."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest

from harness.compare import normalise
from harness.compare.engine import compare
from harness.compare.normalise import normalise_run, read_normalised, shared_window
from harness.errors import RunDirError
from harness.model import CaseRecord, CorpusInfo, Observation, Outcome, RunRecord, Verdict
from harness.rundir import RunDir, read_run
from harness.validation import read_runs
from tests.factories import make_case, make_run
from tests.golden import CREATED
from tests.synthetic import synthetic


def _write(run: RunRecord, path: Path) -> Path:
    directory = RunDir(path)
    directory.prepare()
    directory.write_manifest(run.manifest)
    lines = (json.dumps(c.to_json(), sort_keys=True) + "\n" for c in run.cases)
    directory.observations.write_text("".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    s = synthetic(120)
    root = tmp_path_factory.mktemp("runs")
    return [_write(r, root / r.manifest.run_id) for r in (*s.baselines, s.candidate)]


def test_read_runs_gives_what_normalising_the_raw_records_gives(folders: list[Path]) -> None:
    read = read_runs(folders)
    window = shared_window(r.manifest for r in read)
    for record, folder in zip(read, folders, strict=True):
        raw = read_run(folder)
        assert record.directory == raw.directory and record.manifest == raw.manifest
        assert [c.to_json() for c in record.cases] == [c.to_json() for c in normalise_run(raw, window).cases]
        assert json.dumps([c.to_json() for c in record.cases]) == json.dumps(
            [c.to_json() for c in normalise_run(raw, window).cases]
        )  # key order and types too


def test_the_comparison_of_read_runs_is_the_comparison_of_the_raw_records(folders: list[Path]) -> None:
    *baselines, candidate = read_runs(folders)
    *raw_baselines, raw_candidate = (read_run(f) for f in folders)
    policy = synthetic(120).policy
    assert compare(baselines, candidate, policy, created=CREATED) == compare(
        raw_baselines, raw_candidate, policy, created=CREATED
    )


def test_reading_and_comparing_runs_leave_no_garbage_in_cycles(folders: list[Path]) -> None:
    """Both pause the collector with lasting=True, which moves what they made to the oldest generation: garbage
    in a cycle there (a normaliser whose table held its own bound methods) would wait for a full collection."""
    policy = synthetic(120).policy
    gc.collect()
    gc.disable()
    try:
        *baselines, candidate = read_runs(folders)
        compare(baselines, candidate, policy, created=CREATED)
        del baselines, candidate
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_what_read_runs_built_waits_in_the_oldest_generation(folders: list[Path]) -> None:
    """Left young, the records read would be walked by the next young collection (0.26 s at 10,000 cases) and
    moved on for nothing: read_runs pauses the collector with lasting=True, as compare does."""
    gc.collect()
    runs = read_runs(folders)
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert all(id(run.cases[-1]) in oldest for run in runs)


def test_later_runs_share_the_first_runs_equal_values(folders: list[Path]) -> None:
    first, second, candidate = read_runs(folders)
    ones, twos = first.by_case(), second.by_case()
    shared = sum(
        a is b for case in ones for a, b in zip(ones[case].observations, twos[case].observations, strict=False)
    )
    total = sum(len(c.observations) for c in first.cases)
    assert shared > 0.9 * total  # replicas of one device: nearly every value equal once normalised
    assert any(
        a is not b
        for case in ones
        for a, b in zip(ones[case].observations, candidate.by_case()[case].observations, strict=False)
    )


def test_a_later_run_walks_only_what_the_first_run_did_not_leave_alone(
    folders: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An observation exactly equal to the first run's at the same place, where normalising the first run's
    changed nothing, is taken without walking it; every other one is walked (and comes out as the raw
    record's normalisation, test above)."""
    raw = [read_run(f) for f in folders]
    window = shared_window(r.manifest for r in raw)
    first = {c.case: c for c in raw[0].cases}
    alone = {c.case: c for c in normalise_run(raw[0], window).cases}

    def skipped(case: CaseRecord, i: int, mine: Observation) -> bool:
        theirs = first[case.case].observations if case.case in first else ()
        if i >= len(theirs):
            return False
        other = theirs[i]
        return (
            alone[case.case].observations[i] is other  # normalising it changed nothing
            and mine.name == other.name
            and json.dumps(mine.value) == json.dumps(other.value)
            and type(mine.value) is type(other.value)
        )

    expected = [
        sum(1 for c in run.cases for i, o in enumerate(c.observations) if k == 0 or not skipped(c, i, o))
        for k, run in enumerate(raw)
    ]
    walked: list[int] = []
    original = normalise._Normaliser.observation

    def counted(self: normalise._Normaliser, observation: Observation) -> Observation:
        walked[-1] += 1
        return original(self, observation)

    monkeypatch.setattr(normalise._Normaliser, "observation", counted)
    real = normalise.read_normalised

    def each(*args: object, **kwargs: object) -> RunRecord:
        walked.append(0)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("harness.validation.read_normalised", each)
    read_runs(folders)
    assert walked == expected
    assert walked[1] < walked[0] / 2 and walked[2] < walked[0] / 2  # replicas repeat most of what stays


@pytest.mark.parametrize("differs", ["uid root", "window"])
def test_a_value_left_alone_under_other_rules_is_still_normalised(differs: str) -> None:
    """What the first run's rules left alone, another run's may change: a UID under the first run's corpus
    root only, a time inside the later run's window only. Equal values are then walked, not taken."""
    value = {"study_uid": "1.2.3.4", "00080013": {"vr": "TM", "Value": ["120000"]}}
    case = make_case("m.py::t", Outcome.PASSED, 0.1, seen=value)

    def run(root: str, started: str, finished: str) -> RunRecord:
        corpus = CorpusInfo(seed=1, sha256="0" * 64, uid_root=root, items=1)
        return make_run([case], corpus=corpus, started=started, finished=finished)

    like = run("1.2.3", "2026-12-02T08:00:00Z", "2026-12-02T08:10:00Z")
    if differs == "uid root":
        later, expected = run("9.9", like.manifest.started, like.manifest.finished), {"study_uid": "UID#1"}
    else:
        later, expected = (
            run("1.2.3", "2026-12-02T11:58:00Z", "2026-12-02T12:03:00Z"),
            {"00080013": {"vr": "TM", "Value": ["TIME#1"]}},
        )
    first = read_normalised("b", like.manifest, like.cases)
    assert first.cases[0].observations[0].value == value  # left alone under its own rules
    mine = read_normalised("c", later.manifest, later.cases, first).cases[0].observations[0].value
    assert mine == value | expected


def test_a_run_read_normalised_is_not_normalised_again(folders: list[Path]) -> None:
    run = read_runs(folders[:1])[0]
    assert normalise_run(run) is run
    raw = read_run(folders[0])
    assert normalise_run(raw) is not raw  # a raw record is normalised as before


def _observed(value: object, tags: tuple[str, ...] = ()) -> CaseRecord:
    return CaseRecord(
        "m.py::t", synthetic(1).candidate.cases[0].outcome, observations=(Observation("x", value, tags=tags),)
    )


@pytest.mark.parametrize(
    ("mine", "theirs"),
    [
        (1, True),
        (1, 1.0),
        (0.0, -0.0),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
        ([1], [True]),
        (float("nan"), float("nan")),
    ],
)
def test_values_equal_only_to_python_are_not_shared(mine: object, theirs: object) -> None:
    like = RunRecord("b", synthetic(1).candidate.manifest, (_observed(theirs),))
    run = read_normalised("c", like.manifest, [_observed(mine)], like)
    assert run.cases[0].observations[0].value is not theirs
    assert json.dumps(run.cases[0].observations[0].value) == json.dumps(mine)


def test_an_exactly_equal_value_is_shared_and_the_observations_own_tags_stay() -> None:
    like = RunRecord("b", synthetic(1).candidate.manifest, (_observed({"a": [1, "x"]}),))
    run = read_normalised("c", like.manifest, [_observed({"a": [1, "x"]}, tags=("t",))], like)
    observation = run.cases[0].observations[0]
    assert observation.value is like.cases[0].observations[0].value and observation.tags == ("t",)


def test_a_corrupted_line_is_still_named_by_file_and_line(folders: list[Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    _write(read_run(folders[0]), broken)
    path = RunDir(broken).observations
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = "{not json\n"
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(RunDirError, match=r"observations\.jsonl:3: corrupted observation line"):
        read_runs([folders[0], broken])


def _timed_run(role: str, replica: int, started: str, finished: str, made: str) -> RunRecord:
    """A run that sent the fixed time 10:10:00 (a corpus series time) and got back a time its device made."""
    sent = {"00080031": {"vr": "TM", "Value": ["101000"]}, "00080013": {"vr": "TM", "Value": [made]}}
    case = make_case("storage/test_store.py::test_store_then_retrieve[MR]", Outcome.PASSED, 0.1, retrieved=sent)
    return make_run([case], role, replica, started=f"2026-12-02T{started}Z", finished=f"2026-12-02T{finished}Z")


def test_a_time_the_suites_send_is_one_thing_in_every_run_whatever_their_windows(tmp_path: Path) -> None:
    """CI, 2026-12-02 16:2x UTC: an external device's runs, minutes apart, straddled the corpus's 16:20:00. The
    baselines' windows (each run's own, with 5 minutes' slack) held it and made it a token, the candidate's did
    not: REGRESSED "TIME#1 -> 162000". One window for all the runs compared: a token in all or in none."""
    runs = [
        _timed_run("baseline", 1, "10:00:00", "10:06:00", "100300"),  # 09:55-10:11 holds 10:10:00
        _timed_run("baseline", 2, "10:02:00", "10:08:00", "100500"),  # 09:57-10:13 holds it
        _timed_run("candidate", 1, "10:20:00", "10:26:00", "102300"),  # 10:15-10:31 does not
    ]
    *baselines, candidate = runs
    assert compare(baselines, candidate, created=CREATED).verdict is Verdict.UNCHANGED
    *read_baselines, read_candidate = read_runs([_write(r, tmp_path / r.manifest.run_id) for r in runs])
    assert compare(read_baselines, read_candidate, created=CREATED).verdict is Verdict.UNCHANGED
    (case,) = read_candidate.cases
    # Every run's own device-made time is still a token, and the time sent is one in every run alike.
    assert case.observations[0].value == {
        "00080013": {"Value": ["TIME#1"], "vr": "TM"},
        "00080031": {"Value": ["TIME#2"], "vr": "TM"},
    }
    assert shared_window([]) is None


@pytest.mark.parametrize("value", [{"n": 2**70}, [-(2**64)], "\ud800"])
def test_equal_values_msgpack_cannot_hold_are_read_as_they_are(value: object) -> None:
    """Sharing compares MessagePack bytes: an integer beyond 64 bits or a lone surrogate has none. Such a value is
    then simply not shared: no error, nothing read differently."""
    like = RunRecord("b", synthetic(1).candidate.manifest, (_observed(value),))
    mine = json.loads(json.dumps(value))  # equal, and another object
    run = read_normalised("c", like.manifest, [_observed(mine)], like)
    assert run.cases[0].observations[0].value is mine
