"""`patchgate plan` executed as CI would: run jobs as separate processes on their own "agents", then the compares.

Two devices that run as local processes: the reference device (PACS) with a clean patch, and the reference
modality with a patch that breaks several workflow behaviours. Each run job runs in a workspace of its own (an agent), at most 2 at a time; their plan roots are then
merged into one workspace (the artifacts a compare job downloads) where the compare jobs run. The verdicts,
exit codes and regressed cases must be those `patchgate validate` gives on the same profiles.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, run_cli

PROFILES = {
    "reference-profile": ROOT / "devices" / "reference" / "profile.toml",
    "reference-modality-regression": ROOT / "devices" / "reference-modality" / "regression.toml",
}
EXPECTED = {"reference-profile": "UNCHANGED", "reference-modality-regression": "REGRESSED"}
JOB_TIMEOUT = 300.0  # one run of the reference device takes seconds; minutes only on a machine under heavy load


def _job(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`patchgate ARGV` in a fresh interpreter in `cwd`: one CI job."""
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *argv],
        cwd=cwd, capture_output=True, text=True, timeout=JOB_TIMEOUT, check=False,
    )  # fmt: skip


def _outcome(comparison: Path) -> tuple[str, set[str]]:
    document = json.loads(comparison.read_text())
    return document["verdict"], {c["case"] for c in document["cases"] if c["status"] == "regressed"}


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str, set[str]]]:
    """`patchgate validate` on each profile: exit code, verdict, regressed cases."""
    tmp = tmp_path_factory.mktemp("validate")
    said = {}
    for key, profile in PROFILES.items():
        result = run_cli("validate", "--profile", str(profile), "--out", str(tmp / key), timeout=JOB_TIMEOUT)
        assert result.code in (0, 1), result.stderr
        said[key] = (result.code, *_outcome(tmp / key / "comparison.json"))
    return said


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """The plan (github format), its run jobs on separate agents, and the compare workspace they were merged into."""
    tmp = tmp_path_factory.mktemp("plan")
    printed = run_cli("plan", *map(str, PROFILES.values()), "--replicas", "2", "--out", "patchgate-plan")
    assert printed.code == 0, printed.stderr
    assert len(printed.stdout.splitlines()) == 1  # one line: what $GITHUB_OUTPUT takes
    plan = json.loads(printed.stdout)
    runs = plan["runs"]["include"]
    agents = {job["name"]: tmp / "agents" / job["name"] for job in runs}
    for workspace in agents.values():
        workspace.mkdir(parents=True)
    with ThreadPoolExecutor(max_workers=2) as pool:  # two agents at a time
        done = dict(zip(agents, pool.map(lambda job: _job(job["argv"], agents[job["name"]]), runs), strict=True))
    for name, result in done.items():
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"
    merged = tmp / "compare"
    for job in runs:  # what each job uploads, downloaded into one workspace (GitHub: pattern + merge-multiple)
        shutil.copytree(agents[job["name"]] / job["upload"], merged / plan["compares"]["include"][0]["root"],
                        dirs_exist_ok=True)  # fmt: skip
    return plan, merged


def test_each_run_job_writes_only_its_own_run_directory(planned: tuple[dict[str, Any], Path]) -> None:
    plan, merged = planned
    runs = plan["runs"]["include"]
    assert [(j["device"], j["role"], j["replica"]) for j in runs] == [
        (device, role, replica) for device in ("reference", "reference-modality")
        for role, replica in (("baseline", 1), ("baseline", 2), ("candidate", 1))
    ]  # fmt: skip
    assert len({j["out"] for j in runs}) == len(runs)
    agents = merged.parent / "agents"
    (date,) = {job["argv"][job["argv"].index("--worklist-date") + 1] for job in runs}
    for job in runs:
        workspace = agents / job["name"]
        endpoints = json.loads((workspace / job["out"] / "endpoints.json").read_text())
        assert endpoints["worklist_date"] == date  # the plan's, whatever day the agent ran on
        manifest = json.loads((workspace / job["out"] / "manifest.json").read_text())
        # ... and the manifest says it when a RIS served it, so compare refuses runs of other days' worklists
        assert manifest.get("worklist_date") == (date if endpoints.get("ris") else None), job["name"]
        written = [p.relative_to(workspace) for p in workspace.rglob("*") if p.is_file()]
        assert (workspace / job["out"] / "manifest.json").is_file()
        assert all(p.is_relative_to(job["out"]) for p in written), written


def test_plan_then_compare_gives_validates_verdicts(
    planned: tuple[dict[str, Any], Path], validated: dict[str, tuple[int, str, set[str]]]
) -> None:
    plan, merged = planned
    compares = plan["compares"]["include"]
    assert [c["name"] for c in compares] == list(PROFILES)
    for compare in compares:
        result = _job(compare["argv"], merged)
        verdict, regressed = _outcome(merged / compare["out"] / "comparison.json")
        assert (result.returncode, verdict, regressed) == validated[compare["name"]], result.stdout + result.stderr
        assert verdict == EXPECTED[compare["name"]]
    assert validated["reference-modality-regression"][2], "the regressing patch names its regressed cases"
