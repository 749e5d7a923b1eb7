"""Reports: comparison.json round-trips, junit.xml parses with the right counts, HTML escapes, allure is valid."""

from __future__ import annotations

import dataclasses
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from markupsafe import escape

from harness.compare.engine import compare
from harness.compare.policy import ExpectedChange, Policy
from harness.errors import HarnessError
from harness.model import (
    JSON,
    CaseComparison,
    CaseRecord,
    CaseStatus,
    Classification,
    Comparison,
    Difference,
    DiffKind,
    ImageInfo,
    Manifest,
    Observation,
    Outcome,
    Revival,
    RobustnessSetup,
    RunRecord,
    RunSetup,
    Security,
    Verdict,
)
from harness.report import Reporter, reporters, summary_table, write_reports
from harness.report._attributes import named_path
from harness.report._case import split_params
from harness.report._view import _side
from harness.report.html import HtmlReporter, check_templates, render_html
from harness.report.junit import JUnitReporter
from harness.report.terminal import colour_wanted
from tests.factories import make_case, make_reference_run
from tests.synthetic import synthetic

HOSTILE = "<script>alert('x')</script> & \x01\x1b"


def _run(cases: list[CaseRecord], role: str = "baseline", replica: int = 1) -> RunRecord:
    return make_reference_run(
        cases,
        role,
        replica,
        device="reference <dev>",
        versions={"pydicom": "3.0.2", "device": "1.0"},
        finished="2026-11-28T10:02:05+00:00",
        timings={"total": 125.0},
    )


def _pn(name: str) -> dict[str, JSON]:
    return {"00100010": {"vr": "PN", "Value": [{"Alphabetic": name}]}}


def _fixture_runs() -> tuple[list[RunRecord], RunRecord]:
    def cases(variant: str) -> list[CaseRecord]:
        port = {"b1": 1, "b2": 2, "c": 3}[variant]
        after = variant == "c"
        return [
            make_case("echo/test_echo.py::test_echo", **{"echo.status": 0, "assoc": {"port": port}}),
            make_case("store/test_store.py::test_roundtrip[CT]", find=_pn(HOSTILE if after else "Doe^Jane")),
            make_case("store/test_store.py::TestCommit::test_commit", commit={"status": 0xA700 if after else 0}),
            make_case("tls/test_tls.py::test_plain", assoc={"accepted": not after}),
            make_case("mwl/test_mwl.py::test_query", Outcome.NOT_APPLICABLE),
            make_case("qr/test_find.py::test_order", matches=["B", "A"] if after else ["A", "B"]),
        ]

    return [_run(cases("b1")), _run(cases("b2"), replica=2)], _run(cases("c"), "candidate")


@pytest.fixture
def comparison() -> Comparison:
    baselines, candidate = _fixture_runs()
    policy = Policy((ExpectedChange("tls/*", "assoc.accepted", "TLS now required", ticket="SEC-12"),))
    return compare(baselines, candidate, policy, created="2026-11-28T10:05:00+00:00")


@pytest.fixture
def manifests() -> list[Manifest]:
    baselines, candidate = _fixture_runs()
    return [r.manifest for r in (*baselines, candidate)]


def test_fixture_has_every_status_and_classification(comparison: Comparison) -> None:
    # The report tests below only mean something if the comparison has a bit of everything.
    assert comparison.verdict is Verdict.REGRESSED
    assert {c.status for c in comparison.cases} == set(CaseStatus)
    assert {d.classification for c in comparison.cases for d in c.differences} == set(Classification)


def test_write_reports_writes_every_report(tmp_path: Path, comparison: Comparison, manifests: list[Manifest]) -> None:
    paths = write_reports(comparison, tmp_path / "out", manifests)
    assert set(paths) == {"json", "junit", "html", "allure"}
    assert all(p.exists() and p.is_relative_to(tmp_path / "out") for p in paths.values())
    every: tuple[Reporter, ...] = reporters()
    assert [r.name for r in every] == ["json", "junit", "html", "allure"]


def test_comparison_json_round_trips(tmp_path: Path, comparison: Comparison, manifests: list[Manifest]) -> None:
    path = write_reports(comparison, tmp_path, manifests)["json"]
    data = json.loads(path.read_text(encoding="utf-8"))
    assert Comparison.from_json(data) == comparison
    assert [Manifest.from_json(m) for m in data["runs"]] == manifests
    assert path.read_text(encoding="utf-8").startswith('{\n  "baseline"')  # sorted keys, indent 2


