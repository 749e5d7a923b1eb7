"""harness.channel: tickets claimed in order, and every wait ends: answered, closed or timed out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.channel import CLOSED, Channel, read_answer


def _channel(tmp_path: Path, timeout: float = 0.2) -> Channel:
    folder = tmp_path / "chan"
    return Channel(folder, lambda t: folder / f"{t:04d}.request.json", folder / "closed", timeout, 0.01, what="test")


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
