"""The reference device's load and attack behaviours (issue 12): slow-downs, a leak, a crash on oversized PDUs, a hang.

Each is a `Quirks` field of simulators.pacs, off by default; `Pressure` turns the ones that are on
into pynetdicom handlers, so a device with none of them binds nothing new and runs as before.

- **Slow-down** (`Pace`): the device sleeps before its response for f x P, P an exponentially
  weighted mean (ALPHA) of the period between consecutive requests of that kind on the
  association (for C-FIND, of that query level), measured at the handler's entry. The period includes the sleep, so it settles
  where P = P0 + f P, i.e. P = P0 / (1 - f): for a client-visible slow-down x, f = x / (1 + x),
  whatever the machine's speed. Gaps over GAP x P (think time between blocks) are left out; an
  association's first request uses the last P of that kind (none before the very first). What a
  sleep overran (a busy machine wakes the thread late) is repaid by the next sleeps.
- **Leak**: every association established keeps `n` bytes, filled so its pages count as resident.
- **Crash on an oversized PDU**: a P-DATA-TF whose variable field is longer than the Maximum Length
  the device announced (PS3.8 9.3.5; PS3.7 D.3.3.1) ends the process with EXIT_CODE, before decoding.
- **Hang**: a C-STORE data set or C-FIND identifier holding an undefined-length sequence with no
  Sequence Delimitation Item (PS3.5 7.5.2) makes its handler stop for good, and from then on no
  A-ASSOCIATE-RQ is answered: the device still runs and serves no one, until it is stopped.
"""

from __future__ import annotations

import logging
import math
import os
import struct
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from pydicom.datadict import dictionary_VR
from pydicom.uid import UID
from pynetdicom import evt

__all__ = [
    "ALPHA",
    "EXIT_CODE",
    "GAP",
    "NEW_PACE",
    "Delay",
    "Pace",
    "Pressure",
    "dataset_unterminated",
    "leaked",
    "sleep_fraction",
    "unterminated_sequence",
]

_LOG = logging.getLogger("simulators.pressure")

ALPHA = 0.2  # weight of the newest period in the mean
GAP = 5.0  # a period over GAP x P is think time (between blocks, between cases), not the pace
NEW_PACE = 3  # this many such gaps in a row are the pace itself changing: start over from the latest
EXIT_CODE = 70  # EX_SOFTWARE, as crash_on_find exits
INFLATE_LIMIT = 64 << 20  # a deflated data set is inspected up to this many inflated bytes (no zip bomb)

# Every association ever established keeps its bytes here: a leak is memory nobody frees.
_LEAKED: list[bytearray] = []
_LEAKED_LOCK = threading.Lock()


def sleep_fraction(slowdown: float) -> float:
    """f, the share of the period to sleep, for a client-visible slow-down x (0.2: 1.2x as slow): x / (1 + x)."""
    return slowdown / (1.0 + slowdown)


def leaked() -> int:
    """Bytes this process has leaked so far (every association's share)."""
    with _LEAKED_LOCK:
        return sum(len(b) for b in _LEAKED)


@dataclass
class _Stream:
    """One association's requests of one kind: when the last arrived, the mean period, what it still owes."""

    previous: float
    period: float | None
    long_gaps: int = 0
    owed: float = 0.0  # the last sleep's shortfall (negative: it overslept, and the next sleeps repay it)
    requests: int = 0


@dataclass(frozen=True)
class Delay:
    """What one request owes: f x P (`due`) plus what the association's earlier sleeps left (`carried`)."""

    due: float
    carried: float
    period: float
    request: int  # 1, 2, 3 ... on its association

    @property
    def asked(self) -> float:
        """Seconds to sleep now: never negative; an oversleep is repaid by shorter (or no) sleeps after it."""
        return max(0.0, self.due + self.carried)


