"""Does the device still answer? C-ECHO on a fresh pynetdicom association, retried, bounded (design 8.5)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pynetdicom import AE

from simulators._net import VERIFICATION, queued_answer
from simulators.endpoint import JSON, Endpoint

__all__ = ["Health", "echo_health", "harness_fault", "refusal"]

_TRANSIENT = 2  # A-ASSOCIATE-RJ result: rejected-transient


@dataclass(frozen=True)
class Health:
    """The health check's answer: ok, the associations tried, and what the last one saw."""

    ok: bool
    tries: int
    detail: str

    def to_json(self) -> dict[str, JSON]:
        return {"ok": self.ok, "tries": self.tries, "detail": self.detail}


def refusal(assoc: Any) -> tuple[str, bool]:
    """How an association that was not established ended, and whether the device rejected it as transient."""
    # A rejection pynetdicom marked aborted (a quick RJ, then the close) is still the device's answer.
    answer = assoc.acceptor.primitive if assoc.is_rejected else queued_answer(assoc)
    rejected = assoc.is_rejected or getattr(answer, "result", None) in (1, 2)
    # PS3.8 9.3.4: result 2 is "rejected-transient", a device saying "not now" (dcmqrscp at MaxAssociations).
    transient = rejected and getattr(answer, "result", None) == _TRANSIENT
    if rejected:
        return ("rejected, transient" if transient else "rejected"), transient
    return ("aborted" if assoc.is_aborted else "no answer"), False


def _echo_once(endpoint: Endpoint, timeout: float, calling: str) -> tuple[bool, str, bool]:
    """One C-ECHO association: ok, what it saw, and whether the device rejected it as transient (busy)."""
    ae = AE(ae_title=calling)
    ae.add_requested_context(VERIFICATION)
    share = timeout / 3  # connection, ACSE and DIMSE each get a third: the whole try stays within `timeout`
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = share
    started = time.monotonic()
    assoc = ae.associate(endpoint.host, endpoint.port, ae_title=endpoint.ae_title)
    try:
        if not assoc.is_established:
            how, transient = refusal(assoc)
            return False, f"no association ({how}, {time.monotonic() - started:.2f} s)", transient
        status = assoc.send_c_echo()
        code = getattr(status, "Status", None)
        if code is None:
            return False, f"C-ECHO: no response ({time.monotonic() - started:.2f} s)", False
        return int(code) == 0, f"C-ECHO 0x{int(code):04X}", False
    finally:
        if assoc.is_established:
            assoc.release()
        ae.shutdown()


def echo_health(
    endpoint: Endpoint,
    timeout: float,
    *,
    tries: int = 3,
    pause: float = 0.5,
    calling: str = "PGATTACK",
    busy: bool = True,
) -> Health:
    """Up to `tries` C-ECHO associations, `pause` s apart, each within `timeout` s; ok at the first 0x0000.

    With `busy`, a device that rejects as transient keeps being asked, `pause` s apart, until `timeout` s have
    passed since the first try: it is up and says "not now". dcmqrscp does so after load.flood until it has
    reaped the flood's association processes (checked: its first one or two tries rejected, the third answered, so
    at a high load average three tries were sometimes all rejected, and the same device read "unresponsive" in
    one run of three). `busy=False` for a check that must see the device as it is now (the C-ECHO during a flood).

    Call it after the attack socket is closed: a single-association device (storescp) serves nobody
    else while it is open (design 8.4, checked).
    """
    if not timeout > 0 or tries < 1:
        raise ValueError(f"echo_health: timeout {timeout!r} must be > 0 and tries {tries!r} at least 1")
    until = time.monotonic() + timeout
    attempt = 0
    while True:
        attempt += 1
        ok, detail, transient = _echo_once(endpoint, timeout, calling)
        if ok:
            return Health(True, attempt, detail)
        again = attempt < tries or (busy and transient and time.monotonic() + pause < until)
        if not again:
            return Health(False, attempt, detail)
        time.sleep(pause)


def harness_fault(device: Health, control: Endpoint, timeout: float) -> str:
    """Why a failed health check is the harness's, not the device's; "" when it is the device's (or it passed).

    The control is a peer the harness runs itself and no input attacked (the run's PACS simulator): when it does
    not answer C-ECHO either, the fault is on this side (out of sockets, a process starved), and reading the
    device as "unresponsive" would claim a security loosening that did not happen.
    """
    if device.ok:
        return ""
    check = echo_health(control, timeout, tries=2, busy=False, calling="PGCONTROL")
    if check.ok:
        return ""
    return (
        f"the device failed its health check ({device.detail}) and the run's own {control.ae_title} at "
        f"{control.host}:{control.port}, which no input attacked, did not answer C-ECHO either ({check.detail})"
    )
