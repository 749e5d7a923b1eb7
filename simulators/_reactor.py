"""pynetdicom's two reactor loops woken by work instead of polling every millisecond (pynetdicom 3.0).

Each association runs two loops that sleep 1 ms between looks (`DULServiceProvider.run_reactor`,
`Association._run_reactor`): an idle association cost 13 % of a core, and a run of the demo keeps
one open nearly all the time in the suites, the device and the PACS, three runs at once on two
cores. Here each association gets a waker: whatever puts on its queues (a primitive to send, a PDU
or DIMSE message received, an event), pauses its reactor or ends its DUL kicks it; the DUL waits
in select() on its socket and the waker, the association loop on the waker's event. Each wait is
capped at `CAP`, so a wake this module does not send (a timer, a flag set elsewhere) costs at
most that, never a hang. Installed once per process by simulators._net, only for the pynetdicom
versions whose internals it was written against; any other, or PATCHGATE_REACTOR=0, keeps pynetdicom's loops.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from queue import Queue
from typing import Any

__all__ = ["CAP", "REACTOR_ENV", "VERSIONS", "Checkpoint", "install", "installed", "waker_of"]

REACTOR_ENV = "PATCHGATE_REACTOR"  # "0": pynetdicom's own loops, in every process started with it (to compare)
CAP = 0.05  # s: the longest a reactor sleeps unwoken (20 looks a second instead of 1000)
VERSIONS = ("3.0.",)  # written against pynetdicom 3.0.4's dul.py and association.py (simulators._net too)
_DUL_SLEEP = 0.001  # the two loops' own sleeps, as pynetdicom writes them: only these are replaced
_ASSOC_SLEEP = 0.001
# Association.kill looks every 10 ms (its only sleep of that length) for the DUL to reach Sta1; a released
# association's DUL gets there microseconds after it hands over the release confirmation, so one release
# in four slept 10 ms for nothing (45 of 190 kills, 0.48 s of one run's suites). It looks every 1 ms.
_KILL_POLL = 0.01
_installed = False
_lock = threading.Lock()


class _Waker:
    """Wakes one association's reactors: an event for its association loop, a socket pair for its DUL's select()."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.pending = False  # the DUL put work for the association loop: it is woken when the DUL next waits
        self.unwoken = 0  # waits that ran out their CAP: what an association's idle time costs, or a missed wake
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)

    def kick(self) -> None:
        self.event.set()
        with contextlib.suppress(OSError):  # full (a wake is pending anyway) or closed (its DUL ended)
            self._write.send(b"\0")

    def wait_for_socket(self, sock: Any) -> None:
        """The DUL's pause: until its socket has data, a kick, or CAP. First it wakes the association loop for
        what the DUL gave it since its last pause, as pynetdicom's 1 ms loop would have found it: only once
        the DUL has read what had already arrived (two PDUs in one segment are one after the other to it)."""
        if self.pending:
            self.pending = False
            self.event.set()
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return  # decrypted data select() cannot see
        watched: list[Any] = [self._read]
        if sock is not None and sock.fileno() >= 0:
            watched.append(sock)
        try:
            ready, _, _ = select.select(watched, [], [], CAP)
            self.unwoken += not ready
        except (OSError, ValueError):  # the socket closed meanwhile: the loop finds out itself
            time.sleep(_DUL_SLEEP)
        with contextlib.suppress(OSError):
            while self._read.recv(4096):
                pass

    def wait(self) -> None:
        """The association loop's pause: until a kick or CAP."""
        self.unwoken += not self.event.wait(CAP)
        self.event.clear()

    def close(self) -> None:
        self._read.close()
        self._write.close()


def waker_of(assoc: Any) -> _Waker | None:
    """The waker of `assoc` (an Association), None where this module is not installed."""
    return getattr(getattr(assoc, "dul", None), "_pg_waker", None)


class Checkpoint(threading.Event):
    """pynetdicom's reactor pause made race-free (pynetdicom 3.0.4, Association._run_reactor), and waking.

    The reactor does `_is_paused = True; checkpoint.wait(); _is_paused = False; get_msg()`,
    and a send_*() call does `checkpoint.clear(); wait until _is_paused; send; get_msg()`.
    If the sender clears the checkpoint after the reactor's wait() returned but before it
    reset `_is_paused`, both proceed and the reactor can take the response off the queue
    ("Received unexpected C-STORE service message"): the sender waits out the DIMSE
    timeout and the association is aborted. Seen here about once in a few thousand
    stores under load. This wait() re-checks the flag after clearing `_is_paused`, and
    goes back to waiting if a sender paused the reactor in that window. Clearing it wakes
    the reactor, so the sender does not wait out the reactor's pause to see it paused.

    `holding` makes `_is_paused` true while the reactor is blocked here (installed by `install`):
    pynetdicom serves a peer's N-EVENT-REPORT in a thread of its own that sets `_is_paused` to
    False when it is done, so a release() that paused the reactor just before then waited for a
    pause that had already happened, forever. A woken reactor pauses at once, which made that
    window wide enough to hang a storage commitment with its report on the same association.
    """

    def __init__(self, assoc: Any) -> None:
        super().__init__()
        self._assoc = assoc
        self.holding = False  # the reactor is blocked in wait(): paused, whatever another thread wrote meanwhile
        self.set()

    def clear(self) -> None:
        super().clear()
        waker = waker_of(self._assoc)
        if waker is not None:
            waker.kick()

    def wait(self, timeout: float | None = None) -> bool:
        assoc: Any = self._assoc
        if timeout is not None or threading.get_ident() != assoc.ident:
            return super().wait(timeout)  # not the reactor's own pause
        while True:
            self.holding = True
            try:
                super().wait()
            finally:
                self.holding = False
            assoc._is_paused = False
            if self.is_set():
                return True
            assoc._is_paused = True  # a sender paused us in the window: stay paused


