"""The race-free reactor pause: a sender that pauses in the window after wait() keeps the reactor paused."""

from __future__ import annotations

import threading
import time

from simulators._net import ReactorCheckpoint


class _Reactor(threading.Thread):
    """Stands in for pynetdicom's Association thread: pause flag, checkpoint, one loop pass."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self._is_paused = False
        self.passed = threading.Event()

    def run(self) -> None:
        self._is_paused = True
        self._reactor_checkpoint.wait()
        self._is_paused = False
        self.passed.set()  # where pynetdicom's reactor would take a message off the queue


class _RacyCheckpoint(ReactorCheckpoint):
    """Plays the sender: pauses the reactor right after its first wait() returned, inside the window."""

    raced = False

    def _clear_in_window(self) -> None:
        if not self.raced:
            self.raced = True
            self.clear()


def test_a_sender_pausing_in_the_window_keeps_the_reactor_paused() -> None:
    reactor = _Reactor()
    checkpoint = _RacyCheckpoint(reactor)
    original = threading.Event.wait

    def wait_then_race(self: threading.Event, timeout: float | None = None) -> bool:
        result = original(self, timeout)
        if self is checkpoint and threading.current_thread() is reactor:
            checkpoint._clear_in_window()
        return result

    reactor._reactor_checkpoint = checkpoint  # type: ignore[attr-defined]
    threading.Event.wait = wait_then_race  # type: ignore[method-assign]
    try:
        reactor.start()
        time.sleep(0.2)
        # The sender saw _is_paused and owns the queue: the reactor must not have passed.
        assert checkpoint.raced
        assert not reactor.passed.is_set()
        assert reactor._is_paused
        checkpoint.set()  # the sender is done
        assert reactor.passed.wait(2)
    finally:
        threading.Event.wait = original  # type: ignore[method-assign]
        checkpoint.set()
        reactor.join(2)


def test_other_threads_and_timeouts_wait_as_usual() -> None:
    reactor = _Reactor()
    checkpoint = ReactorCheckpoint(reactor)
    checkpoint.clear()
    assert checkpoint.wait(0.01) is False
    checkpoint.set()
    assert checkpoint.wait() is True
