"""One input's final reaction (design 8.4): what the wire saw, then the health check, then the harness's exit news."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from simulators.attack.react import Reaction
from simulators.attack.run import Outcome

__all__ = ["NOT_SENT", "Final", "buckets", "final"]

# The reaction of an input this device cannot be given (it announced no maximum to exceed, it refused the
# association the input needs): nothing was sent, so nothing could go wrong (severity 0).
NOT_SENT = "not-sent"


@dataclass(frozen=True)
class Final:
    """The reaction recorded: its kind, `when` it came, what was seen, its severity, and the wire's seconds."""

    kind: str
    when: str
    detail: str
    severity: int
    seconds: float

    @property
    def needs_revival(self) -> bool:
        return self.kind in ("exited", "unresponsive")


def final(outcome: Outcome, exited: str | None, restarted: str | None = None) -> Final:
    """The most severe reaction that applies: the wire's, `unresponsive` when the health check failed while the
    device runs, `exited` (with `exited` as its detail: "exit code 70", "signal 11") when the harness saw it go,
    `restarted` (with `restarted` as its detail) when it saw the device's processes replaced."""
    wire = outcome.reaction
    seconds = wire.seconds if wire is not None else 0.0
    for kind, detail in (("exited", exited), ("restarted", restarted)):
        if detail is not None:
            return Final(kind, wire.when if wire else "immediate", detail, 3, seconds)
    if wire is None:
        healthy = outcome.health is None or outcome.health.ok
        if healthy:
            return Final(NOT_SENT, "", outcome.skipped, 0, seconds)
        return Final("unresponsive", "immediate", f"{outcome.skipped}; no C-ECHO answer after", 2, seconds)
    if outcome.health is not None and not outcome.health.ok:
        hung = Reaction("unresponsive", f"{wire.kind}: {wire.detail}; no C-ECHO answer after", wire.seconds)
        wire = wire.worst(hung)
    return Final(wire.kind, wire.when, wire.detail, wire.severity, seconds)


def buckets(counts: Iterable[tuple[str, int]]) -> dict[str, str]:
    """A flood's per-kind counts as buckets ("all" or "some" of the connections): counts vary with the load."""
    counted = dict(counts)
    total = sum(counted.values())
    return {kind: "all" if n == total else "some" for kind, n in sorted(counted.items()) if n}
