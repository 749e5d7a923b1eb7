"""Modality Worklist matching (simulators.ris.mwl): each matching rule, the SPS item rules, refused identifiers."""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from simulators.matching import IDENTIFIER_MISMATCH, QueryError
from simulators.ris.mwl import UNABLE_TO_PROCESS, answer, parse_mwl_query, select
from simulators.ris.worklist import OTHER_STATION, scheduled_items

DATE = "20261130"
STATION = "MOD1"
ITEMS = [item.dataset() for item in scheduled_items(1422, DATE, STATION)]
# SPS-n starts at 08:00 + 75 min * (n - 1): 08:00, 09:15, 10:30, 11:45, 13:00, 14:15, 15:30, 16:45.


def query(sps: dict[str, Any] | None = None, **top: Any) -> Dataset:
    """An identifier with `top` keys and, unless sps is None, one SPS item with the `sps` keys (SPS ID always returned)."""
    ds = Dataset()
    for keyword, value in top.items():
        setattr(ds, keyword, value)
    if sps is not None:
        item = Dataset()
        item.ScheduledProcedureStepID = ""
        for keyword, value in sps.items():
            setattr(item, keyword, value)
        ds.ScheduledProcedureStepSequence = DicomSequence([item])
    return ds


def found(identifier: Dataset, **kwargs: bool) -> list[str]:
    """The SPS keys ("SPS-n" as n) of the items that match."""
    matched = select(parse_mwl_query(identifier), ITEMS, **kwargs)
    return [str(ds.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID)[-1] for ds in matched]


def test_single_value_matching_of_patient_id_and_accession_number() -> None:
    """PS3.4 C.2.2.2.1: a value without wildcards matches that value exactly."""
    assert found(query(PatientID="PG-0004")) == ["4", "8"]
    assert found(query(AccessionNumber="PGA0003")) == ["3"]
    assert found(query(PatientID="PG-000")) == []


def test_universal_matching_matches_every_item() -> None:
    """PS3.4 C.2.2.2.3: a zero-length value or a lone `*` matches every item (and only returns the key)."""
    assert found(query(PatientName="", AccessionNumber="*")) == list("12345678")


def test_wildcard_matching_star_and_question_mark() -> None:
    """PS3.4 C.2.2.2.4: `*` any run of characters, `?` one character."""
    assert found(query(PatientName="DOE*")) == ["2", "7"]
    assert found(query(PatientName="DO?^JANE")) == ["2", "7"]
    assert found(query(AccessionNumber="PGA000?")) == list("12345678")
    assert found(query(PatientID="PG-000?")) == list("12345678")


def test_person_name_case_folding_follows_the_quirk() -> None:
    """PS3.4 C.2.2.2.4 leaves PN case to the SCP: insensitive by default, sensitive with pn_case_insensitive=False."""
    assert found(query(PatientName="doe*")) == ["2", "7"]
    assert found(query(PatientName="doe*"), pn_case_insensitive=False) == []
    assert found(query(PatientName="DOE*"), pn_case_insensitive=False) == ["2", "7"]


def test_person_name_matches_a_component_group() -> None:
    """PS3.5 6.2.1.1 / PS3.4 C.2.2.2.4: a query of one group may match the ideographic group of a stored name."""
    assert found(query(PatientName="山田*")) == ["5"]


def test_list_matching_of_patient_ids_and_modalities() -> None:
    """PS3.4 C.2.2.2.8: values separated by backslashes match any one of them."""
    assert found(query(PatientID="PG-0001\\PG-0004")) == ["1", "4", "8"]
    assert found(query({"Modality": "CR\\DX"})) == ["2", "7"]


def test_scheduled_station_ae_title_selects_the_device_s_items() -> None:
    """PS3.4 K.6.1.2.2 (Table K.6-1): Scheduled Station AE Title is a required matching key in the SPS item."""
    assert found(query({"ScheduledStationAETitle": STATION})) == list("123456")
    assert found(query({"ScheduledStationAETitle": OTHER_STATION})) == ["7", "8"]


def test_ignore_station_ae_quirk_answers_every_station() -> None:
    """The RisQuirks.ignore_station_ae variant: the key is accepted but not matched (a regression to detect)."""
    assert found(query({"ScheduledStationAETitle": STATION}), ignore_station_ae=True) == list("12345678")


def test_modality_and_sps_id_in_the_sps_item() -> None:
    """PS3.4 K.6.1.2.2: Modality and Scheduled Procedure Step ID are matched within the SPS item."""
    assert found(query({"Modality": "CT"})) == ["1", "5", "8"]
    assert found(query({"ScheduledProcedureStepID": "PGSPS0004"})) == ["4"]


def test_date_range_closed_and_open() -> None:
    """PS3.4 C.2.2.2.5: `a-b`, `-b` and `a-` ranges on a DA key, inclusive."""
    assert found(query({"ScheduledProcedureStepStartDate": DATE})) == list("12345678")
    assert found(query({"ScheduledProcedureStepStartDate": "20261201-"})) == []
    assert found(query({"ScheduledProcedureStepStartDate": "-20261130"})) == list("12345678")
    assert found(query({"ScheduledProcedureStepStartDate": "20261101-20261129"})) == []


