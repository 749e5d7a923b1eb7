"""A run's surroundings: the test PKI, the audit repository, the PACS and RIS simulators and the device, on one backend."""

from __future__ import annotations

import os
import sys
import time
import typing
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from harness.context import SuiteContext
from harness.launch.base import Launched, LaunchSpec, Readiness, ready_or_why, wait_ready
from harness.launch.readiness import Echo, Http, Immediately, LogLine, Tcp
from harness.model import JSON, RunSetup, to_json
from harness.placeholders import NAMES, render
from harness.ports import Reservation, reserve_port
from harness.profile import Profile, VariantSpec
from harness.rundir import RunDir
from harness.targets import Backend, open_backend
from simulators._lifeline import Heartbeat
from simulators.endpoint import PROBE_AE_TITLE, Endpoint
from simulators.pki import Pki, create_pki
from simulators.ris.worklist import scheduled_items, write_wl_folder

__all__ = ["SLOT_TIMEOUT", "Surroundings", "robustness_inputs"]

# Simulator and suite containers run as the calling user, so what they write in the run directory is theirs.
USER = f"{os.getuid()}:{os.getgid()}"
# A PACS or RIS simulator that misses this many C-ECHO probes in a row, one every _PROBE_EVERY s, is taken as hung.
# Generous on purpose: a loaded 2-core machine must not make a busy simulator look dead.
_PROBE_EVERY = 10.0
_SILENT_LIMIT = 3
# Seconds a run may hold its performance slot (or leave it untaken) before the conductor goes on without it.
SLOT_TIMEOUT = 120.0


def robustness_inputs(profile: Profile) -> tuple[str, ...]:
    """The corpus input ids the robustness phase sends for this profile, in corpus order; () when the phase is off.

    Inputs of services the device does not declare stay in (their cases say not applicable)."""
    from simulators.attack import inputs

    spec = profile.robustness
    return tuple(i.id for i in inputs(profile.corpus_seed) if spec.covers(i.id)) if spec.enabled else ()


