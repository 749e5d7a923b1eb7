"""The images work: Orthanc, dcmqrscp and the simulators answer real DICOM over loopback from containers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from harness._debootstrap import debian_mirror
from harness.images import (
    BASE_IMAGE,
    DCMTK_IMAGE,
    LABEL_IMAGE,
    ORTHANC_IMAGE,
    ORTHANC_SECURITY_IMAGE,
    simulators_image,
)
from harness.launch.readiness import wait_for_echo
from harness.model import Endpoint
from harness.placeholders import render
from simulators._net import free_port
from simulators.corpus import CorpusItem, generate
from simulators.modality import EchoResult, Modality
from simulators.pacs import PacsConfig, PacsSimulator

ROOT = Path(__file__).resolve().parents[2]
MODALITY = "PGMODALITY"
START_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def item() -> CorpusItem:
    """One corpus object every device accepts: a CT in explicit VR little endian."""
    return next(i for i in generate() if i.key == "CT-explicit")


@pytest.fixture
def pacs(tmp_path: Path) -> Iterator[PacsSimulator]:
    """The PACS simulator, in-process on loopback: the C-MOVE destination the device configs name."""
    sim = PacsSimulator(PacsConfig(ae_title="PGPACS", port=0, storage=tmp_path / "pacs")).start()
    yield sim
    sim.stop()


def _values(ae_title: str, port: int, workdir: Path, pacs: PacsSimulator) -> dict[str, str]:
    return {
        "ae_title": ae_title,
        "port": str(port),
        "http_port": str(free_port()),
        "workdir": str(workdir),
        "pacs.ae_title": pacs.config.ae_title,
        "pacs.host": "127.0.0.1",
        "pacs.port": str(pacs.port),
        "modality.ae_title": MODALITY,
    }


def _rendered(template: Path, values: dict[str, str], out: Path) -> Path:
    out.write_text(render(template.read_text(encoding="utf-8"), values, str(template)), encoding="utf-8")
    return out


def _up(container: Any, endpoint: Endpoint) -> None:
    def alive() -> bool:
        container.reload()
        return bool(container.status not in ("exited", "dead"))

    probe = wait_for_echo(endpoint, MODALITY, START_TIMEOUT, alive)
    assert probe.answered, f"no C-ECHO from {endpoint}: {probe}\n{container.logs(tail=30).decode('utf-8', 'replace')}"


def _echo(device: Endpoint, calling_ae: str) -> EchoResult:
    """A C-ECHO from `calling_ae`, with timeouts that leave room for a loaded machine."""
    return Modality(calling_ae, acse_timeout=15, dimse_timeout=15, network_timeout=15).echo(device)


def _study_query(item: CorpusItem) -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = item.study_instance_uid
    query.PatientID = ""
    query.NumberOfStudyRelatedInstances = ""
    return query


def _store_find_move(device: Endpoint, item: CorpusItem, pacs: PacsSimulator) -> None:
    """Store the item, find its study back, and C-MOVE it to the PACS simulator."""
    modality = Modality(MODALITY)
    stored = modality.store(device, [item.dataset])
    assert stored.accepted, stored.error
    assert [o.status for o in stored.instances] == [0x0000], stored.summary()
    found = modality.find(device, _study_query(item), "study")
    assert found.status == 0x0000, found.summary()
    assert [m.StudyInstanceUID for m in found.matches] == [item.study_instance_uid]
    moved = modality.move(device, _study_query(item), pacs.config.ae_title, "study")
    assert (moved.status, moved.completed, moved.failed) == (0x0000, 1, 0), moved.summary()
    assert [i.sop_instance_uid for i in pacs.stored()] == [item.sop_instance_uid]


# -- the base image's Debian mirror comes from apt's own sources ------------------------------


def test_mirror_from_deb822_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATCHGATE_DEBIAN_MIRROR", raising=False)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "debian.sources").write_text(
        "Types: deb\n# a comment\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb deb-src\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"
    )
    assert debian_mirror("bookworm", tmp_path / "none.list", tmp_path / "d") == "http://mirror.example/debian"
    monkeypatch.setenv("PATCHGATE_DEBIAN_MIRROR", "http://main-only.example/debian")  # not for the security archive
    monkeypatch.delenv("PATCHGATE_DEBIAN_SECURITY_MIRROR", raising=False)
    security = debian_mirror("bookworm-security", tmp_path / "none.list", tmp_path / "d")
    assert security == "http://security.example/debian-security"
    monkeypatch.setenv("PATCHGATE_DEBIAN_SECURITY_MIRROR", "http://mine.example/debian-security")
    assert (
        debian_mirror("bookworm-security", tmp_path / "none.list", tmp_path / "d")
        == "http://mine.example/debian-security"
    )


def test_mirror_from_one_line_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATCHGATE_DEBIAN_MIRROR", raising=False)
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main\n"
    )
    assert debian_mirror("bookworm", tmp_path / "sources.list", tmp_path / "d") == "http://one.example/debian"


def test_no_mirror_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.errors import TargetError

    monkeypatch.delenv("PATCHGATE_DEBIAN_MIRROR", raising=False)
    with pytest.raises(TargetError, match="no apt source for Debian 'bookworm'"):
        debian_mirror("bookworm", tmp_path / "none.list", tmp_path / "d")


@pytest.mark.parametrize("template", ["orthanc/orthanc.json", "orthanc/orthanc-hardened.json"])
def test_orthanc_templates_render_to_json(template: str, tmp_path: Path) -> None:
    values = {"ae_title": "DEV", "port": "1", "http_port": "2", "workdir": "/w", "modality.ae_title": MODALITY}
    values |= {"pacs.ae_title": "PGPACS", "pacs.host": "127.0.0.1", "pacs.port": "3"}
    config = json.loads(render((ROOT / "devices" / template).read_text(), values, template))
    assert config["DicomPort"] == 1 and config["RemoteAccessAllowed"] is False
    assert config["DicomModalities"]["pgpacs"]["Port"] == 3


# -- the images, run as containers on host networking ------------------------------------------


@pytest.mark.docker
def test_images_are_labelled(docker_client: Any, images: dict[str, str]) -> None:
    kinds = {
        BASE_IMAGE: "base",
        simulators_image(): "simulators",
        ORTHANC_IMAGE: "orthanc",
        DCMTK_IMAGE: "dcmtk",
        ORTHANC_SECURITY_IMAGE: "orthanc-security-update",
    }
    for name, image_id in images.items():
        image = docker_client.images.get(name)
        assert image.id == image_id
        assert image.labels[LABEL_IMAGE] == kinds[name]


@pytest.mark.docker
def test_orthanc_stores_finds_and_moves(
    images: dict[str, str], run_container: Any, pacs: PacsSimulator, item: CorpusItem, tmp_path: Path
) -> None:
    device = Endpoint("PGORTHANC", "127.0.0.1", free_port())
    config = _rendered(
        ROOT / "devices/orthanc/orthanc.json",
        _values(device.ae_title, device.port, tmp_path, pacs),
        tmp_path / "o.json",
    )
    container = run_container(
        ORTHANC_IMAGE,
        ["Orthanc", "/etc/patchgate/orthanc.json"],
        read_only={config: "/etc/patchgate/orthanc.json"},
        read_write=[tmp_path],
    )
    _up(container, device)
    _store_find_move(device, item, pacs)
    assert (tmp_path / "orthanc-storage").is_dir()  # the storage is the run's workdir, mounted at its own path
    # As shipped, Orthanc answers C-ECHO from anyone but C-FIND only from its DicomModalities.
    assert _echo(device, "STRANGER").status == 0x0000
    # Orthanc 1.10 accepts the association, then aborts it instead of answering the C-FIND.
    stranger = Modality("STRANGER").find(device, _study_query(item), "study")
    assert (stranger.accepted, stranger.status, stranger.matches) == (True, None, ()), stranger.summary()


@pytest.mark.docker
def test_orthanc_hardened_admits_only_known_peers(
    images: dict[str, str], run_container: Any, pacs: PacsSimulator, item: CorpusItem, tmp_path: Path
) -> None:
    device = Endpoint("PGORTHANC", "127.0.0.1", free_port())
    values = _values(device.ae_title, device.port, tmp_path, pacs)
    config = _rendered(ROOT / "devices/orthanc/orthanc-hardened.json", values, tmp_path / "o.json")
    container = run_container(
        ORTHANC_IMAGE,
        ["Orthanc", "/etc/patchgate/orthanc.json"],
        read_only={config: "/etc/patchgate/orthanc.json"},
        read_write=[tmp_path],
    )
    _up(container, device)
    _store_find_move(device, item, pacs)
    assert _echo(device, "STRANGER").error.startswith("association rejected")  # unknown calling AE
    assert _echo(Endpoint("NOTORTHANC", device.host, device.port), MODALITY).error.startswith("association rejected")
    assert Modality("STRANGER").store(device, [item.dataset]).accepted is False


def _dcmqrscp(run_container: Any, config: Path, workdir: Path, *options: str) -> Any:
    return run_container(
        DCMTK_IMAGE,
        ["dcmqrscp", *options, "-c", "/etc/patchgate/dcmqrscp.cfg"],
        read_only={config: "/etc/patchgate/dcmqrscp.cfg"},
        read_write=[workdir],
    )


@pytest.mark.docker
def test_dcmqrscp_stores_finds_and_moves(
    images: dict[str, str], run_container: Any, pacs: PacsSimulator, item: CorpusItem, tmp_path: Path
) -> None:
    device = Endpoint("PGDCMQR", "127.0.0.1", free_port())
    workdir = tmp_path / "device"
    workdir.mkdir()
    values = _values(device.ae_title, device.port, workdir, pacs)
    config = _rendered(ROOT / "devices/dcmtk/dcmqrscp.cfg", values, tmp_path / "q.cfg")
    container = _dcmqrscp(run_container, config, workdir)
    _up(container, device)
    _store_find_move(device, item, pacs)
    assert (workdir / "index.dat").is_file()  # dcmqrscp's database lives in the run's workdir
    assert _echo(device, "STRANGER").status == 0x0000  # baseline: peers ANY


@pytest.mark.docker
def test_dcmqrscp_hardened_admits_only_known_peers(
    images: dict[str, str], run_container: Any, pacs: PacsSimulator, item: CorpusItem, tmp_path: Path
) -> None:
    device = Endpoint("PGDCMQR", "127.0.0.1", free_port())
    workdir = tmp_path / "device"
    workdir.mkdir()
    values = _values(device.ae_title, device.port, workdir, pacs)
    config = _rendered(ROOT / "devices/dcmtk/dcmqrscp-hardened.cfg", values, tmp_path / "q.cfg")
    container = _dcmqrscp(run_container, config, workdir, "--disable-host-lookup")
    _up(container, device)
    _store_find_move(device, item, pacs)
    # dcmqrscp sends A-ASSOCIATE-RJ and closes at once; about 1 in 4 times the close wins the race on our
    # side and the refusal reads as "no answer", so the assertion is "not admitted", not the exact reason.
    assert _echo(device, "STRANGER").accepted is False
    assert Modality("STRANGER").store(device, [item.dataset]).accepted is False


@pytest.mark.docker
def test_simulators_image_runs_the_pacs(
    images: dict[str, str], run_container: Any, item: CorpusItem, tmp_path: Path
) -> None:
    storage = tmp_path / "pacs"
    storage.mkdir()
    pacs = Endpoint("PGPACS", "127.0.0.1", free_port())
    argv = ["python", "-m", "simulators.pacs", "--ae-title", pacs.ae_title, "--port", str(pacs.port)]
    container = run_container(simulators_image(), [*argv, "--storage", str(storage)], read_write=[storage])
    _up(container, pacs)
    stored = Modality(MODALITY).store(pacs, [item.dataset])
    assert [o.status for o in stored.instances] == [0x0000], stored.summary()


@pytest.mark.docker
def test_a_failing_build_names_the_image_and_shows_the_log(
    docker_client: Any, images: dict[str, str], tmp_path: Path
) -> None:
    from harness.errors import TargetError
    from harness.images import _build

    (tmp_path / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nRUN echo marker-before-failure && exit 3\n")
    with pytest.raises(TargetError, match=r"cannot build patchgate/test-broken:1 .*returned a non-zero code: 3") as err:
        _build(
            docker_client,
            "patchgate/test-broken:1",
            tmp_path,
            kind="test",
            inputs="x",
            buildargs={},
            timeout=120,
            log=print,
        )
    assert "marker-before-failure" in err.value.detail
