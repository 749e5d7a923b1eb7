"""Cancelling runs in process (what the CLI's signal handlers do): runs in progress stop, later ones do not."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from harness.demo import demo_profile
from harness.model import RunStatus, Verdict
from harness.rundir import RunDir
from harness.runner import cancel_runs
from harness.validation import run_validation


def _lines(run: RunDir) -> int:
    return run.cases_finished()


def test_cancel_stops_the_runs_in_progress_and_not_a_later_validation(tmp_path: Path) -> None:
    profile = demo_profile()
    ended: list[str] = []

    def first() -> None:
        try:
            run_validation(profile, tmp_path / "first", replicas=1)
            ended.append("finished")
        except KeyboardInterrupt:
            ended.append("cancelled")

    worker = threading.Thread(target=first)
    worker.start()
    candidate = RunDir(tmp_path / "first" / "runs" / "candidate-1")
    try:
        deadline = time.monotonic() + 90
        while _lines(candidate) < 3 and worker.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _lines(candidate) >= 3, "the candidate run recorded no case within 90 s"
        recorded = candidate.read_cases()
    finally:  # never leave the runs going into the worker's later tests
        cancel_runs()
        worker.join(timeout=60)
    assert not worker.is_alive() and ended == ["cancelled"], ended
    for run in ("baseline-1", "candidate-1"):
        manifest = RunDir(tmp_path / "first" / "runs" / run).read_manifest()
        assert manifest.status is RunStatus.INTERRUPTED, (run, manifest.status)
    assert candidate.read_cases()[: len(recorded)] == recorded  # what was recorded before the cancel is kept

    # The cancel was for the runs then in progress: a validation started afterwards runs to its verdict.
    later = run_validation(profile, tmp_path / "later", replicas=1)
    assert later.comparison.verdict is Verdict.UNCHANGED, later.comparison.reasons
