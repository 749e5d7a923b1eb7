"""The labels on every container and network patchgate starts: the run, its role, and the owning process."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "LABEL_OWNER",
    "LABEL_OWNER_SPACE",
    "LABEL_OWNER_START",
    "LABEL_ROLE",
    "LABEL_RUN",
    "labels",
    "owner_labels",
    "process_space",
    "process_start",
]

LABEL_RUN = "org.patchgate.run"
LABEL_OWNER = "org.patchgate.owner-pid"
# Where that pid means something (boot id and pid namespace) and when it started: an engine shared by
# CI jobs in containers, or a pid the kernel handed out again, must not make a live run look dead.
LABEL_OWNER_SPACE = "org.patchgate.owner-space"
LABEL_OWNER_START = "org.patchgate.owner-start"
LABEL_ROLE = "org.patchgate.role"


def process_space() -> str:
    """This machine boot and pid namespace: pids are comparable only within one of them."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{boot}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return ""


def process_start(pid: int) -> str:
    """When process `pid` started (clock ticks after boot, /proc/PID/stat field 22); "" when it does not exist."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def owner_labels() -> dict[str, str]:
    """This process as the owner of what it starts, for the sweep."""
    pid = os.getpid()
    return {LABEL_OWNER: str(pid), LABEL_OWNER_SPACE: process_space(), LABEL_OWNER_START: process_start(pid)}


def labels(run_id: str, role: str) -> dict[str, str]:
    """What every container and network of a run carries: the run, its owner process (for the sweep), its role."""
    return {LABEL_RUN: run_id, **owner_labels(), LABEL_ROLE: role}
