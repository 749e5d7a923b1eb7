"""Diff: every kind of difference, at the documented path."""

from __future__ import annotations

from harness.compare.diff import diff_cases, format_side
from harness.model import JSON, CaseRecord, Difference, DiffKind, Outcome
from tests.factories import make_case

CASE = "store/test_store.py::test_roundtrip"


def _case(outcome: Outcome = Outcome.PASSED, duration: float = 0.1, /, **observations: JSON) -> CaseRecord:
    return make_case(CASE, outcome, duration, **observations)


def _found(before: CaseRecord | None, after: CaseRecord | None) -> list[tuple[str, DiffKind, JSON, JSON]]:
    return [(d.path, d.kind, d.before, d.after) for d in diff_cases(before, after)]


def test_identical_cases_have_no_difference_and_durations_are_not_compared() -> None:
    value = {"a": [1, {"b": None}], "c": "x"}
    assert diff_cases(_case(Outcome.PASSED, 0.1, x=value), _case(Outcome.PASSED, 9.0, x=value)) == ()


def test_outcome_change_is_a_status_change_at_outcome() -> None:
    assert _found(_case(), _case(Outcome.FAILED)) == [("outcome", DiffKind.STATUS_CHANGED, "passed", "failed")]


def test_case_missing_or_extra() -> None:
    assert _found(_case(), None) == [("outcome", DiffKind.MISSING, "passed", None)]
    assert _found(None, _case(Outcome.ERROR)) == [("outcome", DiffKind.EXTRA, None, "error")]
    assert diff_cases(None, None) == ()
    (d,) = diff_cases(_case(), None)
    assert d.case == CASE


def test_observation_missing_and_extra() -> None:
    found = _found(_case(a=1, b=2), _case(b=2, c=3))
    assert found == [("a", DiffKind.MISSING, 1, None), ("c", DiffKind.EXTRA, None, 3)]


def test_nested_object_keys_and_values_give_paths() -> None:
    before = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]}, "gone": 1}
    after = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}]}, "new": True}
    assert _found(_case(ds=before), _case(ds=after)) == [
        ("ds.00100010.Value[0].Alphabetic", DiffKind.VALUE_CHANGED, "Doe^Jane", "Doe^John"),
        ("ds.gone", DiffKind.MISSING, 1, None),
        ("ds.new", DiffKind.EXTRA, None, True),
    ]


def test_types_matter_one_is_not_true_nor_one_point_zero() -> None:
    assert _found(_case(x=1), _case(x=True)) == [("x", DiffKind.VALUE_CHANGED, 1, True)]
    assert _found(_case(x=[1]), _case(x=[1.0])) == [("x[0]", DiffKind.VALUE_CHANGED, 1, 1.0)]
    assert _found(_case(x={"a": 1}), _case(x=[1])) == [("x", DiffKind.VALUE_CHANGED, {"a": 1}, [1])]


def test_status_keys_give_status_changed() -> None:
    before = {"status": 0, "assoc_status": 0, "statuses": [0], "other": 0}
    after = {"status": 0xA700, "assoc_status": 0x0122, "statuses": [1], "other": 1}
    assert _found(_case(c=before, **{"store.status": 0}), _case(c=after, **{"store.status": 0xC000})) == [
        ("c.status", DiffKind.STATUS_CHANGED, 0, 0xA700),
        ("c.assoc_status", DiffKind.STATUS_CHANGED, 0, 0x0122),
        ("c.statuses[0]", DiffKind.VALUE_CHANGED, 0, 1),
        ("c.other", DiffKind.VALUE_CHANGED, 0, 1),
        ("store.status", DiffKind.STATUS_CHANGED, 0, 0xC000),
    ]


def test_list_count_change_lists_the_missing_and_extra_items_as_multisets() -> None:
    before = ["a", "b", "b", "c"]
    after = ["b", "c", "d", "e", "a"]
    assert _found(_case(l=before), _case(l=after)) == [
        ("l", DiffKind.COUNT_CHANGED, 4, 5),
        ("l[1]", DiffKind.MISSING, "b", None),  # duplicates: the first one
        ("l[2]", DiffKind.EXTRA, None, "d"),
        ("l[3]", DiffKind.EXTRA, None, "e"),
    ]


def test_same_items_other_order_is_one_order_change() -> None:
    before = [{"id": 1}, {"id": 2}]
    after = [{"id": 2}, {"id": 1}]
    assert _found(_case(l=before), _case(l=after)) == [("l", DiffKind.ORDER_CHANGED, before, after)]


def test_same_length_other_items_compare_position_by_position() -> None:
    assert _found(_case(l=[{"v": 1}, {"v": 2}]), _case(l=[{"v": 1}, {"v": 3}])) == [
        ("l[1].v", DiffKind.VALUE_CHANGED, 2, 3)
    ]


