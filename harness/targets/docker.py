"""The docker backend: device and simulators are containers on the run's network; the suites join its pod."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.errors import TargetError
from harness.launch.base import Launched, LaunchSpec
from harness.launch.container import Container, ContainerLauncher
from harness.launch.engine import docker_client, image_info, sweep
from harness.launch.network import RunNetwork, open_network
from harness.launch.process import ProcessLauncher
from harness.launch.readiness import EchoOnce
from harness.launch.shipping import RunVolume, engine_address, engine_is_remote
from harness.model import RunSetup
from harness.rundir import RunDir
from simulators.pki import Pki

__all__ = ["DockerBackend"]


class DockerBackend:
    """Sweeps what killed runs left, checks the simulators image, makes the run's network, starts containers."""

    name = "docker"

    def __init__(
        self, mode: str, run: RunDir, run_id: str, pki: Pki, lifeline: Mapping[str, str], live: Sequence[Path] = ()
    ) -> None:
        from harness.images import require_simulators_image

        self.run = run
        self.pki = pki
        self.client: Any = docker_client()
        swept = sweep(self.client)
        if swept:
            run.swept.write_text("\n".join(swept) + "\n", encoding="utf-8")
        self.simulators_image = require_simulators_image(self.client)
        self.volume: RunVolume | None = None
        # Nothing bind-mounted: the run's files go through the engine's API (host networking is refused
        # with such an engine before anything starts: runner.check_variant).
        if engine_is_remote():
            self.volume = RunVolume(
                self.client, run_id, run.path, run.heartbeat, live,
                merged=(run.actions_log,), watched=(run.progress, run.observations),
            )  # fmt: skip
        try:
            self.network: RunNetwork = open_network(
                mode, self.client, run_id, self.simulators_image, str(pki.directory), self.volume
            )
        except TargetError:
            if self.volume is not None:
                self.volume.close()
            raise
        self.echo: EchoOnce | None = self.network.echo
        self.helpers = ContainerLauncher(
            self.client, self.network, run_id, self.simulators_image, lifeline, self.volume
        )
        self.suites = self.helpers if self.network.in_pod else ProcessLauncher(lifeline)

    def device(self, spec: LaunchSpec, files: Mapping[Path, str]) -> Launched:
        # The device sees its own credential and the CA certificate where the templates say the PKI is.
        view = self.pki.device_view(self.run.device_pki)
        mounts = {str(view.directory): str(self.pki.directory), **{str(host): inside for host, inside in files.items()}}
        return self.helpers.launch(replace(spec, mounts=mounts, storage=spec.cwd, cwd=None))

    def describe(self, device: Launched) -> RunSetup:
        engine = {"engine": engine_address(), "files": "shipped"} if self.volume is not None else {}
        return RunSetup(
            backend="docker",
            command=device.spec.argv or None,
            image=image_info(self.client, device.spec.image),
            network={**self.network.describe(), **engine},
            simulators_image=image_info(self.client, self.simulators_image),
        )

    def inventory(self, device: Launched, probe: tuple[str, ...], port_names: Mapping[int, str]) -> Path | None:
        from harness.inventory import collect_inventory

        assert isinstance(device, Container)
        try:
            found = collect_inventory(device.container, probe=probe, port_names=port_names)
            data: dict[str, Any] = {"observations": [list(o) for o in found.observations()]}
        except TargetError as exc:  # the surface case fails with this; the functional suites still run
            data = {"error": exc.one_line()}
        path = self.run.inventory
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path

    def inside(self, device: Launched) -> Callable[[Sequence[str]], tuple[int, bytes]]:
        assert isinstance(device, Container)
        return device.exec

    def bring_back(self) -> None:
        """The records the containers wrote, into the run directory (a local engine wrote them there already)."""
        if self.volume is not None:
            self.volume.bring_back()

    def close(self) -> None:
        try:
            if self.volume is not None:  # what the simulators wrote as they stopped (the device stops first)
                with contextlib.suppress(TargetError):  # the suites' records came back already, or the run failed
                    self.volume.bring_back()
        finally:
            self.network.close()
            if self.volume is not None:
                self.volume.close()
