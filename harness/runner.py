"""The runner: one device variant, its simulators and the suites, into a self-contained run directory."""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from harness.context import SuiteContext
from harness.errors import HarnessError, TargetError
from harness.model import CorpusInfo, Endpoint, Manifest, RunStatus
from harness.profile import Profile
from harness.record import OBSERVATIONS, write_manifest
from harness.targets.base import Target, log_tail, render
from harness.targets.local import LocalTarget
from simulators._net import free_port

__all__ = ["Progress", "RunRequest", "corpus_info", "run_variant", "suites_root"]

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


def _start_pacs(request: RunRequest, logs: Path) -> tuple[LocalTarget, Endpoint, Path]:
    spec = request.profile.simulators["pacs"]
    endpoint = Endpoint(spec.ae_title, "127.0.0.1", spec.port or free_port())
    storage = request.out / "simulators" / "pacs"
    argv = [sys.executable, "-m", "simulators.pacs", "--ae-title", endpoint.ae_title]
    argv += ["--host", endpoint.host, "--port", str(endpoint.port), "--storage", str(storage)]
    target = LocalTarget("PACS simulator", argv, endpoint, logs / "pacs.log", start_timeout=20.0)
    target.start()
    return target, endpoint, storage


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


def _device_target(request: RunRequest, device: Endpoint, pacs: Endpoint, run_id: str) -> Target:
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
    from harness.targets.docker import DockerTarget, docker_client, sweep

    client = docker_client()
    swept = sweep(client)  # containers a killed run left behind
    if swept:
        (request.out / "logs" / "swept.txt").write_text("\n".join(swept) + "\n", encoding="utf-8")
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
        client=client,
        **common,  # type: ignore[arg-type]
    )


def _run_suites(request: RunRequest, logs: Path, progress: Progress | None) -> tuple[int, str]:
    """Run pytest on the suites in a subprocess; returns its exit code and log tail."""
    profile = request.profile
    run_dir = request.out
    roots = [Path(p) for p in profile.suite_paths] or [suites_root()]
    ini = run_dir / "pytest.ini"
    # Our own ini and rootdir: the suites must not pick up a user project's pytest configuration.
    ini.write_text("[pytest]\naddopts = -p no:cacheprovider\n", encoding="utf-8")
    argv = [sys.executable, "-m", "pytest", "-c", str(ini), "--rootdir", str(roots[0]), "--import-mode=importlib"]
    argv += ["--patchgate-run", str(run_dir), "--junitxml", str(run_dir / "junit.xml")]
    argv += ["--alluredir", str(run_dir / "allure-results"), "-q", "-rN", "--no-header"]
    argv += [str(r) for r in roots]
    log_path = logs / "pytest.log"
    deadline = time.monotonic() + profile.suite_timeout
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=run_dir)
        while process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                process.wait(timeout=10)
                raise TimeoutError(f"suites did not finish within {profile.suite_timeout:g} s")
            if progress:
                progress(request.label, _count_lines(run_dir / OBSERVATIONS), _collected(run_dir))
            time.sleep(0.2)
    tail = log_tail(log_path.read_text(encoding="utf-8", errors="replace"), 30)
    return process.returncode, tail


def _describe(target: Target) -> dict[str, object]:
    if isinstance(target, LocalTarget):
        return {"backend": "local", "command": list(target.argv)}
    from harness.targets.docker import DockerTarget, image_info

    assert isinstance(target, DockerTarget)
    return {"backend": "docker", "image": image_info(target.client, target.image), "command": target.command}


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
    targets: list[Target] = []
    run_id = f"{request.label}-{uuid.uuid4().hex[:8]}"
    extra: dict[str, object] = {"description": profile.variant(request.variant).description}
    try:
        pacs_target, pacs, pacs_storage = _start_pacs(request, logs)
        targets.append(pacs_target)
        target = _device_target(request, device, pacs, run_id)
        targets.append(target)
        t1 = time.monotonic()
        target.start()
        timings["device_start"] = time.monotonic() - t1
        extra.update(_describe(target))  # what exactly ran, for the audit trail
        SuiteContext(
            run_dir=str(run_dir),
            device=device,
            pacs=pacs,
            pacs_storage=str(pacs_storage),
            modality_ae_title=profile.modality_ae_title,
            services=spec.services,
            corpus_seed=profile.corpus_seed,
        ).write()
        t2 = time.monotonic()
        code, tail = _run_suites(request, logs, progress)
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
        for t in reversed(targets):
            t.stop()
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
