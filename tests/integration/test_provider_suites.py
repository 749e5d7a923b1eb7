"""The provider suites (worklist, mpps, commitment) end to end: the reference RIS device and the reference device's SCP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.model import CaseStatus, Verdict
from harness.profile import load_profile
from harness.validation import run_validation
from tests.conftest import ROOT, CliResult, require_tool, run_cli
from tests.shipped import expected_verdict

RIS = ROOT / "devices" / "reference-ris"
RUNS = ("baseline-1", "baseline-2", "candidate-1")

# For each changed RIS profile, the cases that must be named as regressed.
RIS_MUST_NAME = {
    "mpps-reopen.toml": {"mpps/test_mpps.py::test_set_after_completed"},
    "ignore-station-ae.toml": {
        "worklist/test_worklist.py::test_worklist[station]",
        "worklist/test_worklist.py::test_worklist[station-other]",
    },
}


def _cases(out: Path, run: str) -> dict[str, dict[str, Any]]:
    """The case records of one run of a validation, by case id."""
    lines = (out / "runs" / run / "observations.jsonl").read_text(encoding="utf-8").splitlines()
    return {record["case"]: record for record in map(json.loads, lines)}


def _ran(out: Path, prefixes: tuple[str, ...]) -> dict[str, list[str]]:
    """For each run: the cases under `prefixes` that did not pass (so [] everywhere means: all ran, all passed)."""
    not_passed: dict[str, list[str]] = {}
    for run in RUNS:
        cases = {k: v for k, v in _cases(out, run).items() if k.startswith(prefixes)}
        assert cases, f"{run}: no case under {prefixes}"
        not_passed[run] = sorted(
            f"{k}: {v['outcome']} {v['message']}" for k, v in cases.items() if v["outcome"] != "passed"
        )
    return not_passed


@pytest.fixture(scope="module")
def ris_clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[CliResult, Path]:
    out = tmp_path_factory.mktemp("reference-ris")
    return run_cli("validate", "--profile", str(RIS / "profile.toml"), "--out", str(out)), out


def test_reference_ris_clean_rebuild_is_unchanged(ris_clean: tuple[CliResult, Path]) -> None:
    """The worklist and MPPS suites against a correct MWL + MPPS SCP: every case runs and passes in every run, and
    two runs of one device observe the same (no false alarm)."""
    result, out = ris_clean
    assert result.code == 0, result.stdout + result.stderr
    verdict = json.loads((out / "comparison.json").read_text())["verdict"]
    assert verdict == expected_verdict(RIS / "profile.toml") == Verdict.UNCHANGED
    assert _ran(out, ("worklist/", "mpps/")) == {run: [] for run in RUNS}
    worklist = [c for c in _cases(out, "baseline-1") if c.startswith("worklist/")]
    mpps = [c for c in _cases(out, "baseline-1") if c.startswith("mpps/")]
    assert len(worklist) >= 20 and len(mpps) >= 9, (worklist, mpps)


def test_reference_ris_serves_the_seeded_worklist(ris_clean: tuple[CliResult, Path]) -> None:
    """The device served what the harness seeded: the .wl files of {worklist.dir}, and its log says it read eight."""
    _, out = ris_clean
    for run in RUNS:
        folder = out / "runs" / run / "device" / "worklist" / "REFRIS"
        assert sorted(p.name for p in folder.iterdir()) == [f"SPS-{n}.wl" for n in range(1, 9)] + ["lockfile"]
        assert "8 items for" in (out / "runs" / run / "logs" / "device.log").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(RIS_MUST_NAME))
def test_reference_ris_patch_is_regressed_naming_the_case(name: str, tmp_path: Path) -> None:
    """A RIS quirk turns the verdict REGRESSED and names its case (PS3.4 F.7.2.2.3 for mpps-reopen; the
    Scheduled Station AE Title, a required matching key of PS3.4 Table K.6-1, for ignore-station-ae)."""
    comparison = run_validation(load_profile(RIS / name), tmp_path, replicas=1).comparison
    assert comparison.verdict is expected_verdict(RIS / name) is Verdict.REGRESSED, comparison.reasons
    regressed = {c.case for c in comparison.cases if c.status is CaseStatus.REGRESSED}
    assert regressed == RIS_MUST_NAME[name], sorted(regressed)


# DCMTK's worklist server as an MWL device, seeded like any other ({worklist.root}: a folder per called AE title).
WLMSCPFS = """
[device]
name = "wlmscpfs"
ae_title = "WLMSCPFS"
services = ["echo", "mwl"]

[variants.baseline]
command = ["{tool}", "-s", "-csk", "-dfp", "{{worklist.root}}", "{{port}}"]

[variants.candidate]
command = ["{tool}", "-s", "-csk", "-dfp", "{{worklist.root}}", "{{port}}"]
"""


def test_the_worklist_suite_holds_for_an_independent_mwl_scp(tmp_path: Path) -> None:
    """The worklist cases assert only what PS3.4 K.6 requires (required matching keys, Table K.6-1), so DCMTK's
    wlmscpfs, which matches fewer optional keys than the RIS, passes every case of them, twice alike (UNCHANGED)."""
    tool = require_tool("wlmscpfs", "apt-get install dcmtk")
    profile = tmp_path / "wlmscpfs.toml"
    profile.write_text(WLMSCPFS.format(tool=tool), encoding="utf-8")
    out = tmp_path / "out"
    comparison = run_validation(load_profile(profile), out, replicas=1).comparison
    assert comparison.verdict is Verdict.UNCHANGED, comparison.reasons
    for run in ("baseline-1", "candidate-1"):
        cases = {k: v for k, v in _cases(out, run).items() if k.startswith("worklist/")}
        assert len(cases) >= 20 and all(v["outcome"] == "passed" for v in cases.values()), cases


def test_demo_runs_the_commitment_cases_unchanged(tmp_path: Path) -> None:
    """The reference device declares the commitment service: its clean rebuild stays UNCHANGED, and every
    storage commitment case ran and passed in every run (reports on the same and on a new association)."""
    result = run_cli("validate", "--demo", "--out", str(tmp_path))
    assert result.code == 0, result.stdout + result.stderr
    assert json.loads((tmp_path / "comparison.json").read_text())["verdict"] == "UNCHANGED"
    assert _ran(tmp_path, ("commitment/",)) == {run: [] for run in RUNS}
    record = _cases(tmp_path, "candidate-1")["commitment/test_commitment.py::test_report_association[new]"]
    how = next(o["value"] for o in record["observations"] if o["name"] == "commit.how")
    assert how == {"how": "new", "role": "scp", "order": ["N-ACTION-RSP"]}
