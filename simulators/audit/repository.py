"""The audit record repository (ARR) simulator: receives DICOM audit messages over syslog (UDP, TLS) and records each.

Every message received, valid or not, becomes one `AuditRecord`: kept in memory and
appended as a JSON line to the output file (flushed and fsynced, so a killed run keeps
what it received). A malformed message, a failed TLS handshake, garbage framing or an
oversized frame is recorded as invalid with its reason; the misbehaving TLS connection
is closed and everything else keeps going.

Run it standalone:
    python -m simulators.audit.repository --udp-port 0 [--tls-port 0 --tls-dir PKI_DIR] --out audit.jsonl
It prints `listening udp=PORT tls=PORT` (`tls=-` without TLS) and serves until SIGTERM/SIGINT.
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
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from simulators._lifeline import stop_signals, wait_until_stopped
from simulators._net import LOOPBACK
from simulators.audit.message import MAX_MESSAGE_BYTES, AuditMessageError
from simulators.audit.record import AuditRecord, record_failure, record_message
from simulators.audit.syslog import OctetCountingDecoder
from simulators.pki import PkiError, load_pki

__all__ = ["ArrConfig", "AuditRepository", "build_parser", "main"]

_LOG = logging.getLogger("simulators.audit.repository")
_POLL = 0.25  # how often a blocked connection thread checks for stop()
_RECV = 16 * 1024


@dataclass(frozen=True, kw_only=True)
class ArrConfig:
    """Where the ARR listens, where it writes, and the limits it holds untrusted peers to."""

    out: Path  # JSON lines, appended
    host: str = LOOPBACK
    udp_port: int = 0  # 0: any free port, see AuditRepository.udp_port
    tls_port: int = 0  # used only with an ssl_context
    ssl_context: ssl.SSLContext | None = None  # None: no TLS listener
    max_message_bytes: int = MAX_MESSAGE_BYTES  # a syslog message (UDP datagram or TLS frame)
    max_tls_connections: int = 16
    idle_timeout: float = 30.0  # a TLS connection silent this long (handshake included) is closed

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        if self.max_message_bytes < 1 or self.max_tls_connections < 1 or self.idle_timeout <= 0:
            raise ValueError(
                "ArrConfig: max_message_bytes, max_tls_connections and idle_timeout must be positive, got "
                f"{self.max_message_bytes}, {self.max_tls_connections}, {self.idle_timeout}"
            )


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
        self._connections: set[threading.Thread] = set()
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
        peer = _peer(address)
        with self._connections_lock:
            crowded = len(self._connections) >= self._config.max_tls_connections
            if not crowded:
                thread = threading.Thread(target=self._connection, args=(conn, peer), name=f"arr-{peer}", daemon=True)
                self._connections.add(thread)
        if crowded:
            conn.close()
            self._invalid("tls", peer, f"refused: too many TLS connections (limit {self._config.max_tls_connections})")
            return
        thread.start()

    def _connection(self, conn: socket.socket, peer: str) -> None:
        try:
            tls = self._handshake(conn, peer)
            if tls is not None:
                with tls:
                    self._read_frames(tls, peer)
        except Exception:  # noqa: BLE001 - a bug here must not stop the ARR (logged)
            _LOG.exception("TLS connection from %s", peer)
        finally:
            conn.close()
            with self._connections_lock:
                self._connections.discard(threading.current_thread())

    def _handshake(self, conn: socket.socket, peer: str) -> ssl.SSLSocket | None:
        """The TLS socket once the handshake is done; None (and a record) if it failed or timed out."""
        assert self._config.ssl_context is not None
        deadline = time.monotonic() + self._config.idle_timeout
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
                    self._invalid("tls", peer, f"TLS handshake timed out after {self._config.idle_timeout:g} s")
                    return None
            except OSError as exc:
                _LOG.info("TLS connection from %s failed before the handshake: %s", peer, exc)
                return None
        try:
            tls = self._config.ssl_context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError) as exc:
            self._invalid("tls", peer, f"TLS handshake failed: {exc}")
            return None
        while True:
            try:
                tls.do_handshake()
                return tls
            except TimeoutError:
                if self._stopping.is_set() or time.monotonic() > deadline:
                    tls.close()
                    if not self._stopping.is_set():
                        self._invalid("tls", peer, f"TLS handshake timed out after {self._config.idle_timeout:g} s")
                    return None
            except ssl.SSLCertVerificationError as exc:
                tls.close()
                self._invalid("tls", peer, f"TLS handshake failed: {exc.reason}: {exc.verify_message}")
                return None
            except ssl.SSLError as exc:
                tls.close()
                self._invalid("tls", peer, f"TLS handshake failed: {exc.reason or exc}")
                return None
            except OSError as exc:
                tls.close()
                self._invalid("tls", peer, f"TLS handshake failed: {exc.strerror or exc}")
                return None

    def _read_frames(self, tls: ssl.SSLSocket, peer: str) -> None:
        """Octet-counted messages until EOF, a framing error, the idle timeout or stop()."""
        limit = self._config.max_message_bytes
        decoder = OctetCountingDecoder(limit)
        last = time.monotonic()
        while not self._stopping.is_set():
            try:
                data = tls.recv(_RECV)
            except TimeoutError:
                if time.monotonic() - last > self._config.idle_timeout:
                    if decoder.pending:
                        self._invalid("tls", peer, f"idle timeout inside a frame ({decoder.pending} bytes pending)")
                    _LOG.info("TLS connection from %s idle for %g s: closed", peer, self._config.idle_timeout)
                    return
                continue
            except ssl.SSLError as exc:
                self._invalid("tls", peer, f"TLS error: {exc.reason or exc}")
                return
            except OSError as exc:
                if decoder.pending:
                    self._invalid("tls", peer, f"connection lost inside a frame: {exc.strerror or exc}")
                return
            if not data:
                try:
                    decoder.eof()
                except AuditMessageError as exc:
                    self._invalid("tls", peer, exc.reason)
                return
            last = time.monotonic()
            try:
                frames = decoder.feed(data)
            except AuditMessageError as exc:
                frames, error = [], exc.reason
            else:
                error = ""
            for frame in frames:
                self._add(record_message(frame, "tls", peer, limit))
            if error:
                self._invalid("tls", peer, error)
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
    parser.add_argument("--idle-timeout", type=float, default=30.0, help="seconds before a silent TLS peer is dropped")
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
        print(f"listening udp={arr.udp_port} tls={arr.tls_port if arr.tls_port is not None else '-'}", flush=True)
        wait_until_stopped(stop, _LOG)
    finally:
        arr.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
