"""Normalisation: device UIDs, dates and times become tokens; everything else stays."""

from __future__ import annotations

import copy

from harness.compare.normalise import normalise_run
from harness.model import JSON, CaseRecord, CorpusInfo, Outcome, RunRecord
from tests.factories import make_case, make_run

ROOT = "1.2.826.0.1.3680043.10.543"  # corpus UID root
DEVICE_UID = "1.3.6.1.4.1.9590.100.1.2.111"
OTHER_DEVICE_UID = "1.3.6.1.4.1.9590.100.1.2.222"
CORPUS_UID = ROOT + ".7.1"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def _run(
    *cases: CaseRecord,
    started: str = "2026-11-28T10:00:00+00:00",
    finished: str = "2026-11-28T10:20:00+00:00",
) -> RunRecord:
    corpus = CorpusInfo(seed=1, sha256="0" * 64, uid_root=ROOT, items=3)
    return make_run(cases, corpus=corpus, started=started, finished=finished)


def _case(name: str, **observations: JSON) -> CaseRecord:
    return make_case(name, Outcome.PASSED, 1.25, **observations)


def _el(vr: str, *values: JSON) -> dict[str, JSON]:
    return {"vr": vr, "Value": list(values)}


def _values(run: RunRecord) -> list[JSON]:
    return [o.value for c in run.cases for o in c.observations]


def test_device_uids_become_tokens_by_first_appearance_and_consistently() -> None:
    run = _run(
        _case("a.py::t1", stored={"00080018": _el("UI", OTHER_DEVICE_UID), "00080016": _el("UI", CT_STORAGE)}),
        _case(
            "a.py::t2",
            first={"00080018": _el("UI", DEVICE_UID)},
            again={"0020000D": _el("UI", OTHER_DEVICE_UID, CORPUS_UID)},
        ),
    )
    stored, first, again = _values(normalise_run(run))
    assert stored == {"00080018": _el("UI", "UID#1"), "00080016": _el("UI", CT_STORAGE)}
    assert first == {"00080018": _el("UI", "UID#2")}
    assert again == {"0020000D": _el("UI", "UID#1", CORPUS_UID)}


def test_keys_ending_in_uid_or_uids_are_normalised_but_not_other_strings() -> None:
    value = {
        "sop_instance_uid": DEVICE_UID,
        "StudyInstanceUID": CORPUS_UID,
        "transaction_uids": [OTHER_DEVICE_UID, DEVICE_UID],
        "empty_uid": "",
        "not_a_key": DEVICE_UID,
        "nested": {"affected_sop_instance_uid": DEVICE_UID},
    }
    (out,) = _values(normalise_run(_run(_case("a.py::t", commit=value))))
    assert out == {
        "sop_instance_uid": "UID#1",
        "StudyInstanceUID": CORPUS_UID,
        "transaction_uids": ["UID#2", "UID#1"],
        "empty_uid": "",
        "not_a_key": DEVICE_UID,  # only UI elements and *uid keys hold UIDs
        "nested": {"affected_sop_instance_uid": "UID#1"},
    }


def test_two_replicas_with_different_device_uids_normalise_equal() -> None:
    def replica(uids: tuple[str, str]) -> RunRecord:
        return _run(_case("a.py::t", result={"00080018": _el("UI", *uids), "00100010": _el("LO", "X")}))

    one = normalise_run(replica(("1.2.3.4", "1.2.3.5")))
    two = normalise_run(replica(("9.8.7", "9.8.6")))
    assert _values(one) == _values(two)


def test_dates_and_times_inside_the_run_window_become_tokens() -> None:
    dataset = {
        "00080020": _el("DA", "20261128"),  # run day
        "00080021": _el("DA", "20200101"),  # corpus date: kept
        "00080030": _el("TM", "101500.123456"),  # inside the window
        "00080031": _el("TM", "1003"),  # HHMM precision, inside
        "00080032": _el("TM", "153000"),  # outside
        "0008002A": _el("DT", "20261128101000"),
        "00404005": _el("DT", "20261128121000+0200"),  # 10:10 UTC: inside
        "00404011": _el("DT", "20261128121000"),  # 12:10 UTC: outside
        "00400002": _el("DA", "20261128-"),  # query range, open end
        "00400003": _el("TM", "101500.123456"),  # same value, same token
        "00400004": _el("DT", "2026", "202611", "2026112810"),  # no day: kept; to the hour: inside
    }
    (out,) = _values(normalise_run(_run(_case("a.py::t", mwl=dataset))))
    assert out == {
        "00080020": _el("DA", "DATE#1"),
        "00080021": _el("DA", "20200101"),
        "00080030": _el("TM", "TIME#1"),
        "00080031": _el("TM", "TIME#2"),
        "00080032": _el("TM", "153000"),
        "0008002A": _el("DT", "DATETIME#1"),
        "00404005": _el("DT", "DATETIME#2"),
        "00404011": _el("DT", "20261128121000"),
        "00400002": _el("DA", "DATE#1-"),
        "00400003": _el("TM", "TIME#1"),
        "00400004": _el("DT", "2026", "202611", "DATETIME#3"),
    }


