"""Small network helpers shared by the simulators: service UIDs, addresses, the `listening` line, free ports."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Mapping
from typing import Any

from simulators._reactor import VERSIONS as PATCHED_VERSIONS
from simulators._reactor import Checkpoint as ReactorCheckpoint
from simulators._reactor import install


def _local_abort_always_ends() -> None:
    """A local A-ABORT request in Sta2 or Sta13 closes the connection (AA-2), as pynetdicom does in Sta4.

    pynetdicom 3.0.4's state machine has no entry for them and raises in its reactor thread, which then dies
    with its socket open. An abort reaches Sta13 when a stop (AE.shutdown's, Serving.stop's) meets an
    association between its answer to the peer's release and the peer's close (a few ms, before pynetdicom
    sets is_released): seen twice in CI stop 27 (test_tls, test_reference). The peer is owed nothing more.
    """
    from pynetdicom import fsm

    for state in ("Sta2", "Sta13"):
        fsm.TRANSITION_TABLE.setdefault(("Evt15", state), "AA-2")


def _abort_settles_by_its_thread() -> None:
    """A blocking abort ends when the association's own thread has, not after pynetdicom's fixed 0.1 s sleep.

    pynetdicom 3.0.4's blocking abort sends the A-ABORT, waits for its DUL to end, shuts the socket, then
    sleeps 0.1 s "to ensure everything shuts down": that is the association's thread finishing (an acceptor's
    hands its socket back to the server). Aborted from another thread (Serving.stop, at each simulator's
    stop and each storage commitment listener's), the abort now joins that thread, for at most the same 0.1 s.

    A requestor whose connection was refused (or closed before any answer) is aborted in its own thread
    (`ACSE._negotiate_as_requestor`), which has nothing to shut down: it ends at once. A readiness poll of a
    device still starting paid the sleep at every refused attempt (0.11 s each, where the launcher's first
    pauses are 0.02-0.05 s). A TCP connect before the echo would have found the refusal at once too, but a
    stock pynetdicom SCP keeps a thread, and a slot of its maximum_associations, for a connection that sends
    nothing until its ARTIM timeout: such connections used up a scripted device's ten in CI
    (tests/integration/test_workflow_suites.py).
    """
    import pynetdicom
    from pynetdicom.association import Association

    if not pynetdicom.__version__.startswith(PATCHED_VERSIONS):  # the internals it replaces are 3.0.4's
        return
    blocking = Association._abort_blocking

    def abort_blocking(self: Any, block: bool = True) -> None:
        transport: Any = getattr(self.dul, "socket", None)
        never = transport is not None and not transport._is_connected and self.acceptor.primitive is None
        refused = self.is_requestor and never
        elsewhere = threading.current_thread() is not self
        if not (block and (refused or elsewhere)):
            blocking(self, block)
            return
        if self._sent_abort or self.is_released:
            return  # as pynetdicom: one abort only
        blocking(self, False)  # the A-ABORT primitive and EVT_ABORTED, as pynetdicom sends them
        self.kill()
        with contextlib.suppress(Exception):  # as pynetdicom: a socket that never opened may not close
            transport._shutdown_socket()
        if elsewhere and self.is_alive():
            self.join(_SETTLE)

    Association._abort_blocking = abort_blocking  # type: ignore[method-assign]


_SETTLE = 0.1  # pynetdicom's sleep after a blocking abort: now the longest it waits for the association's thread


# What an association whose connection nobody took reads as, wherever it is found (a modality, a raw negotiation).
NO_CONNECTION = "no connection (refused or unreachable)"

install()  # every process of ours that speaks DICOM imports this module before its first association
_local_abort_always_ends()
_abort_settles_by_its_thread()

__all__ = [
    "LOOPBACK",
    "NO_CONNECTION",
    "QR_MODELS",
    "VERIFICATION",
    "ReactorCheckpoint",
    "carries",
    "format_address",
    "free_port",
    "no_delay",
    "on_connection_open",
    "parse_destination",
    "parse_host_port",
    "parse_listening",
    "qr_sop_class",
    "queued_answer",
    "status_hex",
]

LOOPBACK = "127.0.0.1"
VERIFICATION = "1.2.840.10008.1.1"
# Query/Retrieve SOP classes: (information model, service) -> UID. pynetdicom builds its
# sop_class names at runtime, which mypy cannot see, so they are spelled out here.
QR_MODELS: Mapping[tuple[str, str], str] = {
    ("patient", "find"): "1.2.840.10008.5.1.4.1.2.1.1",
    ("patient", "move"): "1.2.840.10008.5.1.4.1.2.1.2",
    ("patient", "get"): "1.2.840.10008.5.1.4.1.2.1.3",
    ("study", "find"): "1.2.840.10008.5.1.4.1.2.2.1",
    ("study", "move"): "1.2.840.10008.5.1.4.1.2.2.2",
    ("study", "get"): "1.2.840.10008.5.1.4.1.2.2.3",
}


def qr_sop_class(model: str, service: str) -> str:
    """The Q/R SOP class UID for model `patient` or `study` and service find, move or get."""
    try:
        return QR_MODELS[(model, service)]
    except KeyError:
        raise ValueError(f"unknown Q/R model/service {model!r}/{service!r}; models: patient, study") from None


def parse_host_port(text: str) -> tuple[str, int]:
    """`host:port` -> (host, port); ValueError with the offending text if malformed."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port, got {text!r}")
    return host, int(port)


