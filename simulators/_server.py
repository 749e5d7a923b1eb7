"""The simulators' DICOM server: pynetdicom's threaded server, guarded against slow and hostile peers, served and stopped."""

from __future__ import annotations

import contextlib
import gc
import logging
import socket
import socketserver
import ssl
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from pynetdicom import evt
from pynetdicom.transport import ThreadedAssociationServer

from simulators._contexts import CheapContexts

__all__ = [
    "ACSE_TIMEOUT",
    "MAX_ASSOCIATIONS",
    "MAX_REQUEST_LENGTH",
    "PYNETDICOM_LIMIT",
    "AssociationNumbers",
    "GuardedAssociationServer",
    "Serving",
    "serve",
]

_LOG = logging.getLogger("simulators.server")

# Concurrent associations served. Sixteen idle peers once exhausted sixteen; connections that sent
# no whole A-ASSOCIATE-RQ yet do not count, and make room when this many connections are open.
MAX_ASSOCIATIONS = 64
# The ARTIM deadline: a TLS handshake and an A-ASSOCIATE-RQ, complete within this of the accept.
ACSE_TIMEOUT = 5.0
# pynetdicom's own limit (AE.maximum_associations), out of the way: it also counts connections with
# no A-ASSOCIATE-RQ and closed ones still waiting out their ARTIM timer. The capacity is enforced instead.
PYNETDICOM_LIMIT = 1 << 16
# The longest PDU read before an association is accepted. A real A-ASSOCIATE-RQ (128 contexts, a dozen
# transfer syntaxes each) is under 200 KiB; pynetdicom reads any length its header declares and spends
# seconds decoding a 4 MiB one, so whether ARTIM or the answer came first depended on the machine's load.
MAX_REQUEST_LENGTH = 1 << 20


@dataclass(eq=False)
class _Peer:
    """One accepted connection, from accept() until its association thread ends."""

    sock: socket.socket
    accepted: float  # time.monotonic()
    assoc: Any = None  # its pynetdicom Association, once EVT_CONN_OPEN fired
    requested: bool = False  # its A-ASSOCIATE-RQ arrived whole


