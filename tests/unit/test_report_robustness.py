"""The robustness parts of the reports: each input's reaction before and after in report.html, and the terminal."""

from __future__ import annotations

import json
from pathlib import Path

from harness.compare.engine import compare
from harness.compare.policy import ExpectedChange, Policy
from harness.compare.robustness import input_of
from harness.model import (
    CaseRecord,
    Comparison,
    InputReactions,
    Manifest,
    Observation,
    Outcome,
    Reaction,
    Revival,
    RobustnessSetup,
    RunRecord,
    Security,
)
from harness.report import summary_table, write_reports
from harness.report._view import EDGE, build_page
from harness.report.html import render_html
from tests.factories import make_case, make_reference_run
from tests.report_tables import table_rows

HOSTILE = "pdu.<x>&'"
# Input id -> (reaction kind, when, detail, answers C-ECHO after) in baseline 1, baseline 2 and the candidate.
_R = tuple[str, str, str, bool]
ABORT: _R = ("aborted", "immediate", "A-ABORT source 0 reason 0", True)
CLOSED: _R = ("closed", "immediate", "EOF", True)
REJECTED: _R = ("rejected", "immediate", "A-ASSOCIATE-RJ result 1 source 2 reason 2", True)
NOT_SENT: _R = ("not-sent", "immediate", "", True)
EXITED: _R = ("exited", "immediate", "exit code 70", False)
HUNG: _R = ("unresponsive", "delayed", "no C-ECHO answer", False)
ANSWERED: _R = ("answered", "immediate", "status 0xC311 (failure)", True)
SEVERITY = {"aborted": 0, "closed": 0, "rejected": 0, "not-sent": 0, "answered": 0, "silent": 1, "unresponsive": 2}
SEVERITY["exited"] = 3
CORPUS: dict[str, tuple[_R, _R, _R]] = {
    "pdu.rq.version-0": (REJECTED, REJECTED, REJECTED),
    HOSTILE: (ABORT, ABORT, ABORT),
    "pdu.rq.truncated-fin": (ABORT, ABORT, CLOSED),
    "pdu.pdata.over-max": (NOT_SENT, NOT_SENT, EXITED),
    "pdu.rq.unknown-type": (ABORT, CLOSED, CLOSED),
    "ds.find.sq-unterminated": (HUNG, HUNG, ANSWERED),
}
DESCRIBED = {i: f"the input {i} <b>described</b>" for i in CORPUS}


def case_of(input_id: str) -> str:
    return f"robustness/test_corpus.py::test_input[{input_id}]"


def _case(input_id: str, reaction: _R) -> CaseRecord:
    kind, when, detail, echo = reaction
    return CaseRecord(
        case_of(input_id),
        Outcome.PASSED,
        observations=(
            Observation("robustness.reaction", {"kind": kind, "when": when}),
            Observation("robustness.detail", detail),
            Observation("robustness.severity", SEVERITY[kind], Security.EXPOSURE),
            Observation("robustness.answers_echo", echo, Security.PROTECTION),
            Observation("timing.robustness.seconds", 0.01),
        ),
    )


def _runs(corpus: dict[str, tuple[_R, _R, _R]] = CORPUS) -> tuple[list[RunRecord], RunRecord]:
    def run(role: str, replica: int, which: int) -> RunRecord:
        revivals = tuple(Revival(i, r[which][0], r[which][2]) for i, r in corpus.items() if r[which][0] == "exited")
        setup = RobustnessSetup("1", "ab" * 32, tuple(corpus), revivals, descriptions=DESCRIBED)
        cases = [make_case("echo/test_echo.py::test_echo", status=0)]
        cases += [_case(i, r[which]) for i, r in corpus.items()]
        return make_reference_run(cases, role, replica, robustness=setup)

    return [run("baseline", 1, 0), run("baseline", 2, 1)], run("candidate", 1, 2)


def compared(policy: Policy | None = None) -> tuple[Comparison, list[Manifest]]:
    """CORPUS compared (the browser test renders it too), and the runs' manifests."""
    baselines, candidate = _runs()
    comparison = compare(baselines, candidate, policy or Policy(), created="2026-11-30T10:00:00+00:00")
    return comparison, [r.manifest for r in (*baselines, candidate)]


