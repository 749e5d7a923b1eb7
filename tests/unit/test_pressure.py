"""The reference device's load and attack mechanics (simulators._pressure): the pace, the detector, the glue."""

from __future__ import annotations

import struct
import threading
import zlib
from types import SimpleNamespace
from typing import Any

import pytest

from simulators import _pressure
from simulators._pressure import (
    GAP,
    NEW_PACE,
    Pace,
    Pressure,
    dataset_unterminated,
    leaked,
    sleep_fraction,
    unterminated_sequence,
)
from simulators.pacs import Quirks

U = 0xFFFFFFFF
SQ_TAG = 0x0040A730  # Content Sequence: SQ in the dictionary
ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PATIENT_NAME = 0x00100010


class Key:
    """An association stand-in: the pace keys its state weakly on any object."""


# --- hand-built encodings (PS3.5 7.1.2, 7.1.3, 7.5) ---


def imp(tag: int, value: bytes = b"", length: int | None = None, order: str = "<") -> bytes:
    size = len(value) if length is None else length
    return struct.pack(order + "HHI", tag >> 16, tag & 0xFFFF, size) + value


def exp(tag: int, vr: bytes, value: bytes = b"", length: int | None = None, order: str = "<") -> bytes:
    size = len(value) if length is None else length
    head = struct.pack(order + "HH", tag >> 16, tag & 0xFFFF) + vr
    if vr in (b"SQ", b"OB", b"OW", b"UN", b"UT"):
        return head + b"\0\0" + struct.pack(order + "I", size) + value
    return head + struct.pack(order + "H", size) + value


PN = imp(PATIENT_NAME, b"DOE^JANE")
TEXT = imp(0x0040A040, b"TEXT")  # Value Type
OPEN = imp(SQ_TAG, length=U) + imp(ITEM, length=U)
CLOSE = imp(ITEM_END) + imp(SEQ_END)


# --- the pace ---


def steady(
    pace: Pace, key: Any, p0: float, n: int, t: float = 0.0, oversleep: float = 0.0
) -> tuple[float, list[float]]:
    """`n` requests where the client needs `p0` after each response: handler entries `sleep + p0` apart.

    Each sleep lasts `oversleep` longer than asked, as on a busy machine.
    """
    periods = []
    for _ in range(n):
        delay = pace.delay(key, t)
        slept = 0.0
        if delay is not None:
            slept = delay.asked + oversleep if delay.asked > 0 else 0.0
            pace.settle(key, delay, slept)
        t += slept + p0
        periods.append(slept + p0)
    return t, periods


@pytest.mark.parametrize("slowdown", [0.2, 0.1, 1.0])
def test_a_steady_stream_settles_at_p0_over_one_minus_f(slowdown: float) -> None:
    pace = Pace("store", slowdown)
    _, periods = steady(pace, Key(), 0.010, 60)
    f = sleep_fraction(slowdown)
    assert periods[-1] == pytest.approx(0.010 / (1 - f), rel=0.02)
    # ... which is the client-visible slow-down asked for: 1 + x times the clean period.
    assert periods[-1] / 0.010 == pytest.approx(1 + slowdown, rel=0.02)
    assert periods[0] == 0.010  # the very first request of the process: no period known, no sleep


def test_oversleeping_is_repaid_so_the_slow_down_stays_what_was_asked() -> None:
    pace = Pace("store", 0.2)
    _, periods = steady(pace, Key(), 0.010, 400, oversleep=0.002)  # each sleep 2 ms late: 20 % of P0
    window = periods[100:]
    # Without the carry the period would settle at (P0 + 2 ms) / (1 - f) = 14.4 ms, 1.44x.
    assert sum(window) / len(window) == pytest.approx(0.012, rel=0.02)


def test_sleep_fraction_is_x_over_one_plus_x() -> None:
    assert sleep_fraction(0.2) == pytest.approx(1 / 6)
    assert sleep_fraction(0.1) == pytest.approx(1 / 11)


def test_a_gap_between_blocks_is_left_out() -> None:
    pace = Pace("find", 0.2)
    key = Key()
    t, _ = steady(pace, key, 0.010, 40)
    before = pace.delay(key, t)
    assert before is not None
    pace.settle(key, before, before.asked)
    t += before.asked + 0.010 + 10.0  # think time: 1000 x P
    after = pace.delay(key, t)
    assert after is not None and after.period == before.period and after.due == before.due


