"""Readiness: poll a DICOM endpoint with C-ECHO until it answers or a deadline passes."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.model import Endpoint
from simulators.modality import Modality

__all__ = ["Echo", "EchoProbe", "echo_once", "main", "wait_for_echo"]

# One C-ECHO attempt: (endpoint, calling AE title, timeout) -> "" on success, else why it failed.
Echo = Callable[[Endpoint, str, float], str]

# pynetdicom logs every refused connection at ERROR; a readiness poll expects refusals.
logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class EchoProbe:
    """The outcome of a readiness wait: answered or not, how many attempts, the last failure."""

    answered: bool
    attempts: int
    seconds: float
    last_error: str


def echo_once(endpoint: Endpoint, calling_ae: str, timeout: float = 2.0, tls_dir: str = "") -> str:
    """One C-ECHO; returns "" on success status 0x0000, else why it failed. TLS endpoints need `tls_dir` (a PKI)."""
    context = None
    if endpoint.tls and tls_dir:
        from simulators.pki import load_pki

        context = load_pki(Path(tls_dir)).client_context()
    modality = Modality(calling_ae, acse_timeout=timeout, dimse_timeout=timeout, network_timeout=timeout)
    modality.ssl_context = context
    result = modality.echo(endpoint)
    if not result.accepted:
        return result.error
    return "" if result.status == 0x0000 else f"C-ECHO status {result.status!r}"


def wait_for_echo(
    endpoint: Endpoint,
    calling_ae: str,
    deadline: float,
    alive: Callable[[], bool] = lambda: True,
    interval: float = 0.1,
    echo: Echo | None = None,  # default: echo_once from this process
) -> EchoProbe:
    """Poll until C-ECHO succeeds, `alive()` turns False, or `deadline` seconds pass (never unbounded)."""
    start = time.monotonic()
    attempts = 0
    last = "not tried"
    while True:
        attempts += 1
        last = (echo or echo_once)(endpoint, calling_ae, min(2.0, max(0.2, deadline)))
        elapsed = time.monotonic() - start
        if not last:
            return EchoProbe(True, attempts, elapsed, "")
        if not alive():
            return EchoProbe(False, attempts, elapsed, "process exited")
        if elapsed >= deadline:
            return EchoProbe(False, attempts, elapsed, last)
        time.sleep(interval)


def main(argv: Sequence[str] | None = None) -> int:
    """One C-ECHO from inside a run's network (the harness runs it with `docker exec`): exit 0 when answered."""
    parser = argparse.ArgumentParser(prog="python -m harness.targets.readiness", description=main.__doc__)
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("called", help="the AE title to call")
    parser.add_argument("--calling", default="PGPROBE", help="our AE title")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per ACSE/DIMSE/network wait")
    parser.add_argument("--tls-dir", default="", help="a simulators.pki directory: echo over TLS with its client")
    args = parser.parse_args(argv)
    endpoint = Endpoint(args.called, args.host, args.port, tls=bool(args.tls_dir))
    error = echo_once(endpoint, args.calling, args.timeout, args.tls_dir)
    if error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
