"""report.html for people: what was compared (hashes, commit), suite x status, links, folded rows, words for DICOM."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.compare.engine import compare
from harness.compare.policy import ExpectedChange, Policy
from harness.model import CorpusInfo, Difference, DiffKind, ImageInfo, Manifest, Outcome, RunRecord, RunSetup
from harness.report._attributes import named_path, tag_words
from harness.report._fold import fold_rows
from harness.report._view import DiffRow, Side, _side, build_page
from harness.report.html import render_html
from harness.rundir import RunDir
from harness.shipped import git_commit, source_commit
from tests.factories import make_case, make_reference_run

CORPUS = CorpusInfo(seed=1422, sha256="c" * 64, uid_root="1.2.", items=28)


def _runs(**candidate: Any) -> tuple[list[RunRecord], RunRecord]:
    fields: dict[str, Any] = {
        "corpus": CORPUS,
        "profile_sha256": "a" * 64,
        "versions": {"patchgate": "0.1.0", "pydicom": "3.0.2"},
    }
    cases = [
        make_case("storage/test_store.py::test_store[CT]", store={"status": "0x0000"}),
        make_case("storage/test_store.py::test_store[MR]", store={"status": "0x0000"}),
        make_case("query/test_find.py::test_find", find=1),
        make_case("mwl/test_mwl.py::test_query", Outcome.NOT_APPLICABLE),
    ]
    after = [
        dataclasses.replace(
            make_case("storage/test_store.py::test_store[CT]", store={"status": "0xB000"}), service="store"
        ),
        *cases[1:],
    ]
    baselines = [make_reference_run(cases, replica=i, **fields) for i in (1, 2)]
    return baselines, make_reference_run(after, "candidate", **(fields | candidate))


def test_the_policy_hash_is_recorded_in_the_comparison_and_ignores_where_it_was_read() -> None:
    here = Policy((ExpectedChange("tls/*", "assoc.*", "TLS now required", where="a.toml:3"),))
    there = Policy((ExpectedChange("tls/*", "assoc.*", "TLS now required", where="elsewhere/b.toml:9"),))
    other = Policy((ExpectedChange("tls/*", "assoc.*", "TLS required", where="a.toml:3"),))
    assert here.sha256() == there.sha256() != other.sha256() != Policy().sha256()
    baselines, candidate = _runs()
    assert compare(baselines, candidate, here).policy_sha256 == here.sha256()


def test_what_was_compared_names_profile_corpus_policy_and_patchgate() -> None:
    baselines, candidate = _runs(extra=RunSetup(image=ImageInfo("acme/pacs:2", "sha256:" + "d" * 64)))
    comparison = compare(baselines, candidate, Policy())
    manifests = [r.manifest for r in (*baselines, candidate)]
    facts = dict(build_page(comparison, manifests).facts)
    assert facts["Profile"] == f"devices/reference/profile.toml, SHA-256 {'a' * 64}"
    assert facts["Corpus"] == f"28 objects (small, seed 1422), SHA-256 {'c' * 64}"
    assert facts["Expected-change policy"] == f"SHA-256 {Policy().sha256()}"
    assert facts["patchgate"] == "0.1.0, commit not recorded"
    assert facts["Harness software"] == "pydicom 3.0.2"
    # Only the candidate is a container: each run is named, the image with its full id.
    assert facts["Images"] == (
        "baseline 1: a local process; baseline 2: a local process; candidate 1: acme/pacs:2 sha256:" + "d" * 64
    )


def test_runs_that_differ_are_each_named() -> None:
    versions = {"patchgate": "0.1.1", "patchgate commit": "abc", "pydicom": "3.0.3"}
    baselines, candidate = _runs(profile_sha256="b" * 64, versions=versions)
    comparison = compare(baselines, candidate, Policy())
    facts = dict(build_page(comparison, [r.manifest for r in (*baselines, candidate)]).facts)
    assert facts["Profile"].endswith(f"candidate 1: devices/reference/profile.toml, SHA-256 {'b' * 64}")
    assert facts["Profile"].startswith(f"baseline 1: devices/reference/profile.toml, SHA-256 {'a' * 64}; baseline 2")
    assert facts["patchgate"].endswith("candidate 1: 0.1.1, commit abc")
    assert facts["Harness software"].endswith("candidate 1: pydicom 3.0.3")


def test_the_matrix_counts_cases_by_suite_and_status() -> None:
    baselines, candidate = _runs()
    matrix = build_page(compare(baselines, candidate, Policy()), []).matrix
    assert matrix.columns == ("Regressed", "Changed as expected", "Unchanged", "Not applicable")
    assert [(r.suite, r.counts, r.total) for r in matrix.rows] == [
        ("mwl", (0, 0, 0, 1), 1),
        ("query", (0, 0, 1, 0), 1),
        ("storage", (1, 0, 1, 0), 2),
    ]
    assert (matrix.total.counts, matrix.total.total) == ((1, 0, 2, 1), 4)


def test_each_run_links_its_records_relative_to_the_page(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    manifests: list[Manifest] = []
    directories = []
    baselines, candidate = _runs()
    for record in (*baselines, candidate):
        run = RunDir(tmp_path / "kept elsewhere" / record.manifest.run_id)
        run.logs.mkdir(parents=True)
        run.manifest.write_text("{}")
        run.log("device").write_text("")
        manifests.append(record.manifest)
        directories.append(str(run.path))
    comparison = dataclasses.replace(
        compare(baselines, candidate, Policy()),
        baseline=tuple(directories[:2]),
        candidate=directories[2],
    )
    page = build_page(comparison, manifests, base=out)
    links = dict(page.runs[0].links)
    assert set(links) == {"manifest", "device log", "all logs"}  # only what exists: no observations, no junit
    assert links["manifest"] == f"../kept%20elsewhere/{manifests[0].run_id}/manifest.json"
    assert links["all logs"].endswith("/logs/")
    for url in links.values():
        assert (out / url.replace("%20", " ")).exists()
    assert build_page(comparison, manifests).runs[0].links == ()  # no base: no links
    html = render_html(comparison, manifests, base=out)
    assert f'<a href="../kept%20elsewhere/{manifests[2].run_id}/logs/device.log">device log</a>' in html


def _row(path: str, after: str = "x") -> DiffRow:
    return DiffRow(path, "extra", "regressed", Side("(absent)"), Side(after), "")


def test_rows_alike_but_for_one_segment_fold_into_one() -> None:
    rows = [_row(f"wire.objects.{o}.attributes.removed.StudyDescription") for o in ("CT", "MR", "SC")]
    rows += [_row("wire.objects.US.attributes.removed.StudyDescription", after="other"), _row("find.count")]
    folded = fold_rows(rows, lambda r: (r.kind, r.before, r.after))
    assert [(r.path, r.count) for r in folded] == [
        ("wire.objects.{CT, MR, SC}.attributes.removed.StudyDescription", 3),
        ("wire.objects.US.attributes.removed.StudyDescription", 1),  # says something else: its own row
        ("find.count", 1),
    ]
    two = rows[:2]
    assert fold_rows(two, lambda r: r.after) == two  # two read fine as they are


def test_rows_varying_in_two_segments_fold_twice() -> None:
    rows = [_row(f"wire.{o}.attributes.{a}") for a in ("A", "B", "C") for o in ("CT", "MR", "SC")]
    (row,) = fold_rows(rows, lambda r: r.after)
    assert row.count == 9 and row.path in ("wire.{CT, MR, SC}.attributes.{A, B, C}", "wire.CT.attributes.{A, B, C}")


def test_a_page_counts_folded_differences_when_it_cuts() -> None:
    many = {f"o{i}": {"StudyDescription": "x"} for i in range(30)}
    baselines, candidate = _runs()
    base = make_case("storage/test_store.py::test_many", objects=many)
    after = make_case("storage/test_store.py::test_many", objects={k: {} for k in many})
    comparison = compare(
        [dataclasses.replace(b, cases=(base,)) for b in baselines],
        dataclasses.replace(candidate, cases=(after,)),
        Policy(),
    )
    (group,) = build_page(comparison, []).differences
    (case,) = group.cases
    assert [(r.path, r.count) for r in case.shown] == [
        ("objects.{" + ", ".join(f"o{i}" for i in range(30)) + "}.StudyDescription", 30)
    ]
    assert case.shown_more == 0


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("retrieved.dataset.00081030", "retrieved.dataset.(0008,1030) StudyDescription"),
        ("find.matches[0].00100010.Value[0]", "find.matches[0].(0010,0010) PatientName.Value[0]"),
        ("x.00091001", "x.(0009,1001) Private tag"),
        ("x.12345678", "x.12345678"),  # no tag the dictionary knows: maybe no tag at all
        ("x.0008103a", "x.0008103a"),  # DICOM JSON writes upper case
        ("00081030.y", "00081030.y"),  # an observation's own name is never a dataset key
        ("wire.StudyDescription (0008,1030)", "wire.StudyDescription (0008,1030)"),
    ],
)
def test_a_path_names_its_tags(path: str, said: str) -> None:
    assert named_path(path) == said


def test_tags_have_keyword_and_name() -> None:
    assert tag_words("00080052") == ("(0008,0052)", "QueryRetrieveLevel", "Query/Retrieve Level")
    assert tag_words("7FE00010") == ("(7FE0,0010)", "PixelData", "Pixel Data")


def _diff(
    before: object, after: object, path: str = "store.status", kind: DiffKind = DiffKind.VALUE_CHANGED
) -> Difference:
    return Difference("storage/t.py::t", path, kind, before, after)


def test_sides_read_as_people_say_them() -> None:
    status = _diff("0x0000", "0xB000")
    assert _side(status, "before", "store").text == "0x0000 (Success)"
    assert _side(status, "after", "store").text == "0xB000 (Warning: coercion of data elements)"
    element = _diff(None, {"vr": "LO", "Value": ["CT Thorax"]}, "x.00081030", DiffKind.EXTRA)
    assert (_side(element, "before", "").text, _side(element, "after", "").text) == ("(absent)", "CT Thorax (LO)")
    before = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "A^B"}]}, "00100020": {"vr": "LO", "Value": ["1"]}}
    after = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "A^C"}]}, "00100020": {"vr": "LO", "Value": ["1"]}}
    side = _side(_diff(before, after, "find.matches[0]"), "after", "find")
    assert [a.value for a in side.changed] == ["A^C"] and [a.value for a in side.same] == ["1"]  # alike: folded
    assert _side(_diff(1, 2, "find.count"), "after", "find").text == "2"


def test_the_commit_is_the_checkouts_and_says_local_changes(tmp_path: Path) -> None:
    assert git_commit(tmp_path) == ""  # not a checkout
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "f").write_text("1")
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    assert git_commit(tmp_path) == head
    (tmp_path / "f").write_text("2")
    assert git_commit(tmp_path) == f"{head} + local changes"
    assert len(source_commit().split()[0]) == 40  # this checkout's


def test_the_banner_says_statuses_with_their_meaning() -> None:
    baselines, candidate = _runs()
    (sentence,) = build_page(compare(baselines, candidate, Policy()), []).reasons
    assert sentence == (
        "storage/test_store.py::test_store (regressed): "
        "store.status: 0x0000 (Success) → 0xB000 (Warning: coercion of data elements)"
    )
