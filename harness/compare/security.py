"""The security posture of a comparison: which security-tagged observations tightened, loosened or stayed.

Suites tag an observation EXPOSURE (more of it is looser: a TLS version accepted, a port
listening) or PROTECTION (less of it is looser: a refusal, an audit message sent). The
direction of a change follows from the kind of value, on normalised values:

- a bool that became true, a number that went up, a list that gained items: more of it;
- the reverse: less of it; a list that both gained and lost items is both (two changes);
- strings, objects, mixed kinds or a value recorded on one side only: CHANGED, direction unknown;
- baseline replicas that disagree on the value: NOISY, never classified.

The engine calls `classify` per case before applying the policy (a loosening needs an entry
with `allow_loosening`), then `settle` once the differences are classified.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from harness.compare.diff import canonical
from harness.model import JSON, CaseRecord, Classification, Difference, DiffKind, Direction, Security, SecurityChange
from harness.wording import ABSENT_WORDS, MINUS, describe, value_words  # re-exported, see harness.wording

__all__ = [
    "ABSENT_WORDS",
    "MINUS",
    "classify",
    "describe",
    "loosened_names",
    "names_of",
    "observation_of",
    "settle",
    "tags_of",
    "value_words",
]

_ABSENT = object()  # an observation not recorded on one side (distinct from a JSON null)
_MORE = {Security.EXPOSURE: Direction.LOOSENED, Security.PROTECTION: Direction.TIGHTENED}
_LESS = {Security.EXPOSURE: Direction.TIGHTENED, Security.PROTECTION: Direction.LOOSENED}
_WHOLE_CASE = frozenset({DiffKind.MISSING, DiffKind.EXTRA})  # `outcome` diffs of a case on one side only


def tags_of(*records: CaseRecord | None) -> dict[str, Security]:
    """The security tag of each observation name of one case; the first record that tags a name wins.

    Tags are read from the records as recorded: normalisation keeps values, not tags.
    """
    tags: dict[str, Security] = {}
    for record in records:
        for o in record.observations if record else ():
            if o.security and o.name not in tags:
                tags[o.name] = o.security
    return tags


def classify(
    case: str,
    baselines: Sequence[CaseRecord | None],
    candidate: CaseRecord | None,
    tags: Mapping[str, Security],
) -> tuple[SecurityChange, ...]:
    """The direction of every tagged observation of one case, baseline replica 1 against the candidate.

    `baselines` and `candidate` are normalised records of `case` (None: not run there).
    """
    sides = [r.observed() if r else {} for r in baselines]
    now = candidate.observed() if candidate else {}
    changes: list[SecurityChange] = []
    for name, security in tags.items():
        values = [s.get(name, _ABSENT) for s in sides]
        before, after = (values[0] if values else _ABSENT), now.get(name, _ABSENT)
        changes.extend(_one(case, name, security, before, after, noisy=len({_key(v) for v in values}) > 1))
    return tuple(changes)


def loosened_names(changes: Iterable[SecurityChange]) -> frozenset[str]:
    """The observation names that loosened (their differences need a policy entry with allow_loosening)."""
    return frozenset(c.name for c in changes if c.direction is Direction.LOOSENED)


def names_of(*records: CaseRecord | None) -> frozenset[str]:
    """Every observation name of one case in these records, to tell which observation a path lies on."""
    return frozenset(o.name for r in records if r for o in r.observations)


def observation_of(path: str, names: Iterable[str]) -> str | None:
    """The observation a difference path lies on: the longest name it equals or starts with at `.` / `[`."""
    found = [n for n in names if path == n or (path.startswith(n) and path[len(n)] in ".[")]
    return max(found, key=len) if found else None


def settle(
    changes: Sequence[SecurityChange], differences: Sequence[Difference], names: Iterable[str] = ()
) -> tuple[SecurityChange, ...]:
    """The changes with `expected` and `reason` from the classified differences on each observation.

    `names`: every observation name of the case (see names_of), so that a path is put on the
    right one when names nest (`echo` and `echo.status`); the changes' own names are always included.
    A change is expected when every difference on it is; its reason is the policy's, or, when
    a difference stays regressed, why (e.g. an entry that matched but does not allow loosening).
    A change whose differences are all noise is NOISY. One with no difference on it is UNCHANGED: the diff's rules
    found the values alike (a reaction silent at the deadline where the baseline answered just before it).
    """
    known = {c.name for c in changes} | set(names)
    whole = [d for d in differences if d.path == "outcome" and d.kind in _WHOLE_CASE]
    settled: list[SecurityChange] = []
    for change in changes:
        if change.direction in (Direction.UNCHANGED, Direction.NOISY):
            settled.append(change)
            continue
        on = [d for d in differences if observation_of(d.path, known) == change.name] + whole
        if not on:
            settled.append(dataclasses.replace(change, direction=Direction.UNCHANGED))
            continue
        if all(d.classification is Classification.NOISE for d in on):
            settled.append(dataclasses.replace(change, direction=Direction.NOISY, reason=on[0].reason))
            continue
        real = [d for d in on if d.classification is not Classification.NOISE]
        expected = bool(real) and all(d.classification is Classification.EXPECTED for d in real)
        if expected:
            reason = "; ".join(dict.fromkeys(d.reason for d in real if d.reason))
        else:
            reason = next((d.reason for d in real if d.classification is Classification.REGRESSED and d.reason), "")
        settled.append(dataclasses.replace(change, expected=expected, reason=reason))
    return tuple(settled)


def _one(
    case: str, name: str, security: Security, before: object, after: object, *, noisy: bool
) -> list[SecurityChange]:
    absent = "before" if before is _ABSENT else "after" if after is _ABSENT else ""
    base = SecurityChange(
        case,
        name,
        security,
        None if before is _ABSENT else before,
        None if after is _ABSENT else after,
        Direction.UNCHANGED,
        absent=absent,
    )
    if noisy:
        return [dataclasses.replace(base, direction=Direction.NOISY, reason="differs between baseline replicas")]
    if _key(before) == _key(after):
        return [base]
    if absent:
        return [dataclasses.replace(base, direction=Direction.CHANGED)]
    if isinstance(before, bool) and isinstance(after, bool):
        return [dataclasses.replace(base, direction=(_MORE if after else _LESS)[security])]
    if _is_number(before) and _is_number(after):
        assert isinstance(before, int | float) and isinstance(after, int | float)
        return [dataclasses.replace(base, direction=(_MORE if after > before else _LESS)[security])]
    if isinstance(before, list) and isinstance(after, list):
        return _lists(base, before, after)
    return [dataclasses.replace(base, direction=Direction.CHANGED)]


def _lists(base: SecurityChange, before: list[JSON], after: list[JSON]) -> list[SecurityChange]:
    """Items gained are more, items lost are less (as multisets); same items in another order: CHANGED."""
    old, new = Counter(canonical(v) for v in before), Counter(canonical(v) for v in after)
    added = tuple(_pick(after, new - old))
    removed = tuple(_pick(before, old - new))
    if not added and not removed:
        return [dataclasses.replace(base, direction=Direction.CHANGED)]
    found = []
    if added:
        found.append(dataclasses.replace(base, direction=_MORE[base.security], added=added))
    if removed:
        found.append(dataclasses.replace(base, direction=_LESS[base.security], removed=removed))
    # Loosened first: it is what a reader must see.
    return sorted(found, key=lambda c: c.direction is not Direction.LOOSENED)


def _pick(values: list[JSON], wanted: Counter[str]) -> Iterable[JSON]:
    left = Counter(wanted)
    for value in values:
        key = canonical(value)
        if left[key] > 0:
            left[key] -= 1
            yield value


def _key(value: object) -> str:
    return "\0absent" if value is _ABSENT else canonical(value)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
