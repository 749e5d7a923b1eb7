"""Syslog for audit messages: RFC 5424 messages, one per UDP datagram (RFC 5426) or octet-counted over TLS (RFC 5425)."""

from __future__ import annotations

import codecs
import os
import re
import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime

from simulators.audit.message import MAX_MESSAGE_BYTES, AuditMessageError

__all__ = [
    "OctetCountingDecoder",
    "SyslogHeader",
    "TlsSender",
    "octet_frame",
    "parse_syslog",
    "send_udp",
    "syslog_frame",
]

_BOM = codecs.BOM_UTF8  # RFC 5424 section 6.4: a UTF-8 MSG starts with it


@dataclass(frozen=True)
class SyslogHeader:
    """The RFC 5424 HEADER and STRUCTURED-DATA of a syslog message ("-" is a nil value)."""

    facility: int
    severity: int
    version: int
    timestamp: str
    hostname: str
    app_name: str
    procid: str
    msgid: str
    structured_data: str = "-"


_PRI_VERSION = re.compile(rb"<(\d{1,3})>(\d{1,3}) ")
_PRINTUSASCII = re.compile(rb"[!-~]+")
_RFC3339 = re.compile(rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})")
# Field name -> maximum length (RFC 5424 section 6).
_FIELDS = (("TIMESTAMP", 32), ("HOSTNAME", 255), ("APP-NAME", 48), ("PROCID", 128), ("MSGID", 32))


def _syslog_error(detail: str) -> AuditMessageError:
    return AuditMessageError(f"malformed syslog header: {detail}")


def _check_field(name: str, value: str, limit: int) -> str:
    raw = value.encode("ascii", "replace")
    if not raw or len(raw) > limit or not _PRINTUSASCII.fullmatch(raw):
        raise ValueError(f"syslog {name} {value!r} must be 1-{limit} printable US-ASCII characters, no spaces")
    return value


def syslog_frame(
    xml: bytes,
    *,
    app_name: str = "patchgate",
    hostname: str = "localhost",
    msgid: str = "DICOM+RFC3881",
    facility: int = 10,
    severity: int = 5,
    procid: str | None = None,
    when: datetime | None = None,
) -> bytes:
    """An RFC 5424 message carrying `xml` as MSG (UTF-8, with the BOM RFC 5424 section 6.4 asks for)."""
    if not (0 <= facility <= 23 and 0 <= severity <= 7):
        raise ValueError(f"syslog facility {facility} / severity {severity} out of range (0-23 / 0-7)")
    stamp = datetime.now(UTC) if when is None else when
    if stamp.tzinfo is None:
        raise ValueError("syslog time must be timezone-aware")
    ts = stamp.isoformat(timespec="microseconds").replace("+00:00", "Z")
    header = " ".join(
        (
            f"<{facility * 8 + severity}>1",
            ts,
            _check_field("HOSTNAME", hostname, 255),
            _check_field("APP-NAME", app_name, 48),
            _check_field("PROCID", str(os.getpid()) if procid is None else procid, 128),
            _check_field("MSGID", msgid, 32),
            "-",
        )
    )
    return header.encode("ascii") + b" " + _BOM + xml


def _structured_data(data: bytes, pos: int) -> int:
    """The end of the STRUCTURED-DATA starting at `pos`: "-" or SD-ELEMENTs with their quoted, escaped values."""
    if data[pos : pos + 1] == b"-":
        return pos + 1
    if data[pos : pos + 1] != b"[":
        raise _syslog_error("STRUCTURED-DATA missing (expected '-' or '[')")
    while data[pos : pos + 1] == b"[":
        pos += 1
        quoted = False
        while True:
            if pos >= len(data):
                raise _syslog_error("unterminated STRUCTURED-DATA element")
            byte = data[pos]
            if quoted and byte == 0x5C:  # backslash escapes the next character inside a value
                pos += 2
                continue
            if byte == 0x22:
                quoted = not quoted
            elif byte == 0x5D and not quoted:
                pos += 1
                break
            pos += 1
    return pos


