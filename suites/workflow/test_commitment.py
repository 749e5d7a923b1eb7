"""Storage Commitment a device asks for (IHE RAD-10): what it asks to commit, how it takes the report, what it does on failure."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import pytest

from harness.context import SuiteContext
from harness.model import JSON
from harness.plugin import ActionResult, Observe
from simulators.pacs import storage_name
from suites._window import wait_for
from suites.workflow._observed import observe_checks, observe_commitment
from suites.workflow._procedure import Procedure, Reaction


def _commit(proc: Procedure, received: Sequence[tuple[str, str]]) -> ActionResult:
    """The device's commit action, told what the PACS received (a device that knows what it sent may ignore it)."""
    return proc.act("commit", instances=json.dumps([list(ref) for ref in received]))


def _acquired(proc: Procedure) -> list[tuple[str, str]]:
    acquired = proc.act("acquire")
    proc.wait_arrivals(acquired.settle)
    received = proc.received()
    assert received, f"no object reached the PACS within {acquired.settle:g} s of acquire"
    return received


@pytest.mark.initiates("commitment")
@pytest.mark.action("acquire", "commit")
def test_commitment_all_held(
    procedure: Callable[[str], Procedure], patchgate_context: SuiteContext, observe: Observe
) -> None:
    """N-ACTION Request Storage Commitment of what was sent, report of all held (PS3.4 J.3.2, J.3.3; RAD TF-2 4.10).

    The PACS simulator judges from the files it holds, so every object is committed: event type 1.
    """
    proc = procedure("SPS-4")
    received = _acquired(proc)
    committed = _commit(proc, received)
    proc.wait_report(committed.settle)
    outcome = observe_commitment(observe, proc, received)
    observe_checks(observe, proc.evidence(received), ("commit_covers_sent",))
    asked = proc.actions()
    if asked and "commit_result" in patchgate_context.actions:
        # The device's own view of the result (observed as action.commit_result.answer when record = true).
        proc.act("commit_result", transaction_uid=str(asked[0].get("transaction_uid", "")))
    assert proc.first_refs() is not None, f"no N-ACTION reached the PACS within {committed.settle:g} s of commit"
    report = outcome["report"]
    assert isinstance(report, dict), f"the PACS journalled no report within {committed.settle:g} s (see commit.how)"
    assert report.get("event_type") == 1, f"the PACS could not commit all that was asked: {report.get('failed')}"


@pytest.mark.initiates("commitment")
@pytest.mark.action("acquire", "commit")
def test_commitment_failure(procedure: Callable[[str], Procedure], observe: Observe) -> None:
    """A report with a failure (PS3.4 J.3.3, Failure Reason 0x0112, PS3.3 C.14.1.1) and the device's reaction.

    The suite deletes the first object the PACS received before the device asks, so the report
    lists it as failed. `commit.failure_reaction`, within the commit's settle after the report:
    `resent` (the object C-STOREd again), `asked_again` (another N-ACTION), both
    (`resent+asked_again`) or `nothing` (IHE RAD TF-2 4.10.4.1.3 leaves it to the modality).
    """
    proc = procedure("SPS-5")
    received = _acquired(proc)
    victim = received[0][1]
    (proc.storage / storage_name(victim)).unlink()
    committed = _commit(proc, received)
    proc.wait_report(committed.settle)
    outcome = observe_commitment(observe, proc, received)

    def reaction() -> Reaction:
        return Reaction(resent=proc.times_received(victim) > 1, asked_again=len(proc.actions()) > 1)

    seen = wait_for(reaction, lambda r: r.resent and r.asked_again, committed.settle)
    observe("commit.failure_reaction", seen.word)
    observe_checks(observe, proc.evidence(received), ("commit_covers_sent",))
    report: JSON = outcome["report"]
    assert proc.first_refs() is not None, f"no N-ACTION reached the PACS within {committed.settle:g} s of commit"
    assert isinstance(report, dict), f"the PACS journalled no report within {committed.settle:g} s (see commit.how)"
    assert report.get("event_type") == 2, f"the deleted object was reported committed: {report}"
