"""The expected-change policy: differences a patch is allowed to make, each with a reason.

Entries match a difference by case and path globs in which only `*` is special (any
run of characters, `.`, `[`, `/` and `:` included); every other character is literal,
so `store.datasets[0].*` means what it says. A policy file is TOML:

    [[expected]]
    case = "service/test_tls.py::*"
    path = "association.*"
    kind = "status_changed"      # optional: any DiffKind value
    reason = "TLS now required"
    ticket = "SEC-12"            # optional
    allow_loosening = true       # optional: may also cover a loosened security observation

A difference on a security observation that the comparison finds loosened (see
harness.compare.security) is covered only by an entry with `allow_loosening = true`:
a broad entry written for a functional change must not wave a weaker device through.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import PolicyError
from harness.model import Difference, DiffKind
from harness.profile import ExpectedChange  # one record for profiles and policy files

__all__ = ["ExpectedChange", "Policy", "load_policy", "parse_policy"]

_KEYS = ("case", "path", "reason", "kind", "ticket", "allow_loosening")
_BOOLEANS = frozenset({"allow_loosening"})
_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*expected[ \t]*\]\]", re.MULTILINE)
_TABLE = re.compile(r"^[ \t]*\[")
_KINDS = ", ".join(k.value for k in DiffKind)


@dataclass(frozen=True)
class Policy:
    """The expected changes of one comparison, in declaration order."""

    entries: tuple[ExpectedChange, ...] = ()

    def match(self, diff: Difference, *, loosening: bool = False) -> ExpectedChange | None:
        """The first entry that covers the difference, if any.

        `loosening`: the difference lies on a security observation that loosened; then only
        entries with `allow_loosening` cover it (`match(diff)` still finds the one that matched).
        """
        return next((e for e in self.entries if e.matches(diff) and (e.allow_loosening or not loosening)), None)


def parse_policy(
    entries: Sequence[Mapping[str, object] | ExpectedChange], source: str, *, text: str | None = None
) -> Policy:
    """A policy from `[[expected]]` tables already read from `source` (named in every error).

    `text` is the TOML they were read from, to name each entry's line; when not given and
    `source` is a readable file, it is read from there. Typed entries (a Profile's `expected`,
    checked when the profile was read) are taken as they are.
    """
    if text is None and not all(isinstance(e, ExpectedChange) for e in entries):
        text = _read(source)
    headers = _headers(text or "", len(entries))
    return Policy(
        tuple(
            e if isinstance(e, ExpectedChange) else _entry(e, source, n, text or "", headers[n - 1] if headers else 0)
            for n, e in enumerate(entries, start=1)
        )
    )


def load_policy(path: str | Path) -> Policy:
    """A policy from a TOML file of `[[expected]]` tables."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise PolicyError(f"{path}: cannot read the policy file: {e.strerror or e}", hint="check the path") from e
    except UnicodeDecodeError as e:
        raise PolicyError(
            f"{path}: not UTF-8 text (byte {e.start}: {e.reason})", hint="a policy file is TOML, saved as UTF-8"
        ) from e
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        line = re.search(r"line (\d+)", str(e))
        where = f"{path}:{line[1]}" if line else str(path)
        raise PolicyError(f"{where}: not valid TOML: {e}", hint="fix the TOML syntax at that line") from e
    unknown = sorted(set(data) - {"expected"})
    if unknown:
        raise PolicyError(
            f"{path}: unknown top-level key {unknown[0]!r}",
            hint="a policy file holds only [[expected]] tables",
        )
    expected = data.get("expected", [])
    if not isinstance(expected, list) or not all(isinstance(e, dict) for e in expected):
        raise PolicyError(f"{path}: 'expected' is not an array of tables", hint="write each entry as [[expected]]")
    return parse_policy(expected, str(path), text=text)


def _read(source: str) -> str:
    """The text of `source` if it names a readable file (not `<embedded:...>`), else ""."""
    if source.startswith("<"):
        return ""
    try:
        return Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def _headers(text: str, count: int) -> list[int]:
    """The line of each `[[expected]]` header, or [] when they do not pair up with the entries one to one."""
    lines = [text.count("\n", 0, m.start()) + 1 for m in _HEADER.finditer(text)]
    return lines if len(lines) == count else []


def _key_line(text: str, header: int, key: str) -> int:
    """The line of `key = ...` within the table whose header is at line `header`; the header itself if not found."""
    assign = re.compile(rf"^[ \t]*\"?{re.escape(key)}\"?[ \t]*=")
    for number, line in enumerate(text.splitlines()[header:], start=header + 1):
        if _TABLE.match(line):
            break
        if assign.match(line):
            return number
    return header


def _entry(raw: Mapping[str, object], source: str, n: int, text: str, header: int) -> ExpectedChange:
    where = f"{source}: expected-change entry {n}"

    def fail(key: str | None, problem: str, hint: str) -> PolicyError:
        # The prefix stays "FILE: expected-change entry N: ..."; the line, when known, closes the message.
        at = f" (at {source}:{_key_line(text, header, key) if key else header})" if header else ""
        return PolicyError(f"{where}: {problem}{at}", hint=hint)

    for key in raw:
        if key not in _KEYS:
            raise fail(key, f"unknown key {key!r}", f"allowed keys: {', '.join(_KEYS)}")
    for key, value in raw.items():
        if key in _BOOLEANS:
            if not isinstance(value, bool):
                raise fail(
                    key,
                    f"key {key!r} must be true or false, not {type(value).__name__}",
                    f"write it unquoted, e.g. {key} = true",
                )
        elif not isinstance(value, str):
            raise fail(
                key,
                f"key {key!r} must be a string, not {type(value).__name__}",
                f'write it quoted, e.g. {key} = "..."',
            )
    values: dict[str, str] = {k: str(v) for k, v in raw.items() if k not in _BOOLEANS}
    for key, hint in (
        ("case", 'a glob over case ids; use "*" for every case'),
        ("path", 'a glob over difference paths; use "*" for every path'),
        ("reason", "say why this change is expected (e.g. the ticket and what the patch does)"),
    ):
        if not values.get(key, "").strip():
            state = "is empty" if key in values else "is missing"
            raise fail(key if key in values else None, f"key {key!r} {state}", hint)
    kind = values.get("kind")
    if kind is not None and kind not in {k.value for k in DiffKind}:
        raise fail("kind", f"key 'kind' has unknown value {kind!r}", f"one of: {_KINDS}")
    return ExpectedChange(
        case=values["case"],
        path=values["path"],
        reason=values["reason"].strip(),
        kind=DiffKind(kind) if kind is not None else None,
        ticket=values.get("ticket", "").strip(),
        allow_loosening=raw.get("allow_loosening") is True,
        where=f"{source}:{header}" if header else f"{source}, expected-change entry {n}",
    )
