"""Orthanc and DCMTK dcmqrscp as devices under test: the three verdicts, clear errors, and cleanup after SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from harness.images import ORTHANC_SECURITY_IMAGE
from harness.launch.labels import LABEL_OWNER, LABEL_OWNER_SPACE, LABEL_ROLE, LABEL_RUN
from harness.model import CaseStatus, Comparison, Direction, Verdict
from harness.profile import Profile, load_profile
from harness.rundir import RunDir, read_run
from harness.validation import compare_runs, policy_for, run_validation
from simulators._lifeline import LIMIT_ENV
from tests.conftest import ROOT, run_cli
from tests.shipped import expected_verdict

DEVICES = ROOT / "devices"
SERVICES = ("echo", "store", "find", "move", "get")


def _under_policy(profile: Profile, validated: Path, policy: Path, out: Path) -> Comparison:
    """The runs of an earlier validation into `validated`, compared again under `policy`: the devices need not run twice."""
    runs = validated / "runs"
    baselines = [read_run(d) for d in sorted(runs.glob("baseline-*"))]
    return compare_runs(baselines, read_run(runs / "candidate-1"), policy_for(profile, [policy]), out).comparison


@pytest.mark.parametrize("device", ["orthanc", "dcmtk"])
def test_identical_images_are_unchanged(device: str, images: dict[str, str], tmp_path: Path) -> None:
    path = DEVICES / device / "profile.toml"
    comparison = run_validation(load_profile(path), tmp_path).comparison
    assert comparison.verdict is expected_verdict(path) is Verdict.UNCHANGED, comparison.reasons
    assert sum(c.before == "passed" for c in comparison.cases) > 40


@pytest.mark.parametrize("device", ["orthanc", "dcmtk"])
def test_hardening_is_regressed_without_policy_and_expected_with_it(
    device: str, images: dict[str, str], tmp_path: Path
) -> None:
    profile = load_profile(DEVICES / device / "hardened.toml")
    bare = run_validation(profile, tmp_path / "bare").comparison
    assert bare.verdict is expected_verdict(DEVICES / device / "hardened.toml") is Verdict.REGRESSED, bare.reasons
    regressed = {c.case for c in bare.cases if c.status is CaseStatus.REGRESSED}
    # The report names the access-control change of each service.
    for service in SERVICES:
        assert f"access/test_access.py::test_unknown_calling_ae[{service}]" in regressed, sorted(regressed)
    # Nothing else: the audit suite's refused-association case sees the same refusal, and no function changed.
    others = regressed - {c for c in regressed if c.startswith("access/")}
    assert others == {"audit/test_audit.py::test_refused_association"}, sorted(regressed)

    policy = DEVICES / device / "hardening-policy.toml"
    declared = _under_policy(profile, tmp_path / "bare", policy, tmp_path / "declared")
    assert declared.verdict is expected_verdict(policy) is Verdict.CHANGED_AS_EXPECTED, declared.reasons
    assert any("SEC-31" in reason for reason in declared.reasons)


def test_orthanc_tls_patch_is_shown_and_expected_with_its_policy(images: dict[str, str], tmp_path: Path) -> None:
    """Orthanc with DicomTlsEnabled against plain Orthanc: TLS now required, every function unchanged over TLS."""
    profile = load_profile(DEVICES / "orthanc" / "tls.toml")
    bare = run_validation(profile, tmp_path / "bare", replicas=1)
    comparison = bare.comparison
    assert comparison.verdict is expected_verdict(DEVICES / "orthanc" / "tls.toml") is Verdict.REGRESSED, (
        comparison.reasons
    )
    security = {(c.case, c.name): c for c in comparison.security}
    plain = security[("tls/test_tls.py::test_plain_tcp", "admitted")]
    assert (plain.before, plain.after, plain.direction) == (True, False, Direction.TIGHTENED)
    # What Orthanc 1.10 accepts once TLS is on is measured, not assumed: its TLS 1.0 shows as a loosening.
    old = security[("tls/test_tls.py::test_protocol_version[TLSv1]", "accepted")]
    assert old.before is False and old.after is True and old.direction is Direction.LOOSENED
    assert any("security loosened" in r and "TLSv1]" in r for r in comparison.reasons), comparison.reasons
    functional = [c for c in comparison.cases if c.case.startswith(("storage/", "query/", "retrieve/"))]
    assert len(functional) > 40 and all(c.status is CaseStatus.UNCHANGED for c in functional)
    assert bare.runs[-1].extra.tls is True and bare.runs[0].extra.tls is False
    # The inventory of the device container: ports by role, packages, the probe's answer; same image, unchanged.
    case = "surface/test_surface.py::test_inventory"
    observed = next(r for r in RunDir(tmp_path / "bare" / "runs" / "baseline-1").read_cases() if r.case == case)
    inventory = observed.observed()
    assert inventory["listening"] == ["tcp/{dicom} any (Orthanc)", "tcp/{http} any (Orthanc)"], inventory["listening"]
    assert str(inventory["packages"]["orthanc"]).startswith("1.10.")
    assert "1.10" in str(inventory["probe"]), inventory["probe"]
    assert next(c for c in comparison.cases if c.case == case).status is CaseStatus.UNCHANGED

    policy = DEVICES / "orthanc" / "tls-policy.toml"
    declared = _under_policy(profile, tmp_path / "bare", policy, tmp_path / "declared")
    assert declared.verdict is expected_verdict(policy) is Verdict.CHANGED_AS_EXPECTED, declared.reasons
    assert any("security loosened as the policy allows" in r and "SEC-41" in r for r in declared.reasons)


def test_orthanc_os_security_update_changes_only_the_inventory(
    images: dict[str, str], docker_client: Any, tmp_path: Path
) -> None:
    """The same Orthanc after bookworm-security's updates, HTTP off: every DICOM function unchanged, and the
    report lists exactly the packages the upgrade changed (as dpkg inside the image recorded them) and the
    port no longer listening."""
    path = DEVICES / "orthanc" / "security-update.toml"
    profile = load_profile(path)
    bare = run_validation(profile, tmp_path / "bare", replicas=1)
    comparison = bare.comparison
    assert comparison.verdict is expected_verdict(path) is Verdict.REGRESSED, comparison.reasons
    case = "surface/test_surface.py::test_inventory"
    regressed = [c.case for c in comparison.cases if c.status is CaseStatus.REGRESSED]
    assert regressed == [case], regressed
    assert sum(c.status is CaseStatus.UNCHANGED for c in comparison.cases) > 90

    # What the upgrade changed, by the build's own dpkg record ("package old new"), against the report's rows.
    listed = docker_client.containers.run(
        images[ORTHANC_SECURITY_IMAGE], ["cat", "/etc/patchgate/security-updates"], remove=True
    )
    upgraded = {name: (old, new) for name, old, new in (line.split() for line in listed.decode().splitlines())}
    inventory = next(c for c in comparison.cases if c.case == case)
    packages = {
        d.path.removeprefix("packages."): (d.before, d.after)
        for d in inventory.differences
        if d.path.startswith("packages.")
    }
    assert packages == upgraded, (packages, upgraded)
    assert upgraded, "bookworm-security holds no update over the base image: the candidate is no patch at all"
    port = next(c for c in comparison.security if c.case == case and c.name == "listening")
    assert port.direction is Direction.TIGHTENED and port.removed == ("tcp/{http} any (Orthanc)",), port

    # The same runs, compared again under the patch's policy: every change is declared.
    policy = DEVICES / "orthanc" / "security-update-policy.toml"
    declared = _under_policy(profile, tmp_path / "bare", policy, tmp_path / "declared")
    assert declared.verdict is expected_verdict(policy) is Verdict.CHANGED_AS_EXPECTED, declared.reasons
    assert {r for r in declared.reasons if "SEC-5" in r}, declared.reasons


def _profile(tmp_path: Path, image: str, command: list[str], start_timeout: int = 20) -> Path:
    path = tmp_path / "broken.toml"
    quoted = ", ".join(f'"{arg}"' for arg in command)
    path.write_text(
        textwrap.dedent(
            f"""\
            [device]
            name = "broken"
            ae_title = "BROKEN"
            start_timeout = {start_timeout}

            [variants.baseline]
            image = "{image}"
            command = [{quoted}]

            [variants.candidate]
            image = "{image}"
            command = [{quoted}]
            """
        )
    )
    return path


def _one_line_error(result: Any) -> str:
    assert result.code == 2, (result.code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return str(result.stderr.splitlines()[0])


def test_an_image_that_exits_at_start(images: dict[str, str], tmp_path: Path) -> None:
    profile = _profile(tmp_path, "patchgate/dcmtk:3.6.7", ["sh", "-c", "echo licence expired >&2; exit 3"])
    line = _one_line_error(
        run_cli("run", "--profile", str(profile), "--variant", "baseline", "--out", str(tmp_path / "r"))
    )
    assert "container exited with code 3 before answering C-ECHO" in line
    assert "licence expired" in line  # the container's log tail


def test_an_image_that_never_answers(images: dict[str, str], tmp_path: Path) -> None:
    command = ["sh", "-c", "echo waiting for a licence server; sleep 60"]
    profile = _profile(tmp_path, "patchgate/dcmtk:3.6.7", command, start_timeout=3)
    line = _one_line_error(
        run_cli("run", "--profile", str(profile), "--variant", "baseline", "--out", str(tmp_path / "r"))
    )
    assert "did not answer C-ECHO" in line and "within 3 s" in line
    assert "waiting for a licence server" in line


def test_an_image_that_does_not_exist(docker_client: Any, tmp_path: Path) -> None:
    profile = _profile(tmp_path, "patchgate/no-such-device:0.0", ["x"])
    line = _one_line_error(
        run_cli("run", "--profile", str(profile), "--variant", "baseline", "--out", str(tmp_path / "r"))
    )
    assert "image 'patchgate/no-such-device:0.0' not found" in line


def _owned_by(client: Any, pid: int) -> tuple[list[Any], list[Any]]:
    """The containers and networks a harness process `pid` labelled as its own."""
    owner = {"label": f"{LABEL_OWNER}={pid}"}
    return client.containers.list(all=True, filters=owner), client.networks.list(filters=owner)


@pytest.mark.alone  # any other run's start sweeps a killed run's containers
def test_sigkill_mid_run_keeps_cases_and_the_next_start_sweeps(
    docker_client: Any, images: dict[str, str], tmp_path: Path
) -> None:
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            "--profile",
            str(DEVICES / "orthanc" / "profile.toml"),
            "--variant",
            "baseline",
            "--out",
            str(killed),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, LIMIT_ENV: "5"},  # seconds without the harness's heartbeat before its helpers stop
        start_new_session=True,  # its own group: SIGKILL takes the harness and its pytest, as a crash would
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(RunDir(killed).read_cases()) < 8:
            time.sleep(0.2)
        assert len(RunDir(killed).read_cases()) >= 8, "the run never got going"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    recorded = RunDir(killed).read_cases()  # every line parses: nothing recorded is lost
    assert len(recorded) >= 8
    containers, networks = _owned_by(docker_client, process.pid)
    # The device, the simulators, the suites and the pod in the run's own network, all left behind.
    roles = sorted(c.labels[LABEL_ROLE] for c in containers)
    assert roles == ["arr", "device", "pacs", "pod", "suites"], roles
    assert len(networks) == 1, networks
    # Ours notice the heartbeat stopped and exit by themselves; the vendor's device and the pod wait for a sweep.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _running_roles(containers) != ["device", "pod"]:
        time.sleep(0.5)
    assert _running_roles(containers) == ["device", "pod"], _running_roles(containers)
    settled = RunDir(killed).read_cases()
    assert settled[: len(recorded)] == recorded

    after = run_cli(
        "run", "--profile", str(DEVICES / "dcmtk" / "profile.toml"), "--variant", "baseline",
        "--out", str(tmp_path / "next"),
    )  # fmt: skip
    assert after.code == 0, after.stdout + after.stderr
    assert _owned_by(docker_client, process.pid) == ([], [])
    swept = (tmp_path / "next" / "logs" / "swept.txt").read_text().split()
    assert sorted(swept) == sorted([*(c.name for c in containers), networks[0].name])
    # What was recorded before the kill is intact, and nothing was appended since the suites stopped.
    assert RunDir(killed).read_cases() == settled


def _running_roles(containers: list[Any]) -> list[str]:
    running = []
    for container in containers:
        with contextlib.suppress(Exception):  # removed: not running
            container.reload()
            if container.status == "running":
                running.append(container.labels[LABEL_ROLE])
    return sorted(running)


def test_concurrent_sweeps_remove_a_dead_runs_container_once(
    docker_client: Any, images: dict[str, str], tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from harness.launch.engine import sweep

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=30)
    container = docker_client.containers.create(
        "patchgate/dcmtk:3.6.7", ["sleep", "60"], labels={LABEL_OWNER: str(dead.pid), LABEL_RUN: "dead-run"}
    )
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            results = list(pool.map(lambda _: sweep(docker_client), range(3)))
        assert sum(container.name in r for r in results) == 1
        assert container.id not in [c.id for c in docker_client.containers.list(all=True)]
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True)


@pytest.mark.alone  # any other run's start sweeps a killed run's containers
def test_the_sweep_command_removes_what_a_killed_run_left(docker_client: Any, images: dict[str, str]) -> None:
    """`patchgate sweep`: for a CI job's cleanup step, without waiting for the next run to start."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=30)
    network = docker_client.networks.create(f"patchgate-test-{dead.pid}", labels={LABEL_OWNER: str(dead.pid)})
    container = docker_client.containers.run(
        "patchgate/dcmtk:3.6.7", ["sleep", "60"], detach=True, labels={LABEL_OWNER: str(dead.pid), LABEL_RUN: "x"}
    )
    alive = docker_client.containers.create(
        "patchgate/dcmtk:3.6.7", ["sleep", "60"], labels={LABEL_OWNER: str(os.getpid()), LABEL_RUN: "mine"}
    )
    # Another CI job's run on a shared engine: its owner pid means nothing here, so it is left alone.
    foreign_labels = {LABEL_OWNER: str(dead.pid), LABEL_OWNER_SPACE: "other-boot/pid:[1]", LABEL_RUN: "theirs"}
    foreign = docker_client.containers.create("patchgate/dcmtk:3.6.7", ["sleep", "60"], labels=foreign_labels)
    try:
        result = run_cli("sweep")
        assert result.code == 0, result.stdout + result.stderr
        assert f"removed {container.name}" in result.stdout and f"removed {network.name}" in result.stdout
        removed = sum(line.startswith("removed ") for line in result.stdout.splitlines())  # others' leftovers too
        assert f"{removed} container(s) and network(s) of killed runs removed" in result.stdout, result.stdout
        remaining = [c.id for c in docker_client.containers.list(all=True)]
        assert container.id not in remaining and alive.id in remaining  # a live owner's container is kept
        assert foreign.id in remaining and f"removed {foreign.name}" not in result.stdout
    finally:
        for leftover in (container, alive, foreign):
            with contextlib.suppress(Exception):
                leftover.remove(force=True)
        with contextlib.suppress(Exception):
            network.remove()
