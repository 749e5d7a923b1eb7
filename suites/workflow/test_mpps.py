"""Modality Performed Procedure Step (IHE RAD-6, RAD-7): what the device reports to the RIS while it performs an item."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.plugin import Observe
from suites.workflow._observed import MPPS_CHECKS, observe_checks, observe_images, observe_mpps
from suites.workflow._procedure import Procedure


@pytest.mark.initiates("mpps")
@pytest.mark.action("start_procedure", "acquire", "complete")
def test_mpps_completed(procedure: Callable[[str], Procedure], observe: Observe) -> None:
    """N-CREATE IN PROGRESS, images, N-SET COMPLETED with the series made (PS3.4 F.7.2.1, F.7.2.2; RAD TF-2 4.6, 4.7).

    `mpps.set.statuses` holds the RIS's answer to every N-SET: a second final N-SET is refused
    with 0x0110 (PS3.4 F.7.2.2.3), a final one without Performed Series Sequence with 0x0121.
    """
    proc = procedure("SPS-1")
    started = proc.act("start_procedure")
    proc.wait_create(started.settle)
    acquired = proc.act("acquire")
    arrivals = proc.wait_arrivals(acquired.settle)
    completed = proc.act("complete")
    proc.wait_final(completed.settle)
    state = observe_mpps(observe, proc)
    observe_images(observe, proc, arrivals)
    observe_checks(observe, proc.evidence(), MPPS_CHECKS)
    create = proc.create()
    assert create is not None, f"no MPPS N-CREATE reached the RIS within {started.settle:g} s of start_procedure"
    assert create.status == "0x0000", f"the RIS refused the N-CREATE: {create.status} {create.error_comment}"
    assert state == "COMPLETED", f"the step ended {state!r} at the RIS, not COMPLETED (see mpps.set.statuses)"


@pytest.mark.initiates("mpps")
@pytest.mark.action("start_procedure", "discontinue")
def test_mpps_discontinued(procedure: Callable[[str], Procedure], observe: Observe) -> None:
    """N-CREATE IN PROGRESS then N-SET DISCONTINUED, no images (PS3.4 F.7.2.2; IHE RAD TF-2 4.7.4.1.2)."""
    proc = procedure("SPS-2")
    started = proc.act("start_procedure")
    proc.wait_create(started.settle)
    stopped = proc.act("discontinue")
    proc.wait_final(stopped.settle)
    state = observe_mpps(observe, proc)
    observe_checks(observe, proc.evidence(), MPPS_CHECKS)
    create = proc.create()
    assert create is not None, f"no MPPS N-CREATE reached the RIS within {started.settle:g} s of start_procedure"
    assert create.status == "0x0000", f"the RIS refused the N-CREATE: {create.status} {create.error_comment}"
    assert state == "DISCONTINUED", f"the step ended {state!r} at the RIS, not DISCONTINUED (see mpps.set.statuses)"
