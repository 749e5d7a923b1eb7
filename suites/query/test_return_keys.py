"""Query: the optional return keys of each Q/R level (PS3.4 C.6.1.1 and C.4.1.1.3.2), each level its own case."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from pydicom.dataset import Dataset

from harness.plugin import Observe
from simulators.corpus import PatientEntry
from simulators.modality import StoreResult
from suites._shared import SharedFind
from suites._support import SUCCESS_OR_WARNING, query, status_hex
from suites.query._answers import canonical, keyed, outcome

Index = tuple[PatientEntry, ...]
Stored = frozenset[str]  # SOP Instance UIDs the device accepted when the corpus was stored

# Keys any level may answer (PS3.4 C.4.1.1.3.2): where to retrieve from, and how soon.
_ANY_LEVEL = {"RetrieveAETitle": "", "InstanceAvailability": ""}
# The optional keys these cases ask for, at one level or another.
_OPTIONAL = frozenset(
    {
        *_ANY_LEVEL,
        "NumberOfPatientRelatedStudies",
        "NumberOfPatientRelatedSeries",
        "NumberOfPatientRelatedInstances",
        "ModalitiesInStudy",
        "SOPClassesInStudy",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
        "NumberOfSeriesRelatedInstances",
    }
)


@dataclass(frozen=True)
class KeysCase:
    """One level's query: the optional keys asked for, about one known entity, and how many it must match.

    Expected counts cover what the device accepted: one that refuses a transfer syntax holds fewer objects.
    """

    id: str
    model: str
    build: Callable[[Index], Dataset]
    expected: Callable[[Index, Stored], int]


def _ct_study(ix: Index) -> tuple[PatientEntry, str]:
    """The first patient and their first study (CT, Secondary Capture and SR series: several modalities)."""
    return ix[0], ix[0].studies[0].study_instance_uid


CASES = [
    KeysCase(
        "patient",
        "patient",
        lambda ix: query(
            "PATIENT",
            PatientID=ix[0].patient_id,
            PatientName="",
            NumberOfPatientRelatedStudies="",
            NumberOfPatientRelatedSeries="",
            NumberOfPatientRelatedInstances="",
            **_ANY_LEVEL,
        ),
        lambda ix, stored: 1,
    ),
    KeysCase(
        "study",
        "study",
        lambda ix: query(
            "STUDY",
            StudyInstanceUID=_ct_study(ix)[1],
            ModalitiesInStudy="",
            SOPClassesInStudy="",
            NumberOfStudyRelatedSeries="",
            NumberOfStudyRelatedInstances="",
            **_ANY_LEVEL,
        ),
        lambda ix, stored: 1,
    ),
    KeysCase(
        "series",
        "study",
        lambda ix: query(
            "SERIES",
            StudyInstanceUID=_ct_study(ix)[1],
            SeriesInstanceUID="",
            Modality="",
            SeriesNumber="",
            NumberOfSeriesRelatedInstances="",
            **_ANY_LEVEL,
        ),
        lambda ix, stored: sum(any(i.sop_instance_uid in stored for i in s.instances) for s in ix[0].studies[0].series),
    ),
    KeysCase(
        "image",
        "study",
        lambda ix: query(
            "IMAGE",
            StudyInstanceUID=_ct_study(ix)[1],
            SeriesInstanceUID=ix[0].studies[0].series[0].series_instance_uid,
            SOPInstanceUID="",
            SOPClassUID="",
            InstanceNumber="",
            **_ANY_LEVEL,
        ),
        lambda ix, stored: sum(i.sop_instance_uid in stored for i in ix[0].studies[0].series[0].instances),
    ),
]


@pytest.mark.service("find")
@pytest.mark.shares_association
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_return_keys(
    case: KeysCase,
    shared_session: SharedFind,
    corpus_index: Index,
    stored_corpus: StoreResult,
    observe: Observe,
) -> None:
    # Optional keys may be answered, answered empty or left out (PS3.4 C.2.2.1.3): what the device does is recorded.
    identifier = case.build(corpus_index)
    result = shared_session.find(identifier, case.model)  # type: ignore[arg-type]
    # The optional keys by name first, so a changed one reads as "find.answers[0].InstanceAvailability".
    optional = sorted({k for k in identifier.dir() if k in _OPTIONAL} | {"SpecificCharacterSet"})
    answers = keyed(result.matches, optional)
    observe("find", {**outcome(result), "answers": answers, "matches": canonical(result.matches)})
    assert result.accepted, f"association not accepted: {result.error}"
    assert result.status == 0x0000, f"C-FIND final status {status_hex(result.status)}: {result.error}"
    stored = frozenset(o.sop_instance_uid for o in stored_corpus.instances if o.status in SUCCESS_OR_WARNING)
    assert len(result.matches) == case.expected(corpus_index, stored), "wrong number of matches"
