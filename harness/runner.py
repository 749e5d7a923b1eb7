"""The runner: one device variant, its simulators and the suites, into a self-contained run directory."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Protocol

from harness.errors import HarnessError, TargetError
from harness.model import CorpusInfo, Endpoint, Manifest, RunStatus
from harness.profile import Profile
from harness.record import OBSERVATIONS, write_manifest
from harness.stage import USER, Stage
from harness.targets.base import log_tail
from harness.targets.network import labels
from simulators._net import free_port

__all__ = ["Progress", "RunRequest", "cancel_runs", "cancel_token", "corpus_info", "run_variant", "suites_root"]

# Bumped by a signal handler: a run started before the bump turns it into KeyboardInterrupt at its next
# check, so its `finally` cleans up. A generation, not a flag: a library caller's later runs are not cancelled.
# No lock: the handler runs on the main thread between bytecodes, and one the main thread held would deadlock.
_cancel_generation = 0


def cancel_runs() -> None:
    """Make every run started so far in this process stop at its next check (SIGTERM, Ctrl-C), cleaning up."""
    global _cancel_generation
    _cancel_generation += 1


def cancel_token() -> int:
    """The current generation: runs given it are cancelled by any later `cancel_runs()`."""
    return _cancel_generation


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


def _suite_argv(request: RunRequest, python: str) -> tuple[list[str], list[Path]]:
    """The pytest command line for the run's suites, and the suite roots it reads."""
    run_dir = request.out
    roots = [Path(p) for p in request.profile.suite_paths] or [suites_root()]
    ini = run_dir / "pytest.ini"
    # Our own ini and rootdir: the suites must not pick up a user project's pytest configuration.
    ini.write_text("[pytest]\naddopts = -p no:cacheprovider\n", encoding="utf-8")
    # -P: the run directory (the working directory) is not on sys.path, so its simulators/ folder
    # of received files can never shadow the simulators package as a namespace package.
    argv = [python, "-P", "-m", "pytest", "-c", str(ini), "--rootdir", str(roots[0]), "--import-mode=importlib"]
    argv += ["--patchgate-run", str(run_dir), "--junitxml", str(run_dir / "junit.xml")]
    argv += ["--alluredir", str(run_dir / "allure-results"), "-q", "-rN", "--no-header"]
    return argv + [str(r) for r in roots], roots


class _Suites(Protocol):
    """A started pytest process (local or in the run's pod)."""

    def poll(self) -> int | None: ...
    def kill(self) -> None: ...


class _SuiteContainer:
    """pytest in the run's pod: the simulators image, the run directory and suite roots mounted at their own paths."""

    def __init__(self, stage: Stage, argv: list[str], roots: list[Path], run_dir: Path, log_path: Path) -> None:
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
            environment={"HOME": "/tmp", "USER": "patchgate", **stage.lifeline},
            user=USER,
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
        from harness.targets.docker import retire

        retire(self.container, self.log_path)


def _reap(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def _run_suites(
    request: RunRequest, stage: Stage, logs: Path, progress: Progress | None, token: int
) -> tuple[int, str]:
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
            env = {**os.environ, **stage.lifeline}
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=run_dir, env=env
            )
            stack.callback(_reap, process)
            suites = process
        while (code := suites.poll()) is None:
            if cancel_token() != token:
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


def run_variant(request: RunRequest, progress: Progress | None = None, token: int | None = None) -> Manifest:
    """Start simulators and the device variant, run the suites, stop everything, write manifest.json.

    `token` (from `cancel_token()`, taken now when None): a `cancel_runs()` after it stops this run.

    Never raises for a device that fails: the manifest records it (status and detail) and the
    caller decides; raises HarnessError only for a bad profile or an unusable output directory.
    """
    token = cancel_token() if token is None else token
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
    device = Endpoint(spec.ae_title, spec.host, spec.port or free_port(), tls=profile.variant(request.variant).tls)
    corpus = corpus_info(profile.corpus_seed)
    run_id = f"{request.label}-{uuid.uuid4().hex[:8]}"
    extra: dict[str, object] = {"description": profile.variant(request.variant).description}
    stage: Stage | None = None
    try:
        stage = Stage(profile, request.variant, run_dir, run_id)
        t1 = time.monotonic()
        context = stage.start(device)
        target = stage.device
        assert target is not None
        timings["device_start"] = time.monotonic() - t1
        extra.update(stage.describe())  # what exactly ran, for the audit trail
        context.write()
        t2 = time.monotonic()
        code, tail = _run_suites(request, stage, logs, progress, token)
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
            extra["memory_peak_bytes"] = stage.memory_peaks()
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
