"""Two patchgates building images on one machine: the second waits for the first, boundedly."""

from __future__ import annotations

import fcntl
import os
import tempfile
import threading
import time
from pathlib import Path

import pytest

from harness import images
from harness.errors import TargetError


def _lock_path() -> Path:
    return Path(tempfile.gettempdir()) / f"patchgate-images-{os.getuid()}.lock"


def test_a_second_build_waits_for_the_first_and_then_runs() -> None:
    said: list[str] = []
    with _lock_path().open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        threading.Timer(0.5, fcntl.flock, (held, fcntl.LOCK_UN)).start()
        started = time.monotonic()
        with images._building(said.append):
            waited = time.monotonic() - started
    assert waited >= 0.4, waited
    assert said == [f"waiting for another patchgate building the images (lock {_lock_path()})"]


def test_a_build_held_past_the_limit_is_refused_naming_the_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "BUILD_LOCK_WAIT", 0.3)
    with _lock_path().open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            with (
                pytest.raises(TargetError, match="another patchgate has been building the images") as info,
                images._building(lambda _: None),
            ):
                pytest.fail("built while another held the lock")
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)
    assert str(_lock_path()) in info.value.hint
    with images._building(lambda _: None):  # free again: no wait
        pass
