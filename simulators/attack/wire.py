"""Wire: a blocking DUL client on one raw loopback socket, every read and send under a deadline (design 8.2)."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import time
import warnings
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from simulators.attack import pdu as P
from simulators.attack.react import Ended, Reaction, read_reaction

__all__ = ["MAX_READ", "AttackError", "Negotiated", "Wire", "encode_command", "loopback"]

# A declared PDU length above this is not read: announcing it is the answer (design 8.2).
MAX_READ = 16 * 1024 * 1024


class AttackError(Exception):
    """The attack client was asked for something it must not do (a non-loopback address) or cannot (no socket)."""


@dataclass(frozen=True)
class Negotiated:
    """What the valid part of an exchange told us, so inputs are built for this device (design 8.1).

    `max_length` is the device's maximum P-DATA-TF variable field (0: unlimited); `accepted` the
    presentation context ids it accepted; `called` and `calling` the AE titles the RQs carry.
    """

    max_length: int = 16384
    accepted: tuple[int, ...] = (1,)
    called: str = "ANY-SCP"
    calling: str = "PGATTACK"


def loopback(host: str) -> bool:
    """True for 127.0.0.0/8 and ::1 (a name is not resolved: only a literal address is trusted)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def encode_command(command: Dataset) -> bytes:
    """The command set in implicit VR LE with (0000,0000) Command Group Length first (PS3.7 6.3.1)."""
    body = Dataset()
    for elem in command:
        if elem.tag != 0x00000000:
            body.add(elem)

    def write(ds: Dataset) -> bytes:
        fp = DicomBytesIO()
        fp.is_little_endian = True
        fp.is_implicit_VR = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # hostile UIDs are the point; pydicom may warn about them
            write_dataset(fp, ds)
        return bytes(fp.getvalue())

    rest = write(body)
    # The group length element: tag (4), length (4), UL value (4).
    return struct.pack("<HHII", 0, 0, 4, len(rest)) + rest


