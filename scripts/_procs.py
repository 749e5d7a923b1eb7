"""Simulator processes a benchmark serves from: started with their logs, always stopped."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

__all__ = ["serving"]


@contextlib.contextmanager
def serving(commands: Mapping[str, Sequence[str]], logs: Path, cwd: Path) -> Iterator[None]:
    """Start each command, its output in `logs/NAME.log`; on exit SIGTERM them all, SIGKILL after 10 s."""
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name, argv in commands.items():
            with (logs / f"{name}.log").open("wb") as log:  # the child keeps its own descriptor
                processes.append(subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, cwd=cwd))
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
