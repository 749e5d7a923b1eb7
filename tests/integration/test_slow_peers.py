"""Slow and garbage peers on 127.0.0.1 do not block the PACS simulator or the audit repository for anyone else."""

from __future__ import annotations

import contextlib
import random
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.model import Endpoint
from simulators.audit.repository import ArrConfig, AuditRepository
from simulators.audit.syslog import TlsSender, syslog_frame
from simulators.modality import Modality
from simulators.pacs import PacsConfig, PacsSimulator
from simulators.pki import Pki, create_pki
from tests.integration.test_arr import _xml

HOST = "127.0.0.1"
PEERS = 32
INTERVAL = 0.5  # seconds between two bytes of a slow peer
LIFETIME = 20.0  # a dripping peer stops by itself after this long, whatever the test does
ANSWERED_WITHIN = 1.0
MakePacs = Callable[..., PacsSimulator]
MakeArr = Callable[..., AuditRepository]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return create_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def make_pacs(tmp_path: Path) -> Iterator[MakePacs]:
    started: list[PacsSimulator] = []

    def make(**changes: Any) -> PacsSimulator:
        # Otherwise the defaults: they are what a run uses.
        config = PacsConfig(ae_title="PACS", port=0, storage=tmp_path / f"pacs-{len(started)}", **changes)
        sim = PacsSimulator(config).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture
def make_arr(tmp_path: Path, pki: Pki) -> Iterator[MakeArr]:
    started: list[AuditRepository] = []

    def make(**changes: Any) -> AuditRepository:
        config = ArrConfig(out=tmp_path / f"audit-{len(started)}.jsonl", ssl_context=pki.server_context(), **changes)
        arr = AuditRepository(config).start()
        started.append(arr)
        return arr

    yield make
    for arr in started:
        arr.stop()


# -- slow peers -------------------------------------------------------------------------------


def associate_rq(called: str = "PACS", calling: str = "SLOWPEER") -> bytes:
    """A well-formed A-ASSOCIATE-RQ PDU proposing Verification (PS3.8 9.3.2)."""

    def item(kind: int, body: bytes) -> bytes:
        return struct.pack(">BBH", kind, 0, len(body)) + body

    verification = item(0x30, b"1.2.840.10008.1.1") + item(0x40, b"1.2.840.10008.1.2")
    body = b"".join(
        (
            struct.pack(">HH", 1, 0),
            called.encode().ljust(16),
            calling.encode().ljust(16),
            b"\0" * 32,
            item(0x10, b"1.2.840.10008.3.1.1.1"),
            item(0x20, bytes((1, 0, 0, 0)) + verification),
            item(0x50, item(0x51, struct.pack(">I", 16384))),
        )
    )
    return struct.pack(">BBI", 0x01, 0, len(body)) + body


