"""Query: names in Latin-1, UTF-8 and Japanese ISO 2022 (PS3.5 6.1, Annex H), matched and answered in their character sets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from pydicom.dataset import Dataset

from harness.plugin import Observe
from simulators.corpus import PatientEntry, fixed_patient_id
from simulators.modality import StoreResult
from suites._shared import SharedFind
from suites._support import query, status_hex
from suites.query._answers import canonical, keyed, outcome

Index = tuple[PatientEntry, ...]

LATIN1 = ("ISO_IR 100",)
UTF8 = ("ISO_IR 192",)
JIS = ("", "ISO 2022 IR 87")  # ISO 2022 with the default repertoire first (PS3.5 H.3.1)
# Character set -> the corpus patient whose objects are encoded in it.
_PATIENTS = {"latin1": "PG-0001", "utf8": "PG-0006", "jis": "PG-0005"}


def _charset_query(charset: tuple[str, ...], level: str, **keys: str) -> Dataset:
    """A query encoded in `charset`: declared first, since pydicom encodes text in the declared set."""
    ds = Dataset()
    ds.SpecificCharacterSet = list(charset) if len(charset) > 1 else charset[0]
    for keyword, value in query(level, **keys).items():
        ds[keyword] = value
    return ds


def _patient(ix: Index, which: str) -> PatientEntry:
    wanted = _PATIENTS[which]
    found = next((p for p in ix if fixed_patient_id(p.patient_id) == wanted), None)
    if found is None:
        raise LookupError(f"the corpus has no patient {wanted} ({which}); was simulators/corpus/_plan.py changed?")
    return found


@dataclass(frozen=True)
class NameCase:
    """A PATIENT level query by name in a character set; `exact` cases must find the patient."""

    id: str
    charset: tuple[str, ...]
    name: Callable[[Index], str]
    patient: str  # _PATIENTS key of the patient the name is about
    exact: bool = False  # the name as stored, in its own character set: single value matching must find it


def _name(which: str) -> Callable[[Index], str]:
    return lambda ix: _patient(ix, which).patient_name


MATCHING = [
    NameCase("latin1-exact", LATIN1, _name("latin1"), "latin1", exact=True),
    NameCase("latin1-wildcard", LATIN1, lambda ix: "Mül*", "latin1"),
    NameCase("utf8-exact", UTF8, _name("utf8"), "utf8", exact=True),
    NameCase("utf8-wildcard", UTF8, lambda ix: "Wang*", "utf8"),
    NameCase("utf8-ideographic-wildcard", UTF8, lambda ix: "*=王*", "utf8"),
    NameCase("jis-exact", JIS, _name("jis"), "jis", exact=True),
    NameCase("jis-wildcard", JIS, lambda ix: "Yamada*", "jis"),
    NameCase("jis-ideographic-group", JIS, lambda ix: "=山田^太郎", "jis"),
    # The Latin-1 name asked for in UTF-8: the same characters in another encoding.
    NameCase("latin1-name-in-utf8", UTF8, _name("latin1"), "latin1"),
]


@pytest.mark.service("find")
@pytest.mark.shares_association
@pytest.mark.parametrize("case", MATCHING, ids=[c.id for c in MATCHING])
def test_charset_matching(
    case: NameCase,
    shared_session: SharedFind,
    corpus_index: Index,
    stored_corpus: StoreResult,
    observe: Observe,
) -> None:
    identifier = _charset_query(case.charset, "PATIENT", PatientID="", PatientName=case.name(corpus_index))
    result = shared_session.find(identifier, "patient")
    found = sorted(str(m.get("PatientID", "")) for m in result.matches)
    answers = keyed(result.matches, ["PatientID", "SpecificCharacterSet", "PatientName"])
    observe("find", {**outcome(result), "patients": found, "answers": answers, "matches": canonical(result.matches)})
    assert result.accepted, f"association not accepted: {result.error}"
    assert result.status == 0x0000, f"C-FIND final status {status_hex(result.status)}: {result.error}"
    if case.exact:
        assert found == [_patient(corpus_index, case.patient).patient_id], "the patient's own name did not find them"


@pytest.mark.service("find")
@pytest.mark.shares_association
@pytest.mark.parametrize("which", sorted(_PATIENTS))
def test_charset_answer(
    which: str,
    shared_session: SharedFind,
    corpus_index: Index,
    stored_corpus: StoreResult,
    observe: Observe,
) -> None:
    """A study of the patient, by PatientID: its names as the device answers them, decoded, and the set it declares."""
    patient = _patient(corpus_index, which)
    identifier = query(
        "STUDY",
        PatientID=patient.patient_id,
        PatientName="",
        ReferringPhysicianName="",
        StudyDescription="",
        StudyInstanceUID=patient.studies[0].study_instance_uid,
    )
    result = shared_session.find(identifier, "study")
    answers = keyed(result.matches, ["SpecificCharacterSet", "PatientName", "ReferringPhysicianName"])
    observe("find", {**outcome(result), "answers": answers, "matches": canonical(result.matches)})
    assert result.accepted, f"association not accepted: {result.error}"
    assert result.status == 0x0000, f"C-FIND final status {status_hex(result.status)}: {result.error}"
    assert len(result.matches) == 1, "wrong number of matches"
    # Whichever character set the device answers in, the name must survive it.
    assert str(result.matches[0].get("PatientName", "")) == patient.patient_name, "the name was garbled in the answer"
