"""Which case an audit message belongs to: by the device's own stamp where it can be trusted, else by its window."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from simulators.audit.record import AuditRecord, stamped
from simulators.stall import STALL_LIMIT, stalled
from suites.audit.window import (
    DRAIN,
    DRAIN_LIMIT,
    MIN_WAIT,
    PATIENCE,
    POLL,
    SETTLE,
    Collected,
    Window,
    records,
    widened,
)

__all__ = ["FINE", "MIN_GAP", "SKEW", "Measuring", "attribute", "begin", "measure", "stamps"]

T = TypeVar("T")

# A device's EventDateTime places a message in the case whose action began last before it when the stamp is
# this fine or finer and the device keeps this machine's clock, or one behind it by less than SKEW (`stamps`
# allows for that offset): no stamp ahead of its arrival, and not every message arriving more than SKEW after
# its stamp (a clock far behind, or another time zone mislabelled).
FINE = 0.01
SKEW = 1.0
# Between two actions of a stamped pass: at least this, and 3 x the longest a message's stamp came after its
# action ended. A stamp past half the gap after its action means the gap was too tight: measured by windows.
MIN_GAP = 0.1
NAP = 0.001  # the shortest sleep of a wait that is almost due


def measure(window: Window, actions: Sequence[tuple[str, Callable[[], T]]]) -> dict[str, Collected[T]]:
    """Each action's audit messages, the actions in order: `begin`, then at once `Measuring.result`."""
    return begin(window, actions).result()


def begin(window: Window, actions: Sequence[tuple[str, Callable[[], T]]]) -> Measuring[T]:
    """Run the actions and measure their audit messages: placed when `Measuring.result` is asked, or now.

    A device that stamps its messages finely on this machine's clock or one behind it (`stamps`; everything it
    has sent so far says so) is measured in one stamped pass: the actions run a short gap apart (one after the
    last too, so what the run does next is stamped after the pass), and every message is placed by its stamp
    when the result is asked, the last action's given time to arrive (`_settled`). Asked after the run's other
    cases, it costs no wait. Anything the stamps cannot place (a message without one, a stamp past half its gap)
    and every other device: one window per action, in order, then all of them once more when a message came
    after its window (before the next one, or within one more window's wait after the last: the last case's
    Security Alert matters as much) or in a later case's window (its stamp says so, `attribute`). Windows are
    measured now, or when the result is asked where the stamps gave up only then.

    A late message shows how much longer this run's device needed than its windows gave it (a stalled or busy
    machine, a device slower now than earlier in the run). The second pass waits with the latency the late ones
    taught (`Window._learn_late`), so what each case records is what the device sent for its operation, not
    where a window happened to close. A device late in both passes is recorded as it is (`late` counts), the
    same way in every run, except where its stamps place a message.
    """
    if not actions:
        return Measuring(lambda: {})
    if _all_stamped(records(window.path)):
        stamped = _stamped_pass(window, actions)
        if stamped is not None:

            def place() -> dict[str, Collected[T]]:
                settled = _settled(window, *stamped)
                if settled is not None:
                    return settled
                window.restart()
                return _by_windows(window, actions)

            return Measuring(place)
        window.restart()
    else:  # what came before (the device's start, readiness checks) may still be on its way
        window.drain(DRAIN, DRAIN_LIMIT)
    got = _by_windows(window, actions)
    return Measuring(lambda: got)


class Measuring(Generic[T]):
    """Actions run, their messages placed the first time `result` is asked."""

    def __init__(self, place: Callable[[], dict[str, Collected[T]]]) -> None:
        self._place: Callable[[], dict[str, Collected[T]]] | None = place
        self._got: dict[str, Collected[T]] = {}

    def result(self) -> dict[str, Collected[T]]:
        if self._place is not None:
            self._got, self._place = self._place(), None
        return self._got


def _by_windows(window: Window, actions: Sequence[tuple[str, Callable[[], T]]]) -> dict[str, Collected[T]]:
    """One window per action, then all again with what a late message taught (`begin`)."""
    got = {name: window.during(action) for name, action in actions}
    late = any(collected.late for collected in got.values())
    if not late and not window.trailing() and (by_stamp := attribute(window.path, got)) == got:
        return by_stamp
    window.restart()
    got = {name: window.during(action) for name, action in actions}
    window.trailing()  # what comes late this time is placed by its stamp
    return attribute(window.path, got)