def test_long_gaps_in_a_row_are_a_new_pace() -> None:
    pace = Pace("find", 0.2)
    key = Key()
    t, _ = steady(pace, key, 0.001, 40)
    slow = 0.5  # > GAP x P: first left out, then taken as the pace
    periods = []
    for _ in range(NEW_PACE):
        t += slow
        delay = pace.delay(key, t)
        assert delay is not None
        pace.settle(key, delay, 0.0)
        periods.append(delay.period)
    assert periods[0] < GAP * 0.0013
    assert periods[-1] == pytest.approx(slow)


def test_a_new_association_starts_from_the_last_period_and_keeps_its_own() -> None:
    pace = Pace("store", 0.2)
    first, second = Key(), Key()
    t, _ = steady(pace, first, 0.010, 60)
    delay = pace.delay(second, t)  # its first request: no period of its own yet
    assert delay is not None and delay.request == 1 and delay.carried == 0.0
    assert delay.period == pytest.approx(0.012, rel=0.02)
    assert delay.due == pytest.approx(delay.period * sleep_fraction(0.2))
    # Interleaved, each association converges to its own pace.
    t_first, t_second = t, t + delay.asked + 0.050
    for _ in range(80):
        _, (p1,) = steady(pace, first, 0.010, 1, t_first)
        t_first += p1
        _, (p2,) = steady(pace, second, 0.050, 1, t_second)
        t_second += p2
    assert p1 == pytest.approx(0.012, rel=0.02) and p2 == pytest.approx(0.060, rel=0.02)


@pytest.mark.parametrize("bad", [0.0, -0.1, float("nan"), float("inf")])
def test_a_pace_needs_a_positive_slowdown(bad: float) -> None:
    with pytest.raises(ValueError, match="slowdown must be a positive number"):
        Pace("store", bad)


# --- the detector ---


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PN, None),
        (PN + OPEN + TEXT + CLOSE, None),
        (PN + OPEN + TEXT, len(PN)),  # neither item delimiter nor SDI
        (PN + OPEN + TEXT + imp(ITEM_END), len(PN)),  # the item ends, the sequence never does
        (PN + OPEN + TEXT + imp(SEQ_END), None),  # an SDI ends an open item too
        (PN + imp(SQ_TAG, length=U) + imp(ITEM, TEXT) + imp(SEQ_END), None),  # a defined-length item
        (PN + imp(SQ_TAG, length=U) + imp(ITEM, TEXT), len(PN)),
        (PN + imp(SQ_TAG, length=U) + imp(SEQ_END), None),  # empty
        # A known SQ of defined length is read inside: an unterminated one in its item is found.
        (PN + imp(SQ_TAG, imp(ITEM, OPEN + TEXT)), len(PN) + 16),
        (PN + imp(SQ_TAG, imp(ITEM, OPEN + TEXT + CLOSE)), None),
        # An unknown private tag of defined length is a value, whatever its bytes look like.
        (imp(0x00091010, OPEN + TEXT), None),
        # Any undefined length in implicit VR is a sequence (as pydicom reads it), but Pixel Data's.
        (imp(0x00091010, length=U) + imp(ITEM, length=U) + TEXT, 0),
        (imp(0x7FE00010, length=U) + imp(ITEM, OPEN), None),
        # Cut or overrunning bytes outside any sequence are not this detector's business.
        (PN + imp(PATIENT_NAME, b"XX", length=0x7FFFFFF0), None),
        (PN + b"\x10\x00", None),
        (b"", None),
    ],
    ids=[
        "flat",
        "terminated",
        "unterminated",
        "item-ended-only",
        "sdi-ends-item",
        "defined-item-terminated",
        "defined-item-unterminated",
        "empty-sequence",
        "inside-defined-sq",
        "inside-defined-sq-terminated",
        "private-value",
        "private-undefined",
        "pixel-data",
        "overrun",
        "cut-header",
        "empty",
    ],
)
def test_implicit_vr(data: bytes, expected: int | None) -> None:
    assert unterminated_sequence(data, implicit=True) == expected


