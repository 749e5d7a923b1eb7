"""The runner: one device variant, its simulators and the suites, into a self-contained run directory."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from harness.context import SuiteContext
from harness.errors import HarnessError, TargetError
from harness.model import CorpusInfo, Endpoint, Manifest, RunStatus
from harness.profile import Profile
from harness.record import OBSERVATIONS, write_manifest
from harness.targets.base import Target, log_tail, render
from harness.targets.local import LocalTarget
from harness.targets.network import RunNetwork, labels, open_network
from simulators._net import free_port

__all__ = ["Progress", "RunRequest", "cancel_runs", "corpus_info", "run_variant", "suites_root"]

# Simulator and suite containers run as the calling user, so what they write in the run directory is theirs.
_USER = f"{os.getuid()}:{os.getgid()}"

# Set by a signal handler: every run's wait loop turns it into KeyboardInterrupt, so its `finally` cleans up.
_CANCELLED = threading.Event()


def cancel_runs() -> None:
    """Make every run in this process stop at its next check (SIGTERM, Ctrl-C), cleaning up as it goes."""
    _CANCELLED.set()


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

    def __post_init__(self) -> None:
        # Absolute: the suites run with the run directory as their working directory, and containers bind-mount it.
        object.__setattr__(self, "out", Path(self.out).resolve())

    @property
    def label(self) -> str:
        return f"{self.role}-{self.replica}"


def suites_root() -> Path:
    """The built-in suites shipped in the `suites` package."""
    import suites

    return Path(suites.__file__).parent


def corpus_info(seed: int) -> CorpusInfo:
    from simulators.corpus import UID_ROOT, corpus_hash, generate

    items = generate(seed)
    return CorpusInfo(seed=seed, sha256=corpus_hash(items), uid_root=UID_ROOT, items=len(items))


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("patchgate", "pydicom", "pynetdicom", "pytest", "allure-pytest", "numpy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as handle:
            return sum(1 for _ in handle)
    except OSError:
        return 0


def _collected(run_dir: Path) -> int:
    try:
        return int((run_dir / "collected").read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def _pacs_argv(python: str, endpoint: Endpoint, storage: Path) -> list[str]:
    argv = [python, "-m", "simulators.pacs", "--ae-title", endpoint.ae_title, "--host", endpoint.host]
    return [*argv, "--port", str(endpoint.port), "--storage", str(storage)]


def _pacs_endpoint(request: RunRequest) -> tuple[Endpoint, Path]:
    spec = request.profile.simulators["pacs"]
    storage = request.out / "simulators" / "pacs"
    storage.mkdir(parents=True, exist_ok=True)  # before a container mounts it, so it is ours, not root's
    return Endpoint(spec.ae_title, "127.0.0.1", spec.port or free_port()), storage


def _local_pacs(request: RunRequest, logs: Path) -> LocalTarget:
    endpoint, storage = _pacs_endpoint(request)
    argv = _pacs_argv(sys.executable, endpoint, storage)
    return LocalTarget("PACS simulator", argv, endpoint, logs / "pacs.log", start_timeout=20.0)


def _placeholders(request: RunRequest, device: Endpoint, pacs: Endpoint) -> dict[str, str]:
    profile = request.profile
    variant = profile.variant(request.variant)
    return {
        "python": sys.executable,
        "ae_title": device.ae_title,
        "host": device.host,
        "port": str(device.port),
        "http_port": str(free_port()),  # for devices with a web API (Orthanc), kept on loopback
        "workdir": str(request.out / "device"),
        "profile_dir": str(Path(profile.source).parent.resolve()) if not profile.source.startswith("<") else "",
        "pacs.ae_title": pacs.ae_title,
        "pacs.host": pacs.host,
        "pacs.port": str(pacs.port),
        "modality.ae_title": profile.modality_ae_title,
        "variant": variant.name,
    }


@dataclass
class _Stage:
    """What one run started: the PACS simulator, the device, and (docker) the run's network and engine."""

    pacs: Target
    pacs_storage: Path
    device: Target | None = None
    network: RunNetwork | None = None
    client: Any = None
    simulators_image: str = ""
    run_id: str = ""

    def stop(self) -> None:
        for target in (self.device, self.pacs):
            if target is not None:
                target.stop()
        if self.network is not None:
            self.network.close()


