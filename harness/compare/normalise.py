"""Normalisation of a run record: device-generated UIDs, dates and times become stable tokens.

Two runs of the same device never share the UIDs it mints or the clock it reads, so
before diffing, each such value is replaced, structure-preserving, by a token numbered
by first appearance in the run (`UID#1`, `DATE#1`, `TIME#1`, `DATETIME#1`); the same
value always gets the same token within one run. Corpus UIDs (under the manifest's
`uid_root`), standard DICOM UIDs and dates/times outside the run's window stay as
they are, since a change in them is a real change.
"""

from __future__ import annotations

import dataclasses
import re
import weakref
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import msgspec

from harness.model import JSON, CaseRecord, Manifest, Observation, RunRecord

__all__ = ["SLACK", "STANDARD_UID_PREFIX", "Window", "normalise_run", "read_normalised", "shared_window"]

STANDARD_UID_PREFIX = "1.2.840.10008."
# Clocks of the device and the harness may disagree a little, and a value may be
# stamped just before the manifest's `started` is written.
SLACK = timedelta(minutes=5)

_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_DA = re.compile(r"(\d{4})(\d{2})(\d{2})")
_TM = re.compile(r"(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?")
_DT = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?([+-]\d{4})?")
_ELEMENT_KEYS = frozenset({"vr", "Value", "BulkDataURI", "InlineBinary"})
_CONTAINERS = (dict, list)

Window = tuple[datetime, datetime]


def normalise_run(run: RunRecord, window: Window | None = None) -> RunRecord:
    """The run with device-generated UIDs, dates and times replaced by tokens; nothing else changes.

    `window`: the dates and times taken as the device's (shared_window of the runs compared); None: the
    run's own. A run read_normalised made comes back as it is, normalised with the window read_runs gave it
    (the shared window of the same runs): tokens cannot be renumbered without the raw record. What
    normalisation leaves as it was is the *same* object (a case, an observation, any subtree of a value), so
    three runs of mostly equal values are not copied three times.
    """
    if _left_by(run) is not None:  # read_normalised made it: normalising is idempotent (a token is neither a
        return run  # UID nor a date), so a second pass would only walk every value again to change nothing
    norm = _normaliser(run.manifest, window)
    return dataclasses.replace(run, cases=tuple(norm.case(c) for c in run.cases))


def read_normalised(
    directory: str,
    manifest: Manifest,
    cases: Iterable[CaseRecord],
    like: RunRecord | None = None,
    window: Window | None = None,
) -> RunRecord:
    """The run `normalise_run` would give, normalised one case at a time as `cases` yields them.

    A raw case is dropped as soon as it is normalised, and an observation whose normalised value is
    exactly `like`'s (same case, same place, same name; types and key order included) takes `like`'s
    object: replicas of one device repeat almost every value, so a second and third run cost little
    memory, and diffing them finds `before is after` without looking inside. Where `like` was read
    here by the same rules, what normalising it left alone is not walked again (`_read`): a later
    replica of 10,000 cases read in a third of the time (docs/benchmarks.md).
    """
    norm = _normaliser(manifest, window)
    first = like.by_case() if like is not None else {}
    rules = norm.rules()
    known = _left_by(like) if like is not None else None
    same = known.observations if known is not None and known.rules == rules else frozenset()
    kept: set[int] = set()
    run = RunRecord(directory, manifest, tuple(_read(norm, c, first.get(c.case), same, kept) for c in cases))
    _READ[id(run)] = _Left(weakref.ref(run), rules, kept)
    weakref.finalize(run, _READ.pop, id(run), None)
    return run


@dataclass(frozen=True)
class _Left:
    """What normalising a run read_normalised made left as it was: the rules it was normalised by, and the ids
    of its observations that came out as they went in (nothing in them is a device's UID, date or time, or a
    per-run identity)."""

    run: weakref.ref[RunRecord]
    rules: tuple[object, ...]
    observations: set[int]


# The runs read_normalised made, by id, each dropped with its run: normalise_run gives them back as they are,
# and a later run read like one skips walking what it left alone.
_READ: dict[int, _Left] = {}


def _left_by(run: RunRecord) -> _Left | None:
    """What read_normalised recorded of `run`; None for a run it did not make."""
    left = _READ.get(id(run))
    return left if left is not None and left.run() is run else None


