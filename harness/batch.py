"""Many small files written by a helper process, so that creating them overlaps this process's own work."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
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
_HINT = "check the disk behind --out and run again"


class Batch:
    """Files written into `folder` by a helper process started at once; `wait()` returns when all are on disk.

    On most disks a file's creation is kernel time (ext4 here: 0.3 ms a file, 3.5 s for a 10,000-case
    comparison's Allure results), and a thread would wait for the interpreter lock after every system
    call: a process of its own writes them on the other core while this one renders the other reports.
    The batch is spooled to an unlinked temporary file in `folder` first (the helper's stdin), so handing
    it over never waits for the helper. A failure (a full disk) is a RunDirError naming the folder.
    """

    def __init__(self, folder: Path, files: Iterable[tuple[str, bytes]]) -> None:
        self.folder = folder
        self._count = 0
        try:  # spooled on the disk the files go to (unlinked at once), so a full one is said for that folder
            with tempfile.TemporaryFile(dir=folder) as spool:
                for name, data in files:
                    spool.write(_record(name, data))
                    self._count += 1
                spool.flush()
                spool.seek(0)
                self._process = _helper(folder, spool)
        except OSError as exc:
            raise storage_error(exc, folder) from None

    def wait(self) -> Path:
        """Block until the helper has written every file (or failed, or outlived its bound: both RunDirError)."""
        return _finish(self._process, self._count, self.folder)


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
        view = memoryview(_record(name, data))
        try:
            while view:  # a raw pipe write may take part of a record (a signal arriving meanwhile)
                view = view[self._pipe.write(view) :]
        except BrokenPipeError:  # the helper stopped on a failure: say its reason
            _finish(self._process, self._count, self.folder)
            raise RunDirError(f"{self.folder}: the file writer stopped", hint=_HINT) from None
        self._count += 1

    def close(self) -> Path:
        """End the stream and wait for the helper to have written (and renamed) every file, bounded."""
        return _finish(self._process, self._count, self.folder)


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


def _finish(process: subprocess.Popen[bytes], count: int, folder: Path) -> Path:
    """Wait for the helper to end (its input closed), bounded; kill it past the bound. Its failure is a RunDirError."""
    timeout = _BASE_TIMEOUT + _PER_FILE * count
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RunDirError(
            f"{folder}: {count} files not written within {timeout:.0f} s",
            hint="check the disk behind --out (a stalled network mount?)",
        ) from None
    finally:
        if process.returncode is None:  # timed out or interrupted: no writer left behind
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
    if process.returncode != 0:
        raise _failure(err.decode("utf-8", "replace"), folder, process.returncode)
    return folder


def _failure(said: str, folder: Path, code: int) -> RunDirError:
    number, _, rest = said.strip().partition("\t")
    name, _, reason = rest.partition("\t")
    if number.isdigit() and int(number):
        return storage_error(OSError(int(number), reason, name), folder)
    return RunDirError(
        f"{folder}: the files were not written ({(reason or said).strip() or f'exit {code}'})",
        hint=_HINT,
    )
