"""C-FIND matching rules and hierarchical query evaluation, without the network."""

from __future__ import annotations

import dataclasses
import io
import json

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pynetdicom.dsutils import decode, encode

from simulators.corpus import encode as encode_item
from simulators.corpus import generate
from simulators.index import IndexedInstance, extract_attributes
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


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Yamada^Tarou=山田^太郎=やまだ^たろう", True),  # the whole name
        ("Yamada^Tarou", True),  # one group: any of the stored groups
        ("山田^太郎", True),
        ("やまだ*", True),
        ("=山田^太郎", True),  # group by group, an empty group is universal
        ("==やまだ^たろう", True),
        ("Yamada^Tarou=山田^次郎", False),  # every given group must match its own
        ("=Yamada^Tarou", False),  # an alphabetic name is not the ideographic group
        ("山田", False),  # single value matching: the whole group
        ("yamada*", True),  # PN ignores case
    ],
)
def test_pn_component_groups(query: str, expected: bool) -> None:
    assert matches("PN", query, ["Yamada^Tarou=山田^太郎=やまだ^たろう"]) is expected


def _with_request(sop: str, *requests: tuple[str, str]) -> IndexedInstance:
    """A row whose RequestAttributesSequence holds one item per (RequestedProcedureID, ScheduledProcedureStepID)."""
    base = _instance("P3", "3.1", "3.1.1", sop, "OT", "Yamada^Tarou=山田^太郎=やまだ^たろう")
    item = Dataset()
    seq = DicomSequence()
    for requested, step in requests:
        item = Dataset()
        item.RequestedProcedureID, item.ScheduledProcedureStepID = requested, step
        seq.append(item)
    holder = Dataset()
    holder.RequestAttributesSequence = seq
    attributes = {**base.attributes, **extract_attributes(holder)}
    return dataclasses.replace(base, attributes=attributes)


def _sequence_query(*items: dict[str, str]) -> Dataset:
    ident = _identifier(QueryRetrieveLevel="SERIES", StudyInstanceUID="3.1", SeriesInstanceUID="")
    seq = DicomSequence()
    for keys in items:
        seq.append(_identifier(**keys))
    ident.RequestAttributesSequence = seq
    return ident


def test_sequence_matching_needs_one_item_to_match_every_item_key() -> None:
    rows = [_with_request("3.1.1.1", ("RP1", "SPS1"), ("RP2", "SPS2"))]
    for keys, expected in (
        ({"RequestedProcedureID": "RP2", "ScheduledProcedureStepID": ""}, 1),
        ({"RequestedProcedureID": "RP2", "ScheduledProcedureStepID": "SPS2"}, 1),
        ({"RequestedProcedureID": "RP2", "ScheduledProcedureStepID": "SPS1"}, 0),  # both keys, but in different items
        ({"RequestedProcedureID": "RP*"}, 1),
        ({"RequestedProcedureID": "RP3"}, 0),
        ({"RequestedProcedureID": ""}, 1),  # universal item keys: returned, not matched
    ):
        ident = _sequence_query(keys)
        assert len(evaluate(parse_query(ident, "study"), rows, ident)) == expected, keys
    # An object without the sequence matches only a universal sequence key.
    bare = [_instance("P3", "3.1", "3.1.1", "3.1.1.9", "OT", "X^Y")]
    ident = _sequence_query({"RequestedProcedureID": "RP1"})
    assert evaluate(parse_query(ident, "study"), bare, ident) == []
    ident = _sequence_query()
    assert len(evaluate(parse_query(ident, "study"), bare, ident)) == 1


def test_sequence_answer_holds_the_matching_items_with_the_item_keys() -> None:
    rows = [_with_request("3.1.1.1", ("RP1", "SPS1"), ("RP2", "SPS2"))]
    ident = _sequence_query({"RequestedProcedureID": "RP2"})
    query = parse_query(ident, "study")
    rsp = response(ident, query, evaluate(query, rows, ident)[0], "PACS")
    assert [dict(i.items()) and i.RequestedProcedureID for i in rsp.RequestAttributesSequence] == ["RP2"]
    assert "ScheduledProcedureStepID" not in rsp.RequestAttributesSequence[0]  # not asked for
    # No item: universal, every item whole.
    ident = _sequence_query()
    query = parse_query(ident, "study")
    rsp = response(ident, query, evaluate(query, rows, ident)[0], "PACS")
    assert [(i.RequestedProcedureID, i.ScheduledProcedureStepID) for i in rsp.RequestAttributesSequence] == [
        ("RP1", "SPS1"),
        ("RP2", "SPS2"),
    ]


def test_a_sequence_key_of_two_items_fails_with_a900() -> None:
    ident = _sequence_query({"RequestedProcedureID": "RP1"}, {"RequestedProcedureID": "RP2"})
    with pytest.raises(QueryError) as info:
        parse_query(ident, "study")
    assert info.value.status == 0xA900 and "C.2.2.2.6" in info.value.message


