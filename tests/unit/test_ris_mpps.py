"""MPPS N-CREATE / N-SET rules (simulators.ris.mpps): each state transition and refusal, with its PS3.4 clause."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from simulators.ris.mpps import MppsStore
from simulators.ris.worklist import scheduled_items
from simulators.workflow_scu import PerformedSeries, mpps_final, mpps_in_progress

UID = "1.2.826.0.1.3680043.10.1422.9.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
ITEM = scheduled_items(1422, "20261130", "MOD1")[0].dataset()


def store(*, reopen: bool = False) -> MppsStore:
    return MppsStore(lambda n: f"1.2.826.0.1.3680043.10.1422.8.{n}", reopen=reopen)


def create_attrs() -> Dataset:
    return mpps_in_progress(ITEM, station_ae="MOD1", pps_id="PPS1", start_date="20261130", start_time="080500")


def final(state: str = "COMPLETED", *, series: bool = True) -> Dataset:
    made = [PerformedSeries("1.2.826.0.1.3680043.10.1422.7.1", ((CT, "1.2.826.0.1.3680043.10.1422.7.1.1"),))]
    return mpps_final(state, end_date="20261130", end_time="081500", series=made if series else [])


def created(mpps: MppsStore) -> str:
    reply = mpps.create(UID, create_attrs())
    assert reply.status == 0x0000, reply
    return UID


def test_create_in_progress_succeeds_and_answers_the_attribute_list() -> None:
    """PS3.4 F.7.2.1.3: the SCP creates the instance with the attributes given; status 0x0000, Attribute List returned."""
    mpps = store()
    reply = mpps.create(UID, create_attrs())
    assert (reply.status, reply.sop_instance_uid) == (0x0000, UID)
    assert reply.attributes is not None and reply.attributes.PerformedProcedureStepStatus == "IN PROGRESS"
    stored = mpps.get(UID)
    assert stored is not None and stored.PerformedProcedureStepID == "PPS1"


def test_create_without_a_uid_gets_one_from_the_scp() -> None:
    """PS3.7 10.1.5.1.4 / PS3.4 F.7.2.1.3: without an Affected SOP Instance UID the SCP makes and returns one."""
    mpps = store()
    first, second = mpps.create(None, create_attrs()), mpps.create(None, create_attrs())
    assert (first.status, second.status) == (0x0000, 0x0000)
    assert first.sop_instance_uid == "1.2.826.0.1.3680043.10.1422.8.1"
    assert second.sop_instance_uid == "1.2.826.0.1.3680043.10.1422.8.2"


def test_create_twice_with_the_same_uid_is_a_duplicate_0111() -> None:
    """PS3.4 F.7.2.1.4 / PS3.7 C.5.9: Failure 0x0111 Duplicate SOP Instance; the first step is left as it was."""
    mpps = store()
    created(mpps)
    changed = create_attrs()
    changed.PerformedProcedureStepID = "OTHER"
    assert mpps.create(UID, changed).status == 0x0111
    stored = mpps.get(UID)
    assert stored is not None and stored.PerformedProcedureStepID == "PPS1"


def test_create_not_in_progress_is_an_invalid_attribute_value_0106() -> None:
    """PS3.4 F.7.2.1.2: the SCU shall create a step with status IN PROGRESS; anything else 0x0106."""
    attrs = create_attrs()
    attrs.PerformedProcedureStepStatus = "COMPLETED"
    reply = store().create(UID, attrs)
    assert reply.status == 0x0106 and "IN PROGRESS" in reply.error_comment


def test_create_missing_a_type1_attribute_is_0120_naming_it() -> None:
    """PS3.4 F.7.2.1.2 (Table F.7.2-1, N-CREATE Type 1): a missing required attribute is Failure 0x0120."""
    for keyword in (
        "PerformedProcedureStepStatus",
        "PerformedProcedureStepID",
        "PerformedStationAETitle",
        "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime",
        "Modality",
        "ScheduledStepAttributesSequence",
    ):
        attrs = create_attrs()
        delattr(attrs, keyword)
        reply = store().create(UID, attrs)
        assert reply.status == 0x0120, keyword
        assert keyword in reply.error_comment


def test_create_with_an_empty_type1_value_is_0121() -> None:
    """PS3.4 F.7.2.1.2: a Type 1 attribute present without a value is Failure 0x0121 Missing Attribute Value."""
    attrs = create_attrs()
    attrs.PerformedStationAETitle = ""
    assert store().create(UID, attrs).status == 0x0121


def test_create_without_study_uid_in_the_scheduled_step_is_refused() -> None:
    """PS3.4 Table F.7.2-1: Scheduled Step Attributes Sequence > Study Instance UID is Type 1 at N-CREATE."""
    attrs = create_attrs()
    del attrs.ScheduledStepAttributesSequence[0].StudyInstanceUID
    reply = store().create(UID, attrs)
    assert reply.status == 0x0120 and "StudyInstanceUID" in reply.error_comment


def test_set_an_unknown_instance_is_0112() -> None:
    """PS3.4 F.7.2.2.4 / PS3.7 C.5.10: Failure 0x0112 No Such SOP Instance."""
    assert store().set("1.2.3.4", final()).status == 0x0112


def test_set_in_progress_then_completed_succeeds() -> None:
    """PS3.4 F.7.2.2.3: the SCP updates a step IN PROGRESS; COMPLETED with its final attributes is accepted."""
    mpps = store()
    created(mpps)
    progress = Dataset()
    progress.PerformedProcedureStepDescription = "halfway"
    assert mpps.set(UID, progress).status == 0x0000
    reply = mpps.set(UID, final())
    assert reply.status == 0x0000 and reply.attributes is not None
    stored = mpps.get(UID)
    assert stored is not None
    assert (stored.PerformedProcedureStepStatus, stored.PerformedProcedureStepDescription) == ("COMPLETED", "halfway")


def test_set_after_completed_is_a_processing_failure_0110_with_error_id_a710() -> None:
    """PS3.4 F.7.2.2.3 / F.7.2.2.4 (Table F.7.2-2): a COMPLETED step may no longer be updated: 0x0110, Error ID 0xA710."""
    mpps = store()
    created(mpps)
    assert mpps.set(UID, final()).status == 0x0000
    again = mpps.set(UID, final())
    assert (again.status, again.error_id) == (0x0110, 0xA710)
    assert again.error_comment == "Performed Procedure Step Object may no longer be updated"
    status = again.status_dataset()
    assert (status.Status, status.ErrorID) == (0x0110, 0xA710)


def test_set_after_discontinued_is_refused_the_same_way() -> None:
    """PS3.4 F.7.2.2.3: DISCONTINUED is final too: any further N-SET is 0x0110 / 0xA710."""
    mpps = store()
    created(mpps)
    assert mpps.set(UID, final("DISCONTINUED")).status == 0x0000
    progress = Dataset()
    progress.PerformedProcedureStepDescription = "late"
    assert (mpps.set(UID, progress).status, mpps.set(UID, progress).error_id) == (0x0110, 0xA710)


def test_the_mpps_reopen_quirk_accepts_a_set_after_completed() -> None:
    """RisQuirks.mpps_reopen: the reference RIS variant that violates PS3.4 F.7.2.2.3 (for the mutation suites)."""
    mpps = store(reopen=True)
    created(mpps)
    assert mpps.set(UID, final()).status == 0x0000
    assert mpps.set(UID, final("DISCONTINUED")).status == 0x0000


def test_set_a_not_allowed_attribute_is_0106_with_its_identifier() -> None:
    """PS3.4 Table F.7.2-1 ("Not allowed" for N-SET): e.g. PPS ID and Patient ID; answered 0x0106 (our choice) listing them."""
    mpps = store()
    created(mpps)
    change = Dataset()
    change.PerformedProcedureStepID = "PPS2"
    change.PatientID = "OTHER"
    reply = mpps.set(UID, change)
    assert reply.status == 0x0106
    assert reply.attribute_ids == (0x00100020, 0x00400253)
    stored = mpps.get(UID)
    assert stored is not None and stored.PerformedProcedureStepID == "PPS1"


def test_set_an_unknown_status_value_is_0106() -> None:
    """PS3.3 C.4.14 defined terms: IN PROGRESS, DISCONTINUED, COMPLETED; any other value is Invalid Attribute Value."""
    mpps = store()
    created(mpps)
    change = Dataset()
    change.PerformedProcedureStepStatus = "PAUSED"
    reply = mpps.set(UID, change)
    assert reply.status == 0x0106 and reply.attribute_ids == (0x00400252,)


def test_final_state_without_performed_series_is_0121() -> None:
    """PS3.4 F.7.2.2.2 (Table F.7.2-1 final state): COMPLETED needs Performed Series Sequence with an item: 0x0121."""
    mpps = store()
    created(mpps)
    reply = mpps.set(UID, final(series=False))
    assert reply.status == 0x0121 and reply.attribute_ids == (0x00400340,)
    stored = mpps.get(UID)
    assert stored is not None and stored.PerformedProcedureStepStatus == "IN PROGRESS"


def test_final_state_without_end_date_is_0121() -> None:
    """PS3.4 F.7.2.2.2: PPS End Date and Time are required once a step is final."""
    mpps = store()
    created(mpps)
    change = final()
    change.PerformedProcedureStepEndDate = ""
    reply = mpps.set(UID, change)
    assert reply.status == 0x0121 and "PerformedProcedureStepEndDate" in reply.error_comment


def test_final_state_with_a_series_without_uid_is_0121() -> None:
    """PS3.4 Table F.7.2-1: Performed Series Sequence > Series Instance UID is Type 1."""
    mpps = store()
    created(mpps)
    change = final()
    change.PerformedSeriesSequence = DicomSequence([Dataset()])
    assert mpps.set(UID, change).status == 0x0121
