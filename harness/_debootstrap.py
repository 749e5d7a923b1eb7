"""A Debian root made with debootstrap and imported as a Docker image, for machines without a registry."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from harness.errors import TargetError

__all__ = ["debian_mirror", "debootstrap_image"]

_SOURCES_LIST = Path("/etc/apt/sources.list")
_SOURCES_DIR = Path("/etc/apt/sources.list.d")
_CHUNK = 1 << 20


def _deb822_stanzas(text: str) -> Iterator[dict[str, str]]:
    """The stanzas of a deb822 .sources file as field -> value (continuation lines joined)."""
    stanza: dict[str, str] = {}
    last = ""
    for raw in [*text.splitlines(), ""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if stanza:
                yield stanza
            stanza, last = {}, ""
        elif raw[0] in " \t" and last:
            stanza[last] += " " + raw.strip()
        elif ":" in raw:
            key, value = raw.split(":", 1)
            last = key.strip().lower()
            stanza[last] = value.strip()


def _mirrors_in(path: Path, suite: str) -> Iterator[str]:
    """Debian URIs in one apt sources file that serve `suite` itself (not -updates or -security)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    if path.suffix == ".sources":
        for stanza in _deb822_stanzas(text):
            if stanza.get("enabled", "yes").lower() == "no":
                continue
            if "deb" in stanza.get("types", "").split() and suite in stanza.get("suites", "").split():
                yield from stanza.get("uris", "").split()[:1]
        return
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if words[:1] != ["deb"]:
            continue
        words = words[1:]
        if words and words[0].startswith("["):  # options: [arch=amd64 signed-by=...]
            while words and not words[0].endswith("]"):
                words.pop(0)
            words = words[1:]
        if len(words) >= 2 and words[1] == suite:
            yield words[0]


def debian_mirror(suite: str = "bookworm", sources_list: Path = _SOURCES_LIST, sources_dir: Path = _SOURCES_DIR) -> str:
    """The Debian mirror this machine's apt already uses for `suite`.

    $PATCHGATE_DEBIAN_MIRROR wins for the release itself, $PATCHGATE_DEBIAN_SECURITY_MIRROR for
    a `-security` suite (the security archive is a different URL on every mirror network).
    """
    variable = "PATCHGATE_DEBIAN_SECURITY_MIRROR" if suite.endswith("-security") else "PATCHGATE_DEBIAN_MIRROR"
    override = os.environ.get(variable, "").strip()
    if override:
        return override
    files = [sources_list, *sorted(sources_dir.glob("*.list")), *sorted(sources_dir.glob("*.sources"))]
    for path in files:
        for uri in _mirrors_in(path, suite):
            return uri
    raise TargetError(
        f"no apt source for Debian {suite!r} in {sources_list} or {sources_dir}/*.sources|*.list",
        hint=f"set {variable} to a Debian mirror URL"
        + ("" if suite.endswith("-security") else ", or PATCHGATE_BASE_IMAGE to an existing image"),
    )


def _unmount_under(root: Path) -> None:
    """Lazily unmount /proc, /sys ... a failed debootstrap may leave mounted, so removing the root is safe."""
    prefix = str(root.resolve()) + "/"
    with open("/proc/mounts", encoding="utf-8") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True, timeout=30)


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _stream(process: subprocess.Popen[bytes]) -> Iterator[bytes]:
    assert process.stdout is not None
    while chunk := process.stdout.read(_CHUNK):
        yield chunk


def debootstrap_image(
    client: Any,
    name: str,
    *,
    suite: str = "bookworm",
    include: Sequence[str] = (),
    changes: Sequence[str] = (),
    timeout: float = 900.0,
    log: Callable[[str], object] = print,
) -> str:
    """debootstrap a minbase `suite` root, import it as image `name` with Dockerfile `changes`; returns its id."""
    for tool in ("debootstrap", "tar"):
        if shutil.which(tool) is None:
            raise TargetError(
                f"cannot build {name}: {tool!r} is not installed",
                hint="apt-get install debootstrap (scripts/docker-engine.sh does), or set PATCHGATE_BASE_IMAGE",
            )
    if os.geteuid() != 0:
        raise TargetError(
            f"cannot build {name}: debootstrap needs root", hint="run as root or set PATCHGATE_BASE_IMAGE"
        )
    mirror = debian_mirror(suite)
    argv = ["debootstrap", "--variant=minbase"]
    if include:
        argv.append("--include=" + ",".join(include))
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="patchgate-rootfs-") as tmp:
        root = Path(tmp) / "root"
        log(f"{name}: debootstrap {suite} from {mirror}")
        try:
            done = subprocess.run(
                [*argv, suite, str(root), mirror], capture_output=True, text=True, timeout=timeout, check=False
            )
            if done.returncode != 0:
                raise TargetError(
                    f"cannot build {name}: debootstrap {suite} from {mirror} exited with {done.returncode}",
                    hint="check that the mirror answers (apt-get update) and the package names in --include",
                    detail=_tail(done.stdout + done.stderr),
                )
            # An image's apt must not start services, and containers get their resolv.conf from the engine.
            policy = root / "usr/sbin/policy-rc.d"
            policy.write_text("#!/bin/sh\nexit 101\n", encoding="ascii")
            policy.chmod(0o755)
            shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
            (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
            left = max(60.0, timeout - (time.monotonic() - start))
            return _import(client, root, name, changes, left)
        except subprocess.TimeoutExpired:
            raise TargetError(
                f"cannot build {name}: debootstrap took longer than {timeout:g} s",
                hint="a slow or unreachable mirror; set PATCHGATE_DEBIAN_MIRROR or PATCHGATE_BASE_IMAGE",
            ) from None
        finally:
            _unmount_under(root)


def _import(client: Any, root: Path, name: str, changes: Sequence[str], timeout: float) -> str:
    """`tar -C root -c . | docker import`, streamed (no tarball on disk); returns the image id."""
    repository, _, tag = name.partition(":")
    saved = client.api.timeout
    with tempfile.TemporaryFile() as errors:
        tar = subprocess.Popen(
            ["tar", "--numeric-owner", "-C", str(root), "-c", "."], stdout=subprocess.PIPE, stderr=errors
        )
        try:
            client.api.timeout = timeout
            answer = client.api.import_image_from_stream(
                _stream(tar), repository=repository, tag=tag or "latest", changes=list(changes)
            )
        except Exception as exc:  # noqa: BLE001 - the SDK raises requests' and docker's own errors here
            tar.kill()
            raise TargetError(f"cannot import {name}: {exc}", hint="is the engine up? (docker info)") from None
        finally:
            client.api.timeout = saved
            tar.wait(timeout=60)
        if tar.returncode != 0:
            errors.seek(0)
            detail = _tail(errors.read().decode("utf-8", "replace"))
            raise TargetError(f"cannot import {name}: tar exited with {tar.returncode}", detail=detail)
    if "error" in str(answer).lower():
        raise TargetError(f"cannot import {name}: the engine answered {answer!r}")
    return str(client.images.get(name).id)