def test_junit_parses_with_correct_counts(tmp_path: Path, comparison: Comparison, manifests: list[Manifest]) -> None:
    root = ET.parse(write_reports(comparison, tmp_path, manifests)["junit"]).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == int(suite.get("tests", "")) == len(comparison.cases)
    failures = [c for c in cases if c.find("failure") is not None]
    skipped = [c for c in cases if c.find("skipped") is not None]
    regressed = [c for c in comparison.cases if c.status is CaseStatus.REGRESSED]
    assert len(failures) == int(suite.get("failures", "")) == len(regressed) == 3
    assert len(skipped) == int(suite.get("skipped", "")) == 1
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert (props["verdict"], props["exit_code"]) == ("REGRESSED", "1")

    by_name = {(c.get("classname"), c.get("name")): c for c in cases}
    commit = by_name[("store.test_store", "TestCommit::test_commit")]
    failure = commit.find("failure")
    assert failure is not None
    assert failure.get("message") == "TestCommit::test_commit: status 0x0000 → 0xA700"  # one line, no service known
    assert "commit.status [status_changed]: 0x0000 → 0xA700" in (failure.text or "")
    hostile = by_name[("store.test_store", "test_roundtrip[CT]")].find("failure")
    assert hostile is not None and "<script>" in (hostile.text or "")  # escaped in the file, intact when read
    assert "\x01" not in (hostile.text or "")
    tls = by_name[("tls.test_tls", "test_plain")]
    assert tls.find("failure") is None and tls.find("skipped") is None
    assert "TLS now required (SEC-12)" in (tls.findtext("system-out") or "")


def test_junit_strips_characters_xml_cannot_hold(tmp_path: Path) -> None:
    bad = "suites/t.py::test_\x01[\x1b]"
    diff = Difference(bad, "x\x0b", DiffKind.VALUE_CHANGED, 0, 1)
    case = CaseComparison(bad, CaseStatus.REGRESSED, Outcome.PASSED, Outcome.PASSED, (diff,))
    comparison = Comparison("dev\x00", ("b",), "c", Verdict.REGRESSED, ("regressed: \x02",), (case,))
    root = ET.parse(JUnitReporter().write(comparison, tmp_path, [])).getroot()
    (testcase,) = root.iter("testcase")
    assert testcase.get("name") == "test_\ufffd[\ufffd]"
    assert "x\ufffd [value_changed]: 0 → 1" in (testcase.findtext("failure") or "")


def test_html_escapes_hostile_values_and_shows_every_difference(
    tmp_path: Path, comparison: Comparison, manifests: list[Manifest]
) -> None:
    page = write_reports(comparison, tmp_path, manifests)["html"].read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "reference &lt;dev&gt;" in page
    assert "http://" not in page and "https://" not in page and "src=" not in page
    assert "Verdict: REGRESSED" in page and "Exit code 1." in page
    banner = page[page.index("<header") : page.index("</header>")]
    for reason in comparison.reasons:  # each regressed case's line becomes its test's sentence in the banner
        if not reason.startswith("regressed: "):
            assert _html(reason) in banner
    for case in comparison.cases:
        if case.status is CaseStatus.REGRESSED:
            assert _html(case.case.partition("[")[0]) in banner
        for d in case.differences:
            assert _html(named_path(d.path)) in page
            for side in (_side(d, "before", case.service), _side(d, "after", case.service)):
                assert _html(side.text if not side.dataset else side.changed[0].value) in page
    assert "0xA700" in page
    assert "<details><summary>1 difference(s) that are noise" in page
    for m in manifests:
        assert _html(m.variant) in page
    assert "2 min 5.0 s" in page


def _html(text: str) -> str:
    """Text as the report's templates escape it (Jinja2's autoescape: MarkupSafe)."""
    return str(escape(text))


def test_html_without_runs_or_differences_still_reads() -> None:
    empty = Comparison("dev", ("b",), "c", Verdict.INCONCLUSIVE, ("candidate run 1 (c) ran no case",), ())
    page = render_html(empty, [])
    assert "No run manifests were given." in page and "No differences at all." in page
    assert "Exit code 2." in page


