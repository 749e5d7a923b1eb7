"""The harness's exception tree: every expected failure is a HarnessError with context and a hint.

HarnessError
├── ProfileError          a profile file is missing, malformed, or has an unknown key or wrong type
├── RunDirError           a run directory is missing, incomplete, or has a corrupted file
├── TargetError           a device (or simulator) did not start, never answered C-ECHO, or crashed
├── SuiteError            the suites could not be collected or run at all
└── PolicyError           an expected-change entry is malformed
"""

from __future__ import annotations

__all__ = [
    "HarnessError",
    "PolicyError",
    "ProfileError",
    "RunDirError",
    "SuiteError",
    "TargetError",
]


class HarnessError(Exception):
    """Root of every error the harness expects; the CLI prints it on one line and exits 2."""

    def __init__(self, message: str, *, hint: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        # Multi-line context (e.g. a device's log tail); printed after the one-line message.
        self.detail = detail

    def one_line(self) -> str:
        """The message and hint as a single line, for terminals and CI logs."""
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class ProfileError(HarnessError):
    """A profile file is missing, not TOML, or has an unknown key or a value of the wrong type."""


class RunDirError(HarnessError):
    """A run directory is missing, incomplete, or holds a corrupted file."""


class TargetError(HarnessError):
    """A device or simulator did not start, never answered C-ECHO in time, or crashed."""


class SuiteError(HarnessError):
    """The functional suites could not be collected or run."""


class PolicyError(HarnessError):
    """An expected-change policy entry is malformed."""
