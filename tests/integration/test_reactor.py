"""simulators._reactor: pynetdicom's reactor loops sleep until woken, on real associations over loopback."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pynetdicom
import pytest
from pynetdicom import AE, evt

from simulators import _reactor
from simulators._net import LOOPBACK, VERIFICATION, on_connection_open

HANDLERS = [(evt.EVT_CONN_OPEN, on_connection_open)]


@pytest.fixture
def port() -> Iterator[int]:
    scp = AE(ae_title="SCP")
    scp.add_supported_context(VERIFICATION)
    server = scp.start_server((LOOPBACK, 0), block=False, evt_handlers=HANDLERS)
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()


def _associate(port: int) -> Any:
    ae = AE(ae_title="SCU")
    ae.add_requested_context(VERIFICATION)
    assoc = ae.associate(LOOPBACK, port, evt_handlers=HANDLERS)
    assert assoc.is_established
    return assoc


def test_it_is_installed_for_the_pinned_pynetdicom() -> None:
    assert pynetdicom.__version__.startswith("3.0.")
    assert _reactor.installed()


def test_an_idle_association_s_loops_look_about_once_per_cap(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """pynetdicom's own loops look 1000 times a second; these, unwoken, once per CAP (the idle cost: 13 % -> 1 %)."""
    assoc = _associate(port)
    waker = _reactor.waker_of(assoc)
    assert waker is not None
    looks = {"dul": 0, "association": 0}
    wait_for_socket, wait = waker.wait_for_socket, waker.wait

    def dul_look(sock: Any) -> None:
        looks["dul"] += 1
        wait_for_socket(sock)

    def association_look() -> None:
        looks["association"] += 1
        wait()

    monkeypatch.setattr(waker, "wait_for_socket", dul_look)
    monkeypatch.setattr(waker, "wait", association_look)
    time.sleep(1.0)
    counted = dict(looks)
    assoc.release()
    unwoken = 1.0 / _reactor.CAP
    assert 0 < counted["dul"] <= 2 * unwoken + 5, counted
    assert 0 < counted["association"] <= 2 * unwoken + 5, counted


def test_work_wakes_the_loops_so_a_dimse_exchange_does_not_wait_out_the_cap(port: int) -> None:
    """100 C-ECHOs on one association: the loops are woken for each, not left to run out their CAP."""
    assoc = _associate(port)
    waker = _reactor.waker_of(assoc)
    assert waker is not None
    try:
        before = waker.unwoken
        statuses = [assoc.send_c_echo().get("Status") for _ in range(100)]
        unwoken = waker.unwoken - before
    finally:
        assoc.release()
    assert statuses == [0x0000] * 100
    # Unwoken, each exchange would run out at least one CAP (100 or more); a stalled machine may cost a few.
    assert unwoken <= 10, f"{unwoken} waits ran out their cap during 100 exchanges"


def test_ended_associations_leave_no_file_descriptors(port: int) -> None:
    """Each waker holds a socket pair: closed when its DUL ends, so a long run does not run out of descriptors."""
    for _ in range(3):  # warm up: pynetdicom's and the server's own descriptors
        _associate(port).release()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(40):
        _associate(port).release()
    deadline = time.monotonic() + 10
    while len(os.listdir("/proc/self/fd")) > before + 4 and time.monotonic() < deadline:
        time.sleep(0.05)  # the server side's DULs end a moment after the release
    assert len(os.listdir("/proc/self/fd")) <= before + 4


def test_another_pynetdicom_keeps_its_own_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_reactor, "_installed", False)
    monkeypatch.setattr(pynetdicom, "__version__", "4.0.0")
    assert _reactor.install() is False


def test_turned_off_it_keeps_pynetdicom_s_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_reactor, "_installed", False)
    monkeypatch.setenv(_reactor.REACTOR_ENV, "0")
    assert _reactor.install() is False


def test_a_release_does_not_wait_out_pynetdicom_s_10_ms_kill_poll(port: int, sleeps: list[float]) -> None:
    """Association.kill looks every 10 ms for the DUL to reach Sta1, which a release reaches microseconds after
    its confirmation: 1 release in 4 slept 10 ms for nothing. The poll is 1 ms."""
    from pynetdicom import association

    sleeps.clear()  # from here on
    association.time.sleep(0.01)
    assert sleeps == [0.001]
    for _ in range(10):
        _associate(port).release()
    assert 0.01 not in sleeps, sleeps
