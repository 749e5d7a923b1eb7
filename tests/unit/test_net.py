"""simulators._net: the `listening` line simulators print once bound, and addresses in it."""

from __future__ import annotations

import pytest

from simulators._net import format_address, parse_listening


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("listening dicom=127.0.0.1:11112", {"dicom": ("127.0.0.1", 11112)}),
        ("listening udp=127.0.0.1:514 tls=127.0.0.1:6514\n", {"udp": ("127.0.0.1", 514), "tls": ("127.0.0.1", 6514)}),
        ("listening udp=0.0.0.0:514 tls=-", {"udp": ("0.0.0.0", 514)}),
        ("listening dicom=[::1]:104", {"dicom": ("::1", 104)}),
    ],
)
def test_parse_listening(line: str, expected: dict[str, tuple[str, int]]) -> None:
    assert parse_listening(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "",
        "listening",
        "listening on 127.0.0.1:11112",  # no NAME=
        "listening udp=514 tls=-",  # a bare port: the host is part of the line
        "listening udp=127.0.0.1:0",  # port 0 is what was asked, not what was bound
        "listening udp=127.0.0.1:1 udp=127.0.0.1:2",
        "2026-11-30 simulators.pacs listening as PACS on 127.0.0.1:11112",  # the log line, not this one
    ],
)
def test_parse_listening_refuses_other_lines(line: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_listening(line)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_format_address_round_trips(host: str) -> None:
    assert parse_listening(f"listening x={format_address(host, 4242)}") == {"x": (host, 4242)}
