"""Where a run's containers meet: the host's loopback, or a network of their own made for the run.

`bridge` (the default): a user-defined network is made for the run (internal: no route out, so a
device under test cannot call home), and one small "pod" container holds a network namespace on
it. The device, the simulators and the suites all join that namespace (`container:<pod>`), so they
reach each other on the pod's own 127.0.0.1 — fixed ports never clash between concurrent runs, and
no packet is addressed to the bridge. The harness probes the pod with `docker exec`.

`host`: every container shares the host's network namespace; ports are chosen free per run and
all traffic stays on the host's loopback.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Protocol

from harness.errors import TargetError
from harness.launch.engine import remove_container
from harness.launch.labels import labels
from harness.launch.readiness import echo_once
from harness.launch.shipping import RunVolume
from simulators.endpoint import Endpoint

__all__ = ["HOST", "NETWORK_MODES", "POD", "HostNetwork", "PodNetwork", "RunNetwork", "open_network"]

HOST = "host"
POD = "bridge"
NETWORK_MODES = (POD, HOST)


class RunNetwork(Protocol):
    """How a run's containers are networked, and how the harness reaches their DICOM endpoints."""

    mode: str
    in_pod: bool  # True: the suites must run inside the pod too (the host cannot reach it)

    def container_options(self) -> dict[str, Any]:
        """`network_mode` (and friends) for containers.run()."""

    def echo(self, endpoint: Endpoint, calling_ae: str, timeout: float) -> str:
        """One C-ECHO to `endpoint` as the run's network sees it: "" on success, else why not."""

    def describe(self) -> dict[str, object]:
        """For the run manifest."""

    def close(self) -> None:
        """Remove what was made for the run; safe to call twice."""


class HostNetwork:
    """Host networking: containers listen on the host's loopback; the harness probes them directly."""

    mode = HOST
    in_pod = False

    def __init__(self, tls_dir: str = "") -> None:
        self.tls_dir = tls_dir

    def container_options(self) -> dict[str, Any]:
        return {"network_mode": "host"}

    def echo(self, endpoint: Endpoint, calling_ae: str, timeout: float) -> str:
        return echo_once(endpoint, calling_ae, timeout, self.tls_dir)

    def describe(self) -> dict[str, object]:
        return {"mode": HOST}

    def close(self) -> None:
        pass


class PodNetwork:
    """A user-defined network for one run and a pod container whose network namespace the run shares."""

    mode = POD
    in_pod = True

    def __init__(
        self, client: Any, run_id: str, image: str, tls_dir: str = "", volume: RunVolume | None = None
    ) -> None:
        import docker.errors

        self.tls_dir = tls_dir  # the run's PKI: mounted into the pod so TLS endpoints can be probed
        self.name = f"patchgate-{run_id}"
        self._client = client
        self._network: Any = None
        self._pod: Any = None
        # A remote engine: the run's volume (the PKI is in it), filled through this pod once it runs.
        mounts = {tls_dir: {"bind": tls_dir, "mode": "ro"}} if tls_dir else {}
        if volume is not None:
            mounts = volume.mount()
        try:
            self._network = client.networks.create(
                self.name, driver="bridge", internal=True, labels=labels(run_id, "network"), check_duplicate=True
            )
            # The pod only holds the namespace; docker-init reaps and forwards SIGTERM so it stops at once.
            self._pod = client.containers.run(
                image,
                ["sleep", "infinity"],
                detach=True,
                init=True,
                volumes=mounts,
                user=f"{os.getuid()}:{os.getgid()}",  # reads the run's PKI keys, which are the caller's (0600)
                network=self.name,
                labels=labels(run_id, "pod"),
                name=f"{self.name}-pod",
            )
            if volume is not None:
                volume.attach(self._pod)
        except TargetError:
            self.close()
            raise
        except docker.errors.APIError as exc:
            self.close()
            raise TargetError(
                f"cannot make the run's network {self.name!r}: {exc.explanation or exc}",
                hint='check the engine (docker network ls); or set network = "host" under [device]',
            ) from None

    def container_options(self) -> dict[str, Any]:
        return {"network_mode": f"container:{self._pod.id}"}

    def echo(self, endpoint: Endpoint, calling_ae: str, timeout: float) -> str:
        argv = ["python", "-m", "harness.launch.readiness", endpoint.host, str(endpoint.port), endpoint.ae_title]
        argv += ["--calling", calling_ae, "--timeout", f"{timeout:g}"]
        if endpoint.tls:
            argv += ["--tls-dir", self.tls_dir]
        try:
            code, output = self._pod.exec_run(argv, demux=False)
        except Exception as exc:  # noqa: BLE001 - the pod gone, the engine gone: both mean "not answered"
            return f"cannot probe from the run's pod: {exc}"
        text = (output or b"").decode("utf-8", "replace").strip()
        return "" if code == 0 else (text.splitlines()[-1] if text else f"probe exited with code {code}")

    def describe(self) -> dict[str, object]:
        return {"mode": POD, "network": self.name, "internal": True, "pod": self._pod.name if self._pod else ""}

    def close(self) -> None:
        pod, self._pod = self._pod, None
        if pod is not None:
            remove_container(pod)
        network, self._network = self._network, None
        if network is not None:
            with contextlib.suppress(Exception):  # best effort; the sweep of a later run removes it
                network.remove()


def open_network(
    mode: str, client: Any, run_id: str, image: str, tls_dir: str = "", volume: RunVolume | None = None
) -> RunNetwork:
    """The run's network in `mode` ("bridge" or "host"); `image` runs the pod (the simulators image).

    `volume`: the run directory on an engine that cannot see this disk, mounted in the pod and filled through it.
    """
    if mode == HOST:
        return HostNetwork(tls_dir)
    return PodNetwork(client, run_id, image, tls_dir, volume)
