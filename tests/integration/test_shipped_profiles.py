"""Every shipped profile and policy states its verdict ([expect]); the ones that run as local processes are held to it.

The container ones (devices/orthanc, devices/dcmtk) are held by tests/docker (see tests/docker/test_shipped_container_profiles.py);
the local ones another integration test validates anyway (HELD_BY) are held there, so none runs twice.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest

from harness.demo import demo_profile
from harness.model import Comparison, Direction, Verdict
from harness.profile import load_profile
from harness.rundir import read_run
from harness.validation import compare_runs, policy_for, run_validation
from harness.verdict import PERFORMANCE
from tests.integration import test_external, test_provider_suites, test_reference_modality
from tests.shipped import DEVICES, Shipped, read_shipped, shipped

# Patches that change statuses, not who is let in: no comparison of them may claim a security change.
NO_SECURITY_CHANGE = {"reference/store-warning.toml", "reference/get-warning-fixed.toml"}

# A declared slow-down is judged on its metric against what the policy says: the verdict's every line is the C-STORE
# metric's (no functional case decided it), accepted with the policy's reason, or refused for going beyond it.
_METRIC = re.escape(PERFORMANCE) + r"store\.study \d+\.\d\dx \[\d+\.\d\d, \d+\.\d\d\], threshold 1\.10x, "
SAYS = {
    "reference/slow-store-declared-policy.toml": rf"{_METRIC}declared up to 1\.50x, .*: as declared: on-access .*",
    "reference/slow-store-understated-policy.toml": rf"(?!.*as declared){_METRIC}declared up to 1\.05x, .*",
}


# Local files validated by another test for what else it checks (exit codes, named cases): each test asserts the
# verdict the file's [expect] key states (tests.shipped.expected_verdict), so they are not validated here again.
HELD_BY: dict[str, tuple[ModuleType, str]] = {
    "reference-modality/profile.toml": (
        test_reference_modality,
        "test_the_shipped_profile_is_unchanged_without_docker",
    ),
    "reference-modality/regression.toml": (
        test_reference_modality,
        "test_the_regression_profile_exits_1_naming_each_changed_behaviour",
    ),
    # A device started by hand, on ports the test reserves: validated through its hooks there.
    "reference-external/profile.toml": (test_external, "test_validate_runs_the_hand_started_device_through_its_hooks"),
    "reference-external/store-warning.toml": (
        test_external,
        "test_validate_runs_the_hand_started_device_through_its_hooks",
    ),
    "reference-external/archive.toml": (
        test_external,
        "test_per_run_identity_keeps_runs_apart_on_a_device_that_keeps_everything",
    ),
    "reference-ris/profile.toml": (test_provider_suites, "test_reference_ris_clean_rebuild_is_unchanged"),
    "reference-ris/mpps-reopen.toml": (test_provider_suites, "test_reference_ris_patch_is_regressed_naming_the_case"),
    "reference-ris/ignore-station-ae.toml": (
        test_provider_suites,
        "test_reference_ris_patch_is_regressed_naming_the_case",
    ),
}


def _local_groups() -> dict[str, list[Shipped]]:
    """The local validations, by what is validated (a profile, or `demo:VARIANT`): the profile alone and its policies."""
    groups: dict[str, list[Shipped]] = {}
    for path in sorted(DEVICES.glob("**/*.toml")):
        try:
            item = read_shipped(path)
        except AssertionError:
            continue  # test_every_shipped_file_states_its_verdict names it
        if item.in_containers or item.name in HELD_BY:
            continue
        target = f"demo:{item.demo}" if item.demo else Path(str(item.profile)).relative_to(DEVICES).as_posix()
        groups.setdefault(target, []).append(item)
    return groups


GROUPS = _local_groups()


def test_every_shipped_file_states_its_verdict() -> None:
    files = shipped()  # an AssertionError names the first file without [expect]
    assert {f.name for f in files} == {p.relative_to(DEVICES).as_posix() for p in DEVICES.glob("**/*.toml")}
    for item in files:
        if item.is_policy and item.profile is not None:
            # A policy names a shipped profile, so the profile's own verdict is held too.
            assert item.profile.is_relative_to(DEVICES), (item.name, item.profile)
    # The reference device's own profile (a link to harness/data/reference.toml) states UNCHANGED.
    assert {f.name: f.verdict for f in files}["reference/profile.toml"] is Verdict.UNCHANGED
    # Each local validation is held here or by the test HELD_BY names; none is left out.
    held_here = {i.name for group in GROUPS.values() for i in group}
    assert held_here | set(HELD_BY) == {f.name for f in files if not f.in_containers}
    assert set(SAYS) <= held_here, set(SAYS) - held_here  # a renamed file must not silence what its verdict says
    for name, (module, test) in HELD_BY.items():
        assert not read_shipped(DEVICES / name).is_policy, name  # a policy goes with its profile's group here
        assert "expected_verdict(" in inspect.getsource(getattr(module, test)), (name, test)
        assert f'"{name.split("/")[1]}"' in inspect.getsource(module), (name, test)


def test_a_file_without_an_expect_table_fails(tmp_path: Path) -> None:
    profile = tmp_path / "profile.toml"
    text = (DEVICES / "reference" / "store-warning.toml").read_text(encoding="utf-8")
    profile.write_text(text.split("\n[expect]\n")[0] + "\n")
    with pytest.raises(AssertionError, match=r"profile.toml: a shipped profile must state its verdict"):
        read_shipped(profile)
    policy = tmp_path / "policy.toml"
    policy.write_text('[[expected]]\ncase = "*"\npath = "*"\nreason = "r"\n')
    with pytest.raises(AssertionError, match=r"policy.toml: a shipped policy file must state its verdict"):
        read_shipped(policy)


def _moved(comparison: Comparison) -> list[str]:
    return [
        f"{c.case} {c.name} {c.direction.value}"
        for c in comparison.security
        if c.direction in (Direction.TIGHTENED, Direction.LOOSENED)
    ]


@pytest.mark.parametrize("target", sorted(GROUPS))
def test_a_shipped_local_validation_gives_the_verdict_its_files_state(target: str, tmp_path: Path) -> None:
    items: Sequence[Shipped] = GROUPS[target]
    profile = (
        demo_profile(candidate=target.removeprefix("demo:"))
        if target.startswith("demo:")
        else load_profile(DEVICES / target)
    )
    # A verdict of UNCHANGED rests on the noise floor of two baselines; a change shows with one.
    replicas = 2 if any(i.verdict is Verdict.UNCHANGED for i in items) else 1
    alone = run_validation(profile, tmp_path / "alone", replicas=replicas)
    runs = tmp_path / "alone" / "runs"
    baselines = [read_run(d) for d in sorted(runs.glob("baseline-*"))]
    candidate = read_run(runs / "candidate-1")
    for item in items:
        if item.is_policy:  # the same runs, compared under the policy: as `validate --policy FILE` would
            policy = policy_for(profile, [item.path])
            comparison = compare_runs(baselines, candidate, policy, tmp_path / item.path.stem).comparison
        else:
            comparison = alone.comparison
        assert comparison.verdict is item.verdict, (item.name, comparison.reasons)
        if item.name in SAYS:
            lines = list(comparison.reasons)  # every one a performance line of the metric: no functional case decided
            assert lines and all(re.fullmatch(SAYS[item.name], line) for line in lines), (item.name, lines)
        if target in NO_SECURITY_CHANGE:
            assert _moved(comparison) == [], (item.name, _moved(comparison))
