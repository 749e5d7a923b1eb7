"""collect_inventory on real containers: only the container's own listeners, packages, probes, clear errors."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from harness.errors import TargetError
from harness.images import DCMTK_IMAGE, build_all, simulators_image
from harness.inventory import Inventory, collect_inventory
from harness.launch.engine import remove_container
from harness.launch.labels import LABEL_OWNER, LABEL_RUN
from harness.placeholders import render
from simulators._net import LOOPBACK, free_port
from tests.docker.conftest import PID_LABEL, TEST_LABEL

ROOT = Path(__file__).resolve().parents[2]
DICOM = "tcp/{dicom} any (dcmqrscp)"
Start = Callable[..., Any]


@pytest.fixture(scope="module")
def dcmtk_image(docker_client: Any) -> str:
    """Only the dcmtk image (seconds when current); the `images` fixture would also rebuild the simulators."""
    built = build_all(only=("dcmtk",), log=lambda line: print(f"[images] {line}", flush=True))
    return str(built[DCMTK_IMAGE])


@pytest.fixture
def start(docker_client: Any) -> Iterator[Start]:
    """Start labelled containers (swept if this process dies); every one is removed at teardown."""
    started: list[Any] = []
    run_id = f"test-inventory-{uuid.uuid4().hex[:8]}"
    labels = {LABEL_RUN: run_id, LABEL_OWNER: str(os.getpid()), TEST_LABEL: "1", PID_LABEL: str(os.getpid())}

    def run(image: str, command: Sequence[str], *, network_mode: str = "none", **options: Any) -> Any:
        container = docker_client.containers.run(
            image, list(command), detach=True, init=True, network_mode=network_mode, labels=labels, **options
        )
        started.append(container)
        return container

    try:
        yield run
    finally:
        for container in started:
            try:
                container.reload()
            except docker.errors.NotFound:
                continue  # a test removed it itself
            remove_container(container)


def _dcmqrscp(start: Start, tmp_path: Path, port: int, network_mode: str) -> Any:
    """dcmqrscp with the dcmtk device's own config template, storage in tmp_path."""
    workdir = tmp_path / f"db-{port}"
    workdir.mkdir()
    template = ROOT / "devices" / "dcmtk" / "dcmqrscp.cfg"
    values = {"port": str(port), "ae_title": "DCMQRSCP", "workdir": str(workdir), "pacs.ae_title": "PGPACS"}
    values |= {"pacs.host": LOOPBACK, "pacs.port": str(free_port())}
    config = tmp_path / f"dcmqrscp-{port}.cfg"
    config.write_text(render(template.read_text(encoding="utf-8"), values, str(template)), encoding="utf-8")
    return start(
        DCMTK_IMAGE,
        ["dcmqrscp", "--disable-host-lookup", "-c", "/etc/patchgate/dcmqrscp.cfg"],
        network_mode=network_mode,
        volumes={
            str(config): {"bind": "/etc/patchgate/dcmqrscp.cfg", "mode": "ro"},
            str(workdir): {"bind": str(workdir), "mode": "rw"},
        },
    )


def _listening(container: Any, expected: str, port_names: Mapping[int, str], **options: Any) -> Inventory:
    """The inventory once `expected` is listed (the server needs a moment to bind); bounded."""
    deadline = time.monotonic() + 20
    while True:
        inventory = collect_inventory(container, port_names=port_names, timeout=10, **options)
        if expected in inventory.listening() or time.monotonic() > deadline:
            return inventory
        time.sleep(0.2)


def _raw_ports(container: Any) -> str:
    """The container's unfiltered socket tables: what the filtering has to see through."""
    tables = ["/proc/net/tcp", "/proc/net/tcp6"]
    return str(container.exec_run(["cat", *tables], user="root").output.decode())


def _hex(port: int) -> str:
    return f":{port:04X} "


