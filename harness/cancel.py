"""Cancelling runs: a generation a signal handler bumps and every run checks; it imports nothing, so a handler can use it."""

from __future__ import annotations

__all__ = ["cancel_runs", "cancel_token"]

# Bumped by a signal handler: a run started before the bump turns it into KeyboardInterrupt at its next
# check, so its `finally` cleans up. A generation, not a flag: a library caller's later runs are not cancelled.
# No lock: the handler runs on the main thread between bytecodes, and one the main thread held would deadlock.
# Its own module: a handler that imported the runner could land mid-import of it (ImportError in the handler).
_cancel_generation = 0


def cancel_runs() -> None:
    """Make every run started so far in this process stop at its next check (SIGTERM, Ctrl-C), cleaning up."""
    global _cancel_generation
    _cancel_generation += 1


def cancel_token() -> int:
    """The current generation: runs given it are cancelled by any later `cancel_runs()`."""
    return _cancel_generation
