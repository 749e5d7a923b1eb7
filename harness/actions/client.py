"""The suites' end of device actions: http and dicom done here, command and prompt asked of the harness."""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.actions.broker import HARNESS_KINDS
from harness.actions.execute import execute, require_values
from harness.actions.result import ERROR, ActionError, ActionResult
from harness.context import SuiteContext
from harness.placeholders import ACTION_VALUES
from harness.profile import ActionSpec
from harness.rundir import RunDir, write_json_atomic
from simulators._lifeline import Lifeline

__all__ = ["ANSWER_GRACE", "ActionClient"]

# Seconds past an action's deadline the suites wait for the harness's answer before calling it an error.
ANSWER_GRACE = 10.0
_POLL = 0.1


class ActionClient:
    """`client(name, values)` -> ActionResult; one per suites process (tickets carry its pid)."""

    def __init__(self, context: SuiteContext) -> None:
        self.context = context
        self.run = RunDir(Path(context.run_dir))
        self.specs = {name: ActionSpec.from_json(d) for name, d in context.actions.items()}
        self._numbers = itertools.count(1)
        self._lifeline = Lifeline()  # a killed harness answers nothing: stop waiting once it is known gone

    def declares(self, name: str) -> bool:
        return name in self.specs

    def __call__(self, name: str, values: Mapping[str, str] | None = None) -> ActionResult:
        spec = self.specs[name]  # the plugin skips a case asking for an undeclared action first
        given = {str(k): str(v) for k, v in (values or {}).items()}
        unknown = sorted(given.keys() - ACTION_VALUES)
        if unknown:
            raise ActionError(
                f"device action {name!r}: unknown value(s) {', '.join(unknown)}",
                hint=f"an action takes: {', '.join(sorted(ACTION_VALUES))}",
            )
        merged = {**self.context.placeholders, **given}
        require_values(spec, merged)  # a suite's mistake: said before anything is done, naming what to pass
        if spec.kind in HARNESS_KINDS:
            return replace(self._ask_harness(spec, given), settle=spec.settle)
        result = execute(
            spec,
            merged,
            self.context.secrets,
            device=self.context.device,
            ssl_context=self._ssl_context() if self.context.device.tls else None,
            corpus=self._corpus_items,
        )
        result = replace(result, settle=spec.settle)
        self.run.append_action({"run": os.path.basename(self.context.run_dir), "by": "suites", **result.to_json()})
        return result

    def _ask_harness(self, spec: ActionSpec, values: Mapping[str, str]) -> ActionResult:
        """Write the request, then wait for the harness's result until the deadline plus ANSWER_GRACE."""
        ticket = f"{os.getpid()}-{next(self._numbers):04d}-{spec.name}"
        self.run.actions.mkdir(exist_ok=True)
        write_json_atomic(
            self.run.action_request(ticket), {"ticket": ticket, "name": spec.name, "values": dict(values)}
        )
        started = time.monotonic()
        until = started + spec.timeout + ANSWER_GRACE
        answer = self.run.action_result(ticket)
        error = f"the harness did not answer within {spec.timeout + ANSWER_GRACE:g} s (ticket {ticket})"
        while time.monotonic() < until:
            with contextlib.suppress(FileNotFoundError, ValueError):  # not there yet (written atomically)
                return ActionResult.from_json(json.loads(answer.read_text(encoding="utf-8")))
            if why := self._lifeline.gone():
                error = f"{why} (ticket {ticket})"
                break
            time.sleep(_POLL)
        return ActionResult(spec.name, spec.kind, time.monotonic() - started, ERROR, {"error": error})

    def _ssl_context(self) -> Any:
        from simulators.pki import load_pki

        return load_pki(Path(self.context.pki_dir)).client_context()

    def _corpus_items(self, keys: Sequence[str]) -> list[Any]:
        items = _corpus(self.context.corpus_seed, self.context.corpus_size, self.context.corpus_identity)
        return [items[k].dataset for k in keys]


@functools.lru_cache(maxsize=2)
def _corpus(seed: int, size: str, identity: str) -> Mapping[str, Any]:
    from simulators.corpus import by_key, generate, reidentify

    return by_key(reidentify(generate(seed, corpus_size=size), identity).items)
