"""Local Docker images: the Debian base, the simulators, and the Orthanc and DCMTK devices under test.

Every image is built on this machine (no registry needed) and labelled with a digest of
its inputs, so a second `build_all()` reuses what is current and rebuilds what is stale.

    python -m harness.images [--force] [--only base|simulators|orthanc|dcmtk|orthanc-security]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness._debootstrap import debian_mirror, debootstrap_image
from harness.errors import HarnessError, TargetError
from harness.shipped import BUNDLED, devices_root, project_file

__all__ = [
    "BASE_IMAGE",
    "DCMTK_IMAGE",
    "LABEL_IMAGE",
    "LABEL_INPUTS",
    "ORTHANC_IMAGE",
    "ORTHANC_SECURITY_IMAGE",
    "build_all",
    "build_base",
    "build_dcmtk",
    "build_orthanc",
    "build_orthanc_security",
    "build_simulators",
    "main",
    "require_simulators_image",
    "simulators_image",
    "source_digest",
]

Log = Callable[[str], object]
BUILD_LOCK_WAIT = 3600  # s: a first build (debootstrap, then every image) takes minutes on a slow mirror

BASE_IMAGE = "patchgate/base:bookworm"
ORTHANC_IMAGE = "patchgate/orthanc:1.10"
ORTHANC_SECURITY_IMAGE = "patchgate/orthanc:1.10-security"
DCMTK_IMAGE = "patchgate/dcmtk:3.6.7"
LABEL_IMAGE = "org.patchgate.image"
LABEL_INPUTS = "org.patchgate.inputs"  # sha256 of what the image was built from
LABEL_SOURCE = "org.patchgate.source"  # sha256 of the project files inside the simulators image

# The registry images the Dockerfiles name by default; used as is when already present locally.
_PYTHON_DEFAULT = "python:3.11-slim-bookworm"
_DEBIAN_DEFAULT = "debian:bookworm-slim"
_SECURITY_DEFAULT = "http://deb.debian.org/debian-security"
_BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
_IMAGE_PYTHON = "3.11"  # bookworm's python3 and python:3.11-slim both; the wheels are fetched for it
_GLIBC = 36  # bookworm's glibc 2.36: every manylinux wheel from 2.17 up to it runs in the image
_SOURCE_DIRS = ("harness", "simulators", "suites")
_SOURCE_FILES = ("pyproject.toml", "README.md")

_ROOT = Path(__file__).resolve().parents[1]  # a checkout; site-packages in a wheel install


def simulators_image(root: Path = _ROOT) -> str:
    """`patchgate/simulators:<version>`, the version read from the source tree's pyproject.toml (a wheel's copy)."""
    return f"patchgate/simulators:{_project_version(root)}"


def _pyproject(root: Path) -> Path:
    return root / "pyproject.toml" if root != _ROOT else project_file("pyproject.toml")


def _project_version(root: Path) -> str:
    pyproject = _pyproject(root)
    try:
        with pyproject.open("rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise TargetError(
            f"{pyproject}: cannot read the project version: {exc}",
            hint="images are built from a source checkout of patchgate",
        ) from None


def _digest(parts: Iterable[bytes]) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(hashlib.sha256(part).digest())
    return sha.hexdigest()


def _tree_files(root: Path) -> list[Path]:
    """The files the project wheel is made of, in a stable order (caches and bytecode left out)."""
    files = [root / name for name in _SOURCE_FILES]
    for folder in _SOURCE_DIRS:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
                files.append(path)
    return files


def source_digest(root: Path = _ROOT) -> str | None:
    """The digest of the project files the simulators image is made of; None outside a source checkout."""
    if not (root / "pyproject.toml").is_file():
        return None  # an installed wheel: there is no tree to compare the image with
    return _digest(f.read_bytes() for f in _tree_files(root))


def _source_tree(root: Path, into: Path) -> Path:
    """The project's source tree: `root` when it is one (a checkout), else one made in `into` from the installed
    packages and the pyproject.toml and README.md the wheel carries, for `pip wheel` to build the project from."""
    if (root / "pyproject.toml").is_file():
        return root
    into.mkdir(parents=True)
    for name in _SOURCE_FILES:
        shutil.copy2(project_file(name), into / name)
    for folder in _SOURCE_DIRS:
        # The wheel's bundle stays out: the image needs no device profiles, and it would change every digest.
        skip = ("__pycache__", "*.pyc", *((BUNDLED.name,) if folder == "harness" else ()))
        shutil.copytree(root / folder, into / folder, ignore=shutil.ignore_patterns(*skip))
    return into


def require_simulators_image(client: Any, root: Path = _ROOT) -> str:
    """The simulators image name, once it exists and holds this checkout's code; TargetError otherwise.

    $PATCHGATE_SIMULATORS_IMAGE names another image (e.g. one from a registry) and is taken as it is.
    """
    import docker.errors

    chosen = os.environ.get("PATCHGATE_SIMULATORS_IMAGE", "").strip()
    name = chosen or simulators_image(root)
    try:
        image = client.images.get(name)
    except docker.errors.ImageNotFound:
        raise TargetError(
            f"image {name!r} not found: containerised runs need the simulators image",
            hint="build it: patchgate images build",
        ) from None
    wanted = None if chosen else source_digest(root)
    if wanted is not None and (image.labels or {}).get(LABEL_SOURCE) != wanted:
        raise TargetError(
            f"image {name!r} was built from other sources than this checkout ({root})",
            hint="rebuild it: patchgate images build (only what changed is rebuilt)",
        )
    return name


def _current(client: Any, name: str, inputs: str) -> str | None:
    """The id of image `name` when it exists and was built from `inputs`, else None."""
    import docker.errors

    try:
        image = client.images.get(name)
    except docker.errors.ImageNotFound:
        return None
    return str(image.id) if (image.labels or {}).get(LABEL_INPUTS) == inputs else None


def _present(client: Any, name: str) -> str | None:
    import docker.errors

    try:
        return str(client.images.get(name).id)
    except docker.errors.ImageNotFound:
        return None


def _tail(lines: Sequence[str], count: int = 30) -> str:
    return "\n".join(lines[-count:])


def _size(client: Any, name: str) -> str:
    return f"{int(client.images.get(name).attrs.get('Size', 0)) / 1e6:.0f} MB"


def _build(
    client: Any,
    name: str,
    context: Path,
    *,
    kind: str,
    inputs: str,
    buildargs: Mapping[str, str],
    timeout: float,
    log: Log,
    nocache: bool = False,
    labels: Mapping[str, str] | None = None,
) -> str:
    """`docker build --network host` of context/Dockerfile, bounded by `timeout`; returns the image id."""
    import docker.errors
    import requests.exceptions

    start = time.monotonic()
    lines: list[str] = []
    saved = client.api.timeout
    client.api.timeout = timeout  # each read from the engine; the total is checked per line below
    try:
        stream = client.api.build(
            path=str(context),
            dockerfile="Dockerfile",
            tag=name,
            buildargs=dict(buildargs),
            labels={LABEL_IMAGE: kind, LABEL_INPUTS: inputs, **(labels or {})},
            network_mode="host",
            rm=True,
            forcerm=True,
            pull=False,
            nocache=nocache,  # forced: apt-get update and pip run again instead of coming from the cache
            decode=True,
        )
        for chunk in stream:
            lines.extend(str(chunk.get("stream", "")).splitlines())
            if "error" in chunk:
                lines.append(str(chunk["error"]))
                raise TargetError(
                    f"cannot build {name} from {context / 'Dockerfile'}: {str(chunk['error']).strip()}",
                    hint="the build log tail follows; retry with --force after fixing it",
                    detail=_tail(lines),
                )
            if time.monotonic() - start > timeout:
                raise TargetError(
                    f"cannot build {name}: the build took longer than {timeout:g} s",
                    hint="a slow mirror or PyPI; retry, or raise the timeout",
                    detail=_tail(lines),
                )
    except (docker.errors.APIError, docker.errors.BuildError, requests.exceptions.RequestException) as exc:
        raise TargetError(
            f"cannot build {name} from {context / 'Dockerfile'}: {exc}",
            hint="is the engine up? (scripts/docker-engine.sh)",
            detail=_tail(lines),
        ) from None
    finally:
        client.api.timeout = saved
    image_id = _current(client, name, inputs)
    if image_id is None:
        raise TargetError(f"cannot build {name}: the engine reported no image", detail=_tail(lines))
    log(f"{name}: built in {time.monotonic() - start:.1f} s ({_size(client, name)})")
    return image_id


def build_base(client: Any, *, force: bool = False, log: Log = print) -> str:
    """`patchgate/base:bookworm`: debootstrap minbase with python3, python3-venv and ca-certificates."""
    inputs = _digest([f"debootstrap --variant=minbase bookworm {','.join(_BASE_PACKAGES)}".encode()])
    if not force and (image_id := _current(client, BASE_IMAGE, inputs)):
        log(f"{BASE_IMAGE}: up to date")
        return image_id
    start = time.monotonic()
    changes = [
        f"LABEL {LABEL_IMAGE}=base {LABEL_INPUTS}={inputs}",
        "ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        'CMD ["python3"]',
    ]
    image_id = debootstrap_image(client, BASE_IMAGE, include=_BASE_PACKAGES, changes=changes, log=log)
    log(f"{BASE_IMAGE}: built in {time.monotonic() - start:.1f} s ({_size(client, BASE_IMAGE)})")
    return image_id


def _base_for(client: Any, default: str, *, log: Log) -> str:
    """The base a Dockerfile builds on: $PATCHGATE_BASE_IMAGE, else its default if present, else the local one."""
    chosen = os.environ.get("PATCHGATE_BASE_IMAGE", "").strip()
    if chosen:
        return chosen
    if _present(client, default):
        return default
    if not _present(client, BASE_IMAGE):
        build_base(client, log=log)
    return BASE_IMAGE


def _base_id(client: Any, base: str) -> str:
    image_id = _present(client, base)
    if image_id is None:
        raise TargetError(
            f"base image {base!r} is not in the local engine",
            hint="unset PATCHGATE_BASE_IMAGE to build the local Debian base, or load that image first",
        )
    return image_id


def _run(argv: Sequence[str], what: str, timeout: float) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise TargetError(f"{what}: took longer than {timeout:g} s", hint="is PyPI reachable?") from None
    if done.returncode != 0:
        raise TargetError(
            f"{what}: pip {argv[5]} exited with {done.returncode}",
            hint="is PyPI reachable, and do wheels exist for every dependency?",
            detail=_tail((done.stdout + done.stderr).splitlines()),
        )


def _wheels(root: Path, into: Path, timeout: float) -> None:
    """The project wheel and every dependency as a wheel for the image's Python, into `into`."""
    source = into.parent / "src"
    source.mkdir()
    for name in _SOURCE_FILES:
        shutil.copy2(root / name, source / name)
    for folder in _SOURCE_DIRS:
        # Built from a copy: pip and setuptools write build/ and *.egg-info next to the sources.
        shutil.copytree(root / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _run([*pip, "wheel", "--no-deps", "-w", str(into), str(source)], "the project wheel", timeout)
    wheels = sorted(into.glob("patchgate-*.whl"))
    if not wheels:
        raise TargetError(f"the project wheel: pip wheel left nothing in {into}")
    arch = platform.machine()
    # Every tag spelled out: older pips do not expand manylinux_2_36 to the glibc versions below it.
    platforms = [f"--platform=manylinux_2_{minor}_{arch}" for minor in range(_GLIBC, 16, -1)]
    platforms.append(f"--platform=manylinux2014_{arch}")
    download = [
        *pip,
        "download",
        "--only-binary=:all:",
        *platforms,
        f"--python-version={_IMAGE_PYTHON}",
        "--implementation=cp",
        "-d",
        str(into),
        str(wheels[0]),
    ]
    _run(download, f"the dependency wheels (manylinux {arch}, Python {_IMAGE_PYTHON})", timeout)


def build_simulators(
    client: Any, *, base: str | None = None, force: bool = False, log: Log = print, root: Path = _ROOT
) -> str:
    """`patchgate/simulators:<version>`: the project and its dependencies installed from wheels in a venv."""
    name = simulators_image(root)
    with tempfile.TemporaryDirectory(prefix="patchgate-simulators-") as tmp:
        tree = _source_tree(root, Path(tmp) / "installed")
        dockerfile = tree / "simulators" / "docker" / "Dockerfile"
        base = base or _base_for(client, _PYTHON_DEFAULT, log=log)
        source = _digest(f.read_bytes() for f in _tree_files(tree))
        inputs = _digest([base.encode(), _base_id(client, base).encode(), dockerfile.read_bytes(), source.encode()])
        if not force and (image_id := _current(client, name, inputs)):
            log(f"{name}: up to date")
            return image_id
        start = time.monotonic()
        context = Path(tmp) / "context"
        (context / "wheels").mkdir(parents=True)
        shutil.copy2(dockerfile, context / "Dockerfile")
        _wheels(tree, context / "wheels", timeout=300.0)
        log(f"{name}: wheels ready in {time.monotonic() - start:.1f} s")
        return _build(
            client,
            name,
            context,
            kind="simulators",
            inputs=inputs,
            buildargs={"BASE_IMAGE": base},
            timeout=600.0,
            log=log,
            nocache=force,
            labels={LABEL_SOURCE: source},
        )


def _build_device(
    client: Any,
    name: str,
    kind: str,
    folder: Path,
    base: str | None,
    force: bool,
    log: Log,
    buildargs: Mapping[str, str] | None = None,
) -> str:
    base = base or _base_for(client, _DEBIAN_DEFAULT, log=log)
    dockerfile = folder / "Dockerfile"
    extra = dict(buildargs or {})
    parts = [base.encode(), _base_id(client, base).encode(), dockerfile.read_bytes()]
    inputs = _digest([*parts, *(f"{k}={v}".encode() for k, v in sorted(extra.items()))])
    args = {"BASE_IMAGE": base, **extra}
    if not force and (image_id := _current(client, name, inputs)):
        log(f"{name}: up to date")
        return image_id
    return _build(client, name, folder, kind=kind, inputs=inputs, buildargs=args, timeout=600.0, log=log, nocache=force)


def build_orthanc(client: Any, *, base: str | None = None, force: bool = False, log: Log = print) -> str:
    """`patchgate/orthanc:1.10`: Debian bookworm's orthanc package (1.10.x), from devices/orthanc/Dockerfile."""
    return _build_device(client, ORTHANC_IMAGE, "orthanc", devices_root() / "orthanc", base, force, log)


def build_dcmtk(client: Any, *, base: str | None = None, force: bool = False, log: Log = print) -> str:
    """`patchgate/dcmtk:3.6.7`: Debian bookworm's dcmtk package (dcmqrscp), from devices/dcmtk/Dockerfile."""
    return _build_device(client, DCMTK_IMAGE, "dcmtk", devices_root() / "dcmtk", base, force, log)


def build_orthanc_security(client: Any, *, base: str | None = None, force: bool = False, log: Log = print) -> str:
    """`patchgate/orthanc:1.10-security`: patchgate/orthanc:1.10 upgraded from bookworm-security (a real OS patch)."""
    base = base or ORTHANC_IMAGE
    if not _present(client, base):
        raise TargetError(
            f"cannot build {ORTHANC_SECURITY_IMAGE}: its base {base} is not built",
            hint="build it first: python -m harness.images --only orthanc",
        )
    try:
        mirror = {"SECURITY_MIRROR": debian_mirror("bookworm-security")}
    except TargetError:  # apt here names no security archive (not Debian bookworm): Debian's own then
        mirror = {"SECURITY_MIRROR": _SECURITY_DEFAULT}
        log(f"{ORTHANC_SECURITY_IMAGE}: no bookworm-security apt source on this machine; using {_SECURITY_DEFAULT}")
    folder = devices_root() / "orthanc" / "security-update"
    return _build_device(client, ORTHANC_SECURITY_IMAGE, "orthanc-security-update", folder, base, force, log, mirror)


# The registry image each Dockerfile names by default ("" for ours: built here first, never pulled).
_DEFAULT_BASE = {
    "simulators": _PYTHON_DEFAULT,
    "orthanc": _DEBIAN_DEFAULT,
    "dcmtk": _DEBIAN_DEFAULT,
    "orthanc-security": "",
}
_BUILDERS: dict[str, Callable[..., str]] = {
    "simulators": build_simulators,
    "orthanc": build_orthanc,
    "dcmtk": build_dcmtk,
    "orthanc-security": build_orthanc_security,  # after orthanc: built on top of it
}


def _client() -> Any:
    from harness.launch.engine import docker_client

    return docker_client(timeout=120.0)


def build_all(force: bool = False, log: Log = print, *, only: Sequence[str] = ()) -> dict[str, str]:
    """Build (or reuse) every image, or the `only` ones (base, simulators, orthanc, dcmtk); name -> image id."""
    with _building(log):
        return _build_all(_client(), force, log, only)


@contextlib.contextmanager
def _building(log: Log) -> Iterator[None]:
    """One build at a time on this machine: another patchgate (a second terminal, a parallel test worker)
    building the same images waits, then finds them up to date instead of building them twice."""
    path = Path(tempfile.gettempdir()) / f"patchgate-images-{os.getuid()}.lock"
    with path.open("a+") as handle:
        deadline = time.monotonic() + BUILD_LOCK_WAIT
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TargetError(
                        f"another patchgate has been building the images for {BUILD_LOCK_WAIT} s (lock {path})",
                        hint=f"wait for it to finish, or stop it (fuser {path})",
                    ) from None
                if not told:
                    log(f"waiting for another patchgate building the images (lock {path})")
                    told = True
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_all(client: Any, force: bool, log: Log, only: Sequence[str]) -> dict[str, str]:
    kinds = [kind for kind in _BUILDERS if not only or kind in only]
    built: dict[str, str] = {}
    # The local base is built once, first, and only when some Dockerfile's default base is missing.
    needs_base = "base" in only or any(
        _DEFAULT_BASE[kind] and not _present(client, _DEFAULT_BASE[kind]) for kind in kinds
    )
    if needs_base and not os.environ.get("PATCHGATE_BASE_IMAGE", "").strip():
        built[BASE_IMAGE] = build_base(client, force=force, log=log)
    names = {
        "simulators": simulators_image(),
        "orthanc": ORTHANC_IMAGE,
        "dcmtk": DCMTK_IMAGE,
        "orthanc-security": ORTHANC_SECURITY_IMAGE,
    }
    for kind in kinds:
        built[names[kind]] = _BUILDERS[kind](client, force=force, log=log)
    # A rebuild leaves the image it replaced untagged; drop ours, never anyone else's.
    pruned = client.images.prune(filters={"dangling": True, "label": LABEL_IMAGE})
    if pruned.get("ImagesDeleted"):
        log(
            f"removed {len(pruned['ImagesDeleted'])} replaced image layers ({pruned.get('SpaceReclaimed', 0) / 1e6:.0f} MB)"
        )
    return built


def main(argv: Sequence[str] | None = None) -> int:
    """Build the images; exit 0, or 2 with the failing step and its log tail."""
    parser = argparse.ArgumentParser(prog="python -m harness.images", description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even when an image is up to date")
    parser.add_argument(
        "--only", action="append", choices=["base", *_BUILDERS], default=[], help="build only this image (repeatable)"
    )
    args = parser.parse_args(argv)
    try:
        built = build_all(force=args.force, log=lambda line: print(line, flush=True), only=args.only)
    except HarnessError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        if exc.detail:
            print(exc.detail, file=sys.stderr)
        return 2
    for name, image_id in built.items():
        print(f"{name}\t{image_id}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
