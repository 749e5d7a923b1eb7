"""The audit record repository (ARR) simulator: receives DICOM audit messages over syslog (UDP, TLS) and records each.

Every message received, valid or not, becomes one `AuditRecord`: kept in memory and
appended as a JSON line to the output file (flushed and fsynced, so a killed run keeps
what it received). A malformed message, a failed TLS handshake, garbage framing or an
oversized frame is recorded as invalid with its reason; the misbehaving TLS connection
is closed and everything else keeps going.

Run it standalone:
    python -m simulators.audit.repository --udp-port 0 [--tls-port 0 --tls-dir PKI_DIR] --out audit.jsonl
It prints `listening udp=HOST:PORT tls=HOST:PORT` (`tls=-` without TLS; simulators._net.parse_listening
reads it) and serves until SIGTERM/SIGINT.

Each TLS connection has its own thread and deadlines (handshake, whole frame, idle), so a peer
that sends slowly holds up nobody else; when the connections are all taken, the one that has
made no progress the longest is dropped to make room.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import selectors
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from simulators._lifeline import stop_signals, wait_until_stopped
from simulators._net import LOOPBACK, format_address
from simulators.audit.message import MAX_MESSAGE_BYTES, AuditMessageError
from simulators.audit.record import AuditRecord, record_failure, record_message
from simulators.audit.syslog import OctetCountingDecoder
from simulators.pki import PkiError, load_pki

__all__ = [
    "FRAME_TIMEOUT",
    "HANDSHAKE_TIMEOUT",
    "IDLE_TIMEOUT",
    "MAX_TLS_CONNECTIONS",
    "ArrConfig",
    "AuditRepository",
    "build_parser",
    "main",
]

_LOG = logging.getLogger("simulators.audit.repository")
_POLL = 0.25  # how often a blocked connection thread checks for stop() and its deadlines
_RECV = 16 * 1024
# Concurrent TLS connections. Sixteen slow peers once took all sixteen; now a new connection
# also drops, when all are taken, one that made no progress for _STALLED seconds.
MAX_TLS_CONNECTIONS = 64
HANDSHAKE_TIMEOUT = 10.0  # a TLS handshake, complete within this of the accept
FRAME_TIMEOUT = 10.0  # a syslog frame, complete within this of its first byte
IDLE_TIMEOUT = 30.0  # a connection silent this long between frames is closed
# Progress is a finished handshake or frame; a connection without any for this long may be
# dropped to make room (one inside a handshake or frame before one idle between frames).
_STALLED = 0.5


@dataclass(frozen=True, kw_only=True)
class ArrConfig:
    """Where the ARR listens, where it writes, and the limits it holds untrusted peers to."""

    out: Path  # JSON lines, appended
    host: str = LOOPBACK
    udp_port: int = 0  # 0: any free port, see AuditRepository.udp_port
    tls_port: int = 0  # used only with an ssl_context
    ssl_context: ssl.SSLContext | None = None  # None: no TLS listener
    max_message_bytes: int = MAX_MESSAGE_BYTES  # a syslog message (UDP datagram or TLS frame)
    max_tls_connections: int = MAX_TLS_CONNECTIONS
    idle_timeout: float = IDLE_TIMEOUT  # between frames; also caps the handshake deadline
    handshake_timeout: float = HANDSHAKE_TIMEOUT
    frame_timeout: float = FRAME_TIMEOUT

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        limits = (self.max_message_bytes, self.max_tls_connections)
        timeouts = (self.idle_timeout, self.handshake_timeout, self.frame_timeout)
        if min(limits) < 1 or min(timeouts) <= 0:
            raise ValueError(
                "ArrConfig: max_message_bytes, max_tls_connections, idle_timeout, handshake_timeout and "
                f"frame_timeout must be positive, got {', '.join(f'{v:g}' for v in (*limits, *timeouts))}"
            )


@dataclass(eq=False)
class _Connection:
    """One TLS connection's socket and progress, shared by its thread and the accept loop."""

    sock: socket.socket
    progress: float = field(default_factory=time.monotonic)  # when it last finished a handshake or frame
    busy: bool = True  # inside a handshake or a frame
    dropped: str = ""  # why the accept loop hung it up, if it did

    def hang_up(self, reason: str) -> None:
        """Shut the TCP connection so that its thread, blocked reading, sees EOF at once."""
        self.dropped = reason
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


def _peer(address: Any) -> str:
    try:
        return f"{address[0]}:{address[1]}"
    except (TypeError, IndexError):
        return str(address)