def test_allure_results_are_valid_json_with_the_right_statuses(
    tmp_path: Path, comparison: Comparison, manifests: list[Manifest]
) -> None:
    folder = write_reports(comparison, tmp_path, manifests)["allure"]
    results = [json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*-result.json")]
    assert len(results) == len(comparison.cases)
    expected = {
        CaseStatus.REGRESSED: "failed",
        CaseStatus.NOT_APPLICABLE: "skipped",
        CaseStatus.UNCHANGED: "passed",
        CaseStatus.CHANGED_AS_EXPECTED: "passed",
    }
    by_name = {r["fullName"]: r for r in results}
    for case in comparison.cases:
        r = by_name[case.case]
        assert r["status"] == expected[case.status]
        assert r["uuid"] in {p.name.split("-result")[0] for p in folder.glob("*-result.json")}
        assert {label["name"] for label in r["labels"]} >= {"suite", "parentSuite", "feature"}
        assert r["stop"] - r["start"] == 0  # the fixture's cases record no duration (tests/unit/test_ci_reports.py)
        if case.differences:
            before, after = r["attachments"]
            assert (before["name"], after["name"]) == ("before", "after")
            sides = [json.loads((folder / a["source"]).read_text(encoding="utf-8")) for a in (before, after)]
            assert sides == [{d.path: d.before for d in case.differences}, {d.path: d.after for d in case.differences}]
            assert before["type"] == after["type"] == "application/json"
        else:
            assert r["attachments"] == []
    commit = by_name["store/test_store.py::TestCommit::test_commit"]
    assert commit["name"] == "TestCommit::test_commit"
    assert commit["statusDetails"]["message"] == "regressed: TestCommit::test_commit: status 0x0000 → 0xA700"
    # Writing again overwrites rather than duplicates.
    write_reports(comparison, tmp_path, manifests)
    assert len(list(folder.glob("*-result.json"))) == len(comparison.cases)


def test_summary_table_counts_lists_regressions_and_ends_with_the_verdict(comparison: Comparison) -> None:
    text = summary_table(comparison)
    lines = text.splitlines()
    assert lines[-1] == "VERDICT: REGRESSED (exit 1)"
    assert "  regressed                3" in lines
    assert "  total                    6" in lines
    assert "    commit.status  status_changed  0x0000 → 0xA700" in lines
    assert "  store/test_store.py::test_roundtrip [CT]" in lines  # grouped by test, the parameters beside it
    assert "  store/test_store.py::test_roundtrip[CT]" in summary_table(comparison, verbose=True).splitlines()
    unchanged = Comparison("dev", ("b",), "c", Verdict.UNCHANGED, ("1 case(s) compared",), ())
    assert summary_table(unchanged).splitlines()[-1] == "VERDICT: UNCHANGED (exit 0)"
    assert "\x1b[" not in text
    assert summary_table(comparison, colour=True).splitlines()[-1] == "\x1b[1;31mVERDICT: REGRESSED (exit 1)\x1b[0m"


def test_summary_groups_the_cases_of_a_test_by_their_shared_differences(comparison: Comparison) -> None:
    """Five stored objects that regressed the same way are one group naming the difference once, with its count."""
    store = next(c for c in comparison.cases if c.case == "store/test_store.py::test_roundtrip[CT]")

    def case(modality: str) -> CaseComparison:
        name = f"store/test_store.py::test_roundtrip[{modality}]"
        status = Difference(name, "store.status", DiffKind.STATUS_CHANGED, "0x0000", "0xB000")
        value = Difference(name, "retrieved.00081030", DiffKind.MISSING, modality, None)
        return dataclasses.replace(store, case=name, differences=(status, value))

    regressed = dataclasses.replace(comparison, cases=tuple(case(m) for m in ("CT", "MR", "US", "CR", "DX")))
    lines = summary_table(regressed).splitlines()
    assert "Regressed: 5 cases in 1 test (every case: --verbose or report.html)" in lines
    assert "  store/test_store.py::test_roundtrip [CT], [MR], [US] +2" in lines
    assert '    store.status  status_changed  "0x0000" → "0xB000"  (5 cases)' in lines
    assert "    retrieved.00081030  missing  5 different values  (5 cases)" in lines
    assert len(summary_table(regressed, verbose=True).splitlines()) > len(lines)


@pytest.mark.parametrize(
    ("tty", "environ", "wanted"),
    [
        (True, {}, True),
        (False, {}, False),
        (True, {"NO_COLOR": "1"}, False),
        (True, {"NO_COLOR": ""}, True),  # no-color.org: set and not empty
        (True, {"TERM": "dumb"}, False),
    ],
)
def test_colour_only_on_a_terminal_that_did_not_opt_out(tty: bool, environ: dict[str, str], wanted: bool) -> None:
    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return tty

    assert colour_wanted(Stream(), environ) is wanted


def test_html_runs_table_says_what_each_variant_is() -> None:
    extra = RunSetup(description="hardened <peers> only", image=ImageInfo("vendor/pacs:2.1", "sha256:abc123"))
    base = make_reference_run([make_case("echo/t.py::t", status=0)])
    cand = make_reference_run([make_case("echo/t.py::t", status=0)], role="candidate", extra=extra)
    page = render_html(compare([base], cand), [base.manifest, cand.manifest])
    assert "hardened &lt;peers&gt; only" in page
    assert "<code>vendor/pacs:2.1</code> sha256:abc123" in page


def test_html_runs_table_says_what_the_robustness_phase_did_to_the_device() -> None:
    setup = RobustnessSetup(
        "1", "ab" * 32, ("pdu.pdata.over-max", "ds.store.x"),
        revivals=(Revival("pdu.pdata.over-max", "exited", "exit code 70"),), stopped="revivals exhausted: <x>",
    )  # fmt: skip
    base = make_reference_run([make_case("echo/t.py::t", status=0)])
    cand = make_reference_run([make_case("echo/t.py::t", status=0)], role="candidate", robustness=setup)
    page = render_html(compare([base], cand), [base.manifest, cand.manifest])
    assert "robustness: 2 inputs of corpus 1<br>revived after pdu.pdata.over-max (exited: exit code 70)" in page
    assert "stopped early: revivals exhausted: &lt;x&gt;" in page
    assert page.count("robustness: ") == 1  # the baseline ran no robustness phase: nothing said


def _posture_runs(n_ports: int = 1) -> tuple[list[RunRecord], RunRecord]:
    """Security-tagged cases: a TLS version newly accepted, plain TCP refused, ports opened and closed,
    an audit event no longer sent, a text value changed, and a hostile list item."""
    e, p = Security.EXPOSURE, Security.PROTECTION

    def case(name: str, **obs: tuple[JSON, Security]) -> CaseRecord:
        return CaseRecord(name, Outcome.PASSED, observations=tuple(Observation(k, v, t) for k, (v, t) in obs.items()))

    def cases(after: bool) -> list[CaseRecord]:
        ports = [f"tcp/{9000 + i} any" for i in range(n_ports)] if after else ["tcp/80 any (web)"]
        return [
            case("tls/test_tls.py::test_protocol_version[TLSv1]", accepted=(after, e)),
            case("tls/test_tls.py::test_protocol_version[TLSv1.2]", accepted=(True, e)),
            case("tls/test_tls.py::test_plain_tcp", admitted=(not after, e)),
            case("surface/test_surface.py::test_inventory", listening=(["tcp/104 any", *ports], e)),
            case(
                "audit/test_audit.py::test_events[store]", events=([] if after else ["DICOM Instances Transferred"], p)
            ),
            case("tls/test_tls.py::test_cipher_suites", forbidden=([HOSTILE] if after else [], e)),
            case("tls/test_tls.py::test_certificate", minimum=("TLSv1.3" if after else "TLSv1.2", e)),
        ]

    return [_run(cases(False)), _run(cases(False), replica=2)], _run(cases(True), "candidate")


@pytest.fixture
def posture() -> Comparison:
    baselines, candidate = _posture_runs()
    policy = Policy(
        (
            ExpectedChange("tls/test_tls.py::test_plain_tcp", "*", "TLS now required", ticket="SEC-12"),
            ExpectedChange("tls/test_tls.py::test_protocol_version*", "*", "TLS rework", where="policy.toml:7"),
        )
    )
    return compare(baselines, candidate, policy, created="2026-11-28T10:05:00+00:00")


def test_comparison_json_holds_the_security_posture_and_round_trips(tmp_path: Path, posture: Comparison) -> None:
    path = write_reports(posture, tmp_path, [])["json"]
    data = json.loads(path.read_text(encoding="utf-8"))
    assert [s["direction"] for s in data["security"]] == [s.direction.value for s in posture.security]
    assert Comparison.from_json(data) == posture
    assert {"loosened", "tightened", "unchanged", "changed"} <= {s["direction"] for s in data["security"]}


def test_html_security_section_says_what_loosened_tightened_and_stayed(posture: Comparison) -> None:
    page = render_html(posture, [])
    # After the summary, before the per-case tables.
    assert page.index("id='summary'") < page.index("id='security'") < page.index("id='differences'")
    section = page[page.index("id='security'") : page.index("id='differences'")]
    assert "<h2>Security posture</h2>" in section
    assert "<strong>4 loosened, 2 tightened, 1 changed, 1 stayed the same.</strong>" in section
    chart = section[section.index('<svg class="gl-chart gl-posture"') : section.index("</svg>")]
    assert "<title>Security posture: 8 observations: 4 loosened, 2 tightened, 1 changed, 1 stayed</title>" in chart
    section = section[section.index("</svg>") :]  # the groups below the chart
    loosened = section[section.index("p-loosened") : section.index("p-tightened")]
    tightened = section[section.index("p-tightened") : section.index("p-changed")]
    changed = section[section.index("p-changed") : section.index("p-unchanged")]
    stayed = section[section.index("p-unchanged") :]
    # Booleans in words, the refused policy entry named with its place.
    assert "<span class='was'>false</span><span class='arrow'>→</span><strong>true</strong>" in loosened
    assert "policy entry at policy.toml:7 matches but does not allow loosening" in loosened
    assert "<div class='added'>+ tcp/9000 any</div>" in loosened
    assert "<div class='removed'>\N{MINUS SIGN} DICOM Instances Transferred</div>" in loosened
    assert "protection: less of it is looser" in loosened
    assert "<div class='removed'>\N{MINUS SIGN} tcp/80 any (web)</div>" in tightened
    assert "<span class='badge c-expected'>expected</span> TLS now required (SEC-12)" in tightened
    assert "<span class='badge c-regressed'>regressed</span>" in tightened  # the closed port is not declared
    assert "TLSv1.2</span><span class='arrow'>→</span><strong>TLSv1.3</strong>" in changed
    assert stayed.startswith("p-unchanged'><details><summary>Stayed the same: 1 security observation(s)")
    assert "test_protocol_version[TLSv1.2]" in stayed
    assert "[" not in loosened.replace("[TLSv1]", "").replace("[store]", "")  # no JSON dumps of simple values


def test_html_security_section_escapes_every_value(posture: Comparison) -> None:
    page = render_html(posture, [])
    section = page[page.index("id='security'") : page.index("id='differences'")]
    assert "<script>" not in page
    assert "<div class='added'>+ &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; \x01\x1b</div>" in section
    hostile = dataclasses.replace(
        posture.security[0],
        case="<b>case</b>",
        name="<i>x</i>",
        reason="<script>r</script>",
        after={"k": "<s>"},
        removed=(),
    )
    page = render_html(dataclasses.replace(posture, security=(hostile,)), [])
    assert "<b>" not in page and "<i>" not in page and "<script>" not in page and "<s>" not in page
    assert "&lt;b&gt;case&lt;/b&gt;" in page and "&lt;script&gt;r&lt;/script&gt;" in page
    assert "&#34;k&#34;: &#34;&lt;s&gt;&#34;" in page  # structured values as escaped, indented JSON


def test_html_without_security_observations_says_so() -> None:
    page = render_html(Comparison("dev", ("b",), "c", Verdict.UNCHANGED, (), ()), [])
    assert "No observation in these runs carries a security meaning" in page


def test_summary_table_lists_loosened_then_tightened_bounded() -> None:
    baselines, candidate = _posture_runs(n_ports=12)  # twelve new ports listening: one change of many items
    text = summary_table(compare(baselines, candidate))
    lines = text.splitlines()
    assert "Security posture: 4 loosened, 2 tightened, 1 changed, 1 unchanged" in lines
    first = lines.index("Security posture: 4 loosened, 2 tightened, 1 changed, 1 unchanged")
    moved = lines[first + 1 : first + 7]
    assert [line.split()[0] for line in moved] == ["loosened"] * 4 + ["tightened"] * 2
    assert "  loosened   tls/test_tls.py::test_protocol_version[TLSv1]  accepted false → true  (regressed)" in lines
    assert any(
        line.startswith("  loosened   surface/test_surface.py::test_inventory  listening + tcp/9000") for line in lines
    )
    assert lines[-1] == "VERDICT: REGRESSED (exit 1)"


def test_summary_table_caps_the_security_lines() -> None:
    e = Security.EXPOSURE
    base = [
        CaseRecord(f"t.py::t{i:02}", Outcome.PASSED, observations=(Observation("open", False, e),)) for i in range(15)
    ]
    cand = [
        CaseRecord(f"t.py::t{i:02}", Outcome.PASSED, observations=(Observation("open", True, e),)) for i in range(15)
    ]
    text = summary_table(compare([_run(base)], _run(cand, "candidate")))
    assert "Security posture: 15 loosened, 0 unchanged" in text
    assert sum(1 for line in text.splitlines() if line.startswith("  loosened ")) == 10
    assert "  ... and 5 more (see report.html)" in text.splitlines()


def test_junit_carries_security_counts(tmp_path: Path, posture: Comparison) -> None:
    root = ET.parse(JUnitReporter().write(posture, tmp_path, [])).getroot()
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert (props["security.loosened"], props["security.tightened"], props["security.unchanged"]) == ("4", "2", "1")


# --- Templates: autoescape, and a manufacturer's overrides ---------------------------------------

TEMPLATES = Path(__file__).parents[2] / "harness" / "report" / "templates"


def _hostile() -> Comparison:
    """Device-provided text everywhere a device or run can put it: name, case id, path, values, reason."""
    evil = "<script>alert(1)</script>"
    diff = Difference(f"t.py::t[{evil}]", f"x.{evil}", DiffKind.VALUE_CHANGED, evil, {"k": evil}, reason=evil)
    case = CaseComparison(diff.case, CaseStatus.REGRESSED, Outcome.PASSED, Outcome.FAILED, (diff,))
    return Comparison(
        f"dev {evil}", (evil,), evil, Verdict.REGRESSED, (f"regressed: {evil}",), (case,), evil, evil, evil
    )


def test_templates_escape_every_device_provided_string() -> None:
    page = render_html(_hostile(), [make_reference_run([], device="<script>x</script>").manifest])
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<title>patchgate: dev &lt;script&gt;alert(1)&lt;/script&gt; — REGRESSED</title>" in page
    # Escaping is the environment's, not each template's: no template turns it off or marks data safe.
    for template in TEMPLATES.iterdir():
        text = template.read_text(encoding="utf-8").replace(" ", "")
        assert "|safe" not in text and "autoescapefalse" not in text and "Markup" not in text, template.name


def test_an_override_directory_replaces_the_logo_and_signoff_blocks(tmp_path: Path) -> None:
    (tmp_path / "report.html").write_text(
        """{% extends "layout.html" %}
{% block logo %}<svg class="acme-logo" viewBox="0 0 10 10"><title>ACME</title></svg>{% endblock %}
{% block signoff %}<section id="signoff"><p>Approved for {{ comparison.device }} by ACME QA: ________</p></section>{% endblock %}
{% block styles %}{{ super() }}.acme-logo { height: 40px; }{% endblock %}
""",
        encoding="utf-8",
    )
    path = HtmlReporter(templates=tmp_path).write(_hostile(), tmp_path, [])
    page = path.read_text(encoding="utf-8")
    assert '<header class="verdict v-REGRESSED"><svg class="acme-logo"' in page
    assert '<section id="signoff"><p>Approved for dev &lt;script&gt;alert(1)&lt;/script&gt; by ACME QA' in page
    assert page.index("id='cases'") < page.index('id="signoff"') < page.index("<footer>")
    assert ".acme-logo { height: 40px; }" in page and "table.diffs { table-layout: fixed; }" in page  # super() kept
    assert "<script" not in page  # the manufacturer's template escapes device text too
    for section in ("about", "runs", "summary", "security", "differences", "cases"):
        assert f"<section id='{section}'>" in page  # the packaged sections are all still there
    assert "Prepared by" not in page  # the manufacturer's sign-off replaced the packaged one
    # Without the directory: no logo, and the packaged sign-off (prepared / reviewed / approved) last.
    packaged = render_html(_hostile(), [])
    assert "acme-logo" not in packaged
    assert packaged.index("id='cases'") < packaged.index("<section id='signoff'>") < packaged.index("<footer>")
    assert all(f"<td>{role} by</td>" in packaged for role in ("Prepared", "Reviewed", "Approved"))


def test_an_override_directory_can_replace_one_section(tmp_path: Path) -> None:
    (tmp_path / "_cases.html").write_text("<section id='cases'><p>{{ report.cases|length }} case(s).</p></section>\n")
    page = render_html(_hostile(), [], templates=tmp_path)
    assert "<section id='cases'><p>1 case(s).</p></section>" in page
    assert "<h2>All cases</h2>" not in page and "<h2>Differences by case</h2>" in page


@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        ("report.html", '{% extends "layout.html" %}{% block signoff %}{% if %}{% endblock %}', "report.html:1"),
        (
            "report.html",
            '{% extends "layout.html" %}{% block signoff %}{{ signer }}{% endblock %}',
            "'signer' is undefined",
        ),
        ("report.html", '{% extends "nowhere.html" %}', "nowhere.html"),
    ],
)
def test_a_broken_override_is_one_harness_error_before_any_run(tmp_path: Path, name: str, text: str, said: str) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(HarnessError, match="report template error") as raised:
        check_templates(tmp_path)
    assert str(tmp_path) in raised.value.one_line() and said in raised.value.one_line()
    with pytest.raises(HarnessError, match="template directory not found"):
        check_templates(tmp_path / "missing")
    check_templates(TEMPLATES)  # the packaged ones, as an override of themselves, render


