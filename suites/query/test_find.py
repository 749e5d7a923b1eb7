"""Query: C-FIND at each level of Patient Root and Study Root, with each matching type of PS3.4 C.2.2.2."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from pydicom.dataset import Dataset

from harness.model import Endpoint
from harness.plugin import Observe
from simulators.corpus import PatientEntry, SeriesEntry, StudyEntry
from simulators.modality import Modality, StoreResult
from simulators.status import category, refused
from suites._scope import Scope
from suites._shared import SharedFind
from suites._support import query, status_hex
from suites.query._answers import canonical, outcome

Index = tuple[PatientEntry, ...]


def _studies(ix: Index) -> list[tuple[PatientEntry, StudyEntry]]:
    return [(p, s) for p in ix for s in p.studies]


def _series(ix: Index) -> list[tuple[PatientEntry, StudyEntry, SeriesEntry]]:
    return [(p, st, se) for p, st in _studies(ix) for se in st.series]


@dataclass(frozen=True)
class FindCase:
    """One query: how to build it from the corpus index, and how many matches the standard requires."""

    id: str
    model: str  # "patient" or "study"
    build: Callable[[Index], Dataset]
    expected: Callable[[Index], int] | None  # None: implementation-defined, observed only


def _prefix(ix: Index) -> str:
    """What the run's PatientIDs start with: "PG-", or "PG<tag>-" with per-run identities (simulators.corpus)."""
    return ix[0].patient_id.rsplit("-", 1)[0] + "-"


def _first_patient_with_studies(ix: Index, n: int) -> PatientEntry:
    return next(p for p in ix if len(p.studies) >= n)


CASES = [
    # Patient Root, PATIENT level
    FindCase("patient-universal", "patient", lambda ix: query("PATIENT", PatientID="", PatientName=""), len),
    FindCase(
        "patient-single-value",
        "patient",
        lambda ix: query("PATIENT", PatientID=ix[1].patient_id, PatientName=""),
        lambda ix: 1,
    ),
    FindCase(
        "patient-wildcard-star",
        "patient",
        lambda ix: query("PATIENT", PatientID=_prefix(ix) + "*", PatientName="", PatientBirthDate=""),
        len,
    ),
    FindCase(
        "patient-wildcard-question",
        "patient",
        lambda ix: query("PATIENT", PatientID=_prefix(ix) + "000?", PatientSex=""),
        len,
    ),
    FindCase(
        "patient-date-range",
        "patient",
        lambda ix: query("PATIENT", PatientID="", PatientBirthDate="19700101-19801231"),
        lambda ix: sum("19700101" <= p.patient_birth_date <= "19801231" for p in ix),
    ),
    FindCase(
        "patient-name-wildcard",
        "patient",
        lambda ix: query("PATIENT", PatientID="", PatientName="DOE*"),
        lambda ix: sum(p.patient_name.startswith("DOE") for p in ix),
    ),
    # PN case sensitivity is implementation-defined (PS3.4 C.2.2.2.1): observed, not required.
    FindCase(
        "patient-name-lowercase",
        "patient",
        lambda ix: query("PATIENT", PatientID="", PatientName="doe*"),
        None,
    ),
    # Patient Root, lower levels (unique keys of the levels above are required)
    FindCase(
        "patient-root-study-level",
        "patient",
        lambda ix: query(
            "STUDY", PatientID=_first_patient_with_studies(ix, 2).patient_id, StudyInstanceUID="", StudyDate=""
        ),
        lambda ix: len(_first_patient_with_studies(ix, 2).studies),
    ),
    FindCase(
        "patient-root-series-level",
        "patient",
        lambda ix: query(
            "SERIES",
            PatientID=ix[0].patient_id,
            StudyInstanceUID=ix[0].studies[0].study_instance_uid,
            SeriesInstanceUID="",
            Modality="",
        ),
        lambda ix: len(ix[0].studies[0].series),
    ),
    FindCase(
        "patient-root-image-level",
        "patient",
        lambda ix: query(
            "IMAGE",
            PatientID=ix[0].patient_id,
            StudyInstanceUID=ix[0].studies[0].study_instance_uid,
            SeriesInstanceUID=ix[0].studies[0].series[0].series_instance_uid,
            SOPInstanceUID="",
            InstanceNumber="",
        ),
        lambda ix: len(ix[0].studies[0].series[0].instances),
    ),
    # Study Root, STUDY level
    FindCase(
        "study-universal",
        "study",
        lambda ix: query("STUDY", StudyInstanceUID="", StudyDate="", PatientName=""),
        lambda ix: len(_studies(ix)),
    ),
    FindCase(
        "study-single-value",
        "study",
        lambda ix: query("STUDY", AccessionNumber=_studies(ix)[2][1].accession_number, StudyInstanceUID=""),
        lambda ix: 1,
    ),
    FindCase(
        "study-date-range-closed",
        "study",
        lambda ix: query("STUDY", StudyDate="20220101-20231231", StudyInstanceUID=""),
        lambda ix: sum("20220101" <= s.study_date <= "20231231" for _, s in _studies(ix)),
    ),
    FindCase(
        "study-date-range-from",
        "study",
        lambda ix: query("STUDY", StudyDate="20230601-", StudyInstanceUID=""),
        lambda ix: sum(s.study_date >= "20230601" for _, s in _studies(ix)),
    ),
    FindCase(
        "study-date-range-until",
        "study",
        lambda ix: query("STUDY", StudyDate="-20211231", StudyInstanceUID=""),
        lambda ix: sum(s.study_date <= "20211231" for _, s in _studies(ix)),
    ),
    FindCase(
        "study-time-range",
        "study",
        lambda ix: query("STUDY", StudyTime="080000-100000", StudyInstanceUID=""),
        lambda ix: sum("080000" <= s.study_time <= "100000" for _, s in _studies(ix)),
    ),
    FindCase(
        "study-uid-list",
        "study",
        lambda ix: query(
            "STUDY",
            StudyInstanceUID="\\".join(s.study_instance_uid for _, s in _studies(ix)[:2]),
            StudyDescription="",
        ),
        lambda ix: 2,
    ),
    FindCase(
        "study-description-wildcard",
        "study",
        lambda ix: query("STUDY", StudyDescription="*CHEST*", StudyInstanceUID=""),
        lambda ix: sum("CHEST" in s.study_description for _, s in _studies(ix)),
    ),
    FindCase(
        "study-related-counts",
        "study",
        lambda ix: query(
            "STUDY",
            StudyInstanceUID=_studies(ix)[0][1].study_instance_uid,
            NumberOfStudyRelatedSeries="",
            NumberOfStudyRelatedInstances="",
        ),
        lambda ix: 1,
    ),
    # Study Root, lower levels
    FindCase(
        "study-root-series-level",
        "study",
        lambda ix: query(
            "SERIES", StudyInstanceUID=_studies(ix)[0][1].study_instance_uid, SeriesInstanceUID="", Modality=""
        ),
        lambda ix: len(_studies(ix)[0][1].series),
    ),
    FindCase(
        "study-root-series-single-value",
        "study",
        lambda ix: query(
            "SERIES",
            StudyInstanceUID=_series(ix)[0][1].study_instance_uid,
            Modality=_series(ix)[0][2].modality,
            SeriesInstanceUID="",
        ),
        lambda ix: sum(se.modality == _series(ix)[0][2].modality for _, _, se in _series(ix)[:3]),
    ),
    FindCase(
        "study-root-image-level",
        "study",
        lambda ix: query(
            "IMAGE",
            StudyInstanceUID=_series(ix)[-1][1].study_instance_uid,
            SeriesInstanceUID=_series(ix)[-1][2].series_instance_uid,
            SOPInstanceUID="",
            SOPClassUID="",
        ),
        lambda ix: len(_series(ix)[-1][2].instances),
    ),
    FindCase(
        "study-root-image-uid-list",
        "study",
        lambda ix: query(
            "IMAGE",
            StudyInstanceUID=_series(ix)[0][1].study_instance_uid,
            SeriesInstanceUID=_series(ix)[0][2].series_instance_uid,
            SOPInstanceUID="\\".join(i.sop_instance_uid for i in _series(ix)[0][2].instances[:2]),
        ),
        lambda ix: 2,
    ),
]


