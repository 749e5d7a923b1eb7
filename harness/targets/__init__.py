"""Target backends: where one run's device, simulators and suites start (local processes, containers, or elsewhere)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from harness.launch.base import Launched, Launcher, LaunchSpec
from harness.launch.readiness import EchoOnce
from harness.model import RunSetup
from harness.rundir import RunDir
from simulators.pki import Pki

__all__ = ["Backend", "open_backend"]


class Backend(Protocol):
    """The one place a run's local-or-docker choice is made; everything else asks it."""

    @property
    def helpers(self) -> Launcher:
        """Starts the simulators (PACS, audit repository)."""

    @property
    def suites(self) -> Launcher:
        """Starts pytest over the suites: in the run's pod when the host cannot reach it."""

    @property
    def echo(self) -> EchoOnce | None:
        """How a C-ECHO reaches the run's network; None: from this process."""

    def device(self, spec: LaunchSpec, files: Mapping[Path, str]) -> Launched:
        """Start the device variant (`files`: rendered configuration, host path -> path inside)."""

    def describe(self, device: Launched) -> RunSetup:
        """What exactly ran, for the run manifest."""

    def inventory(self, device: Launched, probe: tuple[str, ...], port_names: Mapping[int, str]) -> Path | None:
        """Write the device's inventory (listening ports, packages, labels) into the run; None where there is none."""

    def inside(self, device: Launched) -> Callable[[Sequence[str]], tuple[int, bytes]] | None:
        """How a `where = "device"` action command runs in the device's container; None: on this host (a process)."""

    def bring_back(self) -> None:
        """Copy into the run directory what the suites and simulators wrote where this disk is not (a remote engine)."""

    def close(self) -> None:
        """Bring the last records back, remove what was made for the run; safe after a partial start."""


def open_backend(
    image: str,
    network: str,
    run: RunDir,
    run_id: str,
    pki: Pki,
    lifeline: Mapping[str, str],
    *,
    external: bool = False,
    live: Sequence[Path] = (),
) -> Backend:
    """An external backend for a variant with an address, a docker one for a variant with an image, else a local one.

    `live`: the run's channel folders the suites and the harness exchange files through while the suites run
    (an engine that cannot see this disk relays them).
    """
    if external:
        from harness.targets.external import ExternalBackend

        return ExternalBackend(lifeline)
    if image:
        from harness.targets.docker import DockerBackend

        return DockerBackend(network, run, run_id, pki, lifeline, live)
    from harness.targets.local import LocalBackend

    return LocalBackend(lifeline)