class Pace:
    """The slow-down controller of one kind of request ("store", "find"): `delay(key, now)`, then `settle`.

    Thread-safe: each association calls it from its own thread. `key` is the association (held
    weakly, so ended associations leave); `now` any monotonic clock in seconds. A sleep takes
    longer than asked on a busy machine (the thread waits to be scheduled again), so what was
    slept is settled and the difference carried to the association's next request: on average
    it sleeps f x P, not f x P plus the scheduler's delay.
    """

    def __init__(self, kind: str, slowdown: float) -> None:
        if not (math.isfinite(slowdown) and slowdown > 0):
            raise ValueError(f"Pace {kind!r}: slowdown must be a positive number, got {slowdown!r}")
        self.kind = kind
        self.slowdown = slowdown
        self.fraction = sleep_fraction(slowdown)
        self._streams: weakref.WeakKeyDictionary[Any, _Stream] = weakref.WeakKeyDictionary()
        self._last: float | None = None  # the last P of this kind on any association
        self._lock = threading.Lock()

    def delay(self, key: Any, now: float) -> Delay | None:
        """Record a request arriving at `now` on `key`; what it owes, None while no period is known."""
        with self._lock:
            stream = self._streams.get(key)
            if stream is None:
                stream = self._streams[key] = _Stream(previous=now, period=self._last)
            else:
                gap, stream.previous = now - stream.previous, now
                if stream.period is None:
                    stream.period = gap
                elif gap > GAP * stream.period:
                    stream.long_gaps += 1
                    if stream.long_gaps >= NEW_PACE:  # not think time: requests now come this slowly
                        stream.period, stream.long_gaps = gap, 0
                else:
                    stream.long_gaps = 0
                    stream.period += ALPHA * (gap - stream.period)
                self._last = stream.period
            stream.requests += 1
            if stream.period is None:
                return None
            return Delay(self.fraction * stream.period, stream.owed, stream.period, stream.requests)

    def settle(self, key: Any, delay: Delay, slept: float) -> None:
        """`slept` seconds were spent for `delay`: carry the difference to the association's next request."""
        with self._lock:
            stream = self._streams.get(key)
            if stream is not None:
                stream.owed = delay.due + delay.carried - slept


# --- unterminated undefined-length sequences, found on the raw bytes (PS3.5 7.1, 7.5) ---

_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQUENCE_END = 0xE000, 0xE00D, 0xE0DD  # elements of group FFFE
_PIXEL_DATA = 0x7FE00010
# PS3.5 Table 7.1-1: explicit VRs with 2 reserved bytes and a 4-byte length.
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
_SHORT_VRS = frozenset(
    {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"PN", b"SH", b"SL", b"SS"}
    | {b"ST", b"TM", b"UI", b"UL", b"US"}
)
_ROOT, _SEQUENCE, _ITEM_FRAME, _FRAGMENTS = "root", "sequence", "item", "fragments"


class _Frame(NamedTuple):
    """A container being read: the data set, a sequence, an item, or encapsulated fragments (a tuple: made per element)."""

    kind: str
    start: int  # offset of its header
    end: int | None  # offset past its value when its length is defined; None: undefined, a delimiter ends it
    limit: int  # where the innermost container of defined length (or the bytes) ends
    implicit: bool


@lru_cache(maxsize=4096)
def _is_sequence(tag: int) -> bool:
    try:
        return dictionary_VR(tag) == "SQ"
    except KeyError:  # private or unknown: an implicit VR reader cannot know, and need not look inside
        return False


