"""Many small files written by a helper process, so that creating them overlaps this process's own work."""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from harness._batch_helper import ATOMIC, HEAD
from harness.errors import RunDirError
from harness.rundir import storage_error

__all__ = ["Batch", "Stream"]

_HELPER = Path(__file__).with_name("_batch_helper.py")
# Generous bounds, never none: a minute, plus 50 ms a file (ext4 here creates one in 0.1-0.7 ms).
_BASE_TIMEOUT, _PER_FILE = 60.0, 0.05
_CHUNK = 256 * 1024  # bytes a Batch hands its feeder at once: about 300 Allure results
_PIPE_SIZE = 1024 * 1024  # Linux's default pipe-max-size; a pipe holds 64 KiB unless asked
_JOIN = 10.0  # for a thread or process that was just killed or unblocked to end
_HINT = "check the disk behind --out and run again"


class Batch:
    """Files written into `folder` by a helper process started at once; `wait()` returns when all are on disk.

    On most disks a file's creation is kernel time (ext4 here: 0.03 ms a file on a quiet disk, 0.2-0.5 ms for
    a minute after many files were deleted: up to 5 s for a 10,000-case comparison's Allure results), and a
    thread would wait for the interpreter lock after every system call: a process of its own writes them on
    the other core while this one renders. The files are handed over as they are made, in chunks, by a
    thread that only writes the helper's pipe (one system call a chunk, the lock released while it blocks):
    the helper starts on the first files while the rest render, and rendering never waits for the disk. A
    failure (a full disk) is a RunDirError naming the folder.
    """

    def __init__(self, folder: Path, files: Iterable[tuple[str, bytes]]) -> None:
        self.folder = folder
        self._count = 0
        self._process = _helper(folder, subprocess.PIPE)
        assert self._process.stdin is not None
        self._feeder = _Feeder(self._process.stdin)
        chunk = bytearray()
        try:
            for name, data in files:
                chunk += _record(name, data)
                self._count += 1
                if len(chunk) >= _CHUNK:
                    self._feeder.put(bytes(chunk))
                    chunk.clear()
            self._feeder.put(bytes(chunk))
        except BaseException:  # a file that could not be made: no writer left behind
            _stop(self._process)
            raise
        finally:
            self._feeder.close()

    def wait(self) -> Path:
        """Block until the helper has written every file (or failed, or outlived its bound: both RunDirError)."""
        timeout = _timeout(self._count)
        started = time.monotonic()
        self._feeder.join(timeout)
        if self._feeder.is_alive():  # the helper stopped reading (a stalled disk): killing it ends the feeder's write
            _stop(self._process)
            self._feeder.join(_JOIN)
            raise _late(self._count, timeout, self.folder)
        return _finish(self._process, self._count, self.folder, timeout - (time.monotonic() - started))


class _Feeder(threading.Thread):
    """Writes the chunks it is given to the helper's pipe, in order; after the helper stopped (its pipe broken),
    drops the rest: what stopped it is on its stderr, which `_finish` reads once this thread has ended."""

    def __init__(self, pipe: IO[bytes]) -> None:
        super().__init__(name="patchgate-batch-feeder", daemon=True)
        self._pipe = pipe
        self._chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._broken = False
        with contextlib.suppress(OSError):  # a roomier pipe: the helper has work while this thread waits for the lock
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        self.start()

    def put(self, chunk: bytes) -> None:
        if not self._broken:
            self._chunks.put(chunk)

    def close(self) -> None:
        """No more chunks: the thread ends once the queued ones are written (`_finish` closes the pipe)."""
        self._chunks.put(None)

    def run(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            if not self._broken:
                self._broken = not _write_all(self._pipe, chunk)


class Stream:
    """Files handed over one at a time, as they are made, to a helper process that writes each as `NAME.tmp` and
    renames it: a killed writer leaves only `*.tmp` behind (RunDir.discard_partial), as allure-pytest's did.

    The suites' Allure results (harness.plugin): a case's files leave in one pipe write each instead of three
    file system calls on the suites' main thread. A helper that stopped (a full disk) makes the next `put`,
    or `close`, a RunDirError naming the folder and why.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._count = 0
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, folder) from None
        self._process = _helper(folder, subprocess.PIPE, ATOMIC)
        assert self._process.stdin is not None
        self._pipe: IO[bytes] = self._process.stdin

    def put(self, name: str, data: bytes) -> None:
        """Hand one file over; blocks only while the pipe is full (the helper drains it far faster than cases end)."""
        if not _write_all(self._pipe, _record(name, data)):  # the helper stopped on a failure: say its reason
            _finish(self._process, self._count, self.folder)
            raise RunDirError(f"{self.folder}: the file writer stopped", hint=_HINT)
        self._count += 1

    def close(self) -> Path:
        """End the stream and wait for the helper to have written (and renamed) every file, bounded."""
        return _finish(self._process, self._count, self.folder)


def _write_all(pipe: IO[bytes], data: bytes) -> bool:
    """Write all of `data` to a raw pipe (a write may take part of it: a signal arriving meanwhile); False when the
    reader is gone."""
    view = memoryview(data)
    try:
        while view:
            view = view[pipe.write(view) :]
    except BrokenPipeError:
        return False
    return True


def _record(name: str, data: bytes) -> bytes:
    encoded = name.encode("utf-8")
    return HEAD.pack(len(encoded), len(data)) + encoded + data


def _helper(folder: Path, stdin: IO[bytes] | int, *flags: str) -> subprocess.Popen[bytes]:
    """The helper process, reading records from `stdin`; an interpreter that cannot be started is said as such."""
    argv = [sys.executable, "-I", "-S", str(_HELPER), os.fspath(folder), *flags]
    try:  # unbuffered: a record has left this process when `put` returns, so a case's files do as it ends
        return subprocess.Popen(argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, bufsize=0)
    except OSError as exc:
        raise RunDirError(
            f"{folder}: the file writer process did not start: {sys.executable or 'no Python interpreter'}: "
            f"{exc.strerror or exc}",
            hint="patchgate starts its own Python interpreter (sys.executable) to write report files",
        ) from None


def _finish(process: subprocess.Popen[bytes], count: int, folder: Path, timeout: float | None = None) -> Path:
    """Wait for the helper to end (its input closed), bounded; kill it past the bound. Its failure is a RunDirError."""
    bound = _timeout(count)
    try:
        _, err = process.communicate(timeout=max(0.0, bound if timeout is None else timeout))
    except subprocess.TimeoutExpired:
        raise _late(count, bound, folder) from None
    finally:
        if process.returncode is None:  # timed out or interrupted: no writer left behind
            _stop(process)
    if process.returncode != 0:
        raise _failure(err.decode("utf-8", "replace"), folder, process.returncode)
    return folder


def _timeout(count: int) -> float:
    return _BASE_TIMEOUT + _PER_FILE * count


def _late(count: int, timeout: float, folder: Path) -> RunDirError:
    return RunDirError(
        f"{folder}: {count} files not written within {timeout:.0f} s",
        hint="check the disk behind --out (a stalled network mount?)",
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Kill the helper and reap it, bounded."""
    process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=_JOIN)


def _failure(said: str, folder: Path, code: int) -> RunDirError:
    number, _, rest = said.strip().partition("\t")
    name, _, reason = rest.partition("\t")
    if number.isdigit() and int(number):
        return storage_error(OSError(int(number), reason, name), folder)
    return RunDirError(
        f"{folder}: the files were not written ({(reason or said).strip() or f'exit {code}'})",
        hint=_HINT,
    )
