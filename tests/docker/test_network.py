"""The run's network: a namespace of its own per run (the default) or host networking, cleanup on SIGTERM, stale images."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from harness.errors import TargetError
from harness.images import LABEL_SOURCE, require_simulators_image
from harness.launch.labels import LABEL_OWNER
from harness.model import RunStatus, Verdict
from harness.profile import load_profile
from harness.rundir import RunDir, read_run
from harness.validation import run_validation
from tests.conftest import ROOT
from tests.shipped import expected_verdict

DCMTK = ROOT / "devices" / "dcmtk"


def _fixed_port_profile(tmp_path: Path) -> Path:
    """dcmqrscp on fixed ports: concurrent runs only work when each has a network namespace of its own."""
    path = tmp_path / "fixed.toml"
    config = DCMTK / "dcmqrscp.cfg"
    path.write_text(
        textwrap.dedent(
            f"""\
            [device]
            name = "dcmqrscp"
            ae_title = "DCMQRSCP"
            port = 4242
            services = ["echo", "store", "find", "move", "get"]
            start_timeout = 30

            [simulators.pacs]
            ae_title = "PGPACS"
            port = 11112

            [variants.baseline]
            image = "patchgate/dcmtk:3.6.7"
            command = ["dcmqrscp", "--disable-host-lookup", "-c", "/etc/patchgate/dcmqrscp.cfg"]
            files = {{ "/etc/patchgate/dcmqrscp.cfg" = "{config}" }}

            [variants.candidate]
            image = "patchgate/dcmtk:3.6.7"
            command = ["dcmqrscp", "--disable-host-lookup", "-c", "/etc/patchgate/dcmqrscp.cfg"]
            files = {{ "/etc/patchgate/dcmqrscp.cfg" = "{config}" }}
            """
        )
    )
    return path


def _leftovers(client: Any) -> tuple[list[Any], list[Any]]:
    owner = {"label": f"{LABEL_OWNER}={os.getpid()}"}
    return client.containers.list(all=True, filters=owner), client.networks.list(filters=owner)


def test_concurrent_runs_on_the_same_fixed_ports_each_get_a_network(
    docker_client: Any, images: dict[str, str], tmp_path: Path
) -> None:
    result = run_validation(load_profile(_fixed_port_profile(tmp_path)), tmp_path / "out")
    assert result.comparison.verdict is Verdict.UNCHANGED, result.comparison.reasons
    networks = [run.extra.network or {} for run in result.runs]
    assert all(n["mode"] == "bridge" and n["internal"] is True for n in networks), networks
    assert len({n["network"] for n in networks}) == 3, networks  # two baselines and the candidate, one each
    assert all(run.device_endpoint is not None and run.device_endpoint.port == 4242 for run in result.runs)
    # The engine's peak memory of each container, as it stopped (cgroup v1 on these machines).
    peaks = [run.extra.memory_peak_bytes or {} for run in result.runs]
    assert all(isinstance(p["device"], int) and p["device"] > 1_000_000 for p in peaks), peaks
    assert sum(c.before == "passed" for c in result.comparison.cases) > 40
    assert _leftovers(docker_client) == ([], [])


def test_host_networking_gives_the_same_answers(docker_client: Any, images: dict[str, str], tmp_path: Path) -> None:
    result = run_validation(load_profile(DCMTK / "host.toml"), tmp_path)
    assert result.comparison.verdict is expected_verdict(DCMTK / "host.toml") is Verdict.UNCHANGED, (
        result.comparison.reasons
    )
    assert [run.extra.network for run in result.runs] == [{"mode": "host"}] * 3
    assert sum(c.before == "passed" for c in result.comparison.cases) > 40
    # The bridge-mode run of the same device records the same outcome for every case.
    bridged = run_validation(load_profile(DCMTK / "profile.toml"), tmp_path / "bridged", replicas=1).comparison
    host_outcomes = {c.case: c.before for c in result.comparison.cases}
    assert {c.case: c.before for c in bridged.cases} == host_outcomes


def test_sigterm_stops_every_container_and_the_network(
    docker_client: Any, images: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "harness.cli", "run", "--profile", str(DCMTK / "profile.toml")]
    process = subprocess.Popen([*argv, "--variant", "baseline", "--out", str(out)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(RunDir(out).read_cases()) < 5:
            assert process.poll() is None, process.communicate()[1]
            time.sleep(0.2)
        assert len(RunDir(out).read_cases()) >= 5, "the run never got going"
        owner = {"label": f"{LABEL_OWNER}={process.pid}"}
        assert len(docker_client.containers.list(filters=owner)) == 5  # pod, audit repository, PACS, device, suites
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    assert docker_client.containers.list(all=True, filters=owner) == []
    assert docker_client.networks.list(filters=owner) == []
    run = read_run(out)  # every recorded line parses, and the manifest says what happened
    assert run.manifest.status is RunStatus.INTERRUPTED
    assert len(run.cases) >= 5


def test_a_stale_simulators_image_is_refused_with_the_fix(
    docker_client: Any, images: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PATCHGATE_SIMULATORS_IMAGE", raising=False)
    root = tmp_path / "tree"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "patchgate"\nversion = "0.0.1"\n')
    (root / "README.md").write_text("an older checkout\n")
    with pytest.raises(TargetError, match=r"image 'patchgate/simulators:0.0.1' not found") as missing:
        require_simulators_image(docker_client, root)
    assert "patchgate images build" in missing.value.hint
    # An image of that name built from other sources: refused, not silently run with old code.
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {images and 'patchgate/base:bookworm'}\nLABEL {LABEL_SOURCE}=old\n")
    image, _ = docker_client.images.build(path=str(context), tag="patchgate/simulators:0.0.1", network_mode="host")
    try:
        with pytest.raises(TargetError, match="built from other sources than this checkout") as stale:
            require_simulators_image(docker_client, root)
        assert "patchgate images build" in stale.value.hint
        monkeypatch.setenv("PATCHGATE_SIMULATORS_IMAGE", "patchgate/simulators:0.0.1")
        assert require_simulators_image(docker_client, root) == "patchgate/simulators:0.0.1"  # the user's choice
    finally:
        docker_client.images.remove(image.id, force=True)
