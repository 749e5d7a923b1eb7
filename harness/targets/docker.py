"""The docker target backend: the device variant (or a simulator) is a container started from an image."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import TargetError
from harness.model import Endpoint
from harness.targets.base import start_failure
from harness.targets.network import (
    LABEL_OWNER,
    LABEL_OWNER_SPACE,
    LABEL_OWNER_START,
    LABEL_ROLE,
    LABEL_RUN,
    HostNetwork,
    RunNetwork,
    labels,
    process_space,
    process_start,
)
from harness.targets.ownership import hand_over, image_owner
from harness.targets.readiness import wait_for_echo

__all__ = [
    "LABEL_OWNER",
    "LABEL_ROLE",
    "LABEL_RUN",
    "DockerTarget",
    "docker_client",
    "image_info",
    "owner_gone",
    "peak_memory",
    "pid_alive",
    "remove_container",
    "retire",
    "sweep",
]

# Every container and network patchgate starts carries LABEL_RUN and LABEL_OWNER (harness.targets.network),
# so a later run can sweep what a killed one left.


def docker_client(timeout: float = 30.0) -> Any:
    """A client for the local engine; TargetError with the engine's answer when there is none."""
    try:
        import docker
    except ImportError:
        raise TargetError("the docker Python SDK is not installed", hint="pip install 'patchgate[docker]'") from None
    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
        return client
    except Exception as exc:  # noqa: BLE001 - the SDK raises several unrelated types here
        raise TargetError(
            f"no Docker engine reachable: {exc}",
            hint="start dockerd (scripts/docker-engine.sh does) or set DOCKER_HOST",
        ) from None


def pid_alive(pid: int) -> bool:
    """Whether process `pid` still exists (owners of labelled containers are checked with it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_gone(labelled: Mapping[str, str]) -> bool:
    """Whether the harness process these labels name is certainly gone (never for one we cannot see)."""
    owner = labelled.get(LABEL_OWNER, "")
    if not owner.isdigit():
        return False
    space = labelled.get(LABEL_OWNER_SPACE, "")
    if space and space != process_space():
        return False  # another machine boot or pid namespace (a CI job in a container): not ours to judge
    if not pid_alive(int(owner)):
        return True
    started = labelled.get(LABEL_OWNER_START, "")
    return bool(started) and process_start(int(owner)) not in ("", started)  # the pid was handed out again


def sweep(client: Any) -> list[str]:
    """Remove containers and networks whose owning harness process is gone; returns their names."""
    import docker.errors

    removed: list[str] = []
    # Concurrent runs sweep at the same time: what another one removed first is not an error.
    for container in client.containers.list(all=True, filters={"label": LABEL_OWNER}, ignore_removed=True):
        if owner_gone(container.labels):
            try:
                container.remove(force=True)
                removed.append(container.name)
            except (docker.errors.NotFound, docker.errors.APIError):
                continue
    for network in client.networks.list(filters={"label": LABEL_OWNER}):
        if owner_gone(network.attrs.get("Labels") or {}):
            try:
                network.remove()
                removed.append(network.name)
            except (docker.errors.NotFound, docker.errors.APIError):
                continue
    return removed


def remove_container(container: Any, timeout: float = 30.0) -> None:
    """Force-remove a container, retrying while the engine says removal is in progress (bounded)."""
    import docker.errors

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            container.remove(force=True)
            return
        except docker.errors.NotFound:
            return  # already gone: what we wanted
        except Exception:  # noqa: BLE001 - "removal in progress" and friends: retry, bounded
            time.sleep(0.5)


def retire(container: Any, log_path: Path, stop_timeout: float = 5.0) -> int | None:
    """Stop a container (SIGTERM, then SIGKILL after `stop_timeout`), keep its log, remove it; its exit code."""
    code = None
    try:
        container.stop(timeout=int(stop_timeout))
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_bytes(container.logs())
        container.reload()
        code = int(container.attrs.get("State", {}).get("ExitCode", -1))
    except Exception:  # noqa: BLE001 - best effort: removal below is what matters
        pass
    finally:
        remove_container(container)
    return code


def peak_memory(container: Any) -> int | None:
    """The container's peak memory use in bytes so far (cgroup v1 `max_usage`); None where the engine has none."""
    try:
        stats = container.stats(stream=False, one_shot=True)
    except Exception:  # noqa: BLE001 - gone, or an engine without stats: no number rather than a guess
        return None
    peak = (stats.get("memory_stats") or {}).get("max_usage")
    return int(peak) if isinstance(peak, int) else None


