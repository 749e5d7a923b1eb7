"""A run's surroundings: the test PKI, the audit repository, the PACS simulator and the device, on one backend."""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import replace
from pathlib import Path

from harness.context import SuiteContext
from harness.launch.base import Launched, LaunchSpec
from harness.launch.readiness import Echo, LogLine
from harness.model import RunSetup
from harness.placeholders import render
from harness.profile import Profile, VariantSpec
from harness.rundir import RunDir
from harness.targets import Backend, open_backend
from simulators._lifeline import Heartbeat
from simulators._net import free_port
from simulators.endpoint import Endpoint
from simulators.pki import Pki, create_pki

__all__ = ["Surroundings"]

# Simulator and suite containers run as the calling user, so what they write in the run directory is theirs.
USER = f"{os.getuid()}:{os.getgid()}"


class Surroundings:
    """One run's surroundings; `start()` brings them up in order and returns the suites' context."""

    def __init__(self, profile: Profile, variant: str, run: RunDir, run_id: str) -> None:
        self.profile = profile
        self.variant: VariantSpec = profile.variant(variant)
        self.run = run
        self.run_id = run_id
        self.pki: Pki = create_pki(run.pki)
        self.http_port = free_port()  # for devices with a web API (Orthanc), kept on loopback
        self.arr_udp_port = free_port(kind=socket.SOCK_DGRAM)
        self.arr_tls_port = free_port()
        sim = profile.simulators["pacs"]
        self.pacs_endpoint = Endpoint(sim.ae_title, "127.0.0.1", sim.port or free_port(), tls=self.variant.tls)
        self.backend: Backend | None = None
        self.arr: Launched | None = None
        self.pacs: Launched | None = None
        self.device: Launched | None = None
        self.heartbeat: Heartbeat | None = None

    @property
    def lifeline(self) -> dict[str, str]:
        """The environment that tells a started process where the run's heartbeat is."""
        return self.heartbeat.environment() if self.heartbeat is not None else {}

    def start(self, device: Endpoint) -> SuiteContext:
        """Backend, audit repository, PACS simulator, then the device; TargetError when one does not come up."""
        # First: everything started after it stops by itself should this process be killed (simulators._lifeline).
        self.heartbeat = Heartbeat(self.run.heartbeat)
        spec = self.profile.device
        self.backend = open_backend(self.variant.image, spec.network, self.run, self.run_id, self.pki, self.lifeline)
        self.arr = self.backend.helpers.launch(self._arr_spec())
        self.pacs = self.backend.helpers.launch(self._pacs_spec())
        pacs = self.pacs_endpoint
        device_spec, files = self._device_spec(device, pacs)
        self.device = self.backend.device(device_spec, files)
        inventory = self.backend.inventory(self.device, spec.probe, {device.port: "dicom", self.http_port: "http"})
        return SuiteContext(
            run_dir=str(self.run.path),
            device=device,
            pacs=pacs,
            pacs_storage=str(self.run.pacs_storage),
            modality_ae_title=self.profile.modality_ae_title,
            services=spec.services,
            corpus_seed=self.profile.corpus_seed,
            pki_dir=str(self.pki.directory),
            audit_log=str(self.run.audit_records),
            identity=dict(spec.identity),
            inventory=str(inventory or ""),
        )

    def _arr_spec(self) -> LaunchSpec:
        assert self.backend is not None
        records = self.run.audit_records
        records.parent.mkdir(parents=True, exist_ok=True)
        argv = [self.backend.helpers.python, "-m", "simulators.audit.repository", "--udp-port", str(self.arr_udp_port)]
        argv += ["--tls-port", str(self.arr_tls_port), "--tls-dir", str(self.pki.directory), "--out", str(records)]
        return LaunchSpec(
            role="arr",
            label="audit record repository simulator",
            argv=tuple(argv),
            log=self.run.log("arr"),
            ready=LogLine("listening udp="),
            shared={str(self.pki.directory): "ro", str(records.parent): "rw", str(self.run.heartbeat): "ro"},
            user=USER,
            hint="see logs/arr.log in the run directory",
        )

    def _pacs_spec(self) -> LaunchSpec:
        assert self.backend is not None
        storage = self.run.pacs_storage
        storage.mkdir(parents=True, exist_ok=True)  # before a container mounts it, so it is ours
        endpoint = self.pacs_endpoint
        argv = [self.backend.helpers.python, "-m", "simulators.pacs", "--ae-title", endpoint.ae_title]
        argv += ["--host", endpoint.host, "--port", str(endpoint.port), "--storage", str(storage)]
        if endpoint.tls:  # a device that requires TLS speaks it to its C-MOVE destinations too
            argv += ["--tls-dir", str(self.pki.directory)]
        tls_dir = str(self.pki.directory)
        return LaunchSpec(
            role="pacs",
            label="PACS simulator",
            argv=tuple(argv),
            log=self.run.log("pacs"),
            ready=Echo(endpoint, "PGPROBE", tls_dir, via=self.backend.echo),
            shared={tls_dir: "ro", str(self.run.heartbeat): "ro"},
            storage=storage,
            start_timeout=30.0,
            user=USER,
            hint="check the image's configuration (AE title, port) and the container log in the run directory",
        )

    def placeholders(self, device: Endpoint, pacs: Endpoint) -> dict[str, str]:
        """What `{name}` means in the variant's command, environment and configuration templates."""
        profile = self.profile
        pki = self.pki
        return {
            "python": sys.executable,
            "ae_title": device.ae_title,
            "host": device.host,
            "port": str(device.port),
            "http_port": str(self.http_port),
            "workdir": str(self.run.device_workdir),
            "profile_dir": str(Path(profile.source).parent.resolve()) if not profile.source.startswith("<") else "",
            "pacs.ae_title": pacs.ae_title,
            "pacs.host": pacs.host,
            "pacs.port": str(pacs.port),
            "modality.ae_title": profile.modality_ae_title,
            "variant": self.variant.name,
            "arr.host": "127.0.0.1",
            "arr.udp_port": str(self.arr_udp_port),
            "arr.tls_port": str(self.arr_tls_port),
            "tls.dir": str(pki.directory),
            "tls.ca": str(pki.ca),
            "tls.cert": str(pki.cert("server")),
            "tls.key": str(pki.key("server")),
        }

    def _device_spec(self, device: Endpoint, pacs: Endpoint) -> tuple[LaunchSpec, dict[Path, str]]:
        """The device variant's launch spec and its rendered configuration files (host path -> path inside)."""
        assert self.backend is not None
        profile, spec, variant = self.profile, self.profile.device, self.variant
        values = self.placeholders(device, pacs)
        where = f"{profile.source}: variants.{variant.name}"
        argv = [render(arg, values, f"{where}.command") for arg in variant.command]
        env = {k: render(v, values, f"{where}.env") for k, v in variant.env.items()}
        workdir = self.run.device_workdir
        workdir.mkdir(exist_ok=True)
        files: dict[Path, str] = {}
        for inside, template in sorted(variant.files.items()):
            rendered = workdir / "files" / inside.strip("/").replace("/", "__")
            rendered.parent.mkdir(parents=True, exist_ok=True)
            text = Path(template).read_text(encoding="utf-8")
            rendered.write_text(render(text, values, f"{where}.files[{inside!r}]"), encoding="utf-8")
            files[rendered] = inside
        hint = (
            "check the image's configuration (AE title, port) and the container log in the run directory"
            if variant.image
            else "check the command, AE title and port in the profile, and the device log"
        )
        launch = LaunchSpec(
            role="device",
            label=f"device {spec.name!r} variant {variant.name!r}",
            argv=tuple(argv),
            log=self.run.log("device"),
            ready=Echo(device, profile.modality_ae_title, str(self.pki.directory), via=self.backend.echo),
            env=env,
            cwd=workdir,
            image=variant.image,
            start_timeout=spec.start_timeout,
            stop_timeout=spec.stop_timeout,
            hint=hint,
        )
        return launch, files

    def describe(self) -> RunSetup:
        """What exactly ran, for the run manifest."""
        if self.backend is None or self.device is None:
            return RunSetup()
        return replace(self.backend.describe(self.device), tls=self.variant.tls)

    def memory_peaks(self) -> dict[str, int | None]:
        """Peak memory in bytes of the device and the PACS simulator (after stop); None where unmeasured."""
        return {
            role: part.memory_peak for role, part in (("device", self.device), ("pacs", self.pacs)) if part is not None
        }

    def stop(self) -> None:
        """Device first, then the simulators, then the backend's network; safe after a partial start."""
        try:
            for part in (self.device, self.pacs, self.arr):
                if part is not None:
                    part.stop()
            if self.backend is not None:
                self.backend.close()
        finally:  # whatever failed above, the beat stops: what is left then stops by itself too
            if self.heartbeat is not None:
                self.heartbeat.stop()
