"""Journals: one JSON line appended per record, in a single O_APPEND write, so concurrent writers never tear one."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["append_json_line"]


def append_json_line(path: Path, record: Mapping[str, Any]) -> None:
    """Append `record` to `path` as one sorted-key JSON line; OSError if it could not be written whole.

    One write() of the whole line on an O_APPEND descriptor: lines from threads and processes
    interleave but never mix. A short write (a full disk) is reported, never left looking whole.
    """
    data = (json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if os.write(fd, data) != len(data):
            raise OSError(errno.ENOSPC, f"short write to {path}")
    finally:
        os.close(fd)
