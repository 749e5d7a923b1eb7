"""The workflow suites (suites/workflow/) end to end, against a scripted modality (tests/workflow_device.py).

The device is a profile of `command` actions, each one step of IHE Scheduled Workflow done with
the simulators' SCU against the run's RIS and PACS simulators, as `patchgate validate` runs it:
identical variants give UNCHANGED with every workflow case run, and a candidate that leaves
Accession Number out of its images REGRESSES, naming test_scenario and ihe.accession_number.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.model import Outcome, RunStatus
from harness.profile import parse_profile
from harness.rundir import RunDir, read_run
from suites.workflow.integrity import CHECKS
from tests.conftest import run_cli, start_cli

DEVICE = Path(__file__).resolve().parent.parent / "workflow_device.py"
SEED = 1422
CASES = (
    "workflow/test_worklist_query.py::test_worklist_query",
    "workflow/test_mpps.py::test_mpps_completed",
    "workflow/test_mpps.py::test_mpps_discontinued",
    "workflow/test_images.py::test_images",
    "workflow/test_commitment.py::test_commitment_all_held",
    "workflow/test_commitment.py::test_commitment_failure",
    "workflow/test_scenario.py::test_scenario",
    "workflow/test_forward.py::test_forward",
)
STEPS = ("query_worklist", "start_procedure", "acquire", "complete", "discontinue", "commit")


def _act(name: str, *, item: bool = True) -> str:
    """One `command` action: the device script's `act` sub-command for the item (commit is also told what arrived)."""
    argv = ["{python}", str(DEVICE), "act", "--state", "{workdir}/state", name]
    if item:
        argv.append("{item.sps_id}")
    if name == "commit":
        argv += ["--instances", "{instances}"]
    if name == "forward":
        argv.append("{study_uid}")
    return f'[device.actions.{name}]\nkind = "command"\ncommand = {json.dumps(argv)}\nsettle = 3\n'


def _serve(extra: tuple[str, ...] = ()) -> str:
    argv = ["{python}", str(DEVICE), "serve", "--state", "{workdir}/state", "--ae-title", "{ae_title}"]
    argv += ["--port", "{port}", "--ris", "{ris.ae_title}@{ris.host}:{ris.port}"]
    argv += ["--pacs", "{pacs.ae_title}@{pacs.host}:{pacs.port}", "--date", "{worklist.date}", "--seed", str(SEED)]
    return json.dumps([*argv, *extra])


def profile(tmp_path: Path, *, candidate: tuple[str, ...] = (), scenario: bool = False) -> Path:
    """A scripted modality profile; `candidate` adds flags to the candidate's device, `scenario` declares that action."""
    actions = "\n".join(_act(name, item=name != "query_worklist") for name in STEPS)
    actions += "\n" + _act("forward", item=False)  # a modality that also routes what it is sent
    if scenario:
        actions += "\n" + _act("scenario")
    text = f"""
[device]
name = "scripted-modality"
ae_title = "WFMOD"
services = ["echo"]
initiates = ["mwl", "mpps", "store", "commitment", "forward"]
start_timeout = 30

{actions}
[corpus]
seed = {SEED}

[variants.baseline]
description = "as scripted"
command = {_serve()}

[variants.candidate]
description = "patched"
command = {_serve(candidate)}
"""
    path = tmp_path / "modality.toml"
    path.write_text(text, encoding="utf-8")
    parsed = parse_profile(text, str(path))  # a valid profile, before spending a validation on it
    assert parsed.ris_simulator is not None and "commit" in parsed.device.actions
    return path


def _validate(path: Path, out: Path) -> tuple[int, str]:
    result = run_cli("validate", "--profile", str(path), "--out", str(out), timeout=600)
    return result.code, result.stdout + result.stderr


