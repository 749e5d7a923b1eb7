"""A Docker engine that shares nothing with this one: the run's files go through its API, never a bind mount.

The second engine runs in a network namespace of its own with its own data root, exec root, pid
file and unix socket (../shared/MACHINE.md: privileged containers are refused here, so no engine in
a container). It never sees this machine's run directory; DOCKER_HOST names it, as it would name
an engine on another machine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.launch.labels import LABEL_OWNER, LABEL_ROLE, LABEL_RUN
from tests.conftest import ROOT

ORTHANC = ROOT / "devices" / "orthanc" / "profile.toml"


def _unavailable(why: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"a second Docker engine cannot start: {why} (CI=true: a failure, not a skip)")
    pytest.skip(why)


def _stop(pidfile: Path, process: subprocess.Popen[bytes]) -> None:
    """By its pid file, never by name: the first engine is a dockerd too."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        pid = process.pid
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def second_engine(tmp_path_factory: pytest.TempPathFactory, images: dict[str, str]) -> Iterator[str]:
    """DOCKER_HOST of a second engine, with the simulators and Orthanc images loaded into it through the API."""
    import docker

    if os.geteuid() != 0:
        _unavailable("starting a Docker engine needs root")
    missing = [tool for tool in ("dockerd", "ip", "nsenter") if shutil.which(tool) is None]
    if missing:
        _unavailable(f"missing {', '.join(missing)}")
    folder = tmp_path_factory.mktemp("engine2")
    netns = f"pgtest{os.getpid()}"
    address = f"unix://{folder}/sock"
    subprocess.run(["ip", "netns", "add", netns], check=True, timeout=30)
    argv = ["nsenter", f"--net=/var/run/netns/{netns}", "dockerd", "--data-root", str(folder / "root")]
    argv += ["--exec-root", str(folder / "exec"), "--pidfile", str(folder / "pid"), "-H", address]
    with (folder / "dockerd.log").open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    client = None
    try:
        deadline = time.monotonic() + 60
        while client is None:
            try:
                client = docker.DockerClient(base_url=address, timeout=300)
                client.ping()
            except Exception:  # noqa: BLE001 - not up yet
                client = None
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the second engine did not start; its log: {(folder / 'dockerd.log').read_text()}")
                time.sleep(0.5)
        first = docker.from_env(timeout=300)
        for name in ("patchgate/simulators:0.1.0", "patchgate/orthanc:1.10"):  # through the API: save, then load
            client.images.load(first.images.get(name).save(named=True))
        yield address
    finally:
        if client is not None:
            client.close()
        _stop(folder / "pid", process)
        subprocess.run(["ip", "netns", "del", netns], check=False, timeout=30)


class _Watch:
    """Polls both engines while a validation runs: what each saw of patchgate's runs, and how they were mounted.

    On the first engine only the containers of harness process `owner`: other tests may run there meanwhile.
    """

    def __init__(self, address: str, owner: int) -> None:
        import docker

        self.mine = {"label": f"{LABEL_OWNER}={owner}"}
        self.first = docker.from_env(timeout=60)
        self.second = docker.DockerClient(base_url=address, timeout=60)
        self.on_first: set[str] = set()
        self.on_second: dict[str, list[dict[str, Any]]] = {}  # name -> its mounts
        self.roles: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(0.2):
            for container in self.first.containers.list(all=True, filters=self.mine, ignore_removed=True):
                self.on_first.add(container.name)
            for container in self.second.containers.list(all=True, filters={"label": LABEL_RUN}, ignore_removed=True):
                self.on_second[container.name] = list(container.attrs.get("Mounts") or [])
                self.roles.add(container.labels.get(LABEL_ROLE, ""))

    def __enter__(self) -> _Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_orthanc_pair_validates_unchanged_through_an_engine_that_shares_nothing(
    second_engine: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "DOCKER_HOST": second_engine}
    env.pop("PATCHGATE_ENGINE", None)
    argv = [sys.executable, "-m", "harness", "validate", "--profile", str(ORTHANC), "--out", str(out)]
    harness = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    with _Watch(second_engine, harness.pid) as watch:  # before the harness's imports are done: it misses nothing
        try:
            stdout, stderr = harness.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            harness.kill()
            stdout, stderr = harness.communicate(timeout=30)
    assert harness.returncode == 0, stdout[-3000:] + stderr[-3000:]
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["verdict"] == "UNCHANGED"
    assert sum(1 for c in comparison["cases"] if c["status"] == "unchanged") >= 100  # the suites ran there
    # Every part of every run started on the second engine, none on the first, none with a bind mount.
    assert {"pod", "arr", "pacs", "device", "suites"} <= watch.roles
    assert watch.on_first == set()
    mounts = {name: [m.get("Type") for m in found] for name, found in watch.on_second.items()}
    assert all(kinds and "bind" not in kinds for name, kinds in mounts.items() if "-pod" in name), mounts
    assert all("bind" not in kinds for kinds in mounts.values()), mounts
    for run in sorted((out / "runs").iterdir()):
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["extra"]["network"]["files"] == "shipped"
        assert manifest["extra"]["network"]["engine"] == second_engine
        assert (run / "junit.xml").is_file() and (run / "simulators" / "arr").is_dir()  # brought back
    # Nothing of the runs is left on the second engine.
    import docker

    second = docker.DockerClient(base_url=second_engine, timeout=60)
    try:
        assert second.containers.list(all=True, filters={"label": LABEL_RUN}) == []
        assert second.volumes.list(filters={"label": LABEL_RUN}) == []
        assert second.networks.list(filters={"label": LABEL_RUN}) == []
    finally:
        second.close()


def test_attack_windows_and_a_revival_go_through_the_remote_engine(
    second_engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The robustness phase's windows are relayed both ways; the device exits, is revived there, and says so."""
    from harness.model import RunStatus
    from harness.rundir import RunDir, read_run
    from harness.runner import RunRequest, run_variant
    from tests.docker.test_robustness_devices import OVER_MAX, VERSION_0, _crashing

    monkeypatch.setenv("DOCKER_HOST", second_engine)
    monkeypatch.delenv("PATCHGATE_ENGINE", raising=False)
    manifest = run_variant(RunRequest(_crashing(tmp_path, "no"), "baseline", "baseline", 1, tmp_path / "run"))
    assert manifest.status is RunStatus.COMPLETED, manifest.status_detail
    assert manifest.extra.network["files"] == "shipped"
    cases = read_run(tmp_path / "run").by_case()
    over = cases[OVER_MAX].observed()
    assert over["robustness.reaction"]["kind"] == "exited" and over["robustness.detail"] == "exit code 70", over
    assert cases[VERSION_0].observed()["robustness.reaction"]["kind"] == "rejected"
    assert manifest.robustness is not None
    assert [(r.input, r.reaction) for r in manifest.robustness.revivals] == [("pdu.pdata.over-max", "exited")]
    run = RunDir(tmp_path / "run")
    windows = sorted(p.name for p in run.windows.iterdir())
    assert {"0001.request.json", "0001.result.json", "0002.request.json", "0002.result.json"} <= set(windows)
