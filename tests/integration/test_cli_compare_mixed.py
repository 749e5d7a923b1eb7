"""`patchgate compare` on runs of another corpus: INCONCLUSIVE (exit 2) naming it, or with --allow-mixed the verdict."""

from __future__ import annotations

import json
from pathlib import Path

from harness.model import CaseRecord
from harness.rundir import RunDir
from tests.conftest import run_cli
from tests.factories import make_case, make_corpus, make_manifest


def _write(path: Path, role: str, replica: int, seed: int, sop: str) -> str:
    run = RunDir(path)
    run.prepare()
    run.write_manifest(make_manifest(role, replica, corpus=make_corpus(seed), cases_collected=3))
    writer = run.case_writer()
    cases: list[CaseRecord] = [make_case(f"store/t.py::test_{i}", status=0, sop=sop) for i in range(3)]
    for case in cases:
        writer.write(case)
    writer.close()
    return str(path)


def test_a_candidate_of_another_corpus_is_inconclusive_unless_allowed(tmp_path: Path) -> None:
    b1 = _write(tmp_path / "b1", "baseline", 1, 7, "1.2.3.7")
    b2 = _write(tmp_path / "b2", "baseline", 2, 7, "1.2.3.7")
    cand = _write(tmp_path / "cand", "candidate", 1, 8, "1.2.3.8")
    runs = ("--baseline", b1, "--baseline", b2, "--candidate", cand)
    corpus = (
        f"corpus differs: {cand} (candidate) used seed 8 (sha256 080808080808), "
        f"{b1} (baseline #1) used seed 7 (sha256 070707070707)"
    )

    mixed = run_cli("compare", *runs, "--out", str(tmp_path / "mixed"))
    assert mixed.code == 2, (mixed.code, mixed.stdout, mixed.stderr)
    assert f"patchgate: error: INCONCLUSIVE: mixed runs: {corpus}" in mixed.stderr
    report = json.loads((tmp_path / "mixed" / "comparison.json").read_text())
    assert (report["verdict"], report["reasons"]) == ("INCONCLUSIVE", [f"mixed runs: {corpus}"])

    allowed = run_cli("compare", *runs, "--allow-mixed", "--out", str(tmp_path / "allowed"))
    assert allowed.code == 1, (allowed.code, allowed.stdout, allowed.stderr)
    report = json.loads((tmp_path / "allowed" / "comparison.json").read_text())
    assert report["verdict"] == "REGRESSED"
    assert f"warning: mixed runs allowed: {corpus}" in report["reasons"]
    assert f"warning: mixed runs allowed: {corpus}" in allowed.stdout  # said on the terminal too