def unterminated_sequence(data: bytes, *, implicit: bool, little: bool = True) -> int | None:
    """The offset of an undefined-length sequence that no Sequence Delimitation Item ends, or None.

    Reads element headers only, skipping values, with an explicit stack (no recursion: 5,000 nested
    sequences are 5,000 list entries) and at least 8 bytes consumed per step, so it ends within
    len(data) / 8 steps. A sequence is an element with VR SQ, or UN of undefined length (read as
    implicit VR inside, PS3.5 6.2.2) in explicit VR; in implicit VR a known SQ tag, or any undefined
    length but Pixel Data's (as pydicom reads it). It is unterminated when the bytes, or the
    defined-length item around it, end before its (FFFE,E0DD). An SDI met inside an open
    undefined-length item ends the item too: missing item delimiters alone do not count.
    Encapsulated Pixel Data is skipped, never read as elements; bytes that cannot be elements (a cut
    header, an unknown VR) end the reading of their container.
    """
    order = "<" if little else ">"
    header = struct.Struct(order + "HHI")
    size = len(data)
    stack = [_Frame(_ROOT, 0, size, size, implicit)]
    pos = 0
    while True:
        top = stack[-1]
        if pos >= top.limit:
            if top.end is None:  # its container (or the bytes) ended first
                opened = _open_sequence(stack)
                if opened is not None:
                    return opened
                while stack[-1].end is None:  # only unterminated fragments: not a sequence, read on
                    stack.pop()
            elif top.kind == _ROOT:
                return None
            else:
                stack.pop()
            continue
        if pos + 8 > top.limit:  # not even an element header left in this container
            pos = top.limit
            continue
        group, element, length = header.unpack_from(data, pos)
        if group == 0xFFFE:  # item and delimiters: no VR in either encoding (PS3.5 7.5)
            pos += 8
            if element == _ITEM and top.kind == _SEQUENCE:
                end = None if length == _UNDEFINED else pos + length
                stack.append(
                    _Frame(_ITEM_FRAME, pos - 8, end, top.limit if end is None else min(end, top.limit), top.implicit)
                )
            elif element == _ITEM and top.kind == _FRAGMENTS and length != _UNDEFINED:
                pos += length  # a fragment: compressed bytes, never elements
            elif element == _ITEM_END and top.kind == _ITEM_FRAME and top.end is None:
                stack.pop()
            elif element == _SEQUENCE_END:
                _close_sequence(stack)
            continue
        start = pos
        if top.implicit:
            pos += 8
            if length == _UNDEFINED and group << 16 | element == _PIXEL_DATA:
                kind = _FRAGMENTS
            elif length == _UNDEFINED or _is_sequence(group << 16 | element):
                kind = _SEQUENCE
            else:
                pos += length
                continue
            inner = True
        else:
            vr = data[pos + 4 : pos + 6]
            if vr in _LONG_VRS:
                if pos + 12 > top.limit:
                    pos = top.limit
                    continue
                (length,) = struct.unpack_from(order + "I", data, pos + 8)
                pos += 12
            elif vr in _SHORT_VRS:
                (length,) = struct.unpack_from(order + "H", data, pos + 6)
                pos += 8
            else:  # an unknown VR: where its value ends is anyone's guess
                pos = top.limit
                continue
            if vr == b"SQ" or (vr == b"UN" and length == _UNDEFINED):
                kind = _SEQUENCE
            elif length == _UNDEFINED:
                kind = _FRAGMENTS  # encapsulated Pixel Data (PS3.5 A.4)
            else:
                pos += length
                continue
            inner = vr == b"UN"
        end = None if length == _UNDEFINED else pos + length
        stack.append(_Frame(kind, start, end, top.limit if end is None else min(end, top.limit), inner))


def _close_sequence(stack: list[_Frame]) -> None:
    """An SDI: it ends the innermost undefined-length sequence, and any undefined-length item open inside it."""
    for i in range(len(stack) - 1, 0, -1):
        frame = stack[i]
        if frame.end is not None:
            return  # a defined-length container is in between: the SDI is not this level's
        if frame.kind in (_SEQUENCE, _FRAGMENTS):
            del stack[i:]
            return


def _open_sequence(stack: list[_Frame]) -> int | None:
    """The header offset of the outermost undefined-length sequence among the open frames on top, if any."""
    found = None
    for frame in reversed(stack):
        if frame.end is not None:
            break
        if frame.kind == _SEQUENCE:
            found = frame.start
    return found


def dataset_unterminated(raw: bytes, transfer_syntax: str) -> int | None:
    """`unterminated_sequence` of a DIMSE data set in its transfer syntax (deflated ones inflated first, bounded)."""
    uid = UID(transfer_syntax)
    if uid.is_deflated:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            raw = inflater.decompress(raw, INFLATE_LIMIT)
        except zlib.error:
            return None  # not deflate: not a data set this detector can read
        if inflater.unconsumed_tail:
            return None  # larger than the bound: not judged
    implicit = uid.is_implicit_VR if uid.is_transfer_syntax else True
    little = uid.is_little_endian if uid.is_transfer_syntax else True
    return unterminated_sequence(raw, implicit=implicit, little=little)


# --- the device's side ---


