"""The container launcher: a spec started as a container in the run's network, its log kept in the run directory."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import TargetError
from harness.launch.base import LaunchSpec, read_log, wait_ready
from harness.launch.engine import peak_memory, remove_container, retire
from harness.launch.labels import labels
from harness.launch.network import RunNetwork
from harness.launch.ownership import hand_over, image_owner
from harness.launch.resources import (
    CgroupV1Probe,
    EngineStatsProbe,
    ResourceProbe,
    cgroup_v1_folder,
    container_attrs,
)
from harness.launch.shipping import RunVolume, copy_into

__all__ = ["Container", "ContainerLauncher"]


class Container:
    """One started container; `stop()` stops it, keeps its log in the spec's log file and removes it."""

    noun = "container "

    def __init__(self, spec: LaunchSpec, container: Any) -> None:
        self.spec = spec
        self.container = container
        self.exit_code: int | None = None
        self.memory_peak: int | None = None  # bytes, read from the engine as it stops (cgroup v1 only)
        self._probe: ResourceProbe | None = None

    def alive(self) -> bool:
        if self.container is None:
            return False
        try:
            self.container.reload()
        except Exception:  # noqa: BLE001 - removed underneath us
            return False
        if self.container.status in ("exited", "dead"):
            self.exit_code = int(self.container.attrs.get("State", {}).get("ExitCode", -1))
            return False
        return True

    def log_text(self) -> str:
        if self.container is None:
            return read_log(self.spec.log)
        try:
            return bytes(self.container.logs()).decode("utf-8", "replace")
        except Exception:  # noqa: BLE001 - gone: nothing more to read
            return ""

    def exec(self, argv: Sequence[str]) -> tuple[int, bytes]:
        """Run `argv` inside the running container (its image's user and working directory): exit code, output.

        It blocks until the command ends: callers bound it (harness.actions.execute does, by the action's deadline).
        """
        if self.container is None:
            raise TargetError(f"{self.spec.label}: the container is gone", hint="see the device's log")
        found = self.container.exec_run(list(argv), stdout=True, stderr=True)
        return int(found.exit_code if found.exit_code is not None else -1), bytes(found.output or b"")

    def pause(self, seconds: float) -> None:
        time.sleep(seconds)  # an engine's wait would be a request held open: alive() asks after it

    def kill(self) -> None:
        if self.container is not None:
            with contextlib.suppress(Exception):  # already gone
                self.container.kill()

    def stop(self) -> None:
        container, self.container = self.container, None
        if container is None:
            return
        self.memory_peak = peak_memory(container)
        code = retire(container, self.spec.log, self.spec.stop_timeout)
        if self.exit_code is None:
            self.exit_code = code

    def resources(self) -> ResourceProbe | None:
        """Its cgroup v1 files when the engine is local and on v1 (cheap), else the engine's stats API."""
        container = self.container
        if container is None:
            return None  # stopped and removed: nothing left to read
        if self._probe is None:
            folder = cgroup_v1_folder(container.id, container.attrs)
            self._probe = (
                EngineStatsProbe(container)
                if folder is None
                else CgroupV1Probe(container.id, folder=folder, inspect=lambda: container_attrs(container))
            )
        return self._probe


class ContainerLauncher:
    """Starts every spec as a container of one run: labelled for the sweep, on the run's network."""

    python = "python"  # the simulators image's venv

    def __init__(
        self,
        client: Any,
        network: RunNetwork,
        run_id: str,
        simulators_image: str,
        env: Mapping[str, str],
        volume: RunVolume | None = None,
    ) -> None:
        self.client = client
        self.volume = volume  # an engine that cannot see this disk: the run's files go through its API
        self.network = network
        self.run_id = run_id
        self.simulators_image = simulators_image
        self.env = dict(env)  # the run's lifeline, for our own images

    def launch(self, spec: LaunchSpec) -> Container:
        return wait_ready(self.start(spec))

    def start(self, spec: LaunchSpec) -> Container:
        import docker.errors

        ours = not spec.image
        image = spec.image or self.simulators_image
        try:
            self.client.images.get(image)
        except docker.errors.ImageNotFound:
            raise TargetError(
                f"{spec.label}: image {image!r} not found in the engine",
                hint="build it first (patchgate images build, or the device's build script), or load it there",
            ) from None
        owner = image_owner(self.client, image, spec.user)
        options: dict[str, Any] = {"working_dir": str(spec.cwd)} if spec.cwd is not None and ours else {}
        if spec.restart != "no":  # as the device is deployed: an exit then reads "restarted" in an attack window
            options["restart_policy"] = {"Name": spec.restart}
        if spec.memory_limit:
            options["mem_limit"] = spec.memory_limit
        options.update(
            image=image,
            command=list(spec.argv) or None,
            detach=True,
            init=True,  # docker-init as PID 1 forwards SIGTERM (dcmqrscp as PID 1 ignores it)
            environment={**(self.env if ours else {}), **spec.env},
            labels=labels(self.run_id, spec.role),
            name=f"patchgate-{self.run_id}-{spec.role}",
            user=spec.user,
            **self.network.container_options(),
        )
        try:
            if self.volume is None:
                container = self.client.containers.run(volumes=self._bind_mounts(spec, owner), **options)
            else:
                container = self._shipped(spec, ours, owner, options)
        except docker.errors.APIError as exc:
            raise TargetError(
                f"{spec.label}: the engine refused to start {image!r}: {exc.explanation or exc}",
                hint="check the image, command and mounts in the profile",
            ) from None
        return Container(spec, container)

    def _bind_mounts(self, spec: LaunchSpec, owner: tuple[int, int] | None) -> dict[str, dict[str, str]]:
        """An engine on this machine: what the container reads and writes, bind-mounted from the run directory."""
        mounts = dict(spec.mounts)
        # A non-root image other than ourselves (the simulators run as the caller): give it what it reads and writes.
        if owner is not None and owner[0] != os.getuid():
            copies = (spec.storage.parent if spec.storage is not None else spec.log.parent) / f"for-{spec.role}"
            mounts = hand_over(mounts, spec.storage, copies, owner)
        volumes = {host: {"bind": inside, "mode": "ro"} for host, inside in mounts.items()}
        volumes.update({path: {"bind": path, "mode": mode} for path, mode in spec.shared.items()})
        if spec.storage is not None:
            volumes[str(spec.storage)] = {"bind": str(spec.storage), "mode": "rw"}
        return volumes

    def _shipped(self, spec: LaunchSpec, ours: bool, owner: tuple[int, int] | None, options: dict[str, Any]) -> Any:
        """An engine that may not see this disk: volumes and archive copies, created, filled, then started."""
        volume = self.volume
        assert volume is not None
        root = volume.root
        volumes: dict[str, dict[str, str]] = volume.mount() if ours else {}  # a device never sees the run's keys
        places = {Path(host): inside for host, inside in spec.mounts.items()}
        places.update({Path(p): p for p in spec.shared if not Path(p).is_relative_to(root)})  # the suites' folders
        if spec.storage is not None:  # a volume of its own, seeded with the working directory made for it here
            volumes[volume.storage(spec.role)] = {"bind": str(spec.storage), "mode": "rw"}
            places[spec.storage] = str(spec.storage)
        if ours:
            volume.ship()  # what the harness wrote since the last container started (endpoints.json for the suites)
        container = self.client.containers.create(volumes=volumes, **options)
        try:
            copy_into(container, places, owner or volume.owner)
            container.start()
        except BaseException:
            remove_container(container)
            raise
        return container
