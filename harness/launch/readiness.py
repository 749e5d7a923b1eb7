"""Readiness checks a launcher polls: C-ECHO, a TCP connect, an HTTP answer, a line in the log, or none."""

from __future__ import annotations

import argparse
import http.client
import logging
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.launch.base import Launched
from simulators.endpoint import PROBE_AE_TITLE, Endpoint
from simulators.modality import Modality

__all__ = [
    "Echo",
    "EchoOnce",
    "EchoProbe",
    "Http",
    "Immediately",
    "LogLine",
    "Tcp",
    "echo_once",
    "main",
    "wait_for_echo",
]

# One C-ECHO attempt: (endpoint, calling AE title, timeout) -> "" on success, else why it failed.
EchoOnce = Callable[[Endpoint, str, float], str]

# pynetdicom logs every refused connection at ERROR; a readiness poll expects refusals.
logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)


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


@dataclass(frozen=True)
class EchoProbe:
    """The outcome of `wait_for_echo`: answered or not, how many attempts, the last failure."""

    answered: bool
    attempts: int
    seconds: float
    last_error: str


def wait_for_echo(
    endpoint: Endpoint,
    calling_ae: str,
    deadline: float,
    alive: Callable[[], bool] = lambda: True,
    interval: float = 0.1,
    echo: EchoOnce | None = None,  # default: echo_once from this process
) -> EchoProbe:
    """Poll an endpoint nobody launched for us until C-ECHO succeeds, `alive()` turns False, or `deadline` passes."""
    start = time.monotonic()
    attempts = 0
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


@dataclass(frozen=True)
class Echo:
    """Ready once the endpoint answers C-ECHO with success; `via` sends it from where the run's network allows."""

    endpoint: Endpoint
    calling_ae: str
    tls_dir: str = ""
    via: EchoOnce | None = None  # default: from this process (a pod network probes from inside the pod)
    timeout: float = 2.0

    def probe(self, started: Launched) -> str:
        timeout = min(self.timeout, max(0.2, started.spec.start_timeout))
        if self.via is not None:
            return self.via(self.endpoint, self.calling_ae, timeout)
        return echo_once(self.endpoint, self.calling_ae, timeout, self.tls_dir)

    def describe(self) -> str:
        return f"C-ECHO at {self.endpoint.ae_title}@{self.endpoint.host}:{self.endpoint.port}"


@dataclass(frozen=True)
class Tcp:
    """Ready once a TCP connect to host:port succeeds."""

    host: str
    port: int
    timeout: float = 1.0

    def probe(self, started: Launched) -> str:
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout):
                return ""
        except OSError as exc:
            return str(exc)

    def describe(self) -> str:
        return f"TCP at {self.host}:{self.port}"


@dataclass(frozen=True)
class Http:
    """Ready once GET `path` on host:port answers with a status below 500."""

    host: str
    port: int
    path: str = "/"
    timeout: float = 2.0

    def probe(self, started: Launched) -> str:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            connection.request("GET", self.path)
            status = connection.getresponse().status
        except (OSError, http.client.HTTPException) as exc:
            return str(exc) or type(exc).__name__
        finally:
            connection.close()
        return "" if status < 500 else f"HTTP {status}"

    def describe(self) -> str:
        return f"HTTP at http://{self.host}:{self.port}{self.path}"


@dataclass(frozen=True)
class LogLine:
    """Ready once the log holds `text` (a simulator that prints where it listens)."""

    text: str

    def probe(self, started: Launched) -> str:
        return "" if self.text in started.log_text() else f"no {self.text!r} in its log yet"

    def describe(self) -> str:
        return f"with {self.text!r} in its log"


@dataclass(frozen=True)
class Immediately:
    """Ready as soon as it started (the suites: they report through the run directory)."""

    def probe(self, started: Launched) -> str:
        return ""

    def describe(self) -> str:
        return "at start"


def main(argv: Sequence[str] | None = None) -> int:
    """One C-ECHO from inside a run's network (the harness runs it with `docker exec`): exit 0 when answered."""
    parser = argparse.ArgumentParser(prog="python -m harness.launch.readiness", description=main.__doc__)
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("called", help="the AE title to call")
    parser.add_argument("--calling", default=PROBE_AE_TITLE, help="our AE title")
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
