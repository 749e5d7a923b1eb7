"""The RIS's scheduled items (simulators.ris.worklist): deterministic from the seed, written as .wl files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from pydicom import dcmread

from simulators.corpus import PATIENTS, UID_ROOT
from simulators.ris.worklist import LOCKFILE, OTHER_STATION, scheduled_items, write_wl_folder
from simulators.workflow_scu import MWL_FIND


def test_same_seed_same_items_and_same_wl_bytes(tmp_path: Path) -> None:
    """Two runs (replicas, candidate) must serve identical worklists: same items and byte-identical .wl files."""
    first, second = scheduled_items(7, "20261130", "MOD1"), scheduled_items(7, "20261130", "MOD1")
    assert first == second
    paths_a = write_wl_folder(first, tmp_path / "a")
    paths_b = write_wl_folder(second, tmp_path / "b")
    assert [p.name for p in paths_a] == [f"SPS-{n}.wl" for n in range(1, 9)]
    assert [p.read_bytes() for p in paths_a] == [p.read_bytes() for p in paths_b]


def test_another_seed_changes_only_the_uids() -> None:
    """Only UIDs depend on the seed (as in the corpus), and they stay under UID_ROOT so normalisation keeps them."""
    a, b = scheduled_items(1, "20261130", "MOD1"), scheduled_items(2, "20261130", "MOD1")
    assert all(x.study_instance_uid != y.study_instance_uid for x, y in zip(a, b, strict=True))
    assert all(x.study_instance_uid.startswith(UID_ROOT) for x in a + b)
    same = [dataclasses.replace(x, study_instance_uid="") for x in a]
    assert same == [dataclasses.replace(y, study_instance_uid="") for y in b]


def test_items_come_from_the_corpus_patients_and_two_are_for_another_station() -> None:
    items = scheduled_items(1422, "20261130", "MOD1")
    names = {p.patient_id: p.name for p in PATIENTS}
    assert all(names[i.patient_id] == i.patient_name for i in items)
    assert [i.station_ae for i in items].count(OTHER_STATION) == 2
    assert [i.sps_id for i in items] == [f"PGSPS{n:04d}" for n in range(1, 9)]
    assert len({i.accession_number for i in items}) == len(items)
    assert {i.start_date for i in items} == {"20261130"}


def test_wl_files_are_part10_mwl_items_with_a_lockfile(tmp_path: Path) -> None:
    """What wlmscpfs (-dfp, a folder per AE with a lockfile) and Orthanc's worklist plugin read."""
    item = scheduled_items(1422, "20261130", "MOD1")[4]
    (path,) = write_wl_folder([item], tmp_path)
    assert (tmp_path / LOCKFILE).exists()
    ds = dcmread(path)
    assert ds.file_meta.MediaStorageSOPClassUID == MWL_FIND
    assert ds == item.dataset()
    assert str(ds.PatientName) == "Yamada^Tarou=山田^太郎=やまだ^たろう"  # its ISO 2022 character set kept


def test_placeholders_name_the_item_values() -> None:
    item = scheduled_items(1422, "20261130", "MOD1")[0]
    values = item.placeholders()
    assert values["item.sps_id"] == "PGSPS0001" and values["item.accession_number"] == "PGA0001"
    assert values["item.station_ae"] == "MOD1" and values["item.study_uid"] == item.study_instance_uid


@pytest.mark.parametrize(
    ("date", "station", "words"),
    [("2026-11-30", "MOD1", "YYYYMMDD"), ("20261130", "", "1-16"), ("20261130", "A" * 17, "1-16")],
)
def test_bad_date_or_station_is_a_clear_error(date: str, station: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        scheduled_items(1422, date, station)