def test_time_range_alone_is_a_time_of_day_range() -> None:
    """PS3.4 C.2.2.2.5: a TM range without a date key matches the time of day, inclusive at both ends."""
    assert found(query({"ScheduledProcedureStepStartTime": "0915-1145"})) == ["2", "3", "4"]
    assert found(query({"ScheduledProcedureStepStartTime": "1400-"})) == ["6", "7", "8"]


def test_date_and_time_keys_combine_into_one_date_time_range() -> None:
    """PS3.4 C.2.2.2.5: SPS Start Date and Time both given are matched as one date-time range, not separately.

    Yesterday 10:00 to today 13:00 takes every item up to 13:00 today, also those before 10:00,
    which matching date and time separately would have left out.
    """
    combined = {"ScheduledProcedureStepStartDate": "20261129-20261130", "ScheduledProcedureStepStartTime": "1000-1300"}
    assert found(query(combined)) == list("12345")
    single_day = {"ScheduledProcedureStepStartDate": DATE, "ScheduledProcedureStepStartTime": "1000-1300"}
    assert found(query(single_day)) == ["3", "4", "5"]
    from_noon = {"ScheduledProcedureStepStartDate": f"{DATE}-", "ScheduledProcedureStepStartTime": "1200-"}
    assert found(query(from_noon)) == ["5", "6", "7", "8"]


def test_zero_length_sps_sequence_is_universal_and_answers_the_whole_item() -> None:
    """PS3.4 C.2.2.2.6: a sequence key without an item matches everything and returns every attribute of it."""
    identifier = query(PatientID="PG-0003")
    identifier.ScheduledProcedureStepSequence = DicomSequence()
    parsed = parse_mwl_query(identifier)
    (item,) = select(parsed, ITEMS)
    sps = answer(parsed, item).ScheduledProcedureStepSequence[0]
    assert sps == item.ScheduledProcedureStepSequence[0]


def test_answers_carry_exactly_the_requested_return_keys() -> None:
    """PS3.4 C.2.2.1.2 / K.6.1.2.2: return keys are filled, keys the RIS has no value for come back empty."""
    identifier = query({"Modality": "", "ScheduledProcedureStepLocation": ""}, PatientID="PG-0001", AdmissionID="")
    parsed = parse_mwl_query(identifier)
    out = answer(parsed, select(parsed, ITEMS)[0])
    assert [e.keyword for e in out] == [
        "SpecificCharacterSet",
        "PatientID",
        "AdmissionID",
        "ScheduledProcedureStepSequence",
    ]
    assert out.AdmissionID == ""
    sps = out.ScheduledProcedureStepSequence[0]
    assert [e.keyword for e in sps] == ["Modality", "ScheduledProcedureStepID", "ScheduledProcedureStepLocation"]
    assert (sps.Modality, sps.ScheduledProcedureStepID, sps.ScheduledProcedureStepLocation) == ("CT", "PGSPS0001", "")


def test_query_retrieve_keys_are_ignored() -> None:
    """QueryRetrieveLevel is no MWL key (PS3.4 K.6.1.2.2): ignored, not matched nor returned, as wlmscpfs does."""
    identifier = query(QueryRetrieveLevel="STUDY", PatientID="PG-0002")
    parsed = parse_mwl_query(identifier)
    assert found(identifier) == ["2", "7"]
    assert "QueryRetrieveLevel" not in answer(parsed, select(parsed, ITEMS)[0])


def test_an_sps_sequence_with_two_items_is_refused_with_a900() -> None:
    """PS3.4 C.2.2.2.6: a sequence matching key holds one item; two are an identifier that does not match (0xA900)."""
    identifier = query({"Modality": "CT"})
    identifier.ScheduledProcedureStepSequence.append(Dataset())
    with pytest.raises(QueryError) as caught:
        parse_mwl_query(identifier)
    assert caught.value.status == IDENTIFIER_MISMATCH == 0xA900
    assert "2 items" in caught.value.message


def test_another_sequence_key_with_two_items_is_refused_with_a900() -> None:
    """PS3.4 C.2.2.2.6 for any sequence key, e.g. Requested Procedure Code Sequence."""
    identifier = query(RequestedProcedureCodeSequence=DicomSequence([Dataset(), Dataset()]))
    with pytest.raises(QueryError) as caught:
        parse_mwl_query(identifier)
    assert caught.value.status == 0xA900


@pytest.mark.parametrize(
    ("sps", "bad"),
    [
        ({"ScheduledProcedureStepStartDate": "2026-11-30x"}, "2026-11-30x"),
        ({"ScheduledProcedureStepStartDate": "-"}, "neither end"),
        ({"ScheduledProcedureStepStartTime": "noon"}, "noon"),
        ({"ScheduledProcedureStepStartDate": "20261130-tomorrow"}, "tomorrow"),
    ],
)
def test_an_unparsable_date_or_time_is_refused_with_c000(sps: dict[str, str], bad: str) -> None:
    """PS3.4 K.4.1.1.4 (Table K.4-1): Failure C000-CFFF "unable to process" for a key value the SCP cannot parse."""
    with pytest.raises(QueryError) as caught:
        parse_mwl_query(query(sps))
    assert caught.value.status == UNABLE_TO_PROCESS == 0xC000
    assert bad in caught.value.message
    assert "in the ScheduledProcedureStepSequence item" in caught.value.message


def test_no_match_is_an_empty_list_not_an_error() -> None:
    """PS3.4 K.4.1.1.4: a query that matches nothing ends with Success and no pending answers."""
    assert found(query(PatientID="NOBODY")) == []
