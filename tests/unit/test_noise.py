"""Noise: what differs between baseline replicas is masked in the candidate diff, and only that."""

from __future__ import annotations

from harness.compare.diff import diff_cases
from harness.compare.noise import NoiseMask, measure_noise
from harness.compare.normalise import normalise_run
from harness.model import JSON, CaseRecord, Difference, DiffKind, Outcome, RunRecord
from tests.factories import make_case, make_run


def _run(*cases: CaseRecord) -> RunRecord:
    return make_run(cases)


def _query(port: int, names: list[str], status: int = 0) -> dict[str, JSON]:
    return {"assoc": {"port": port, "status": status}, "matches": names}


def test_a_path_that_differs_between_replicas_is_masked_and_others_are_not() -> None:
    one = _run(make_case("q.py::find", find=_query(40001, ["A", "B"])), make_case("e.py::echo", echo=0))
    two = _run(make_case("q.py::find", find=_query(40002, ["A", "B"])), make_case("e.py::echo", echo=0))
    mask = measure_noise([normalise_run(one), normalise_run(two)])
    assert mask.paths == frozenset({("q.py::find", "find.assoc.port")})
    assert mask.flaky == frozenset()

    candidate = _run(make_case("q.py::find", find=_query(40003, ["A"], status=0xA700)), make_case("e.py::echo", echo=1))
    diffs = [d for c in ("q.py::find", "e.py::echo") for d in diff_cases(one.by_case()[c], candidate.by_case()[c])]
    covered = {d.path: mask.covers(d) for d in diffs}
    assert covered == {
        "find.assoc.port": True,
        "find.assoc.status": False,
        "find.matches": False,
        "find.matches[1]": False,
        "echo": False,
    }


def test_the_same_path_in_another_case_is_not_masked() -> None:
    mask = NoiseMask(frozenset({("a.py::t", "x")}))
    assert mask.covers(Difference("a.py::t", "x", DiffKind.VALUE_CHANGED, 1, 2))
    assert not mask.covers(Difference("b.py::t", "x", DiffKind.VALUE_CHANGED, 1, 2))


def test_paths_under_a_noise_path_are_masked_at_boundaries_only() -> None:
    mask = NoiseMask(frozenset({("c", "find.matches")}))

    def covers(path: str, kind: DiffKind = DiffKind.VALUE_CHANGED) -> bool:
        return mask.covers(Difference("c", path, kind, 1, 2))

    assert covers("find.matches")
    assert covers("find.matches[3]")
    assert covers("find.matches.x")
    assert not covers("find.matches_count")  # a sibling that shares a prefix
    assert not covers("find")  # an ancestor, for a value change
    assert covers("find", DiffKind.COUNT_CHANGED)  # an ancestor list that changed length
    assert covers("find", DiffKind.ORDER_CHANGED)
    assert not covers("fin", DiffKind.COUNT_CHANGED)


def test_a_list_whose_length_varies_between_replicas_masks_its_items() -> None:
    one = _run(make_case("c", log=["a", "b"]))
    two = _run(make_case("c", log=["a", "b", "c"]))
    mask = measure_noise([one, two])
    candidate = _run(make_case("c", log=["a", "b", "c", "d", "e"]))
    diffs = diff_cases(one.cases[0], candidate.cases[0])
    assert {d.path for d in diffs} == {"log", "log[2]", "log[3]", "log[4]"}
    assert all(mask.covers(d) for d in diffs)


def test_a_case_whose_outcome_differs_between_replicas_is_flaky_and_all_its_differences_are_noise() -> None:
    one = _run(make_case("f.py::flaky", x=1), make_case("s.py::steady", x=1))
    two = _run(make_case("f.py::flaky", Outcome.FAILED, x=1), make_case("s.py::steady", x=1))
    three = _run(make_case("s.py::steady", x=1))  # and missing altogether in a third replica
    mask = measure_noise([one, two, three])
    assert mask.flaky == frozenset({"f.py::flaky"})
    assert mask.cases == frozenset({"f.py::flaky"})
    assert mask.covers(Difference("f.py::flaky", "x", DiffKind.VALUE_CHANGED, 1, 2))
    assert mask.covers(Difference("f.py::flaky", "outcome", DiffKind.STATUS_CHANGED, "passed", "error"))
    assert not mask.covers(Difference("s.py::steady", "x", DiffKind.VALUE_CHANGED, 1, 2))


def test_device_uids_are_not_noise_once_normalised() -> None:
    one = _run(make_case("c", uid={"00080018": {"vr": "UI", "Value": ["1.2.3.1"]}}))
    two = _run(make_case("c", uid={"00080018": {"vr": "UI", "Value": ["1.2.3.2"]}}))
    assert measure_noise([normalise_run(one), normalise_run(two)]) == NoiseMask()
    assert measure_noise([one, two]).paths == frozenset({("c", "uid.00080018.Value[0]")})


def test_a_single_replica_gives_an_empty_mask() -> None:
    mask = measure_noise([_run(make_case("c", x=1))])
    assert mask == NoiseMask()
    assert not mask.covers(Difference("c", "x", DiffKind.VALUE_CHANGED, 1, 2))
    assert measure_noise([]) == NoiseMask()
