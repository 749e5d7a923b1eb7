"""What a run starts around its suites: the test PKI, the simulators (PACS, audit repository), the device, their network."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness.context import SuiteContext
from harness.errors import TargetError
from harness.model import Endpoint
from harness.profile import Profile, VariantSpec
from harness.targets.base import Target, log_tail, render, start_failure
from harness.targets.local import LocalTarget
from harness.targets.network import RunNetwork, labels, open_network
from simulators._lifeline import Heartbeat
from simulators._net import free_port
from simulators.pki import Pki, create_pki

__all__ = ["Stage"]

# Simulator and suite containers run as the calling user, so what they write in the run directory is theirs.
USER = f"{os.getuid()}:{os.getgid()}"
INVENTORY = "inventory.json"
HEARTBEAT = "heartbeat"  # touched while the run lives (simulators._lifeline)


class _Arr:
    """The audit record repository simulator: a process or a container, ready once it prints "listening"."""

    def __init__(self, stage: Stage, log_path: Path) -> None:
        self.udp_port = free_port(kind=socket.SOCK_DGRAM)
        self.tls_port = free_port()
        self.out = stage.run_dir / "simulators" / "arr" / "audit.jsonl"
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        python = "python" if stage.client is not None else sys.executable
        argv = [python, "-m", "simulators.arr", "--udp-port", str(self.udp_port), "--tls-port", str(self.tls_port)]
        argv += ["--tls-dir", str(stage.pki.directory), "--out", str(self.out)]
        self._process: subprocess.Popen[bytes] | None = None
        self._container: Any = None
        if stage.client is None:
            with log_path.open("wb") as log:
                env = {**os.environ, **stage.lifeline}
                self._process = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
                )
        else:
            assert stage.network is not None
            shared = ((stage.pki.directory, "ro"), (self.out.parent, "rw"), (stage.run_dir / HEARTBEAT, "ro"))
            volumes = {str(p): {"bind": str(p), "mode": m} for p, m in shared}
            self._container = stage.client.containers.run(
                stage.simulators_image,
                argv,
                detach=True,
                init=True,
                volumes=volumes,
                environment=stage.lifeline,
                user=USER,
                labels=labels(stage.run_id, "arr"),
                name=f"patchgate-{stage.run_id}-arr",
                **stage.network.container_options(),
            )
        self._wait_ready(20.0)

    def _log(self) -> str:
        if self._container is not None:
            try:
                return bytes(self._container.logs()).decode("utf-8", "replace")
            except Exception:  # noqa: BLE001 - gone: nothing more to read
                return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def _alive(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        try:
            self._container.reload()
        except Exception:  # noqa: BLE001 - removed underneath us
            return False
        return str(self._container.status) not in ("exited", "dead")

    def _wait_ready(self, deadline: float) -> None:
        start = time.monotonic()
        while "listening udp=" not in self._log():
            if not self._alive() or time.monotonic() - start > deadline:
                tail = log_tail(self._log(), 20)
                self.stop()
                message = f"audit record repository simulator did not start within {deadline:g} s"
                raise start_failure(message, tail, "see logs/arr.log in the run directory")
            time.sleep(0.1)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        container, self._container = self._container, None
        if container is not None:
            from harness.targets.docker import retire

            retire(container, self.log_path)


class Stage:
    """One run's surroundings; `start()` brings them up in order and returns the suites' context."""

    def __init__(self, profile: Profile, variant: str, run_dir: Path, run_id: str) -> None:
        self.profile = profile
        self.variant: VariantSpec = profile.variant(variant)
        self.run_dir = run_dir
        self.run_id = run_id
        self.logs = run_dir / "logs"
        self.pki: Pki = create_pki(run_dir / "pki")
        self.http_port = free_port()  # for devices with a web API (Orthanc), kept on loopback
        self.network: RunNetwork | None = None
        self.client: Any = None
        self.simulators_image = ""
        self.pacs: Target | None = None
        self.arr: _Arr | None = None
        self.device: Target | None = None
        self.pacs_storage = run_dir / "simulators" / "pacs"
        self.heartbeat: Heartbeat | None = None

    @property
    def docker(self) -> bool:
        return self.variant.backend == "docker"

    def start(self, device: Endpoint) -> SuiteContext:
        """Network, audit repository, PACS simulator, then the device; TargetError when one does not come up."""
        # First: everything started after it stops by itself should this process be killed (simulators._lifeline).
        self.heartbeat = Heartbeat(self.run_dir / HEARTBEAT)
        if self.docker:
            self._open_docker()
        self.arr = _Arr(self, self.logs / "arr.log")
        pacs = self._start_pacs()
        self.device = self._device_target(device, pacs)
        self.device.start()
        inventory = self._inventory(device) if self.docker else ""
        spec = self.profile.device
        return SuiteContext(
            run_dir=str(self.run_dir),
            device=device,
            pacs=pacs,
            pacs_storage=str(self.pacs_storage),
            modality_ae_title=self.profile.modality_ae_title,
            services=spec.services,
            corpus_seed=self.profile.corpus_seed,
            pki_dir=str(self.pki.directory),
            audit_log=str(self.arr.out),
            identity=dict(spec.identity),
            inventory=inventory,
        )

    def _open_docker(self) -> None:
        """Sweep what killed runs left, check the simulators image, make the run's network."""
        from harness.images import require_simulators_image
        from harness.targets.docker import docker_client, sweep

        self.client = docker_client()
        swept = sweep(self.client)
        if swept:
            (self.logs / "swept.txt").write_text("\n".join(swept) + "\n", encoding="utf-8")
        self.simulators_image = require_simulators_image(self.client)
        mode = self.profile.device.network
        self.network = open_network(mode, self.client, self.run_id, self.simulators_image, str(self.pki.directory))

    def _start_pacs(self) -> Endpoint:
        spec = self.profile.simulators["pacs"]
        self.pacs_storage.mkdir(parents=True, exist_ok=True)  # before a container mounts it, so it is ours
        endpoint = Endpoint(spec.ae_title, "127.0.0.1", spec.port or free_port(), tls=self.variant.tls)
        argv = ["-m", "simulators.pacs", "--ae-title", endpoint.ae_title, "--host", endpoint.host]
        argv += ["--port", str(endpoint.port), "--storage", str(self.pacs_storage)]
        if endpoint.tls:  # a device that requires TLS speaks it to its C-MOVE destinations too
            argv += ["--tls-dir", str(self.pki.directory)]
        log = self.logs / "pacs.log"
        tls_dir = str(self.pki.directory)
        if not self.docker:
            pacs_argv = [sys.executable, *argv]
            self.pacs = LocalTarget("PACS simulator", pacs_argv, endpoint, log, env=self.lifeline, tls_dir=tls_dir)
        else:
            from harness.targets.docker import DockerTarget

            self.pacs = DockerTarget(
                "PACS simulator",
                self.simulators_image,
                endpoint,
                log,
                run_id=self.run_id,
                command=["python", *argv],
                env=self.lifeline,
                mounts={tls_dir: tls_dir, str(self.run_dir / HEARTBEAT): str(self.run_dir / HEARTBEAT)},
                workdir=self.pacs_storage,
                start_timeout=30.0,
                client=self.client,
                network=self.network,
                role="pacs",
                user=USER,
            )
        return self.pacs.start()

    def placeholders(self, device: Endpoint, pacs: Endpoint) -> dict[str, str]:
        """What `{name}` means in the variant's command, environment and configuration templates."""
        profile = self.profile
        assert self.arr is not None
        pki = self.pki
        return {
            "python": sys.executable,
            "ae_title": device.ae_title,
            "host": device.host,
            "port": str(device.port),
            "http_port": str(self.http_port),
            "workdir": str(self.run_dir / "device"),
            "profile_dir": str(Path(profile.source).parent.resolve()) if not profile.source.startswith("<") else "",
            "pacs.ae_title": pacs.ae_title,
            "pacs.host": pacs.host,
            "pacs.port": str(pacs.port),
            "modality.ae_title": profile.modality_ae_title,
            "variant": self.variant.name,
            "arr.host": "127.0.0.1",
            "arr.udp_port": str(self.arr.udp_port),
            "arr.tls_port": str(self.arr.tls_port),
            "tls.dir": str(pki.directory),
            "tls.ca": str(pki.ca),
            "tls.cert": str(pki.cert("server")),
            "tls.key": str(pki.key("server")),
        }

    def _device_target(self, device: Endpoint, pacs: Endpoint) -> Target:
        """The device variant as a process (`command`) or a container (`image`), not started yet."""
        profile, spec, variant = self.profile, self.profile.device, self.variant
        values = self.placeholders(device, pacs)
        where = f"{profile.source}: variants.{variant.name}"
        argv = [render(arg, values, f"{where}.command") for arg in variant.command]
        env = {k: render(v, values, f"{where}.env") for k, v in variant.env.items()}
        workdir = self.run_dir / "device"
        workdir.mkdir(exist_ok=True)
        label = f"device {spec.name!r} variant {variant.name!r}"
        log = self.logs / "device.log"
        common = {
            "start_timeout": spec.start_timeout,
            "stop_timeout": spec.stop_timeout,
            "calling_ae": profile.modality_ae_title,
        }
        if not self.docker:
            return LocalTarget(
                label,
                argv,
                device,
                log,
                env={**self.lifeline, **env},  # a local device of ours (the reference) stops with its harness too
                cwd=workdir,
                tls_dir=str(self.pki.directory),
                **common,  # type: ignore[arg-type]
            )
        from harness.targets.docker import DockerTarget

        # The device sees its own credential and the CA certificate where the templates say the PKI is.
        view = self.pki.device_view(self.run_dir / "pki-device")
        mounts = {str(view.directory): str(self.pki.directory)}
        for inside, template in sorted(variant.files.items()):
            rendered = workdir / "files" / inside.strip("/").replace("/", "__")
            rendered.parent.mkdir(parents=True, exist_ok=True)
            text = Path(template).read_text(encoding="utf-8")
            rendered.write_text(render(text, values, f"{where}.files[{inside!r}]"), encoding="utf-8")
            mounts[str(rendered)] = inside
        return DockerTarget(
            label,
            variant.image,
            device,
            log,
            run_id=self.run_id,
            command=argv or None,
            env=env,
            mounts=mounts,
            workdir=workdir,
            client=self.client,
            network=self.network,
            **common,  # type: ignore[arg-type]
        )

    def _inventory(self, device: Endpoint) -> str:
        """The device container's listening ports, packages and labels, for the surface suite (inventory.json)."""
        from harness.targets.docker import DockerTarget
        from harness.targets.inventory import collect_inventory

        assert isinstance(self.device, DockerTarget)
        path = self.run_dir / INVENTORY
        names = {device.port: "dicom", self.http_port: "http"}
        try:
            inventory = collect_inventory(self.device.container, probe=self.profile.device.probe, port_names=names)
            data: dict[str, Any] = {"observations": [list(o) for o in inventory.observations()]}
        except TargetError as exc:  # the surface case fails with this; the functional suites still run
            data = {"error": exc.one_line()}
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return str(path)

    def describe(self) -> dict[str, object]:
        """What exactly ran, for the run manifest."""
        device = self.device
        if isinstance(device, LocalTarget):
            return {"backend": "local", "command": list(device.argv), "tls": self.variant.tls}
        from harness.targets.docker import DockerTarget, image_info

        if not isinstance(device, DockerTarget) or self.network is None:
            return {}
        return {
            "backend": "docker",
            "image": image_info(self.client, device.image),
            "command": device.command,
            "tls": self.variant.tls,
            "network": self.network.describe(),
            "simulators_image": image_info(self.client, self.simulators_image),
        }

    def memory_peaks(self) -> dict[str, int | None]:
        """Peak memory in bytes of the device and the PACS simulator (after stop); None where unmeasured."""
        return {
            role: getattr(target, "memory_peak", None)
            for role, target in (("device", self.device), ("pacs", self.pacs))
            if target is not None
        }

    def stop(self) -> None:
        """Device first, then the simulators, then the network; safe after a partial start."""
        try:
            for part in (self.device, self.pacs, self.arr):
                if part is not None:
                    part.stop()
            if self.network is not None:
                self.network.close()
        finally:  # whatever failed above, the beat stops: what is left then stops by itself too
            if self.heartbeat is not None:
                self.heartbeat.stop()

    @property
    def lifeline(self) -> dict[str, str]:
        """The environment that tells a started process where the run's heartbeat is."""
        return self.heartbeat.environment() if self.heartbeat is not None else {}
