"""simulators._lifeline: when a started process counts its harness as gone, and the heartbeat that says it is not."""

from __future__ import annotations

import os
import time
from pathlib import Path

from simulators._lifeline import BEAT, HEARTBEAT_ENV, LIMIT_ENV, Heartbeat, Lifeline


def test_no_heartbeat_named_means_never_gone() -> None:
    assert Lifeline({}).gone() == ""


def test_a_heartbeat_that_stops_moving_means_gone_after_the_limit(tmp_path: Path) -> None:
    beat = tmp_path / "heartbeat"
    beat.touch()
    lifeline = Lifeline({HEARTBEAT_ENV: str(beat), LIMIT_ENV: "0.5"})
    assert lifeline.gone() == ""
    time.sleep(0.3)
    os.utime(beat, ns=(1, beat.stat().st_mtime_ns + 1))  # a beat: the timer starts again
    assert lifeline.gone() == ""
    time.sleep(0.3)
    assert lifeline.gone() == ""  # 0.3 s since the beat, under the limit
    time.sleep(0.4)
    why = lifeline.gone()
    assert str(beat) in why and "limit 0.5 s" in why and "has not moved" in why


def test_clock_steps_do_not_matter_only_movement_does(tmp_path: Path) -> None:
    beat = tmp_path / "heartbeat"
    beat.touch()
    os.utime(beat, (0, 0))  # an mtime decades "old" by the wall clock (a skewed file server)
    lifeline = Lifeline({HEARTBEAT_ENV: str(beat), LIMIT_ENV: "5"})
    assert lifeline.gone() == ""


def test_a_removed_heartbeat_means_gone_and_a_bad_limit_falls_back(tmp_path: Path) -> None:
    assert "was removed" in Lifeline({HEARTBEAT_ENV: str(tmp_path / "gone")}).gone()
    beat = tmp_path / "heartbeat"
    beat.touch()
    lifeline = Lifeline({HEARTBEAT_ENV: str(beat), LIMIT_ENV: "soon"})
    assert lifeline.limit == 30.0 and lifeline.gone() == ""


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
    finally:
        heartbeat.stop()
    assert not path.exists()
