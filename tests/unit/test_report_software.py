"""report.html's Software changes section: one row per changed package, both versions, and how it was judged.

The section finds the software inventory by its observation tag (Observation.INVENTORY), not by case id.
"""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

from harness.compare.engine import compare
from harness.compare.policy import ExpectedChange, Policy
from harness.model import (
    JSON,
    CaseComparison,
    CaseRecord,
    CaseStatus,
    Classification,
    Comparison,
    Difference,
    DiffKind,
    Observation,
    Outcome,
    RunRecord,
    Security,
    Verdict,
    to_json,
)
from harness.report._tags import Tags
from harness.report.html import render_html, write_html
from harness.rundir import RunDir, read_run
from tests.factories import make_case, make_reference_run

INVENTORY = "surface/test_surface.py::test_inventory"
# What the surface suite records for a container: the package map tagged as the software inventory.
TAGGED = Tags({INVENTORY: {"packages": frozenset({Observation.INVENTORY})}})
HOSTILE = "<script>alert('x')</script>"
BEFORE = {
    "libssl3": "3.0.20-1~deb12u2",
    "openssl": "3.0.20-1~deb12u2",
    "pip:requests": "2.31.0",
    "tzdata": "2026b-0+deb12u1",
    "zlib1g": "1:1.2.13.dfsg-1",
}
AFTER = {
    "libssl3": "3.0.22-1~deb12u2",
    "openssl": "3.0.22-1~deb12u2",
    "pip:requests": "2.32.3",
    "tzdata": "2026b-0+deb12u1",  # unchanged: no row
    "libnew1": "1.0-1",  # newly installed
}  # zlib1g removed
# Each row: package, baseline, candidate, judged (badge and reason), in the rendered text.
SECURITY_UPDATES = "Debian security updates (SEC-50)"
ROWS = [
    ["libnew1", "not installed", "1.0-1"],
    ["libssl3", "3.0.20-1~deb12u2", "3.0.22-1~deb12u2"],
    ["openssl", "3.0.20-1~deb12u2", "3.0.22-1~deb12u2"],
    ["pip:requests", "2.31.0", "2.32.3"],
    ["zlib1g", "1:1.2.13.dfsg-1", "not installed"],
]


def _inventory(
    case: str, packages: JSON, name: str = "packages", tags: tuple[str, ...] = (Observation.INVENTORY,)
) -> CaseRecord:
    observations = (
        Observation("listening", ["tcp/{dicom} any (Orthanc)"], Security.EXPOSURE),
        Observation(name, packages, tags=tags),
    )
    return CaseRecord(case, Outcome.PASSED, observations=observations)


def _runs(
    before: dict[str, str], after: dict[str, str], inventory: str = INVENTORY, name: str = "packages"
) -> tuple[list[RunRecord], RunRecord]:
    def run(packages: dict[str, str], role: str, replica: int) -> RunRecord:
        cases = [make_case("echo/test_echo.py::test_echo", **{"echo.status": 0}), _inventory(inventory, packages, name)]
        return make_reference_run(cases, role, replica)

    return [run(before, "baseline", 1), run(before, "baseline", 2)], run(after, "candidate", 1)


def _compare(before: dict[str, str], after: dict[str, str], policy: Policy | None = None) -> Comparison:
    baselines, candidate = _runs(before, after)
    comparison = compare(baselines, candidate, policy or Policy(), created="2026-11-28T10:05:00+00:00")
    assert Tags.of([*baselines, candidate]) == TAGGED  # what the runs tagged is what the tests below pass
    return comparison


def _render(comparison: Comparison, tags: Tags = TAGGED) -> str:
    return render_html(comparison, [], tags=tags)


