"""One validation of the reference device on the clinical-size corpus, end to end: the large objects really travel."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from harness import runner
from harness.demo import demo_profile
from harness.model import Outcome, RunStatus, Verdict
from harness.profile import load_profile
from harness.rundir import read_run
from harness.runner import RunRequest, run_variant
from harness.validation import run_validation
from simulators import corpus

ROOT = Path(__file__).resolve().parents[2]
LARGE = ("CT512-explicit-01", "CT512-rle-12", "DX3000-explicit", "XA-explicit")


def test_clean_patch_on_the_clinical_corpus_is_unchanged_and_moves_the_large_objects(tmp_path: Path) -> None:
    profile = load_profile(ROOT / "devices" / "reference" / "clinical.toml")
    assert profile.corpus_size == "clinical"
    started = time.monotonic()
    # One baseline: a clean rebuild must show no change at all, so no noise floor is needed (as test_mutation).
    comparison = run_validation(profile, tmp_path, replicas=1).comparison
    took = time.monotonic() - started
    assert comparison.verdict is Verdict.UNCHANGED, comparison.reasons
    keys = corpus.keys("clinical")
    for name in ("baseline-1", "candidate-1"):
        run = read_run(tmp_path / "runs" / name)
        assert run.manifest.corpus is not None
        assert (run.manifest.corpus.size, run.manifest.corpus.items) == ("clinical", len(keys))
        cases = run.by_case()
        # A case per corpus item, the large ones included, each stored and retrieved bit-identical.
        stored = {c.removeprefix("storage/test_store.py::test_store_then_retrieve[").rstrip("]") for c in cases}
        assert set(keys) <= stored, sorted(set(keys) - stored)
        for key in LARGE:
            case = cases[f"storage/test_store.py::test_store_then_retrieve[{key}]"]
            assert case.outcome is Outcome.PASSED, (name, key, case.message)
        # The patient-level C-MOVE and C-GET carry every large object of the first patient, all conformant.
        for case_id in ("test_move[patient-root-patient]", "test_get[patient-root-patient]"):
            case = cases[f"retrieve/test_retrieve.py::{case_id}"]
            assert case.outcome is Outcome.PASSED, (name, case_id, case.message)
            iod = next(o.value for o in case.observations if o.name == "iod")
            assert isinstance(iod, dict)
            for key in LARGE:
                assert iod[key] == {"errors": {}, "warnings": {}}, (name, case_id, key, iod.get(key))
        failed = [c.case for c in run.cases if c.outcome in (Outcome.FAILED, Outcome.ERROR)]
        assert failed == [], (name, failed)
    # The suites' own budget is 600 s a variant; this bounds the clinical corpus' cost on a loaded 2-core CI.
    assert took < 400, f"a clinical validation took {took:.0f} s"


def test_suites_that_make_another_corpus_than_the_manifest_records_end_the_run_as_a_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The manifest says one corpus, the suites make another (as a stale suites image would): never "completed".
    real = runner.corpus_info(corpus.DEFAULT_SEED)
    other = dataclasses.replace(real, sha256="0" * 64)
    monkeypatch.setattr(runner, "corpus_info", lambda seed, size="small": other)
    manifest = run_variant(RunRequest(demo_profile(), "baseline", "baseline", 1, tmp_path / "run"))
    assert manifest.status is RunStatus.SUITE_ERROR, (manifest.status, manifest.status_detail)
    assert "harness fault: the suites made corpus sha256 " + real.sha256[:12] in manifest.status_detail, (
        manifest.status_detail
    )
    assert "the run records 000000000000" in manifest.status_detail, manifest.status_detail
