"""Structural diff of two case records into typed Differences keyed by path.

Paths start with the observation name, then `.key` for objects and `[i]` for lists;
a case outcome is `outcome`. Lists are compared as multisets first (so a reordering
is one ORDER_CHANGED, not a cascade of value changes), timings only past a threshold.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

from harness.compare.robustness import REACTION
from harness.model import JSON, CaseRecord, Difference, DiffKind
from harness.wording import format_side  # re-exported, see harness.wording

__all__ = [
    "SILENT",
    "SILENT_CLASSES",
    "TIMED_CLASSES",
    "TIMING_MIN_DELTA",
    "TIMING_PREFIX",
    "TIMING_RATIO",
    "canonical",
    "diff_cases",
    "format_side",
    "is_status_key",
]

TIMING_PREFIX = "timing."
# A timing only counts as changed when it is both much slower and noticeably slower:
# loopback timings jitter by tens of milliseconds and by factors on tiny values.
TIMING_RATIO = 3.0
TIMING_MIN_DELTA = 1.0  # seconds
# A class made of a timing (a robustness reaction's `when`: "immediate" under 1 s, else "delayed") flips where the
# timing sits near the edge: Orthanc stored a 16 MiB value in 0.91 and 0.93 s in the baselines and 1.06 s in the
# candidate of a loaded machine. Such a class differs only when the timing it is made of moved by the rule above,
# either way (a reaction now far faster is a change too): class path -> its timing's observation.
TIMED_CLASSES = {"robustness.reaction.when": "timing.robustness.seconds"}
# "silent" is a class made of a timing too: it is what a reaction is called when the deadline (or a load's hold)
# passed first. dcmqrscp stored a 5,000-deep nesting in 8.3 and 9.7 s in the baselines and was silent at the 10 s
# deadline in the candidate of a loaded machine. A flip to or from silent whose seconds did not move by the timing
# rule is the deadline's edge, not the device, so the reaction's kind, detail and severity do not differ either.
SILENT = "silent"  # a reaction's kind (robustness.REACTION)
SILENT_CLASSES = ("robustness.reaction.kind", "robustness.detail", "robustness.severity")


def diff_cases(before: CaseRecord | None, after: CaseRecord | None) -> tuple[Difference, ...]:
    """Every difference between one case in the baseline and the same case in the candidate."""
    if before is None and after is None:
        return ()
    if before is None:
        assert after is not None
        return (Difference(after.case, "outcome", DiffKind.EXTRA, None, after.outcome.value),)
    if after is None:
        return (Difference(before.case, "outcome", DiffKind.MISSING, before.outcome.value, None),)
    found: list[Difference] = []
    if before.outcome != after.outcome:
        found.append(
            Difference(before.case, "outcome", DiffKind.STATUS_CHANGED, before.outcome.value, after.outcome.value)
        )
    old, new = before.observed(), after.observed()
    for name, value in old.items():
        if name not in new:
            found.append(Difference(before.case, name, DiffKind.MISSING, value, None))
        elif name.startswith(TIMING_PREFIX):
            found.extend(_timing(before.case, name, value, new[name]))
        elif not _same(value, new[name]):
            key = name.rsplit(".", 1)[-1]
            found.extend(Difference(before.case, *d) for d in _diff(name, key, value, new[name]))
    found.extend(Difference(before.case, n, DiffKind.EXTRA, None, v) for n, v in new.items() if n not in old)
    for path, timing in TIMED_CLASSES.items():
        if timing in old and timing in new and not _moved(old[timing], new[timing]):
            edge = {path, *(SILENT_CLASSES if _silenced(old, new) else ())}
            found = [d for d in found if d.path not in edge]
    return tuple(found)


def _silenced(old: dict[str, JSON], new: dict[str, JSON]) -> bool:
    """Whether one side's reaction is silent and the other's is not (see `SILENT`)."""
    kinds = [v.get("kind") if isinstance(v, dict) else v for v in (old.get(REACTION), new.get(REACTION))]
    return kinds.count(SILENT) == 1


def _moved(before: JSON, after: JSON) -> bool:
    """Whether a timing moved by the timing rule in either direction (a value that is no number: it moved)."""
    numbers = sorted(v for v in (before, after) if isinstance(v, int | float) and not isinstance(v, bool))
    if len(numbers) != 2:
        return True
    return _slower(*numbers)


def canonical(value: JSON) -> str:
    """One string per JSON value: equal strings, equal values (1 and true and 1.0 differ)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _same(before: JSON, after: JSON) -> bool:
    """Whether two values are equal as `canonical` tells (types kept apart), cheaply: no walk in Python.

    `==` alone says 1 == true == 1.0 and 0.0 == -0.0; equal `repr`s also say the types and signs
    match (repr is Python's literal syntax, one text per value); unequal ones (keys in another
    order, NaN) leave it to the walk, which decides exactly.
    """
    return before is after or (before == after and repr(before) == repr(after))