def _rows(page: str) -> list[list[str]]:
    return table_rows(page, "robustness")


def test_compare_keeps_every_runs_reaction_in_corpus_order_with_its_description() -> None:
    comparison, _ = compared()
    assert [r.input for r in comparison.robustness] == list(CORPUS)
    over = {r.input: r for r in comparison.robustness}["pdu.pdata.over-max"]
    assert over == InputReactions(
        case_of("pdu.pdata.over-max"),
        "pdu.pdata.over-max",
        DESCRIBED["pdu.pdata.over-max"],
        (Reaction("not-sent", "immediate", ""),) * 2,
        Reaction("exited", "immediate", "exit code 70"),
    )
    # comparison.json carries it and reads it back; a comparison without a robustness phase does not have the key.
    assert Comparison.from_json(json.loads(json.dumps(comparison.to_json()))) == comparison
    plain = compare([make_reference_run([make_case("echo/t.py::t", status=0)])], make_reference_run([], "candidate"))
    assert plain.robustness == () and "robustness" not in plain.to_json()


def test_the_table_has_one_row_per_input_changes_first_with_both_reactions() -> None:
    comparison, runs = compared()
    rows = _rows(render_html(comparison, runs))
    assert [r[0].split(" ", 1)[0] for r in rows] == [
        "pdu.pdata.over-max",  # loosened
        "ds.find.sq-unterminated",  # tightened
        "pdu.rq.truncated-fin",  # changed: another reaction of the same severity
        "pdu.rq.unknown-type",  # noisy: the baselines differ
        "pdu.rq.version-0",  # unchanged, in corpus order
        HOSTILE,
    ]
    over, hang, fin, noisy, version, _ = rows
    assert over == [
        f"pdu.pdata.over-max {DESCRIBED['pdu.pdata.over-max']}",
        "not-sent immediate",
        "exited immediate exit code 70",
        "yes → no",
        "loosened",
        "Regressed",
    ]
    assert hang[1:] == [
        "unresponsive delayed no C-ECHO answer",
        "answered immediate status 0xC311 (failure)",
        "no → yes",
        "tightened",
        "Regressed",
    ]
    assert fin[1:] == [
        "aborted immediate A-ABORT source 0 reason 0",
        "closed immediate EOF",
        "yes",
        "changed",
        "Regressed",
    ]
    assert noisy[1:] == [
        "noisy the baseline runs differ: aborted immediate A-ABORT source 0 reason 0 closed immediate EOF",
        "closed immediate EOF",
        "yes",
        "noisy",
        "Unchanged",
    ]
    assert version[4:] == ["unchanged", "Unchanged"]


def test_a_declared_fix_reads_tightened_with_its_case_changed_as_expected() -> None:
    policy = Policy((ExpectedChange("robustness/*sq-unterminated*", "*", "fixes the hang", ticket="SEC-41"),))
    comparison, runs = compared(policy)
    (hang,) = [r for r in _rows(render_html(comparison, runs)) if r[0].startswith("ds.find")]
    assert hang[4:] == ["tightened", "Changed as expected"]


def test_ids_and_descriptions_are_escaped() -> None:
    comparison, runs = compared()
    page = render_html(comparison, runs)
    assert "<code>pdu.&lt;x&gt;&amp;&#39;</code>" in page
    assert "the input pdu.&lt;x&gt;&amp;&#39; &lt;b&gt;described&lt;/b&gt;" in page
    assert "<x>" not in page and "<b>described" not in page


def test_revivals_are_said_per_run() -> None:
    comparison, runs = compared()
    page = render_html(comparison, runs)
    assert "<li>baseline 1: none</li><li>baseline 2: none</li>" in page
    assert "<li>candidate 1: revived after pdu.pdata.over-max (exited: exit code 70)</li>" in page
    # Without manifests (a comparison.json read alone) the table stands, the revivals are not guessed.
    alone = build_page(comparison, [])
    assert alone.robustness is not None and alone.robustness.runs == ()
    assert alone.robustness.said == "6 inputs: 1 loosened, 1 tightened, 1 changed, 1 noisy, 2 unchanged"


