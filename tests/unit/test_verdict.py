"""The verdict: each of the four outcomes through compare(), and each reason to be INCONCLUSIVE."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.compare.engine import NOISE_REASON, compare
from harness.compare.policy import ExpectedChange, Policy, load_policy
from harness.model import (
    JSON,
    CaseRecord,
    CaseStatus,
    Classification,
    Comparison,
    DiffKind,
    Direction,
    Interval,
    MetricComparison,
    Observation,
    Outcome,
    PerfDecision,
    Revival,
    RobustnessSetup,
    RunRecord,
    RunStatus,
    Security,
    Spread,
    Verdict,
)
from harness.verdict import decide
from tests.factories import make_case, make_run


def _suite(n: int = 4, **changes: JSON) -> list[CaseRecord]:
    """n echo cases; `changes` overrides observations of case 0."""
    return [make_case(f"echo/test_echo.py::test_{i}", **{"status": 0, **(changes if i == 0 else {})}) for i in range(n)]


def _baselines(*replicas: Sequence[CaseRecord]) -> list[RunRecord]:
    return [make_run(cases, replica=i) for i, cases in enumerate(replicas, start=1)]


def _candidate(cases: Sequence[CaseRecord], **fields: Any) -> RunRecord:
    return make_run(cases, "candidate", **fields)


def _check_one_line(comparison: Comparison) -> None:
    assert comparison.reasons
    assert all(r and "\n" not in r for r in comparison.reasons)


def test_unchanged() -> None:
    c = compare(_baselines(_suite(), _suite()), _candidate(_suite()), created="2026-11-28T11:00:00+00:00")
    assert (c.verdict, c.verdict.exit_code) == (Verdict.UNCHANGED, 0)
    assert {x.status for x in c.cases} == {CaseStatus.UNCHANGED}
    assert [x.case for x in c.cases] == sorted(x.case for x in c.cases)
    assert (c.baseline, c.candidate, c.created) == (
        ("runs/baseline-1", "runs/baseline-2"),
        "runs/candidate-1",
        "2026-11-28T11:00:00+00:00",
    )
    assert (c.baseline_variant, c.candidate_variant, c.device) == ("before", "after", "dev")
    _check_one_line(c)


def test_noise_is_masked_and_the_verdict_stays_unchanged() -> None:
    c = compare(_baselines(_suite(port=1), _suite(port=2)), _candidate(_suite(port=3)))
    assert c.verdict is Verdict.UNCHANGED
    (d,) = c.cases[0].differences
    assert (d.path, d.classification, d.reason) == ("port", Classification.NOISE, NOISE_REASON)
    assert c.cases[0].status is CaseStatus.UNCHANGED


def test_changed_as_expected() -> None:
    policy = Policy((ExpectedChange("echo/*::test_0", "status", "TLS now required", ticket="SEC-12"),))
    c = compare(_baselines(_suite()), _candidate(_suite(status=0x0122)), policy)
    assert (c.verdict, c.verdict.exit_code) == (Verdict.CHANGED_AS_EXPECTED, 0)
    (d,) = c.cases[0].differences
    assert (d.kind, d.classification, d.reason) == (
        DiffKind.STATUS_CHANGED,
        Classification.EXPECTED,
        "TLS now required (SEC-12)",
    )
    assert c.cases[0].status is CaseStatus.CHANGED_AS_EXPECTED
    assert any("TLS now required (SEC-12)" in r for r in c.reasons)
    _check_one_line(c)


def test_regressed_names_each_case_and_path() -> None:
    cand = _suite(status=0xA700)
    cand[2] = make_case(cand[2].case, Outcome.FAILED, status=0)
    c = compare(_baselines(_suite(), _suite()), _candidate(cand))
    assert (c.verdict, c.verdict.exit_code) == (Verdict.REGRESSED, 1)
    assert [x.status for x in c.cases] == [
        CaseStatus.REGRESSED,
        CaseStatus.UNCHANGED,
        CaseStatus.REGRESSED,
        CaseStatus.UNCHANGED,
    ]
    assert c.reasons == (
        "regressed: echo/test_echo.py::test_0: status status_changed (0x0000 → 0xA700)",
        "regressed: echo/test_echo.py::test_2: outcome status_changed (passed → failed)",
    )


def test_a_policy_does_not_excuse_what_it_does_not_match() -> None:
    policy = Policy((ExpectedChange("*", "status", "r", DiffKind.VALUE_CHANGED),))
    c = compare(_baselines(_suite()), _candidate(_suite(status=0xA700)), policy)
    assert c.verdict is Verdict.REGRESSED


def test_regressed_reasons_are_capped() -> None:
    base = [make_case(f"c.py::t{i:02}", v=0) for i in range(30)]
    cand = [make_case(f"c.py::t{i:02}", v=1) for i in range(30)]
    c = compare(_baselines(base), _candidate(cand))
    assert c.verdict is Verdict.REGRESSED
    assert len(c.reasons) == 21
    assert c.reasons[-1].startswith("... and 10 more regressed cases")


def test_not_applicable_and_skipped_in_both_runs() -> None:
    base = [*_suite(), make_case("mwl/t.py::na", Outcome.NOT_APPLICABLE), make_case("mwl/t.py::sk", Outcome.SKIPPED)]
    cand = [
        *_suite(),
        make_case("mwl/t.py::na", Outcome.NOT_APPLICABLE),
        make_case("mwl/t.py::sk", Outcome.NOT_APPLICABLE),
    ]
    c = compare(_baselines(base), _candidate(cand))
    statuses = {x.case: x.status for x in c.cases}
    assert statuses["mwl/t.py::na"] is statuses["mwl/t.py::sk"] is CaseStatus.NOT_APPLICABLE
    assert c.verdict is Verdict.UNCHANGED


def test_a_case_that_became_not_applicable_is_a_regression() -> None:
    base = [*_suite(10), make_case("mwl/t.py::find", status=0)]
    cand = [*_suite(10), make_case("mwl/t.py::find", Outcome.NOT_APPLICABLE)]
    c = compare(_baselines(base), _candidate(cand))
    assert c.verdict is Verdict.REGRESSED
    assert {x.case: x.status for x in c.cases}["mwl/t.py::find"] is CaseStatus.REGRESSED


def test_inconclusive_when_a_run_did_not_complete() -> None:
    base = _baselines(_suite(), _suite())
    cand = _candidate(
        _suite(), status=RunStatus.DEVICE_CRASHED, status_detail="device exited with code 139\nSegmentation fault"
    )
    c = compare(base, cand)
    assert (c.verdict, c.verdict.exit_code) == (Verdict.INCONCLUSIVE, 2)
    assert c.reasons == (
        "candidate run 1 (runs/candidate-1) did not complete (device_crashed): device exited with code 139"
        " | Segmentation fault",
    )

    failed = make_run([], replica=2, status=RunStatus.DEVICE_FAILED, status_detail="no C-ECHO answer in 30 s")
    verdict, reasons = decide([base[0], failed], _candidate(_suite()), [], noisy_cases=())
    assert verdict is Verdict.INCONCLUSIVE
    assert "baseline run 2 (runs/baseline-2) did not complete (device_failed): no C-ECHO answer in 30 s" in reasons


def test_inconclusive_when_the_candidate_or_a_baseline_ran_nomake_case() -> None:
    nothing = [make_case(f"c.py::t{i}", Outcome.SKIPPED) for i in range(4)]
    c = compare(_baselines(_suite()), _candidate(nothing))
    assert c.verdict is Verdict.INCONCLUSIVE
    assert c.reasons == ("candidate run 1 (runs/candidate-1) ran no case (4 recorded, none passed, failed or errored)",)

    c = compare(_baselines(_suite(), []), _candidate(_suite()))
    assert c.verdict is Verdict.INCONCLUSIVE
    assert c.reasons[0].startswith("baseline run 2 (runs/baseline-2) ran no case")

    c = compare([], _candidate(_suite()))
    assert c.verdict is Verdict.INCONCLUSIVE
    assert c.reasons == ("no baseline run to compare against",)


def test_inconclusive_when_the_candidate_ran_under_ninety_percent() -> None:
    base = _suite(10)
    c = compare(_baselines(base), _candidate(base[:8]))
    assert c.verdict is Verdict.INCONCLUSIVE
    assert c.reasons == ("candidate run 1 (runs/candidate-1) ran 8 case(s), fewer than 90% of the 10 the baseline ran",)
    # Nine of ten is enough to judge: the missing case is then a regression.
    assert compare(_baselines(base), _candidate(base[:9])).verdict is Verdict.REGRESSED
    # Errors count as run: the device was exercised.
    errored = [make_case(x.case, Outcome.ERROR) for x in base]
    assert compare(_baselines(base), _candidate(errored)).verdict is Verdict.REGRESSED


def test_inconclusive_when_the_baselines_disagree_on_more_than_half_the_cases() -> None:
    one = [make_case(f"c.py::t{i}", v=0) for i in range(4)]
    two = [make_case(f"c.py::t{i}", v=1 if i < 3 else 0) for i in range(4)]
    c = compare(_baselines(one, two), _candidate(one))
    assert c.verdict is Verdict.INCONCLUSIVE
    assert c.reasons == ("the baseline replicas disagree on 3 of 4 cases: the device is too noisy to compare",)
    # decide() judges the noise compare() measured; it measures nothing itself.
    noisy = {f"c.py::t{i}" for i in range(3)}
    assert decide(_baselines(one, two), _candidate(one), c.cases, noisy_cases=noisy)[0] is Verdict.INCONCLUSIVE
    assert decide(_baselines(one, two), _candidate(one), c.cases, noisy_cases=())[0] is Verdict.UNCHANGED
    # Half is still comparable.
    two_half = [make_case(f"c.py::t{i}", v=1 if i < 2 else 0) for i in range(4)]
    assert compare(_baselines(one, two_half), _candidate(one)).verdict is Verdict.UNCHANGED


def test_several_problems_are_all_reported() -> None:
    base = _baselines(make_run([]).cases)
    cand = _candidate([], status=RunStatus.INTERRUPTED)
    verdict, reasons = decide(base, cand, [], noisy_cases=())
    assert verdict is Verdict.INCONCLUSIVE
    assert len(reasons) == 3  # candidate interrupted, and neither run ran a case


def test_a_regressed_case_is_one_reason_line_with_its_count() -> None:
    base = [make_case("c.py::t", v=0), make_case("c.py::u", v=0)]
    cand = [make_case("c.py::t", Outcome.FAILED, v=1), make_case("c.py::u", v=0)]
    c = compare(_baselines(base), _candidate(cand))
    assert len(c.reasons) == 1
    assert c.reasons[0].startswith("regressed: c.py::t: ")
    assert c.reasons[0].endswith("(+1 more)")


TLS1 = "tls/test_tls.py::test_protocol_version[TLSv1]"
PLAIN = "tls/test_tls.py::test_plain_tcp"


def _tls(v1: bool, plain: bool) -> list[CaseRecord]:
    """The echo suite plus two security cases: TLSv1 accepted, plain TCP admitted (both exposure)."""
    tagged = [
        CaseRecord(TLS1, Outcome.PASSED, observations=(Observation("accepted", v1, Security.EXPOSURE),)),
        CaseRecord(PLAIN, Outcome.PASSED, observations=(Observation("admitted", plain, Security.EXPOSURE),)),
    ]
    return [*_suite(), *tagged]


def _tls_policy(tmp_path: Path, allow: str = "") -> tuple[Policy, Path]:
    path = tmp_path / "policy.toml"
    path.write_text(f'# TLS rework\n[[expected]]\ncase = "tls/*"\npath = "*"\nreason = "TLS rework"\n{allow}')
    return load_policy(path), path


def test_a_loosening_nothing_declares_is_named_first_in_security_words() -> None:
    c = compare(_baselines(_tls(False, True)), _candidate(_tls(True, True)))
    assert c.verdict is Verdict.REGRESSED
    assert c.reasons == (f"{TLS1}: security loosened: accepted false → true",)


def test_a_policy_entry_without_allow_loosening_does_not_cover_a_loosening(tmp_path: Path) -> None:
    policy, path = _tls_policy(tmp_path)
    # TLSv1 now accepted (loosened) and plain TCP refused (tightened): one entry matches both.
    c = compare(_baselines(_tls(False, True)), _candidate(_tls(True, False)), policy)
    assert (c.verdict, c.verdict.exit_code) == (Verdict.REGRESSED, 1)
    line = f"{TLS1}: security loosened: accepted false → true (policy entry at {path}:2 matches but does not allow loosening)"
    assert c.reasons == (line,)
    statuses = {x.case: x for x in c.cases}
    (d,) = statuses[TLS1].differences
    assert (d.classification, d.reason) == (
        Classification.REGRESSED,
        f"policy entry at {path}:2 matches but does not allow loosening",
    )
    # The tightening follows the normal rules: declared, so expected.
    assert statuses[PLAIN].status is CaseStatus.CHANGED_AS_EXPECTED
    posture = {(s.case, s.direction): s for s in c.security}
    assert posture[(TLS1, Direction.LOOSENED)].expected is False
    assert posture[(PLAIN, Direction.TIGHTENED)].expected is True
    assert posture[(PLAIN, Direction.TIGHTENED)].reason == "TLS rework"
    _check_one_line(c)


def test_a_policy_entry_with_allow_loosening_covers_it(tmp_path: Path) -> None:
    policy, _ = _tls_policy(tmp_path, "allow_loosening = true\n")
    c = compare(_baselines(_tls(False, True)), _candidate(_tls(True, True)), policy)
    assert (c.verdict, c.verdict.exit_code) == (Verdict.CHANGED_AS_EXPECTED, 0)
    (change,) = [s for s in c.security if s.direction is Direction.LOOSENED]
    assert (change.expected, change.reason) == (True, "TLS rework")
    assert f"{TLS1}: security loosened as the policy allows: accepted false → true (TLS rework)" in c.reasons
    _check_one_line(c)


def test_an_undeclared_tightening_regresses_like_any_change() -> None:
    c = compare(_baselines(_tls(False, True)), _candidate(_tls(False, False)))
    assert c.verdict is Verdict.REGRESSED
    assert c.reasons == (f"regressed: {PLAIN}: admitted value_changed (true → false)",)
    (change,) = [s for s in c.security if s.case == PLAIN]
    assert (change.direction, change.expected) == (Direction.TIGHTENED, False)


def test_loosenings_come_before_other_regressions_and_the_cap_counts_cases() -> None:
    base = [*(make_case(f"c.py::t{i:02}", v=0) for i in range(30)), *_tls(False, True)]
    cand = [*(make_case(f"c.py::t{i:02}", v=1) for i in range(30)), *_tls(True, True)]
    c = compare(_baselines(base), _candidate(cand))
    assert c.reasons[0] == f"{TLS1}: security loosened: accepted false → true"
    assert c.reasons[1].startswith("regressed: c.py::t00: ")
    assert len(c.reasons) == 21
    assert c.reasons[-1] == "... and 11 more regressed cases (see the report)"


def _metric(metric: str, decision: PerfDecision, reason: str, declared_reason: str = "") -> MetricComparison:
    """A compared metric as harness.compare.performance makes one; only what the verdict reads matters here."""
    spreads = (
        Spread("baseline-1", 10, 2, (), ()),
        Spread("baseline-2", 10, 2, (), ()),
        Spread("candidate-1", 10, 2, (), ()),
    )
    one = Interval(1.0, 1.0)
    return MetricComparison(
        metric, "s/op", 1.0, one, (one, one), 1.0, one, 0.1, None, decision, reason, spreads,
        declared_reason=declared_reason,
    )  # fmt: skip


def test_performance_regressions_follow_the_regressed_cases() -> None:
    cand = _suite(status=0xA700)
    base = _baselines(_suite(), _suite())
    c = compare(base, _candidate(cand))
    slow = _metric("store.study", PerfDecision.REGRESSED, "store.study 1.21x [1.16, 1.27], threshold 1.10x")
    verdict, reasons = decide(base, _candidate(cand), c.cases, noisy_cases=(), performance=[slow])
    assert verdict is Verdict.REGRESSED
    assert reasons == (*c.reasons, "performance: store.study 1.21x [1.16, 1.27], threshold 1.10x")


def test_a_declared_slowdown_joins_the_expected_changes_and_a_regression_outranks_it() -> None:
    policy = Policy((ExpectedChange("echo/*::test_0", "status", "TLS now required", ticket="SEC-12"),))
    base, cand = _baselines(_suite()), _candidate(_suite(status=0x0122))
    c = compare(base, cand, policy)
    declared = _metric("store.study", PerfDecision.EXPECTED, "store.study 1.21x", "scanning (SEC-31)")
    verdict, reasons = decide(base, cand, c.cases, noisy_cases=(), performance=[declared])
    assert verdict is Verdict.CHANGED_AS_EXPECTED
    assert reasons == (*c.reasons, "performance: store.study 1.21x: as declared: scanning (SEC-31)")
    slow = _metric("find.study", PerfDecision.REGRESSED, "find.study 1.30x")
    verdict, reasons = decide(base, cand, c.cases, noisy_cases=(), performance=[declared, slow])
    assert (verdict, reasons) == (Verdict.REGRESSED, ("performance: find.study 1.30x",))


def test_performance_warnings_do_not_change_a_verdict_unless_strict() -> None:
    base, cand = _baselines(_suite(), _suite()), _candidate(_suite())
    cases = compare(base, cand).cases
    undecided = _metric("echo.latency", PerfDecision.UNDECIDED, "echo.latency 1.04x [0.95, 1.16]")
    for metrics in ((), [_metric("echo.latency", PerfDecision.UNCHANGED, "x"), _metric("a", PerfDecision.SLOWER, "y")]):
        assert decide(base, cand, cases, noisy_cases=(), performance=metrics) == decide(
            base, cand, cases, noisy_cases=()
        )
    verdict, reasons = decide(base, cand, cases, noisy_cases=(), performance=[undecided])
    assert verdict is Verdict.UNCHANGED and reasons[-1] == "warning: performance: echo.latency 1.04x [0.95, 1.16]"
    verdict, reasons = decide(base, cand, cases, noisy_cases=(), performance=[undecided], strict=True)
    assert (verdict, reasons) == (Verdict.INCONCLUSIVE, ("performance: echo.latency 1.04x [0.95, 1.16]",))


def test_a_robustness_phase_that_stopped_early_is_inconclusive_naming_why() -> None:
    finished = RobustnessSetup("1", "0" * 64, ("ds.store.sq-unterminated",))
    baselines = [make_run(_suite(), replica=i, robustness=finished) for i in (1, 2)]
    stopped = dataclasses.replace(finished, stopped="revivals exhausted: ...")
    c = compare(baselines, _candidate(_suite(), robustness=stopped))
    assert c.verdict is Verdict.INCONCLUSIVE, c.reasons
    assert c.reasons == (
        "candidate run 1 (runs/candidate-1): the robustness phase stopped early: revivals exhausted: ...",
    )
    revived = dataclasses.replace(finished, revivals=(Revival("x", "exited", "exit code 70"),))
    assert compare(baselines, _candidate(_suite(), robustness=revived)).verdict is Verdict.UNCHANGED


def test_a_worse_robustness_reaction_is_named_first_as_security_loosened() -> None:
    def case(severity: int, kind: str) -> CaseRecord:
        observations = (
            Observation("robustness.reaction", {"kind": kind, "when": "immediate"}),
            Observation("robustness.severity", severity, Security.EXPOSURE),
        )
        return CaseRecord("robustness/test_corpus.py::test_input[pdu.pdata.over-max]", Outcome.PASSED, 0.1,
                          observations=observations)  # fmt: skip

    before, after = [*_suite(), case(0, "aborted")], [*_suite(), case(3, "exited")]
    worse = compare(_baselines(before), _candidate(after))
    assert worse.verdict is Verdict.REGRESSED
    assert worse.reasons[0].startswith("robustness/test_corpus.py::test_input[pdu.pdata.over-max]: security loosened")
    better = compare(_baselines(after), _candidate(before))
    assert better.verdict is Verdict.REGRESSED  # a fix is still a change until a policy declares it
    assert [s.direction for s in better.security if s.name == "robustness.severity"] == [Direction.TIGHTENED]
    assert not any("security loosened" in r for r in better.reasons)


def test_a_silence_at_the_deadline_after_answers_near_it_is_unchanged() -> None:
    """dcmqrscp's identical rebuild in CI: a 5,000-deep nesting stored in 8.3 and 9.7 s, then silent at 10 s."""

    def case(kind: str, seconds: float) -> CaseRecord:
        observations = (
            Observation("robustness.reaction", {"kind": kind, "when": "delayed"}),
            Observation("robustness.detail", "status 0x0000 (success)" if kind == "answered" else "no answer"),
            Observation("robustness.severity", 1 if kind == "silent" else 0, Security.EXPOSURE),
            Observation("robustness.answers_echo", True, Security.PROTECTION),
            Observation("timing.robustness.seconds", seconds),
        )
        return CaseRecord("robustness/test_corpus.py::test_input[ds.store.nesting-5000]", Outcome.PASSED, 0.1,
                          observations=observations)  # fmt: skip

    baselines = _baselines([*_suite(), case("answered", 8.3)], [*_suite(), case("answered", 9.7)])
    edge = compare(baselines, _candidate([*_suite(), case("silent", 10.01)]))
    assert edge.verdict is Verdict.UNCHANGED, edge.reasons
    assert [s.direction for s in edge.security if s.name == "robustness.severity"] == [Direction.UNCHANGED]
    # Answered at once before, silent for the whole deadline now: a loosening.
    quick = _baselines([*_suite(), case("answered", 0.05)], [*_suite(), case("answered", 0.06)])
    held = compare(quick, _candidate([*_suite(), case("silent", 10.01)]))
    assert held.verdict is Verdict.REGRESSED
    assert held.reasons[0].endswith("security loosened: robustness.severity 0 → 1"), held.reasons