def test_a_reactions_when_changes_only_with_the_timing_it_is_made_of() -> None:
    def reaction(kind: str, seconds: float, *, timed: bool = True) -> CaseRecord:
        when = "immediate" if seconds < 1.0 else "delayed"
        timing: dict[str, JSON] = {"timing.robustness.seconds": seconds} if timed else {}
        return _case(**{"robustness.reaction": {"kind": kind, "when": when}}, **timing)

    when = "robustness.reaction.when"
    # Orthanc storing 16 MiB: 0.93 s in a baseline, 1.06 s in the candidate of a loaded machine. Not a change.
    assert _found(reaction("answered", 0.93), reaction("answered", 1.06)) == []
    # A device that aborted at once now waits 5 s: the class and the timing both change.
    assert _found(reaction("aborted", 0.01), reaction("aborted", 5.0)) == [
        (when, DiffKind.VALUE_CHANGED, "immediate", "delayed"),
        ("timing.robustness.seconds", DiffKind.TIMING_CHANGED, 0.01, 5.0),
    ]
    # Far faster: no timing change (faster never is one), but the class moved for real.
    assert _found(reaction("aborted", 5.0), reaction("aborted", 0.01)) == [
        (when, DiffKind.VALUE_CHANGED, "delayed", "immediate")
    ]
    # Another kind near the edge: the kind is the change, the class is not.
    assert _found(reaction("answered", 0.95), reaction("aborted", 1.02)) == [
        ("robustness.reaction.kind", DiffKind.VALUE_CHANGED, "answered", "aborted")
    ]
    # Runs that recorded no timing: the class compared as it is.
    assert _found(reaction("answered", 0.93, timed=False), reaction("answered", 1.06, timed=False)) == [
        (when, DiffKind.VALUE_CHANGED, "immediate", "delayed")
    ]


def test_a_silence_at_the_deadline_differs_only_when_its_seconds_moved() -> None:
    def reaction(kind: str, seconds: float, detail: str) -> CaseRecord:
        observed: dict[str, JSON] = {
            "robustness.reaction": {"kind": kind, "when": "immediate" if seconds < 1.0 else "delayed"},
            "robustness.detail": detail,
            "robustness.severity": 1 if kind == "silent" else 0,
            "timing.robustness.seconds": seconds,
        }
        return _case(**observed)

    silent = reaction("silent", 10.01, "no answer before the deadline")
    # dcmqrscp storing a 5,000-deep nesting: 9.7 s in a baseline, past the 10 s deadline in a loaded candidate.
    assert _found(reaction("answered", 9.7, "status 0x0000 (success)"), silent) == []
    assert _found(silent, reaction("answered", 9.7, "status 0x0000 (success)")) == []
    # A device that answered at once and now holds the connection to the deadline: every part of it changed.
    assert _found(reaction("answered", 0.05, "status 0x0000 (success)"), silent) == [
        ("robustness.reaction.kind", DiffKind.VALUE_CHANGED, "answered", "silent"),
        ("robustness.reaction.when", DiffKind.VALUE_CHANGED, "immediate", "delayed"),
        ("robustness.detail", DiffKind.VALUE_CHANGED, "status 0x0000 (success)", "no answer before the deadline"),
        ("robustness.severity", DiffKind.VALUE_CHANGED, 0, 1),
        ("timing.robustness.seconds", DiffKind.TIMING_CHANGED, 0.05, 10.01),
    ]
    # Two kinds that are not silence near the same seconds: the kind is a change of the device's.
    assert [p for p, *_ in _found(reaction("answered", 9.7, "a"), reaction("aborted", 9.9, "b"))] == [
        "robustness.reaction.kind",
        "robustness.detail",
    ]


def test_timing_changes_only_past_both_thresholds() -> None:
    def timing(before: float, after: float) -> list[tuple[str, DiffKind, JSON, JSON]]:
        return _found(_case(**{"timing.store": before}), _case(**{"timing.store": after}))

    assert timing(0.5, 2.0) == [("timing.store", DiffKind.TIMING_CHANGED, 0.5, 2.0)]
    assert timing(0.01, 0.9) == []  # 90 times slower, but by less than a second
    assert timing(2.0, 5.0) == []  # three seconds slower, but not three times
    assert timing(2.0, 1.0) == []  # faster is never a change
    assert timing(0.0, 1.5) == [("timing.store", DiffKind.TIMING_CHANGED, 0.0, 1.5)]


def test_format_side_renders_statuses_absence_counts_and_json() -> None:
    status = Difference(CASE, "c.status", DiffKind.STATUS_CHANGED, 0, 0xA700)
    assert (format_side(status, "before"), format_side(status, "after")) == ("0x0000", "0xA700")
    missing = Difference(CASE, "x", DiffKind.MISSING, {"a": [1]}, None)
    assert format_side(missing, "after") == "(absent)"
    assert format_side(missing, "before") == '{"a": [1]}'
    assert format_side(missing, "before", pretty=True) == '{\n  "a": [\n    1\n  ]\n}'
    assert format_side(Difference(CASE, "l", DiffKind.COUNT_CHANGED, 2, 3), "after") == "3 items"
    assert format_side(Difference(CASE, "outcome", DiffKind.STATUS_CHANGED, "passed", "failed"), "after") == "failed"
    assert format_side(Difference(CASE, "v", DiffKind.VALUE_CHANGED, None, "x"), "before") == "null"


def test_equal_looking_values_of_other_types_or_signs_still_differ_deep_inside() -> None:
    # == says 1 == true == 1.0 and 0.0 == -0.0; the comparison keeps them apart at any depth.
    before = {"a": [1, {"b": 1, "z": 0.0}], "c": "x"}
    after = {"a": [1, {"b": True, "z": -0.0}], "c": "x"}
    assert _found(_case(x=before), _case(x=after)) == [
        ("x.a[1].b", DiffKind.VALUE_CHANGED, 1, True),
        ("x.a[1].z", DiffKind.VALUE_CHANGED, 0.0, -0.0),
    ]
    assert _found(_case(x=[{"n": 1.0}]), _case(x=[{"n": 1}])) == [("x[0].n", DiffKind.VALUE_CHANGED, 1.0, 1)]


def test_keys_in_another_order_and_nan_are_no_difference() -> None:
    nan = float("nan")
    assert _found(_case(x={"a": 1, "b": [nan]}), _case(x={"b": [nan], "a": 1})) == []
    assert _found(_case(x=nan), _case(x=float("nan"))) == []
