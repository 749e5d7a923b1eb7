"""Worklist seeding: before an MWL SCP device starts, the harness writes the run's items as .wl files it can serve."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread

from harness.demo import demo_text
from harness.placeholders import NAMES
from harness.surroundings import Surroundings
from simulators.ris import OTHER_STATION, scheduled_items
from simulators.ris.cli import main as ris_main
from simulators.ris.worklist import LOCKFILE, read_wl_folder
from simulators.workflow_scu import MWL_FIND
from tests.unit.test_surroundings_specs import idle  # noqa: F401 - a fixture, used by name

DATE = "20261130"
ARCHIVE = 'services = ["echo", "store", "find", "move", "get", "commitment"]'
# The baseline's command names the new placeholders, so rendering them is checked too.
NAMED = '"--storage", "{workdir}/storage",'
NAMING = '"--storage", "{workdir}/storage", "{worklist.root}", "{worklist.dir}", "{modality.port}",'


@pytest.fixture
def make(idle: Callable[[str], Surroundings]) -> Callable[..., Surroundings]:  # noqa: F811 - the fixture
    """Surroundings of the reference profile with `services`, on a backend that starts nothing."""

    def surroundings(services: str) -> Surroundings:
        text = demo_text("clean", "clean").replace(ARCHIVE, f"services = {services}").replace(NAMED, NAMING, 1)
        assert f"services = {services}" in text and "{worklist.dir}" in text
        return idle(text + '\n[modality]\nae_title = "MYMODALITY"\n')

    return surroundings


def test_an_mwl_device_finds_the_run_s_worklist_before_it_starts(make: Callable[..., Surroundings]) -> None:
    """The device spec (made before the device starts) leaves {worklist.dir} = {worklist.root}/AE holding one .wl
    file per scheduled item and an empty lockfile (DCMTK wlmscpfs -dfp refuses a folder without one)."""
    s = make('["echo", "mwl", "mpps"]')
    spec, _ = s._device_spec(s.device_endpoint, s.pacs_endpoint)
    folder = s.run.path / "device" / "worklist" / "REFDEVICE"
    assert sorted(p.name for p in folder.iterdir()) == [f"SPS-{n}.wl" for n in range(1, 9)] + [LOCKFILE]
    assert (folder / LOCKFILE).stat().st_size == 0
    argv = list(spec.argv)
    root_at = argv.index(str(folder.parent))
    assert argv[root_at : root_at + 3] == [str(folder.parent), str(folder), str(s.modality_port)]
    values = s.placeholders(s.device_endpoint, s.pacs_endpoint)
    assert values.keys() == NAMES
    assert (values["worklist.dir"], values["worklist.root"]) == (str(folder), str(folder.parent))


def test_the_items_are_scheduled_for_the_modality_the_suites_query_as(make: Callable[..., Surroundings]) -> None:
    """Each file is a Part 10 MWL item (PS3.4 K.6) the run's corpus seed and worklist date make for the modality's
    AE title: the suites' expected answers (scheduled_items) are exactly what the device serves."""
    s = make('["mwl"]')
    s._device_spec(s.device_endpoint, s.pacs_endpoint)
    expected = scheduled_items(s.profile.corpus_seed, DATE, "MYMODALITY")
    served = read_wl_folder(s.worklist_dir)
    assert [ds.to_json_dict() for ds in served] == [item.dataset().to_json_dict() for item in expected]
    stations = [str(ds.ScheduledProcedureStepSequence[0].ScheduledStationAETitle) for ds in served]
    assert stations.count("MYMODALITY") == 6 and stations.count(OTHER_STATION) == 2
    first = dcmread(s.worklist_dir / "SPS-1.wl")
    assert first.file_meta.MediaStorageSOPClassUID == MWL_FIND
    assert first.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate == DATE


def test_a_device_without_mwl_gets_no_worklist_but_the_names_mean_the_same(make: Callable[..., Surroundings]) -> None:
    s = make('["echo", "store"]')
    s._device_spec(s.device_endpoint, s.pacs_endpoint)
    assert not s.run.worklist_root.exists()
    values = s.placeholders(s.device_endpoint, s.pacs_endpoint)
    assert values["worklist.dir"] == str(s.run.worklist_root / "REFDEVICE")


def test_the_modality_port_is_reserved_for_the_run(make: Callable[..., Surroundings]) -> None:
    """{modality.port} is a port of the run's own (reserved like the device's), never one of its other ports."""
    s = make('["commitment"]')
    others = {s.device_endpoint.port, s.pacs_endpoint.port, s.http_port, s.arr_udp_port, s.arr_tls_port}
    assert s.modality_port > 0 and s.modality_port not in others
    assert s.placeholders(s.device_endpoint, s.pacs_endpoint)["modality.port"] == str(s.modality_port)


def test_a_ris_device_without_seeded_files_says_which_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m simulators.ris --worklist DIR` on a folder with no .wl files exits 2 naming it, before listening."""
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as exited:
        ris_main(["--port", "0", "--out", str(tmp_path / "out"), "--worklist", str(empty)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"no .wl files in {empty}" in err and "{worklist.dir}" in err
    (empty / "SPS-1.wl").write_text("not DICOM")
    with pytest.raises(ValueError, match=r"SPS-1\.wl: not a worklist file"):
        read_wl_folder(empty)
