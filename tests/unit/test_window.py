"""suites._window: a journal read until its condition holds, and never past its deadline."""

from __future__ import annotations

import threading
import time

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