def _kicking(queue: Queue[Any], waker: _Waker, dul: threading.Thread) -> None:
    put = queue.put

    def put_and_kick(item: Any, block: bool = True, timeout: float | None = None) -> None:
        put(item, block, timeout)
        if threading.current_thread() is dul:
            waker.pending = True  # the DUL is awake; the association loop hears of it when the DUL pauses
        else:
            waker.kick()

    queue.put = put_and_kick  # type: ignore[method-assign]  # put_nowait calls self.put: covered too


class _Time:
    """A module's `time`, whose sleep of `pause` s in a reactor thread of ours becomes `waiting(thread)`, and
    whose polls in `shorter` (seconds: the sleep instead) look more often."""

    def __init__(self, pause: float, waiting: Callable[[Any], bool], shorter: dict[float, float] | None = None) -> None:
        self._pause, self._waiting, self._shorter = pause, waiting, shorter or {}

    def sleep(self, seconds: float) -> None:
        if seconds != self._pause or not self._waiting(threading.current_thread()):
            time.sleep(self._shorter.get(seconds, seconds))

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def install() -> bool:
    """Patch pynetdicom in this process (once); False when its version is not one this was written for."""
    global _installed
    import pynetdicom
    from pynetdicom import association, dul

    with _lock:
        if _installed:
            return True
        if not pynetdicom.__version__.startswith(VERSIONS) or os.environ.get(REACTOR_ENV, "").strip() == "0":
            return False
        _patch(dul.DULServiceProvider, association.Association)
        setattr(dul, "time", _Time(_DUL_SLEEP, _dul_waits))  # noqa: B010  # the module global its loop sleeps with
        setattr(association, "time", _Time(_ASSOC_SLEEP, _association_waits, {_KILL_POLL: _ASSOC_SLEEP}))  # noqa: B010
        _installed = True
        return True


def installed() -> bool:
    return _installed


def _dul_waits(thread: Any) -> bool:
    waker = getattr(thread, "_pg_waker", None)
    if waker is None:
        return False
    transport = getattr(thread, "socket", None)
    waker.wait_for_socket(getattr(transport, "socket", None))
    return True


def _association_waits(thread: Any) -> bool:
    waker = waker_of(thread)
    if waker is None:
        return False
    waker.wait()
    return True


def _patch(dul_class: Any, association_class: Any) -> None:
    dul_init, dul_run, assoc_init = dul_class.__init__, dul_class.run_reactor, association_class.__init__

    def dul_init_with_waker(self: Any, assoc: Any) -> None:
        self._pg_waker = _Waker()  # first: __init__ sets _kill_thread, which kicks
        dul_init(self, assoc)
        for queue in (self.to_provider_queue, self.event_queue, self.to_user_queue):
            _kicking(queue, self._pg_waker, self)

    def dul_run_then_close(self: Any) -> None:
        try:
            dul_run(self)
        finally:
            self._pg_waker.kick()  # the association loop may be waiting for the DUL's end
            self._pg_waker.close()

    def flag(name: str) -> property:
        """A loop's stop flag that wakes the loop when set: a kill from another thread takes effect at once."""

        def get(self: Any) -> bool:
            return bool(self.__dict__.get(name, False))

        def set_(self: Any, value: bool) -> None:
            self.__dict__[name] = value
            waker = self.__dict__.get("_pg_waker") or waker_of(self)
            if value and waker is not None:
                waker.kick()

        return property(get, set_)

    def assoc_init_with_waker(self: Any, *args: Any, **kwargs: Any) -> None:
        assoc_init(self, *args, **kwargs)
        _kicking(self.dimse.msg_queue, self.dul._pg_waker, self.dul)
        self._reactor_checkpoint = Checkpoint(self)

    dul_class.__init__ = dul_init_with_waker
    dul_class.run_reactor = dul_run_then_close

    def paused(self: Any) -> bool:
        held = getattr(self.__dict__.get("_reactor_checkpoint"), "holding", False)
        return bool(held or self.__dict__.get("_pg_is_paused", False))

    def set_paused(self: Any, value: bool) -> None:
        self.__dict__["_pg_is_paused"] = value

    dul_class._kill_thread = flag("_pg_kill_thread")
    association_class._kill = flag("_pg_kill")
    association_class._is_paused = property(paused, set_paused)  # see Checkpoint: true while it holds the reactor
    association_class.__init__ = assoc_init_with_waker
