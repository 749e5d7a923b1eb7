"""Floods and slow peers (design 8.3, layer "load"): bounded connections and time, loopback only, a C-ECHO meanwhile."""

from __future__ import annotations

import select
import threading
import time
from collections import Counter
from dataclasses import dataclass

from pydicom.dataset import Dataset

from simulators.attack import pdu as P
from simulators.attack.health import Health, echo_health
from simulators.attack.react import Reaction, read_reaction
from simulators.attack.wire import AttackError, Wire, loopback
from simulators.endpoint import Endpoint

__all__ = [
    "DURING_TIMEOUT",
    "MAX_CONNECTIONS",
    "MAX_HOLD",
    "LoadResult",
    "flood",
    "idle_connections",
    "slow_reader",
    "slowloris",
]

MAX_CONNECTIONS = 64  # design 8.3: floods at most 64 connections ...
MAX_HOLD = 10.0  # ... held for seconds, never minutes
_GRACE = 0.5  # to read an answer already waiting when the hold ends
# The C-ECHO during a hold: one try, 2 s for each of connect, association and echo (a loaded 2-core machine
# needs more than 1 s); the hold lasts until it is done, so the device is held for the whole of it.
DURING_TIMEOUT = 6.0


@dataclass(frozen=True)
class LoadResult:
    """A load input's reaction (the worst over its connections), the C-ECHO during the hold, and per-kind counts."""

    reaction: Reaction
    during: Health | None
    counts: tuple[tuple[str, int], ...] = ()


class _During:
    """A C-ECHO on its own association while the load holds the device (one try, bounded by `timeout`)."""

    def __init__(self, endpoint: Endpoint | None, timeout: float) -> None:
        self.health: Health | None = None
        self._thread: threading.Thread | None = None
        if endpoint is not None:
            self._thread = threading.Thread(target=self._run, args=(endpoint, timeout), daemon=True)
            self._thread.start()
            self._timeout = timeout

    def _run(self, endpoint: Endpoint, timeout: float) -> None:
        try:
            self.health = echo_health(endpoint, timeout, tries=1, busy=False)  # how it serves others during the hold
        except Exception as exc:  # noqa: BLE001 - a failed probe is a failed health check, not a crash of the input
            self.health = Health(False, 1, f"C-ECHO failed: {exc}")

    def result(self) -> Health | None:
        if self._thread is None:
            return None
        self._thread.join(self._timeout + 2.0)
        return self.health or Health(False, 1, "C-ECHO still waiting")


def _check(connections: int, hold: float) -> None:
    if not 1 <= connections <= MAX_CONNECTIONS or not 0 < hold <= MAX_HOLD:
        raise AttackError(
            f"load of {connections} connections for {hold} s: at most {MAX_CONNECTIONS} connections for {MAX_HOLD:g} s"
        )


def _open(host: str, port: int, count: int, budget: float) -> tuple[list[Wire], int]:
    """Up to `count` connections within `budget` s; the ones that did not connect are counted, not raised."""
    if not loopback(host):
        raise AttackError(f"{host}: the attack client only talks to 127.0.0.0/8 or ::1 (hint: run it on loopback)")
    wires: list[Wire] = []
    failed = 0
    stop = time.monotonic() + budget
    for _ in range(count):
        left = stop - time.monotonic()
        if left <= 0:
            failed += 1
            continue
        try:
            wires.append(Wire(host, port, deadline=min(left, 1.0)))
        except AttackError:  # refused, or a full accept queue: the device's doing, counted
            failed += 1
    return wires, failed


def _settle(wires: list[Wire], started: float) -> list[Reaction]:
    """Each connection's reaction at the end of the hold: what it got by then, or silent."""
    ready = set(select.select(wires, [], [], 0)[0]) if wires else set()
    out = []
    for wire in wires:
        if wire in ready:
            out.append(read_reaction(wire, _GRACE, started=started))
        else:
            out.append(Reaction("silent", "no answer before the hold ended", time.monotonic() - started))
    return out


def _summary(reactions: list[Reaction], failed: int, what: str) -> tuple[Reaction, tuple[tuple[str, int], ...]]:
    """The worst reaction (first of the worst) with the counts in its detail."""
    counts: Counter[str] = Counter()
    for r in reactions:
        counts[
            "accepted"
            if r.detail.startswith("A-ASSOCIATE-AC")
            else "rejected"
            if r.detail.startswith("A-ASSOCIATE-RJ")
            else r.kind
        ] += 1
    if failed:
        counts["unconnected"] = failed
    ordered = tuple(sorted(counts.items()))
    # Buckets, not counts, in the detail: how many of 32 a busy machine lets through varies (the counts stay apart).
    total = sum(counts.values())
    text = f"{what}: " + ", ".join(f"{k} {'all' if n == total else 'some'}" for k, n in ordered)
    if not reactions:
        return Reaction("silent", text, 0.0), ordered
    worst = reactions[0]
    for r in reactions[1:]:
        worst = worst.worst(r)
    return Reaction(worst.kind, text, worst.seconds), ordered


