"""Every shipped container profile and policy (devices/orthanc, devices/dcmtk, ...) is held to its [expect] verdict once.

Their validations take minutes, so none is run twice: the tests that already validate each file for what
else they check (test_devices.py, test_network.py, test_workflow_devices.py) assert the verdict its [expect] key states
(`tests.shipped.expected_verdict`). This module holds that map to the shipped files: a new container
profile or policy without a test that validates it fails here. It needs no engine.
"""

from __future__ import annotations

import inspect
from types import ModuleType

from tests.docker import test_devices, test_network, test_robustness_devices, test_workflow_devices
from tests.shipped import DEVICES, shipped

_UNCHANGED_WORKFLOW = (test_workflow_devices, "test_identical_workflow_device_is_unchanged")

# Each shipped container file -> the one test that validates it (a policy: on the runs of its profile).
VALIDATED_BY: dict[str, tuple[ModuleType, str]] = {
    "orthanc/profile.toml": (test_devices, "test_identical_images_are_unchanged"),
    "dcmtk/profile.toml": (test_devices, "test_identical_images_are_unchanged"),
    "orthanc/hardened.toml": (test_devices, "test_hardening_is_regressed_without_policy_and_expected_with_it"),
    "orthanc/hardening-policy.toml": (test_devices, "test_hardening_is_regressed_without_policy_and_expected_with_it"),
    "dcmtk/hardened.toml": (test_devices, "test_hardening_is_regressed_without_policy_and_expected_with_it"),
    "dcmtk/hardening-policy.toml": (test_devices, "test_hardening_is_regressed_without_policy_and_expected_with_it"),
    "orthanc/tls.toml": (test_devices, "test_orthanc_tls_patch_is_shown_and_expected_with_its_policy"),
    "orthanc/tls-policy.toml": (test_devices, "test_orthanc_tls_patch_is_shown_and_expected_with_its_policy"),
    "orthanc/security-update.toml": (test_devices, "test_orthanc_os_security_update_changes_only_the_inventory"),
    "orthanc/security-update-policy.toml": (
        test_devices,
        "test_orthanc_os_security_update_changes_only_the_inventory",
    ),
    "dcmtk/host.toml": (test_network, "test_host_networking_gives_the_same_answers"),
    # The robustness corpus on (issue 12): the identical pairs, never crashed.
    "orthanc/robustness.toml": (
        test_robustness_devices,
        "test_identical_devices_are_unchanged_under_the_corpus_and_never_crashed",
    ),
    "dcmtk/robustness.toml": (
        test_robustness_devices,
        "test_identical_devices_are_unchanged_under_the_corpus_and_never_crashed",
    ),
    # Workflow devices (issue 11): worklist providers, a commitment SCP, a modality driven through REST.
    "orthanc-worklist/profile.toml": _UNCHANGED_WORKFLOW,
    "dcmtk-worklist/profile.toml": _UNCHANGED_WORKFLOW,
    "orthanc/commitment.toml": _UNCHANGED_WORKFLOW,
    "orthanc-modality/profile.toml": _UNCHANGED_WORKFLOW,
    "orthanc-worklist/filtered.toml": (
        test_workflow_devices,
        "test_orthanc_worklist_filter_is_regressed_then_expected",
    ),
    "orthanc-worklist/filtered-policy.toml": (
        test_workflow_devices,
        "test_orthanc_worklist_filter_is_regressed_then_expected",
    ),
    "dcmtk-worklist/charset.toml": (test_workflow_devices, "test_wlmscpfs_character_set_is_regressed_then_expected"),
    "dcmtk-worklist/charset-policy.toml": (
        test_workflow_devices,
        "test_wlmscpfs_character_set_is_regressed_then_expected",
    ),
    "orthanc/commitment-refused.toml": (
        test_workflow_devices,
        "test_orthanc_commitment_refused_is_regressed_then_expected",
    ),
    "orthanc/commitment-refused-policy.toml": (
        test_workflow_devices,
        "test_orthanc_commitment_refused_is_regressed_then_expected",
    ),
    "orthanc-modality/utf8.toml": (test_workflow_devices, "test_orthanc_modality_utf8_is_regressed_then_expected"),
    "orthanc-modality/utf8-policy.toml": (
        test_workflow_devices,
        "test_orthanc_modality_utf8_is_regressed_then_expected",
    ),
}


def test_every_container_file_is_validated_by_one_test_that_reads_its_expect_key() -> None:
    containers = {f.name: f for f in shipped() if f.in_containers}
    assert set(VALIDATED_BY) == set(containers), "add the new container file's validation to VALIDATED_BY"
    for name, (module, test) in VALIDATED_BY.items():
        source = inspect.getsource(getattr(module, test))
        file = name.split("/")[1]
        if "_regressed_then_declared(" in source:
            # The shared helper reads both keys (NAME.toml and NAME-policy.toml); the test names NAME.
            assert "expected_verdict(" in inspect.getsource(test_workflow_devices._regressed_then_declared)
            assert f'"{file.removesuffix(".toml").removesuffix("-policy")}"' in source, (name, test)
        else:
            # The test takes the verdict from the file's key, and names the file (or its device folder's file name).
            assert "expected_verdict(" in source, (name, test)
            assert f'"{file}"' in source, (name, test)
        item = containers[name]
        if item.is_policy:
            # A policy is validated on the runs of the profile its [expect] names, and that test validates it too.
            assert item.profile is not None and item.profile.is_relative_to(DEVICES), name
            profile = item.profile.relative_to(DEVICES).as_posix()
            assert VALIDATED_BY[profile] == (module, test), (name, profile)
