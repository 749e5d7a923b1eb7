"""The Docker engine as patchgate uses it: a client, retiring and sweeping containers, image facts, memory."""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.errors import TargetError
from harness.launch.labels import LABEL_OWNER, LABEL_OWNER_SPACE, LABEL_OWNER_START, process_space, process_start
from harness.model import ImageInfo

__all__ = [
    "docker_client",
    "image_info",
    "owner_gone",
    "peak_memory",
    "pid_alive",
    "remove_container",
    "retire",
    "sweep",
]

# Every container and network patchgate starts carries LABEL_RUN and LABEL_OWNER (harness.launch.labels),
# so a later run can sweep what a killed one left.


def docker_client(timeout: float = 30.0) -> Any:
    """A client for the local engine; TargetError with the engine's answer when there is none."""
    try:
        import docker
    except ImportError:
        raise TargetError("the docker Python SDK is not installed", hint="pip install 'patchgate[docker]'") from None
    try:
        # ssh:// through the ssh client (the user's config and agent) unless paramiko, the SDK's own way, is there.
        ssh = os.environ.get("DOCKER_HOST", "").startswith("ssh://") and importlib.util.find_spec("paramiko") is None
        client = docker.from_env(timeout=int(timeout), use_ssh_client=ssh)
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


_FORCE = {"force": True}


def sweep(client: Any) -> list[str]:
    """Remove containers, networks and volumes whose owning harness process is gone; returns their names."""
    import docker.errors

    owned = {"label": LABEL_OWNER}
    # Containers first: a network or a volume is removed only once nothing uses it. The volumes are a remote
    # engine's run volumes (harness.launch.shipping).
    kinds: tuple[tuple[Callable[[], list[Any]], Callable[[Any], Any], Mapping[str, bool]], ...] = (
        (lambda: client.containers.list(all=True, filters=owned, ignore_removed=True), lambda c: c.labels, _FORCE),
        (lambda: client.networks.list(filters=owned), lambda n: n.attrs.get("Labels"), {}),
        (lambda: client.volumes.list(filters=owned), lambda v: v.attrs.get("Labels"), _FORCE),
    )
    removed: list[str] = []
    # Concurrent runs sweep at the same time: what another one removed first is not an error.
    for listing, labels_of, how in kinds:
        for item in listing():
            if owner_gone(labels_of(item) or {}):
                try:
                    item.remove(**how)
                    removed.append(item.name)
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
    """Stop a container (SIGTERM, then SIGKILL after `stop_timeout`), add its log to `log_path`, remove it; its exit code.

    Added, not overwritten: a device revived after a robustness input keeps every container's log in one file, as a
    local process's log does.
    """
    code = None
    try:
        container.stop(timeout=int(stop_timeout))
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            log.write(container.logs())
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


def image_info(client: Any, name: str) -> ImageInfo:
    """Image id, repo digests and labels, for the run manifest."""
    image = client.images.get(name)
    digests = tuple(image.attrs.get("RepoDigests") or ())
    return ImageInfo(name=name, id=image.id, digests=digests, labels=dict(image.labels or {}))
