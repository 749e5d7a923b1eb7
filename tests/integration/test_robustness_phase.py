"""The robustness phase end to end: the reference device's robustness variants, revivals, a fix, and exhaustion.

Each validation runs the robustness suite alone (`suites.paths`) on the few inputs the test is about, against
real device processes on 127.0.0.1; devices/reference/fixes-crash.toml as shipped (every suite) is held by
tests/integration/test_shipped_profiles.py.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from harness.demo import demo_profile, demo_text
from harness.model import CaseStatus, Direction, Outcome, RunStatus, Verdict
from harness.profile import Profile, load_profile
from harness.report import summary_table
from harness.rundir import read_run
from harness.runner import RunRequest, run_variant, suites_root
from harness.validation import Validation, compare_runs, policy_for, run_validation
from tests.conftest import run_cli
from tests.report_tables import table_rows
from tests.shipped import DEVICES

OVER_MAX = "test_corpus.py::test_input[pdu.pdata.over-max]"
STORE_SQ = "test_corpus.py::test_input[ds.store.sq-unterminated]"
FIND_SQ = "test_corpus.py::test_input[ds.find.sq-unterminated]"


def _robustness_only(profile: Profile, *inputs: str, **spec: object) -> Profile:
    """`profile` with only the robustness suite, on `inputs`, with short waits (a silent input waits `deadline`).

    The health check's seconds are also the control's (the run's PACS, asked when the device fails its check).
    At 3 s (1 s each for connect, ACSE and DIMSE) CI once read the exhaustion test INCONCLUSIVE for another
    reason, which its cut message hid; a slow control is the likeliest. 6 s costs ~2.6 s per hung input only.
    """
    robustness = dataclasses.replace(
        profile.robustness, enabled=True, inputs=inputs, **{"deadline": 3.0, "health_timeout": 6.0, **spec}
    )
    return dataclasses.replace(profile, suite_paths=(str(suites_root() / "robustness"),), robustness=robustness)


def _validate(profile: Profile, out: Path, replicas: int = 1) -> Validation:
    return run_validation(profile, out, replicas=replicas)


def test_a_crash_on_an_oversized_pdu_is_regressed_as_security_loosened(tmp_path: Path) -> None:
    profile = _robustness_only(demo_profile("crash-on-oversized-pdu"), "pdu.pdata.over-max", "pdu.rq.version-0")
    validation = _validate(profile, tmp_path)
    comparison = validation.comparison
    assert comparison.verdict is Verdict.REGRESSED, comparison.reasons
    first = comparison.reasons[0]
    assert "security loosened" in first and "pdu.pdata.over-max" in first, comparison.reasons
    # Severity 0 (the clean device announces no maximum, so the input is not sent) -> 3 (exited); C-ECHO after it
    loosened = {(c.case, c.name, c.before, c.after) for c in comparison.security if c.direction is Direction.LOOSENED}
    assert loosened == {(OVER_MAX, "robustness.severity", 0, 3), (OVER_MAX, "robustness.answers_echo", True, False)}
    candidate = read_run(tmp_path / "runs" / "candidate-1")
    observed = candidate.by_case()[OVER_MAX].observed()
    assert observed["robustness.reaction"] == {"kind": "exited", "when": "immediate"}, observed
    assert observed["robustness.detail"] == "exit code 70"
    # The exit was the input's reaction, not a crashed run: the device was revived and the run completed.
    assert candidate.manifest.status is RunStatus.COMPLETED, candidate.manifest.status_detail
    robustness = candidate.manifest.robustness
    assert robustness is not None and [r.input for r in robustness.revivals] == ["pdu.pdata.over-max"]
    log = (tmp_path / "runs" / "candidate-1" / "logs" / "device.log").read_text(encoding="utf-8")
    assert "--- revived after robustness input pdu.pdata.over-max ---" in log
    # An input both devices reject the same way is unchanged.
    unchanged = {c.case for c in comparison.cases if c.status is CaseStatus.UNCHANGED}
    assert "test_corpus.py::test_input[pdu.rq.version-0]" in unchanged
    # report.html's robustness table: the loosened input first, before and after with the device's own words.
    rows = table_rows(validation.reports["html"].read_text(encoding="utf-8"), "robustness")
    assert [r[0].split(" ", 1)[0] for r in rows] == ["pdu.pdata.over-max", "pdu.rq.version-0"], rows
    over, version = rows
    assert over[0].startswith("pdu.pdata.over-max one P-DATA-TF of 4 x the maximum length"), over  # its description
    assert over[1].startswith("not-sent") and over[2] == "exited immediate exit code 70", over
    assert over[3:] == ["yes → no", "loosened", "Regressed"], over
    assert version[1] == version[2] and version[1].startswith("rejected immediate"), version
    assert version[3:] == ["yes", "unchanged", "Unchanged"], version
    lines = [line for line in summary_table(comparison).splitlines() if line.startswith("robustness ")]
    assert lines == ["robustness pdu.pdata.over-max: not-sent → exited (loosened)"]


def test_a_hang_on_an_unterminated_sequence_is_regressed_naming_both_inputs(tmp_path: Path) -> None:
    profile = _robustness_only(demo_profile("hang-on-unterminated-sequence"), "ds.*.sq-unterminated")
    comparison = _validate(profile, tmp_path).comparison
    assert comparison.verdict is Verdict.REGRESSED, comparison.reasons
    regressed = {c.case for c in comparison.cases if c.status is CaseStatus.REGRESSED}
    assert {STORE_SQ, FIND_SQ} <= regressed, regressed
    assert all(any(case in r for r in comparison.reasons) for case in (STORE_SQ, FIND_SQ)), comparison.reasons
    candidate = read_run(tmp_path / "runs" / "candidate-1")
    for case in (STORE_SQ, FIND_SQ):
        observed = candidate.by_case()[case].observed()
        assert observed["robustness.reaction"]["kind"] == "unresponsive", observed
        assert observed["robustness.answers_echo"] is False
    manifest = candidate.manifest
    assert manifest.status is RunStatus.COMPLETED, manifest.status_detail
    assert manifest.robustness is not None and manifest.robustness.stopped == ""
    assert [(r.input, r.reaction) for r in manifest.robustness.revivals] == [
        ("ds.store.sq-unterminated", "unresponsive"),
        ("ds.find.sq-unterminated", "unresponsive"),
    ]


def test_a_fixed_crash_is_a_tightening_and_changed_as_expected_with_its_policy(tmp_path: Path) -> None:
    shipped = load_profile(DEVICES / "reference" / "fixes-crash.toml")
    profile = _robustness_only(shipped, "pdu.pdata.over-max", deadline=shipped.robustness.deadline)
    alone = _validate(profile, tmp_path / "alone").comparison
    assert alone.verdict is Verdict.REGRESSED, alone.reasons  # a fix is still a change
    moved = {(c.name, c.direction) for c in alone.security if c.case == OVER_MAX}
    assert ("robustness.severity", Direction.TIGHTENED) in moved, moved
    assert ("robustness.answers_echo", Direction.TIGHTENED) in moved, moved
    assert not [c for c in alone.security if c.direction is Direction.LOOSENED]
    assert not any("security loosened" in r for r in alone.reasons), alone.reasons
    candidate = read_run(tmp_path / "alone" / "runs" / "candidate-1")
    assert candidate.by_case()[OVER_MAX].observed()["robustness.reaction"]["kind"] == "silent"
    baseline = read_run(tmp_path / "alone" / "runs" / "baseline-1")
    assert baseline.manifest.robustness is not None and len(baseline.manifest.robustness.revivals) == 1
    # The same runs under the shipped policy, as `validate --policy fixes-crash-policy.toml` would compare them.
    policy = policy_for(profile, [DEVICES / "reference" / "fixes-crash-policy.toml"])
    declared = compare_runs([baseline], candidate, policy, tmp_path / "policy")
    with_policy = declared.comparison
    assert with_policy.verdict is Verdict.CHANGED_AS_EXPECTED, with_policy.reasons
    assert any("SEC-40" in r or "fixes the crash" in r for r in with_policy.reasons), with_policy.reasons
    # The robustness table and the terminal say the fix as a tightening, declared.
    (row,) = table_rows(declared.reports["html"].read_text(encoding="utf-8"), "robustness")
    assert row[1] == "exited immediate exit code 70" and row[2].startswith("silent"), row
    assert row[3:] == ["no → yes", "tightened", "Changed as expected"], row
    lines = [line for line in summary_table(with_policy).splitlines() if line.startswith("robustness ")]
    assert lines == ["robustness pdu.pdata.over-max: exited → silent (tightened)"]


def test_the_clean_rebuild_with_the_phase_on_is_unchanged(tmp_path: Path) -> None:
    # Not the huge values: their answer (0.2-0.5 s here) could pass the 1 s `when` line on a loaded CI machine.
    inputs = ("pdu.rq.*", "pdu.pdata.*", "ds.find.sq-*", "ds.find.length-*", "ds.find.nesting-*", "ds.find.uid-*")
    profile = _robustness_only(demo_profile("clean-rebuild"), *inputs)
    comparison = _validate(profile, tmp_path, replicas=2).comparison
    assert comparison.verdict is Verdict.UNCHANGED, comparison.reasons
    candidate = read_run(tmp_path / "runs" / "candidate-1")
    ran = [c for c in candidate.cases if c.outcome is Outcome.PASSED]
    assert len(ran) >= 15, [c.case for c in candidate.cases]
    assert all(
        c.observed()["robustness.answers_echo"] is True for c in ran if "robustness.answers_echo" in c.observed()
    )
    assert candidate.manifest.robustness is not None and candidate.manifest.robustness.revivals == ()


def test_revivals_beyond_max_revivals_skip_the_rest_and_are_inconclusive(tmp_path: Path) -> None:
    inputs = ("pdu.rq.version-0", "ds.*.sq-unterminated", "ds.store.uid-slash")
    profile = _robustness_only(demo_profile("hang-on-unterminated-sequence"), *inputs, max_revivals=1)
    comparison = _validate(profile, tmp_path).comparison
    assert comparison.verdict is Verdict.INCONCLUSIVE, comparison.reasons
    assert any("revivals exhausted" in r and "max_revivals = 1" in r for r in comparison.reasons), comparison.reasons
    candidate = read_run(tmp_path / "runs" / "candidate-1")
    assert candidate.manifest.status is RunStatus.COMPLETED, candidate.manifest.status_detail
    robustness = candidate.manifest.robustness
    assert robustness is not None and [r.input for r in robustness.revivals] == ["ds.store.sq-unterminated"]
    # The second hang is still observed (unresponsive); the input after it was not sent.
    assert candidate.by_case()[FIND_SQ].observed()["robustness.reaction"]["kind"] == "unresponsive"
    skipped = candidate.by_case()["test_corpus.py::test_input[ds.store.uid-slash]"]
    assert skipped.outcome is Outcome.SKIPPED and "revivals exhausted" in skipped.message, skipped


SUPERVISED = """\
[device]
name = "supervised"
ae_title = "REFDEVICE"
services = ["echo"]

[variants.baseline]
command = ["sh", "-c", "while :; do {python} -m simulators.reference --variant crash-on-oversized-pdu --ae-title {ae_title} --port {port} --storage {workdir}/storage; sleep 0.2; done"]

[variants.candidate]
command = ["sh", "-c", "while :; do {python} -m simulators.reference --variant crash-on-oversized-pdu --ae-title {ae_title} --port {port} --storage {workdir}/storage; sleep 0.2; done"]

[robustness]
enabled = true
inputs = ["pdu.pdata.over-max"]
deadline = 3
health_timeout = 3
"""


def test_a_server_its_supervisor_restarts_is_restarted_not_revived(tmp_path: Path) -> None:
    (tmp_path / "profile.toml").write_text(SUPERVISED, encoding="utf-8")
    profile = dataclasses.replace(
        load_profile(tmp_path / "profile.toml"), suite_paths=(str(suites_root() / "robustness"),)
    )
    manifest = run_variant(RunRequest(profile, "candidate", "candidate", 1, tmp_path / "run"))
    assert manifest.status is RunStatus.COMPLETED, manifest.status_detail
    observed = read_run(tmp_path / "run").by_case()[OVER_MAX].observed()
    assert observed["robustness.reaction"]["kind"] == "restarted", observed
    assert observed["robustness.severity"] == 3
    # The device came back by itself: the harness revived nothing.
    assert manifest.robustness is not None and manifest.robustness.revivals == ()


def _phase_off_profile(tmp_path: Path, inputs: str) -> Path:
    """The reference device with the robustness suite alone and `[robustness] enabled` left false."""
    text = demo_text("clean-rebuild") + (
        f'\n[suites]\npaths = ["{suites_root() / "robustness"}"]\n\n[robustness]\ninputs = [{inputs}]\ndeadline = 3\n'
    )
    path = tmp_path / "profile.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_command_line_switches_the_phase_on(tmp_path: Path) -> None:
    profile = _phase_off_profile(tmp_path, '"pdu.rq.version-0"')
    on = run_cli(
        "run", "--profile", str(profile), "--variant", "candidate", "--robustness", "--out", str(tmp_path / "on")
    )
    assert on.code == 0, on.stderr
    run = read_run(tmp_path / "on")
    assert run.manifest.robustness is not None and run.manifest.robustness.inputs == ("pdu.rq.version-0",)
    case = run.by_case()["test_corpus.py::test_input[pdu.rq.version-0]"]
    assert case.outcome is Outcome.PASSED and case.observed()["robustness.reaction"]["kind"] == "rejected"
    off = run_cli("run", "--profile", str(profile), "--variant", "candidate", "--out", str(tmp_path / "off"))
    assert off.code == 0, off.stderr
    run = read_run(tmp_path / "off")
    assert run.manifest.robustness is None
    assert {c.message for c in run.cases} == {
        "not applicable: the robustness phase is off (enable [robustness] in the profile, or pass --robustness)"
    }


def test_inputs_that_select_nothing_are_refused_naming_the_key(tmp_path: Path) -> None:
    profile = _phase_off_profile(tmp_path, '"pdu.no-such-input*"')
    result = run_cli("run", "--profile", str(profile), "--variant", "candidate", "--robustness", "--out", str(tmp_path))
    assert result.code == 2, result.stderr
    assert "robustness.inputs ['pdu.no-such-input*'] select no corpus input" in result.stderr
    assert "hint: globs over the input ids of docs/attack-corpus.md" in result.stderr
    assert not (tmp_path / "manifest.json").exists()  # refused before anything started


def test_a_crash_outside_any_window_is_still_a_crashed_run(tmp_path: Path) -> None:
    # crash-on-find exits on the query suite's first C-FIND, long before the robustness phase opens a window.
    robustness = dataclasses.replace(demo_profile().robustness, enabled=True, inputs=("pdu.rq.version-0",))
    profile = dataclasses.replace(demo_profile("crash-on-find"), robustness=robustness)
    manifest = run_variant(RunRequest(profile, "candidate", "candidate", 1, tmp_path / "run"))
    assert manifest.status is RunStatus.DEVICE_CRASHED, manifest.status_detail
    run = read_run(tmp_path / "run")
    case = run.by_case()["robustness/test_corpus.py::test_input[pdu.rq.version-0]"]
    assert case.outcome is Outcome.SKIPPED and "outside any attack window" in case.message, case
    assert manifest.robustness is not None and manifest.robustness.revivals == ()