_PLAIN = frozenset({str, int, bool, type(None)})  # for these types, == is canonical equality


def _equal(before: JSON, after: JSON) -> bool:
    """`canonical(before) == canonical(after)`, without json.dumps for the scalars that make up most values."""
    kind = type(before)
    if kind is type(after):
        if kind in _PLAIN:
            return bool(before == after)
        if kind is float:
            return repr(before) == repr(after)  # as json writes floats: 0.0 and -0.0 differ, NaN equals NaN
    return canonical(before) == canonical(after)


def is_status_key(key: str) -> bool:
    """Whether a changed value under this key is a status (a DICOM status or an outcome)."""
    return key == "status" or key.endswith("_status")


_Found = tuple[str, DiffKind, JSON, JSON]


def _diff(path: str, key: str, before: JSON, after: JSON) -> Iterator[_Found]:
    """Differences of one value; `key` is the nearest object key, which tells statuses apart."""
    if isinstance(before, dict) and isinstance(after, dict):
        for k, v in before.items():
            if k not in after:
                yield (f"{path}.{k}", DiffKind.MISSING, v, None)
            elif not _same(v, after[k]):
                yield from _diff(f"{path}.{k}", k, v, after[k])
        yield from ((f"{path}.{k}", DiffKind.EXTRA, None, v) for k, v in after.items() if k not in before)
    elif isinstance(before, list) and isinstance(after, list):
        yield from _diff_list(path, key, before, after)
    elif not _equal(before, after):
        kind = DiffKind.STATUS_CHANGED if is_status_key(key) else DiffKind.VALUE_CHANGED
        yield (path, kind, before, after)


def _diff_list(path: str, key: str, before: list[JSON], after: list[JSON]) -> Iterator[_Found]:
    old, new = [canonical(v) for v in before], [canonical(v) for v in after]
    if old == new:
        return
    if len(old) == len(new):
        if Counter(old) == Counter(new):
            yield (path, DiffKind.ORDER_CHANGED, before, after)
        else:
            # Same length, other items: compare position by position for precise paths.
            for i, (b, a, same) in enumerate(zip(before, after, map(str.__eq__, old, new), strict=True)):
                if not same:
                    yield from _diff(f"{path}[{i}]", key, b, a)
        return
    yield (path, DiffKind.COUNT_CHANGED, len(before), len(after))
    missing, extra = Counter(old) - Counter(new), Counter(new) - Counter(old)
    yield from ((f"{path}[{i}]", DiffKind.MISSING, v, None) for i, v in _take(before, old, missing))
    yield from ((f"{path}[{i}]", DiffKind.EXTRA, None, v) for i, v in _take(after, new, extra))


def _take(values: list[JSON], keys: list[str], wanted: Counter[str]) -> Iterator[tuple[int, JSON]]:
    """The items (with their index) whose canonical form is in `wanted`, as many times as wanted."""
    left = Counter(wanted)
    for i, (value, k) in enumerate(zip(values, keys, strict=True)):
        if left[k] > 0:
            left[k] -= 1
            yield i, value


def _timing(case: str, name: str, before: JSON, after: JSON) -> Iterator[Difference]:
    if not (_is_number(before) and _is_number(after)):
        yield from (Difference(case, *d) for d in _diff(name, name, before, after))
    elif _slower(before, after):
        yield Difference(case, name, DiffKind.TIMING_CHANGED, before, after)


def _slower(before: float, after: float) -> bool:
    """The timing rule: `after` is both much slower and noticeably slower than `before`."""
    return after > TIMING_RATIO * before and after - before > TIMING_MIN_DELTA


def _is_number(value: JSON) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