def _hang_up(sock: socket.socket) -> None:
    """Shut the TCP connection under `sock` so that a thread blocked reading it sees EOF at once.

    The base class method, also for an SSLSocket: its own shutdown() drops the TLS state
    under the thread that is reading.
    """
    with contextlib.suppress(OSError, ValueError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _capped(recv: Any, peer: _Peer) -> Any:
    """`recv` of pynetdicom's AssociationSocket, refusing a PDU over MAX_REQUEST_LENGTH until the association.

    pynetdicom reads a PDU's 6-byte header, then its whole declared length in one recv() call; an
    OSError there is its "connection closed" (Evt17), so the connection closes at once.
    """

    def guarded(nr_bytes: int) -> Any:
        if nr_bytes > MAX_REQUEST_LENGTH and not peer.requested:
            _LOG.info("a %d-byte PDU before association from %s: hung up", nr_bytes, peer.sock)
            _hang_up(peer.sock)
            raise OSError(f"a {nr_bytes}-byte PDU before association is over {MAX_REQUEST_LENGTH}")
        return recv(nr_bytes)

    return guarded


class GuardedAssociationServer(ThreadedAssociationServer):
    """pynetdicom's threaded server with per-connection deadlines and a capacity slow peers cannot exhaust.

    pynetdicom 3.0.4 reads a PDU with blocking recv() calls and checks its ARTIM timer only
    between PDUs, so a peer that drips its A-ASSOCIATE-RQ a byte at a time is never timed out;
    and it counts every connection, associated or not (and each for up to `acse_timeout`
    after it closed), against `maximum_associations`. Here (plain and TLS alike):

    - the TLS handshake runs in the connection's own thread, not in the accept loop;
    - a connection whose handshake and A-ASSOCIATE-RQ are not complete within `acse_timeout`
      of its accept (the ARTIM deadline) is hung up, however slowly it keeps sending;
    - `capacity` counts associations whose A-ASSOCIATE-RQ arrived; one over it is rejected
      (A-ASSOCIATE-RJ, local limit exceeded), as pynetdicom would;
    - when `capacity` connections are open, a new one hangs up the oldest that has not sent
      a whole A-ASSOCIATE-RQ yet, so idle peers make room for a working one;
    - a PDU longer than MAX_REQUEST_LENGTH before the association is accepted is hung up unread.
    """

    def __init__(self, *args: Any, capacity: int, **kwargs: Any) -> None:
        self.capacity = capacity
        self.request_queue_size = capacity  # the listen() backlog: a burst of connects is not held back
        super().__init__(*args, **kwargs)
        self.contexts = CheapContexts(self.contexts)
        self._peers: dict[socket.socket, _Peer] = {}
        self._lock = threading.Lock()
        self.bind(evt.EVT_CONN_OPEN, self._on_open)
        self.bind(evt.EVT_REQUESTED, self._on_requested)

    @property
    def _deadline(self) -> float:
        return float(self.ae.acse_timeout or 30.0)

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        sock, address = cast(socket.socket, self.socket).accept()
        if self.ssl_context is not None:
            sock.settimeout(self._deadline)  # per read; the watchdog holds the whole handshake to it too
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self._lock:
            self._prune()
            if len(self._peers) >= self.capacity:
                waiting = [peer for peer in self._peers.values() if not peer.requested]
                if waiting:
                    oldest = min(waiting, key=lambda peer: peer.accepted)
                    _LOG.info(
                        "full (%d connections): hung up %s, which sent no A-ASSOCIATE-RQ", self.capacity, oldest.sock
                    )
                    self._evict(oldest)
            self._peers[sock] = _Peer(sock, time.monotonic())
        return sock, address

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.do_handshake()
            except (OSError, ValueError) as exc:  # refused client certificate, protocol, cipher, deadline
                _LOG.info("TLS handshake with %s failed: %s", client_address, exc)
                self.shutdown_request(request)
                return
            request.settimeout(None)  # as a plain accepted socket: pynetdicom polls with select()
        super().process_request_thread(request, client_address)

    def service_actions(self) -> None:
        """Called by serve_forever() every poll: hang up connections past the ARTIM deadline."""
        super().service_actions()
        late = time.monotonic() - self._deadline
        with self._lock:
            self._prune()
            for peer in [p for p in self._peers.values() if not p.requested and p.accepted < late]:
                _LOG.info("no A-ASSOCIATE-RQ within %g s from %s: hung up", self._deadline, peer.sock)
                self._evict(peer)

    def hang_up_all(self) -> None:
        """Hang up every connection (stop(): pynetdicom cannot abort one that sent no A-ASSOCIATE-RQ)."""
        with self._lock:
            for peer in list(self._peers.values()):
                self._evict(peer)

    def _evict(self, peer: _Peer) -> None:
        del self._peers[peer.sock]
        _hang_up(peer.sock)

    def _prune(self) -> None:
        for peer in list(self._peers.values()):
            ended = peer.assoc is not None and peer.assoc.ident is not None and not peer.assoc.is_alive()
            if ended or peer.sock.fileno() < 0:
                del self._peers[peer.sock]

    def _on_open(self, event: Any) -> None:
        wrapper = event.assoc.dul.socket
        sock = getattr(wrapper, "socket", None)
        with self._lock:
            peer = self._peers.get(sock) if sock is not None else None
            if peer is not None:
                peer.assoc = event.assoc
        if peer is not None:
            wrapper.recv = _capped(wrapper.recv, peer)

    def _on_requested(self, event: Any) -> None:
        assoc = event.assoc
        with self._lock:
            peers = self._peers.values()
            associated = sum(1 for p in peers if p.requested and p.assoc is not assoc and p.assoc.is_alive())
            peer = next((p for p in peers if p.assoc is assoc), None)
            if peer is not None:
                peer.requested = True
        if associated >= self.capacity:
            assoc.acse.send_reject(0x02, 0x03, 0x02)  # rejected-transient, provider (presentation), local limit
            evt.trigger(assoc, evt.EVT_REJECTED, {})
            assoc.kill()


class AssociationNumbers:
    """1, 2, 3 ... per association in the order first seen: journals number by this, never by port or time."""

    def __init__(self) -> None:
        self._numbers: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()  # ended ones may go
        self._last = 0
        self._lock = threading.Lock()

    def number(self, assoc: Any) -> int:
        with self._lock:
            found = self._numbers.get(assoc)
            if found is None:
                self._last += 1
                found = self._numbers[assoc] = self._last
            return found


@dataclass
class Serving:
    """A server serving in its own thread, and the port it listens on."""

    ae: Any
    server: GuardedAssociationServer
    thread: threading.Thread
    port: int

    def stop(self) -> None:
        """Abort established associations, hang up the rest, close the port, wait for the serve loop."""
        for assoc in self.ae.active_associations:
            # Only established ones owe their peer an A-ABORT; the rest (a connection that sent no A-ASSOCIATE-RQ
            # yet, e.g. a TLS probe) are hung up below. One released meanwhile is closed (simulators._net).
            if assoc.is_established:
                assoc.abort()
        self.server.hang_up_all()  # and those it could not abort
        # The socketserver shutdown: pynetdicom's own expects start_server()'s bookkeeping.
        socketserver.BaseServer.shutdown(self.server)
        self.server.server_close()
        self.thread.join(timeout=5)


_frozen = threading.Event()


def _freeze_start_up() -> None:
    """Once per process: what the imports and set-up made lives as long as the process, so it goes out of the
    collector's sight; pynetdicom's server runs a full gc.collect() every 60th poll (3 s here) and association.
    Not on every serve(): a later call would make what is alive then (an association, say) permanent too."""
    if not _frozen.is_set():
        _frozen.set()
        gc.freeze()


def serve(
    ae: Any,
    address: tuple[str, int],
    handlers: Sequence[Any],
    *,
    capacity: int,
    name: str,
    ssl_context: ssl.SSLContext | None = None,
) -> Serving:
    """Bind `address` with `ae`'s contexts and serve in a daemon thread; returns once listening."""
    ae.maximum_associations = PYNETDICOM_LIMIT
    server = ae.make_server(
        address,
        evt_handlers=list(handlers),
        ssl_context=ssl_context,
        server_class=GuardedAssociationServer,
        capacity=capacity,
    )
    _freeze_start_up()
    # Our own serve loop: pynetdicom's polls every 0.5 s, which is what stop() would wait.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True)
    thread.start()
    return Serving(ae, server, thread, int(server.server_address[1]))
