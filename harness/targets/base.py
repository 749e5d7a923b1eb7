"""The Target protocol every backend implements: start a device variant, tell where it listens, keep its logs, stop it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from harness.errors import ProfileError, TargetError
from harness.model import Endpoint

__all__ = ["Target", "log_tail", "render", "start_failure"]


class Target(Protocol):
    """One started (or startable) device variant."""

    log_path: Path  # where its log is kept in the run directory
    exit_code: int | None  # set once it exited

    def start(self) -> Endpoint:
        """Start the device and return once it answers C-ECHO; raise TargetError otherwise."""

    def alive(self) -> bool:
        """Whether the device is still running (False once it crashed or was stopped)."""

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the device's log, for error messages."""

    def stop(self) -> None:
        """Stop the device; safe to call twice."""


_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")


def render(template: str, values: Mapping[str, str], where: str) -> str:
    """Fill `{name}` placeholders; an unknown name is a ProfileError naming `where`."""

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise ProfileError(
                f"{where}: unknown placeholder {{{key}}} in {template!r}",
                hint=f"known placeholders: {', '.join('{' + k + '}' for k in sorted(values))}",
            )
        return values[key]

    return _PLACEHOLDER.sub(substitute, template)


def log_tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def start_failure(message: str, tail: str, hint: str) -> TargetError:
    """A start that failed, with the last log lines in the message (one line) and the tail as detail."""
    last = " | ".join(tail.splitlines()[-3:])
    return TargetError(f"{message}; log tail: {last}", hint=hint, detail=tail)
