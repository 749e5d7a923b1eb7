"""C-FIND matching rules and hierarchical query evaluation, without the network."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from simulators.index import IndexedInstance
from simulators.matching import QueryError, evaluate, matches, parse_query, response


@pytest.mark.parametrize(
    ("vr", "query", "stored", "expected"),
    [
        # universal: empty or a lone "*" matches even an absent attribute
        ("LO", "", [], True),
        ("PN", "*", [], True),
        ("DA", "", ["20210304"], True),
        # single value
        ("LO", "PG-0001", ["PG-0001"], True),
        ("LO", "PG-0001", ["PG-0002"], False),
        ("LO", "PG-0001", [], False),
        ("CS", "CT", ["ct"], False),  # only PN ignores case
        ("IS", "3", ["03"], True),
        ("SH", "ACC1 ", ["ACC1"], True),  # padding is not significant
        # wildcards
        ("PN", "DOE*", ["DOE^JANE"], True),
        ("PN", "D?E^JANE", ["DOE^JANE"], True),
        ("PN", "D?E", ["DOE^JANE"], False),
        ("LO", "PG-000?", ["PG-0003"], True),
        ("LO", "PG-000?", ["PG-00010"], False),
        ("LO", "*Thorax*", ["CT Thorax nativ"], True),
        ("LO", "a.c", ["abc"], False),  # regex characters are literal
        # PN case and trailing empty components
        ("PN", "doe^jane", ["DOE^JANE"], True),
        ("PN", "müller*", ["Müller^Jürgen"], True),
        ("PN", "DOE^JANE", ["DOE^JANE^^"], True),
        # multi-valued stored attribute: any value may match
        ("CS", "SR", ["CT", "SR"], True),
        # UID list
        ("UI", "1.2.3\\1.2.4", ["1.2.4"], True),
        ("UI", "1.2.3\\1.2.4", ["1.2.5"], False),
        ("UI", "1.2.3", ["1.2.3"], True),
        ("UI", "1.2", ["1.2.3"], False),
        # date ranges
        ("DA", "20210101-20211231", ["20210304"], True),
        ("DA", "20220101-20221231", ["20210304"], False),
        ("DA", "20210304-20210304", ["20210304"], True),
        ("DA", "-20210304", ["20210304"], True),
        ("DA", "-20210303", ["20210304"], False),
        ("DA", "20210305-", ["20210304"], False),
        ("DA", "20210304-", ["20210304"], True),
        ("DA", "20210304", ["20210304"], True),
        ("DA", "20210304", ["20210305"], False),
        ("DA", "20210101-", [], False),
        # time ranges, partial times span their precision
        ("TM", "080000-090000", ["083015"], True),
        ("TM", "0900-", ["083015"], False),
        ("TM", "-0830", ["083015"], True),
        ("TM", "-0829", ["083015"], False),
        ("TM", "0830", ["083015.5"], True),
        ("TM", "08:30:15", ["083015"], True),
        # date-time ranges, with and without an offset
        ("DT", "2021-2022", ["20220506120000"], True),
        ("DT", "2023-", ["20220506120000"], False),
        ("DT", "20220506-20220506", ["20220506235959.9"], True),
        ("DT", "20220101000000-0500-20221231", ["20220506"], True),
    ],
)
def test_matches(vr: str, query: str, stored: list[str], expected: bool) -> None:
    assert matches(vr, query, stored) is expected


def test_pn_case_sensitive_when_asked() -> None:
    assert matches("PN", "doe^jane", ["DOE^JANE"], pn_case_insensitive=False) is False
    assert matches("PN", "doe*", ["DOE^JANE"], pn_case_insensitive=False) is False
    assert matches("PN", "DOE*", ["DOE^JANE"], pn_case_insensitive=False) is True


def _instance(patient: str, study: str, series: str, sop: str, modality: str, name: str) -> IndexedInstance:
    attributes = {
        "00100020": ("LO", (patient,)),
        "00100010": ("PN", (name,)),
        "0020000D": ("UI", (study,)),
        "0020000E": ("UI", (series,)),
        "00080018": ("UI", (sop,)),
        "00080060": ("CS", (modality,)),
        "00081030": ("LO", (f"study {study}",)),
        "00280010": ("US", ("64",)),
    }
    return IndexedInstance(
        sop, "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.1.2", patient, study, series, 1, "", attributes
    )


ROWS = [
    _instance("P1", "1.1", "1.1.1", "1.1.1.1", "CT", "DOE^JANE"),
    _instance("P1", "1.1", "1.1.1", "1.1.1.2", "CT", "DOE^JANE"),
    _instance("P1", "1.1", "1.1.2", "1.1.2.1", "SR", "DOE^JANE"),
    _instance("P1", "1.2", "1.2.1", "1.2.1.1", "MR", "DOE^JANE"),
    _instance("P2", "2.1", "2.1.1", "2.1.1.1", "CT", "ROE^RICHARD"),
]


def _identifier(**keys: str) -> Dataset:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def test_study_level_groups_counts_and_response() -> None:
    ident = _identifier(
        QueryRetrieveLevel="STUDY",
        PatientName="doe*",
        StudyInstanceUID="",
        NumberOfStudyRelatedInstances="",
        NumberOfStudyRelatedSeries="",
        ModalitiesInStudy="",
        StudyDescription="",
        Rows=None,  # type: ignore[arg-type]
    )
    query = parse_query(ident, "study")
    groups = evaluate(query, ROWS, ident)
    assert [g.key for g in groups] == ["1.1", "1.2"]
    rsp = response(ident, query, groups[0], "PACS")
    assert rsp.StudyInstanceUID == "1.1"
    assert rsp.NumberOfStudyRelatedInstances == 3
    assert rsp.NumberOfStudyRelatedSeries == 2
    assert list(rsp.ModalitiesInStudy) == ["CT", "SR"]
    assert rsp.StudyDescription == "study 1.1"
    assert rsp.Rows == 64
    assert rsp.QueryRetrieveLevel == "STUDY"
    assert rsp.RetrieveAETitle == "PACS"


def test_modalities_in_study_matches_any_series() -> None:
    ident = _identifier(QueryRetrieveLevel="STUDY", ModalitiesInStudy="SR")
    groups = evaluate(parse_query(ident, "study"), ROWS, ident)
    assert [g.key for g in groups] == ["1.1"]


def test_patient_level_and_case_sensitive_quirk() -> None:
    ident = _identifier(QueryRetrieveLevel="PATIENT", PatientName="roe^richard", NumberOfPatientRelatedStudies="")
    query = parse_query(ident, "patient")
    assert [g.key for g in evaluate(query, ROWS, ident)] == ["P2"]
    assert evaluate(query, ROWS, ident, pn_case_insensitive=False) == []


def test_series_and_image_levels() -> None:
    ident = _identifier(QueryRetrieveLevel="SERIES", StudyInstanceUID="1.1", Modality="CT")
    query = parse_query(ident, "study")
    assert query.scope == {"study_uids": ("1.1",)}
    assert [g.key for g in evaluate(query, ROWS, ident)] == ["1.1.1"]
    ident = _identifier(
        QueryRetrieveLevel="IMAGE",
        PatientID="P1",
        StudyInstanceUID="1.1",
        SeriesInstanceUID="1.1.1",
        SOPInstanceUID="1.1.1.2\\9.9",
    )
    query = parse_query(ident, "patient")
    assert [g.key for g in evaluate(query, ROWS, ident)] == ["1.1.1.2"]


@pytest.mark.parametrize(
    ("model", "keys"),
    [
        ("study", {"QueryRetrieveLevel": "PATIENT"}),  # no PATIENT level in the study root
        ("patient", {"QueryRetrieveLevel": "FOO"}),
        ("patient", {}),  # no level at all
        ("study", {"QueryRetrieveLevel": "SERIES"}),  # StudyInstanceUID missing
        ("patient", {"QueryRetrieveLevel": "STUDY", "PatientID": ""}),  # empty is not a value
        ("study", {"QueryRetrieveLevel": "IMAGE", "StudyInstanceUID": "1.1"}),  # series missing
    ],
)
def test_bad_identifiers_fail_with_a900(model: str, keys: dict[str, str]) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(_identifier(**keys), model)
    assert info.value.status == 0xA900


def test_retrieve_needs_the_level_key_and_ignores_other_keys() -> None:
    with pytest.raises(QueryError):
        parse_query(_identifier(QueryRetrieveLevel="STUDY", StudyInstanceUID=""), "study", retrieve=True)
    ident = _identifier(QueryRetrieveLevel="STUDY", StudyInstanceUID="1.1\\2.1", PatientName="nobody")
    query = parse_query(ident, "study", retrieve=True)
    assert [g.key for g in evaluate(query, ROWS, ident)] == ["1.1", "2.1"]
