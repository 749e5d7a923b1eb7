"""What one device action did: the record a suite gets back and the run's actions.jsonl keeps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.model import JSON

__all__ = ["DONE", "ERROR", "FAILED", "OUTCOMES", "TIMEOUT", "ActionError", "ActionResult"]

DONE, FAILED, TIMEOUT, ERROR = "done", "failed", "timeout", "error"
# done: the device did it; failed: it refused or answered otherwise; timeout: past the deadline;
# error: the harness could not do it (a program not found, no answer from the harness).
OUTCOMES = (DONE, FAILED, TIMEOUT, ERROR)


class ActionError(HarnessError):
    """A device action cannot be done as declared: no terminal for a prompt, a kind this backend cannot run."""


@dataclass(frozen=True)
class ActionResult:
    """One action's execution: how it ended, and what the device answered (exit code, HTTP status, DIMSE status)."""

    name: str
    kind: str
    duration: float
    outcome: str
    detail: Mapping[str, JSON]
    settle: float = 0.0  # seconds to wait for the action's effects at the simulators (the profile's `settle`)

    def summary(self) -> dict[str, JSON]:
        """Outcome plus the code that says it (exit code, HTTP or DIMSE status): comparable between runs."""
        out: dict[str, JSON] = {"outcome": self.outcome}
        for name in ("exit_code", "status"):
            if name in self.detail:
                out[name] = self.detail[name]
        return out

    def answer(self) -> JSON:
        """What the device (or operator) answered: an HTTP body, a command's output, the operator's remark; else None."""
        for name in ("body", "output", "operator"):
            if name in self.detail:
                return self.detail[name]
        return None

    def require(self) -> None:
        """AssertionError naming the action and what happened unless it is done: fails the case."""
        if self.outcome != DONE:
            shown = {k: v for k, v in self.detail.items() if k != "request"}
            raise AssertionError(f"device action {self.name!r} ({self.kind}) {self.outcome}: {shown}")

    def to_json(self) -> dict[str, JSON]:
        return {
            "name": self.name,
            "kind": self.kind,
            "duration": round(self.duration, 3),
            "outcome": self.outcome,
            "detail": dict(self.detail),
            "settle": self.settle,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> ActionResult:
        detail = d.get("detail")
        return cls(
            name=str(d["name"]),
            kind=str(d["kind"]),
            duration=float(d["duration"]),
            outcome=str(d["outcome"]) if d.get("outcome") in OUTCOMES else ERROR,
            detail=dict(detail) if isinstance(detail, Mapping) else {},
            settle=float(d.get("settle", 0.0)),
        )