def _finish(wires: list[Wire], abort: bool) -> None:
    for wire in wires:
        if abort:
            wire.send(P.abort(), until=time.monotonic() + 0.2)
        wire.close()


def _held(
    host: str, port: int, rq: bytes | None, connections: int, hold: float, echo: Endpoint | None, what: str
) -> LoadResult:
    """Open `connections`, send each `rq` (None: nothing), hold them `hold` s and as long as the C-ECHO during
    takes, then read what each got and close them (aborting associations that were asked for)."""
    _check(connections, hold)
    wires, failed = _open(host, port, connections, hold if rq else hold / 2)
    try:
        started = time.monotonic()
        for wire in wires:
            if rq is not None:
                wire.send(rq, until=started + hold)
        during = _During(echo, DURING_TIMEOUT)
        time.sleep(max(started + hold - time.monotonic(), 0.0))
        health = during.result()
        reactions = _settle(wires, started)
    finally:
        _finish(wires, abort=rq is not None)
    reaction, counts = _summary(reactions, failed, what)
    return LoadResult(reaction, health, counts)


def flood(
    host: str,
    port: int,
    rq: bytes,
    *,
    connections: int = 32,
    hold: float = 2.0,
    echo: Endpoint | None = None,
) -> LoadResult:
    """`connections` A-ASSOCIATE-RQs at once, held `hold` s, then aborted; counts of AC, RJ and other reactions."""
    return _held(host, port, rq, connections, hold, echo, f"{connections} A-ASSOCIATE-RQs")


def idle_connections(
    host: str,
    port: int,
    *,
    connections: int = 64,
    hold: float = 6.0,
    echo: Endpoint | None = None,
) -> LoadResult:
    """`connections` TCP connections that send nothing, held `hold` s; silent where the device let them be."""
    return _held(host, port, None, connections, hold, echo, f"{connections} idle connections")


def slowloris(
    host: str,
    port: int,
    rq: bytes,
    *,
    gap: float = 0.5,
    deadline: float = 8.0,
    echo: Endpoint | None = None,
) -> LoadResult:
    """A valid A-ASSOCIATE-RQ dripped one byte every `gap` s until the device reacts or `deadline` (at most
    MAX_HOLD) passes."""
    deadline = min(deadline, MAX_HOLD)
    with Wire(host, port, deadline=deadline) as wire:
        started = time.monotonic()
        until = started + deadline
        during = _During(echo, DURING_TIMEOUT)
        sent = 0
        reaction: Reaction | None = None
        while sent < len(rq) and time.monotonic() < until:
            stopped = wire.send(rq[sent : sent + 1], until=until)
            if stopped is None:
                sent += 1
            if stopped or select.select([wire], [], [], max(min(gap, until - time.monotonic()), 0.0))[0]:
                reaction = read_reaction(wire, max(until - time.monotonic(), _GRACE), started=started)
                break
        if reaction is None and sent == len(rq):
            reaction = read_reaction(wire, max(until - time.monotonic(), 0.0), started=started)
        if reaction is None or reaction.kind == "silent":
            reaction = Reaction(
                "silent", "dripped byte by byte, no answer before the deadline", time.monotonic() - started
            )
        health = during.result()  # before the connection closes: it holds the device until then
    return LoadResult(reaction, health, (("bytes", sent),))


def slow_reader(
    wire: Wire,
    command: Dataset | bytes,
    data: bytes,
    pcid: int,
    *,
    fragment: int,
    hold: float = 5.0,
    deadline: float = 8.0,
    echo: Endpoint | None = None,
) -> LoadResult:
    """On an association opened with a small receive buffer: send a query, read nothing for `hold` s, then read."""
    _check(1, hold)
    started = time.monotonic()
    stopped = wire.send_message(command, data, pcid, fragment=fragment, until=started + deadline)
    during = _During(echo, DURING_TIMEOUT)
    time.sleep(hold)
    health = during.result()
    reaction = read_reaction(wire, deadline, started=started)
    if stopped and reaction.kind == "silent":
        reaction = Reaction("silent", stopped, reaction.seconds)
    return LoadResult(reaction, health)