class Pressure:
    """The behaviours a device's quirks switch on, as pynetdicom handlers; nothing is bound for those that are off.

    `slowdowns`: kind ("store", "find") -> client-visible slow-down (0: none). `leak`: bytes kept per
    association. `crash_over`: the Maximum Length the device announced, past which a P-DATA-TF
    ends it (0: never). `hang`: stop serving on an unterminated sequence.
    """

    def __init__(
        self,
        *,
        slowdowns: Mapping[str, float] | None = None,
        leak: int = 0,
        crash_over: int = 0,
        hang: bool = False,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if leak < 0 or crash_over < 0:
            raise ValueError(f"Pressure: leak and crash_over must not be negative, got {leak}, {crash_over}")
        self.paces = {kind: Pace(kind, x) for kind, x in (slowdowns or {}).items() if x}
        self.leak = leak
        self.crash_over = crash_over
        self.hang = hang
        self._clock = clock or time.monotonic
        self._sleep = sleep or time.sleep
        self._hung = threading.Event()  # a bad data set arrived: no one is served from now on
        self._released = threading.Event()  # stop(): let the hung threads go, so the process can end
        self._levels: dict[str, Pace] = {}  # C-FIND's paces by query level
        self._levels_lock = threading.Lock()

    @property
    def hung(self) -> bool:
        return self._hung.is_set()

    def handlers(self) -> list[Any]:
        """The notification handlers to bind (none when every behaviour is off)."""
        out: list[Any] = []
        if self.leak:
            out.append((evt.EVT_ESTABLISHED, self._on_established))
        if self.crash_over:
            out.append((evt.EVT_DATA_RECV, self._on_data))
        if self.hang:
            out.append((evt.EVT_REQUESTED, self._on_requested))
        return out

    def wrap(self, kind: str, handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """`handler` ("store": EVT_C_STORE, "find": EVT_C_FIND) with the hang and the slow-down in front; as is if neither."""
        pace = self.paces.get(kind)
        if pace is None and not self.hang:
            return handler

        def guarded(event: Any) -> Any:
            now = self._clock()
            if self.hang:
                self._hang_if_unterminated(kind, event)
            if pace is not None:
                self._slow(self._pace_of(pace, event), event.assoc, now)
            return handler(event)  # for C-FIND the generator, whose answers follow the sleep

        return guarded

    def _pace_of(self, pace: Pace, event: Any) -> Pace:
        """C-FIND keeps a pace per query level: a PATIENT find after IMAGE ones would sleep an IMAGE period."""
        if pace.kind != "find":
            return pace
        try:
            level = str(event.identifier.get("QueryRetrieveLevel", "")).strip().upper()
        except Exception:  # noqa: BLE001 - pydicom raises many kinds on bad bytes; the handler answers those
            return pace
        key = f"find.{level.lower()}" if level else "find"  # as the metric ids: find.study
        with self._levels_lock:
            found = self._levels.get(key)
            if found is None:
                found = self._levels[key] = pace if key == "find" else Pace(key, pace.slowdown)
            return found

    def release(self) -> None:
        """Let hung handlers return (the device is being stopped): a hung device still ends on SIGTERM."""
        self._released.set()

    def _slow(self, pace: Pace, assoc: Any, now: float) -> None:
        delay = pace.delay(assoc, now)
        if delay is None:
            return
        asked = delay.asked
        slept = 0.0
        if asked > 0:
            began = self._clock()
            self._sleep(asked)
            slept = self._clock() - began
        pace.settle(assoc, delay, slept)
        # One line per request, and only on a slowed device: what its log and a test can check.
        _LOG.info(
            "%s slow-down: slept %.6f s, asked %.6f s = %.4f x period %.6f s + carried %.6f s (request %d)",
            pace.kind,
            slept,
            asked,
            pace.fraction,
            delay.period,
            delay.carried,
            delay.request,
        )

    def _on_established(self, event: Any) -> None:
        chunk = bytearray(b"\xa5") * self.leak  # filled, so every page is touched and counts in rss
        with _LEAKED_LOCK:
            _LEAKED.append(chunk)
            total = sum(len(b) for b in _LEAKED)
        _LOG.info("leak: %d bytes kept for this association, %d in all", self.leak, total)

    def _on_data(self, event: Any) -> None:
        data = event.data
        # PS3.7 D.3.3.1: the maximum length bounds the variable field of P-DATA-TF PDUs (type 0x04) only, so
        # an A-ASSOCIATE-RQ of any size never trips it; the PDU header (type, reserved, length) is 6 bytes.
        if data[:1] == b"\x04" and len(data) - 6 > self.crash_over:
            _LOG.error(
                "crash_on_oversized_pdu: a P-DATA-TF of %d bytes over the announced maximum %d: exiting",
                len(data) - 6,
                self.crash_over,
            )
            os._exit(EXIT_CODE)  # no cleanup, no release: what a crashing device looks like

    def _on_requested(self, event: Any) -> None:
        if self._hung.is_set():
            self._released.wait()  # the A-ASSOCIATE-RQ is never answered

    def _hang_if_unterminated(self, kind: str, event: Any) -> None:
        raw = event.request.DataSet if kind == "store" else event.request.Identifier
        if raw is None:
            return
        offset = dataset_unterminated(raw.getvalue(), str(event.context.transfer_syntax))
        if offset is None:
            return
        self._hung.set()
        _LOG.error(
            "hang_on_unterminated_sequence: the C-%s data set's sequence at byte %d has no delimiter: "
            "serving no one from now on",
            kind.upper(),
            offset,
        )
        self._released.wait()
