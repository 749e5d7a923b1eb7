"""The robustness corpus against containers: Orthanc and dcmqrscp unchanged and never crashed; a container that exits.

The identical pairs run the robustness suite alone (`suites.paths`): devices/orthanc/robustness.toml and
devices/dcmtk/robustness.toml are profile.toml plus `[robustness]`, and the functional suites of those same
devices and configurations are validated by test_devices.test_identical_images_are_unchanged.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from harness.images import simulators_image
from harness.model import RunStatus, Verdict
from harness.profile import Profile, load_profile
from harness.rundir import RunDir, read_run
from harness.runner import RunRequest, robustness_inputs, run_variant, suites_root
from harness.validation import run_validation
from tests.shipped import DEVICES, expected_verdict

OVER_MAX = "test_corpus.py::test_input[pdu.pdata.over-max]"
VERSION_0 = "test_corpus.py::test_input[pdu.rq.version-0]"
# What no input may make of a healthy device: its own exit, the engine's restart, or no C-ECHO after.
HARM = {"exited", "restarted", "unresponsive"}


def _robustness_only(profile: Profile) -> Profile:
    return dataclasses.replace(profile, suite_paths=(str(suites_root() / "robustness"),))


@pytest.mark.parametrize("device", ["orthanc", "dcmtk"])
def test_identical_devices_are_unchanged_under_the_corpus_and_never_crashed(
    device: str, images: dict[str, str], tmp_path: Path
) -> None:
    path = DEVICES / device / "robustness.toml"
    profile = load_profile(path)
    assert profile.robustness.enabled and profile.device.restart == "no"
    comparison = run_validation(_robustness_only(profile), tmp_path).comparison
    assert comparison.verdict is expected_verdict(path) is Verdict.UNCHANGED, comparison.reasons
    sent = robustness_inputs(profile)
    assert len(sent) == len(comparison.cases) > 40, comparison.reasons  # every input, compared in every run
    runs = sorted((tmp_path / "runs").iterdir())
    assert [r.name for r in runs] == ["baseline-1", "baseline-2", "candidate-1"]
    for directory in runs:
        manifest = read_run(directory).manifest
        assert manifest.status is RunStatus.COMPLETED, (directory.name, manifest.status_detail)
        assert manifest.robustness is not None, directory.name
        assert (manifest.robustness.revivals, manifest.robustness.stopped) == ((), ""), directory.name
        run = RunDir(directory)
        finals = {line["input"]: line["final"] for line in run.read_lines(run.robustness_reactions)}
        assert set(finals) == set(sent), directory.name
        assert {i: k for i, k in finals.items() if k in HARM} == {}, directory.name
        # What the harness saw of the container as the phase ended: running, never restarted by the engine.
        lines = run.read_lines(run.robustness_device)
        assert [(line["event"], line["detail"]) for line in lines] == [("state", "running")], (directory.name, lines)
        assert (lines[0]["running"], lines[0]["restart_count"], lines[0]["oom_killed"]) == (True, 0, False)


def _crashing(tmp_path: Path, restart: str, memory_limit: str = "") -> Profile:
    """The reference device's `crash-on-oversized-pdu` variant (exit code 70 on pdu.pdata.over-max) in a container."""
    command = (
        '["python", "-m", "simulators.reference", "--variant", "crash-on-oversized-pdu", "--ae-title", "{ae_title}", '
        '"--port", "{port}", "--storage", "{workdir}/storage", "--destination", "{pacs.ae_title}={pacs.host}:{pacs.port}"]'
    )
    variant = f'image = "{simulators_image()}"\ncommand = {command}\n'
    text = (
        f'[device]\nname = "reference"\nae_title = "REFDEVICE"\nrestart = "{restart}"\nmemory_limit = "{memory_limit}"\n\n'
        f"[variants.baseline]\n{variant}\n[variants.candidate]\n{variant}\n"
        f'[suites]\npaths = ["{suites_root() / "robustness"}"]\n\n'
        # The crash, then an input the device answers at once: the next input meets a device that is up again.
        '[robustness]\nenabled = true\ninputs = ["pdu.pdata.over-max", "pdu.rq.version-0"]\ndeadline = 4\n'
    )
    path = tmp_path / f"crash-{restart}.toml"
    path.write_text(text, encoding="utf-8")
    return load_profile(path)


def _observed(directory: Path, case: str) -> dict[str, Any]:
    return read_run(directory).by_case()[case].observed()


def test_a_container_restarted_by_its_policy_reads_restarted(images: dict[str, str], tmp_path: Path) -> None:
    # With a memory limit too: the engine takes both (an option or value it does not know fails the start).
    profile = _crashing(tmp_path, "on-failure", memory_limit="512m")
    manifest = run_variant(RunRequest(profile, "baseline", "baseline", 1, tmp_path / "run"))
    assert manifest.status is RunStatus.COMPLETED, manifest.status_detail
    over = _observed(tmp_path / "run", OVER_MAX)
    assert over["robustness.reaction"]["kind"] == "restarted" and over["robustness.severity"] == 3, over
    assert over["robustness.detail"] == "restarted: the engine started the container again (its restart policy)"
    assert _observed(tmp_path / "run", VERSION_0)["robustness.reaction"]["kind"] == "rejected"
    assert manifest.robustness is not None and manifest.robustness.revivals == ()  # the engine did it, not the harness
    run = RunDir(tmp_path / "run")
    lines = run.read_lines(run.robustness_device)
    assert [(line["event"], line["input"]) for line in lines] == [("restarted", "pdu.pdata.over-max"), ("state", "")]
    assert (lines[1]["running"], lines[1]["restart_count"]) == (True, 1)


def test_a_container_that_exits_without_a_policy_reads_exited_and_is_revived(
    images: dict[str, str], tmp_path: Path
) -> None:
    manifest = run_variant(RunRequest(_crashing(tmp_path, "no"), "baseline", "baseline", 1, tmp_path / "run"))
    assert manifest.status is RunStatus.COMPLETED, manifest.status_detail
    over = _observed(tmp_path / "run", OVER_MAX)
    assert over["robustness.reaction"]["kind"] == "exited" and over["robustness.detail"] == "exit code 70", over
    assert _observed(tmp_path / "run", VERSION_0)["robustness.reaction"]["kind"] == "rejected"
    assert manifest.robustness is not None
    assert [(r.input, r.reaction) for r in manifest.robustness.revivals] == [("pdu.pdata.over-max", "exited")]
    run = RunDir(tmp_path / "run")
    events = [(line["event"], line["input"]) for line in run.read_lines(run.robustness_device)]
    assert events == [("exited", "pdu.pdata.over-max"), ("revived", "pdu.pdata.over-max"), ("state", "")]
    # Both containers' logs are kept, in order, with the revival between them.
    log = run.log("device").read_text(encoding="utf-8")
    before, marker, after = log.partition("--- revived after robustness input pdu.pdata.over-max ---\n")
    assert marker and before.strip() and after.strip(), log
