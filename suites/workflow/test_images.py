"""The images a device makes for a worklist item (IHE RAD-8): what reaches the PACS, attribute by attribute."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.context import SuiteContext
from harness.plugin import Observe
from suites.workflow._observed import IMAGE_CHECKS, observe_checks, observe_images
from suites.workflow._procedure import Procedure


@pytest.mark.initiates("store")
@pytest.mark.action("acquire")
def test_images(procedure: Callable[[str], Procedure], patchgate_context: SuiteContext, observe: Observe) -> None:
    """C-STORE of the acquired objects (PS3.4 B.2; IHE RAD TF-2 4.8) with the worklist attributes copied in (RAD TF-2x A.1-1).

    `images` holds per object its SOP class and transfer syntax by name, the association and
    calling AE it came with, and its attributes (dates and times of the run as markers);
    `images.iod` dciodvfy's findings. The step is started first when the device reports MPPS,
    so the images' references to it are checked too.
    """
    proc = procedure("SPS-3")
    if "start_procedure" in patchgate_context.actions:
        started = proc.act("start_procedure")
        proc.wait_create(started.settle)
    acquired = proc.act("acquire")
    arrivals = observe_images(observe, proc, proc.wait_arrivals(acquired.settle))
    observe_checks(observe, proc.evidence(), IMAGE_CHECKS)
    assert arrivals, f"no object reached the PACS within {acquired.settle:g} s of acquire"
