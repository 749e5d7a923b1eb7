"""Files a device container that runs as a non-root user must read and write, handed over to that user.

The run's PKI keys are created 0600 by the harness and the device's storage directory is the
harness's; a vendor image with `USER orthanc` could read neither. So for such an image the
read-only mounts are copied (they are small: templates and the run's test PKI) and the copies
and the storage directory are given to the image's uid (chown when the harness is root; made
readable and writable by everyone otherwise, which only a throwaway per-run test PKI allows).
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import TargetError
from harness.launch.labels import owner_labels

__all__ = ["Owner", "hand_over", "image_owner", "parse_passwd"]

Owner = tuple[int, int]  # uid, gid


def parse_passwd(text: str) -> dict[str, Owner]:
    """name -> (uid, primary gid) from an /etc/passwd text; malformed lines are passed over."""
    users: dict[str, Owner] = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[2].isdigit() and fields[3].isdigit():
            users[fields[0]] = (int(fields[2]), int(fields[3]))
    return users


def _groups(text: str) -> dict[str, int]:
    return {f[0]: int(f[2]) for f in (line.split(":") for line in text.splitlines()) if len(f) >= 3 and f[2].isdigit()}


def _read_from_image(client: Any, image: str, paths: Sequence[str]) -> list[str]:
    """Text files of the image ("" for one it lacks), from one created, never started container: no shell needed."""
    import docker.errors

    # Labelled as ours, so a sweep finds it should this process be killed before it is removed.
    container = client.containers.create(image, command=["/patchgate-never-runs"], entrypoint=[], labels=owner_labels())
    try:
        texts = []
        for path in paths:
            try:
                stream, _ = container.get_archive(path)
                with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                    member = tar.next()
                    handle = tar.extractfile(member) if member is not None else None
                    texts.append(handle.read().decode("utf-8", errors="replace") if handle is not None else "")
            except (docker.errors.NotFound, KeyError):  # absent, or a symlink out of the archive
                texts.append("")
        return texts
    finally:
        container.remove(force=True)


def image_owner(client: Any, image: str, user: str | None = None) -> Owner | None:
    """The uid and gid the image's processes run as (`user` overrides the image's USER); None for root."""
    spec = user if user is not None else str(client.images.get(image).attrs.get("Config", {}).get("User") or "")
    name, _, group = spec.partition(":")
    if name in ("", "0", "root"):
        return None  # root reads and writes everything it is given
    if name.isdigit() and group.isdigit():
        return int(name), int(group)  # nothing to look up (the simulators run so, as the caller)
    passwd_text, group_text = _read_from_image(client, image, ["/etc/passwd", "/etc/group"])
    passwd = parse_passwd(passwd_text)
    if name.isdigit():  # the engine's rule: the primary group from /etc/passwd, or root's group
        uid = int(name)
        gid = next((g for u, g in passwd.values() if u == uid), 0)
    elif name in passwd:
        uid, gid = passwd[name]
    else:
        raise TargetError(
            f"image {image!r} runs as user {name!r}, which its /etc/passwd does not name",
            hint="give the image's USER as a number (uid:gid)",
        )
    if group.isdigit():
        gid = int(group)
    elif group:
        groups = _groups(group_text)
        if group not in groups:
            raise TargetError(f"image {image!r} runs as group {group!r}, which its /etc/group does not name")
        gid = groups[group]
    return uid, gid


def _give(path: Path, owner: Owner, writable: bool) -> None:
    """`path` (a tree) to `owner`: chown as root; otherwise open it to everyone (read, or read-write)."""
    for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
        if os.geteuid() == 0:
            os.chown(item, *owner, follow_symlinks=False)
        elif not item.is_symlink():
            extra = stat.S_IROTH | stat.S_IRGRP | (stat.S_IWOTH | stat.S_IWGRP if writable else 0)
            if item.is_dir():
                extra |= stat.S_IXOTH | stat.S_IXGRP
            item.chmod(item.stat().st_mode | extra)


def hand_over(mounts: Mapping[str, str], workdir: Path | None, copies: Path, owner: Owner) -> dict[str, str]:
    """Copies of the read-only `mounts` under `copies` and the `workdir`, given to `owner`; the new mounts."""
    copies.mkdir(parents=True, exist_ok=True)
    handed: dict[str, str] = {}
    for index, (host, inside) in enumerate(sorted(mounts.items())):
        source, target = Path(host), copies / f"{index}-{Path(host).name}"
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
        _give(target, owner, writable=False)
        handed[str(target)] = inside
    if workdir is not None:
        _give(workdir, owner, writable=True)
    return handed
