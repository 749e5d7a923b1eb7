"""One case per robustness corpus input: send it inside an attack window, record the device's reaction (design 9).

A case observes the reaction's kind and when, its detail, its severity (tagged EXPOSURE: a worse reaction
reads "security loosened"), whether the device answered C-ECHO after it (PROTECTION), and for loads the
C-ECHO during the hold and a flood's buckets. An input that made the device exit or stop answering is
followed by a revival the harness does; once the harness says stop, the remaining inputs are skipped.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import pytest

from harness.context import SuiteContext
from harness.model import Endpoint, Security
from harness.plugin import Observe
from harness.robust.client import Windows
from harness.rundir import RunDir
from simulators.attack import AttackError, Input, Negotiated, inputs
from simulators.attack.health import echo_health, harness_fault
from simulators.attack.run import Outcome, probe, run_input
from suites.robustness._reaction import buckets, final

# The corpus's ids do not depend on the seed (only garbage bytes and UIDs do): the cases are the same for every profile.
_CORPUS = {i.id: i for i in inputs(0)}


def _params() -> list[Any]:
    return [
        pytest.param(i.id, marks=[pytest.mark.robustness(i.id), pytest.mark.service(i.service)], id=i.id)
        for i in _CORPUS.values()
    ]


@functools.lru_cache(maxsize=2)
def _corpus(seed: int) -> dict[str, Input]:
    return {i.id: i for i in inputs(seed)}


_NEGOTIATED: dict[Endpoint, Negotiated] = {}


def _negotiated(endpoint: Endpoint, deadline: float) -> Negotiated | None:
    """What the device negotiates (its maximum length), asked once: idle inputs are built for it.

    None when it refused or could not be reached (the next case asks again; run_input then says what happened).
    """
    if endpoint not in _NEGOTIATED:
        try:
            got = probe(endpoint, deadline=deadline)
        except AttackError:  # cannot connect: not the probe's to judge
            return None
        if not isinstance(got, Negotiated):
            return None
        _NEGOTIATED[endpoint] = got
    return _NEGOTIATED[endpoint]


@pytest.mark.parametrize("input_id", _params())
def test_input(input_id: str, patchgate_context: SuiteContext, attack_windows: Windows, observe: Observe) -> None:
    spec = patchgate_context.robustness
    item = _corpus(patchgate_context.corpus_seed)[input_id]
    endpoint = patchgate_context.device
    deadline, health_timeout = float(str(spec["deadline"])), float(str(spec["health_timeout"]))
    if attack_windows.stopped:
        pytest.skip(f"robustness phase stopped: {attack_windows.stopped}")
    if attack_windows.begin(input_id).stop:  # first: a device already gone is told here, not found by a probe
        pytest.skip(f"robustness phase stopped: {attack_windows.stopped}")
    negotiated = _negotiated(endpoint, deadline)
    try:
        outcome = run_input(item, endpoint, negotiated=negotiated, deadline=deadline, health_timeout=health_timeout)
    except AttackError:  # refused at connect: still the window's end (the device may have gone), then C-ECHO
        outcome = Outcome(item.id, None, None, 0.0, skipped="cannot connect to the device")  # no port: compared
    if outcome.health is None:  # not sent (nothing to send to this device): still, does it answer after this case?
        outcome = dataclasses.replace(outcome, health=echo_health(endpoint, health_timeout))
    end = attack_windows.end(input_id)
    fault = harness_fault(outcome.health, patchgate_context.pacs, health_timeout) if outcome.health else ""
    if fault:  # ending the run makes it INCONCLUSIVE, where "unresponsive" would read as a security loosening
        pytest.exit(f"harness fault, robustness input {input_id}: {fault}", returncode=pytest.ExitCode.INTERNAL_ERROR)
    reaction = final(outcome, end.detail if end.exited else None, end.detail if end.restarted else None)
    run = RunDir(Path(patchgate_context.run_dir))
    line = {**outcome.to_json(), "final": reaction.kind, "harness": end.detail}
    run.append_line(run.robustness_reactions, line)  # the whole outcome (counts, tries) for people; not compared

    observe("robustness.reaction", {"kind": reaction.kind, "when": reaction.when})
    observe("robustness.detail", reaction.detail)
    observe("robustness.severity", reaction.severity, security=Security.EXPOSURE)
    if outcome.health is not None:
        observe("robustness.answers_echo", outcome.health.ok, security=Security.PROTECTION)
    if outcome.during is not None:
        observe("robustness.echo_during", outcome.during.ok, security=Security.PROTECTION)
    if item.id == "load.flood":
        observe("robustness.flood", buckets(outcome.counts))
    observe("timing.robustness.seconds", round(reaction.seconds, 3))
    if reaction.needs_revival:
        # Revived (or told to stop: the remaining inputs are then skipped); either way this case's reaction stands.
        attack_windows.revive(input_id, reaction.kind, reaction.detail)