@pytest.mark.service("find")
@pytest.mark.shares_association
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_find(
    case: FindCase,
    shared_session: SharedFind,
    corpus_index: Index,
    stored_corpus: StoreResult,
    observe: Observe,
) -> None:
    result = shared_session.find(case.build(corpus_index), case.model)  # type: ignore[arg-type]
    observe(
        "find",
        {"status": status_hex(result.status), "count": len(result.matches), "matches": canonical(result.matches)},
    )
    assert result.accepted, f"association not accepted: {result.error}"
    assert result.status == 0x0000, f"C-FIND final status {status_hex(result.status)}: {result.error}"
    if case.expected is not None:
        assert len(result.matches) == case.expected(corpus_index), "wrong number of matches"


@dataclass(frozen=True)
class RefusedCase:
    """A query the device should refuse; `must_fail`: the standard leaves it no other answer."""

    id: str
    model: str
    build: Callable[[Index], Dataset]
    must_fail: bool


REFUSED = [
    # No such level in either information model (PS3.4 C.4.1.2.1: Identifier does not match SOP Class).
    RefusedCase("unknown-level", "patient", lambda ix: query("NOSUCHLEVEL", PatientID=""), must_fail=True),
    # SERIES in Study Root without the StudyInstanceUID above it: hierarchical SCPs refuse, relational ones may answer.
    RefusedCase(
        "missing-unique-key", "study", lambda ix: query("SERIES", SeriesInstanceUID="", Modality=""), must_fail=False
    ),
]


@pytest.mark.service("find")
@pytest.mark.parametrize("case", REFUSED, ids=[c.id for c in REFUSED])
def test_find_refused(
    case: RefusedCase,
    device: Endpoint,
    modality: Modality,
    corpus_index: Index,
    stored_corpus: StoreResult,
    scope: Scope,
    observe: Observe,
) -> None:
    result = scope.own(modality.find(device, case.build(corpus_index), case.model))  # type: ignore[arg-type]
    observe("find", outcome(result))
    assert result.accepted, f"association not accepted: {result.error}"
    assert result.status is not None, f"no final C-FIND status: {result.error}"
    if case.must_fail:
        assert refused(result.status), (
            f"the query must fail, got {status_hex(result.status)} ({category(result.status)})"
        )
