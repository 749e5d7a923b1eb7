"""Reserved ports: below the kernel's ephemeral range, never handed out twice, skipped when taken, given back."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.errors import TargetError
from harness.ports import PortPool, _bindable, ephemeral_range, reserve_port


def test_reserved_ports_lie_below_the_ephemeral_range() -> None:
    """free_port() (bind 0, close) returned ports the kernel hands out again; a reserved one it never picks."""
    low, _ = ephemeral_range()
    held = [reserve_port() for _ in range(20)]
    try:
        assert all(r.port < low for r in held)
        assert len({r.port for r in held}) == 20
        # The kernel's own choices (what a simulator or a client connection gets) never meet them.
        picked = set()
        for _ in range(200):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                picked.add(s.getsockname()[1])
        assert not picked & {r.port for r in held}
    finally:
        for r in held:
            r.release()


def test_two_pools_sharing_a_directory_never_hand_out_the_same_port(tmp_path: Path) -> None:
    """Two pools stand for two patchgate processes: the lock files keep them apart."""
    first, second = PortPool(tmp_path, 31000, 31040), PortPool(tmp_path, 31000, 31040)
    a = [first.reserve() for _ in range(15)]
    b = [second.reserve() for _ in range(15)]
    assert not {r.port for r in a} & {r.port for r in b}
    for r in a + b:
        r.release()


def test_a_port_in_use_outside_patchgate_is_skipped(tmp_path: Path) -> None:
    first = next(
        start
        for start in range(30000, ephemeral_range()[0] - 16, 16)
        if all(_bindable(port) for port in range(start, start + 16))
    )
    listeners = []
    for port in range(first, first + 15):  # 15 of the 16 taken by somebody else
        s = socket.socket()
        s.bind(("127.0.0.1", port))
        s.listen()
        listeners.append(s)
    try:
        pool = PortPool(tmp_path, first, first + 16)
        reservation = pool.reserve()
        assert reservation.port == first + 15
        with pytest.raises(TargetError, match="no free port found"):
            pool.reserve()  # the only free one is held
        reservation.release()
        assert pool.reserve().port == first + 15  # given back
    finally:
        for s in listeners:
            s.close()


def test_too_narrow_a_range_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="no room for reserved ports"):
        PortPool(tmp_path, 30000, 30004).reserve()
