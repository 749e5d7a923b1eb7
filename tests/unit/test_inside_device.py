"""runner.inside_device: a where = "device" command runs in the container that is up now, a revived one included."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any, cast

import pytest

from harness.errors import TargetError
from harness.runner import inside_device
from harness.surroundings import Surroundings


class _Backend:
    """Runs a command 'in' a device by naming the device: what a container's exec would do."""

    def inside(self, device: Any) -> Callable[[Sequence[str]], tuple[int, bytes]] | None:
        if device == "local":
            return None
        return lambda argv: (0, f"{device}: {' '.join(argv)}".encode())


def _surroundings(device: Any) -> Any:
    return SimpleNamespace(backend=_Backend(), device=device)


def test_a_command_after_a_revival_runs_in_the_new_container() -> None:
    surroundings = _surroundings("container-1")
    run = inside_device(cast(Surroundings, surroundings))
    assert run is not None and run(["id"]) == (0, b"container-1: id")
    surroundings.device = "container-2"  # what Surroundings.revive_device does
    assert run(["id"]) == (0, b"container-2: id")
    surroundings.device = None  # stopped, not revived
    with pytest.raises(TargetError, match="container is gone"):
        run(["id"])


def test_a_local_device_or_none_runs_commands_on_this_host() -> None:
    assert inside_device(cast(Surroundings, _surroundings("local"))) is None
    assert inside_device(cast(Surroundings, SimpleNamespace(backend=None, device="container-1"))) is None
