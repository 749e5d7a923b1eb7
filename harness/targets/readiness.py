"""Readiness: poll a DICOM endpoint with C-ECHO until it answers or a deadline passes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from harness.model import Endpoint

__all__ = ["EchoProbe", "echo_once", "wait_for_echo"]

# pynetdicom logs every refused connection at ERROR; a readiness poll expects refusals.
logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class EchoProbe:
    """The outcome of a readiness wait: answered or not, how many attempts, the last failure."""

    answered: bool
    attempts: int
    seconds: float
    last_error: str


def echo_once(endpoint: Endpoint, calling_ae: str, timeout: float = 2.0) -> str:
    """One C-ECHO; returns "" on success status 0x0000, else why it failed."""
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = timeout
    ae.dimse_timeout = timeout
    ae.network_timeout = timeout
    ae.add_requested_context(Verification)
    assoc = ae.associate(endpoint.host, endpoint.port, ae_title=endpoint.ae_title)
    if not assoc.is_established:
        return "association rejected" if assoc.is_rejected else "no association (connection refused or timed out)"
    try:
        status = assoc.send_c_echo()
        code = getattr(status, "Status", None)
        return "" if code == 0x0000 else f"C-ECHO status {code!r}"
    finally:
        assoc.release()


def wait_for_echo(
    endpoint: Endpoint,
    calling_ae: str,
    deadline: float,
    alive: Callable[[], bool] = lambda: True,
    interval: float = 0.1,
) -> EchoProbe:
    """Poll until C-ECHO succeeds, `alive()` turns False, or `deadline` seconds pass (never unbounded)."""
    start = time.monotonic()
    attempts = 0
    last = "not tried"
    while True:
        attempts += 1
        last = echo_once(endpoint, calling_ae, timeout=min(2.0, max(0.2, deadline)))
        elapsed = time.monotonic() - start
        if not last:
            return EchoProbe(True, attempts, elapsed, "")
        if not alive():
            return EchoProbe(False, attempts, elapsed, "process exited")
        if elapsed >= deadline:
            return EchoProbe(False, attempts, elapsed, last)
        time.sleep(interval)