def client_hello(context: ssl.SSLContext) -> bytes:
    """The first flight of a TLS client (its ClientHello), as bytes to drip."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=HOST)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


class Drip:
    """Peers that send their payload one byte per INTERVAL, all from one thread; it stops by itself after LIFETIME."""

    def __init__(self) -> None:
        self._peers: list[tuple[socket.socket, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drip", daemon=True)

    def add(self, connect: Callable[[], socket.socket], payload: bytes) -> None:
        with contextlib.suppress(OSError):  # refused (e.g. inside the TLS handshake): never counted as open
            self._peers.append((connect(), payload))

    def start(self) -> Drip:
        self._thread.start()
        return self

    def _run(self) -> None:
        deadline = time.monotonic() + LIFETIME
        for step in range(int(LIFETIME / INTERVAL)):
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            for sock, payload in self._peers:
                if step < len(payload):
                    with contextlib.suppress(OSError, ValueError):  # closed by the server: its business
                        sock.send(payload[step : step + 1])
            self._stop.wait(INTERVAL)

    def open(self) -> int:
        """How many peers the server has not closed (EOF or reset)."""
        return sum(self._open(sock) for sock, _ in self._peers)

    @staticmethod
    def _open(sock: socket.socket) -> bool:
        # Reads what the server sent from the TCP socket underneath, even a TLS one's (tickets,
        # close_notify): these peers only send, and a FIN may wait behind that data.
        for _ in range(64):
            if sock.fileno() < 0:
                return False
            if not select.select([sock], [], [], 0)[0]:
                return True
            try:
                if not socket.socket.recv(sock, 65536):
                    return False
            except OSError:
                return False
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for sock, _ in self._peers:
            sock.close()


@contextlib.contextmanager
def dripping(peers: Sequence[tuple[Callable[[], socket.socket], bytes]]) -> Iterator[Drip]:
    """Connect each peer, start dripping, and stop them all on the way out."""
    drip = Drip()
    try:
        for connect, payload in peers:
            drip.add(connect, payload)
        drip.start()
        time.sleep(2 * INTERVAL)  # a few bytes each: the server is now in the middle of their requests
        yield drip
    finally:
        drip.stop()


def plain(port: int) -> Callable[[], socket.socket]:
    return lambda: socket.create_connection((HOST, port), timeout=5)


def tls(port: int, context: ssl.SSLContext) -> Callable[[], socket.socket]:
    """A TLS connection with its handshake done (the drip then goes inside the protocol above it)."""
    return lambda: context.wrap_socket(socket.create_connection((HOST, port), timeout=5), server_hostname=HOST)


def modality(pki: Pki | None = None) -> Modality:
    client = pki.client_context() if pki is not None else None
    return Modality("ECHOSCU", acse_timeout=5, dimse_timeout=5, network_timeout=5, ssl_context=client)


def timed_echo(scu: Modality, peer: Endpoint) -> float:
    """Seconds for a whole association with one C-ECHO; fails if it was not answered with success."""
    started = time.monotonic()
    result = scu.echo(peer)
    elapsed = time.monotonic() - started
    assert (result.accepted, result.status) == (True, 0x0000), result
    return elapsed


# -- the PACS simulator -----------------------------------------------------------------------


def test_echo_answered_while_slow_peers_drip_an_associate_rq(make_pacs: MakePacs) -> None:
    pacs = make_pacs()
    with dripping([(plain(pacs.port), associate_rq())] * PEERS) as drip:
        assert timed_echo(modality(), Endpoint("PACS", HOST, pacs.port)) < ANSWERED_WITHIN
        assert drip.open() == PEERS  # answered while every slow peer is still connected


def test_tls_echo_answered_while_slow_peers_drip_a_handshake_or_an_associate_rq(make_pacs: MakePacs, pki: Pki) -> None:
    pacs = make_pacs(ssl_context=pki.server_context())
    hello = client_hello(pki.client_context())
    peers = [(plain(pacs.port), hello)] * (PEERS // 2)
    peers += [(tls(pacs.port, pki.client_context()), associate_rq())] * (PEERS // 2)
    with dripping(peers) as drip:
        assert timed_echo(modality(pki), Endpoint("PACS", HOST, pacs.port, tls=True)) < ANSWERED_WITHIN
        assert drip.open() == PEERS


def test_a_garbage_burst_does_not_delay_echo(make_pacs: MakePacs) -> None:
    pacs = make_pacs()
    peer, scu = Endpoint("PACS", HOST, pacs.port), modality()
    timed_echo(scu, peer)  # warm: the first association pays for imports
    rng = random.Random(10)
    burst = [socket.create_connection((HOST, pacs.port), timeout=5) for _ in range(16)]
    try:
        for sock in burst:
            with contextlib.suppress(OSError):
                sock.sendall(rng.randbytes(4096))
        # Every echo in the next 3 s, not just the first, answered promptly.
        until = time.monotonic() + 3
        for _ in range(30):
            assert timed_echo(scu, peer) < ANSWERED_WITHIN
            if time.monotonic() > until:
                break
    finally:
        for sock in burst:
            sock.close()


def test_associate_rq_has_a_deadline_however_slowly_it_drips(make_pacs: MakePacs) -> None:
    pacs = make_pacs(acse_timeout=1.0)
    with dripping([(plain(pacs.port), associate_rq())] * 4) as drip:
        deadline = time.monotonic() + 5
        while drip.open() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert drip.open() == 0  # all closed after ~1 s (ARTIM), though each sent a byte every 0.5 s
    assert timed_echo(modality(), Endpoint("PACS", HOST, pacs.port)) < ANSWERED_WITHIN


def test_when_full_the_slow_peers_make_room(make_pacs: MakePacs) -> None:
    pacs = make_pacs(maximum_associations=4)
    with dripping([(plain(pacs.port), associate_rq())] * 8) as drip:
        assert timed_echo(modality(), Endpoint("PACS", HOST, pacs.port)) < ANSWERED_WITHIN
        assert drip.open() <= 4


# -- the audit record repository --------------------------------------------------------------


def frame_start() -> bytes:
    """The start of an octet-counted frame that will never be finished at one byte per INTERVAL."""
    return b"2000 <14>1 "


def recorded_promptly(arr: AuditRepository, pki: Pki, marker: str) -> float:
    """Seconds from connecting to the message being recorded; fails if it is not recorded (valid) in time."""
    assert arr.tls_port is not None
    started = time.monotonic()
    with TlsSender(HOST, arr.tls_port, pki.client_context(), timeout=5) as sender:
        sender.send(syslog_frame(_xml("Query", marker)))
        record = arr.wait_for(lambda r: marker in r.user_ids, ANSWERED_WITHIN)
    assert record.valid, record
    return time.monotonic() - started


def test_audit_message_recorded_while_slow_tls_peers_drip(make_arr: MakeArr, pki: Pki) -> None:
    arr = make_arr()
    assert arr.tls_port is not None
    hello = client_hello(pki.client_context())
    peers = [(plain(arr.tls_port), hello)] * (PEERS // 4)
    peers += [(tls(arr.tls_port, pki.client_context()), frame_start())] * (PEERS - PEERS // 4)
    with dripping(peers) as drip:
        assert recorded_promptly(arr, pki, "good-sender") < ANSWERED_WITHIN
        assert drip.open() == PEERS


def test_a_frame_and_a_handshake_have_deadlines_however_slowly_they_drip(make_arr: MakeArr, pki: Pki) -> None:
    arr = make_arr(handshake_timeout=1.0, frame_timeout=1.0)
    assert arr.tls_port is not None
    hello = client_hello(pki.client_context())
    peers = [(plain(arr.tls_port), hello), (tls(arr.tls_port, pki.client_context()), frame_start())]
    with dripping(peers) as drip:
        deadline = time.monotonic() + 5
        while drip.open() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert drip.open() == 0
    reasons = sorted(r.reason.split(" (")[0] for r in arr.records())
    assert reasons == ["TLS handshake timed out after 1 s", "frame not complete within 1 s"], reasons


def test_when_full_the_slow_tls_peers_make_room(make_arr: MakeArr, pki: Pki) -> None:
    arr = make_arr(max_tls_connections=4)
    assert arr.tls_port is not None
    with dripping([(tls(arr.tls_port, pki.client_context()), frame_start())] * 8) as drip:
        assert recorded_promptly(arr, pki, "good-sender") < ANSWERED_WITHIN
        assert drip.open() <= 4
