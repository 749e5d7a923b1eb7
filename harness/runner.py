"""The runner: one device variant, its simulators and the suites, into a self-contained run directory."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import importlib.util
import platform
import threading
import time
import typing
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path

from harness.actions import ActionBroker, check_actions
from harness.cancel import cancel_runs, cancel_token
from harness.errors import ProfileError, RunDirError, SuiteError, TargetError
from harness.launch import forkserver
from harness.launch.base import LaunchSpec, log_tail
from harness.launch.readiness import Immediately
from harness.model import JSON, CorpusInfo, Manifest, PerfSetup, RobustnessSetup, RunSetup, RunStatus, to_json
from harness.perf.conductor import Conductor, SoloConductor, weights_for
from harness.perf.desk import Desk
from harness.perf.sampler import Sampler
from harness.placeholders import NAMES, RIS_NAMES, check_templates
from harness.profile import Profile
from harness.redact import redact, redact_file
from harness.robust.keeper import WindowKeeper
from harness.rundir import RunDir, storage_error
from harness.shipped import source_commit
from harness.surroundings import SLOT_TIMEOUT, USER, Surroundings, robustness_inputs
from harness.targets.external import ExternalDevice, HookError
from simulators.endpoint import Endpoint

__all__ = [
    "SLOT_TIMEOUT",
    "Progress",
    "RunRequest",
    "cancel_runs",
    "cancel_token",
    "check_variant",
    "corpus_info",
    "perf_metrics",
    "robustness_inputs",
    "run_corpus",
    "run_variant",
    "suites_root",
]

# (run label, cases finished, cases collected or 0 while collecting)
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RunRequest:
    """Run one variant of a profile's device into `out` (which must not hold an earlier run)."""

    profile: Profile
    variant: str
    role: str  # "baseline" or "candidate"
    replica: int
    out: Path
    # The RIS simulator's worklist date (YYYYMMDD, UTC): one per validation, so every run serves the same
    # worklist even across midnight; "": the day the run starts.
    worklist_date: str = ""
    # The performance phase's turns: validation-wide (validation.run_validation), or None: the run measures alone
    # when its profile's [performance] is enabled (a SoloConductor), and not at all otherwise.
    conductor: Conductor | None = None
    # An external device's hooks to run before it is reached (validate: "reset" before each baseline, "apply"
    # before the candidate); `patchgate run` runs none: a person resets or patches the device between runs.
    hooks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Absolute: the suites run with the run directory as their working directory, and containers bind-mount it.
        object.__setattr__(self, "out", Path(self.out).resolve())

    @property
    def label(self) -> str:
        return f"{self.role}-{self.replica}"

    @property
    def run(self) -> RunDir:
        return RunDir(self.out)


def suites_root() -> Path:
    """The built-in suites shipped in the `suites` package (found, not imported: the harness runs them)."""
    spec = importlib.util.find_spec("suites")
    if spec is None or spec.origin is None:
        raise SuiteError("the built-in suites are not installed", hint="reinstall patchgate")
    return Path(spec.origin).parent


_CORPUS_LOCK = threading.Lock()


def corpus_info(seed: int, size: str = "small") -> CorpusInfo:
    """What the run's corpus is; made once per process: the concurrent runs of a validation wait for the first."""
    with _CORPUS_LOCK:
        return _corpus_info(seed, size)


@functools.lru_cache(maxsize=4)
def _corpus_info(seed: int, size: str) -> CorpusInfo:
    from simulators.corpus import UID_ROOT, corpus_hash, generate

    items = generate(seed, corpus_size=size)
    return CorpusInfo(seed=seed, sha256=corpus_hash(items), uid_root=UID_ROOT, items=len(items), size=size)


