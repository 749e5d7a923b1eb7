"""The RIS's worklist against DCMTK's wlmscpfs serving the same items as .wl files: same queries, same answers.

Where the two legitimately differ (DCMTK 3.6.7 supports fewer matching types than PS3.4 allows,
and chooses other codes), the test asserts the difference it expects, with the reason.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from simulators._net import LOOPBACK, free_port
from simulators.endpoint import Endpoint
from simulators.modality import FindResult, Modality
from simulators.ris import RisConfig, RisQuirks, RisSimulator, scheduled_items, write_wl_folder
from simulators.status import category
from tests.conftest import require_tool, wait_for_device

DATE = "20261130"
STATION = "MOD1"
ITEMS = scheduled_items(1422, DATE, STATION)
Ask = Callable[[Dataset], FindResult]


@pytest.fixture(scope="module")
def wlmscpfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    """wlmscpfs -dfp ROOT (a folder per called AE title, with a lockfile), -csk: answers in the files' character sets."""
    tool = require_tool("wlmscpfs", "apt-get install dcmtk")
    root = tmp_path_factory.mktemp("wlmscpfs")
    write_wl_folder(ITEMS, root / "PGRIS")
    port = free_port()
    log = (root / "wlmscpfs.log").open("w")
    # -s: one process, so terminating it ends every association; output to a file, which never fills like a pipe.
    cmd = [tool, "-s", "-csk", "-dfp", str(root), str(port)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
    endpoint = Endpoint("PGRIS", LOOPBACK, port)
    try:
        wait_for_device(endpoint, proc)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


@pytest.fixture(scope="module")
def ris(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RisSimulator]:
    config = RisConfig(port=0, out=tmp_path_factory.mktemp("ris"), date=DATE, station_ae=STATION, items=ITEMS)
    with RisSimulator(config) as simulator:
        yield simulator


def _ask(endpoint: Endpoint) -> Ask:
    scu = Modality(STATION, acse_timeout=5, dimse_timeout=15, network_timeout=5)
    return lambda query: scu.worklist(endpoint, query)


@pytest.fixture(scope="module")
def ask_ris(ris: RisSimulator) -> Ask:
    return _ask(Endpoint("PGRIS", LOOPBACK, ris.port))


@pytest.fixture(scope="module")
def ask_wlm(wlmscpfs: Endpoint) -> Ask:
    return _ask(wlmscpfs)


def query(sps: dict[str, str] | None = None, *, whole_sps: bool = False, **top: str) -> Dataset:
    """Patient and accession return keys, `top` keys, and an SPS item (zero-length with `whole_sps`)."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = ""
    ds.PatientID = ""
    ds.AccessionNumber = ""
    for keyword, value in top.items():
        setattr(ds, keyword, value)
    if whole_sps:
        ds.ScheduledProcedureStepSequence = DicomSequence()
        return ds
    item = Dataset()
    for keyword in ("ScheduledStationAETitle", "ScheduledProcedureStepStartDate", "ScheduledProcedureStepStartTime"):
        setattr(item, keyword, "")
    item.Modality = ""
    item.ScheduledProcedureStepID = ""
    for keyword, value in (sps or {}).items():
        setattr(item, keyword, value)
    ds.ScheduledProcedureStepSequence = DicomSequence([item])
    return ds


def _valued(value: Any) -> Any:
    """DICOM JSON with empty elements left out, at every depth (wlmscpfs adds empty ones, see below)."""
    if isinstance(value, dict):
        kept = {k: _valued(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if not (isinstance(v, dict) and set(v) == {"vr"}) and v not in (None, [])}
    if isinstance(value, list):
        return [_valued(v) for v in value]
    return value


def answers(result: FindResult, *, values_only: bool = False) -> tuple[str, list[Any]]:
    """(status, answers in SPS ID order as DICOM JSON); `values_only` drops empty elements first."""
    assert result.error == "", result.error
    json_answers = [m.to_json_dict() for m in result.matches]
    if values_only:
        json_answers = [_valued(a) for a in json_answers]
    json_answers.sort(key=lambda a: str(a.get("00400100", {}).get("Value", [{}])[0].get("00400009", "")))
    return f"0x{result.status:04X}" if result.status is not None else "none", json_answers


def sps_ids(result: FindResult) -> list[str]:
    return sorted(str(m.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID) for m in result.matches)


SAME: dict[str, Dataset] = {
    "everything": query(),
    "station": query({"ScheduledStationAETitle": STATION}),
    "other-station": query({"ScheduledStationAETitle": "OTHERSTN"}),
    "modality": query({"Modality": "CT"}),
    "station-and-modality": query({"ScheduledStationAETitle": STATION, "Modality": "MR"}),
    "patient-id": query(PatientID="PG-0004"),
    "patient-id-list": query(PatientID="PG-0001\\PG-0004"),
    "patient-name-wildcard": query(PatientName="DOE*"),
    "patient-name-question-mark": query(PatientName="DO?^JANE"),
    "patient-name-latin1": query(PatientName="Müller*"),
    "patient-name-jis-item": query(PatientName="Yamada*"),
    "accession": query(AccessionNumber="PGA0003"),
    "accession-wildcards": query(AccessionNumber="PGA000?"),
    "date": query({"ScheduledProcedureStepStartDate": DATE}),
    "other-date": query({"ScheduledProcedureStepStartDate": "20261201"}),
    "open-date": query({"ScheduledProcedureStepStartDate": "-20261130"}),
    "time-range": query({"ScheduledProcedureStepStartTime": "0915-1145"}),
    "open-time": query({"ScheduledProcedureStepStartTime": "1400-"}),
    "combined-two-days": query(
        {"ScheduledProcedureStepStartDate": "20261129-20261130", "ScheduledProcedureStepStartTime": "1000-1300"}
    ),
    "combined-one-day": query(
        {"ScheduledProcedureStepStartDate": DATE, "ScheduledProcedureStepStartTime": "1000-1300"}
    ),
    "combined-open": query({"ScheduledProcedureStepStartDate": f"{DATE}-", "ScheduledProcedureStepStartTime": "1200-"}),
    "no-match": query(PatientID="NOBODY"),
    "query-retrieve-level": query(QueryRetrieveLevel="STUDY", PatientID="PG-0002"),
}


@pytest.mark.parametrize("name", list(SAME))
def test_same_answers_for_keys_both_support(name: str, ask_ris: Ask, ask_wlm: Ask) -> None:
    """PS3.4 K.6.1.2 matching, C.2.2.2.1-5: same status and the same answers, attribute for attribute."""
    ours, theirs = ask_ris(SAME[name]), ask_wlm(SAME[name])
    assert answers(ours) == answers(theirs)
    assert ours.status == 0x0000 and (ours.matches or name in ("other-date", "no-match"))


def test_whole_sps_item_same_values_wlmscpfs_adds_empty_keys(ask_ris: Ask, ask_wlm: Ask) -> None:
    """PS3.4 C.2.2.2.6: a zero-length sequence key returns the whole item. wlmscpfs "expands" it to every SPS key it
    supports, empty where the file has none (and adds an empty Coding Scheme Version to codes); we return the item as
    held. The values agree; only those empty elements differ."""
    ours, theirs = ask_ris(query(whole_sps=True)), ask_wlm(query(whole_sps=True))
    assert answers(ours, values_only=True) == answers(theirs, values_only=True)
    ours_sps = {e.keyword for e in ours.matches[0].ScheduledProcedureStepSequence[0]}
    theirs_sps = {e.keyword for e in theirs.matches[0].ScheduledProcedureStepSequence[0]}
    assert ours_sps < theirs_sps and "ScheduledProcedureStepLocation" in theirs_sps - ours_sps


def test_two_sps_items_both_refuse_with_a900(ask_ris: Ask, ask_wlm: Ask) -> None:
    """PS3.4 C.2.2.2.6: one item per sequence key; both answer 0xA900 Identifier does not match SOP Class."""
    two = query()
    two.ScheduledProcedureStepSequence.append(Dataset())
    assert (ask_ris(two).status, ask_wlm(two).status) == (0xA900, 0xA900)


def test_person_name_case_differs_unless_the_ris_is_case_sensitive(ask_wlm: Ask, tmp_path: Path) -> None:
    """PS3.4 leaves PN case sensitivity to the SCP: our default folds case, wlmscpfs does not. With
    pn_case_insensitive=False (the find-case variant) the RIS answers as wlmscpfs does."""
    lower = query(PatientName="doe*")
    assert sps_ids(ask_wlm(lower)) == []
    config = RisConfig(port=0, out=tmp_path, date=DATE, station_ae=STATION, items=ITEMS)
    with RisSimulator(config) as folding:
        assert sps_ids(_ask(Endpoint("PGRIS", LOOPBACK, folding.port))(lower)) == ["PGSPS0002", "PGSPS0007"]
    strict = RisConfig(
        port=0, out=tmp_path, date=DATE, station_ae=STATION, items=ITEMS, quirks=RisQuirks(pn_case_insensitive=False)
    )
    with RisSimulator(strict) as sensitive:
        assert answers(_ask(Endpoint("PGRIS", LOOPBACK, sensitive.port))(lower)) == answers(ask_wlm(lower))


@pytest.mark.parametrize(
    ("keys", "ours"),
    [
        ({"PatientID": "PG-000*"}, [f"PGSPS000{n}" for n in range(1, 9)]),
        ({"ScheduledStationAETitle": "MOD*"}, [f"PGSPS000{n}" for n in range(1, 7)]),
        ({"Modality": "C?"}, ["PGSPS0001", "PGSPS0002", "PGSPS0005", "PGSPS0008"]),
    ],
    ids=["patient-id", "station-ae", "modality"],
)
def test_wildcards_beyond_names_wlmscpfs_matches_literally(
    keys: dict[str, str], ours: list[str], ask_ris: Ask, ask_wlm: Ask
) -> None:
    """PS3.4 C.2.2.2.4 allows `*` and `?` for LO, AE and CS keys; wlmscpfs 3.6.7 matches these keys by single
    value only (wildcards just for names and accession numbers), so it finds nothing where we find the items."""
    identifier = query({k: v for k, v in keys.items() if k != "PatientID"})
    if "PatientID" in keys:
        identifier.PatientID = keys["PatientID"]
    assert sps_ids(ask_ris(identifier)) == ours
    assert (ask_wlm(identifier).status, sps_ids(ask_wlm(identifier))) == (0x0000, [])


def test_sps_id_is_a_matching_key_for_us_a_return_key_for_wlmscpfs(ask_ris: Ask, ask_wlm: Ask) -> None:
    """PS3.4 K.6.1.2.2 lets any SPS attribute be matched; wlmscpfs matches only its fixed key list, which lacks the
    SPS ID, so it answers every item."""
    identifier = query({"ScheduledProcedureStepID": "PGSPS0004"})
    assert sps_ids(ask_ris(identifier)) == ["PGSPS0004"]
    assert sps_ids(ask_wlm(identifier)) == [f"PGSPS000{n}" for n in range(1, 9)]


def test_a_modality_list_we_match_wlmscpfs_refuses(ask_ris: Ask, ask_wlm: Ask) -> None:
    """PS3.4 C.2.2.2.8 list matching of a CS key: we answer CT and MR items; wlmscpfs refuses the value with 0xA900."""
    identifier = query({"Modality": "CT\\MR"})
    assert sps_ids(ask_ris(identifier)) == ["PGSPS0001", "PGSPS0004", "PGSPS0005", "PGSPS0006", "PGSPS0008"]
    assert ask_wlm(identifier).status == 0xA900


def test_a_bad_date_both_refuse_with_different_codes(ask_ris: Ask, ask_wlm: Ask) -> None:
    """Both refuse an unparsable DA as a Failure with no answers; we say 0xC000 Unable to process (PS3.4 K.4.1.1.4,
    the design's choice: the structure is right, a value is not), wlmscpfs 0xA900 Identifier does not match."""
    identifier = query({"ScheduledProcedureStepStartDate": "2026-11-30x"})
    ours, theirs = ask_ris(identifier), ask_wlm(identifier)
    assert (ours.status, theirs.status) == (0xC000, 0xA900)
    assert category(0xC000) == category(0xA900) == "Failure" and ours.matches == theirs.matches == ()
