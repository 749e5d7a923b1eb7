"""Noise measured from baseline replicas: what differs between two runs of the same device is noise."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.compare.diff import diff_cases
from harness.model import Difference, DiffKind, RunRecord

__all__ = ["NoiseMask", "measure_noise"]

# Kinds that describe a whole container: they are masked by noise anywhere inside it.
_CONTAINER_KINDS = frozenset({DiffKind.COUNT_CHANGED, DiffKind.ORDER_CHANGED})


@dataclass(frozen=True)
class NoiseMask:
    """The (case, path) pairs that differ between baseline replicas, and the cases whose outcome does."""

    paths: frozenset[tuple[str, str]] = frozenset()
    flaky: frozenset[str] = frozenset()  # cases whose outcome (or presence) differs: all noise
    _by_case: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_case: dict[str, list[str]] = {}
        for case, path in sorted(self.paths):
            by_case.setdefault(case, []).append(path)
        object.__setattr__(self, "_by_case", {c: tuple(p) for c, p in by_case.items()})

    @property
    def cases(self) -> frozenset[str]:
        """Every case with any noise."""
        return self.flaky | {case for case, _ in self.paths}

    def covers(self, diff: Difference) -> bool:
        """Whether a candidate difference lies on, under, or (for counts and orders) above a noise path."""
        if diff.case in self.flaky:
            return True
        for noisy in self._by_case.get(diff.case, ()):
            if _within(diff.path, noisy):
                return True
            if diff.kind in _CONTAINER_KINDS and _within(noisy, diff.path):
                return True
        return False


def measure_noise(replicas: Sequence[RunRecord]) -> NoiseMask:
    """Diff every pair of (already normalised) baseline replicas; a single replica gives no noise."""
    paths: set[tuple[str, str]] = set()
    flaky: set[str] = set()
    for one, other in itertools.combinations(replicas, 2):
        a, b = one.by_case(), other.by_case()
        for case in a.keys() | b.keys():
            for diff in diff_cases(a.get(case), b.get(case)):
                if diff.path == "outcome":
                    flaky.add(case)
                else:
                    paths.add((case, diff.path))
    return NoiseMask(frozenset(paths), frozenset(flaky))


def _within(path: str, ancestor: str) -> bool:
    """`path` equals `ancestor` or lies under it, at a `.` or `[` boundary."""
    return path == ancestor or (path.startswith(ancestor) and path[len(ancestor)] in ".[")
