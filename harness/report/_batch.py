"""Many small report files written by a helper process, so that creating them overlaps the other reports' work."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from harness.errors import RunDirError
from harness.report._batch_helper import HEAD
from harness.rundir import storage_error

__all__ = ["Batch"]

_HELPER = Path(__file__).with_name("_batch_helper.py")
# Generous bounds, never none: a minute, plus 50 ms a file (ext4 here creates one in 0.1-0.7 ms).
_BASE_TIMEOUT, _PER_FILE = 60.0, 0.05


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
                    encoded = name.encode("utf-8")
                    spool.write(HEAD.pack(len(encoded), len(data)) + encoded)
                    spool.write(data)
                    self._count += 1
                spool.flush()
                spool.seek(0)
                self._process = subprocess.Popen(
                    [sys.executable, "-I", "-S", str(_HELPER), os.fspath(folder)],
                    stdin=spool, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                )  # fmt: skip
        except OSError as exc:
            raise storage_error(exc, folder) from None

    def wait(self) -> Path:
        """Block until the helper has written every file (or failed, or outlived its bound: both RunDirError)."""
        timeout = _BASE_TIMEOUT + _PER_FILE * self._count
        try:
            _, err = self._process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RunDirError(
                f"{self.folder}: {self._count} files not written within {timeout:.0f} s",
                hint="check the disk behind --out (a stalled network mount?)",
            ) from None
        finally:
            if self._process.returncode is None:  # timed out or interrupted: no writer left behind
                self._process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._process.wait(timeout=10)
        if self._process.returncode != 0:
            raise _failure(err.decode("utf-8", "replace"), self.folder, self._process.returncode)
        return self.folder


def _failure(said: str, folder: Path, code: int) -> RunDirError:
    number, _, rest = said.strip().partition("\t")
    name, _, reason = rest.partition("\t")
    if number.isdigit() and int(number):
        return storage_error(OSError(int(number), reason, name), folder)
    return RunDirError(
        f"{folder}: the report files were not written ({(reason or said).strip() or f'exit {code}'})",
        hint="check the disk behind --out and rerun `patchgate compare`",
    )