def format_address(host: str, port: int) -> str:
    """`host:port`, with an IPv6 host in brackets (`[::1]:104`)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_listening(line: str) -> dict[str, tuple[str, int]]:
    """The addresses a simulator printed once listening, by name; ValueError if `line` is not such a line.

    `listening dicom=127.0.0.1:11112` -> {"dicom": ("127.0.0.1", 11112)}; a `-` value (a
    listener it does not have, e.g. `tls=-`) is left out. A host in brackets loses them.
    """
    words = line.split()
    if not words or words[0] != "listening" or len(words) < 2:
        raise ValueError(f"expected 'listening NAME=HOST:PORT ...', got {line!r}")
    out: dict[str, tuple[str, int]] = {}
    for word in words[1:]:
        name, sep, value = word.partition("=")
        if not sep or not name or name in out:
            raise ValueError(f"expected NAME=HOST:PORT once per name in {line!r}, got {word!r}")
        if value == "-":
            continue
        host, port = parse_host_port(value)
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        out[name] = (host, port)
    return out


def parse_destination(text: str) -> tuple[str, tuple[str, int]]:
    """`AE=host:port` (a C-MOVE destination) -> (AE, (host, port)); ValueError if malformed."""
    ae_title, sep, rest = text.partition("=")
    ae_title = ae_title.strip()
    if not sep or not ae_title or len(ae_title) > 16:
        raise ValueError(f"expected AE=host:port with an AE title of 1-16 characters, got {text!r}")
    return ae_title, parse_host_port(rest)


def no_delay(event: Any) -> None:
    """EVT_CONN_OPEN handler: disable Nagle on the association's socket.

    pynetdicom writes a DIMSE message as several small PDUs; with Nagle on, each second
    write waits for the peer's delayed ACK (40 ms on Linux), capping a C-STORE loop at
    about 20 objects a second.
    """
    sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def on_connection_open(event: Any) -> None:
    """EVT_CONN_OPEN handler for every association the simulators make or accept."""
    no_delay(event)
    if not isinstance(
        event.assoc._reactor_checkpoint, ReactorCheckpoint
    ):  # made by pynetdicom, not simulators._reactor
        event.assoc._reactor_checkpoint = ReactorCheckpoint(event.assoc)


def free_port(host: str = LOOPBACK, kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A TCP (or, with SOCK_DGRAM, UDP) port that was free on `host` a moment ago (bind to port 0 and ask)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def status_hex(status: int | None) -> str | None:
    """A DIMSE status as `0x0000` text (how reports show it), None kept."""
    return None if status is None else f"0x{status:04X}"


def carries(assoc: Any) -> bool:
    """Whether the association can still carry a request: established, and its connection not gone.

    pynetdicom (3.0.4) notices a peer's abort in its reactor, which a requester pauses while it waits for a
    response. Requests sent back to back (a C-STORE loop) win the race against it, so `is_established` stayed
    True after the device aborted, and each later item waited the DIMSE timeout (10 s an item; minutes for a
    corpus). The DUL knows at once: Sta1 is no connection, and an abort queued for the reactor says so too.
    """
    if assoc is None or not assoc.is_established:
        return False
    return assoc.dul.state_machine.current_state != "Sta1" and not assoc.acse.is_aborted()


def queued_answer(assoc: Any) -> Any:
    """The A-ASSOCIATE answer (AC or RJ primitive) pynetdicom received but never read; None if there is none.

    pynetdicom 3.0.4 (acse._negotiate_as_requestor) checks that the socket is still connected after sending
    the request; when the peer's quick RJ arrives and its connection closes first, the association is marked
    aborted with the answer left in the DUL's queue (a few in a thousand rejections under load), and a refusal
    would read as an abort or a timeout.
    """
    from pynetdicom.pdu_primitives import A_ASSOCIATE

    for primitive in list(assoc.dul.to_user_queue.queue):
        if isinstance(primitive, A_ASSOCIATE) and primitive.result is not None:
            return primitive
    return None