class Surroundings:
    """One run's surroundings; `start()` brings them up in order and returns the suites' context."""

    def __init__(
        self,
        profile: Profile,
        variant: str,
        run: RunDir,
        run_id: str,
        cancelled: Callable[[], bool] = lambda: False,
        *,
        worklist_date: str = "",  # YYYYMMDD the RIS schedules its items on; "": today (UTC)
        hooks: tuple[str, ...] = (),  # an external device's hooks to run before it is reached ("reset", "apply")
    ) -> None:
        self.profile = profile
        self.cancelled = cancelled  # a cancelled run stops waiting for what it starts
        self.variant: VariantSpec = profile.variant(variant)
        self.run = run
        self.run_id = run_id
        self.pki: Pki = create_pki(run.pki)
        self._reserved: list[Reservation] = []  # held until stop(): no other run or part gets these ports
        spec, sim, ris = profile.device, profile.pacs, profile.ris_simulator
        self.hooks = hooks
        if self.variant.address:  # an external device: where it already listens
            host, port = self.variant.host_port
            self.device_endpoint = Endpoint(spec.ae_title, host, port, tls=self.variant.tls)
        else:
            self.device_endpoint = Endpoint(spec.ae_title, spec.host, self._port(spec.port), tls=self.variant.tls)
        self.http_port = self._port(0)  # for devices with a web API (Orthanc), kept on loopback
        self.arr_udp_port = self._port(0)  # reserved for TCP and UDP alike
        self.arr_tls_port = self._port(0)
        # Where the suites' CommitmentListener takes storage commitment reports on a new association ({modality.port}).
        self.modality_port = self._port(0)
        # Where patchgate reaches the simulators; they bind profile.sim_listen, and the device is told sim_told.
        here = profile.sim_host
        self.pacs_endpoint = Endpoint(sim.ae_title, here, self._port(sim.port), tls=self.variant.tls)
        # Plain DICOM even for a TLS variant: the RIS simulator does not speak TLS (yet).
        self.ris_endpoint = Endpoint(ris.ae_title, here, self._port(ris.port)) if ris is not None else None
        self.worklist_date = worklist_date or time.strftime("%Y%m%d", time.gmtime())
        self.starting = ""  # the part being started: "device" makes a start failure the device's
        self._next_check = 0.0
        self._silent: dict[str, int] = {}  # by role: consecutive health probes a simulator did not answer
        self._next_probe = time.monotonic() + _PROBE_EVERY
        self.backend: Backend | None = None
        self.arr: Launched | None = None
        self.pacs: Launched | None = None
        self.ris: Launched | None = None
        self.device: Launched | None = None
        self._device_launch: tuple[LaunchSpec, dict[Path, str]] | None = None  # kept for revive_device
        self.heartbeat: Heartbeat | None = None

    def _port(self, fixed: int) -> int:
        """`fixed` when the profile sets one (a pod has ports of its own), else a reserved port."""
        if fixed:
            return fixed
        reservation = reserve_port()
        self._reserved.append(reservation)
        return reservation.port

    @property
    def lifeline(self) -> dict[str, str]:
        """The environment that tells a started process where the run's heartbeat is."""
        return self.heartbeat.environment() if self.heartbeat is not None else {}

    def start(self) -> SuiteContext:
        """Backend, audit repository, PACS and RIS simulators, then the device; TargetError when one does not come up."""
        device = self.device_endpoint
        # First: everything started after it stops by itself should this process be killed (simulators._lifeline).
        self.heartbeat = Heartbeat(self.run.heartbeat)
        spec = self.profile.device
        live = ([self.run.windows] if self.profile.robustness.enabled else []) + (
            [self.run.actions] if spec.actions else []
        )
        self.backend = open_backend(
            self.variant.image, spec.network, self.run, self.run_id, self.pki, self.lifeline,
            external=bool(self.variant.address), live=live,
        )  # fmt: skip
        # The simulators need nothing of each other: they come up side by side, then each is waited for
        # (stop() takes any started one whose wait failed or never came).
        helpers = self.backend.helpers
        self.starting = "arr"
        self.arr = helpers.start(self._arr_spec())
        self.starting = "pacs"
        self.pacs = helpers.start(self._pacs_spec())
        if self.ris_endpoint is not None:
            self.starting = "ris"
            self.ris = helpers.start(self._ris_spec(self.ris_endpoint))
        for name, started in (("arr", self.arr), ("pacs", self.pacs), ("ris", self.ris)):
            if started is not None:
                self.starting = name
                wait_ready(started)
        pacs = self.pacs_endpoint
        device_spec, files = self._device_spec(device, pacs)
        self._device_launch = (device_spec, files)
        for name in self.hooks:  # reset or apply: they (re)start the external device, so before it is waited for
            self.run_hook(name)
        self.starting = "device"
        self.device = self.backend.device(device_spec, files)
        self.starting = ""
        self.run_hook("health")
        inventory = self.backend.inventory(self.device, spec.probe, {device.port: "dicom", self.http_port: "http"})
        return SuiteContext(
            run_dir=str(self.run.path),
            device=device,
            pacs=pacs,
            pacs_storage=str(self.run.pacs_storage),
            modality_ae_title=self.profile.modality_ae_title,
            services=spec.services,
            corpus_seed=self.profile.corpus_seed,
            corpus_size=self.profile.corpus_size,
            pki_dir=str(self.pki.directory),
            audit_log=str(self.run.audit_records),
            identity=dict(spec.identity),
            inventory=str(inventory or ""),
            initiates=spec.initiates,
            actions={name: action.to_json() for name, action in sorted(spec.actions.items())},
            placeholders=self.placeholders(device, pacs) if spec.actions else {},
            secrets=spec.secret_values if spec.actions else (),
            ris=self.ris_endpoint,
            ris_requests=str(self.run.ris_requests) if self.ris_endpoint is not None else "",
            commitment_log=str(self.run.commitment_journal),
            worklist_date=self.worklist_date,
            modality_port=self.modality_port,
            performance=self._performance(),
            robustness=self._robustness(),
        )

    def _performance(self) -> dict[str, JSON]:
        """The suites' view of the [performance] table: {} when the phase is off."""
        spec, device = self.profile.performance, self.profile.device
        if not spec.enabled:
            return {}
        return {
            **typing.cast(dict[str, JSON], to_json(spec)),
            "metrics": list(spec.selected(device.services, device.initiates, tuple(device.actions))),
            "arrivals": str(self.run.perf_arrivals("pacs")),
            # Only when a RIS runs (workflow.start_procedure / workflow.complete): the phase's view stays as it was.
            **({"ris_arrivals": str(self.run.perf_arrivals("ris"))} if self.ris_endpoint is not None else {}),
            # The longest a suites process waits for a turn: the barrier, the whole budget, and a few stuck slots.
            "turn_timeout": spec.barrier_timeout + spec.budget + 3 * SLOT_TIMEOUT,
        }

    def _robustness(self) -> dict[str, JSON]:
        """The suites' view of the [robustness] table: {} when the phase is off."""
        spec, device = self.profile.robustness, self.profile.device
        if not spec.enabled:
            return {}
        return {
            **typing.cast(dict[str, JSON], to_json(spec)),
            "inputs": list(robustness_inputs(self.profile)),
            # A request waits for the harness's loop; a revival stops the device and starts it again.
            "window_timeout": 2 * device.stop_timeout + device.start_timeout + 30.0,
        }

    def _arr_spec(self) -> LaunchSpec:
        assert self.backend is not None
        records = self.run.audit_records
        records.parent.mkdir(parents=True, exist_ok=True)
        argv = [
            self.backend.helpers.python,
            "-P",
            "-m",
            "simulators.audit.repository",
            "--udp-port",
            str(self.arr_udp_port),
        ]
        argv += ["--tls-port", str(self.arr_tls_port), "--tls-dir", str(self.pki.directory), "--out", str(records)]
        if self.profile.sim_listen != "127.0.0.1":  # its default
            argv += ["--host", self.profile.sim_listen]
        return LaunchSpec(
            role="arr",
            label="audit record repository simulator",
            argv=tuple(argv),
            log=self.run.log("arr"),
            ready=LogLine("listening udp="),
            shared={str(self.pki.directory): "ro", str(records.parent): "rw", str(self.run.heartbeat): "ro"},
            user=USER,
            hint="see logs/arr.log in the run directory",
            cancelled=self.cancelled,
        )

    def _pacs_spec(self) -> LaunchSpec:
        assert self.backend is not None
        storage = self.run.pacs_storage
        storage.mkdir(parents=True, exist_ok=True)  # before a container mounts it, so it is ours
        endpoint = self.pacs_endpoint
        argv = [self.backend.helpers.python, "-P", "-m", "simulators.pacs", "--ae-title", endpoint.ae_title]
        argv += ["--host", self.profile.sim_listen, "--port", str(endpoint.port), "--storage", str(storage)]
        sim = self.profile.pacs
        argv += ["--commitment-report", sim.commitment_report, "--commitment-delay", f"{sim.commitment_delay:g}"]
        if "commitment" in self.profile.device.initiates:  # reports on a new association go to the device
            device = self.device_endpoint
            argv += ["--destination", f"{device.ae_title}={device.host}:{device.port}"]
        if endpoint.tls:  # a device that requires TLS speaks it to its C-MOVE destinations too
            argv += ["--tls-dir", str(self.pki.directory)]
        tls_dir = str(self.pki.directory)
        shared = {tls_dir: "ro", str(self.run.heartbeat): "ro"}
        if self.profile.performance.enabled:  # move.first / move.last: the C-STOREs the device sends, time-stamped
            arrivals = self.run.perf_arrivals("pacs")
            arrivals.parent.mkdir(parents=True, exist_ok=True)  # before a container mounts it, so it is ours
            argv += ["--arrivals", str(arrivals)]
            shared[str(arrivals.parent)] = "rw"
        return LaunchSpec(
            role="pacs",
            label="PACS simulator",
            argv=tuple(argv),
            log=self.run.log("pacs"),
            ready=Echo(endpoint, PROBE_AE_TITLE, tls_dir, via=self.backend.echo),
            shared=shared,
            storage=storage,
            start_timeout=30.0,
            user=USER,
            hint="check the image's configuration (AE title, port) and the container log in the run directory",
            cancelled=self.cancelled,
        )

    def _ris_spec(self, endpoint: Endpoint) -> LaunchSpec:
        assert self.backend is not None
        out = self.run.ris_dir
        out.mkdir(parents=True, exist_ok=True)  # before a container mounts it, so it is ours
        argv = [self.backend.helpers.python, "-P", "-m", "simulators.ris", "--ae-title", endpoint.ae_title]
        argv += ["--host", self.profile.sim_listen, "--port", str(endpoint.port), "--out", str(out)]
        argv += ["--station-ae", self.profile.device.ae_title, "--date", self.worklist_date]
        argv += ["--seed", str(self.profile.corpus_seed)]
        shared = {str(out): "rw", str(self.run.heartbeat): "ro"}
        if self.profile.performance.enabled:  # workflow.start_procedure / .complete: the device's MPPS, time-stamped
            arrivals = self.run.perf_arrivals("ris")
            arrivals.parent.mkdir(parents=True, exist_ok=True)  # before a container mounts it, so it is ours
            argv += ["--arrivals", str(arrivals)]
            shared[str(arrivals.parent)] = "rw"
        return LaunchSpec(
            role="ris",
            label="RIS simulator",
            argv=tuple(argv),
            log=self.run.log("ris"),
            ready=Echo(endpoint, PROBE_AE_TITLE, via=self.backend.echo),
            shared=shared,
            start_timeout=30.0,
            user=USER,
            hint="see logs/ris.log in the run directory; check [simulators.ris] (AE title, port)",
            cancelled=self.cancelled,
        )

    def placeholders(self, device: Endpoint, pacs: Endpoint) -> dict[str, str]:
        """What `{name}` means in the variant's command, environment and configuration templates (NAMES)."""
        profile = self.profile
        pki = self.pki
        values = {
            "python": sys.executable,
            "ae_title": device.ae_title,
            "host": device.host,
            "port": str(device.port),
            "http_port": str(self.http_port),
            "workdir": str(self.run.device_workdir),
            "profile_dir": str(Path(profile.source).parent.resolve()) if not profile.source.startswith("<") else "",
            "pacs.ae_title": pacs.ae_title,
            "pacs.host": profile.sim_told,
            "pacs.port": str(pacs.port),
            # Empty when no RIS runs: runner.check_variant refuses templates that name these then.
            "ris.ae_title": self.ris_endpoint.ae_title if self.ris_endpoint else "",
            "ris.host": profile.sim_told if self.ris_endpoint else "",
            "ris.port": str(self.ris_endpoint.port) if self.ris_endpoint else "",
            "modality.ae_title": profile.modality_ae_title,
            "worklist.date": self.worklist_date,
            # Named for every device; seeded (_seed_worklist) only for one that declares the mwl service.
            "worklist.dir": str(self.worklist_dir),
            "worklist.root": str(self.run.worklist_root),
            "modality.port": str(self.modality_port),
            "variant": self.variant.name,
            "arr.host": profile.sim_told,
            "arr.udp_port": str(self.arr_udp_port),
            "arr.tls_port": str(self.arr_tls_port),
            "tls.dir": str(pki.directory),
            "tls.ca": str(pki.ca),
            "tls.cert": str(pki.cert("server")),
            "tls.key": str(pki.key("server")),
        }
        assert values.keys() == NAMES, "harness.placeholders.NAMES lists every placeholder"
        return values

    @property
    def worklist_dir(self) -> Path:
        """{worklist.dir}: the device's own folder under {worklist.root} (wlmscpfs -dfp serves one per called AE title)."""
        return self.run.worklist_root / self.device_endpoint.ae_title

    def _seed_worklist(self) -> None:
        """Before an MWL SCP device starts: the run's scheduled items as .wl files (and a lockfile) in {worklist.dir}.

        They are scheduled for the modality simulator's AE title, the station the worklist suites query as.
        """
        if "mwl" not in self.profile.device.services:
            return
        items = scheduled_items(self.profile.corpus_seed, self.worklist_date, self.profile.modality_ae_title)
        write_wl_folder(items, self.worklist_dir)

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
        self._seed_worklist()
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
            ready=self._device_ready(device),
            env=env,
            cwd=workdir,
            image=variant.image,
            start_timeout=spec.start_timeout,
            stop_timeout=spec.stop_timeout,
            restart=spec.restart,
            memory_limit=spec.memory_limit,
            hint=hint,
            cancelled=self.cancelled,
        )
        return launch, files

    def _device_ready(self, device: Endpoint) -> Readiness:
        """The profile's `ready` key as a probe (runner.check_variant refuses tcp and http where they cannot reach)."""
        assert self.backend is not None
        ready = self.profile.device.ready
        if ready == "tcp":
            return Tcp(device.host, device.port)
        if ready.startswith("http:"):
            return Http(device.host, self.http_port, ready.removeprefix("http:"))
        if ready.startswith("log:"):
            return LogLine(ready.removeprefix("log:"))
        if ready == "none":
            return Immediately()
        return Echo(device, self.profile.modality_ae_title, str(self.pki.directory), via=self.backend.echo)

    def run_hook(self, name: str) -> None:
        """Run the profile's lifecycle hook `name` when it declares one (harness.targets.external.run_hook);
        HookError when it fails or times out: a harness/device-setup fault."""
        hook = self.profile.device.hooks.get(name)
        if hook is None:
            return
        from harness.targets.external import run_hook

        self.starting = f"hook {name}"
        values = self.placeholders(self.device_endpoint, self.pacs_endpoint)
        where = f"{self.profile.source}: device.hooks.{name}"
        run_hook(hook, values, self.run.log(f"hook-{name}"), self.run.device_workdir, where, self.cancelled)
        self.starting = ""

    def revive_device(self, after: str) -> None:
        """Stop what is left of the device and start it again as it first started (same spec, workdir, storage),
        waiting for its readiness; a line in its log says why. TargetError when it does not come back."""
        assert self.backend is not None and self._device_launch is not None
        if self.device is not None:
            self.device.stop()
        spec, files = self._device_launch
        with spec.log.open("a", encoding="utf-8") as log:
            log.write(f"--- revived after robustness input {after} ---\n")
        self.device = self.backend.device(spec, files)

    def settle_device(self) -> str:
        """After the engine restarted the device inside an attack window: wait until it passes its readiness probe
        again (within its start timeout); "" when it does, else why not."""
        if self.device is None:
            return "no device"
        why = ready_or_why(self.device, interval=0.2)
        return "the run was cancelled" if why is None else why

    def describe(self) -> RunSetup:
        """What exactly ran, for the run manifest."""
        if self.backend is None or self.device is None:
            return RunSetup()
        return replace(self.backend.describe(self.device), tls=self.variant.tls)

    def memory_peaks(self) -> dict[str, int | None]:
        """Peak memory in bytes of the device and the PACS (and RIS) simulator (after stop); None where unmeasured."""
        parts = (("device", self.device), ("pacs", self.pacs), ("ris", self.ris))
        return {role: part.memory_peak for role, part in parts if part is not None}

    def watch(self, *, final: bool = False) -> str:
        """ "" while the simulators are well, else what failed: one exited, or the PACS or RIS stopped answering C-ECHO.

        Called often while the suites run; it looks at most once a second (every call when `final`),
        and probes the PACS and RIS with C-ECHO every _PROBE_EVERY s, calling one silent after _SILENT_LIMIT misses.
        """
        now = time.monotonic()
        if not final and now < self._next_check:
            return ""
        self._next_check = now + 1.0
        named = (
            (self.pacs, "the PACS simulator"),
            (self.ris, "the RIS simulator"),
            (self.arr, "the audit record repository simulator"),
        )
        for part, name in named:
            if part is not None and not part.alive():
                return f"{name} exited with code {part.exit_code} while the suites ran; log: {part.spec.log}"
        if final or now < self._next_probe:
            return ""
        self._next_probe = now + _PROBE_EVERY
        for part, name in named[:2]:  # the DICOM simulators; the audit repository only receives
            if part is None:
                continue
            answer = part.spec.ready.probe(part)
            role = part.spec.role
            self._silent[role] = self._silent.get(role, 0) + 1 if answer else 0
            if self._silent[role] >= _SILENT_LIMIT:
                return f"{name} stopped answering C-ECHO ({_SILENT_LIMIT} probes, last: {answer})"
        return ""

    def stop(self) -> None:
        """Device first, then the simulators, then the backend's network; safe after a partial start."""
        try:
            for part in (self.device, self.ris, self.pacs, self.arr):
                if part is not None:
                    part.stop()
            if self.backend is not None:
                self.backend.close()
        finally:  # whatever failed above, the beat stops: what is left then stops by itself too
            if self.heartbeat is not None:
                self.heartbeat.stop()
            for reservation in self._reserved:
                reservation.release()
