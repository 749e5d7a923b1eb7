"""The reference modality's behaviour: one frozen `Behaviour` per variant, each a patch with a known effect."""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["DESCRIPTIONS", "PERFORMANCE_METRICS", "VARIANTS", "Behaviour"]


@dataclass(frozen=True)
class Behaviour:
    """What the modality does; the defaults are an IHE Scheduled Workflow conformant modality (RAD-5/6/7/8/10)."""

    query_station: bool = True  # the MWL query carries its Scheduled Station AE Title (RAD-5)
    accession_in_images: bool = True  # Accession Number copied into the images (RAD-8, RAD TF-2x A.1-1)
    accession_in_mpps: bool = True  # ... and into the MPPS Scheduled Step Attributes Sequence (RAD-6)
    final_sets: int = 1  # how many times the final N-SET is sent (PS3.4 F.7.2.2.3 allows one)
    series_in_final: bool = True  # the final N-SET lists the Performed Series Sequence (RAD-7)
    implicit_only: bool = False  # proposes and sends Implicit VR Little Endian only (else Explicit VR LE)
    commit: bool = True  # asks for storage commitment when told to (RAD-10)
    keep_open: float = 5.0  # seconds the N-ACTION association stays open for a report on it (0: released at once)
    resend_failed: bool = True  # after a failure report: send the failed objects again, ask once more
    accept_report_role: bool = True  # its listener accepts the SCP role of a report on a new association
    send_delay: float = 0.0  # seconds between making the images and sending them (a check of each, say)
    start_delay: float = 0.0  # seconds between starting a procedure and its MPPS N-CREATE (a check of the step)


_REGRESSION = Behaviour(accession_in_images=False, final_sets=2, query_station=False, resend_failed=False)

VARIANTS: Mapping[str, Behaviour] = types.MappingProxyType(
    {
        "clean": Behaviour(),
        "clean-rebuild": Behaviour(),
        "no-accession-in-images": Behaviour(accession_in_images=False),
        "no-accession-in-mpps": Behaviour(accession_in_mpps=False),
        "completed-twice": Behaviour(final_sets=2),
        "completed-without-series": Behaviour(series_in_final=False),
        "query-without-station": Behaviour(query_station=False),
        "implicit-only": Behaviour(implicit_only=True),
        "commit-new-association": Behaviour(keep_open=0.0),
        "no-commitment": Behaviour(commit=False),
        "ignores-commitment-failure": Behaviour(resend_failed=False),
        # A report can only meet the role on a new association: this patch also stops waiting on the
        # request's own association (the PACS's `auto` mode reports on the same one while it is open).
        "refuses-report-role": Behaviour(keep_open=0.0, accept_report_role=False),
        "regression": _REGRESSION,
        # Slower, not different: the performance phase's workflow.acquire is what tells it from the clean one.
        "slow-acquire": Behaviour(send_delay=2.0),
        # ... and workflow.start_procedure this one (2 s, as slow-acquire: caught under load, design 20).
        "slow-start": Behaviour(start_delay=2.0),
    }
)

DESCRIPTIONS: Mapping[str, str] = types.MappingProxyType(
    {
        "clean": "the modality as shipped: IHE Scheduled Workflow (worklist, MPPS, images, storage commitment)",
        "clean-rebuild": "a rebuild with a security fix that changes no DICOM behaviour",
        "no-accession-in-images": "leaves Accession Number empty in the images it sends",
        "no-accession-in-mpps": "leaves Accession Number empty in the MPPS Scheduled Step Attributes Sequence",
        "completed-twice": "sends the final MPPS N-SET (COMPLETED / DISCONTINUED) twice",
        "completed-without-series": "ends the MPPS without listing the Performed Series Sequence",
        "query-without-station": "queries the worklist without its Scheduled Station AE Title",
        "implicit-only": "proposes and sends its images in Implicit VR Little Endian only",
        "commit-new-association": "releases the commitment association right after the N-ACTION response",
        "no-commitment": "never asks for storage commitment",
        "ignores-commitment-failure": "does nothing after a commitment failure report (no resend, no new request)",
        "refuses-report-role": "takes commitment reports on a new association only, and its listener refuses the SCP role",
        "regression": "no-accession-in-images, completed-twice, query-without-station and "
        "ignores-commitment-failure at once",
        "slow-acquire": "waits 2 s between making its images and sending them (an on-device check of each image)",
        "slow-start": "waits 2 s between starting a procedure and reporting it (MPPS N-CREATE) to the RIS",
    }
)

# Variants that change only what the performance phase measures: variant -> the metrics that show it (as
# simulators.reference.PERFORMANCE_METRICS). The functional suites must find them unchanged.
PERFORMANCE_METRICS: Mapping[str, tuple[str, ...]] = types.MappingProxyType(
    {"slow-acquire": ("workflow.acquire",), "slow-start": ("workflow.start_procedure",)}
)