def _read(
    norm: _Normaliser, case: CaseRecord, like: CaseRecord | None, inert: Collection[int], left: set[int]
) -> CaseRecord:
    """`case` normalised, each observation exactly equal to `like`'s at the same place replaced by `like`'s.

    Where normalising `like`'s observation under the same rules left it as it was (its id in `inert`), an
    exactly equal one is taken as it is without walking it: whether a value changes depends on the rules
    only, never on the tokens given so far, and a value left alone gives no token. Replicas repeat most.
    The ids of the observations left as they were go into `left`.
    """
    theirs = like.observations if like is not None else ()
    observations: list[Observation] = []
    for i, mine in enumerate(case.observations):
        other = theirs[i] if i < len(theirs) else None
        compared = other is not None and id(other) in inert
        if other is not None and compared and _same(mine, other):
            new, kept = _taken(mine, other), True
        else:
            normal = norm.observation(mine)
            kept = normal is mine
            # Left as it was, it is what was just found to differ from an inert `other`: not compared twice.
            if other is not None and not (kept and compared) and _same(normal, other):
                new = _taken(normal, other)
            else:
                new = normal
        if kept:
            left.add(id(new))
        observations.append(new)
    if all(new is old for new, old in zip(observations, case.observations, strict=True)):
        return case
    return dataclasses.replace(case, observations=tuple(observations))


def _same(mine: Observation, theirs: Observation) -> bool:
    return mine.name == theirs.name and _identical(mine.value, theirs.value)


def _taken(mine: Observation, theirs: Observation) -> Observation:
    """`mine`, whose value is exactly `theirs`', sharing it: `theirs` itself when the security tags agree."""
    if mine.security is theirs.security and mine.tags == theirs.tags:
        return theirs
    return replace(mine, value=theirs.value)


def shared_window(manifests: Iterable[Manifest]) -> Window | None:
    """One window for every run compared: from the earliest start to the latest end (with SLACK); None when no
    run has a usable one.

    A time the suites send (the corpus's series at 16:20:00, an MPPS start at 09:30:00) is the same in every
    run; with each run's own window it became a token in the runs whose window held it and stayed itself in
    the others: REGRESSED for the clock, once an external device's runs, minutes apart, straddled it (CI on
    2026-12-02 at 16:2x UTC). With one window it is a token in every run or in none; every device-made time
    of a run still falls in it.
    """
    windows = [w for m in manifests if (w := _window(m.started, m.finished)) is not None]
    if not windows:
        return None
    return (min(w[0] for w in windows), max(w[1] for w in windows))


def _normaliser(manifest: Manifest, window: Window | None = None) -> _Normaliser:
    corpus = manifest.corpus
    own = _window(manifest.started, manifest.finished) if window is None else window
    norm = _Normaliser(corpus.uid_root if corpus else "", own)
    if corpus and corpus.identity:
        norm.map_identities(corpus.uids, corpus.prefixes)
    return norm


def _identical(a: JSON, b: JSON) -> bool:
    """Whether two JSON values are the same text: `==` says 1 == true == 1.0 and ignores key order; equal
    MessagePack bytes rebuild one value, types (a bool, an integer, a float), signs and key order included, at
    twice marshal's speed. A value it cannot hold (an integer beyond 64 bits, a lone surrogate, what is not JSON)
    is not shared: that costs only memory."""
    if a is b:
        return True
    try:
        return a == b and _PACK(a) == _PACK(b)
    except (OverflowError, ValueError, TypeError):
        return False


_PACK = msgspec.msgpack.Encoder().encode


def _window(started: str, finished: str) -> Window | None:
    try:
        start, end = _utc(datetime.fromisoformat(started)), _utc(datetime.fromisoformat(finished))
    except ValueError:
        return None  # no usable run window: dates and times are left alone
    return (min(start, end) - SLACK, max(start, end) + SLACK)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _is_uid_key(key: str) -> bool:
    lowered = key.lower()
    return lowered.endswith("uid") or lowered.endswith("uids")


