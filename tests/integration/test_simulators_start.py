"""The simulators start side by side: one that never comes up is the harness's fault, and stops the others."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from harness.demo import demo_profile
from harness.launch.base import LaunchSpec
from harness.launch.process import Process, ProcessLauncher
from harness.model import RunStatus
from harness.runner import RunRequest, run_variant
from harness.surroundings import Surroundings


def test_a_simulator_that_never_comes_up_is_ours_and_the_others_are_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pacs_spec = Surroundings._pacs_spec

    def exiting_pacs(self: Surroundings) -> LaunchSpec:  # the PACS simulator exits before it listens
        return dataclasses.replace(pacs_spec(self), argv=(sys.executable, "-c", "raise SystemExit(3)"))

    started: list[Process] = []
    start = ProcessLauncher.start

    def recorded(self: ProcessLauncher, spec: LaunchSpec) -> Process:
        process = start(self, spec)
        started.append(process)
        return process

    monkeypatch.setattr(Surroundings, "_pacs_spec", exiting_pacs)
    monkeypatch.setattr(ProcessLauncher, "start", recorded)
    manifest = run_variant(RunRequest(demo_profile(), "baseline", "baseline", 1, tmp_path / "run"))
    assert manifest.status is RunStatus.HARNESS_FAILED, (manifest.status, manifest.status_detail)
    assert "exited with code 3" in manifest.status_detail, manifest.status_detail
    roles = [p.spec.role for p in started]
    assert "device" not in roles, roles  # never started beside a simulator that is not there
    assert len(roles) >= 2, roles  # the audit repository came up beside it ...
    assert not [p.spec.label for p in started if p.alive()]  # ... and was stopped with it
