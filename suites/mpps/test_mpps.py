"""MPPS: N-CREATE and N-SET of Modality Performed Procedure Steps sent to the device, with the PS3.4 F.7.2 transitions.

Each case makes its own step (a SOP Instance UID of its own, made from the corpus seed and the
case, so two runs send the same UIDs and no case sees another's state) for a worklist item,
with the attributes a modality copies from it (IHE RAD-6, RAD-7). Every status is recorded by
code and by category (simulators.status), with the Error ID where the device gives one.
"""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from harness.context import SuiteContext
from harness.model import JSON, Endpoint
from harness.plugin import Observe
from simulators.corpus import UID_ROOT
from simulators.modality import Modality
from simulators.ris import ScheduledItem
from simulators.status import category
from simulators.workflow_scu import NResult, PerformedSeries, mpps_final, mpps_in_progress
from suites._support import status_hex

pytestmark = pytest.mark.service("mpps")

_CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
_NOT_UPDATABLE = 0xA710  # PS3.4 Table F.7.2-2: Performed Procedure Step Object may no longer be updated


class Steps:
    """One case's procedure step at the device: the N-CREATE and N-SETs it sent, their statuses in order."""

    def __init__(self, case: str, context: SuiteContext, item: ScheduledItem, modality: Modality, device: Endpoint):
        seed = context.corpus_seed
        self.uid = str(generate_uid(prefix=UID_ROOT, entropy_srcs=[f"patchgate-suites/mpps/{seed}/{case}"]))
        self.case = case
        self.item = item
        self.date = context.worklist_date
        self.station = context.modality_ae_title
        self.modality = modality
        self.device = device
        self.results: list[NResult] = []

    def _done(self, result: NResult) -> NResult:
        assert result.accepted, f"the device refused the MPPS association: {result.error}"
        self.results.append(result)
        return result

    def create(self, status: str = "IN PROGRESS", uid: str | None = None) -> NResult:
        """N-CREATE (IHE RAD-6) of this case's step, IN PROGRESS unless `status` says otherwise."""
        attrs = mpps_in_progress(
            self.item.dataset(),
            station_ae=self.station,
            pps_id=self.case.removeprefix("test_")[:16],  # SH: 16 characters
            start_date=self.date,
            start_time="093000",
        )
        attrs.PerformedProcedureStepStatus = status
        return self._done(self.modality.mpps_create(self.device, uid or self.uid, attrs))

    def set(self, changes: Dataset, uid: str | None = None) -> NResult:
        """N-SET (IHE RAD-7) of this case's step (or of `uid`)."""
        return self._done(self.modality.mpps_set(self.device, uid or self.uid, changes))

    def final(self, state: str, *, series: bool = True) -> NResult:
        """N-SET to the final `state`, listing one series of one image (or, `series=False`, none)."""
        made = [PerformedSeries(self._uid("series"), ((_CT_IMAGE, self._uid("image")),), "PG protocol")]
        changes = mpps_final(state, end_date=self.date, end_time="094500", series=made if series else [])
        return self.set(changes)

    def _uid(self, what: str) -> str:
        return str(generate_uid(prefix=UID_ROOT, entropy_srcs=[f"patchgate-suites/mpps/{self.uid}/{what}"]))

    def statuses(self) -> list[JSON]:
        """Each response: status code and category, Error ID and the attributes it names (N-SET refusals)."""
        return [
            {
                "status": status_hex(r.status),
                "category": category(r.status) if r.status is not None else "none",
                "error_id": status_hex(r.error_id) if r.error_id is not None else None,
                "attribute_ids": [f"{t:08X}" for t in r.attribute_ids],
                "error": r.error,
            }
            for r in self.results
        ]


@pytest.fixture
def steps(
    request: pytest.FixtureRequest,
    patchgate_context: SuiteContext,
    worklist_items: tuple[ScheduledItem, ...],
    modality: Modality,
    device: Endpoint,
) -> Steps:
    return Steps(request.node.name, patchgate_context, worklist_items[0], modality, device)


def _description(text: str) -> Dataset:
    changes = Dataset()
    changes.PerformedProcedureStepDescription = text
    return changes