def test_computed_keys_are_answered_at_their_own_level_only() -> None:
    keys = {
        "NumberOfPatientRelatedStudies": "",
        "NumberOfStudyRelatedInstances": "",
        "NumberOfSeriesRelatedInstances": "",
        "ModalitiesInStudy": "",
        "SOPClassesInStudy": "",
        "InstanceAvailability": "",
    }
    answers = {}
    for level, model, scope in (
        ("PATIENT", "patient", {}),
        ("STUDY", "study", {}),
        ("SERIES", "study", {"StudyInstanceUID": "1.1"}),
    ):
        ident = _identifier(QueryRetrieveLevel=level, **scope, **keys)
        query = parse_query(ident, model)
        answers[level] = response(ident, query, evaluate(query, ROWS, ident)[0], "PACS", availability="NEARLINE")
    patient, study, series = answers["PATIENT"], answers["STUDY"], answers["SERIES"]
    # Asked at another level, a computed key is answered empty (zero length).
    assert patient.NumberOfPatientRelatedStudies == 2 and patient.NumberOfStudyRelatedInstances in ("", None)
    assert study.NumberOfStudyRelatedInstances == 3 and study.NumberOfPatientRelatedStudies in ("", None)
    assert study.SOPClassesInStudy == "1.2.840.10008.5.1.4.1.1.7" and study.NumberOfSeriesRelatedInstances in ("", None)
    assert series.NumberOfSeriesRelatedInstances == 2 and series.ModalitiesInStudy in ("", None)
    assert {a.InstanceAvailability for a in answers.values()} == {"NEARLINE"}


def _wire(ds: Dataset) -> tuple[bytes, Dataset]:
    """`ds` as pynetdicom sends it (implicit VR little endian) and as the peer decodes it."""
    raw = encode(ds, True, True)
    assert raw is not None
    return raw, decode(io.BytesIO(raw), True, True)


def _named(name: str, charset: str) -> IndexedInstance:
    row = _instance("P9", "9.1", "9.1.1", "9.1.1.1", "OT", name)
    return dataclasses.replace(row, attributes={**row.attributes, "00080005": ("CS", tuple(charset.split("\\")))})


@pytest.mark.parametrize(
    ("name", "charset"),
    [
        ("Müller^Jürgen", "ISO_IR 100"),
        ("Wang^XiaoDong=王^小東", "ISO_IR 192"),
        ("Yamada^Tarou=山田^太郎=やまだ^たろう", "\\ISO 2022 IR 87"),
    ],
)
def test_answers_are_in_the_objects_character_set_and_round_trip(name: str, charset: str) -> None:
    ident = _identifier(QueryRetrieveLevel="PATIENT", PatientName="", PatientID="P9")
    query = parse_query(ident, "patient")
    rsp = response(ident, query, evaluate(query, [_named(name, charset)], ident)[0], "PACS")
    raw, back = _wire(rsp)
    declared = back.SpecificCharacterSet
    assert (declared if isinstance(declared, str) else "\\".join(declared)) == charset
    assert str(back.PatientName) == name
    if charset == "\\ISO 2022 IR 87":
        assert b"\x1b$B;3ED\x1b(B" in raw  # 山田 in JIS X 0208, as PS3.5 H.3.1 encodes it


def test_answer_charset_transcodes_and_loses_what_it_cannot_hold() -> None:
    ident = _identifier(QueryRetrieveLevel="PATIENT", PatientName="", PatientID="P9")
    query = parse_query(ident, "patient")
    row = _named("Yamada^Tarou=山田^太郎=やまだ^たろう", "\\ISO 2022 IR 87")
    rsp = response(ident, query, evaluate(query, [row], ident)[0], "PACS", answer_charset="ISO_IR 100")
    _, back = _wire(rsp)
    assert back.SpecificCharacterSet == "ISO_IR 100"
    assert str(back.PatientName) == "Yamada^Tarou=??^??=???^???"
    latin = response(ident, query, evaluate(query, [_named("Müller^Jürgen", "ISO_IR 100")], ident)[0], "PACS")
    assert str(_wire(latin)[1].PatientName) == "Müller^Jürgen"


def test_index_decodes_names_in_each_objects_character_set() -> None:
    by_name = {}
    for item in generate():
        ds = item.dataset
        attributes = extract_attributes(pydicom.dcmread(io.BytesIO(encode_item(item)), force=True))
        by_name[ds.PatientID] = attributes["00100010"][1][0], attributes["00080005"][1]
        if ds.PatientID == "PG-0005":
            assert json.loads(attributes["00400275"][1][0])["00401001"] == ["SH", ["RP1006"]]
    assert by_name["PG-0001"] == ("Müller^Jürgen", ("ISO_IR 100",))
    assert by_name["PG-0005"] == ("Yamada^Tarou=山田^太郎=やまだ^たろう", ("", "ISO 2022 IR 87"))
    assert by_name["PG-0006"] == ("Wang^XiaoDong=王^小東", ("ISO_IR 192",))