def test_a_case_without_a_reaction_says_why() -> None:
    baselines, candidate = _runs(
        {"pdu.pdata.over-max": (NOT_SENT, NOT_SENT, EXITED), "ds.store.uid-slash": (ABORT,) * 3}
    )
    skipped = CaseRecord(case_of("ds.store.uid-slash"), Outcome.SKIPPED, message="revivals exhausted")
    candidate = RunRecord(
        candidate.directory,
        candidate.manifest,
        tuple(skipped if c.case == skipped.case else c for c in candidate.cases),
    )
    comparison = compare(baselines, candidate)
    (slash,) = [r for r in _rows(render_html(comparison, [])) if r[0].startswith("ds.store")]
    assert slash[2] == "skipped" and slash[4] == "changed", slash
    assert "robustness ds.store.uid-slash: aborted → skipped (changed)" in summary_table(comparison)


def test_the_terminal_names_each_input_whose_reaction_moved() -> None:
    comparison, _ = compared()
    text = summary_table(comparison)
    lines = [line for line in text.splitlines() if line.startswith("robustness ")]
    assert lines == [
        "robustness pdu.pdata.over-max: not-sent → exited (loosened)",
        "robustness ds.find.sq-unterminated: unresponsive → answered (tightened)",
        "robustness pdu.rq.truncated-fin: aborted → closed (changed)",
    ]


def test_the_terminal_tells_same_kinds_apart_by_detail_and_says_a_lost_echo() -> None:
    other_exit: _R = ("exited", "immediate", "signal 11", False)
    quiet: _R = ("aborted", "immediate", "A-ABORT source 0 reason 0", False)
    baselines, candidate = _runs({"a.exit": (EXITED, EXITED, other_exit), "a.echo": (ABORT, ABORT, quiet)})
    lines = [x for x in summary_table(compare(baselines, candidate)).splitlines() if x.startswith("robustness ")]
    assert lines == [
        "robustness a.echo: aborted → aborted, C-ECHO after yes → no (loosened)",
        "robustness a.exit: exited: exit code 70 → exited: signal 11 (changed)",
    ]


def test_nothing_is_said_when_no_reaction_changed(tmp_path: Path) -> None:
    baselines, candidate = _runs({"pdu.rq.version-0": (REJECTED,) * 3})
    comparison = compare(baselines, candidate)
    assert "robustness " not in summary_table(comparison)
    page = write_reports(comparison, tmp_path, [r.manifest for r in (*baselines, candidate)])["html"]
    assert "id='robustness'" in page.read_text(encoding="utf-8")


def test_without_robustness_the_page_has_no_section_and_no_section_styles() -> None:
    base = make_reference_run([make_case("echo/t.py::t", status=0)])
    cand = make_reference_run([make_case("echo/t.py::t", status=0)], role="candidate")
    comparison = compare([base], cand)
    page = render_html(comparison, [base.manifest, cand.manifest])
    assert build_page(comparison, []).robustness is None
    assert "id='robustness'" not in page and ".r-loosened" not in page
    assert ".r-loosened" in render_html(*compared())


def test_the_input_is_the_cases_parameter() -> None:
    assert input_of("robustness/test_corpus.py::test_input[pdu.rq.version-0]") == "pdu.rq.version-0"
    assert input_of("robustness/test_corpus.py::test_input[a::b[c]]") == "a::b[c]"
    assert input_of("other/test_x.py::test_y") == "other/test_x.py::test_y"


def test_an_input_at_a_timings_edge_reads_unchanged_and_says_why() -> None:
    """Silent at the deadline where the baselines answered within the timing rule of it: both shown, and why."""
    slow: _R = ("answered", "delayed", "status 0x0000 (success)", True)
    silent: _R = ("silent", "delayed", "no answer before the deadline", True)
    baselines, candidate = _runs({"ds.store.nesting-5000": (slow, slow, silent), "pdu.rq.version-0": (REJECTED,) * 3})
    comparison = compare(baselines, candidate, Policy())
    edge, same = _rows(render_html(comparison, [r.manifest for r in (*baselines, candidate)]))
    assert edge == [
        "ds.store.nesting-5000",
        "answered delayed status 0x0000 (success)",
        "silent delayed no answer before the deadline",
        "yes",
        f"unchanged {EDGE}",
        "Unchanged",
    ]
    assert same[4] == "unchanged"  # alike reactions need no word
