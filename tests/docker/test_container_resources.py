"""Resource probes on real containers: cgroup v1 or engine stats, and incarnations across a kill, with and without a policy."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.images import BASE_IMAGE
from harness.launch.base import LaunchSpec
from harness.launch.container import Container
from harness.launch.engine import remove_container
from harness.launch.readiness import Immediately
from harness.launch.resources import EngineStatsProbe, Incarnation, ResourceProbe, change
from tests.docker.conftest import PID_LABEL, TEST_LABEL

WAIT = 20.0  # seconds: the bound on waiting for the engine to notice an exit or restart a container
BURN = "import time\nstart = time.process_time()\nwhile time.process_time() - start < 0.3:\n    pass\n"

Start = Callable[..., Container]


@pytest.fixture
def start(request: pytest.FixtureRequest, docker_client: Any, tmp_path: Path) -> Iterator[Start]:
    """A labelled container of the base image (no network), wrapped as the launcher wraps one; removed at teardown."""
    try:
        docker_client.images.get(BASE_IMAGE)
    except Exception:  # noqa: BLE001 - ImageNotFound: build the images (minutes, once)
        request.getfixturevalue("images")
    started: list[Any] = []

    def run(command: list[str], restart: dict[str, Any] | None = None) -> Container:
        container = docker_client.containers.run(
            BASE_IMAGE,
            command,
            detach=True,
            init=True,  # as the launcher starts every container: docker-init is PID 1, the command its child
            network_mode="none",
            restart_policy=restart or {},
            labels={TEST_LABEL: "1", PID_LABEL: str(os.getpid())},
        )
        started.append(container)
        spec = LaunchSpec(role="device", label="probed", argv=tuple(command), log=tmp_path / "log", ready=Immediately())
        return Container(spec, container)

    yield run
    for container in started:
        remove_container(container)


def probe_of(device: Container) -> ResourceProbe:
    probe = device.resources()
    assert probe is not None
    local = Path(f"/sys/fs/cgroup/memory/docker/{device.container.id}/memory.stat").is_file()
    assert probe.source == ("cgroup-v1" if local else "engine")  # this machine's engine: local, cgroup v1
    return probe


def until(probe: ResourceProbe, check: Callable[[Incarnation], bool], what: str) -> Incarnation:
    deadline = time.monotonic() + WAIT
    while True:
        now = probe.incarnation()
        if check(now):
            return now
        assert time.monotonic() < deadline, f"not within {WAIT} s: {what} (last: {now})"
        time.sleep(0.1)


def kill_server(device: Container) -> None:
    """SIGKILL the command (docker-init's child) from inside, as a crash would end it."""
    code, output = device.exec(["sh", "-c", "kill -9 $(pidof sleep)"])
    assert code == 0, output


def test_a_real_containers_resources(start: Start) -> None:
    device = start(["sleep", "300"])
    probe = probe_of(device)
    # docker-init forks sleep just after the container starts: read once both run (CI once read pids 1).
    until(probe, lambda now: len(now.processes) == 2, "docker-init and sleep")
    before = probe.read()
    assert before is not None and before.rss > 0 and before.pids == 2  # docker-init and sleep
    code, output = device.exec(["python3", "-c", BURN])
    assert code == 0, output
    after = probe.read()
    assert after is not None and after.cpu_ns - before.cpu_ns >= 250_000_000  # the exec'd process, exited
    # The engine's stats API says the same (one round trip: the fallback for remote engines).
    engine = EngineStatsProbe(device.container).read()
    assert engine is not None and engine.rss > 0 and engine.cpu_ns >= after.cpu_ns
    who = probe.incarnation()
    assert who.running and who.restart_count == 0 and len(who.processes) == 2
    assert device.resources() is probe  # one probe per container: the sampler and the desk share it


def test_a_container_restarted_by_its_policy(start: Start) -> None:
    device = start(["sleep", "300"], restart={"Name": "on-failure", "MaximumRetryCount": 3})
    probe = probe_of(device)
    before = probe.incarnation()
    kill_server(device)
    after = until(probe, lambda now: now.restart_count >= 1 and now.started != before.started, "a restart")
    assert change(before, after) == "restarted"
    until(probe, lambda now: len(now.processes) == 2, "its processes back")
    found = probe.read()
    assert found is not None and found.rss > 0


def test_a_container_killed_without_a_policy(start: Start) -> None:
    device = start(["sleep", "300"])
    probe = probe_of(device)
    before = probe.incarnation()
    kill_server(device)
    after = until(probe, lambda now: not now.running, "the exit")
    assert (after.exit_code, after.signal, after.oom_killed, after.restart_count) == (137, 9, False, 0)
    assert change(before, after) == "exited"
    assert probe.read() is None


def test_a_supervisor_inside_restarting_its_server(start: Start) -> None:
    # The same container start, its server replaced by a supervisor inside (s6 in an image, here a shell).
    device = start(["sh", "-c", "while :; do sleep 300; done"])
    probe = probe_of(device)
    until(probe, lambda now: len(now.processes) == 3, "docker-init, the shell and its server")
    time.sleep(0.3)  # every process has settled (settle = 0.2 s below)
    before = probe.incarnation()
    kill_server(device)
    after = until(probe, lambda now: len(now.processes) == 3 and now.processes != before.processes, "a new server")
    assert after.running and after.restart_count == 0 and after.started == before.started
    assert change(before, after, settle=0.2) == "restarted"
