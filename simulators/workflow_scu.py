"""The modality's workflow side, shared by the RIS and its peers: MWL and MPPS UIDs, the N-message result, MPPS datasets.

`Modality.worklist`, `.mpps_create` and `.mpps_set` (simulators.modality) do the associations;
what they return (`NResult`, read by `n_result`) and the MPPS datasets a modality sends
(`mpps_in_progress`, `mpps_final`: RAD-6 and RAD-7) live here, so modality.py stays the
association plumbing and the workflow rules sit in one place.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from simulators._net import status_hex
from simulators.endpoint import JSON

__all__ = ["MPPS", "MWL_FIND", "NResult", "PerformedSeries", "mpps_final", "mpps_in_progress", "n_result"]

# Modality Worklist Information Model - FIND (PS3.4 K.6.1.2).
MWL_FIND = "1.2.840.10008.5.1.4.31"
# Modality Performed Procedure Step SOP Class (PS3.4 F.7.1).
MPPS = "1.2.840.10008.3.1.2.3.3"
# Copied from the worklist item into the Scheduled Step Attributes Sequence (PS3.4 F.7.2-1; IHE RAD TF-2x A.1-1).
_SCHEDULED_STEP_KEYS = (
    "AccessionNumber",
    "ReferencedStudySequence",
    "StudyInstanceUID",
    "RequestedProcedureDescription",
)
_SPS_KEYS = ("ScheduledProcedureStepID", "ScheduledProcedureStepDescription", "ScheduledProtocolCodeSequence")
_PATIENT_KEYS = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex")


@dataclass(frozen=True)
class NResult:
    """An N-CREATE or N-SET: the status and its optional fields, the SOP instance, and the response Attribute List."""

    accepted: bool  # the association came up with the context
    status: int | None  # None: no response
    sop_instance_uid: str = ""  # N-CREATE: the one the SCP created (ours, or its own if we sent none)
    error_comment: str = ""
    error_id: int | None = None
    attribute_ids: tuple[int, ...] = ()
    attributes: JSON = None  # the response Attribute List in DICOM JSON; None if none
    error: str = ""

    def summary(self) -> dict[str, JSON]:
        return {
            "accepted": self.accepted,
            "status": status_hex(self.status),
            "error_comment": self.error_comment,
            "error_id": status_hex(self.error_id),
            "attribute_ids": [f"{t:08X}" for t in self.attribute_ids],
            "error": self.error,
        }


def n_result(status: Dataset, attributes: Dataset | None, sop_instance_uid: str, error: str = "") -> NResult:
    """The NResult of what pynetdicom's send_n_create / send_n_set returned (an empty status: no response)."""
    if "Status" not in status:
        return NResult(True, None, sop_instance_uid, error=error or "no response from the peer")
    ids = status.get("AttributeIdentifierList")
    id_list = [] if ids in (None, "") else [ids] if isinstance(ids, int) else list(ids)
    error_id = status.get("ErrorID")
    return NResult(
        True,
        int(status.Status),
        sop_instance_uid,
        str(status.get("ErrorComment", "") or ""),
        int(error_id) if error_id not in (None, "") else None,
        tuple(int(t) for t in id_list),
        attributes.to_json_dict() if attributes is not None else None,
    )


def mpps_in_progress(
    item: Dataset, *, station_ae: str, pps_id: str, start_date: str, start_time: str, modality: str = ""
) -> Dataset:
    """The N-CREATE attribute list for starting the procedure of an MWL `item` (IHE RAD-6): status IN PROGRESS.

    Patient and scheduling attributes are copied from the item (deep copies: changing the MPPS must not change
    the item a caller copies into its images); `modality` defaults to the SPS's.
    """
    item = copy.deepcopy(item)
    sps = item.ScheduledProcedureStepSequence[0] if item.get("ScheduledProcedureStepSequence") else Dataset()
    ds = Dataset()
    if "SpecificCharacterSet" in item:
        ds.SpecificCharacterSet = item.SpecificCharacterSet
    step = Dataset()
    for keyword in _SCHEDULED_STEP_KEYS:
        if keyword in item:
            step[keyword] = item[keyword]
    for keyword in _SPS_KEYS:
        if keyword in sps:
            step[keyword] = sps[keyword]
    if "RequestedProcedureID" in item:
        step.RequestedProcedureID = item.RequestedProcedureID
    ds.ScheduledStepAttributesSequence = DicomSequence([step])
    for keyword in _PATIENT_KEYS:
        if keyword in item:
            ds[keyword] = item[keyword]
    ds.ReferencedPatientSequence = DicomSequence()
    ds.PerformedProcedureStepID = pps_id
    ds.PerformedStationAETitle = station_ae
    ds.PerformedStationName = ""
    ds.PerformedLocation = ""
    ds.PerformedProcedureStepStartDate = start_date
    ds.PerformedProcedureStepStartTime = start_time
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.PerformedProcedureStepDescription = str(sps.get("ScheduledProcedureStepDescription", ""))
    ds.PerformedProcedureTypeDescription = ""
    ds.ProcedureCodeSequence = item.get("RequestedProcedureCodeSequence", DicomSequence())
    ds.PerformedProcedureStepEndDate = ""
    ds.PerformedProcedureStepEndTime = ""
    ds.Modality = modality or str(sps.get("Modality", ""))
    ds.StudyID = ""
    ds.PerformedProtocolCodeSequence = DicomSequence()
    ds.PerformedSeriesSequence = DicomSequence()
    return ds


@dataclass(frozen=True)
class PerformedSeries:
    """One series a procedure step made: what the final N-SET lists in Performed Series Sequence."""

    series_instance_uid: str
    images: tuple[tuple[str, str], ...]  # (SOP Class UID, SOP Instance UID)
    protocol_name: str = ""
    retrieve_ae_title: str = ""


def mpps_final(state: str, *, end_date: str, end_time: str, series: Sequence[PerformedSeries]) -> Dataset:
    """The N-SET modification list ending a step (IHE RAD-7): COMPLETED or DISCONTINUED, end time, series made."""
    ds = Dataset()
    ds.PerformedProcedureStepStatus = state
    ds.PerformedProcedureStepEndDate = end_date
    ds.PerformedProcedureStepEndTime = end_time
    items = DicomSequence()
    for made in series:
        item = Dataset()
        item.PerformingPhysicianName = ""
        item.ProtocolName = made.protocol_name
        item.OperatorsName = ""
        item.SeriesInstanceUID = made.series_instance_uid
        item.SeriesDescription = ""
        item.RetrieveAETitle = made.retrieve_ae_title
        refs = DicomSequence()
        for sop_class, sop_instance in made.images:
            ref = Dataset()
            ref.ReferencedSOPClassUID = sop_class
            ref.ReferencedSOPInstanceUID = sop_instance
            refs.append(ref)
        item.ReferencedImageSequence = refs
        item.ReferencedNonImageCompositeSOPInstanceSequence = DicomSequence()
        items.append(item)
    ds.PerformedSeriesSequence = items
    return ds