def test_only_the_containers_own_listeners_are_listed_by_role(start: Start, dcmtk_image: str, tmp_path: Path) -> None:
    first, second = free_port(), free_port()
    with socket.socket() as own:  # the test process listens too, in the same (host) network namespace
        own.bind((LOOPBACK, 0))
        own.listen()
        mine = own.getsockname()[1]
        a = _dcmqrscp(start, tmp_path, first, "host")
        b = _dcmqrscp(start, tmp_path, second, "host")
        probe = ["dcmqrscp", "--version"]
        inv_a = _listening(a, DICOM, {first: "dicom"}, probe=probe)
        inv_b = _listening(b, DICOM, {second: "dicom"}, probe=probe)
        raw = _raw_ports(a)
        # The host's table holds all three: per-process filtering is what keeps two of them out.
        assert all(_hex(port) in raw for port in (first, second, mine)), raw
        assert inv_a.listening() == [DICOM]
        assert inv_b.listening() == [DICOM]
        unnamed = collect_inventory(a)
        assert unnamed.listening() == [f"tcp/{first} any (dcmqrscp)"]
        assert not any(str(mine) in line or str(second) in line for line in unnamed.listening())

    assert inv_a.packages["dcmtk"].startswith("3.6.7-"), inv_a.packages.get("dcmtk")
    assert inv_a.package_sources == {"dpkg": "dpkg-query", "python": "not available"}  # python3, no distributions
    assert inv_a.probe is not None and inv_a.probe.splitlines()[0] == "$dcmtk: dcmqrscp v3.6.7 2022-04-22 $"
    assert inv_a.image_id == dcmtk_image and DCMTK_IMAGE in inv_a.image_tags
    observed = inv_a.observations()
    assert [(name, security) for name, _, security in observed] == [
        ("listening", "exposure"),
        ("packages", ""),
        ("package_sources", ""),
        ("probe", ""),
        ("image_labels", ""),
    ]
    assert dict((name, value) for name, value, _ in observed)["image_labels"]["org.patchgate.image"] == "dcmtk"
    # Two runs on different ports record the same thing, and it is plain JSON.
    assert observed == inv_b.observations()
    assert json.loads(json.dumps(observed)) == [list(triple) for triple in observed]


def test_a_shared_network_namespace_does_not_leak_the_other_containers_listener(
    start: Start, dcmtk_image: str, tmp_path: Path
) -> None:
    dicom, store = free_port(), free_port()
    names = {dicom: "dicom", store: "store"}
    pod = _dcmqrscp(start, tmp_path, dicom, "none")  # its own namespace: loopback only, nothing routed
    # The sidecar runs as another user: root in the container may not read its fds, the inventory re-reads as it.
    sidecar = start(
        DCMTK_IMAGE,
        ["storescp", "-od", "/tmp", str(store)],
        network_mode=f"container:{pod.id}",
        user="1234:1234",
    )
    in_pod = _listening(pod, DICOM, names)
    in_sidecar = _listening(sidecar, "tcp/{store} any (storescp)", names)
    raw = _raw_ports(sidecar)
    assert _hex(dicom) in raw and _hex(store) in raw, raw
    assert in_pod.listening() == [DICOM]
    assert in_sidecar.listening() == ["tcp/{store} any (storescp)"]
    assert in_sidecar.unreadable == ()


def test_probe_failures_and_absent_tools_are_recorded_not_raised(start: Start, dcmtk_image: str) -> None:
    container = start(DCMTK_IMAGE, ["sleep", "120"])
    missing = collect_inventory(container, probe=["no-such-probe", "--version"])
    assert missing.probe is not None and missing.probe.startswith("error: cannot run 'no-such-probe'"), missing.probe
    assert ("probe", missing.probe, "") in missing.observations()

    failing = collect_inventory(container, probe=["sh", "-c", "echo licence expired >&2; exit 3"])
    assert failing.probe == "error: 'sh' exited with 3: licence expired"

    began = time.monotonic()
    hanging = collect_inventory(container, probe=["sleep", "60"], timeout=4)
    assert time.monotonic() - began < 8
    assert hanging.probe is not None and "did not finish within" in hanging.probe, hanging.probe

    assert container.exec_run(["rm", "/usr/bin/dpkg-query"], user="root").exit_code == 0
    bare = collect_inventory(container)
    assert bare.packages == {} and bare.package_sources["dpkg"] == "not available"
    assert bare.probe is None and "probe" not in [name for name, _, _ in bare.observations()]


def test_python_distributions_of_the_simulators_venv(start: Start, docker_client: Any) -> None:
    image = simulators_image()
    if not docker_client.images.list(name=image):
        pytest.skip(f"{image} is not built (patchgate images build --only simulators)")
    inventory = collect_inventory(start(image, ["sleep", "120"]))
    assert "/opt/patchgate/lib/python3.11/site-packages" in inventory.package_sources["python"]
    packages = inventory.all_packages()
    assert packages["pip:pynetdicom"].startswith("3."), packages.get("pip:pynetdicom")
    assert packages["pip:patchgate"] and "base-files" in packages  # dpkg and pip side by side


def test_a_stopped_or_removed_container_is_a_target_error(start: Start, dcmtk_image: str) -> None:
    container = start(DCMTK_IMAGE, ["sh", "-c", "exit 5"])
    container.wait(timeout=20)
    with pytest.raises(TargetError) as stopped:
        collect_inventory(container, timeout=5)
    assert "not running" in stopped.value.message and "exit code 5" in stopped.value.message
    assert "take the inventory while it runs" in stopped.value.hint

    remove_container(container)
    with pytest.raises(TargetError) as gone:
        collect_inventory(container, timeout=5)
    assert "container is gone" in gone.value.message and gone.value.hint
