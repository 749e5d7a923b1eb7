"""Files for a Docker engine that cannot see this machine's disk: shipped in and brought back through its API.

With a remote engine (DOCKER_HOST on another machine) a bind mount would name a path on *that*
machine, so nothing of the run is bind-mounted. Instead:

- the run directory lives in a volume made for the run, mounted at the run's own path in the pod
  and in every container of ours (the same-path convention the local engine's bind mounts keep, so
  the simulators and the suites run unchanged); the harness copies what it wrote into it (an
  archive through the pod) before each container starts, and copies the containers' records back
  when the suites end and when the run closes: what the harness changed itself since it shipped a
  file wins, what the containers wrote comes back;
- what a container reads from outside the run directory (the suites' own folders, a device's
  configuration files and its view of the PKI) is copied into it, created but not yet started;
- a device gets a volume of its own for its storage (seeded with its working directory), never
  the run's: it must not read the CA's or the clients' keys;
- the heartbeat is copied in once and touched there every beat, so a harness killed with SIGKILL
  still stops everything (touched, not copied again: an archive copy replaces a file, and a
  simulator looking between the old file's removal and the new one read "the harness is gone");
- the channels the suites and the harness talk through while the suites run (robustness windows,
  device actions) are relayed both ways every RELAY_EVERY s, each file whole (the harness's under a
  hidden name, renamed in the pod once copied; the suites' are renamed into place by their writers);
  a log both append is merged by line;
- the suites' progress (cases collected and finished) is copied back every few seconds, for the
  progress line and for naming how far a run got.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import IO, Any

from harness.errors import TargetError
from harness.launch.labels import labels

__all__ = ["ENGINE_ENV", "RunVolume", "copy_into", "engine_address", "engine_is_remote", "tar_of"]

ENGINE_ENV = "PATCHGATE_ENGINE"  # "local" or "remote": overrides what DOCKER_HOST suggests
_LOCAL_SOCKETS = ("unix:///var/run/docker.sock", "unix:///run/docker.sock")
_Ledger = dict[str, tuple[int, int]]  # relative path -> (mtime_ns, size) as shipped
_FOLDER = (-1, -1)
RELAY_EVERY = 0.1  # s between two copies of the live channels: a round trip costs the suites about twice this
WATCH_EVERY = 2  # heartbeats between two copies of the suites' progress
STAGED = ".relaying"  # the suffix of a live file's hidden name in the pod until it is renamed whole
_RENAME = 'while [ "$#" -ge 2 ]; do mv -f "$1" "$2" || exit 1; shift 2; done'  # pairs: staged, final


def engine_address(environ: Mapping[str, str] = os.environ) -> str:
    """Where the client connects, as the Docker SDK decides: DOCKER_HOST, else the CLI's current context."""
    if environ.get("DOCKER_HOST"):
        return environ["DOCKER_HOST"]
    try:
        from docker.context import ContextAPI

        return str(ContextAPI.kwargs_from_context(environment=dict(environ)).get("base_url") or _LOCAL_SOCKETS[0])
    except Exception:  # noqa: BLE001 - no SDK, or a context file it cannot read: the SDK's default then
        return _LOCAL_SOCKETS[0]


