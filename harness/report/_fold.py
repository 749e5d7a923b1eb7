"""Rows of a difference table that differ in one segment of their path only, folded into one row.

`wire.objects.CT-explicit.attributes.removed.StudyDescription` and eight more alike but for the object read as
one row, `wire.objects.{CT-explicit, CT-rle, …}.attributes.removed.StudyDescription`: the same change, said once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Protocol, TypeVar

__all__ = ["FOLD_AT_LEAST", "fold_rows", "folded_path"]

FOLD_AT_LEAST = 3  # rows alike but for one segment fold from this many; two read fine as they are
_PASSES = 2  # fold again over the folded rows: objects x attributes vary in two segments


class _Row(Protocol):
    @property
    def path(self) -> str: ...

    @property
    def count(self) -> int: ...


R = TypeVar("R", bound=_Row)
# (the varying segment's index, the segments before it, those after it, what the rows say)
_Group = tuple[int, tuple[str, ...], tuple[str, ...], Hashable]


def fold_rows(rows: Sequence[R], alike: Callable[[R], Hashable]) -> list[R]:
    """`rows` with each set of at least FOLD_AT_LEAST rows that are `alike` and whose paths differ in one segment
    (split at ".") folded into its first, whose path then names every variant and whose `count` sums theirs.
    Order is kept: a folded row stands where its first row stood."""
    out = list(rows)
    for _ in range(_PASSES):
        folded = _fold_once(out, alike)
        if len(folded) == len(out):
            break
        out = folded
    return out


def _fold_once(rows: list[R], alike: Callable[[R], Hashable]) -> list[R]:
    segments = [r.path.split(".") for r in rows]
    best: dict[_Group, list[int]] = {}
    saved = 0
    for at in range(max((len(s) for s in segments), default=0)):
        groups: dict[_Group, list[int]] = {}
        for i, (row, parts) in enumerate(zip(rows, segments, strict=True)):
            if len(parts) > at:
                groups.setdefault((at, tuple(parts[:at]), tuple(parts[at + 1 :]), alike(row)), []).append(i)
        big = {k: v for k, v in groups.items() if len(v) >= FOLD_AT_LEAST}
        gain = sum(len(v) - 1 for v in big.values())
        if gain > saved:
            best, saved = big, gain
    if not best:
        return rows
    into: dict[int, list[int]] = {members[0]: members for members in best.values()}
    dropped = {i for members in best.values() for i in members[1:]}
    out: list[R] = []
    for i, row in enumerate(rows):
        if i in dropped:
            continue
        members = into.get(i)
        if members is None:
            out.append(row)
            continue
        at = next(k[0] for k, v in best.items() if v is members)
        variants = [segments[m][at] for m in members]
        changes: dict[str, Any] = {
            "path": folded_path(segments[i], at, variants),
            "count": sum(rows[m].count for m in members),
        }
        out.append(dataclasses.replace(row, **changes))  # type: ignore[type-var]  # R is a dataclass
    return out


def folded_path(parts: Sequence[str], at: int, variants: Sequence[str]) -> str:
    """The path with segment `at` replaced by its variants: `a.{x, y, z}.b`."""
    return ".".join([*parts[:at], "{" + ", ".join(variants) + "}", *parts[at + 1 :]])
