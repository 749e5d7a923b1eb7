"""harness.channel: tickets claimed in order, and every wait ends: answered, closed, timed out or the harness gone."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from harness.channel import CLOSED, GONE, Channel, read_answer
from simulators._lifeline import HEARTBEAT_ENV, LIMIT_ENV, Lifeline


def _channel(tmp_path: Path, timeout: float = 0.2, lifeline: Lifeline | None = None) -> Channel:
    folder = tmp_path / "chan"
    closed = folder / "closed"
    return Channel(
        folder, lambda t: folder / f"{t:04d}.request.json", closed, timeout, 0.01, what="test", lifeline=lifeline
    )


def _read(path: Path) -> dict[str, int] | None:
    return read_answer(path, lambda d: {"n": int(d["n"])}, lambda: {"n": -1})


def test_tickets_follow_the_requests_already_in_the_folder(tmp_path: Path) -> None:
    first = _channel(tmp_path)
    assert [first.send({"a": 1}), first.send({"a": 2})] == [1, 2]
    assert _channel(tmp_path).send({"a": 3}) == 3  # a second process starts after what it finds
    assert json.loads((tmp_path / "chan" / "0003.request.json").read_text()) == {"a": 3}


def test_wait_returns_the_answer_none_after_the_timeout_and_closed(tmp_path: Path) -> None:
    chan = _channel(tmp_path)
    answer = tmp_path / "chan" / "0001.result.json"
    assert chan.wait(answer, _read) is None  # nobody answered within 0.2 s
    (tmp_path / "chan").mkdir(exist_ok=True)
    (tmp_path / "chan" / "closed").touch()
    assert chan.wait(answer, _read) is CLOSED
    answer.write_text('{"n": 7}')
    assert chan.wait(answer, _read) == {"n": 7}  # written before the close: read once more
    answer.write_text("{not json")
    assert chan.wait(answer, _read) == {"n": -1}


def test_a_timeout_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="test timeout must be > 0 s"):
        _channel(tmp_path, timeout=0)


def test_a_wait_ends_gone_once_the_harness_s_heartbeat_is_stale(tmp_path: Path) -> None:
    """A harness killed with SIGKILL closes nothing: the wait ends at the heartbeat's limit, not its timeout."""
    heartbeat = tmp_path / "heartbeat"
    heartbeat.touch()
    lifeline = Lifeline({HEARTBEAT_ENV: str(heartbeat), LIMIT_ENV: "0.2"})
    chan = _channel(tmp_path, timeout=60, lifeline=lifeline)
    started = time.monotonic()
    assert chan.wait(tmp_path / "chan" / "0001.result.json", _read) is GONE
    assert time.monotonic() - started < 30  # not the 60 s timeout
    assert chan.gone.startswith("the harness that started this run is gone"), chan.gone


def test_a_beating_harness_is_waited_for_until_the_timeout(tmp_path: Path) -> None:
    heartbeat = tmp_path / "heartbeat"
    heartbeat.touch()
    stop = threading.Event()

    def beat() -> None:  # a new mtime every 0.05 s, well inside the 0.2 s limit
        n = 0
        while not stop.wait(0.05):
            n += 1
            os.utime(heartbeat, ns=(n * 10**9, n * 10**9))

    chan = _channel(tmp_path, timeout=0.6, lifeline=Lifeline({HEARTBEAT_ENV: str(heartbeat), LIMIT_ENV: "0.2"}))
    beating = threading.Thread(target=beat)
    beating.start()
    try:
        assert chan.wait(tmp_path / "chan" / "0001.result.json", _read) is None  # its timeout, not GONE
    finally:
        stop.set()
        beating.join()
    assert chan.gone == ""