def engine_is_remote(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the engine may not see this machine's files: it is reached anywhere but at the local socket.

    An engine that merely might be remote (a rootless engine's own socket) is treated as remote:
    shipping works on any engine, a bind mount only on one that shares this disk. PATCHGATE_ENGINE
    ("local" or "remote") overrides the guess.
    """
    said = environ.get(ENGINE_ENV, "").strip().lower()
    if said in ("local", "remote"):
        return said == "remote"
    if said:
        raise TargetError(f"{ENGINE_ENV}={said!r} is neither 'local' nor 'remote'", hint=f"unset {ENGINE_ENV}")
    return engine_address(environ) not in _LOCAL_SOCKETS


def tar_of(entries: Iterable[tuple[str, Path | None, bytes | None]], owner: tuple[int, int]) -> bytes:
    """An archive of (name inside, local path or None, data or None); a None path with None data is a directory.

    Every member belongs to `owner` (uid, gid), as the bind-mounted files of a local engine belong to
    the caller; a device image's user gets its own files the same way.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, path, data in entries:
            info = tarfile.TarInfo(name)
            info.uid, info.gid = owner
            stat = path.stat() if path is not None else None
            info.mtime = int(stat.st_mtime if stat else time.time())
            if path.is_dir() if path is not None else data is None:
                info.type, info.mode = tarfile.DIRTYPE, (stat.st_mode & 0o7777) if stat else 0o755
                tar.addfile(info)
                continue
            content = data if data is not None else path.read_bytes() if path is not None else b""
            info.size, info.mode = len(content), (stat.st_mode & 0o7777) if stat else 0o644
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _tree(root: Path, inside: str) -> list[tuple[str, Path | None, bytes | None]]:
    """`root` (a file or a folder, recursively) as archive entries named under `inside` (no leading slash)."""
    if not root.is_dir():
        return [(inside, root, None)]
    entries: list[tuple[str, Path | None, bytes | None]] = [(inside, root, None)]
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            continue  # links and sockets stay home: an archive copy holds files and folders only
        entries.append((f"{inside}/{path.relative_to(root).as_posix()}", path, None))
    return entries


def copy_into(container: Any, places: Mapping[Path, str], owner: tuple[int, int]) -> None:
    """Copy local files or folders into a created container: local path -> absolute path inside."""
    entries: list[tuple[str, Path | None, bytes | None]] = []
    for local, inside in sorted(places.items()):
        # Its missing folders the engine makes (root's, 0755): an entry of ours would hand /etc to the device's user.
        entries += _tree(local, "/".join(PurePosixPath(inside).parts[1:]))
    if entries and not container.put_archive("/", tar_of(entries, owner)):
        raise TargetError(f"the engine refused the files for {container.name}", hint="check the engine's disk space")


class RunVolume:
    """The run directory on the engine: a volume at the run's path, kept in step with this disk through the pod."""

    def __init__(
        self,
        client: Any,
        run_id: str,
        root: Path,
        heartbeat: Path,
        live: Sequence[Path] = (),
        merged: Sequence[Path] = (),
        watched: Sequence[Path] = (),
    ) -> None:
        self.client = client
        self.root = root
        self.heartbeat = heartbeat
        self.live = tuple(live)  # channels the suites and the harness both write while the suites run: relayed
        self.merged = frozenset(merged)  # .jsonl files both sides append to: their lines are merged, not replaced
        self.watched = tuple(watched)  # files the suites write that the harness shows while they run (progress)
        self.owner = (os.getuid(), os.getgid())
        self.name = f"patchgate-{run_id}-run"
        self.run_id = run_id
        self.volume: Any = client.volumes.create(self.name, labels=labels(run_id, "run-volume"))
        self.storages: dict[str, Any] = {}  # role -> a device's own storage volume, kept across its revivals
        self.pod: Any = None
        self._shipped: _Ledger = {}
        self._heartbeat_shipped = False
        self._pulled: dict[str, tuple[int, int]] = {}  # relative path -> (mtime, size) of the engine's copy last taken
        self._lock = threading.Lock()  # shipping, beating and bringing back go through one pod, one at a time
        self._stop = threading.Event()
        self._stop_relay = threading.Event()
        self._pump: threading.Thread | None = None
        self._relay: threading.Thread | None = None

    def mount(self) -> dict[str, dict[str, str]]:
        """The `volumes=` entry every container of ours gets: the run's volume at the run's path."""
        return {self.name: {"bind": str(self.root), "mode": "rw"}}

    def storage(self, role: str) -> str:
        """The name of `role`'s storage volume (made on first use; the same one when a device is revived)."""
        if role not in self.storages:
            name = f"patchgate-{self.run_id}-{role}-storage"
            self.storages[role] = self.client.volumes.create(name, labels=labels(self.run_id, f"{role}-storage"))
        return str(self.storages[role].name)

    def attach(self, pod: Any) -> None:
        """Ship the run so far through `pod` and keep its heartbeat beating there."""
        self.pod = pod
        # The volume's root is the engine's (root, 0755) until given to us, as the run directory is ours here.
        if not pod.put_archive(str(self.root.parent), tar_of([(self.root.name, self.root, None)], self.owner)):
            raise TargetError(f"the engine refused the run's folder ({self.name})", hint="check its disk space")
        self.ship()
        self._pump = threading.Thread(target=self._beat, name=f"ship-heartbeat-{self.name}", daemon=True)
        self._pump.start()
        if self.live:
            self._relay = threading.Thread(target=self._relay_loop, name=f"ship-relay-{self.name}", daemon=True)
            self._relay.start()

    def ship(self, within: Sequence[Path] = ()) -> None:
        """Copy what the harness wrote into the run directory (or only `within` these folders) since the last ship."""
        entries: list[tuple[str, Path | None, bytes | None]] = []
        changed: _Ledger = {}
        found = (
            [p for folder in within if folder.is_dir() for p in folder.rglob("*")] if within else self.root.rglob("*")
        )
        renames: list[str] = []  # staged name, final name, ...: the live files, renamed in the pod once copied
        for path in sorted(found):
            relative = path.relative_to(self.root).as_posix()
            if path == self.heartbeat or path.is_symlink():
                continue
            if path.is_dir():
                if relative not in self._shipped:  # a new folder, empty maybe: a container may write into it
                    entries.append((relative, path, None))
                    changed[relative] = _FOLDER
                continue
            if not path.is_file():
                continue
            stat = path.stat()
            seen = (stat.st_mtime_ns, stat.st_size)
            if self._shipped.get(relative) != seen:
                # The engine writes an archive's files in place: a suites process polling a live channel
                # would read half an answer. So a live file lands under a hidden name and is renamed there.
                name = (PurePosixPath(relative).parent / f".{path.name}{STAGED}").as_posix() if within else relative
                entries.append((name, path, None))
                renames += [str(self.root / name), str(path)] if within else []
                changed[relative] = seen
        beat = not within and not self._heartbeat_shipped and self.heartbeat.exists()  # once; _beat touches it there
        if beat:
            entries.append((self.heartbeat.name, None, b""))
        if not entries:
            return
        with self._lock:
            if not self.pod.put_archive(str(self.root), tar_of(entries, self.owner)):
                raise TargetError(f"the engine refused the run's files ({self.name})", hint="check its disk space")
            if renames and self.pod.exec_run(["sh", "-c", _RENAME, "rename", *renames])[0] != 0:
                raise TargetError(f"cannot rename the relayed files in {self.name}", hint="check the engine's disk")
        self._shipped.update(changed)
        self._heartbeat_shipped = self._heartbeat_shipped or beat  # not before it exists: `touch -c` makes none

    def _beat(self) -> None:
        from simulators._lifeline import BEAT

        beats = 0
        while not self._stop.wait(BEAT):
            if not self.heartbeat.exists():
                continue
            with self._lock, contextlib.suppress(Exception):  # a missed beat is one of many; the limit is 30 s
                self.pod.exec_run(["touch", "-c", str(self.heartbeat)])
            beats += 1
            if beats % WATCH_EVERY == 0 and not self._stop_relay.is_set():
                for path in self.watched:
                    with contextlib.suppress(Exception):  # progress only: the records come back at the end anyway
                        self._pull(path, folder=False)

    def _relay_loop(self) -> None:
        """While the suites run: the suites' requests here, the harness's answers there, every RELAY_EVERY s."""
        while not self._stop_relay.wait(RELAY_EVERY):
            try:
                for folder in self.live:
                    self._pull(folder)
                self.ship(within=self.live)
            except Exception:  # noqa: BLE001 - a failed copy is retried; the channels' own deadlines bound the wait
                continue

    def _pull(self, path: Path, *, folder: bool = True, missing_ok: bool = True) -> int:
        """Copy what the containers wrote in `path` (a folder, or one file) here; 0 while it does not exist there."""
        import docker.errors

        with tempfile.TemporaryFile() as spool:
            with self._lock:
                try:
                    stream, _ = self.pod.get_archive(f"{path}/." if folder else str(path))
                    for chunk in stream:
                        spool.write(chunk)
                except docker.errors.NotFound:
                    if not missing_ok:
                        raise
                    return 0
            spool.seek(0)
            prefix = (path if folder else path.parent).relative_to(self.root).as_posix()
            return self._extract(spool, "" if prefix == "." else prefix)

    def stop_relaying(self) -> None:
        self._stop_relay.set()
        if self._relay is not None:
            self._relay.join(timeout=10)

    def bring_back(self) -> int:
        """Copy what the containers wrote back into the run directory; the number of files written here.

        A file the harness changed since it shipped it (or wrote and never shipped) keeps the harness's
        copy. Only plain files and folders inside the run directory are taken from the archive.
        """
        if self.pod is None:
            return 0
        self.stop_relaying()  # the suites ended: nothing more to answer, and one copy at a time
        import docker.errors

        try:
            return self._pull(self.root, missing_ok=False)
        except docker.errors.APIError as exc:  # the pod gone with the records: the harness's fault, never the device's
            raise TargetError(
                f"cannot copy the run's records back from the engine: {exc.explanation or exc}",
                hint=f"the run's pod {self.pod.name} is gone: check the engine (docker ps -a, its log)",
            ) from None

    def _extract(self, spool: Any, prefix: str = "") -> int:
        """Write the archive's files here (names relative to `prefix` in the run directory); how many were written."""
        written = 0
        with tarfile.open(fileobj=spool, mode="r|") as tar:
            for member in tar:
                inside = _inside(member.name)
                if inside is None or not (member.isfile() or member.isdir()) or inside.endswith(STAGED):
                    continue  # outside the run, not a plain file, or our own copy not yet renamed
                relative = f"{prefix}/{inside}" if prefix else inside
                target = self.root / relative
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                if target == self.heartbeat or self._pulled.get(relative) == (int(member.mtime), member.size):
                    continue  # ours, or the copy taken last time
                theirs = self._theirs(relative, target)
                merge = not theirs and target in self.merged and target.exists()
                if not theirs and not merge:
                    continue
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as out:
                    if merge:  # both sides appended: ours, then the lines only the engine's copy has
                        _merge_lines(target, handle, out)
                    else:
                        shutil.copyfileobj(handle, out)
                os.chmod(out.name, member.mode & 0o777)
                os.replace(out.name, target)
                self._shipped[relative] = _seen(target)
                self._pulled[relative] = (int(member.mtime), member.size)
                written += 1
        return written

    def _theirs(self, relative: str, target: Path) -> bool:
        """Whether the engine's copy may replace ours: ours is missing, or unchanged since we shipped it."""
        if not target.exists():
            return True
        return self._shipped.get(relative) == _seen(target)

    def close(self) -> None:
        """Stop beating and remove the volume (the pod that mounts it is removed first, by the caller)."""
        self.stop_relaying()
        self._stop.set()
        if self._pump is not None:
            self._pump.join(timeout=5)
        volumes = [self.volume, *self.storages.values()]
        self.volume, self.storages = None, {}
        for volume in volumes:
            if volume is not None:
                with contextlib.suppress(Exception):  # in use for a moment longer: the next run's sweep removes it
                    volume.remove(force=True)


def _merge_lines(ours: Path, theirs: IO[bytes], out: IO[bytes]) -> None:
    """Our lines, then theirs that we lack, in their order: both sides append whole lines, neither rewrites one."""
    mine = ours.read_bytes()
    have = set(mine.splitlines())
    out.write(mine if not mine or mine.endswith(b"\n") else mine + b"\n")
    out.writelines(line for line in theirs.read().splitlines(keepends=True) if line.rstrip(b"\n") not in have)


def _seen(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def _inside(name: str) -> str | None:
    """A member's path relative to the run directory, or None for one that would leave it (absolute, `..`)."""
    parts = PurePosixPath(name).parts
    if parts and parts[0] == ".":
        parts = parts[1:]
    if not parts or name.startswith("/") or any(p == ".." for p in parts):
        return None
    return "/".join(parts)
