"""The reference modality's control API (HTTP on loopback) and the `ctl` client that calls it.

    POST /worklist                                   query the worklist (RAD-5)
    POST /procedures/{sps_id}/start|acquire|complete|discontinue|commit|scenario
    POST /reset                                      forget the worklist and every procedure
    GET  /procedures/{sps_id}                        MPPS UID, what was sent, commitment results, resends
    GET  /health                                     200 once it serves

Answers are JSON: 200 with what happened (DIMSE statuses included, whatever they are), 404 for an
unknown step or path, 409 for a step not in the state the operation needs, 502 when a peer could not
be reached. Every operation waits for its effects, so an answer means the peers have seen them.
"""

from __future__ import annotations

import functools
import http.client
import json
import logging
import re
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from simulators.endpoint import JSON
from simulators.reference_modality.console import Console, ConsoleError

__all__ = ["OPERATIONS", "ControlServer", "call"]

_LOG = logging.getLogger("simulators.reference_modality")
# POST /procedures/{sps_id}/NAME -> the console's method.
OPERATIONS = ("start", "acquire", "complete", "discontinue", "commit", "scenario")
_PROCEDURE = re.compile(r"/procedures/([^/]{1,64})(?:/([a-z]+))?")
_REQUEST_TIMEOUT = 30.0  # seconds a client may take to send its request
_MAX_BODY = 1 << 16


class ControlServer:
    """The HTTP control API of one console, served in background threads on `host:port` (0: any free port)."""

    def __init__(self, console: Console, host: str, port: int) -> None:
        self.console = console
        handler = type("Handler", (_Handler,), {"console": console})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        # A short poll: stop() waits for the serve loop's next one (0.5 s by default).
        serve = functools.partial(self._server.serve_forever, poll_interval=0.05)
        self._thread = threading.Thread(target=serve, name="control-api", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> ControlServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class _Handler(BaseHTTPRequestHandler):
    console: Console
    timeout = _REQUEST_TIMEOUT  # a client that never finishes its request does not hold a thread forever
    server_version = "patchgate-reference-modality"

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/health":
            self._answer(200, {"ok": True})
            return
        match = _PROCEDURE.fullmatch(path)
        if match is None or match.group(2):
            self._answer(404, {"error": f"no such resource: GET {path}", "hint": "GET /procedures/{sps_id}"})
            return
        self._run(lambda: self.console.show(urllib.parse.unquote(match.group(1))))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            self._answer(413, {"error": f"request body over {_MAX_BODY} bytes"})
            return
        self.rfile.read(length)  # the body (e.g. the suite's instances) is not needed: the console knows what it sent
        path = urllib.parse.urlsplit(self.path).path
        if path == "/worklist":
            self._run(self.console.query)
            return
        if path == "/reset":
            self._run(self.console.reset)
            return
        match = _PROCEDURE.fullmatch(path)
        if match is None or match.group(2) not in OPERATIONS:
            hint = f"POST /worklist, /reset or /procedures/{{sps_id}}/{{{'|'.join(OPERATIONS)}}}"
            self._answer(404, {"error": f"no such operation: POST {path}", "hint": hint})
            return
        operation: Callable[[str], dict[str, JSON]] = getattr(self.console, match.group(2))
        self._run(lambda: operation(urllib.parse.unquote(match.group(1))))

    def _run(self, work: Callable[[], dict[str, JSON]]) -> None:
        try:
            answer = work()
        except ConsoleError as exc:
            self._answer(exc.status, {"error": exc.message})
            return
        except Exception as exc:  # noqa: BLE001 - a bug must answer 500 with its name, not hang the client
            _LOG.exception("control API: %s %s failed", self.command, self.path)
            self._answer(500, {"error": f"{type(exc).__name__}: {exc}"})
            return
        self._answer(200, answer)

    def _answer(self, status: int, payload: Mapping[str, JSON]) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        _LOG.info("control API: %s", format % args)


def call(control: str, method: str, path: str, timeout: float) -> tuple[int, JSON]:
    """One request to a control API at `control` (http://HOST:PORT); (HTTP status, JSON answer). OSError if unreachable."""
    url = urllib.parse.urlsplit(control)
    if url.scheme != "http" or not url.hostname or url.port is None:
        raise ValueError(f"--control must be http://HOST:PORT, got {control!r}")
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        connection.request(method, path, body=b"" if method == "POST" else None)
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    try:
        answer: JSON = json.loads(data.decode("utf-8"))
    except ValueError:
        answer = data.decode("utf-8", errors="replace")
    return response.status, answer