class _Tables(HTMLParser):
    """Each table's rows as lists of cell texts, keyed by the table's class; section ids and texts too."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self.sections: list[str] = []
        self.tags: list[str] = []
        self._table = ""
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        got = dict(attrs)
        if tag == "section" and got.get("id"):
            self.sections.append(got["id"] or "")
        elif tag == "table":
            self._table = got.get("class") or ""
            self.tables.setdefault(self._table, [])
        elif tag == "tr":
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _parse(page: str) -> _Tables:
    parsed = _Tables()
    parsed.feed(page)
    return parsed


def _section(page: str) -> str:
    start = page.index("<section id='software'>")
    return page[start : page.index("</section>", start)]


def test_rows_show_both_versions_sorted_by_name_with_the_policy_reason() -> None:
    policy = Policy((ExpectedChange(INVENTORY, "packages.*", "Debian security updates", ticket="SEC-50"),))
    comparison = _compare(BEFORE, AFTER, policy)
    assert comparison.verdict is Verdict.CHANGED_AS_EXPECTED
    page = _render(comparison)
    parsed = _parse(page)
    head, *rows = parsed.tables["software"]
    assert head == ["Package", "Baseline", "Candidate", "Judged"]
    assert [r[:3] for r in rows] == ROWS
    assert all(r[3] == f"expected {SECURITY_UPDATES}" for r in rows)
    assert "<p><strong>5 packages changed: 3 changed version, 1 added, 1 removed.</strong></p>" in page
    # Placed right after the security posture; the differences still list every package row.
    at = parsed.sections.index("software")
    assert parsed.sections[at - 1 : at + 2] == ["security", "software", "differences"]
    diff_paths = [r[0] for r in parsed.tables["diffs"][1:]]
    assert sorted(diff_paths) == [f"packages.{r[0]}" for r in ROWS]
    assert "tzdata" not in _section(page)  # unchanged packages have no row


def test_a_package_change_the_policy_does_not_declare_is_shown_as_regressed() -> None:
    comparison = _compare(BEFORE, AFTER)
    assert comparison.verdict is Verdict.REGRESSED
    page = _render(comparison)
    rows = _parse(page).tables["software"][1:]
    assert [r[:3] for r in rows] == ROWS
    assert all(r[3] == "regressed not declared in the policy" for r in rows)
    assert _section(page).count("<span class='badge c-regressed'>regressed</span>") == len(ROWS)
    assert "c-expected" not in _section(page)


def test_one_package_reads_in_the_singular() -> None:
    page = _render(_compare(BEFORE, BEFORE | {"openssl": "3.0.22-1~deb12u2"}))
    assert "1 package changed: 1 changed version, 0 added, 0 removed." in page
    assert [r[:3] for r in _parse(page).tables["software"][1:]] == [ROWS[2]]


def test_inventory_without_package_changes_says_so() -> None:
    page = _render(_compare(BEFORE, BEFORE))
    section = _section(page)
    assert "<h2>Software changes</h2><p>No installed package changed.</p>" in section
    assert "software" not in _parse(page).tables  # no empty table


def test_section_is_omitted_without_an_inventory() -> None:
    case = make_case("echo/test_echo.py::test_echo", **{"echo.status": 0})
    baselines = [make_reference_run([case], "baseline", i) for i in (1, 2)]
    comparison = compare(baselines, make_reference_run([case], "candidate"), created="2026-11-28T10:05:00+00:00")
    page = _render(comparison, Tags.of([*baselines]))
    assert "Software changes" not in page and "id='software'" not in page
    # A local process: the inventory case ran on neither side (not applicable), so there is nothing to say.
    skipped = CaseComparison(INVENTORY, CaseStatus.NOT_APPLICABLE, Outcome.NOT_APPLICABLE, Outcome.NOT_APPLICABLE)
    local = Comparison("dev", ("b",), "c", Verdict.UNCHANGED, (), (skipped,))
    assert "id='software'" not in _render(local)


def test_a_side_without_an_inventory_is_named_not_reported_as_unchanged() -> None:
    failed = CaseComparison(
        INVENTORY,
        CaseStatus.REGRESSED,
        Outcome.PASSED,
        Outcome.FAILED,
        (
            Difference(INVENTORY, "outcome", DiffKind.STATUS_CHANGED, "passed", "failed"),
            Difference(INVENTORY, "packages", DiffKind.MISSING, BEFORE, None),
        ),
    )
    page = _render(Comparison("dev", ("b",), "c", Verdict.REGRESSED, (), (failed,)))
    section = _section(page)
    assert "The candidate recorded no software inventory" in section and ": failed)" in section
    assert "No installed package changed." not in section
    assert "software" not in _parse(page).tables  # the whole observation is not one package


def test_hostile_package_names_and_versions_are_escaped() -> None:
    name, version = f"{HOSTILE}pkg", f'1.0"><img src=x onerror=alert(1)>{HOSTILE}'
    page = _render(_compare(BEFORE, BEFORE | {name: version}))
    section = _section(page)
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;pkg" in section
    assert "1.0&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in section
    parsed = _parse(page)
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert parsed.tables["software"][1][:3] == [name, "not installed", version]  # the text reads as it was


def test_noise_and_non_string_versions_are_shown_as_they_are() -> None:
    diffs = (
        Difference(INVENTORY, "packages.libfoo.so", DiffKind.VALUE_CHANGED, "1", "2", Classification.NOISE, "jitter"),
        Difference(INVENTORY, "packages.pip:odd", DiffKind.VALUE_CHANGED, None, ["1.0"]),
        Difference(INVENTORY, "packages.a", DiffKind.STATUS_CHANGED, "1", "2", Classification.EXPECTED, "why"),
    )
    case = CaseComparison(INVENTORY, CaseStatus.REGRESSED, Outcome.PASSED, Outcome.PASSED, diffs)
    page = _render(Comparison("dev", ("b",), "c", Verdict.REGRESSED, (), (case,)))
    assert _parse(page).tables["software"][1:] == [
        ["a", "1", "2", "expected why"],
        ["libfoo.so", "1", "2", "noise jitter"],  # a dot inside a package name stays in the name
        ["pip:odd", "null", '["1.0"]', "regressed not declared in the policy"],
    ]
    assert "3 packages changed: 3 changed version, 0 added, 0 removed." in page


def test_the_inventory_is_found_by_its_tag_under_any_case_id_and_observation_name() -> None:
    sbom = "vendor/test_sbom.py::test_installed[app]"
    baselines, candidate = _runs(BEFORE, AFTER, inventory=sbom, name="installed")
    comparison = compare(baselines, candidate, created="2026-11-28T10:05:00+00:00")
    page = _render(comparison, Tags.of([*baselines, candidate]))
    assert [r[:3] for r in _parse(page).tables["software"][1:]] == ROWS
    assert "5 packages changed: 3 changed version, 1 added, 1 removed." in _section(page)
    # The tag is what counts: the same data under the old case id, untagged, is no inventory.
    untagged = [
        make_reference_run([_inventory(INVENTORY, packages, tags=())], role, replica)
        for packages, role, replica in ((BEFORE, "baseline", 1), (AFTER, "candidate", 1))
    ]
    comparison = compare(untagged[:1], untagged[1], created="2026-11-28T10:05:00+00:00")
    assert Tags.of(untagged) == Tags()
    assert "id='software'" not in _render(comparison, Tags.of(untagged))


def test_the_comparison_carries_the_tags_from_the_run_directories(tmp_path: Path) -> None:
    baselines, candidate = _runs(BEFORE, AFTER, inventory="surface/test_sbom.py::test_packages")
    read: list[RunRecord] = []
    for run in (*baselines, candidate):
        folder = RunDir(tmp_path / "runs" / run.manifest.run_id)
        folder.prepare()
        folder.write_manifest(run.manifest)
        writer = folder.case_writer()
        for case in run.cases:
            writer.write(case)
        writer.close()
        read.append(read_run(folder.path))
    assert read[0].cases == baselines[0].cases  # the tags survive observations.jsonl
    comparison = compare(read[:2], read[2], created="2026-11-28T10:05:00+00:00")
    (tmp_path / "out").mkdir()
    page = write_html(comparison, tmp_path / "out").read_text(encoding="utf-8")
    assert [r[:3] for r in _parse(page).tables["software"][1:]] == ROWS
    # The tags travel in comparison.json: a report redone from it alone, the runs gone, still finds the inventory.
    again = Comparison.from_json(json.loads(json.dumps(to_json(comparison))))
    assert again == comparison
    for folder in (tmp_path / "runs").iterdir():
        shutil.rmtree(folder)
    assert [r[:3] for r in _parse(render_html(again, [])).tables["software"][1:]] == ROWS


def test_observation_tags_are_written_only_when_set() -> None:
    plain = Observation("packages", {"zlib1g": "1"})
    assert json.dumps(plain.to_json()) == '{"name": "packages", "value": {"zlib1g": "1"}}'  # as older runs wrote it
    assert Observation.from_json(json.loads('{"name": "packages", "value": 1}')).tags == ()
    tagged = Observation("packages", {"zlib1g": "1"}, tags=(Observation.INVENTORY,))
    assert tagged.to_json()["tags"] == ["inventory"]
    assert Observation.from_json(json.loads(json.dumps(tagged.to_json()))) == tagged