def parse_syslog(data: bytes) -> tuple[SyslogHeader, bytes]:
    """Split an RFC 5424 message into its header and MSG (BOM removed); AuditMessageError if the header is malformed."""
    match = _PRI_VERSION.match(data)
    if match is None:
        raise _syslog_error(f"does not start with <PRI>VERSION (got {data[:16]!r})")
    pri, version = int(match.group(1)), int(match.group(2))
    if pri > 191:
        raise _syslog_error(f"PRI {pri} out of range 0-191")
    if version != 1:
        raise _syslog_error(f"VERSION {version} is not 1 (RFC 5424)")
    pos = match.end()
    values: list[str] = []
    for name, limit in _FIELDS:
        end = data.find(b" ", pos, pos + limit + 1)
        token = data[pos:end] if end >= 0 else b""
        if not token or not _PRINTUSASCII.fullmatch(token):
            raise _syslog_error(f"{name} missing, over {limit} characters or not printable US-ASCII")
        values.append(token.decode("ascii"))
        pos = end + 1
    timestamp = values[0]
    if timestamp != "-" and not _RFC3339.fullmatch(timestamp.encode("ascii")):
        raise _syslog_error(f"TIMESTAMP {timestamp!r} is not RFC 3339")
    end = _structured_data(data, pos)
    try:
        structured = data[pos:end].decode("utf-8")
    except UnicodeDecodeError:
        raise _syslog_error("STRUCTURED-DATA is not UTF-8") from None
    if end == len(data):
        msg = b""
    elif data[end] == 0x20:
        msg = data[end + 1 :]
    else:
        raise _syslog_error("no space between STRUCTURED-DATA and MSG")
    timestamp, hostname, app_name, procid, msgid = values
    header = SyslogHeader(pri // 8, pri % 8, version, timestamp, hostname, app_name, procid, msgid, structured)
    return header, msg[len(_BOM) :] if msg.startswith(_BOM) else msg


def octet_frame(message: bytes) -> bytes:
    """RFC 5425 octet-counting framing: `LEN SP SYSLOG-MSG`."""
    return str(len(message)).encode("ascii") + b" " + message


class OctetCountingDecoder:
    """Incremental RFC 5425 deframer: feed bytes as they arrive, get whole messages back.

    The buffer never holds more than one length prefix and one message of at most `limit`
    bytes. A bad prefix or an oversized length raises AuditMessageError, and so does every
    later feed: a stream that lost its framing cannot be resynchronised.
    """

    def __init__(self, limit: int = MAX_MESSAGE_BYTES) -> None:
        self._limit = limit
        self._digits = len(str(limit))
        self._buffer = bytearray()
        self._need: int | None = None  # length of the message being read; None while reading a prefix
        self._error = ""

    @property
    def pending(self) -> int:
        """Bytes received and not yet returned (a partial prefix or message)."""
        return len(self._buffer)

    @property
    def inside_frame(self) -> bool:
        """Whether a frame was begun and not finished (its prefix or message partly received)."""
        return bool(self._buffer) or self._need is not None

    def _fail(self, reason: str) -> AuditMessageError:
        self._error = reason
        self._buffer.clear()
        return AuditMessageError(reason)

    def feed(self, data: bytes) -> list[bytes]:
        """The messages completed by `data`, in order."""
        if self._error:
            raise AuditMessageError(self._error)
        self._buffer += data
        frames: list[bytes] = []
        while True:
            if self._need is None:
                space = self._buffer.find(b" ", 0, self._digits + 1)
                prefix = bytes(self._buffer[: self._digits + 1] if space < 0 else self._buffer[:space])
                if space == 0 or (prefix and (not prefix.isdigit() or prefix.startswith(b"0"))):
                    raise self._fail(f"bad octet-counting length prefix {bytes(self._buffer[:16])!r}")
                if space < 0:
                    if len(self._buffer) > self._digits:  # all digits, and more of them than the limit has
                        raise self._fail(f"oversized frame (length prefix {prefix.decode()}... > {self._limit} bytes)")
                    return frames
                length = int(prefix)
                if length > self._limit:
                    raise self._fail(f"oversized frame ({length} > {self._limit} bytes)")
                del self._buffer[: space + 1]
                self._need = length
            if len(self._buffer) < self._need:
                return frames
            frames.append(bytes(self._buffer[: self._need]))
            del self._buffer[: self._need]
            self._need = None

    def eof(self) -> None:
        """The stream ended; AuditMessageError if it ended inside a prefix or a message."""
        if self._error:
            return
        if self._need is not None:
            raise self._fail(f"truncated frame (connection closed after {len(self._buffer)} of {self._need} bytes)")
        if self._buffer:
            raise self._fail(f"truncated frame (connection closed inside the length prefix {bytes(self._buffer)!r})")


def send_udp(host: str, port: int, payload: bytes) -> None:
    """Send one syslog message as one UDP datagram (RFC 5426)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    with socket.socket(family, kind, proto) as sock:
        sock.sendto(payload, address)


class TlsSender:
    """One TLS connection to a syslog receiver (RFC 5425) sending octet-counted messages; connects on creation."""

    def __init__(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext,
        timeout: float = 5.0,
        *,
        server_hostname: str | None = None,
    ) -> None:
        raw = socket.create_connection((host, port), timeout=timeout)
        try:
            self._sock = ssl_context.wrap_socket(raw, server_hostname=server_hostname or host)
        except BaseException:
            raw.close()
            raise

    def send(self, message: bytes) -> None:
        """Send one syslog message, framed."""
        self._sock.sendall(octet_frame(message))

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (no framing): for tests of a receiver's framing checks."""
        self._sock.sendall(data)

    def close(self) -> None:
        """Close with a TLS close_notify, reading what the server sent (TLS 1.3 tickets) so the close is not a reset."""
        try:
            self._sock.unwrap().close()
        except (OSError, ValueError):
            # The server closed first or without close_notify: everything we sent was already read.
            self._sock.close()

    def __enter__(self) -> TlsSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
