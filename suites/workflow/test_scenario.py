"""The whole IHE Scheduled Workflow for one item (RAD-5, 6, 8, 7, 10): every copy of the worklist data checked."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from harness.context import SuiteContext
from harness.plugin import Observe, not_applicable
from suites.workflow._observed import observe_checks
from suites.workflow._procedure import Procedure
from suites.workflow.integrity import CHECKS

# The chain, in IHE order: worklist, MPPS in progress, images, MPPS completed, commitment.
STEPS = ("query_worklist", "start_procedure", "acquire", "complete", "commit")


@pytest.mark.initiates("mwl")
@pytest.mark.initiates("store")
def test_scenario(procedure: Callable[[str], Procedure], patchgate_context: SuiteContext, observe: Observe) -> None:
    """IHE RAD TF-1 4 Scheduled Workflow, integrity per RAD TF-2x Table A.1-1: one `ihe.<check>` each.

    The device's `scenario` action if it declares one (it does the chain itself, committing what
    it knows it sent), else each declared step of STEPS in order. Checks the device has no data
    for (no MPPS, no commitment) are `n/a`.
    """
    proc = procedure("SPS-6")
    declared, initiates = patchgate_context.actions, patchgate_context.initiates
    if "scenario" in declared:
        done = proc.act("scenario")
        settle = done.settle
        if "mpps" in initiates:
            proc.wait_final(settle)
        proc.wait_arrivals(settle)
        if "commitment" in initiates:
            proc.wait_report(settle)
        steps = ["scenario"]
    else:
        steps = [step for step in STEPS if step in declared]
        if "acquire" not in steps:
            not_applicable("the device's profile declares neither a scenario nor an acquire action")
        for step in steps:
            if step == "query_worklist":
                proc.wait_find(proc.act(step, item=False).settle)
            elif step == "start_procedure":
                proc.wait_create(proc.act(step).settle)
            elif step == "acquire":
                proc.wait_arrivals(proc.act(step).settle)
            elif step == "complete":
                proc.wait_final(proc.act(step).settle)
            else:
                received = proc.received()
                proc.wait_report(proc.act(step, instances=json.dumps([list(r) for r in received])).settle)
    observe("scenario.steps", steps)
    verdicts = observe_checks(observe, proc.evidence(), CHECKS)
    assert proc.received(), "the scenario left no object at the PACS"
    assert verdicts, "no integrity check ran"
