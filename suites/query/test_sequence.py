"""Query: sequence matching (PS3.4 C.2.2.2.6) on the series-level Request Attributes Sequence (0040,0275)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from harness.plugin import Observe
from simulators.corpus import PatientEntry
from simulators.modality import StoreResult
from suites._shared import SharedFind
from suites._support import query, status_hex
from suites.query._answers import canonical, outcome

Index = tuple[PatientEntry, ...]


@dataclass(frozen=True)
class SequenceCase:
    """Item keys of the single RequestAttributesSequence item (None: no item); `must_match`: the series is found."""

    id: str
    requested_procedure_id: str | None
    must_match: bool


CASES = [
    # Item keys universal: only returned (an SCP that ignores sequences still finds the series).
    SequenceCase("universal-item", "", must_match=True),
    # No item at all: universal matching of the whole sequence.
    SequenceCase("empty-sequence", None, must_match=True),
    SequenceCase("item-matches", "RP1006", must_match=True),
    # An SCP that supports sequence matching finds nothing; one that ignores the key finds the series: recorded.
    SequenceCase("item-does-not-match", "RP9999", must_match=False),
]


def _study(ix: Index) -> str:
    """The study whose series carry a RequestAttributesSequence (RequestedProcedureID RP1006)."""
    study = next((s for p in ix for s in p.studies if s.accession_number == "ACC1006"), None)
    if study is None:
        raise LookupError("the corpus has no study ACC1006 (with RequestAttributesSequence); was _plan.py changed?")
    return study.study_instance_uid


@pytest.mark.service("find")
@pytest.mark.shares_association
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_sequence_matching(
    case: SequenceCase,
    shared_session: SharedFind,
    corpus_index: Index,
    stored_corpus: StoreResult,
    observe: Observe,
) -> None:
    items = []
    if case.requested_procedure_id is not None:
        item = Dataset()
        item.RequestedProcedureID = case.requested_procedure_id
        item.ScheduledProcedureStepID = ""
        items.append(item)
    identifier = query("SERIES", StudyInstanceUID=_study(corpus_index), SeriesInstanceUID="", Modality="")
    identifier.RequestAttributesSequence = Sequence(items)
    result = shared_session.find(identifier, "study")
    observe("find", {**outcome(result), "matches": canonical(result.matches)})
    assert result.accepted, f"association not accepted: {result.error}"
    assert result.status == 0x0000, f"C-FIND final status {status_hex(result.status)}: {result.error}"
    if case.must_match:
        assert len(result.matches) == 1, "the series was not found"