def test_identical_variants_run_every_workflow_case_unchanged(tmp_path: Path) -> None:
    """A conformant scripted modality: each case runs (not skipped), passes, and the verdict is UNCHANGED."""
    out = tmp_path / "out"
    code, said = _validate(profile(tmp_path), out)
    assert code == 0 and "VERDICT: UNCHANGED" in said, said[-4000:]
    for label in ("baseline-1", "baseline-2", "candidate-1"):
        cases = read_run(out / "runs" / label).by_case()
        for name in CASES:
            case = cases[name]
            assert case.outcome is Outcome.PASSED, (label, case)
    observed = read_run(out / "runs" / "baseline-1").by_case()
    scenario = observed["workflow/test_scenario.py::test_scenario"].observed()
    assert {k: v for k, v in scenario.items() if k.startswith("ihe.")} == {f"ihe.{name}": "ok" for name in CHECKS}, (
        scenario
    )
    assert scenario["scenario.steps"] == ["query_worklist", "start_procedure", "acquire", "complete", "commit"]
    query = observed["workflow/test_worklist_query.py::test_worklist_query"].observed()
    assert query["mwl.query.kind"] == ["broad: station, date"], query
    assert query["mwl.answers"] == [[f"PGSPS000{n}" for n in range(1, 7)]], query
    failure = observed["workflow/test_commitment.py::test_commitment_failure"].observed()
    assert failure["commit.failure_reaction"] == "resent+asked_again", failure
    assert failure["commit.report"] == {"event_type": 2, "committed": 1, "failed": {"0x0112": 1}}, failure
    wire = observed["workflow/test_forward.py::test_forward"].observed()["wire"]
    assert wire["associations"] == 1 and len(wire["objects"]) == 10, wire  # the first study, on one association
    kept = {k: v["attributes"] for k, v in wire["objects"].items() if any(v["attributes"].values())}
    assert not kept, kept  # forwarded as received
    mpps = observed["workflow/test_mpps.py::test_mpps_completed"].observed()
    assert (mpps["mpps.create.status"], mpps["mpps.set.statuses"], mpps["mpps.final_state"]) == (
        "0x0000",
        ["0x0000"],
        "COMPLETED",
    ), mpps


def test_images_without_accession_number_regress_naming_the_check(tmp_path: Path) -> None:
    """RAD TF-2x Table A.1-1: Accession Number must be copied into the images; a candidate that drops it REGRESSES."""
    out = tmp_path / "out"
    code, said = _validate(profile(tmp_path, candidate=("--drop-accession",), scenario=True), out)
    assert code == 1 and "VERDICT: REGRESSED" in said, said[-4000:]
    comparison = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    regressed = {c["case"]: c for c in comparison["cases"] if c["status"] == "regressed"}
    scenario = regressed.get("workflow/test_scenario.py::test_scenario")
    assert scenario is not None, sorted(regressed)
    paths = [d["path"] for d in scenario["differences"]]
    assert any("ihe.accession_number" in p for p in paths), paths
    assert "workflow/test_images.py::test_images" in regressed, sorted(regressed)
    candidate = read_run(out / "runs" / "candidate-1").by_case()
    assert candidate["workflow/test_scenario.py::test_scenario"].observed()["ihe.accession_number"] == (
        "missing: images"
    )
    assert candidate["workflow/test_scenario.py::test_scenario"].observed()["scenario.steps"] == ["scenario"]


def test_an_iod_check_that_cannot_judge_ends_the_run_as_a_suite_error(tmp_path: Path) -> None:
    """dciodvfy crashing on an acquired image is the harness's fault: the run stops (suite_error), never a finding."""
    broken = tmp_path / "dciodvfy"
    broken.write_text("#!/bin/sh\necho 'Segmentation fault' >&2\nexit 139\n", encoding="utf-8")
    broken.chmod(0o755)
    out = tmp_path / "run"
    proc = start_cli(
        "run", "--profile", str(profile(tmp_path)), "--variant", "baseline", "--out", str(out),
        env={"PATCHGATE_DCIODVFY": str(broken)},
    )  # fmt: skip
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err[-2000:]
    manifest = RunDir(out).read_manifest()
    assert manifest.status is RunStatus.SUITE_ERROR, manifest.status_detail
    pytest_log = RunDir(out).log("pytest").read_text(encoding="utf-8")
    assert "harness fault, IOD check: dciodvfy exited with 139" in pytest_log, pytest_log[-2000:]