# --- Large comparisons: folded, capped, and still listing every regressed case ---------------------


def test_a_small_report_folds_unchanged_cases_by_module_and_still_names_them(comparison: Comparison) -> None:
    page = render_html(comparison, [])
    cases = page[page.index("<section id='cases'>") :]
    listed = cases[: cases.index("<details class='folded'>")]
    folded = cases[cases.index("<details class='folded'>") :]
    for case in comparison.cases:
        if case.differences:
            assert f"<code>{_html(case.case)}</code>" in listed
        else:  # the not-applicable worklist case: counted in its module's row, and named there
            assert case.case not in listed and case.status is CaseStatus.NOT_APPLICABLE
            assert '<tr><td><code>mwl.test_mwl</code></td><td class="num">0</td><td class="num">1</td>' in folded
            assert "<code>test_query</code>" in folded
    assert "<summary>0 unchanged and 1 not applicable case(s) in 1 suite module: passed in both runs or" in folded


def test_a_case_that_failed_in_both_runs_is_listed_not_folded() -> None:
    cases = [make_case("a/t.py::test_ok", x=1), make_case("a/t.py::test_broken", Outcome.FAILED, x=1)]
    comparison = compare([_run(cases)], _run(cases, "candidate"))
    page = render_html(comparison, [])
    listed = page[page.index("<section id='cases'>") : page.index("<details class='folded'>")]
    assert "<tr><td><code>a/t.py::test_broken</code></td><td>Unchanged</td><td>failed</td><td>failed</td>" in listed
    assert "test_ok" not in listed and "<code>test_ok</code>" in page[page.index("<details class='folded'>") :]


