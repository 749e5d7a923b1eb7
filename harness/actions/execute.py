"""Doing one device action: its templates filled, then a process, an HTTP request or a DICOM message, within its deadline."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.actions.result import DONE, ERROR, FAILED, TIMEOUT, ActionError, ActionResult
from harness.errors import ProfileError
from harness.model import JSON, Endpoint
from harness.placeholders import placeholders_in, render
from harness.profile import ActionSpec
from harness.redact import redact

__all__ = [
    "InDevice",
    "Outcome",
    "execute",
    "missing_values",
    "render_request",
    "require_values",
    "run_command",
    "run_dicom",
    "run_http",
    "run_inside",
]

Outcome = tuple[str, dict[str, JSON]]  # (outcome, detail)
InDevice = Callable[
    [Sequence[str]], tuple[int, bytes]
]  # argv -> exit code, output: a command in the device's container
_TAIL = 4000  # characters of a command's output or an HTTP body kept in the record
_BODY_LIMIT = 1 << 20  # bytes of an HTTP answer read at most
_GRACE = 5.0  # seconds a killed process or a timed-out worker gets to finish


def missing_values(spec: ActionSpec, values: Mapping[str, str]) -> list[str]:
    """The placeholders the action names that `values` lacks (e.g. {item.sps_id} a suite did not pass)."""
    named = {name for text in spec.templates("").values() for name in placeholders_in(text)}
    return sorted(named - values.keys())


def require_values(spec: ActionSpec, values: Mapping[str, str]) -> None:
    """ActionError naming what to pass when the action names a placeholder `values` lacks: a suite's mistake."""
    missing = missing_values(spec, values)
    if missing:
        raise ActionError(
            f"device action {spec.name!r} needs {', '.join('{' + m + '}' for m in missing)}, which the suite did not pass",
            hint=f"pass them: device_action({spec.name!r}, {{{', '.join(repr(m) + ': ...' for m in missing)}}})",
        )


def render_request(spec: ActionSpec, values: Mapping[str, str]) -> dict[str, JSON]:
    """The action with its templates filled: what is done, as the record shows it (before redaction)."""
    require_values(spec, values)
    where = f"device.actions.{spec.name}"
    try:
        if spec.kind == "command":
            return {"argv": [render(a, values, f"{where}.command") for a in spec.command], "where": spec.where}
        if spec.kind == "http":
            headers = {k: render(v, values, f"{where}.headers.{k}") for k, v in spec.headers.items()}
            bad = [k for k, v in headers.items() if "\r" in v or "\n" in v]
            if bad:
                raise ActionError(f"device action {spec.name!r}: header {bad[0]} would hold a line break")
            url = render(spec.url, values, f"{where}.url", escape=lambda v: urllib.parse.quote(v, safe=":"))
            body = _render_json(spec.body, values, f"{where}.body")
            return {"method": spec.method, "url": url, "headers": dict(headers), "body": body}
        if spec.kind == "dicom":
            calling = render(spec.calling_ae, values, f"{where}.calling_ae")
            return {"message": spec.message, "items": list(spec.items), "calling_ae": calling}
        return {"text": render(spec.text, values, f"{where}.text")}
    except ProfileError as exc:
        raise ActionError(exc.message, hint=exc.hint) from None
    except ValueError as exc:  # {instances} that is not JSON
        raise ActionError(f"device action {spec.name!r}: {{instances}} is not a JSON array: {exc}") from None


