"""Security posture: each direction rule (bool, number, list, text, noise) through compare(), and the words for it."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from harness.compare.engine import compare
from harness.compare.security import classify, describe, observation_of, value_words
from harness.model import (
    JSON,
    CaseRecord,
    Comparison,
    Direction,
    Observation,
    Outcome,
    RunRecord,
    Security,
    SecurityChange,
    Verdict,
)
from tests.factories import make_run

E, P = Security.EXPOSURE, Security.PROTECTION
CASE = "tls/test_tls.py::test_protocol_version[TLSv1]"
FILLER = [f"echo/test_echo.py::test_{i}" for i in range(4)]  # keeps noise under half the cases


def _case(name: str, outcome: Outcome = Outcome.PASSED, **observations: tuple[JSON, Security]) -> CaseRecord:
    return CaseRecord(name, outcome, observations=tuple(Observation(k, v, s) for k, (v, s) in observations.items()))


def _runs(
    before: Sequence[CaseRecord], after: Sequence[CaseRecord], second: Sequence[CaseRecord] | None = None
) -> tuple[list[RunRecord], RunRecord]:
    filler = [_case(f, status=(0, Security.NONE)) for f in FILLER]
    baselines = [make_run([*before, *filler]), make_run([*(before if second is None else second), *filler], replica=2)]
    return baselines, make_run([*after, *filler], "candidate")


def _posture(before: JSON, after: JSON, security: Security = E, second: JSON = None) -> list[SecurityChange]:
    """The security changes of one observation `accepted` of CASE, baseline `before`, candidate `after`."""
    other = None if second is None else [_case(CASE, accepted=(second, security))]
    baselines, candidate = _runs(
        [_case(CASE, accepted=(before, security))], [_case(CASE, accepted=(after, security))], other
    )
    return list(compare(baselines, candidate).security)


def _one(before: JSON, after: JSON, security: Security = E) -> SecurityChange:
    (change,) = _posture(before, after, security)
    return change


@pytest.mark.parametrize(
    ("security", "before", "after", "direction"),
    [
        (E, False, True, Direction.LOOSENED),  # a TLS version now accepted
        (E, True, False, Direction.TIGHTENED),  # plain TCP no longer admitted: TLS now required
        (P, True, False, Direction.LOOSENED),  # a client certificate no longer required
        (P, False, True, Direction.TIGHTENED),
        (E, True, True, Direction.UNCHANGED),
        (P, False, False, Direction.UNCHANGED),
    ],
)
def test_bool_direction(security: Security, before: bool, after: bool, direction: Direction) -> None:
    change = _one(before, after, security)
    assert (change.case, change.name, change.security, change.direction) == (CASE, "accepted", security, direction)
    assert (change.before, change.after, change.added, change.removed) == (before, after, (), ())


@pytest.mark.parametrize(
    ("security", "before", "after", "direction"),
    [
        (E, 2, 5, Direction.LOOSENED),  # more sessions allowed
        (E, 5, 2.5, Direction.TIGHTENED),
        (P, 2048, 1024, Direction.LOOSENED),  # a shorter minimum key
        (P, 1024, 4096, Direction.TIGHTENED),
        (E, 3, 3, Direction.UNCHANGED),
    ],
)
def test_number_direction(security: Security, before: float, after: float, direction: Direction) -> None:
    assert _one(before, after, security).direction is direction


def test_list_added_items_are_more_removed_items_are_less() -> None:
    ports = ["tcp/{dicom} any (Orthanc)", "tcp/{http} any (Orthanc)"]
    (opened,) = _posture(ports[:1], ports)
    assert (opened.direction, opened.added, opened.removed) == (Direction.LOOSENED, (ports[1],), ())
    assert describe(opened) == "accepted + tcp/{http} any (Orthanc)"
    (closed,) = _posture(ports, ports[:1])
    assert (closed.direction, closed.added, closed.removed) == (Direction.TIGHTENED, (), (ports[1],))
    assert describe(closed) == "accepted \N{MINUS SIGN} tcp/{http} any (Orthanc)"
    # Protection lists read the other way: an audit event no longer sent is a loosening.
    (unsent,) = _posture(["DICOM Instances Transferred"], [], P)
    assert (unsent.direction, unsent.removed) == (Direction.LOOSENED, ("DICOM Instances Transferred",))


def test_a_list_that_gained_and_lost_is_both_loosened_and_tightened() -> None:
    loosened, tightened = _posture(["RC4-SHA", "NULL-MD5"], ["NULL-MD5", "DES-CBC-SHA"])
    assert (loosened.direction, loosened.added, loosened.removed) == (Direction.LOOSENED, ("DES-CBC-SHA",), ())
    assert (tightened.direction, tightened.added, tightened.removed) == (Direction.TIGHTENED, (), ("RC4-SHA",))
    assert loosened.before == tightened.before == ["RC4-SHA", "NULL-MD5"]
    # For protection the same movement reads the other way round, loosened still listed first.
    loosened, tightened = _posture(["a", "b"], ["b", "c"], P)
    assert (loosened.removed, tightened.added) == (("a",), ("c",))


def test_lists_are_multisets_and_a_new_order_has_no_direction() -> None:
    (change,) = _posture(["x"], ["x", "x"])
    assert (change.direction, change.added) == (Direction.LOOSENED, ("x",))
    (reordered,) = _posture(["a", "b"], ["b", "a"])
    assert (reordered.direction, reordered.added, reordered.removed) == (Direction.CHANGED, (), ())


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("TLSv1.2", "TLSv1.3"),  # text says nothing of direction
        ({"association": "rejected"}, {"association": "aborted"}),
        (None, True),  # None: not tested in one run
        (1, "1"),
        ([1], {"a": 1}),
    ],
)
def test_text_objects_and_mixed_kinds_are_changed_without_direction(before: JSON, after: JSON) -> None:
    change = _one(before, after)
    assert change.direction is Direction.CHANGED
    assert (change.before, change.after) == (before, after)


def test_an_observation_recorded_on_one_side_only_is_changed_and_says_so() -> None:
    baselines, candidate = _runs([_case(CASE, accepted=(False, E))], [_case(CASE, other=(1, Security.NONE))])
    (change,) = compare(baselines, candidate).security
    assert (change.direction, change.absent, change.before, change.after) == (Direction.CHANGED, "after", False, None)
    assert describe(change) == "accepted false → (not observed)"
    baselines, candidate = _runs([_case(CASE)], [_case(CASE, accepted=(True, E))])
    (change,) = compare(baselines, candidate).security
    assert (change.direction, change.absent) == (Direction.CHANGED, "before")


def test_baselines_that_disagree_make_the_observation_noisy_not_loosened() -> None:
    (change,) = _posture(False, True, second=True)
    assert change.direction is Direction.NOISY
    assert "baseline" in change.reason
    baselines, candidate = _runs(
        [_case(CASE, accepted=(False, E))], [_case(CASE, accepted=(True, E))], [_case(CASE, accepted=(True, E))]
    )
    c = compare(baselines, candidate)
    assert c.verdict is Verdict.UNCHANGED  # the difference is noise, and noise says nothing


def test_a_flaky_case_makes_its_changed_observations_noisy() -> None:
    # Same value in both baselines, but the case's outcome flakes between them: every difference is noise.
    baselines, candidate = _runs(
        [_case(CASE, accepted=(False, E))],
        [_case(CASE, accepted=(True, E))],
        [_case(CASE, Outcome.FAILED, accepted=(False, E))],
    )
    (change,) = compare(baselines, candidate).security
    assert change.direction is Direction.NOISY


def test_every_tagged_observation_is_listed_once_untagged_ones_never() -> None:
    before = [
        _case(CASE, accepted=(False, E), cipher=("AES", Security.NONE)),
        _case("access/test_access.py::test_unknown_calling_ae[find]", admitted=(False, E)),
    ]
    after = [
        _case(CASE, accepted=(False, E), cipher=("CHACHA", Security.NONE)),
        _case("access/test_access.py::test_unknown_calling_ae[find]", admitted=(True, E)),
    ]
    c = compare(*_runs(before, after))
    assert [(s.case, s.name, s.direction) for s in c.security] == [
        ("access/test_access.py::test_unknown_calling_ae[find]", "admitted", Direction.LOOSENED),
        (CASE, "accepted", Direction.UNCHANGED),
    ]


def test_tags_come_from_the_records_as_recorded_and_values_are_normalised() -> None:
    # Device-minted UIDs differ between runs; normalised they are equal, and the tag survives normalisation.
    before = [_case(CASE, sessions=([{"session_uid": "1.2.3.4.5.6.7"}], E))]
    after = [_case(CASE, sessions=([{"session_uid": "1.2.3.4.5.6.8"}], E))]
    (change,) = compare(*_runs(before, after)).security
    assert (change.direction, change.security) == (Direction.UNCHANGED, E)
    assert change.before == change.after == [{"session_uid": "UID#1"}]


def test_classify_directly_and_the_policy_fields_start_empty() -> None:
    before = _case(CASE, accepted=(False, E))
    after = _case(CASE, accepted=(True, E))
    (change,) = classify(CASE, [before], after, {"accepted": E})
    assert change == SecurityChange(CASE, "accepted", E, False, True, Direction.LOOSENED)
    assert classify(CASE, [before], after, {}) == ()


def test_observation_of_picks_the_longest_name_at_a_boundary() -> None:
    names = ["echo", "echo.status", "forbidden", "forbiddenx"]
    assert observation_of("echo.status", names) == "echo.status"
    assert observation_of("echo.other", names) == "echo"
    assert observation_of("forbidden[3]", names) == "forbidden"
    assert observation_of("forbiddenx", names) == "forbiddenx"
    assert observation_of("outcome", names) is None


def test_values_read_as_plain_words() -> None:
    assert [value_words(v) for v in (True, False, None, 3, "", "TLSv1", [], ["a", 1])] == [
        "true",
        "false",
        "none",
        "3",
        "(empty)",
        "TLSv1",
        "(none)",
        "a, 1",
    ]
    assert value_words({"b": 1, "a": "x"}) == '{"a": "x", "b": 1}'
    assert value_words(True, absent=True) == "(not observed)"
    long = SecurityChange(CASE, "forbidden", E, [], ["X" * 100], Direction.LOOSENED, added=("X" * 100,))
    assert len(describe(long)) < 80 and describe(long).endswith("…")


def test_security_round_trips_through_comparison_json() -> None:
    import json

    from harness.model import to_json

    loosened, tightened = _posture([{"port": 104}], [{"port": 11112}])
    baselines, candidate = _runs([_case(CASE, accepted=(["a"], E))], [_case(CASE, accepted=(["b"], E))])
    c = compare(baselines, candidate)
    assert len(c.security) == 2
    back = Comparison.from_json(json.loads(json.dumps(to_json(c))))
    assert back == c and back.security == c.security
    assert isinstance(back.security[0].added, tuple)
    assert loosened.added == ({"port": 11112},) and tightened.removed == ({"port": 104},)
    old = to_json(c)
    del old["security"]  # a comparison.json written before the security posture existed
    assert Comparison.from_json(old).security == ()