def _docker_stage(request: RunRequest, logs: Path, run_id: str) -> _Stage:
    """Sweep what killed runs left, make the run's network, and start the PACS simulator as a container in it."""
    from harness.images import require_simulators_image
    from harness.targets.docker import DockerTarget, docker_client, sweep

    client = docker_client()
    swept = sweep(client)
    if swept:
        (logs / "swept.txt").write_text("\n".join(swept) + "\n", encoding="utf-8")
    image = require_simulators_image(client)
    network = open_network(request.profile.device.network, client, run_id, image)
    endpoint, storage = _pacs_endpoint(request)
    pacs = DockerTarget(
        "PACS simulator",
        image,
        endpoint,
        logs / "pacs.log",
        run_id=run_id,
        command=_pacs_argv("python", endpoint, storage),
        workdir=storage,
        start_timeout=30.0,
        client=client,
        network=network,
        role="pacs",
        user=_USER,
    )
    return _Stage(pacs, storage, network=network, client=client, simulators_image=image, run_id=run_id)


def _device_target(request: RunRequest, stage: _Stage, device: Endpoint, pacs: Endpoint, run_id: str) -> Target:
    """The device variant as a process (`command`) or a container (`image`), not started yet."""
    profile = request.profile
    spec = profile.device
    variant = profile.variant(request.variant)
    values = _placeholders(request, device, pacs)
    where = f"{profile.source}: variants.{variant.name}"
    argv = [render(arg, values, f"{where}.command") for arg in variant.command]
    env = {k: render(v, values, f"{where}.env") for k, v in variant.env.items()}
    workdir = request.out / "device"
    workdir.mkdir(exist_ok=True)
    label = f"device {spec.name!r} variant {request.variant!r}"
    log = request.out / "logs" / "device.log"
    common = {
        "start_timeout": spec.start_timeout,
        "stop_timeout": spec.stop_timeout,
        "calling_ae": profile.modality_ae_title,
    }
    if variant.backend == "local":
        return LocalTarget(label, argv, device, log, env=env, cwd=workdir, **common)  # type: ignore[arg-type]
    from harness.targets.docker import DockerTarget

    mounts: dict[str, str] = {}
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
        run_id=run_id,
        command=argv or None,
        env=env,
        mounts=mounts,
        workdir=workdir,
        client=stage.client,
        network=stage.network,
        **common,  # type: ignore[arg-type]
    )


def _suite_argv(request: RunRequest, python: str) -> tuple[list[str], list[Path]]:
    """The pytest command line for the run's suites, and the suite roots it reads."""
    run_dir = request.out
    roots = [Path(p) for p in request.profile.suite_paths] or [suites_root()]
    ini = run_dir / "pytest.ini"
    # Our own ini and rootdir: the suites must not pick up a user project's pytest configuration.
    ini.write_text("[pytest]\naddopts = -p no:cacheprovider\n", encoding="utf-8")
    argv = [python, "-m", "pytest", "-c", str(ini), "--rootdir", str(roots[0]), "--import-mode=importlib"]
    argv += ["--patchgate-run", str(run_dir), "--junitxml", str(run_dir / "junit.xml")]
    argv += ["--alluredir", str(run_dir / "allure-results"), "-q", "-rN", "--no-header"]
    return argv + [str(r) for r in roots], roots


class _Suites(Protocol):
    """A started pytest process (local or in the run's pod)."""

    def poll(self) -> int | None: ...
    def kill(self) -> None: ...


class _SuiteContainer:
    """pytest in the run's pod: the simulators image, the run directory and suite roots mounted at their own paths."""

    def __init__(self, stage: _Stage, argv: list[str], roots: list[Path], run_dir: Path, log_path: Path) -> None:
        volumes = {str(root): {"bind": str(root), "mode": "ro"} for root in roots}
        volumes[str(run_dir)] = {"bind": str(run_dir), "mode": "rw"}
        assert stage.network is not None
        self.log_path = log_path
        self.container = stage.client.containers.run(
            stage.simulators_image,
            argv,
            detach=True,
            init=True,
            working_dir=str(run_dir),
            volumes=volumes,
            environment={"HOME": "/tmp", "USER": "patchgate"},
            user=_USER,
            labels=labels(stage.run_id, "suites"),
            name=f"patchgate-{stage.run_id}-suites",
            **stage.network.container_options(),
        )

    def poll(self) -> int | None:
        self.container.reload()
        if self.container.status not in ("exited", "dead"):
            return None
        return int(self.container.attrs.get("State", {}).get("ExitCode", -1))

    def kill(self) -> None:
        with contextlib.suppress(Exception):  # already gone
            self.container.kill()

    def close(self) -> None:
        from harness.targets.docker import remove_container

        with contextlib.suppress(Exception):  # best effort: the log is for people
            self.log_path.write_bytes(self.container.logs())
        remove_container(self.container)