def _render_json(value: JSON, values: Mapping[str, str], where: str) -> JSON:
    """Placeholders filled in string leaves only, so a value lands inside a JSON string (no JSON injection).

    The one exception: a leaf that is exactly "{instances}" becomes that JSON array of [class, instance] pairs.
    """
    if value == "{instances}" and "instances" in values:
        instances: JSON = json.loads(values["instances"])
        return instances
    if isinstance(value, str):
        return render(value, values, where)
    if isinstance(value, Mapping):
        return {k: _render_json(v, values, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_render_json(v, values, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def execute(
    spec: ActionSpec,
    values: Mapping[str, str],
    secrets: Sequence[str],
    *,
    cwd: Path | None = None,
    device: Endpoint | None = None,
    ssl_context: Any = None,
    corpus: Callable[[Sequence[str]], list[Any]] | None = None,
    inside: InDevice | None = None,
) -> ActionResult:
    """Do a command, http or dicom action now; the result, redacted. Prompts go through harness.actions.prompt.

    `inside` runs a `where = "device"` command in the device's container (None: a local device, on this host).
    """
    started = time.monotonic()
    try:
        request = render_request(spec, values)
    except ActionError as exc:
        return _result(spec, started, ERROR, {"error": exc.one_line()}, secrets)
    if spec.kind == "command" and spec.where == "device" and inside is not None:
        outcome, detail = _bounded(lambda: run_inside(spec, request, inside), spec.timeout)
    elif spec.kind == "command":
        outcome, detail = run_command(spec, request, cwd)
    elif spec.kind == "http":
        outcome, detail = _bounded(lambda: run_http(spec, request), spec.timeout)
    elif spec.kind == "dicom":
        if device is None or corpus is None:
            outcome, detail = ERROR, {"error": "a dicom action runs where the device endpoint is known (the suites)"}
        else:
            outcome, detail = _bounded(lambda: run_dicom(spec, request, device, ssl_context, corpus), spec.timeout)
    else:
        outcome, detail = ERROR, {"error": f"a {spec.kind} action is not executed here"}
    return _result(spec, started, outcome, {"request": request, **detail}, secrets)


def _result(
    spec: ActionSpec, started: float, outcome: str, detail: dict[str, JSON], secrets: Sequence[str]
) -> ActionResult:
    return ActionResult(spec.name, spec.kind, time.monotonic() - started, outcome, redact(detail, secrets))


def _bounded(work: Callable[[], Outcome], deadline: float) -> Outcome:
    """`work` in a worker thread, given up on at the deadline (its own socket timeouts end it soon after)."""
    box: list[Outcome] = []

    def run() -> None:
        try:
            box.append(work())
        except Exception as exc:  # noqa: BLE001 - any failure of a device's answer is the action's outcome
            box.append((ERROR, {"error": f"{type(exc).__name__}: {exc}"}))

    worker = threading.Thread(target=run, name="device-action", daemon=True)
    worker.start()
    worker.join(deadline)
    if not box:
        return TIMEOUT, {"error": f"no answer within the deadline of {deadline:g} s"}
    return box[0]


def run_command(spec: ActionSpec, request: Mapping[str, JSON], cwd: Path | None) -> Outcome:
    """The argv as a process of its own session (killed whole at the deadline); exit code and output tail."""
    argv = [str(a) for a in request["argv"]]
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,  # its children are killed with it at the deadline
        )
    except OSError as exc:
        return ERROR, {"error": f"cannot start {argv[0]!r}: {exc.strerror or exc}"}
    try:
        output, _ = proc.communicate(timeout=spec.timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        try:
            output, _ = proc.communicate(timeout=_GRACE)
        except subprocess.TimeoutExpired:  # a grandchild holds the pipe: give up on the rest of the output
            output = b""
        text = output.decode("utf-8", errors="replace")[-_TAIL:]
        return TIMEOUT, {"error": f"still running after {spec.timeout:g} s: killed", "output": text}
    text = output.decode("utf-8", errors="replace")[-_TAIL:]
    return (DONE if code in spec.ok_exit else FAILED), {"exit_code": code, "output": text}


def run_inside(spec: ActionSpec, request: Mapping[str, JSON], inside: InDevice) -> Outcome:
    """The argv in the device's container; one still running at the deadline is left to end with the container."""
    code, output = inside([str(a) for a in request["argv"]])
    text = output.decode("utf-8", errors="replace")[-_TAIL:]
    return (DONE if code in spec.ok_exit else FAILED), {"exit_code": code, "output": text, "where": "device"}


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def run_http(spec: ActionSpec, request: Mapping[str, JSON]) -> Outcome:
    """One HTTP request (a JSON body when the action has one); the status and the answer's start."""
    url = urllib.parse.urlsplit(str(request["url"]))
    connection_type = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    connection = connection_type(url.hostname or "", url.port, timeout=spec.timeout)
    headers = {str(k): str(v) for k, v in request["headers"].items()}
    body = None
    if request.get("body") is not None:
        body = json.dumps(request["body"], ensure_ascii=False).encode("utf-8")
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
    target = urllib.parse.urlunsplit(("", "", url.path or "/", url.query, ""))
    try:
        connection.request(str(request["method"]), target, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read(_BODY_LIMIT)
    except TimeoutError:
        return TIMEOUT, {"error": f"no answer within {spec.timeout:g} s"}
    except (OSError, http.client.HTTPException) as exc:
        return FAILED, {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        connection.close()
    detail: dict[str, JSON] = {"status": response.status, "body": _body(data, response.getheader("Content-Type", ""))}
    return (DONE if response.status in spec.ok_status else FAILED), detail


def _body(data: bytes, content_type: str) -> JSON:
    """A JSON answer as JSON (when it is small), anything else as the start of its text."""
    text = data.decode("utf-8", errors="replace")
    if "json" in content_type and len(data) <= _TAIL:
        try:
            parsed: JSON = json.loads(text)
            return parsed
        except ValueError:
            pass
    return text[:_TAIL]


def run_dicom(
    spec: ActionSpec,
    request: Mapping[str, JSON],
    device: Endpoint,
    ssl_context: Any,
    corpus: Callable[[Sequence[str]], list[Any]],
) -> Outcome:
    """A C-ECHO, or a C-STORE of corpus items, to the device; the DIMSE status(es)."""
    from simulators.modality import Modality  # pynetdicom only where a dicom action runs
    from simulators.status import category

    timeout = spec.timeout
    scu = Modality(
        str(request["calling_ae"]),
        acse_timeout=timeout,
        dimse_timeout=timeout,
        network_timeout=timeout,
        ssl_context=ssl_context,
    )
    if request["message"] == "C-ECHO":
        echo = scu.echo(device)
        ok = echo.status is not None and category(echo.status) == "Success"
        return (DONE if ok else FAILED), {"status": echo.summary()["status"], "error": echo.error}
    stored = scu.store(device, corpus([str(i) for i in request["items"]]))
    statuses = [o.summary()["status"] for o in stored.instances]
    good = stored.accepted and all(
        o.status is not None and category(o.status) in ("Success", "Warning") for o in stored.instances
    )
    return (DONE if good else FAILED), {"status": statuses, "error": stored.error}
