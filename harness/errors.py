"""The harness's exception tree: every expected failure is a HarnessError with context and a hint.

HarnessError
├── ProfileError          a profile file is missing, malformed, or has an unknown key or wrong type
├── RunDirError           a run or output directory is missing, incomplete, unwritable, or has a corrupted file
├── TargetError           a device (or simulator) did not start, never answered C-ECHO, or crashed
├── SuiteError            the suites could not be collected or run at all
├── ActionError           a device action could not be run (harness.actions: no terminal for a prompt, a bad request)
├── EvidenceError         a signing key is unusable, or the evidence pack could not be written (harness.evidence)
└── PolicyError           an expected-change entry is malformed

The CLI prints a HarnessError as `patchgate: error: MESSAGE (hint: HINT)` and exits 2; any other
exception as `patchgate: internal error: ...`, also exit 2 (exit 1 is the REGRESSED verdict).
Text shown on a terminal goes through `printable` (each line) first: it may come from a device or a run directory.
"""

from __future__ import annotations

import re

__all__ = [
    "EvidenceError",
    "HarnessError",
    "PolicyError",
    "ProfileError",
    "RunDirError",
    "SuiteError",
    "TargetError",
    "printable",
]

_NEWLINES = re.compile(r"\r\n|\n|\r|\v|\f|\x1c|\x1d|\x1e|\x85|\u2028|\u2029")
# C0 and C1 controls, DEL, the bidirectional overrides that make a terminal show text other than it is,
# and lone surrogates (valid in JSON, but printing one to a UTF-8 stream raises).
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` as one terminal line: line breaks become " | ", other control characters escapes like \\x1b.

    Device messages, case ids and run-directory fields reach the terminal; an escape sequence in
    one must not recolour, clear or rewrite what the reader sees. Plain spaces stay as they are.
    """
    return _CONTROLS.sub(_escape, _NEWLINES.sub(" | ", text.strip("\r\n")))


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class HarnessError(Exception):
    """Root of every error the harness expects; the CLI prints it on one line and exits 2."""

    def __init__(self, message: str, *, hint: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        # Multi-line context (e.g. a device's log tail); printed after the one-line message.
        self.detail = detail

    def one_line(self) -> str:
        """The message and hint as a single line, for terminals and CI logs (a profile's problem list keeps its lines)."""
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class ProfileError(HarnessError):
    """A profile file is missing, not TOML, or has an unknown key or a value of the wrong type."""


class RunDirError(HarnessError):
    """A run directory is missing, incomplete, or holds a corrupted file."""


class EvidenceError(HarnessError):
    """A signing key is unreadable or not Ed25519, or the evidence pack could not be written."""


class TargetError(HarnessError):
    """A device or simulator did not start, never answered C-ECHO in time, or crashed."""


class SuiteError(HarnessError):
    """The functional suites could not be collected or run."""


class PolicyError(HarnessError):
    """An expected-change policy entry is malformed."""
