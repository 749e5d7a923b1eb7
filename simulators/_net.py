"""Small network helpers shared by the simulators: destination parsing, free ports, status names."""

from __future__ import annotations

import socket

__all__ = ["LOOPBACK", "free_port", "parse_destination", "parse_host_port", "status_hex"]

LOOPBACK = "127.0.0.1"


def parse_host_port(text: str) -> tuple[str, int]:
    """`host:port` -> (host, port); ValueError with the offending text if malformed."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port, got {text!r}")
    return host, int(port)


def parse_destination(text: str) -> tuple[str, tuple[str, int]]:
    """`AE=host:port` (a C-MOVE destination) -> (AE, (host, port)); ValueError if malformed."""
    ae_title, sep, rest = text.partition("=")
    ae_title = ae_title.strip()
    if not sep or not ae_title or len(ae_title) > 16:
        raise ValueError(f"expected AE=host:port with an AE title of 1-16 characters, got {text!r}")
    return ae_title, parse_host_port(rest)


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free on `host` a moment ago (bind to port 0 and ask)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def status_hex(status: int | None) -> str | None:
    """A DIMSE status as `0x0000` text (how reports show it), None kept."""
    return None if status is None else f"0x{status:04X}"