def test_create(steps: Steps, observe: Observe) -> None:
    """PS3.4 F.7.2.1: N-CREATE of a step IN PROGRESS with its Type 1 attributes succeeds (0x0000)."""
    result = steps.create()
    observe("mpps.statuses", steps.statuses())
    observe("mpps.create.attributes", result.attributes)
    assert result.status == 0x0000, steps.statuses()


def test_create_twice(steps: Steps, observe: Observe) -> None:
    """PS3.4 F.7.2.1.4 (PS3.7 C.5.8): a second N-CREATE with the same SOP Instance UID is 0x0111 Duplicate SOP Instance."""
    steps.create()
    second = steps.create()
    observe("mpps.statuses", steps.statuses())
    assert [r.status for r in steps.results] == [0x0000, 0x0111], steps.statuses()
    assert second.status == 0x0111


def test_create_not_in_progress(steps: Steps, observe: Observe) -> None:
    """PS3.4 F.7.2.1 (Table F.7.2-1): a step is created IN PROGRESS; a create as COMPLETED is refused (a Failure)."""
    result = steps.create(status="COMPLETED")
    observe("mpps.statuses", steps.statuses())
    assert result.status is not None and category(result.status) == "Failure", steps.statuses()


def test_set(steps: Steps, observe: Observe) -> None:
    """PS3.4 F.7.2.2: an N-SET of a settable attribute of a step IN PROGRESS succeeds (0x0000)."""
    steps.create()
    steps.set(_description("PG protocol changed"))
    observe("mpps.statuses", steps.statuses())
    assert [r.status for r in steps.results] == [0x0000, 0x0000], steps.statuses()


def test_set_after_completed(steps: Steps, observe: Observe) -> None:
    """PS3.4 F.7.2.2.3: once COMPLETED a step may no longer be updated: the next N-SET is 0x0110 Processing Failure
    (Error ID 0xA710, Table F.7.2-2, where the device gives one)."""
    steps.create()
    steps.final("COMPLETED")
    again = steps.set(_description("changed after completion"))
    observe("mpps.statuses", steps.statuses())
    assert [r.status for r in steps.results] == [0x0000, 0x0000, 0x0110], steps.statuses()
    assert again.error_id in (None, _NOT_UPDATABLE), steps.statuses()


def test_set_discontinued(steps: Steps, observe: Observe) -> None:
    """PS3.4 F.7.2.2: DISCONTINUED is a final state a step IN PROGRESS may be set to (0x0000)."""
    steps.create()
    steps.final("DISCONTINUED")
    observe("mpps.statuses", steps.statuses())
    assert [r.status for r in steps.results] == [0x0000, 0x0000], steps.statuses()


def test_set_unknown_instance(steps: Steps, observe: Observe) -> None:
    """PS3.4 F.7.2.2.4 (PS3.7 C.5.9): an N-SET of a step never created is 0x0112 No Such SOP Instance."""
    result = steps.set(_description("nobody"))
    observe("mpps.statuses", steps.statuses())
    assert result.status == 0x0112, steps.statuses()


def test_set_not_allowed_attribute(steps: Steps, observe: Observe) -> None:
    """PS3.4 Table F.7.2-1: Patient ID is "Not allowed" in an N-SET; the device refuses it (a Failure; PS3.4 names no code)."""
    steps.create()
    changes = Dataset()
    changes.PatientID = "PG-OTHER"
    result = steps.set(changes)
    observe("mpps.statuses", steps.statuses())
    assert result.status is not None and category(result.status) == "Failure", steps.statuses()


def test_final_without_series(steps: Steps, observe: Observe) -> None:
    """PS3.4 F.7.2.2.2 (Table F.7.2-1, final state): COMPLETED needs a Performed Series Sequence with an item;
    without one the N-SET is refused (a Failure, 0x0121 Missing Attribute Value where the device says which)."""
    steps.create()
    result = steps.final("COMPLETED", series=False)
    observe("mpps.statuses", steps.statuses())
    assert result.status is not None and category(result.status) == "Failure", steps.statuses()