def _reap(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def _run_suites(request: RunRequest, stage: _Stage, logs: Path, progress: Progress | None) -> tuple[int, str]:
    """Run pytest on the suites (a local subprocess, or a container in the run's pod); exit code and log tail."""
    run_dir = request.out
    log_path = logs / "pytest.log"
    deadline = time.monotonic() + request.profile.suite_timeout
    in_pod = stage.network is not None and stage.network.in_pod
    argv, roots = _suite_argv(request, "python" if in_pod else sys.executable)
    with contextlib.ExitStack() as stack:
        suites: _Suites
        if in_pod:
            container = _SuiteContainer(stage, argv, roots, run_dir, log_path)
            stack.callback(container.close)
            suites = container
        else:
            log = stack.enter_context(log_path.open("wb"))
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=run_dir
            )
            stack.callback(_reap, process)
            suites = process
        while (code := suites.poll()) is None:
            if _CANCELLED.is_set():
                suites.kill()
                raise KeyboardInterrupt
            if time.monotonic() > deadline:
                suites.kill()
                raise TimeoutError(f"suites did not finish within {request.profile.suite_timeout:g} s")
            if progress:
                progress(request.label, _count_lines(run_dir / OBSERVATIONS), _collected(run_dir))
            time.sleep(0.2)
    tail = log_tail(log_path.read_text(encoding="utf-8", errors="replace"), 30)
    return code, tail


def _describe(stage: _Stage, target: Target) -> dict[str, object]:
    if isinstance(target, LocalTarget):
        return {"backend": "local", "command": list(target.argv)}
    from harness.targets.docker import DockerTarget, image_info

    assert isinstance(target, DockerTarget) and stage.network is not None
    return {
        "backend": "docker",
        "image": image_info(target.client, target.image),
        "command": target.command,
        "network": stage.network.describe(),
        "simulators_image": image_info(target.client, stage.simulators_image),
    }


def run_variant(request: RunRequest, progress: Progress | None = None) -> Manifest:
    """Start simulators and the device variant, run the suites, stop everything, write manifest.json.

    Never raises for a device that fails: the manifest records it (status and detail) and the
    caller decides; raises HarnessError only for a bad profile or an unusable output directory.
    """
    profile = request.profile
    run_dir = request.out
    if (run_dir / "manifest.json").exists() or (run_dir / OBSERVATIONS).exists():
        raise HarnessError(f"{run_dir}: already holds a run", hint="choose an empty --out directory")
    logs = run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started, t0 = _now(), time.monotonic()
    timings: dict[str, float] = {}
    status, detail, collected = RunStatus.COMPLETED, "", 0
    spec = profile.device
    device = Endpoint(spec.ae_title, spec.host, spec.port or free_port())
    corpus = corpus_info(profile.corpus_seed)
    run_id = f"{request.label}-{uuid.uuid4().hex[:8]}"
    extra: dict[str, object] = {"description": profile.variant(request.variant).description}
    stage: _Stage | None = None
    try:
        if profile.variant(request.variant).backend == "docker":
            stage = _docker_stage(request, logs, run_id)
        else:
            stage = _Stage(_local_pacs(request, logs), request.out / "simulators" / "pacs")
        pacs = stage.pacs.start()
        target = stage.device = _device_target(request, stage, device, pacs, run_id)
        t1 = time.monotonic()
        target.start()
        timings["device_start"] = time.monotonic() - t1
        extra.update(_describe(stage, target))  # what exactly ran, for the audit trail
        SuiteContext(
            run_dir=str(run_dir),
            device=device,
            pacs=pacs,
            pacs_storage=str(stage.pacs_storage),
            modality_ae_title=profile.modality_ae_title,
            services=spec.services,
            corpus_seed=profile.corpus_seed,
        ).write()
        t2 = time.monotonic()
        code, tail = _run_suites(request, stage, logs, progress)
        timings["suites"] = time.monotonic() - t2
        collected = _collected(run_dir)
        if not target.alive():
            status = RunStatus.DEVICE_CRASHED
            detail = f"the device exited with code {target.exit_code} while the suites ran; log: {target.log_path}"
        elif code not in (0, 1):
            status = RunStatus.SUITE_ERROR
            last = " | ".join(tail.splitlines()[-3:])
            detail = f"pytest exited with code {code}; log: {logs / 'pytest.log'}: {last}"
    except TargetError as exc:
        status, detail = RunStatus.DEVICE_FAILED, exc.one_line()
        (logs / "error.txt").write_text(exc.one_line() + "\n" + exc.detail + "\n", encoding="utf-8")
    except TimeoutError as exc:
        status, detail = RunStatus.SUITE_ERROR, str(exc)
    except KeyboardInterrupt:
        status, detail = RunStatus.INTERRUPTED, "interrupted"
        raise
    finally:
        if stage is not None:
            stage.stop()
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
            extra=extra,
        )
        write_manifest(run_dir, manifest)
    return manifest
