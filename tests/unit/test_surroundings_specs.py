"""What Surroundings asks a backend to start for the RIS and PACS simulators: argv, mounts, readiness, placeholders.

The same LaunchSpec runs as a process (local) or a container in the run's pod (docker), so checking
it here holds both backends to it; tests/integration/test_ris_wiring.py starts it for real.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.demo import demo_text
from harness.launch.readiness import Echo
from harness.placeholders import NAMES
from harness.profile import parse_profile
from harness.rundir import RunDir
from harness.surroundings import Surroundings
from simulators.endpoint import PROBE_AE_TITLE

RIS = '[simulators.ris]\nae_title = "MYRIS"\n\n[simulators.pacs]\ncommitment_report = "new"\ncommitment_delay = 1.5\n'


class _Pki:
    """Where a test PKI would be (making a real one takes seconds of key generation)."""

    def __init__(self, directory: Path) -> None:
        self.directory = self.ca = directory

    def cert(self, name: str) -> Path:
        return self.directory / name

    key = cert


@pytest.fixture
def idle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Surroundings]]:
    """Surroundings of a profile's text on a backend that starts nothing (and a PKI that is only a folder)."""
    monkeypatch.setattr("harness.surroundings.create_pki", _Pki)
    made: list[Surroundings] = []

    def surroundings(text: str) -> Surroundings:
        profile = parse_profile(text, str(tmp_path / "p.toml"))
        run = RunDir(tmp_path / f"run{len(made)}")
        run.path.mkdir()
        s = Surroundings(profile, "baseline", run, "test", worklist_date="20261130")
        s.backend = SimpleNamespace(helpers=SimpleNamespace(python="/image/python"), echo=None)  # type: ignore[assignment]
        made.append(s)
        return s

    yield surroundings
    for s in made:
        s.backend = None
        s.stop()  # releases the reserved ports


@pytest.fixture
def make(idle: Callable[[str], Surroundings]) -> Callable[..., Surroundings]:
    """The reference profile with `extra` tables before it and `device` keys in its [device] table."""

    def surroundings(extra: str = "", device: str = "") -> Surroundings:
        text = extra + demo_text("clean", "clean")
        if device:
            text = text.replace("start_timeout = 20", f"start_timeout = 20\n{device}")
        return idle(text)

    return surroundings


def test_a_declared_ris_gets_a_launch_spec_like_the_pacs(make: Callable[..., Surroundings]) -> None:
    s = make(RIS)
    assert s.ris_endpoint is not None and s.ris_endpoint.ae_title == "MYRIS" and not s.ris_endpoint.tls
    spec = s._ris_spec(s.ris_endpoint)
    assert spec.role == "ris" and spec.log == s.run.log("ris")
    argv = list(spec.argv)
    assert argv[:4] == ["/image/python", "-P", "-m", "simulators.ris"]  # -P: the run directory shadows nothing
    assert argv[argv.index("--out") + 1] == str(s.run.ris_dir) and s.run.ris_dir.is_dir()
    assert argv[argv.index("--station-ae") + 1] == "REFDEVICE"  # its items are scheduled for the device
    assert argv[argv.index("--date") + 1] == "20261130"
    assert argv[argv.index("--port") + 1] == str(s.ris_endpoint.port)
    assert isinstance(spec.ready, Echo) and spec.ready.calling_ae == PROBE_AE_TITLE
    # In a pod: its journal folder read-write, the heartbeat read-only, at the same paths (as the ARR's records).
    assert dict(spec.shared) == {str(s.run.ris_dir): "rw", str(s.run.heartbeat): "ro"}
    values = s.placeholders(s.device_endpoint, s.pacs_endpoint)
    assert values.keys() == NAMES
    assert (values["ris.ae_title"], values["ris.host"], values["ris.port"]) == (
        "MYRIS",
        "127.0.0.1",
        str(s.ris_endpoint.port),
    )


def test_the_pacs_gets_the_profile_s_commitment_options(make: Callable[..., Surroundings]) -> None:
    argv = list(make(RIS)._pacs_spec().argv)
    assert argv[argv.index("--commitment-report") + 1] == "new"
    assert argv[argv.index("--commitment-delay") + 1] == "1.5"
    assert "--destination" not in argv  # the device asks for no commitment: nobody to report to on a new association


def test_a_device_that_asks_for_commitment_is_the_pacs_s_report_destination(make: Callable[..., Surroundings]) -> None:
    s = make(device='initiates = ["commitment"]')
    argv = list(s._pacs_spec().argv)
    device = s.device_endpoint
    assert argv[argv.index("--destination") + 1] == f"REFDEVICE={device.host}:{device.port}"
    assert argv[argv.index("--commitment-report") + 1] == "auto"


def test_no_ris_no_ris_values(make: Callable[..., Surroundings]) -> None:
    s = make()
    assert s.ris_endpoint is None
    values = s.placeholders(s.device_endpoint, s.pacs_endpoint)
    assert values.keys() == NAMES and values["ris.port"] == ""


def test_with_the_performance_phase_the_ris_keeps_an_arrival_log_the_suites_are_told_of(
    make: Callable[..., Surroundings],
) -> None:
    """workflow.start_procedure / .complete read it, as workflow.acquire and move.* read the PACS's."""
    s = make(RIS + "\n[performance]\nenabled = true\n")
    assert s.ris_endpoint is not None
    spec = s._ris_spec(s.ris_endpoint)
    argv = list(spec.argv)
    arrivals = s.run.perf_arrivals("ris")
    assert argv[argv.index("--arrivals") + 1] == str(arrivals) and arrivals.parent.is_dir()
    assert dict(spec.shared)[str(arrivals.parent)] == "rw"  # in a pod: the folder the PACS's log is in too
    performance = s._performance()
    assert performance["ris_arrivals"] == str(arrivals)
    assert performance["arrivals"] == str(s.run.perf_arrivals("pacs"))
    # No RIS, no RIS log; no phase, no log at all (the spec above without it: test_a_declared_ris_gets_...)
    assert "ris_arrivals" not in make("[performance]\nenabled = true\n")._performance()
    assert "--arrivals" not in make(RIS)._ris_spec(s.ris_endpoint).argv
