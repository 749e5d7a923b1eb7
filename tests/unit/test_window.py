"""suites._window: a journal read until its condition holds, and never past its deadline."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from simulators import stall
from simulators.stall import STALL_LIMIT
from suites._window import quiet, wait_for


class Journal:
    """A count that grows `by` lines every `every` s, `times` times, in a thread (a device writing a journal)."""

    def __init__(self, times: int, every: float = 0.05) -> None:
        self.lines = 0
        self._thread = threading.Thread(target=self._grow, args=(times, every), daemon=True)
        self._thread.start()

    def _grow(self, times: int, every: float) -> None:
        for _ in range(times):
            time.sleep(every)
            self.lines += 1

    def read(self) -> int:
        return self.lines


def test_wait_for_returns_as_soon_as_the_condition_holds() -> None:
    journal = Journal(times=3)
    assert wait_for(journal.read, lambda n: n >= 2, timeout=30) >= 2


def test_wait_for_gives_up_at_its_deadline_with_what_it_read() -> None:
    journal = Journal(times=0)
    started = time.monotonic()
    assert wait_for(journal.read, lambda n: n > 0, timeout=0.3) == 0
    assert time.monotonic() - started < 10  # bounded: it did not wait for a line that never comes


def test_quiet_waits_until_the_device_stopped_writing() -> None:
    """Lines still coming are waited for; a count that stays put for `settle` s is the answer."""
    journal = Journal(times=5, every=0.1)
    assert quiet(journal.read, settle=0.4, timeout=30) == 5


def test_quiet_with_nothing_written_ends_at_the_timeout() -> None:
    started = time.monotonic()
    assert quiet(Journal(times=0).read, settle=0.1, timeout=0.3) == 0
    assert time.monotonic() - started < 10


def test_a_stalled_machine_does_not_cut_quiet_short(monkeypatch: pytest.MonkeyPatch) -> None:
    """A poll that oversleeps a second (a loaded machine) is not a second of quiet: the device was stalled too."""
    journal = Journal(times=0)
    journal.lines = 1  # the device's first object is in
    stalls = [1.0]

    def sleep(seconds: float) -> None:  # the first poll oversleeps, as a stalled process does
        time.sleep(seconds + (stalls.pop() if stalls else 0.0))

    def second_object() -> None:  # the stalled device's next object comes 0.2 s after the stall
        time.sleep(1.2)
        journal.lines = 2

    monkeypatch.setattr(
        stall, "time", SimpleNamespace(monotonic=time.monotonic, sleep=sleep)
    )  # quiet polls by stall.nap
    threading.Thread(target=second_object, daemon=True).start()
    assert quiet(journal.read, settle=0.5, timeout=30) == 2  # without the stall counted: 1, at 1.05 s


def test_stalls_lengthen_quiet_only_up_to_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    def sleep(seconds: float) -> None:  # every poll oversleeps 0.5 s
        time.sleep(seconds + 0.5)

    monkeypatch.setattr(
        stall, "time", SimpleNamespace(monotonic=time.monotonic, sleep=sleep)
    )  # quiet polls by stall.nap
    started = time.monotonic()
    assert quiet(Journal(times=0).read, settle=0.1, timeout=0.3) == 0
    assert time.monotonic() - started <= 0.3 + STALL_LIMIT + 0.55 + 0.5  # the bound, a last poll, and slack
