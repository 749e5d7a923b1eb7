"""One corpus input end to end: connect, (associate,) send, read the reaction, close, then the health check."""

from __future__ import annotations

import time
from dataclasses import dataclass

from simulators.attack import Frames, Input, Load, Message, Negotiated, NotApplicable, Send
from simulators.attack import load as L
from simulators.attack import pdu as P
from simulators.attack.health import Health, echo_health
from simulators.attack.react import Reaction, read_reaction
from simulators.attack.wire import Wire
from simulators.endpoint import JSON, Endpoint

__all__ = ["SLOW_READER_BUFFER", "Outcome", "probe", "run_input"]

SLOW_READER_BUFFER = 4096  # design 8.3: the slow reader's receive buffer (the kernel may double it)


@dataclass(frozen=True)
class Outcome:
    """What one input did: the reaction on the wire (None when not applicable), the health check after it,
    the C-ECHO during a load's hold, per-kind counts of a flood, and the seconds the whole input took."""

    input: str
    reaction: Reaction | None
    health: Health | None
    seconds: float
    skipped: str = ""
    during: Health | None = None
    counts: tuple[tuple[str, int], ...] = ()

    def to_json(self) -> dict[str, JSON]:
        return {
            "input": self.input,
            "reaction": self.reaction.to_json() if self.reaction else None,
            "health": self.health.to_json() if self.health else None,
            "during": self.during.to_json() if self.during else None,
            "counts": dict(self.counts),
            "skipped": self.skipped,
            "seconds": round(self.seconds, 3),
        }

    def line(self) -> str:
        """One line for a terminal: id, kind, when, seconds, detail, health."""
        if self.reaction is None:
            return f"{self.input:<30} n/a          {self.skipped}"
        r = self.reaction
        health = (
            "" if self.health is None else f"  | health {'ok' if self.health.ok else 'FAILED'}: {self.health.detail}"
        )
        during = "" if self.during is None else f"  | during: {self.during.detail}"
        return f"{self.input:<30} {r.kind:<9} {r.when:<9} {r.seconds:6.2f} s  {r.detail}{during}{health}"


def probe(endpoint: Endpoint, *, deadline: float = 5.0, calling: str = "PGATTACK") -> Negotiated | Reaction:
    """A valid Verification association, released: what the device negotiates (its maximum length, contexts)."""
    base = Negotiated(called=endpoint.ae_title, calling=calling)
    with Wire(endpoint.host, endpoint.port, deadline=deadline) as wire:
        got = wire.associate(P.associate_rq(base.called, base.calling))
        if isinstance(got, Negotiated):
            wire.send(P.release_rq())
            wire.read_pdu(time.monotonic() + deadline)
            return Negotiated(got.max_length, got.accepted, base.called, base.calling)
        return got


def run_input(
    item: Input,
    endpoint: Endpoint,
    *,
    negotiated: Negotiated | None = None,
    deadline: float = 8.0,
    health_timeout: float = 6.0,
    check_health: bool = True,
) -> Outcome:
    """Send `item` to the device at `endpoint` (loopback only), classify its reaction within the input's deadline
    (or `deadline`), close the connection, then check the device answers C-ECHO (`check_health`).

    `negotiated` (from `probe`) builds idle inputs for this device; associated inputs are built from
    their own association's AC. An input that cannot be built for the device is skipped, with why.
    """
    limit = item.deadline or deadline
    base = negotiated or Negotiated(called=endpoint.ae_title)
    started = time.monotonic()
    during: Health | None = None
    counts: tuple[tuple[str, int], ...] = ()
    if item.phase == "idle":
        send = item.send(base)
        if isinstance(send, NotApplicable):
            return Outcome(item.id, None, None, time.monotonic() - started, skipped=send.reason)
        if isinstance(send, Load):
            result = _idle_load(send, endpoint, limit)
            reaction, during, counts = result.reaction, result.during, result.counts
        else:
            with Wire(endpoint.host, endpoint.port, deadline=limit) as wire:
                reaction = _send(wire, send, limit, item.refusal_expected)
    else:
        buffer = SLOW_READER_BUFFER if item.id == "load.slow-reader" else None
        wire = Wire(endpoint.host, endpoint.port, deadline=limit, receive_buffer=buffer)
        try:
            got = wire.associate(item.association(base))
            if isinstance(got, Reaction):
                # The device refused a valid association: the input was not sent, but whether it still answers
                # C-ECHO is worth knowing (a device still busy with the previous input is not healthy).
                wire.close()
                checked = echo_health(endpoint, health_timeout, calling=base.calling) if check_health else None
                skipped = f"no association: {got.kind}: {got.detail}"
                return Outcome(item.id, None, checked, time.monotonic() - started, skipped=skipped)
            send = item.send(Negotiated(got.max_length, got.accepted, base.called, base.calling))
            if isinstance(send, NotApplicable):
                wire.send(P.release_rq())
                wire.read_pdu(time.monotonic() + 1.0)
                return Outcome(item.id, None, None, time.monotonic() - started, skipped=send.reason)
            if isinstance(send, Load):
                assert send.message is not None, "the slow reader carries its query"
                m = send.message
                result = L.slow_reader(
                    wire, m.command, m.data, m.pcid, fragment=m.fragment, hold=send.hold, deadline=limit, echo=endpoint
                )
                reaction, during = result.reaction, result.during
            else:
                reaction = _send(wire, send, limit, item.refusal_expected)
            wire.send(P.abort(), until=time.monotonic() + 0.2)  # free a single-association device at once
        finally:
            wire.close()  # always before the health check: storescp serves one association at a time
    checked = echo_health(endpoint, health_timeout, calling=base.calling) if check_health else None
    return Outcome(item.id, reaction, checked, time.monotonic() - started, during=during, counts=counts)


def _send(wire: Wire, send: Send, limit: float, refusal_expected: bool) -> Reaction:
    started = time.monotonic()
    if isinstance(send, Message):
        return wire.dimse(send.command, send.data, send.pcid, fragment=send.fragment, refusal_expected=refusal_expected)
    assert isinstance(send, Frames), send
    stopped = None
    for part in send.parts:
        stopped = wire.send(part, until=started + limit)
        if stopped:
            break
    if send.half_close:
        wire.half_close()
    reaction = read_reaction(
        wire, max(started + limit - time.monotonic(), 0.0), refusal_expected=refusal_expected, started=started
    )
    if stopped and reaction.kind == "silent":
        return Reaction("silent", stopped, reaction.seconds)
    return reaction


def _idle_load(send: Load, endpoint: Endpoint, limit: float) -> L.LoadResult:
    host, port = endpoint.host, endpoint.port
    if send.kind == "flood":
        return L.flood(host, port, send.rq, connections=send.connections, hold=send.hold, echo=endpoint)
    if send.kind == "idle-connections":
        return L.idle_connections(host, port, connections=send.connections, hold=send.hold, echo=endpoint)
    if send.kind == "slowloris":
        return L.slowloris(host, port, send.rq, gap=send.gap, deadline=limit, echo=endpoint)
    raise ValueError(f"unknown idle load {send.kind!r}: flood, idle-connections, slowloris")
