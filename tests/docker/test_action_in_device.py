"""A `where = "device"` command action runs inside the device's container: its exit code, output and deadline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.actions import DONE, FAILED, TIMEOUT
from harness.actions.execute import execute
from harness.images import DCMTK_IMAGE
from harness.launch.base import LaunchSpec
from harness.launch.container import Container
from harness.launch.readiness import Immediately
from harness.profile import ActionSpec
from tests.docker.conftest import RunContainer


def _device(run_container: RunContainer, tmp_path: Path) -> Container:
    """The DCMTK image idling as a device, wrapped as the launcher wraps a started device."""
    container: Any = run_container(DCMTK_IMAGE, ["sleep", "600"])
    spec = LaunchSpec(role="device", label="device", argv=(), log=tmp_path / "device.log", ready=Immediately())
    return Container(spec, container)


def _act(device: Container, command: list[str], **keys: Any) -> Any:
    spec = ActionSpec("acquire", "command", command=tuple(command), where="device", **keys)
    values = {"item.sps_id": "PGSPS0003", "port": "11112"}
    return execute(spec, values, secrets=("s3cret",), inside=device.exec)


def test_a_device_command_runs_in_the_container_with_its_values(
    images: dict[str, str], run_container: RunContainer, tmp_path: Path
) -> None:
    device = _device(run_container, tmp_path)
    # In the container PID 1 is docker-init (run_container starts it with init=True): the command ran inside.
    assert Path("/proc/1/comm").read_text().strip() != "docker-init"
    result = _act(device, ["sh", "-c", "grep -qx docker-init /proc/1/comm && echo inside item={item.sps_id} s3cret"])
    assert result.outcome == DONE, result.detail
    assert result.detail["where"] == "device"
    output = str(result.detail["output"])
    assert "inside" in output and "item=PGSPS0003" in output
    assert "s3cret" not in output and "***" in output  # the profile's secrets are masked in what is recorded


def test_a_failing_and_a_hanging_device_command(
    images: dict[str, str], run_container: RunContainer, tmp_path: Path
) -> None:
    device = _device(run_container, tmp_path)
    failed = _act(device, ["sh", "-c", "echo nope; exit 3"])
    assert (failed.outcome, failed.detail["exit_code"]) == (FAILED, 3), failed.detail
    allowed = _act(device, ["sh", "-c", "exit 3"], ok_exit=(0, 3))
    assert allowed.outcome == DONE, allowed.detail
    hung = _act(device, ["sleep", "30"], deadline=1.0)
    assert hung.outcome == TIMEOUT and hung.duration < 10, hung.detail
