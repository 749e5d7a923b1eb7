"""Redaction: each secret value replaced by "***" in text, JSON and records, before a run writes them down."""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TypeVar, cast

__all__ = ["MASK", "redact", "redact_file"]

MASK = "***"

_T = TypeVar("_T")


def redact(value: _T, secrets: Iterable[str]) -> _T:
    """`value` with every occurrence of each secret replaced by MASK; of the same type, the input untouched.

    `value` is text (also JSON text: a secret is found as written and as JSON escapes it), a JSON
    value (dict keys too), or a frozen dataclass record such as a RunSetup or a Manifest, walked
    field by field. Longer secrets go first, so one that holds another is masked whole. Enums,
    numbers, booleans and None are kept as they are; empty secrets are ignored.
    """
    pattern = _pattern(secrets)
    return value if pattern is None else cast(_T, _walk(value, pattern))


def redact_file(path: Path, secrets: Iterable[str]) -> bool:
    """Mask every secret in the file at `path`, in place, line by line (any size, any encoding); True if it changed.

    The bytes around a secret stay as they are, so a log that is not UTF-8 keeps its other bytes.
    The file is replaced atomically (a temporary file beside it, then a rename), keeping its mode.
    """
    forms = sorted({f.encode() for s in secrets if s for f in _forms(s)}, key=lambda f: (-len(f), f))
    if not forms or not path.is_file():
        return False
    pattern = re.compile(b"|".join(re.escape(f) for f in forms))
    temporary = path.with_name(f".{path.name}.redact")
    changed = False
    try:
        with path.open("rb") as source, temporary.open("wb") as target:
            for line in source:
                masked = pattern.sub(MASK.encode(), line)
                changed = changed or masked != line
                target.write(masked)
        if changed:
            os.chmod(temporary, path.stat().st_mode & 0o7777)
            os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)  # unchanged, or a write that failed (a full disk): no leftover
    return changed


def _pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    forms = {form for secret in secrets if secret for form in _forms(secret)}
    if not forms:
        return None
    return re.compile("|".join(re.escape(f) for f in sorted(forms, key=lambda f: (-len(f), f))))


def _forms(secret: str) -> tuple[str, ...]:
    """The secret as written, and as it appears inside a JSON string (escaped, ASCII-only or not)."""
    return (secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1])


def _walk(value: object, pattern: re.Pattern[str]) -> object:
    if isinstance(value, enum.Enum):  # a str-valued enum is a str: keep its type, its values are ours
        return value
    if isinstance(value, str):
        return pattern.sub(MASK, value)
    if isinstance(value, Mapping):
        return {_walk(k, pattern): _walk(v, pattern) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, pattern) for v in value]
    if isinstance(value, tuple):
        return tuple(_walk(v, pattern) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _walk(getattr(value, f.name), pattern) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **changes)
    return value