class Wire:
    """One TCP connection to a loopback DICOM peer, spoken to in raw PDUs; use as a context manager.

    `deadline` bounds the connect and every send; reads take their own deadline. `receive_buffer`
    sets SO_RCVBUF before connecting (the slow reader's small window).
    """

    def __init__(self, host: str, port: int, *, deadline: float, receive_buffer: int | None = None) -> None:
        if not loopback(host):
            raise AttackError(f"{host}: the attack client only talks to 127.0.0.0/8 or ::1 (hint: run it on loopback)")
        if not deadline > 0:
            raise AttackError(f"deadline {deadline!r}: must be a number of seconds > 0")
        self.host, self.port, self.deadline = host, port, deadline
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if receive_buffer is not None:
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            self._sock.settimeout(deadline)
            self._sock.connect((host, port))
        except OSError as exc:
            self._sock.close()
            raise AttackError(f"{host}:{port}: cannot connect: {exc}") from exc
        self.closed = False

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def fileno(self) -> int:
        return self._sock.fileno()

    def send(self, data: bytes, *, until: float | None = None) -> str | None:
        """Send all of `data` before `until` (default: now + deadline); None, or why it stopped (the peer's doing)."""
        limit = time.monotonic() + self.deadline if until is None else until
        view = memoryview(data)
        try:
            while view:
                left = limit - time.monotonic()
                if left <= 0:
                    return "send stalled: the device stopped reading"
                self._sock.settimeout(left)
                view = view[self._sock.send(view) :]
        except TimeoutError:
            return "send stalled: the device stopped reading"
        except OSError as exc:
            return f"send failed: {exc.strerror or exc}"
        return None

    def half_close(self) -> None:
        """Send a FIN: no more bytes from us, the peer may still answer."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)

    def _recv(self, size: int, until: float) -> bytes | Ended:
        """Exactly `size` bytes, or how the reading ended."""
        got = bytearray()
        while len(got) < size:
            left = until - time.monotonic()
            if left <= 0:
                return Ended("timeout", f"a partial PDU ({len(got)} bytes) then nothing" if got else "")
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(min(size - len(got), 1 << 20))
            except TimeoutError:
                continue
            except ConnectionResetError:
                return Ended("reset", "connection reset")
            except OSError as exc:
                return Ended("reset", f"connection error: {exc.strerror or exc}")
            if not chunk:
                return Ended("eof", f"EOF after {len(got)} bytes of a PDU" if got else "EOF")
            got += chunk
        return bytes(got)

    def read_pdu(self, until: float) -> P.Pdu | Ended:
        """The next PDU before `until` (time.monotonic()); a declared length over MAX_READ is not read."""
        header = self._recv(6, until)
        if isinstance(header, Ended):
            return header
        pdu_type, _, length = struct.unpack(">BBI", header)
        if length > MAX_READ:
            return P.Pdu(pdu_type, length, b"")
        body = self._recv(length, until)
        if isinstance(body, Ended):
            return body
        return P.Pdu(pdu_type, length, body)

    def associate(self, rq: bytes, *, refusal_expected: bool = False) -> Negotiated | Reaction:
        """Send the A-ASSOCIATE-RQ; what the AC negotiated, or the reaction when there is no AC."""
        started = time.monotonic()
        stopped = self.send(rq)
        got = self.read_pdu(time.monotonic() + self.deadline)
        if isinstance(got, P.Pdu) and got.type == P.ASSOCIATE_AC and got.complete:
            accepted = tuple(sorted(P.accepted_contexts(got.body)))
            called = got.body[4:20].decode("ascii", "replace").strip()
            calling = got.body[20:36].decode("ascii", "replace").strip()
            return Negotiated(P.maximum_length_of(got.body), accepted, called, calling)
        reaction = read_reaction(self, self.deadline, refusal_expected=refusal_expected, started=started, first=got)
        if stopped and reaction.kind == "silent":
            return Reaction("silent", stopped, reaction.seconds)
        return reaction

    def send_message(
        self, command: Dataset | bytes, data: bytes, pcid: int, *, fragment: int, until: float
    ) -> str | None:
        """Send one DIMSE message (command, then data set if any) in PDVs of `fragment` bytes, each in a P-DATA-TF
        of its own; None, or why the sending stopped (the device stopped taking bytes or closed)."""
        if fragment < 1:
            raise AttackError(f"fragment {fragment}: must be at least 1 byte")
        raw = encode_command(command) if isinstance(command, Dataset) else command
        for is_command, payload in ((True, raw), (False, data)):
            for at in range(0, len(payload), fragment):
                last = at + fragment >= len(payload)
                part = P.pdv(pcid, payload[at : at + fragment], command=is_command, last=last)
                stopped = self.send(P.p_data(part), until=until)
                if stopped:
                    return stopped
        return None

    def dimse(
        self,
        command: Dataset | bytes,
        data: bytes,
        pcid: int,
        *,
        fragment: int,
        refusal_expected: bool = False,
    ) -> Reaction:
        """Send one DIMSE message and read the reaction, all within the wire's deadline.

        `fragment` + 6 must not exceed the device's maximum length. When the device stops taking
        bytes the sending ends and its reaction is read anyway (an A-ABORT may be waiting).
        """
        started = time.monotonic()
        until = started + self.deadline
        stopped = self.send_message(command, data, pcid, fragment=fragment, until=until)
        left = max(until - time.monotonic(), 0.0)
        reaction = read_reaction(self, left, refusal_expected=refusal_expected, started=started)
        if stopped and reaction.kind == "silent":
            return Reaction("silent", stopped, reaction.seconds)
        return reaction

    def close(self) -> None:
        """Close the socket (idempotent); always before a health check, as storescp serves one association."""
        if not self.closed:
            self.closed = True
            self._sock.close()
