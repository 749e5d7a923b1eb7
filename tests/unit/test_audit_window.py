"""suites.audit.window: an operation's audit window holds its own late messages and none of earlier work's."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from simulators.audit.record import AuditRecord
from suites.audit import window


def _append(path: Path, code: str, delay: float = 0.0) -> threading.Thread:
    """Append one valid record with event `code` to the repository log after `delay` s (in a thread)."""

    def write() -> None:
        time.sleep(delay)
        record = AuditRecord("2026-01-01T00:00:00Z", "udp", "127.0.0.1:1", True, "", event_code=code)
        with path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record.to_json()) + "\n")

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def test_a_late_message_of_earlier_work_stays_out_of_the_next_window(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _append(log, "110100").join()
    late = _append(log, "110113", delay=0.2)  # a Security Alert of the previous suite, still on its way
    result, received = window.during(log, lambda: "done")
    late.join()
    assert result == "done"
    assert received == []
    assert [r.event_code for r in window.records(log)] == ["110100", "110113"]


def test_the_operation_s_own_late_messages_are_collected(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _append(log, "110100").join()
    time.sleep(window.SETTLE)
    threads: list[threading.Thread] = []
    _, received = window.during(log, lambda: threads.append(_append(log, "110112", delay=0.3)))
    threads[0].join()
    assert [r.event_code for r in received] == ["110112"]


def test_draining_a_log_that_never_goes_quiet_is_bounded(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    stop = threading.Event()

    def chatter() -> None:
        while not stop.is_set():
            _append(log, "110112").join()
            time.sleep(0.02)

    thread = threading.Thread(target=chatter)
    thread.start()
    while not log.exists():
        time.sleep(0.01)
    try:
        started = time.monotonic()
        window.drain(log, quiet=0.5, limit=0.6)
        waited = time.monotonic() - started
    finally:
        stop.set()
        thread.join()
    assert 0.55 <= waited < 5, waited


def test_a_repository_that_received_nothing_needs_no_draining(tmp_path: Path) -> None:
    started = time.monotonic()
    window.drain(tmp_path / "absent.jsonl", quiet=1.0, limit=5.0)
    assert time.monotonic() - started < 1.0
