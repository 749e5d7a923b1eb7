"""What crosses the attack window channel: a suites request (begin, end, revive) and the harness's answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harness.model import JSON

__all__ = ["OPS", "WindowAnswer", "WindowRequest", "exit_detail"]

OPS = ("begin", "end", "revive")


def exit_detail(code: int | None) -> str:
    """How an exit reads in a reaction's detail: "exit code 70", or "signal 11" for a negative return code."""
    if code is None:
        return "exited"
    return f"signal {-code}" if code < 0 else f"exit code {code}"


@dataclass(frozen=True)
class WindowRequest:
    """`begin` opens the window of `input`, `end` closes it, `revive` asks for a restart after `reaction`."""

    op: str
    input: str
    reaction: str = ""  # revive only: "exited" | "unresponsive"
    detail: str = ""

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown window request {self.op!r}; one of: {', '.join(OPS)}")
        if not self.input:
            raise ValueError("a window request names its input")

    def to_json(self) -> dict[str, JSON]:
        return {"op": self.op, "input": self.input, "reaction": self.reaction, "detail": self.detail}

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> WindowRequest:
        return cls(str(d["op"]), str(d["input"]), str(d.get("reaction", "")), str(d.get("detail", "")))


@dataclass(frozen=True)
class WindowAnswer:
    """The harness's answer: the device `exited` or `restarted` during the window (with its `detail`), it was
    `revived`, or `stop` says why no more inputs may be sent ("" to go on)."""

    exited: bool = False
    detail: str = ""
    revived: bool = False
    stop: str = ""
    restarted: bool = False

    def to_json(self) -> dict[str, JSON]:
        return {
            "exited": self.exited,
            "restarted": self.restarted,
            "detail": self.detail,
            "revived": self.revived,
            "stop": self.stop,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> WindowAnswer:
        return cls(
            exited=bool(d.get("exited")),
            detail=str(d.get("detail", "")),
            revived=bool(d.get("revived")),
            stop=str(d.get("stop", "")),
            restarted=bool(d.get("restarted")),
        )
