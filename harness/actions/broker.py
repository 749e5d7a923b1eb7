"""The harness's end of the action channel: it does the command and prompt actions the suites ask for."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from harness.actions.execute import InDevice, execute, render_request
from harness.actions.prompt import prompt
from harness.actions.result import ERROR, ActionError, ActionResult
from harness.model import JSON
from harness.placeholders import ACTION_VALUES
from harness.profile import ActionSpec
from harness.redact import redact
from harness.rundir import RunDir, write_json_atomic

__all__ = ["HARNESS_KINDS", "ActionBroker"]

# Kinds done by the harness process: a command runs beside patchgate (or the local device), a prompt needs its terminal.
HARNESS_KINDS = ("command", "prompt")


class ActionBroker:
    """Picks up `actions/TICKET.request.json`, does the action in a worker thread, writes `TICKET.result.json`.

    `serve()` is called from the runner's loop while the suites run; `close()` waits (bounded) for what is under way.
    """

    def __init__(
        self,
        run: RunDir,
        actions: Mapping[str, ActionSpec],
        values: Mapping[str, str],
        secrets: Sequence[str],
        *,
        label: str,
        device_workdir: Path,
        inside: InDevice | None = None,
        stdin: TextIO | None = None,
        out: TextIO | None = None,
    ) -> None:
        self.run = run
        self.actions = actions
        self.values = dict(values)
        self.secrets = tuple(secrets)
        self.label = label
        self.device_workdir = device_workdir
        self.inside = inside  # runs a where = "device" command in the device's container; None: a local device
        self.stdin = stdin
        self.out = out
        self._seen: set[str] = set()
        self._workers: list[threading.Thread] = []

    def serve(self) -> None:
        """Start a worker for each request not seen yet (cheap when none: one directory listing)."""
        for ticket in self.run.action_tickets():
            if ticket in self._seen:
                continue
            self._seen.add(ticket)
            worker = threading.Thread(target=self._answer, args=(ticket,), name=f"action-{ticket}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def close(self, timeout: float = 10.0) -> None:
        """Wait up to `timeout` s in all for actions under way (each is bounded by its own deadline anyway)."""
        until = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(0.0, until - time.monotonic()))

    def _answer(self, ticket: str) -> None:
        started = time.monotonic()
        name, kind = "?", "?"
        try:
            request = json.loads(self.run.action_request(ticket).read_text(encoding="utf-8"))
            name = str(request["name"])
            spec = self.actions.get(name)
            if spec is None or spec.kind not in HARNESS_KINDS:
                raise ActionError(f"no {'/'.join(HARNESS_KINDS)} action named {name!r} in the profile")
            kind = spec.kind
            given = {str(k): str(v) for k, v in dict(request.get("values", {})).items()}
            unknown = sorted(given.keys() - ACTION_VALUES)
            if unknown:
                raise ActionError(f"values the harness does not take: {', '.join(unknown)}")
            result = self.do(spec, {**self.values, **given})
        except (OSError, ValueError, KeyError, TypeError, ActionError) as exc:
            error = exc.one_line() if isinstance(exc, ActionError) else f"{type(exc).__name__}: {exc}"
            detail: dict[str, JSON] = {"error": error}
            result = ActionResult(name, kind, time.monotonic() - started, ERROR, redact(detail, self.secrets))
        write_json_atomic(self.run.action_result(ticket), result.to_json())
        self.run.append_action({"ticket": ticket, "run": self.label, "by": "harness", **result.to_json()})

    def do(self, spec: ActionSpec, values: Mapping[str, str]) -> ActionResult:
        """Do one command or prompt action now, with `values` (the run's and the suite's)."""
        if spec.kind == "command":
            cwd = self.device_workdir if spec.where == "device" else self.run.path
            return execute(spec, values, self.secrets, cwd=cwd, inside=self.inside)
        started = time.monotonic()
        text = str(render_request(spec, values)["text"])
        stdin, out = self.stdin or sys.stdin, self.out or sys.stderr
        outcome, answer = prompt(text, spec.timeout, run=self.label, name=spec.name, stdin=stdin, out=out)
        detail: dict[str, JSON] = {"request": {"text": text}, "operator": answer}
        return ActionResult(spec.name, spec.kind, time.monotonic() - started, outcome, redact(detail, self.secrets))