def test_a_case_shows_twenty_differences_then_says_how_many_more() -> None:
    before = make_case("qr/test_find.py::test_many", matches=[f"m{i}" for i in range(33)])
    after = make_case("qr/test_find.py::test_many", matches=["m0", "m1", "m2"])
    comparison = compare([_run([before])], _run([after], "candidate"))
    (case,) = comparison.cases
    assert len(case.differences) == 31  # the count, then 30 items gone
    page = render_html(comparison, [])
    assert page.count("<td><code>matches") == 20  # the count change, then items [3] .. [21]
    assert "… and 11 more in comparison.json." in page
    assert "matches[21]" in page and "matches[22]" not in page


def test_a_ten_thousand_case_regression_report_stays_small_and_lists_every_regressed_case(tmp_path: Path) -> None:
    s = synthetic(10_000)
    comparison = compare(s.baselines, s.candidate, s.policy, created="2026-11-28T10:30:00+00:00")
    path = HtmlReporter().write(comparison, tmp_path, [r.manifest for r in (*s.baselines, s.candidate)])
    assert path.stat().st_size <= 2_000_000  # it was 2.7 MB with every case listed
    page = path.read_text(encoding="utf-8")
    assert len(s.regressed) > 150
    for case in s.regressed:  # its differences in full, in its test's group or on its own ...
        test, param = case.partition("[")[0], case[len(case.partition("[")[0]) :]
        assert f"<h3>{_html(case)}</h3>" in page or (
            f"<h3>{_html(test)} <span" in page and f"<code>{param}</code>" in page
        )
        assert f"<tr><td><code>{_html(case)}</code></td><td>Regressed</td>" in page  # ... and a row of its own
    unchanged = [c.case for c in comparison.cases if c.status is CaseStatus.UNCHANGED and not c.differences]
    assert len(unchanged) > 7_000 and not any(f"<code>{_html(c)}</code>" in page for c in unchanged[:200])
    assert "Each case, with its outcome in every run, is in comparison.json." in page
    assert "… and 12 more in comparison.json." in page  # a big regression, capped at 20 differences


