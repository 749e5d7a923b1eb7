"""simulators._lifeline: when a started process counts its harness as gone, and the heartbeat that says it is not."""

from __future__ import annotations

import os
import time
from pathlib import Path

from simulators._lifeline import BEAT, HEARTBEAT_ENV, LIMIT_ENV, Heartbeat, harness_gone


def test_no_heartbeat_named_means_never_gone() -> None:
    assert harness_gone({}) == ""


def test_a_fresh_heartbeat_is_alive_and_a_stale_one_gone(tmp_path: Path) -> None:
    beat = tmp_path / "heartbeat"
    beat.touch()
    env = {HEARTBEAT_ENV: str(beat), LIMIT_ENV: "10"}
    assert harness_gone(env) == ""
    old = time.time() - 11
    os.utime(beat, (old, old))
    why = harness_gone(env)
    assert str(beat) in why and "limit 10 s" in why and "gone" in why


def test_a_missing_file_or_a_bad_limit_is_not_taken_for_a_dead_harness(tmp_path: Path) -> None:
    assert harness_gone({HEARTBEAT_ENV: str(tmp_path / "not-yet")}) == ""
    beat = tmp_path / "heartbeat"
    beat.touch()
    os.utime(beat, (0, 0))
    assert harness_gone({HEARTBEAT_ENV: str(beat), LIMIT_ENV: "soon"}) == ""
    assert harness_gone({HEARTBEAT_ENV: str(beat)})  # the default limit applies when none is given


def test_the_heartbeat_beats_until_stopped_then_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    heartbeat = Heartbeat(path, limit=7)
    try:
        assert heartbeat.environment() == {HEARTBEAT_ENV: str(path), LIMIT_ENV: "7"}
        os.utime(path, (0, 0))
        deadline = time.monotonic() + 10 * BEAT
        while path.stat().st_mtime == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.stat().st_mtime > 0
        assert harness_gone(heartbeat.environment()) == ""
    finally:
        heartbeat.stop()
    assert not path.exists()