def attribute(path: Path, got: Mapping[str, Collected[T]]) -> dict[str, Collected[T]]:
    """Each message since the first window opened in the case whose action began last before the device stamped
    it, where the stamp is FINE and the device's clock is ours or behind it (`stamps`); every other message
    where it arrived.

    Arrival alone misplaces a message the device was slow to send: it lands in the next case's window, where
    the same kind of event hides it (a C-MOVE's Instances Transferred in the C-GET's), or between two windows.
    A stamp before the first action (earlier work) places a message in no case; one that arrived between two
    windows and has no place is counted `late` in the window after, as before.
    """
    cases = list(got.items())
    if not cases:
        return dict(got)
    everything = records(path)
    first = cases[0][1].arrived.start
    when = stamps(everything[first:])
    if when is None:
        return dict(got)
    owner: dict[int, int] = {}  # a record's number -> the case it belongs to
    for k, (_, collected) in enumerate(cases):
        for number in collected.arrived:
            owner[number] = k
    starts = [collected.started for _, collected in cases]
    for offset, stamp in enumerate(when):
        if stamp is not None:
            owner[first + offset] = _owner(starts, stamp)
    out: dict[str, Collected[T]] = {}
    for k, (name, collected) in enumerate(cases):
        since = cases[k - 1][1].arrived.stop if k else collected.arrived.start
        received = [everything[n] for n in range(first, len(everything)) if owner.get(n) == k]
        late = sum(1 for n in range(since, collected.arrived.start) if owner.get(n, -1) == -1) if k else collected.late
        out[name] = replace(collected, received=received, late=late)
    return out


def stamps(found: Sequence[AuditRecord]) -> list[float | None] | None:
    """The latest each record's event can have happened on this machine's clock (None: no FINE stamp); None
    when the stamps cannot be placed on it (one made after its message arrived, or every message more than
    SKEW after its stamp).

    A device clock behind ours (another host: NTP keeps it within milliseconds to a second) stamps every event
    early by the same offset, which would place it in the action before its own, or before the first (then in
    none). No message arrives before its event, so the offset is at most the least time any message took from
    its stamp to its arrival; the latest moment is the stamp plus its resolution plus that bound. On one clock
    the bound is the quickest delivery, a few milliseconds.
    """
    fine: list[tuple[float, float, float] | None] = []  # (stamp, resolution, arrival) of each FINE stamp
    for record in found:
        stamp = stamped(record)
        if stamp is None or stamp[1] > FINE:
            fine.append(None)
            continue
        when, resolution = stamp
        arrived = _arrived(record)
        if when > arrived + FINE:  # made after it arrived: another clock
            return None
        fine.append((when, resolution, arrived))
    known = [f for f in fine if f is not None]
    if not known:
        return [None] * len(fine)
    offset = min(arrived - when for when, _, arrived in known)
    if min(arrived - when - resolution for when, resolution, arrived in known) > SKEW:
        return None  # not one message in time: a clock far behind, or another time zone mislabelled
    return [None if f is None else f[0] + f[1] + max(0.0, offset) for f in fine]


def _all_stamped(found: Sequence[AuditRecord]) -> bool:
    """The device has sent something, and everything it sent has a FINE stamp `stamps` can use."""
    when = stamps(found)
    return when is not None and bool(when) and None not in when


@dataclass
class _Span:
    """One action of a stamped pass: when it began and ended (seconds since the epoch) and the gap after it."""

    name: str
    result: Any
    started: float
    ended: float
    gap: float = PATIENCE


def _stamped_pass(
    window: Window, actions: Sequence[tuple[str, Callable[[], T]]]
) -> tuple[int, list[_Span], float] | None:
    """The actions a gap apart, and a gap after the last: (the first record of the pass, its actions, when it
    closed on the wall clock); None as soon as a message the stamps cannot place came."""
    clock, first = window.clock, window.count()
    spans: list[_Span] = []
    for name, action in actions:
        started = clock.wall()
        result = action()
        spans.append(_Span(name, result, started, clock.wall()))
        # The gap: until the device has stamped what this action made (arrival does not matter).
        gap = _wait(window, lambda: _gap(window, first, spans))
        if gap is None:
            return None
        spans[-1].gap = gap
    return first, spans, clock.wall()