def image_info(client: Any, name: str) -> dict[str, Any]:
    """Image id, repo digests and labels, for the run manifest."""
    image = client.images.get(name)
    return {"name": name, "id": image.id, "digests": list(image.attrs.get("RepoDigests") or []), "labels": image.labels}


class DockerTarget:
    """A container in the run's network (host loopback or the run's pod), answering C-ECHO; logs saved to the run."""

    def __init__(
        self,
        label: str,
        image: str,
        endpoint: Endpoint,
        log_path: Path,
        *,
        run_id: str,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        mounts: Mapping[str, str] | None = None,  # host path -> container path (read-only)
        workdir: Path | None = None,  # mounted read-write at the same path: the device's storage
        start_timeout: float = 30.0,
        stop_timeout: float = 5.0,
        calling_ae: str = "PGPROBE",
        client: Any = None,
        network: RunNetwork | None = None,  # default: host networking
        role: str = "device",
        user: str | None = None,  # "uid:gid"; None: the image's user
    ) -> None:
        self.label = label
        self.image = image
        self.endpoint = endpoint
        self.log_path = log_path
        self.run_id = run_id
        self.command = list(command) if command else None
        self.env = dict(env or {})
        self.mounts = dict(mounts or {})
        self.workdir = workdir
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.calling_ae = calling_ae
        self._client = client
        self.network: RunNetwork = network or HostNetwork()
        self.role = role
        self.user = user
        self._container: Any = None
        self.exit_code: int | None = None
        self.memory_peak: int | None = None  # bytes, read from the engine as it stops (cgroup v1 only)

    @property
    def container(self) -> Any:
        """The running container (None before start and after stop)."""
        return self._container

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = docker_client()
        return self._client

    def start(self) -> Endpoint:
        import docker.errors

        try:
            self.client.images.get(self.image)
        except docker.errors.ImageNotFound:
            raise TargetError(
                f"{self.label}: image {self.image!r} not found in the local engine",
                hint="build it first (patchgate images build, or the device's build script)",
            ) from None
        owner = image_owner(self.client, self.image, self.user)
        # A non-root image other than ourselves (the simulators run as the caller): give it what it reads and writes.
        if owner is not None and owner[0] != os.getuid():
            copies = (self.workdir.parent if self.workdir is not None else self.log_path.parent) / f"for-{self.role}"
            self.mounts = hand_over(self.mounts, self.workdir, copies, owner)
        volumes = {host: {"bind": inside, "mode": "ro"} for host, inside in self.mounts.items()}
        if self.workdir is not None:
            volumes[str(self.workdir)] = {"bind": str(self.workdir), "mode": "rw"}
        try:
            self._container = self.client.containers.run(
                self.image,
                self.command,
                detach=True,
                init=True,  # docker-init as PID 1 forwards SIGTERM (dcmqrscp as PID 1 ignores it)
                environment=self.env,
                volumes=volumes,
                labels=labels(self.run_id, self.role),
                name=f"patchgate-{self.run_id}-{self.role}",
                user=self.user,
                **self.network.container_options(),
            )
        except docker.errors.APIError as exc:
            raise TargetError(
                f"{self.label}: the engine refused to start {self.image!r}: {exc.explanation or exc}",
                hint="check the image, command and mounts in the profile",
            ) from None
        probe = wait_for_echo(self.endpoint, self.calling_ae, self.start_timeout, self.alive, echo=self.network.echo)
        if probe.answered:
            return self.endpoint
        where = f"{self.endpoint.ae_title}@{self.endpoint.host}:{self.endpoint.port}"
        tail = self.log_tail()
        if not self.alive():
            message = f"{self.label}: container exited with code {self.exit_code} before answering C-ECHO at {where}"
        else:
            message = (
                f"{self.label}: container did not answer C-ECHO at {where} within {self.start_timeout:g} s "
                f"({probe.attempts} attempts, last: {probe.last_error})"
            )
        self.stop()
        hint = "check the image's configuration (AE title, port) and the container log in the run directory"
        raise start_failure(message, tail, hint)

    def alive(self) -> bool:
        if self._container is None:
            return False
        try:
            self._container.reload()
        except Exception:  # noqa: BLE001 - removed underneath us
            return False
        if self._container.status in ("exited", "dead"):
            self.exit_code = int(self._container.attrs.get("State", {}).get("ExitCode", -1))
            return False
        return True

    def log_tail(self, lines: int = 40) -> str:
        if self._container is None:
            return ""
        try:
            raw = self._container.logs(tail=lines)
        except Exception:  # noqa: BLE001 - the container may be gone
            return ""
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)

    def stop(self) -> None:
        container, self._container = self._container, None
        if container is None:
            return
        self.memory_peak = peak_memory(container)
        self.exit_code = retire(container, self.log_path, self.stop_timeout)
