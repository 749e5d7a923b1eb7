"""The Python API: validate, run and compare as functions, the stable face of the CLI's three commands (docs/api.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from harness.actions import ActionError
from harness.demo import demo_profile
from harness.errors import (
    EvidenceError,
    HarnessError,
    PolicyError,
    ProfileError,
    RunDirError,
    SuiteError,
    TargetError,
)
from harness.model import CaseComparison, CaseStatus, Comparison, Difference, Manifest, RunStatus, Verdict
from harness.profile import Profile, load_profile
from harness.validation import Validation, compare_runs, policy_for, read_runs, run_validation

__all__ = [
    "ActionError",
    "CaseComparison",
    "CaseStatus",
    "Comparison",
    "Difference",
    "EvidenceError",
    "HarnessError",
    "Manifest",
    "PolicyError",
    "Profile",
    "ProfileError",
    "ProfileLike",
    "RunDirError",
    "RunStatus",
    "SuiteError",
    "TargetError",
    "Validation",
    "Verdict",
    "compare",
    "demo",
    "load_profile",
    "run",
    "validate",
]

# A profile as loaded (load_profile, demo), or the path of its TOML file.
ProfileLike = Profile | str | Path


def demo(candidate: str = "clean-rebuild", baseline: str = "clean") -> Profile:
    """The embedded reference device with `candidate` as the patch (`patchgate variants` lists the variants)."""
    return demo_profile(candidate=candidate, baseline=baseline)


def _profile(given: ProfileLike, performance: bool, robustness: bool) -> Profile:
    loaded = given if isinstance(given, Profile) else load_profile(given)
    if performance:
        loaded = dataclasses.replace(loaded, performance=dataclasses.replace(loaded.performance, enabled=True))
    if robustness:
        loaded = dataclasses.replace(loaded, robustness=dataclasses.replace(loaded.robustness, enabled=True))
    return loaded


def validate(
    device: ProfileLike,
    out: str | Path,
    *,
    policy: Sequence[str | Path] = (),
    replicas: int = 2,
    serial: bool = False,
    performance: bool = False,
    robustness: bool = False,
    replace: bool = False,
    signing_key: str | Path | None = None,
) -> Validation:
    """`patchgate validate`: run `replicas` baselines and the candidate, compare, write the reports under `out`.

    `device` is a Profile or a profile path; `policy` adds policy files to the profile's own entries;
    `performance` / `robustness` switch those phases on; `replace` removes a previous validation in `out`
    first (else `out` holding one is a RunDirError); `signing_key` is the Ed25519 key (PEM) that signs the
    evidence pack (None: a key made for this validation, its public half kept beside it). The verdict is `result.comparison.verdict`
    (`.exit_code` is the CLI's); a device that fails to start gives INCONCLUSIVE, not an exception.
    """
    if replicas < 1:
        raise HarnessError(f"replicas={replicas}: at least 1 is needed", hint="2 (the default) measures noise")
    loaded = _profile(device, performance, robustness)
    where = Path(out)
    if not replace:
        from harness.rundir import OutDir

        if OutDir(where).holds_validation():
            raise RunDirError(f"{where}: already holds a validation", hint="pass replace=True, or another out")
    return run_validation(
        loaded,
        where,
        replicas=replicas,
        concurrent=not serial,
        policy_files=[Path(p) for p in policy],
        replace_previous=replace,
        signing_key=None if signing_key is None else Path(signing_key),
    )


def run(
    device: ProfileLike,
    variant: str,
    out: str | Path,
    *,
    role: str = "",
    replica: int = 1,
    performance: bool = False,
    robustness: bool = False,
    worklist_date: str = "",
) -> Manifest:
    """`patchgate run`: one variant into the run directory `out` (which must not hold a run yet).

    `role` defaults to the variant's name when that is "baseline" or "candidate", else "candidate".
    `worklist_date` (YYYYMMDD; "": today, UTC) is the day the RIS simulator schedules its worklist on: runs
    compared together need one (compare calls runs of different dates mixed).
    Returns the run's manifest whatever happened to the device: check `manifest.status`
    (RunStatus.COMPLETED, or why not and `status_detail`); raises only for a bad profile or `out`.
    """
    from harness.plan import worklist_date as checked_date
    from harness.runner import RunRequest, run_variant

    date = checked_date(worklist_date) if worklist_date else ""
    loaded = _profile(device, performance, robustness)
    loaded.variant(variant)  # an unknown variant: a ProfileError naming the known ones, before anything starts
    role = role or (variant if variant in ("baseline", "candidate") else "candidate")
    return run_variant(RunRequest(loaded, variant, role, replica, Path(out), date))


def compare(
    baselines: Sequence[str | Path],
    candidate: str | Path,
    out: str | Path,
    *,
    device: ProfileLike | None = None,
    policy: Sequence[str | Path] = (),
    allow_mixed: bool = False,
    signing_key: str | Path | None = None,
) -> Validation:
    """`patchgate compare`: compare run directories (made by `run`) and write the reports under `out`.

    The policy is `device`'s (a Profile or a profile path; its [[expected]] entries and policy files)
    plus the `policy` files. `allow_mixed` compares runs made by different patchgate or corpus versions.
    A missing or corrupted run directory is a RunDirError; `signing_key` as for `validate`.
    """
    if not baselines:
        raise HarnessError("compare needs at least one baseline run directory", hint="compare([BASELINE...], ...)")
    loaded = None if device is None else _profile(device, False, False)
    rules = policy_for(loaded, [Path(p) for p in policy])
    *before, after = read_runs([*baselines, candidate])
    where = Path(out)
    where.mkdir(parents=True, exist_ok=True)
    key = None if signing_key is None else Path(signing_key)
    return compare_runs(before, after, rules, where, allow_mixed=allow_mixed, signing_key=key)