class _Normaliser:
    """The token tables of one run; walking order fixes the numbering."""

    def __init__(self, uid_root: str, window: Window | None) -> None:
        self._uid_root = uid_root.rstrip(".")
        self._window = window
        self._days: frozenset[date] = frozenset()
        if window:
            span = (window[1].date() - window[0].date()).days
            self._days = frozenset(window[0].date() + timedelta(days=i) for i in range(span + 1))
        self._tokens: dict[str, dict[str, str]] = {"UID": {}, "DATE": {}, "TIME": {}, "DATETIME": {}}
        # Each value converts the same way every time within a run (a token, once given, stays), so
        # conversions are remembered per VR: device UIDs and dates repeat across the cases of a run.
        self._converted: dict[str, dict[str, str]] = {vr: {} for vr in _CONVERTERS}
        self._uid_keys: dict[str, bool] = {}
        # A per-run corpus's identities -> the fixed corpus's ([corpus] identity = "per-run"); empty: fixed.
        self._corpus_uids: Mapping[str, str] = {}
        self._prefixes: tuple[tuple[str, str], ...] = ()

    def map_identities(self, uids: Mapping[str, str], prefixes: Mapping[str, str]) -> None:
        """Map the run's corpus UIDs and PatientID prefixes back to the fixed corpus's, wherever they appear."""
        self._corpus_uids = uids
        self._prefixes = tuple(prefixes.items())

    def _text(self, value: str) -> str:
        """A string that is not a DICOM UID, DA, TM or DT value: a corpus identity in it mapped back."""
        if not self._prefixes:
            return value
        mapped = self._corpus_uids.get(value)
        if mapped is not None:
            return mapped
        for prefix, fixed in self._prefixes:
            if prefix in value:
                value = value.replace(prefix, fixed)
        return value

    def case(self, case: CaseRecord) -> CaseRecord:
        observations = tuple(self.observation(o) for o in case.observations)
        if all(new is old for new, old in zip(observations, case.observations, strict=True)):
            return case
        return dataclasses.replace(case, observations=observations)

    def rules(self) -> tuple[object, ...]:
        """Everything that decides whether a value changes (never which token it gets): equal rules, equal
        decisions."""
        return (self._uid_root, self._window, self._corpus_uids, self._prefixes)

    def observation(self, observation: Observation) -> Observation:
        value = self._walk(observation.value)
        return observation if value is observation.value else replace(observation, value=value)

    def _token(self, kind: str, value: str) -> str:
        table = self._tokens[kind]
        if value not in table:
            table[value] = f"{kind}#{len(table) + 1}"
        return table[value]

    def _walk(self, node: JSON) -> JSON:
        """`node` normalised: the same object when nothing in it changed, else a new one sharing what did not."""
        if isinstance(node, list):
            return self._list(node)
        if not isinstance(node, dict):
            return node
        if isinstance(node.get("vr"), str) and node.keys() <= _ELEMENT_KEYS:  # a DICOM JSON element
            return self._element(node)
        changed: dict[str, JSON] | None = None
        uid_keys = self._uid_keys
        for k, v in node.items():
            uid_key = uid_keys.get(k)
            if uid_key is None:
                uid_key = uid_keys[k] = _is_uid_key(k)
            if uid_key:
                new = self._uids(v)
            elif isinstance(v, _CONTAINERS):
                new = self._walk(v)
            elif self._prefixes and isinstance(v, str) and (text := self._text(v)) != v:
                new = text
            else:
                continue  # any other scalar stays
            if new is not v:
                if changed is None:
                    changed = dict(node)  # same keys in the same order; the changed ones replaced below
                changed[k] = new
        if self._prefixes:  # keys too: observations key objects by patient or UID
            return self._keys(node if changed is None else changed)
        return node if changed is None else changed

    def _keys(self, node: dict[str, JSON]) -> dict[str, JSON]:
        keys = [self._text(k) for k in node]
        if all(new == old for new, old in zip(keys, node, strict=True)):
            return node
        return dict(zip(keys, node.values(), strict=True))

    def _list(self, node: list[JSON]) -> list[JSON]:
        changed: list[JSON] | None = None
        for i, item in enumerate(node):
            if isinstance(item, _CONTAINERS):
                new = self._walk(item)
            elif self._prefixes and isinstance(item, str) and (text := self._text(item)) != item:
                new = text
            else:
                continue
            if new is not item:
                if changed is None:
                    changed = list(node)
                changed[i] = new
        return node if changed is None else changed

    def _element(self, element: dict[str, JSON]) -> dict[str, JSON]:
        values = element.get("Value")
        if not isinstance(values, list):
            return element
        vr = str(element["vr"])
        convert = _CONVERTERS.get(vr)
        if convert is None:
            new_values = self._list(values)  # strings (a PatientID) too, with per-run identities
        else:
            new_values = values
            for i, v in enumerate(values):
                if isinstance(v, str):
                    new = self._convert(vr, convert, v)
                    if new != v:
                        if new_values is values:
                            new_values = list(values)
                        new_values[i] = new
        if new_values is values:
            return element
        return {k: new_values if k == "Value" else v for k, v in element.items()}

    def _convert(self, vr: str, convert: _Converter, value: str) -> str:
        """`convert(self, value)`, remembered: the value itself when it stays."""
        converted = self._converted[vr]
        new = converted.get(value)
        if new is None:
            new = converted[value] = convert(self, value)
        return value if new == value else new

    def _uids(self, node: JSON) -> JSON:
        """The value of a key named `...uid`/`...uids`: a UID string or a list of them."""
        if isinstance(node, str):
            return self._convert("UI", _Normaliser._uid, node)
        if isinstance(node, list) and all(isinstance(v, str) for v in node):
            return _shared(node, [self._convert("UI", _Normaliser._uid, v) for v in node])
        return self._walk(node)

    def _uid(self, value: str) -> str:
        if not _UID.fullmatch(value) or value.startswith(STANDARD_UID_PREFIX):
            return value
        if self._uid_root and (value == self._uid_root or value.startswith(self._uid_root + ".")):
            return self._corpus_uids.get(value, value)
        return self._token("UID", value)

    def _date(self, value: str) -> str:
        return self._ranged(value, "DATE", self._on_run_day)

    def _time(self, value: str) -> str:
        return self._ranged(value, "TIME", self._time_in_window)

    def _datetime(self, value: str) -> str:
        if self._datetime_in_window(value):
            return self._token("DATETIME", value)
        return self._ranged(value, "DATETIME", self._datetime_in_window)

    def _ranged(self, value: str, kind: str, inside: Callable[[str], bool]) -> str:
        """A single value, or each end of a query range `A-B` / `A-` / `-B`."""
        parts = value.split("-") if value.count("-") == 1 else [value]
        if not any(p and inside(p) for p in parts):
            return value
        return "-".join(self._token(kind, p) if p and inside(p) else p for p in parts)

    def _on_run_day(self, value: str) -> bool:
        m = _DA.fullmatch(value)
        if not m:
            return False
        try:
            return date(int(m[1]), int(m[2]), int(m[3])) in self._days
        except ValueError:
            return False

    def _time_in_window(self, value: str) -> bool:
        m = _TM.fullmatch(value)
        if not m or self._window is None:
            return False
        # The value covers an interval as wide as its precision (HH, HHMM, HHMMSS.F...).
        hour, minute, second = int(m[1]), int(m[2] or 0), int(m[3] or 0)
        fraction = m[4] or ""
        width = _precision(bool(m[2]), bool(m[3]), fraction)
        micros = int(fraction.ljust(6, "0")) if fraction else 0
        try:
            return any(
                self._overlaps(datetime(d.year, d.month, d.day, hour, minute, second, micros, tzinfo=UTC), width)
                for d in self._days
            )
        except ValueError:
            return False

    def _datetime_in_window(self, value: str) -> bool:
        m = _DT.fullmatch(value)
        if not m or self._window is None:
            return False
        groups = [m[i] for i in range(2, 7)]  # month .. second; greedy matching leaves no gaps
        known = sum(1 for g in groups if g)
        if known < 2:
            return False  # a year or a month is not a moment of the run (DA needs a day too)
        widths = [timedelta(days=1), timedelta(hours=1), timedelta(minutes=1), _precision(True, True, m[7] or "")]
        try:
            start = datetime(
                int(m[1]),
                int(groups[0]),
                int(groups[1]),
                int(groups[2] or 0),
                int(groups[3] or 0),
                int(groups[4] or 0),
                int((m[7] or "0").ljust(6, "0")),
                tzinfo=UTC,
            )
        except ValueError:
            return False
        if m[8]:
            sign = -1 if m[8][0] == "-" else 1
            start -= sign * timedelta(hours=int(m[8][1:3]), minutes=int(m[8][3:5]))
        return self._overlaps(start, widths[known - 2])

    def _overlaps(self, start: datetime, width: timedelta) -> bool:
        assert self._window is not None
        return start <= self._window[1] and start + width > self._window[0]


_Converter = Callable[[_Normaliser, str], str]
# By VR, the class's functions: a table of bound methods would make every normaliser a reference cycle, its
# token tables freed only by a collection of the oldest generation (collector_paused moves them there).
_CONVERTERS: dict[str, _Converter] = {
    "UI": _Normaliser._uid,
    "DA": _Normaliser._date,
    "TM": _Normaliser._time,
    "DT": _Normaliser._datetime,
}


def _shared(old: list[JSON], new: list[JSON]) -> list[JSON]:
    """`old` itself when every item of `new` is the item it came from (nothing changed), else `new`."""
    return old if all(n is o for n, o in zip(new, old, strict=True)) else new


def _precision(has_minutes: bool, has_seconds: bool, fraction: str) -> timedelta:
    if not has_minutes:
        return timedelta(hours=1)
    if not has_seconds:
        return timedelta(minutes=1)
    return timedelta(microseconds=10 ** (6 - len(fraction))) if fraction else timedelta(seconds=1)