class AuditRepository:
    """An ARR on UDP (and TLS when configured); `start()` returns once listening, `stop()` shuts it down."""

    def __init__(self, config: ArrConfig) -> None:
        self._config = config
        self._records: list[AuditRecord] = []
        self._changed = threading.Condition()
        self._out: IO[str] | None = None
        self._udp: socket.socket | None = None
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._connections: dict[threading.Thread, _Connection] = {}
        self._connections_lock = threading.Lock()
        self._stopping = threading.Event()
        self._udp_port = config.udp_port
        self._tls_port: int | None = None

    @property
    def config(self) -> ArrConfig:
        return self._config

    @property
    def udp_port(self) -> int:
        """The UDP port (the one the OS chose if the config said 0)."""
        return self._udp_port

    @property
    def tls_port(self) -> int | None:
        """The TLS port (the one the OS chose if the config said 0); None without TLS."""
        return self._tls_port

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> AuditRepository:
        """Open the output file, bind the ports and serve in background threads; returns once listening."""
        cfg = self._config
        cfg.out.parent.mkdir(parents=True, exist_ok=True)
        self._stopping.clear()
        self._out = open(cfg.out, "a", encoding="utf-8")  # noqa: SIM115 - closed by stop()
        try:
            family, kind, proto, _, address = socket.getaddrinfo(cfg.host, cfg.udp_port, type=socket.SOCK_DGRAM)[0]
            self._udp = socket.socket(family, kind, proto)
            self._udp.bind(address)
            self._udp_port = int(self._udp.getsockname()[1])
            if cfg.ssl_context is not None:
                self._listener = socket.create_server((cfg.host, cfg.tls_port), backlog=cfg.max_tls_connections)
                self._tls_port = int(self._listener.getsockname()[1])
            self._wake_r, self._wake_w = socket.socketpair()
        except BaseException:
            self._close_sockets()
            raise
        self._thread = threading.Thread(target=self._serve, name="arr", daemon=True)
        self._thread.start()
        _LOG.info("listening on %s udp=%d tls=%s, writing %s", cfg.host, self._udp_port, self._tls_port, cfg.out)
        return self

    def stop(self) -> None:
        """Stop listening, close open TLS connections and the output file."""
        self._stopping.set()
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._connections_lock:
            connections = list(self._connections)
        for thread in connections:
            thread.join(timeout=5)
        self._close_sockets()
        if self._out is not None:
            self._out.close()
            self._out = None
            _LOG.info("stopped after %d records", len(self._records))

    def _close_sockets(self) -> None:
        for sock in (self._udp, self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._udp = self._listener = self._wake_r = self._wake_w = None

    def __enter__(self) -> AuditRepository:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what was received -------------------------------------------------------------------

    def records(self) -> list[AuditRecord]:
        """Every record so far, in arrival order."""
        with self._changed:
            return list(self._records)

    def wait_for(self, predicate: Callable[[AuditRecord], bool], timeout: float = 10.0) -> AuditRecord:
        """The first record (already received or arriving within `timeout` s) that satisfies `predicate`.

        TimeoutError otherwise, listing what was received.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            seen = 0
            while True:
                for record in self._records[seen:]:
                    if predicate(record):
                        return record
                seen = len(self._records)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            shown = "; ".join(r.summary() for r in self._records[-5:]) or "nothing"
        raise TimeoutError(
            f"no audit record matched within {timeout:g} s; {seen} received (last: {shown}); "
            "hint: is the sender pointed at this ARR's port and transport?"
        )

    def _add(self, record: AuditRecord) -> None:
        line = json.dumps(record.to_json(), sort_keys=True) + "\n"
        with self._changed:
            if self._out is not None:
                self._out.write(line)
                self._out.flush()
                os.fsync(self._out.fileno())
            self._records.append(record)
            self._changed.notify_all()
        if record.valid:
            _LOG.info("%s", record.summary())
        else:
            _LOG.warning("%s", record.summary())

    def _invalid(self, transport: str, peer: str, reason: str, size: int = 0) -> None:
        self._add(record_failure(transport, peer, reason, size))

    # -- serving -------------------------------------------------------------------------------

    def _serve(self) -> None:
        """One thread for UDP datagrams and TLS accepts; each TLS connection then gets its own thread."""
        assert self._udp is not None and self._wake_r is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._udp, selectors.EVENT_READ, self._on_datagram)
            selector.register(self._wake_r, selectors.EVENT_READ, None)
            if self._listener is not None:
                selector.register(self._listener, selectors.EVENT_READ, self._on_accept)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.data is None:
                        return
                    try:
                        key.data(key.fileobj)
                    except Exception:  # noqa: BLE001 - a bug here must not stop the ARR (logged)
                        _LOG.exception("ARR receive loop")

    def _on_datagram(self, sock: socket.socket) -> None:
        limit = self._config.max_message_bytes
        try:
            data, _, flags, address = sock.recvmsg(limit)
        except OSError as exc:  # e.g. ICMP port unreachable from an earlier send; nothing was lost
            _LOG.debug("UDP receive: %s", exc)
            return
        peer = _peer(address)
        if flags & socket.MSG_TRUNC:  # the kernel dropped what did not fit
            self._invalid("udp", peer, f"oversized (datagram over {limit} bytes)", size=len(data))
            return
        self._add(record_message(data, "udp", peer, limit))

    def _on_accept(self, listener: socket.socket) -> None:
        try:
            conn, address = listener.accept()
        except OSError as exc:
            _LOG.debug("TLS accept: %s", exc)
            return
        peer, limit = _peer(address), self._config.max_tls_connections
        with self._connections_lock:
            if len(self._connections) >= limit:
                self._make_room()
            crowded = len(self._connections) >= limit
            if not crowded:
                state = _Connection(conn)
                thread = threading.Thread(target=self._connection, args=(state, peer), name=f"arr-{peer}", daemon=True)
                self._connections[thread] = state
        if crowded:
            conn.close()
            self._invalid("tls", peer, f"refused: too many TLS connections (limit {limit})")
            return
        thread.start()

    def _make_room(self) -> None:
        """Drop the connection stalled the longest (inside a handshake or frame first); none if all progress."""
        now = time.monotonic()
        stalled = [(t, c) for t, c in self._connections.items() if now - c.progress > _STALLED]
        if stalled:
            thread, victim = min(stalled, key=lambda item: (not item[1].busy, item[1].progress))
            del self._connections[thread]
            limit = self._config.max_tls_connections
            victim.hang_up(
                f"dropped to make room: all {limit} TLS connections taken, no progress for {now - victim.progress:.1f} s"
            )

    def _connection(self, state: _Connection, peer: str) -> None:
        conn = state.sock
        try:
            tls = self._handshake(conn, peer, state)
            if tls is not None:
                state.busy, state.progress = False, time.monotonic()
                with tls:
                    self._read_frames(tls, peer, state)
        except Exception:  # noqa: BLE001 - a bug here must not stop the ARR (logged)
            _LOG.exception("TLS connection from %s", peer)
        finally:
            conn.close()
            with self._connections_lock:
                self._connections.pop(threading.current_thread(), None)
            if state.dropped:  # whatever its thread made of the EOF, this is why
                self._invalid("tls", peer, state.dropped)

    def _handshake(self, conn: socket.socket, peer: str, state: _Connection) -> ssl.SSLSocket | None:
        """The TLS socket once the handshake is done; None (and a record) if it failed or missed its deadline.

        The deadline is for the whole handshake, however slowly its bytes keep coming.
        """
        assert self._config.ssl_context is not None
        allowed = min(self._config.handshake_timeout, self._config.idle_timeout)
        deadline = time.monotonic() + allowed
        late = f"TLS handshake timed out after {allowed:g} s"
        conn.settimeout(_POLL)
        # A peer that connects and leaves without a byte (a port probe) sent no message: not recorded.
        while True:
            try:
                if not conn.recv(1, socket.MSG_PEEK):
                    _LOG.info("TLS connection from %s closed before the handshake", peer)
                    return None
                break
            except TimeoutError:
                if self._stopping.is_set():
                    return None
                if time.monotonic() > deadline:
                    self._failed(state, peer, late)
                    return None
            except OSError as exc:
                _LOG.info("TLS connection from %s failed before the handshake: %s", peer, exc)
                return None
        try:
            tls = self._config.ssl_context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError) as exc:
            self._failed(state, peer, f"TLS handshake failed: {exc}")
            return None
        while True:
            if self._stopping.is_set() or time.monotonic() > deadline:
                tls.close()
                if not self._stopping.is_set():
                    self._failed(state, peer, late)
                return None
            try:
                tls.do_handshake()
                return tls
            except TimeoutError:
                continue  # the socket timeout is _POLL: a dripping peer gets here between its bytes too
            except ssl.SSLCertVerificationError as exc:
                reason = f"TLS handshake failed: {exc.reason}: {exc.verify_message}"
            except ssl.SSLError as exc:
                reason = f"TLS handshake failed: {exc.reason or exc}"
            except OSError as exc:
                reason = f"TLS handshake failed: {exc.strerror or exc}"
            tls.close()
            self._failed(state, peer, reason)
            return None

    def _failed(self, state: _Connection, peer: str, reason: str) -> None:
        """Record a connection's failure, unless the accept loop dropped it (that is recorded instead)."""
        if not state.dropped:
            self._invalid("tls", peer, reason)

    def _read_frames(self, tls: ssl.SSLSocket, peer: str, state: _Connection) -> None:
        """Octet-counted messages until EOF, a framing error, a deadline (frame or idle) or stop()."""
        cfg = self._config
        decoder = OctetCountingDecoder(cfg.max_message_bytes)
        started: float | None = None  # when the frame being received began
        while not self._stopping.is_set():
            try:
                data = tls.recv(_RECV)
            except TimeoutError:
                data = None
            except ssl.SSLError as exc:
                self._failed(state, peer, f"TLS error: {exc.reason or exc}")
                return
            except OSError as exc:
                if decoder.inside_frame:
                    self._failed(state, peer, f"connection lost inside a frame: {exc.strerror or exc}")
                return
            now = time.monotonic()
            if data is None:
                if started is None and now - state.progress > cfg.idle_timeout:
                    _LOG.info("TLS connection from %s idle for %g s: closed", peer, cfg.idle_timeout)
                    return
            elif not data:
                try:
                    decoder.eof()
                except AuditMessageError as exc:
                    self._failed(state, peer, exc.reason)
                return
            else:
                try:
                    frames, error = decoder.feed(data), ""
                except AuditMessageError as exc:
                    frames, error = [], exc.reason
                for frame in frames:
                    self._add(record_message(frame, "tls", peer, cfg.max_message_bytes))
                if frames:
                    state.progress = now
                if error:
                    self._failed(state, peer, error)
                    return
                if not decoder.inside_frame:
                    started = None
                elif started is None or frames:  # a frame began in this read
                    started = now
                state.busy = decoder.inside_frame
            if started is not None and now - started > cfg.frame_timeout:
                self._failed(
                    state,
                    peer,
                    f"frame not complete within {cfg.frame_timeout:g} s ({decoder.pending} bytes received)",
                )
                return


# -- command line ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.audit.repository",
        description="Run the audit record repository simulator until SIGTERM/SIGINT.",
    )
    parser.add_argument("--host", default=LOOPBACK, help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--udp-port", type=int, required=True, help="syslog UDP port, RFC 5426 (0: any free port)")
    parser.add_argument("--tls-port", type=int, help="syslog TLS port, RFC 5425 (0: any free port); needs --tls-dir")
    parser.add_argument("--tls-dir", type=Path, help="a simulators.pki directory with the server credential")
    parser.add_argument("--optional-client-cert", action="store_true", help="accept TLS clients without a certificate")
    parser.add_argument("--out", type=Path, required=True, help="JSON lines file the records are appended to")
    parser.add_argument(
        "--max-message-bytes", type=int, default=MAX_MESSAGE_BYTES, help="largest syslog message accepted"
    )
    parser.add_argument(
        "--idle-timeout", type=float, default=IDLE_TIMEOUT, help="seconds a TLS peer may be silent between frames"
    )
    parser.add_argument(
        "--handshake-timeout", type=float, default=HANDSHAKE_TIMEOUT, help="seconds for a whole TLS handshake"
    )
    parser.add_argument("--frame-timeout", type=float, default=FRAME_TIMEOUT, help="seconds for a whole syslog frame")
    parser.add_argument(
        "--max-tls-connections",
        type=int,
        default=MAX_TLS_CONNECTIONS,
        help="concurrent TLS connections; when all are taken a stalled one makes room",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    context: ssl.SSLContext | None = None
    if args.tls_port is not None:
        if args.tls_dir is None:
            parser.error("--tls-port needs --tls-dir (a directory made by `python -m simulators.pki DIR`)")
        try:
            context = load_pki(args.tls_dir).server_context(require_client_cert=not args.optional_client_cert)
        except (PkiError, OSError, ssl.SSLError) as exc:
            parser.error(f"--tls-dir {args.tls_dir}: {exc}")
    try:
        config = ArrConfig(
            out=args.out,
            host=args.host,
            udp_port=args.udp_port,
            tls_port=args.tls_port or 0,
            ssl_context=context,
            max_message_bytes=args.max_message_bytes,
            idle_timeout=args.idle_timeout,
            handshake_timeout=args.handshake_timeout,
            frame_timeout=args.frame_timeout,
            max_tls_connections=args.max_tls_connections,
        )
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = stop_signals()
    try:
        arr = AuditRepository(config).start()
    except OSError as exc:
        print(f"simulators.audit.repository: cannot listen on {args.host}: {exc}", file=sys.stderr)
        return 1
    try:
        tls = format_address(args.host, arr.tls_port) if arr.tls_port is not None else "-"
        # For whoever started it with port 0: parse_listening() reads this line.
        print(f"listening udp={format_address(args.host, arr.udp_port)} tls={tls}", flush=True)
        wait_until_stopped(stop, _LOG)
    finally:
        arr.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
