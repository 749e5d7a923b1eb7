"""Runs that do not belong together (device, corpus, profile, run ids, roles, replicas, variants) are INCONCLUSIVE."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest

from harness.compare import compare
from harness.compare.belonging import mismatches
from harness.model import JSON, CaseRecord, PerfSetup, Revival, RobustnessSetup, RunRecord, RunStatus, Verdict
from tests.factories import make_case, make_corpus, make_run

_CORPUS = make_corpus(7)


def _suite(**changes: JSON) -> list[CaseRecord]:
    """Four store cases; `changes` overrides observations of case 0."""
    return [make_case(f"store/t.py::test_{i}", **{"status": 0, **(changes if i == 0 else {})}) for i in range(4)]


def _baseline(replica: int, cases: Sequence[CaseRecord] = (), **fields: Any) -> RunRecord:
    return make_run(cases or _suite(), "baseline", replica, **({"corpus": _CORPUS} | fields))


def _candidate(cases: Sequence[CaseRecord] = (), **fields: Any) -> RunRecord:
    return make_run(cases or _suite(), "candidate", **({"corpus": _CORPUS} | fields))


def _baselines(**second: Any) -> list[RunRecord]:
    """Two baseline replicas; `second` overrides manifest fields of replica 2."""
    return [_baseline(1), _baseline(2, **second)]


def _moved(run: RunRecord, directory: str) -> RunRecord:
    return dataclasses.replace(run, directory=directory)


def _check_inconclusive(baselines: Sequence[RunRecord], candidate: RunRecord, *lines: str) -> None:
    """INCONCLUSIVE with exactly these mismatch reasons first, one line each."""
    c = compare(baselines, candidate)
    assert (c.verdict, c.verdict.exit_code) == (Verdict.INCONCLUSIVE, 2), c.reasons
    assert c.reasons[: len(lines)] == tuple(f"mixed runs: {line}" for line in lines), c.reasons
    assert all("\n" not in r for r in c.reasons)


def test_a_proper_set_is_unchanged_without_warnings() -> None:
    # Another agent checks the profile out elsewhere: the path differs, the bytes (sha256) do not.
    base = _baselines(profile_path="/agent-2/devices/dev/profile.toml")
    c = compare(base, _candidate())
    assert c.verdict is Verdict.UNCHANGED
    assert not any("mixed" in r for r in c.reasons), c.reasons
    assert mismatches(base, _candidate()) == ()


def test_a_candidate_of_another_corpus_seed_is_inconclusive_not_regressed() -> None:
    candidate = _candidate(_suite(sop="1.2.3.8"), corpus=make_corpus(8))
    base = [_baseline(1, _suite(sop="1.2.3.7")), _baseline(2, _suite(sop="1.2.3.7"))]
    _check_inconclusive(
        base,
        candidate,
        "corpus differs: runs/candidate-1 (candidate) used seed 8 (sha256 080808080808), "
        "runs/baseline-1 (baseline #1) used seed 7 (sha256 070707070707)",
    )


def test_a_corpus_of_the_same_seed_but_other_bytes_or_none_recorded() -> None:
    _check_inconclusive(
        _baselines(),
        _candidate(corpus=make_corpus(7, "ab" * 32)),
        "corpus differs: runs/candidate-1 (candidate) used seed 7 (sha256 abababababab), "
        "runs/baseline-1 (baseline #1) used seed 7 (sha256 070707070707)",
    )
    _check_inconclusive(
        _baselines(),
        _candidate(corpus=None),
        "corpus differs: runs/candidate-1 (candidate) used no corpus, "
        "runs/baseline-1 (baseline #1) used seed 7 (sha256 070707070707)",
    )


def test_baselines_of_different_corpora_are_inconclusive_not_unchanged() -> None:
    _check_inconclusive(
        _baselines(corpus=make_corpus(9)),
        _candidate(),
        "corpus differs: runs/baseline-2 (baseline #2) used seed 9 (sha256 090909090909), "
        "runs/baseline-1 (baseline #1) used seed 7 (sha256 070707070707)",
    )


def test_another_device() -> None:
    _check_inconclusive(
        _baselines(),
        _candidate(device="orthanc"),
        "device differs: runs/candidate-1 (candidate) is 'orthanc', runs/baseline-1 (baseline #1) is 'dev'",
    )


def test_another_profile() -> None:
    _check_inconclusive(
        _baselines(),
        _candidate(profile_path="q.toml", profile_sha256="1" * 64),
        "profile differs: runs/candidate-1 (candidate) ran q.toml (sha256 111111111111), "
        "runs/baseline-1 (baseline #1) ran p.toml (sha256 000000000000)",
    )


def test_a_run_compared_with_itself() -> None:
    run = _baseline(1)
    _check_inconclusive(
        [run],
        run,
        "run id 'baseline-1' given 2 times: runs/baseline-1 (baseline #1), runs/baseline-1 (candidate)",
        "runs/baseline-1 is a 'baseline' run, given as the candidate",
    )


def test_a_baseline_given_twice() -> None:
    run = _baseline(1)
    _check_inconclusive(
        [run, run],
        _candidate(),
        "run id 'baseline-1' given 2 times: runs/baseline-1 (baseline #1), runs/baseline-1 (baseline #2)",
    )


def test_the_candidate_also_given_as_a_baseline() -> None:
    candidate = _candidate()
    _check_inconclusive(
        [_baseline(1), candidate],
        candidate,
        "run id 'candidate-1' given 2 times: runs/candidate-1 (baseline #2), runs/candidate-1 (candidate)",
        "runs/candidate-1 is a 'candidate' run, given as baseline #2",
    )


def test_roles_swapped() -> None:
    # Copies of a candidate run given as a baseline, of a baseline run as the candidate: run ids are distinct.
    base = [_baseline(1), make_run(_suite(), "candidate", 2, corpus=_CORPUS, variant="before")]
    _check_inconclusive(base, _candidate(), "runs/candidate-2 is a 'candidate' run, given as baseline #2")
    _check_inconclusive(
        _baselines(),
        _baseline(3, variant="after"),
        "runs/baseline-3 is a 'baseline' run, given as the candidate",
    )


def test_baseline_replicas_must_be_distinct() -> None:
    # Two runs made as replica 1 (say on two CI agents): distinct run ids, one replica number.
    other = _moved(_baseline(1, run_id="baseline-1-agent2"), "agent2/baseline-1")
    _check_inconclusive(
        [_baseline(1), other],
        _candidate(),
        "baseline replica 1 given 2 times: runs/baseline-1 (baseline #1), agent2/baseline-1 (baseline #2)",
    )


def test_baselines_of_different_variants() -> None:
    _check_inconclusive(
        _baselines(variant="1.1"),
        _candidate(),
        "baseline variant differs: runs/baseline-2 (baseline #2) ran '1.1', runs/baseline-1 (baseline #1) ran 'before'",
    )


def test_every_mismatch_is_named_one_line_each() -> None:
    c = compare(_baselines(corpus=make_corpus(9)), _candidate(device="orthanc", profile_sha256="1" * 64))
    assert c.verdict is Verdict.INCONCLUSIVE
    mixed = [r for r in c.reasons if r.startswith("mixed runs: ")]
    assert [r.split(":")[1].strip() for r in mixed] == [
        "device differs",
        "profile differs",
        "corpus differs",
    ], c.reasons


def test_a_mixed_set_that_also_crashed_names_both() -> None:
    c = compare(_baselines(), _candidate(device="orthanc", status=RunStatus.DEVICE_CRASHED))
    assert c.verdict is Verdict.INCONCLUSIVE
    assert c.reasons[0].startswith("mixed runs: device differs")
    assert any("did not complete (device_crashed)" in r for r in c.reasons)


@pytest.mark.parametrize(
    ("candidate", "verdict"),
    [
        (_candidate(_suite(sop="1.2.3.8"), corpus=make_corpus(8)), Verdict.REGRESSED),
        (_candidate(corpus=make_corpus(8)), Verdict.UNCHANGED),
    ],
    ids=["regressed", "unchanged"],
)
def test_allow_mixed_warns_and_the_differences_decide(candidate: RunRecord, verdict: Verdict) -> None:
    base = [_baseline(1, _suite(sop="1.2.3.7")), _baseline(2, _suite(sop="1.2.3.7"))]
    if verdict is Verdict.UNCHANGED:
        base = _baselines()
    c = compare(base, candidate, allow_mixed=True)
    assert c.verdict is verdict, c.reasons
    warning = (
        "warning: mixed runs allowed: corpus differs: runs/candidate-1 (candidate) used seed 8 "
        "(sha256 080808080808), runs/baseline-1 (baseline #1) used seed 7 (sha256 070707070707)"
    )
    assert warning in c.reasons
    assert not any(r.startswith("mixed runs: ") for r in c.reasons)


def test_allow_mixed_does_not_excuse_a_run_that_did_not_complete() -> None:
    c = compare(_baselines(), _candidate(device="orthanc", status=RunStatus.DEVICE_CRASHED), allow_mixed=True)
    assert c.verdict is Verdict.INCONCLUSIVE
    assert c.reasons[0].startswith("candidate run 1 (runs/candidate-1) did not complete")
    assert any(r.startswith("warning: mixed runs allowed: device differs") for r in c.reasons)


def test_a_performance_phase_in_some_runs_only_is_a_mismatch() -> None:
    setup = PerfSetup(spec={"metrics": ["*"], "threshold": 0.1, "study": "auto", "warmup_rounds": 1}, conductor="alone")
    (line,) = mismatches(_baselines(performance=setup), _candidate())
    assert line.startswith("performance phase differs: ") and "ran no performance phase" in line
    assert "measured ['*'] (threshold 0.1, study 'auto', warm-up 1 rounds)" in line
    same = [_baseline(1, performance=setup), _baseline(2, performance=setup)]
    assert mismatches(same, _candidate(performance=setup)) == ()


def test_a_robustness_phase_of_another_corpus_or_in_some_runs_only_is_a_mismatch() -> None:
    setup = RobustnessSetup("1", "ab" * 32, ("pdu.rq.version-0", "pdu.pdata.over-max"))
    both = [_baseline(1, robustness=setup), _baseline(2, robustness=setup)]
    (line,) = mismatches(both, _candidate())
    assert line.startswith("robustness corpus differs: ") and "ran no robustness phase" in line
    assert "sent 2 inputs of corpus version 1 (sha256 abababababab)" in line
    other = dataclasses.replace(setup, corpus_version="2", corpus_sha256="cd" * 32)
    (line,) = mismatches(both, _candidate(robustness=other))
    assert "corpus version 2 (sha256 cdcdcdcdcdcd)" in line
    # Revivals and an early stop are what happened, not what was asked: they do not make runs foreign.
    revived = dataclasses.replace(setup, revivals=(Revival("pdu.pdata.over-max", "exited", "exit code 70"),))
    assert mismatches(both, _candidate(robustness=revived)) == ()


def test_a_candidate_served_another_days_worklist_is_inconclusive_not_regressed() -> None:
    same = [_baseline(1, worklist_date="20261201"), _baseline(2, worklist_date="20261201")]
    (line,) = mismatches(same, _candidate(worklist_date="20261202"))
    assert line == (
        "worklist date differs: runs/candidate-1 (candidate) had its worklist scheduled on 20261202, "
        "runs/baseline-1 (baseline #1) had its worklist scheduled on 20261201 "
        "(give every run one date: `patchgate run --worklist-date YYYYMMDD`)"
    )
    assert compare(same, _candidate(worklist_date="20261202")).verdict is Verdict.INCONCLUSIVE
    assert mismatches(same, _candidate(worklist_date="20261201")) == ()
    assert mismatches(_baselines(), _candidate()) == ()  # no RIS in any run: no date to differ


def test_the_worklist_date_is_kept_only_when_a_ris_ran() -> None:
    run = _candidate(worklist_date="20261201")
    assert run.manifest.to_json()["worklist_date"] == "20261201"
    assert type(run.manifest).from_json(run.manifest.to_json()) == run.manifest
    assert "worklist_date" not in _candidate().manifest.to_json()  # a run without a RIS writes what it always did
