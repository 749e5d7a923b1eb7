"""Does the device still answer? C-ECHO on a fresh pynetdicom association, retried, bounded (design 8.5)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pynetdicom import AE

from simulators._net import VERIFICATION
from simulators.endpoint import JSON, Endpoint

__all__ = ["Health", "echo_health"]


@dataclass(frozen=True)
class Health:
    """The health check's answer: ok, the associations tried, and what the last one saw."""

    ok: bool
    tries: int
    detail: str

    def to_json(self) -> dict[str, JSON]:
        return {"ok": self.ok, "tries": self.tries, "detail": self.detail}


def _echo_once(endpoint: Endpoint, timeout: float, calling: str) -> tuple[bool, str]:
    ae = AE(ae_title=calling)
    ae.add_requested_context(VERIFICATION)
    share = timeout / 3  # connection, ACSE and DIMSE each get a third: the whole try stays within `timeout`
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = share
    started = time.monotonic()
    assoc = ae.associate(endpoint.host, endpoint.port, ae_title=endpoint.ae_title)
    try:
        if not assoc.is_established:
            how = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else "no answer"
            return False, f"no association ({how}, {time.monotonic() - started:.2f} s)"
        status = assoc.send_c_echo()
        code = getattr(status, "Status", None)
        if code is None:
            return False, f"C-ECHO: no response ({time.monotonic() - started:.2f} s)"
        return int(code) == 0, f"C-ECHO 0x{int(code):04X}"
    finally:
        if assoc.is_established:
            assoc.release()
        ae.shutdown()


def echo_health(
    endpoint: Endpoint, timeout: float, *, tries: int = 3, pause: float = 0.5, calling: str = "PGATTACK"
) -> Health:
    """Up to `tries` C-ECHO associations, `pause` s apart, each within `timeout` s; ok at the first 0x0000.

    Call it after the attack socket is closed: a single-association device (storescp) serves nobody
    else while it is open (design 8.4, checked).
    """
    if not timeout > 0 or tries < 1:
        raise ValueError(f"echo_health: timeout {timeout!r} must be > 0 and tries {tries!r} at least 1")
    detail = ""
    for attempt in range(1, tries + 1):
        ok, detail = _echo_once(endpoint, timeout, calling)
        if ok:
            return Health(True, attempt, detail)
        if attempt < tries:
            time.sleep(pause)
    return Health(False, tries, detail)