def test_comparison_json_holds_one_case_per_line(tmp_path: Path, comparison: Comparison) -> None:
    text = write_reports(comparison, tmp_path, [])["json"].read_text(encoding="utf-8")
    lines = text.splitlines()
    for case in comparison.cases:
        (line,) = [x for x in lines if f'"case":{json.dumps(case.case)},"differences"' in x]
        assert CaseComparison.from_json(json.loads(line.strip().rstrip(","))) == case


def test_a_long_value_shows_its_first_lines_then_says_how_many_more() -> None:
    listing = {"items": [f"v{i}" for i in range(46)]}  # 50 lines as indented JSON
    comparison = compare(
        [_run([make_case("a/t.py::t", ds=[listing])])], _run([make_case("a/t.py::t", ds=[])], "candidate")
    )
    page = render_html(comparison, [])
    assert "… and 38 more lines in comparison.json" in page
    assert "&#34;v0&#34;" in page and "&#34;v45&#34;" not in page


def test_a_dataset_shows_as_attributes_with_tag_keyword_and_name() -> None:
    dataset = {
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "DOE^JANE"}]},
        "00080052": {"vr": "CS", "Value": ["PATIENT"]},
        "00091001": {"vr": "LO", "Value": ["vendor"]},
    }
    comparison = compare(
        [_run([make_case("a/t.py::t", ds=[dataset])])], _run([make_case("a/t.py::t", ds=[])], "candidate")
    )
    page = render_html(comparison, [])
    block = page[page.index('<div class="attrs">') :]
    rows = block[: block.index("</div></div>")].split('<div class="attr">')[1:]
    assert [r[: r.index("</code>")] for r in rows] == ["<code>(0008,0052)", "<code>(0009,1001)", "<code>(0010,0010)"]
    assert "Query/Retrieve Level" in rows[0] and "PATIENT" in rows[0] and "kw" not in rows[0]  # name says keyword
    assert "Private tag" in rows[1]
    assert "Patient&#39;s Name" in rows[2] and '<code class="kw">PatientName</code>' in rows[2]
    assert "= <strong>DOE^JANE</strong>" in rows[2] and "Alphabetic" not in rows[2]


@pytest.mark.parametrize(
    ("case", "split"),
    [
        ("a/t.py::test_x[CT-explicit]", ("a/t.py::test_x", "[CT-explicit]")),
        ("a/t.py::TestC::test_x[a[b]]", ("a/t.py::TestC::test_x", "[a[b]]")),
        ("a/t.py::test_x", ("a/t.py::test_x", "")),
        ("a/t.py::test_\x1b[31mred\x1b[0m\x07", ("a/t.py::test_\x1b[31mred\x1b[0m\x07", "")),  # a [ in the name
    ],
)
def test_a_case_id_splits_into_its_test_and_parameters(case: str, split: tuple[str, str]) -> None:
    assert split_params(case) == split