def _settled(window: Window, first: int, spans: list[_Span], closed: float) -> dict[str, Collected[Any]] | None:
    """Each action's messages by their stamps, once the last action's have had time to arrive; None when a
    message cannot be placed so (no FINE stamp, or a stamp past half the gap after its action).

    Time to arrive: twice as long as this device has shown its messages need (as windows wait once more after
    the last), and none of the pass's for SETTLE, from the last action's end; what the run did since counts.
    A stamp after the pass closed is what the run did next, in no case.
    """
    clock, lost = window.clock, 0.0
    while True:
        placed = _place(window, first, spans, closed)
        if placed is None:
            return None
        took = [_arrived(r) - spans[k].ended for r, _, k in placed] + window.latencies
        due = 2 * widened(max(took), MIN_WAIT, SETTLE) if took else PATIENCE
        now = clock.wall()
        opened = now - spans[-1].ended - lost
        quiet = now - max((_arrived(r) for r, _, _ in placed), default=-math.inf)
        if (opened >= due and quiet >= SETTLE) or opened >= 2 * PATIENCE + SETTLE:
            break
        nap = min(POLL, 2 * PATIENCE + SETTLE - opened, max(due - opened, SETTLE - quiet, NAP))
        asleep = clock.now()
        clock.sleep(nap)
        lost = min(STALL_LIMIT, lost + stalled(nap, clock.now() - asleep))
    if any(stamp - spans[k].ended > spans[k].gap / 2 for _, stamp, k in placed):
        return None
    window.latencies.extend(max(0.0, _arrived(r) - spans[k].ended) for r, _, k in placed)
    count = first + len(records(window.path)[first:])
    return {
        span.name: Collected(span.result, [r for r, _, k in placed if k == i], 0, span.started, range(first, count))
        for i, span in enumerate(spans)
    }


def _wait(window: Window, seconds: Callable[[], float | None]) -> float | None:
    """Sleep until `seconds()` have passed since now (re-read as messages come; stalls widen it, bounded): the
    wait it kept. None as soon as `seconds()` is (a message the stamps cannot place)."""
    clock = window.clock
    end, lost, count, wait = clock.now(), 0.0, -1, PATIENCE
    while True:
        if (n := window.count()) != count:
            count, asked = n, seconds()
            if asked is None:
                return None
            wait = asked
        now = clock.now()
        opened, due = now - end - lost, min(wait, PATIENCE)
        if opened >= due:
            return wait
        # Up to what is due, not a poll past it: each of a pass's waits overran by up to POLL before.
        nap = min(POLL, max(due - opened, NAP))
        clock.sleep(nap)
        lost = min(STALL_LIMIT, lost + stalled(nap, clock.now() - now))


def _gap(window: Window, first: int, spans: list[_Span]) -> float | None:
    """3 x the longest a stamp came after its action ended (at least MIN_GAP); PATIENCE before any is known."""
    placed = _place(window, first, spans)
    if placed is None:
        return None
    after = [stamp - spans[k].ended for _, stamp, k in placed]
    return widened(max(after), MIN_GAP, FINE) if after else PATIENCE


def _place(
    window: Window, first: int, spans: list[_Span], closed: float = math.inf
) -> list[tuple[AuditRecord, float, int]] | None:
    """(record, stamp, its action) for every message since the pass began that an action's stamp owns; messages
    stamped before the first action (earlier work) or after the pass `closed` (later work) are left out. None
    when any message has no FINE stamp."""
    found = records(window.path)[first:]
    when = stamps(found)
    if when is None or None in when:
        return None
    starts = [span.started for span in spans]
    return [
        (r, t, k)
        for r, t in zip(found, when, strict=True)
        if t is not None and t <= closed and (k := _owner(starts, t)) >= 0
    ]


def _owner(starts: list[float], stamp: float) -> int:
    """The last action that began at or before `stamp`; -1 when none did."""
    began = [k for k, started in enumerate(starts) if started <= stamp]
    return began[-1] if began else -1


def _arrived(record: AuditRecord) -> float:
    return datetime.fromisoformat(record.received).timestamp()