@pytest.mark.parametrize("order", ["<", ">"])
def test_explicit_vr(order: str) -> None:
    little = order == "<"
    pn = exp(PATIENT_NAME, b"PN", b"DOE^JANE", order=order)
    text = exp(0x0040A040, b"CS", b"TEXT", order=order)
    opened = exp(SQ_TAG, b"SQ", length=U, order=order) + imp(ITEM, length=U, order=order)
    closed = imp(ITEM_END, order=order) + imp(SEQ_END, order=order)
    assert unterminated_sequence(pn + opened + text + closed, implicit=False, little=little) is None
    assert unterminated_sequence(pn + opened + text, implicit=False, little=little) == len(pn)
    # A defined-length SQ is read inside; an undefined-length one in its defined item must end there.
    inner = imp(ITEM, opened + text, order=order)
    assert unterminated_sequence(exp(SQ_TAG, b"SQ", inner, order=order) + pn, implicit=False, little=little) == 12 + 8


def test_explicit_vr_un_of_undefined_length_is_an_implicit_sequence() -> None:
    inside = imp(ITEM, length=U) + TEXT + imp(ITEM_END)  # implicit VR inside, PS3.5 6.2.2
    un = exp(0x00091010, b"UN", length=U) + inside
    assert unterminated_sequence(un + imp(SEQ_END), implicit=False) is None
    assert unterminated_sequence(un, implicit=False) == 0


def test_explicit_vr_encapsulated_pixel_data_is_skipped() -> None:
    fragment = imp(ITEM, OPEN + TEXT)  # compressed bytes that happen to look like an open sequence
    pixels = exp(0x7FE00010, b"OB", length=U) + imp(ITEM) + fragment + imp(SEQ_END)
    assert unterminated_sequence(pixels, implicit=False) is None
    assert unterminated_sequence(pixels[:-8], implicit=False) is None  # unterminated, but not a sequence
    # ... and what follows unterminated fragments inside a sequence item is still read.
    opened = exp(SQ_TAG, b"SQ", length=U) + imp(ITEM, length=U)
    assert unterminated_sequence(opened + pixels[:-8], implicit=False) == 0


def test_explicit_vr_an_unknown_vr_stops_the_reading() -> None:
    zz = exp(0x00100020, b"ZZ", b"PGATTACK")
    assert unterminated_sequence(zz + exp(SQ_TAG, b"SQ", length=U), implicit=False) is None


def test_five_thousand_nested_sequences_are_read_without_recursion() -> None:
    depth = 5000
    nested = OPEN * depth + TEXT + CLOSE * depth
    assert unterminated_sequence(nested, implicit=True) is None
    # The outermost one never ends: its offset; the innermost one never ends: the outermost open.
    assert unterminated_sequence(OPEN * depth + TEXT + CLOSE * (depth - 1), implicit=True) == 0
    assert unterminated_sequence(OPEN * depth + TEXT, implicit=True) == 0


def test_in_a_transfer_syntax() -> None:
    bad = PN + OPEN + TEXT
    assert dataset_unterminated(bad, "1.2.840.10008.1.2") == len(PN)  # implicit VR LE
    assert dataset_unterminated(bad + CLOSE, "1.2.840.10008.1.2") is None
    deflater = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    pn = exp(PATIENT_NAME, b"PN", b"DOE^JANE")
    explicit = pn + exp(SQ_TAG, b"SQ", length=U) + imp(ITEM, length=U) + exp(0x0040A040, b"CS", b"TEXT")
    deflated = deflater.compress(explicit) + deflater.flush()
    assert dataset_unterminated(deflated, "1.2.840.10008.1.2.1.99") == len(pn)
    assert dataset_unterminated(b"not deflate at all", "1.2.840.10008.1.2.1.99") is None


# --- the glue: what a device with each behaviour binds ---


def test_nothing_on_binds_nothing() -> None:
    pressure = Pressure(slowdowns={"store": 0.0, "find": 0.0})

    def handler(event: Any) -> int:
        return 0

    assert pressure.handlers() == [] and pressure.wrap("store", handler) is handler


def test_each_behaviour_binds_its_event() -> None:
    from pynetdicom import evt

    bound = {h[0] for h in Pressure(leak=1, crash_over=16382, hang=True).handlers()}
    assert bound == {evt.EVT_ESTABLISHED, evt.EVT_DATA_RECV, evt.EVT_REQUESTED}