def run_corpus(profile: Profile, run_id: str) -> tuple[CorpusInfo, str]:
    """The corpus the run records, and the hash of what it sends: re-identified by the run id when per-run."""
    corpus = corpus_info(profile.corpus_seed, profile.corpus_size)
    if profile.corpus_identity != "per-run":
        return corpus, corpus.sha256
    from simulators.corpus import corpus_hash, generate, identity_of, reidentify

    tag = identity_of(run_id)
    made = reidentify(generate(profile.corpus_seed, corpus_size=profile.corpus_size), tag)
    return replace(corpus, identity=tag, uids=made.uids, prefixes=made.prefixes), corpus_hash(made.items)


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("patchgate", "pydicom", "pynetdicom", "pytest", "allure-pytest", "numpy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    versions["patchgate commit"] = source_commit()
    return versions


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _suite_argv(request: RunRequest, python: str) -> tuple[list[str], list[Path]]:
    """The pytest command line for the run's suites, and the suite roots it reads."""
    run = request.run
    roots = [Path(p) for p in request.profile.suite_paths] or [suites_root()]
    # Our own ini and rootdir: the suites must not pick up a user project's pytest configuration.
    run.pytest_ini.write_text("[pytest]\naddopts = -p no:cacheprovider\n", encoding="utf-8")
    # -P: the run directory (the working directory) is not on sys.path, so its simulators/ folder
    # of received files can never shadow the simulators package as a namespace package.
    argv = [python, "-P", "-m", "pytest", "-c", str(run.pytest_ini), "--rootdir", str(roots[0])]
    argv += ["--import-mode=importlib", "--patchgate-run", str(run.path), "--junitxml", str(run.junit)]
    argv += ["--patchgate-allure", str(run.allure), "-q", "-rN", "--no-header"]
    return argv + [str(r) for r in roots], roots


def perf_metrics(profile: Profile) -> tuple[str, ...]:
    """The metrics the performance phase measures for this profile; () when the phase is off."""
    spec = profile.performance
    device = profile.device
    return spec.selected(device.services, device.initiates, tuple(device.actions)) if spec.enabled else ()


@functools.lru_cache(maxsize=4)
def _attack_corpus(seed: int) -> tuple[str, str, dict[str, str]]:
    from simulators.attack import CORPUS_VERSION, corpus_sha256, inputs

    return CORPUS_VERSION, corpus_sha256(seed), {i.id: i.description for i in inputs(seed)}


def _robustness_setup(profile: Profile, keeper: WindowKeeper | None) -> RobustnessSetup | None:
    if keeper is None:
        return None
    with _CORPUS_LOCK:  # the concurrent runs of a validation hash the corpus once
        version, sha256, described = _attack_corpus(profile.corpus_seed)
    sent = robustness_inputs(profile)
    return keeper.setup(version, sha256, sent, {i: described[i] for i in sent if i in described})


class _Phase:
    """One run's end of the performance phase: its conductor, and the desk and sampler while the suites run."""

    def __init__(self, request: RunRequest) -> None:
        spec = request.profile.performance
        self.label = request.label
        self.spec = spec
        metrics = perf_metrics(request.profile)
        self.conductor: Conductor | None = request.conductor
        if self.conductor is None and metrics:
            self.conductor = SoloConductor(
                request.label, min_rounds=spec.min_rounds, max_rounds=spec.max_rounds,
                warmup_rounds=spec.warmup_rounds, budget=spec.budget, weights=weights_for(metrics),
                slot_timeout=SLOT_TIMEOUT,
            )  # fmt: skip
        self.desk: Desk | None = None
        self.sampler: Sampler | None = None
        self.source = ""
        self.problems: list[str] = []

    def start(self, run: RunDir, surroundings: Surroundings) -> None:
        """Before the suites start: the sampler on the device's probe (when it has one), then the desk."""
        if self.conductor is None:
            return
        device = surroundings.device
        probe = device.resources() if device is not None and self.spec.resources != "none" else None
        if probe is not None:
            self.sampler = Sampler(probe, run).start()
            self.source = probe.source
        self.desk = Desk(run, self.label, self.conductor, on_line=self.sampler.on_line if self.sampler else None)
        self.desk.start()

    def stop(self) -> None:
        """After the suites stopped, before the device does: the desk first (its last done reaches the sampler)."""
        if self.desk is not None:
            self.desk.stop()
            if self.desk.failure:
                self.problems.append(f"turn desk: {self.desk.failure}")
            self.desk = None
        if self.sampler is not None:
            self.sampler.stop()
            if self.sampler.failure:
                self.problems.append(f"resource sampler: {self.sampler.failure}")
            self.sampler = None

    def ended(self) -> None:
        """The run is over, however it ended: it leaves the rotation (idempotent), so no other run waits for it."""
        if self.conductor is not None:
            self.conductor.ended(self.label)

    def setup(self) -> PerfSetup | None:
        if self.conductor is None:
            return None
        return PerfSetup(
            spec=typing.cast(dict[str, JSON], to_json(self.spec)),
            conductor="interleaved" if self.conductor.interleaved else "alone",
            resources=self.source,
            metrics=tuple(m.to_json() for m in self.conductor.summary()),
            left_out=self.conductor.left_out(),
            problems=tuple(self.problems),
        )


def _run_suites(
    request: RunRequest,
    surroundings: Surroundings,
    progress: Progress | None,
    token: int,
    phase: _Phase,
    keeper: WindowKeeper | None,
) -> tuple[int, str, str]:
    """Run pytest on the suites where the backend runs them (a process, or a container in the run's pod).

    The simulators are watched meanwhile: one that dies or stops answering stops the suites, and
    the third value says which and when ("" when they stayed well), so it is never the device's fault.
    """
    run = request.run
    assert surroundings.backend is not None
    launcher = surroundings.backend.suites
    deadline = time.monotonic() + request.profile.suite_timeout
    argv, roots = _suite_argv(request, launcher.python)
    shared = {str(root): "ro" for root in roots}
    shared[str(run.path)] = "rw"
    spec = LaunchSpec(
        role="suites",
        label="suites",
        argv=tuple(argv),
        log=run.log("pytest"),
        ready=Immediately(),
        env={"HOME": "/tmp", "USER": "patchgate"} if launcher.python == "python" else {},
        cwd=run.path,
        shared=shared,
        user=USER,
        stop_timeout=10.0,
    )
    try:
        phase.start(run, surroundings)
        suites = launcher.launch(spec)
    except BaseException:
        phase.stop()
        raise
    device = request.profile.device
    broker = ActionBroker(
        run,
        device.actions,
        surroundings.placeholders(surroundings.device_endpoint, surroundings.pacs_endpoint),
        device.secret_values,
        label=f"{request.label} (variant {request.variant})",
        device_workdir=run.device_workdir,
        inside=inside_device(surroundings),
    )
    fault = ""
    # An attack window's begin and end wait on this loop: look often while they may come.
    pause = 0.05 if keeper is not None else 0.2
    try:
        while suites.alive():
            broker.serve()  # the command and prompt actions the suites ask for
            if keeper is not None:
                keeper.serve()  # attack windows: a device exit inside one is that input's reaction, not a crash
            fault = surroundings.watch()
            if fault:
                suites.kill()
                fault = f"{fault}, after {run.cases_finished()} finished cases; the cases after it are not evidence"
                break
            if cancel_token() != token:
                suites.kill()
                raise KeyboardInterrupt
            if time.monotonic() > deadline:
                suites.kill()
                raise TimeoutError(f"suites did not finish within {request.profile.suite_timeout:g} s")
            if progress:
                progress(request.label, run.cases_finished(), run.collected())
            suites.pause(pause)  # a local suites process's end wakes it: the run goes on at once
    finally:
        suites.stop()
        try:
            surroundings.backend.bring_back()  # a remote engine: the suites' records, before anything reads them
        finally:
            run.drop_unfinished_progress()  # a suites process stopped mid-write leaves its temporary
            broker.close()
            phase.stop()
            if keeper is not None:
                keeper.close()
    code = suites.exit_code
    fault = fault or surroundings.watch(final=True)  # one that died during the last case counts too
    tail = log_tail(run.log("pytest").read_text(encoding="utf-8", errors="replace"), 30)
    return (code if code is not None else -1), tail, fault


def inside_device(surroundings: Surroundings) -> Callable[[Sequence[str]], tuple[int, bytes]] | None:
    """How a `where = "device"` command runs in the device's container, looked up on each call: a revival
    (robustness) replaces the container, and a command must run in the one that is up now."""
    backend, device = surroundings.backend, surroundings.device
    if backend is None or device is None or backend.inside(device) is None:
        return None  # a local device: its commands run on this host

    def run(argv: Sequence[str]) -> tuple[int, bytes]:
        current = surroundings.device
        run_in = backend.inside(current) if current is not None else None
        if run_in is None:
            raise TargetError(
                "the device's container is gone: it stopped and was not revived", hint="see the device log"
            )
        return run_in(argv)

    return run


def _check_engine(profile: Profile, name: str) -> None:
    """A Docker engine that may be on another machine: no host network, no performance phase.

    The robustness phase's windows and device actions go through files the suites and the harness
    exchange while the suites run; a remote engine's run volume relays them every fraction of a second.
    The performance phase's turns would go the same way, and that relay's delay and load would be part
    of what it measures.
    """
    from harness.launch.shipping import ENGINE_ENV, engine_address, engine_is_remote

    if not profile.variant(name).image or not engine_is_remote():
        return
    if profile.device.network == "host":
        raise ProfileError(
            f'{profile.source}: device.network = "host" with the Docker engine at {engine_address()}, which may be '
            "on another machine: its host network (and loopback) is not this machine's",
            hint=f'use network = "bridge" (the default), or {ENGINE_ENV}=local if the engine shares this machine',
        )
    if profile.performance.enabled:
        raise ProfileError(
            f"{profile.source}: variant {name!r} would run on the Docker engine at {engine_address()}, which may be "
            "on another machine; the performance phase takes turns with the harness through files, which a remote "
            "engine gets by copy: the copies' delay and load would be measured with the device",
            hint=f"measure performance on a local engine, or turn [performance] off for the remote run "
            f"({ENGINE_ENV}=local if the engine does share this disk)",
        )


def check_variant(profile: Profile, name: str) -> None:
    """Before anything starts: the variant's templates and device actions name known placeholders only.

    ActionError (harness.actions) for actions this run cannot do: operator prompts without a terminal,
    a command inside a container.
    """
    variant = profile.variant(name)
    where = f"{profile.source}: variants.{name}"
    templates = {f"{where}.command[{i}]": arg for i, arg in enumerate(variant.command)}
    templates |= {f"{where}.env.{key}": value for key, value in variant.env.items()}
    for inside, path in variant.files.items():
        try:
            templates[f"{where}.files[{inside!r}]"] = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfileError(f"{where}.files[{inside!r}]: cannot read {path}: {exc}") from None
    device = profile.device
    for hook_name, hook in device.hooks.items():
        if not hook.command:
            raise ProfileError(
                f"{profile.source}: device.hooks.{hook_name}.command is empty", hint='e.g. command = ["/bin/true"]'
            )
        templates |= {f"{profile.source}: device.hooks.{hook_name}.command[{i}]": a for i, a in enumerate(hook.command)}
    check_templates(templates, NAMES if profile.ris_simulator is not None else NAMES - RIS_NAMES)
    _check_external(profile, name)
    _check_engine(profile, name)
    for field_name, value, default in (("restart", device.restart, "no"), ("memory_limit", device.memory_limit, "")):
        if value != default and not variant.image:
            # A local process has no engine to restart it or to cap its memory: the key would be silently ignored.
            raise ProfileError(
                f"{profile.source}: device.{field_name} = {value!r} applies to containers, but variant {name!r} "
                "runs as a local process (no image)",
                hint=f"remove device.{field_name}, or give the variant an image",
            )
    ready = device.ready
    if variant.image and device.network == "bridge" and (ready == "tcp" or ready.startswith("http:")):
        raise ProfileError(
            f"{profile.source}: device.ready = {ready!r} probes from patchgate's host, but variant {name!r} runs "
            'in the run\'s own network (network = "bridge"), which the host cannot reach',
            hint='use ready = "echo" or "log:TEXT", or network = "host"',
        )
    check_actions(profile)  # placeholders, corpus items, and a terminal for operator prompts
    perf = profile.performance
    if perf.enabled and perf.max_rounds < perf.min_rounds + perf.warmup_rounds:
        # max_rounds would stop every metric before it has min_rounds kept rounds to judge
        raise ProfileError(
            f"{profile.source}: performance.max_rounds {perf.max_rounds} is less than min_rounds {perf.min_rounds}"
            f" + warmup_rounds {perf.warmup_rounds}",
            hint=f"raise performance.max_rounds to at least {perf.min_rounds + perf.warmup_rounds}",
        )
    if profile.robustness.enabled and not robustness_inputs(profile):
        from simulators.attack import inputs

        families = sorted({i.id.rsplit(".", 1)[0] + ".*" for i in inputs(profile.corpus_seed)})
        raise ProfileError(
            f"{profile.source}: robustness.inputs {list(profile.robustness.inputs)} select no corpus input",
            hint=f"globs over the input ids of docs/attack-corpus.md, e.g. {', '.join(families[:6])}",
        )


def _check_external(profile: Profile, name: str) -> None:
    """An external variant is only an address (patchgate starts nothing), and hooks belong to external devices."""
    variant, device = profile.variant(name), profile.device
    where = f"{profile.source}: variants.{name}"
    if not variant.address:
        if device.hooks:
            raise ProfileError(
                f"{profile.source}: device.hooks apply to external devices, but variant {name!r} has no address",
                hint="give every variant an address (host:port), or remove [device.hooks]",
            )
        return
    if device.port:
        raise ProfileError(
            f"{profile.source}: device.port = {device.port} and variants.{name}.address both say where the device "
            "listens",
            hint=f"remove device.port: the address's port ({variant.address}) is the one",
        )
    for key, value in (("command", variant.command), ("image", variant.image), ("files", variant.files)):
        if value:
            raise ProfileError(
                f"{where}: {key} and address both given: patchgate starts no external device (address)",
                hint=f"remove {key}, or the address to let patchgate start the variant",
            )
    if profile.robustness.enabled:
        raise ProfileError(
            f"{profile.source}: the robustness phase restarts a device an input made exit, but patchgate cannot "
            f"restart an external one (variant {name!r})",
            hint="turn [robustness] off (and leave out --robustness) for an external device",
        )
    ready = device.ready
    if ready.startswith(("http:", "log:")):
        raise ProfileError(
            f"{profile.source}: device.ready = {ready!r} cannot tell an external device (variant {name!r}) is up",
            hint='use ready = "echo" or "tcp", and a health hook for more',
        )


# A profile with operator prompts runs one run at a time: the operator acts on one console at a time.
_PROMPTED_RUN = threading.Lock()


def run_variant(request: RunRequest, progress: Progress | None = None, token: int | None = None) -> Manifest:
    """Start simulators and the device variant, run the suites, stop everything, write manifest.json.

    `token` (from `cancel_token()`, taken now when None): a `cancel_runs()` after it stops this run.

    Never raises for a device that fails: the manifest records it (status and detail) and the
    caller decides; raises HarnessError only for a bad profile or an unusable output directory
    (one another writer holds, one that already holds a run, a full or read-only disk).
    """
    token = cancel_token() if token is None else token
    forkserver.warm()
    phase = _Phase(request)
    try:
        check_variant(request.profile, request.variant)  # an unknown placeholder used to end "completed", 0 cases
        prompted = any(a.kind == "prompt" for a in request.profile.device.actions.values())
        with _PROMPTED_RUN if prompted else contextlib.nullcontext(), request.run.lock():
            request.run.prepare()
            return _run_variant(request, progress, token, phase)
    finally:
        phase.ended()  # also when it never got to its suites: the other runs must not wait barrier_timeout for it


def _run_variant(request: RunRequest, progress: Progress | None, token: int, phase: _Phase) -> Manifest:
    profile = request.profile
    run = request.run
    started, t0 = _now(), time.monotonic()
    timings: dict[str, float] = {}
    status, detail, collected = RunStatus.COMPLETED, "", 0
    spec = profile.device
    run_id = f"{request.label}-{uuid.uuid4().hex[:8]}"
    corpus, sent_sha256 = run_corpus(profile, run_id)
    setup = RunSetup(description=profile.variant(request.variant).description)
    surroundings: Surroundings | None = None
    device: Endpoint | None = None
    keeper: WindowKeeper | None = None
    try:
        surroundings = Surroundings(
            profile, request.variant, run, run_id, lambda: cancel_token() != token, worklist_date=request.worklist_date,
            hooks=request.hooks,
        )  # fmt: skip
        device = surroundings.device_endpoint
        t1 = time.monotonic()
        context = surroundings.start()
        target = surroundings.device
        assert target is not None
        timings["device_start"] = time.monotonic() - t1
        setup = replace(surroundings.describe(), description=setup.description)  # what exactly ran, for the audit trail
        # The hash the manifest records: the suites check that they made (and so sent) the same corpus.
        run.write_context(replace(context, corpus_sha256=sent_sha256, corpus_identity=corpus.identity))
        if profile.robustness.enabled:
            keeper = WindowKeeper(run, profile.robustness, lambda: surroundings.device if surroundings else None,
                                  surroundings.revive_device, surroundings.settle_device).start()  # fmt: skip
        t2 = time.monotonic()
        code, tail, fault = _run_suites(request, surroundings, progress, token, phase, keeper)
        timings["suites"] = time.monotonic() - t2
        surroundings.run_hook("collect")  # the device's own logs into the run, before the verdict is read off it
        collected = run.collected()
        fault = fault or run.space_problem()
        target = surroundings.device or target  # a revived device is a new process
        if fault:
            status, detail = RunStatus.HARNESS_FAILED, fault
        elif keeper is not None and keeper.failure:
            status, detail = RunStatus.DEVICE_FAILED, f"{keeper.failure}; log: {target.spec.log}"
        elif not target.alive() and not (keeper is not None and keeper.covers_exit):
            # An exit inside an attack window is that input's reaction (robustness/device.jsonl), not a crash.
            status = RunStatus.DEVICE_CRASHED
            detail = f"the device exited with code {target.exit_code} while the suites ran; log: {target.spec.log}"
            if isinstance(target, ExternalDevice):  # no process of ours: it stopped answering
                detail = f"the external device stopped answering while the suites ran; log: {target.spec.log}"
        elif code not in (0, 1) or (code == 1 and collected == 0):
            # 1 is "cases failed"; with none collected it is pytest itself failing (a suite's conftest raising).
            status = RunStatus.SUITE_ERROR
            last = " | ".join(tail.splitlines()[-3:])
            detail = f"pytest exited with code {code}; log: {run.log('pytest')}: {last}"
    except TargetError as exc:
        # Only the device's own start is the device's failure; a simulator that did not come up is ours, and so is
        # a lifecycle hook (reset, apply, health, collect) that failed: the device's setup, never its behaviour.
        ours = isinstance(exc, HookError) or surroundings is None or surroundings.starting != "device"
        status = RunStatus.HARNESS_FAILED if ours else RunStatus.DEVICE_FAILED
        detail = exc.one_line()
        with contextlib.suppress(OSError):
            error = exc.one_line() + "\n" + exc.detail + "\n"
            run.error.write_text(redact(error, spec.secret_values), encoding="utf-8")
    except RunDirError as exc:  # the run directory could not be written (a full disk): the harness's fault
        status, detail = RunStatus.HARNESS_FAILED, exc.one_line()
    except OSError as exc:
        status, detail = RunStatus.HARNESS_FAILED, storage_error(exc, run.path).one_line()
    except TimeoutError as exc:
        status, detail = RunStatus.SUITE_ERROR, str(exc)
    except KeyboardInterrupt:
        status, detail = RunStatus.INTERRUPTED, "interrupted"
        raise
    finally:
        phase.ended()  # before the device stops (slowly, maybe): the other runs go on measuring without this one
        if surroundings is not None:
            surroundings.stop()
            setup = replace(setup, memory_peak_bytes=surroundings.memory_peaks())
        for path in run.quoting_secrets():  # the device and the suites are done with them: mask what they quote
            with contextlib.suppress(OSError):
                redact_file(path, spec.secret_values)
        run.discard_partial()  # a suites process killed mid-write (a cancel, a dead simulator) leaves these
        timings["total"] = time.monotonic() - t0
        manifest = Manifest(
            run_id=run_id,
            role=request.role,
            replica=request.replica,
            device=spec.name,
            variant=request.variant,
            profile_path=profile.source,
            profile_sha256=profile.sha256,
            versions=_versions(),
            corpus=corpus,
            started=started,
            finished=_now(),
            timings={k: round(v, 3) for k, v in timings.items()},
            status=status,
            status_detail=detail,
            cases_collected=collected,
            device_endpoint=device,
            extra=setup,
            performance=phase.setup(),
            robustness=_robustness_setup(profile, keeper),
            worklist_date=surroundings.worklist_date if surroundings and surroundings.ris_endpoint else "",
        )
        # Secrets the profile marks (and identity credentials) never reach the manifest, so no report shows them.
        run.write_manifest(
            redact(manifest, spec.secret_values)
        )  # RunDirError ("no space left on ...") when even this cannot be written
    return manifest
