"""Which audit messages an operation caused: the records that reach the repository while it runs and settle."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulators.audit.record import AuditRecord, read_records

__all__ = ["DRAIN", "DRAIN_LIMIT", "drain", "during", "records"]

SETTLE = 0.4  # seconds without a new message before an operation's messages are taken as complete
QUIET = 0.5  # how long to wait for a device that has sent nothing yet in this run
PATIENCE = 2.0  # how long to wait for a device that audits: messages are sent asynchronously
# Before the first case: the suite before this one (access) makes the device refuse associations, and
# their Security Alerts may still be on their way; they must not land in this suite's first window.
DRAIN = 1.0
DRAIN_LIMIT = 6.0


def records(path: Path) -> list[AuditRecord]:
    """Everything the repository has received so far (none before its first message)."""
    return read_records(path) if path.exists() else []


def drain(path: Path, quiet: float, limit: float) -> None:
    """Wait (at most `limit` s) until nothing has reached the repository for `quiet` s.

    Messages are sent and received asynchronously, so those of earlier work can arrive after the
    next operation started; waiting for a quiet log keeps them out of the next case's window.
    """
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if time.time() - path.stat().st_mtime >= quiet:
                return
        except FileNotFoundError:
            return
        time.sleep(0.05)


def during(path: Path, action: Callable[[], Any]) -> tuple[Any, list[AuditRecord]]:
    """Run `action`, then collect the audit records that arrive until they settle (bounded)."""
    drain(path, SETTLE, PATIENCE)
    before = len(records(path))
    result = action()
    deadline = time.monotonic() + (PATIENCE if before else QUIET)
    count, changed = before, time.monotonic()
    while time.monotonic() < deadline:
        now = len(records(path))
        if now != count:
            count, changed = now, time.monotonic()
        elif count > before and time.monotonic() - changed >= SETTLE:
            break
        time.sleep(0.05)
    return result, records(path)[before:]
