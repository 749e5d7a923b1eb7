"""Fixtures for the container tests: an engine client, the built images, and labelled host-network containers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.images import build_all
from harness.launch.engine import pid_alive, remove_container

# Every container a test starts carries these, so a later session can sweep what a killed one left.
TEST_LABEL = "org.patchgate.test"
PID_LABEL = "org.patchgate.test-pid"

RunContainer = Callable[..., Any]


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A client for the local engine; skips without one, fails when CI=true (CI must start it)."""
    try:
        import docker

        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - ImportError, DockerException, requests errors
        message = f"no Docker engine reachable ({type(exc).__name__}: {exc}); start one with scripts/docker-engine.sh"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: a missing engine is a failure, not a skip)")
        pytest.skip(message)
    for container in client.containers.list(all=True, filters={"label": TEST_LABEL}):
        owner = container.labels.get(PID_LABEL, "")
        if owner.isdigit() and not pid_alive(int(owner)):
            container.remove(force=True)
    yield client
    client.close()


@pytest.fixture(scope="session")
def images(docker_client: Any) -> dict[str, str]:
    """Image name -> id for every patchgate image, built now if missing or stale (minutes the first time)."""
    return build_all(log=lambda line: print(f"[images] {line}", flush=True))


@pytest.fixture
def run_container(docker_client: Any) -> Iterator[RunContainer]:
    """Start a labelled container on host networking; all of them are removed at teardown, logs printed."""
    started: list[Any] = []

    def run(
        image: str,
        command: Sequence[str],
        *,
        read_only: Mapping[Path, str] | None = None,
        read_write: Sequence[Path] = (),
    ) -> Any:
        volumes = {str(host): {"bind": inside, "mode": "ro"} for host, inside in (read_only or {}).items()}
        # Read-write folders are mounted at the same path, so configs can name host paths.
        volumes.update({str(path): {"bind": str(path), "mode": "rw"} for path in read_write})
        container = docker_client.containers.run(
            image,
            list(command),
            detach=True,
            init=True,  # docker-init as PID 1 forwards SIGTERM: dcmqrscp as PID 1 would ignore it
            network_mode="host",
            volumes=volumes,
            labels={TEST_LABEL: "1", PID_LABEL: str(os.getpid())},
        )
        started.append(container)
        return container

    yield run
    for container in started:
        try:
            container.stop(timeout=5)
            print(f"--- {container.image.tags} {container.short_id} log tail ---")
            print(container.logs(tail=30).decode("utf-8", "replace"))
        except Exception:  # noqa: BLE001 - best effort: removal below is what matters
            pass
        remove_container(container)
