"""The local backend: the device variant, the simulators and the suites are processes on this machine."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from harness.launch.base import Launched, LaunchSpec
from harness.launch.process import ProcessLauncher
from harness.launch.readiness import EchoOnce
from harness.model import RunSetup

__all__ = ["LocalBackend"]


class LocalBackend:
    """Everything as processes; a device of ours (the reference) also watches the run's heartbeat."""

    name = "local"
    echo: EchoOnce | None = None

    def __init__(self, lifeline: Mapping[str, str]) -> None:
        self.helpers = self.suites = self._processes = ProcessLauncher(lifeline)

    def device(self, spec: LaunchSpec, files: Mapping[Path, str]) -> Launched:
        return self._processes.launch(spec)

    def describe(self, device: Launched) -> RunSetup:
        return RunSetup(backend="local", command=device.spec.argv)

    def inventory(self, device: Launched, probe: tuple[str, ...], port_names: Mapping[int, str]) -> Path | None:
        return None  # a process shares this machine: no image, packages or sockets of its own to list

    def inside(self, device: Launched) -> None:
        return None  # the device is a process on this host: its commands run here, in its working directory

    def bring_back(self) -> None:
        pass  # its processes write into the run directory itself

    def close(self) -> None:
        pass
