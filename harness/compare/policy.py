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
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import PolicyError
from harness.model import Difference, DiffKind

__all__ = ["ExpectedChange", "Policy", "load_policy", "parse_policy"]

_KEYS = ("case", "path", "reason", "kind", "ticket")
_KINDS = ", ".join(k.value for k in DiffKind)


@dataclass(frozen=True)
class ExpectedChange:
    """One declared change: which case and path it covers, and why it is allowed."""

    case: str
    path: str
    reason: str
    kind: DiffKind | None = None  # None: any kind of difference
    ticket: str = ""

    def matches(self, diff: Difference) -> bool:
        return (
            (self.kind is None or self.kind is diff.kind)
            and _glob(self.case).fullmatch(diff.case) is not None
            and _glob(self.path).fullmatch(diff.path) is not None
        )


@dataclass(frozen=True)
class Policy:
    """The expected changes of one comparison, in declaration order."""

    entries: tuple[ExpectedChange, ...] = ()

    def match(self, diff: Difference) -> ExpectedChange | None:
        """The first entry that covers the difference, if any."""
        return next((e for e in self.entries if e.matches(diff)), None)


def parse_policy(entries: Sequence[Mapping[str, object]], source: str) -> Policy:
    """A policy from `[[expected]]` tables already read from `source` (named in every error)."""
    return Policy(tuple(_entry(e, source, n) for n, e in enumerate(entries, start=1)))


def load_policy(path: str | Path) -> Policy:
    """A policy from a TOML file of `[[expected]]` tables."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise PolicyError(f"{path}: cannot read the policy file: {e.strerror}", hint="check the path") from e
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
    return parse_policy(expected, str(path))


def _entry(raw: Mapping[str, object], source: str, n: int) -> ExpectedChange:
    where = f"{source}: expected-change entry {n}"
    for key in raw:
        if key not in _KEYS:
            raise PolicyError(f"{where}: unknown key {key!r}", hint=f"allowed keys: {', '.join(_KEYS)}")
    for key, value in raw.items():
        if not isinstance(value, str):
            raise PolicyError(
                f"{where}: key {key!r} must be a string, not {type(value).__name__}",
                hint=f'write it quoted, e.g. {key} = "..."',
            )
    values: dict[str, str] = {k: str(v) for k, v in raw.items()}
    for key, hint in (
        ("case", 'a glob over case ids; use "*" for every case'),
        ("path", 'a glob over difference paths; use "*" for every path'),
        ("reason", "say why this change is expected (e.g. the ticket and what the patch does)"),
    ):
        if not values.get(key, "").strip():
            state = "is empty" if key in values else "is missing"
            raise PolicyError(f"{where}: key {key!r} {state}", hint=hint)
    kind = values.get("kind")
    if kind is not None and kind not in {k.value for k in DiffKind}:
        raise PolicyError(f"{where}: key 'kind' has unknown value {kind!r}", hint=f"one of: {_KINDS}")
    return ExpectedChange(
        case=values["case"],
        path=values["path"],
        reason=values["reason"].strip(),
        kind=DiffKind(kind) if kind is not None else None,
        ticket=values.get("ticket", "").strip(),
    )


@functools.lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str]:
    """A glob where only `*` is special: any run of characters, separators included."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)