def _slowed(kind: str, slowdown: float) -> tuple[Pressure, list[float], list[float]]:
    """A Pressure slowing `kind` on a fake clock that its sleeps advance: (it, the clock, the sleeps)."""
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    return Pressure(slowdowns={kind: slowdown}, clock=lambda: clock[0], sleep=sleep), clock, slept


def test_the_wrapped_handler_sleeps_f_times_p_before_answering() -> None:
    pressure, clock, slept = _slowed("store", 0.2)
    handler = pressure.wrap("store", lambda event: 0x0000)
    event = SimpleNamespace(assoc=Key())
    for _ in range(50):
        assert handler(event) == 0x0000
        clock[0] += 0.010
    assert len(slept) == 49  # the very first request of the process sleeps nothing
    assert slept[-1] == pytest.approx(sleep_fraction(0.2) * 0.012, rel=0.02)


def test_each_find_level_keeps_its_own_pace() -> None:
    """Blocks of PATIENT finds (10 ms apart) after IMAGE ones (40 ms): a shared pace would sleep 4x too long."""
    from pydicom import Dataset

    pressure, clock, slept = _slowed("find", 0.1)
    handler = pressure.wrap("find", lambda event: iter(()))
    f = sleep_fraction(0.1)
    for level, period in (("IMAGE", 0.040), ("PATIENT", 0.010), ("IMAGE", 0.040), ("PATIENT", 0.010)):
        event = SimpleNamespace(assoc=Key(), identifier=Dataset())  # a new association per block, as loadgen's
        event.identifier.QueryRetrieveLevel = level
        slept.clear()
        for _ in range(10):
            handler(event)
            clock[0] += period
        first = slept[0] if slept else 0.0
        # Each block's first request sleeps its own level's pace (within the EWMA's settling), never the other's
        assert first < 1.6 * f * period / (1 - f), (level, first)
    assert pressure._pace_of(pressure.paces["find"], SimpleNamespace(identifier=None)) is pressure.paces["find"]


def test_the_leak_keeps_filled_bytes() -> None:
    before = leaked()
    Pressure(leak=4096)._on_established(SimpleNamespace())
    assert leaked() - before == 4096
    assert _pressure._LEAKED[-1] == bytearray(b"\xa5") * 4096


def test_a_hang_holds_the_handler_and_new_associations_until_released() -> None:
    pressure = Pressure(hang=True)
    request = SimpleNamespace(DataSet=None, Identifier=SimpleNamespace(getvalue=lambda: PN + OPEN + TEXT))
    event = SimpleNamespace(request=request, context=SimpleNamespace(transfer_syntax="1.2.840.10008.1.2"))
    handler = pressure.wrap("find", lambda event: iter(()))
    hung = threading.Thread(target=handler, args=(event,), daemon=True)
    hung.start()
    hung.join(0.5)
    assert pressure.hung and hung.is_alive()
    requested = threading.Thread(target=pressure._on_requested, args=(SimpleNamespace(),), daemon=True)
    requested.start()
    requested.join(0.2)
    assert requested.is_alive()  # a new A-ASSOCIATE-RQ is not answered
    pressure.release()
    hung.join(5)
    requested.join(5)
    assert not hung.is_alive() and not requested.is_alive()


def test_a_terminated_sequence_is_served() -> None:
    pressure = Pressure(hang=True)
    request = SimpleNamespace(DataSet=SimpleNamespace(getvalue=lambda: PN + OPEN + TEXT + CLOSE), Identifier=None)
    event = SimpleNamespace(request=request, context=SimpleNamespace(transfer_syntax="1.2.840.10008.1.2"))
    assert pressure.wrap("store", lambda event: 0x0000)(event) == 0x0000 and not pressure.hung


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"crash_on_oversized_pdu": True}, "maximum_pdu_size=16382"),
        ({"store_slowdown": float("nan")}, "within 0..10"),
        ({"find_slowdown": -0.1}, "within 0..10"),
        ({"leak_per_association": -1}, "must not be negative"),
        ({"maximum_pdu_size": -1}, "must not be negative"),
    ],
)
def test_quirks_refuse_what_cannot_work(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Quirks(**kwargs)