def test_times_are_slack_tolerant_and_window_may_span_midnight() -> None:
    run = _run(
        _case("a.py::t", x={"00080030": _el("TM", "235700", "000300", "001000"), "00080020": _el("DA", "20261129")}),
        started="2026-11-28T23:59:00Z",
        finished="2026-11-29T00:01:00Z",
    )
    (out,) = _values(normalise_run(run))
    # 23:57 and 00:03 lie within the five minutes of slack; 00:10 does not.
    assert out == {"00080030": _el("TM", "TIME#1", "TIME#2", "001000"), "00080020": _el("DA", "DATE#1")}


def test_sequences_are_walked_and_structure_is_preserved() -> None:
    item = {"00081155": _el("UI", DEVICE_UID), "00081150": _el("UI", CT_STORAGE)}
    dataset = {
        "00081199": _el("SQ", item, copy.deepcopy(item)),
        "00100010": _el("PN", {"Alphabetic": "Doe^Jane"}),
        "7FE00010": {"vr": "OB", "BulkDataURI": "sha256:abc"},
        "00081190": {"vr": "UI"},  # present, empty
    }
    run = _run(_case("a.py::t", commit=dataset, count=3, **{"timing.store": 0.25}))
    frozen = copy.deepcopy(_values(run))
    out = normalise_run(run)
    assert _values(run) == frozen  # the input is not changed
    commit, count, timing = _values(out)
    assert list(commit) == list(dataset)
    assert commit["00081199"]["Value"][0] == {"00081155": _el("UI", "UID#1"), "00081150": _el("UI", CT_STORAGE)}
    assert commit["00081199"]["Value"][1] == commit["00081199"]["Value"][0]
    assert commit["00100010"] == dataset["00100010"]
    assert commit["7FE00010"] == dataset["7FE00010"]
    assert commit["00081190"] == {"vr": "UI"}
    assert (count, timing) == (3, 0.25)
    assert out.manifest == run.manifest
    assert [(c.case, c.outcome, c.duration, c.message) for c in out.cases] == [
        (c.case, c.outcome, c.duration, c.message) for c in run.cases
    ]


def test_normalising_twice_changes_nothing_more() -> None:
    run = _run(_case("a.py::t", x={"00080018": _el("UI", DEVICE_UID), "00080020": _el("DA", "20261128")}))
    once = normalise_run(run)
    assert normalise_run(once) == once


def test_unparseable_run_window_leaves_dates_alone() -> None:
    run = _run(_case("a.py::t", x={"00080020": _el("DA", "20261128")}), started="", finished="")
    assert _values(normalise_run(run)) == [{"00080020": _el("DA", "20261128")}]


def test_what_normalisation_leaves_alone_is_the_same_object() -> None:
    untouched = {"00100010": _el("PN", {"Alphabetic": "Doe^Jane"}), "00080060": _el("CS", "CT")}
    item = {"00081150": _el("UI", CT_STORAGE), "00081155": _el("UI", DEVICE_UID)}
    dataset = {"00081199": _el("SQ", item), "00100010": _el("PN", {"Alphabetic": "Doe^Jane"}), "status": 0}
    run = _run(_case("a.py::same", plain=untouched, flag=True), _case("a.py::device", stored=dataset))
    out = normalise_run(run)
    same, device = out.cases
    assert same is run.cases[0]  # nothing to normalise: the case itself
    stored = device.observations[0].value
    assert stored is not dataset and stored["00081199"]["Value"][0]["00081155"] == _el("UI", "UID#1")
    # Only the path to the changed value is new; every subtree beside it is shared, not copied.
    assert stored["00100010"] is dataset["00100010"]
    assert stored["00081199"]["Value"][0]["00081150"] is item["00081150"]
    assert stored["00081199"]["Value"][0] is not item
    assert dataset["00081199"]["Value"][0]["00081155"] == _el("UI", DEVICE_UID)  # the input is not changed


def test_a_case_whose_values_hold_nothing_to_normalise_is_the_same_object() -> None:
    value = {"note": "{'vr': 'UI'}", "key_uid": CORPUS_UID, "list": [1, 2.5, None, "x"]}
    run = _run(_case("a.py::t", x=value))
    assert normalise_run(run).cases[0] is run.cases[0]
