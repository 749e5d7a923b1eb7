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

A policy file (or a profile) may also declare performance slow-downs, each with a reason;
a metric slower than its threshold but not shown slower than `up_to` is then EXPECTED:

    [[expected_slowdown]]
    metric = "store.*"           # a glob over metric ids; memory.growth only by its exact id
    up_to = 0.15                 # 15 % slower at most (0 < up_to <= 10)
    reason = "on-access scanning of received objects"
    ticket = "SEC-31"            # optional

A policy file may also state the verdict it is shipped to give (tests hold it to it; the
harness never changes a verdict for it):

    [expect]
    verdict = "CHANGED_AS_EXPECTED"
    profile = "hardened.toml"    # or demo = "known-peers": the reference device's variant

Files are checked by the profile's schema machinery (harness.profile): every problem at once,
each as FILE:LINE: key.path: what is wrong.

A difference on a security observation that the comparison finds loosened (see
harness.compare.security) is covered only by an entry with `allow_loosening = true`:
a broad entry written for a functional change must not wave a weaker device through.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import PolicyError, ProfileError
from harness.model import JSON, Difference, to_json
from harness.profile import (
    Expectation,
    ExpectedChange,
    ExpectedSlowdown,
    PolicyFile,
    build_policy_file,
    parse_policy_file,
)

__all__ = ["Expectation", "ExpectedChange", "ExpectedSlowdown", "Policy", "load_policy", "parse_policy"]


@dataclass(frozen=True)
class Policy:
    """The expected changes of one comparison, in declaration order; `expect`: a policy file's stated verdict.

    `slowdowns`: the declared performance slow-downs, in declaration order.
    """

    entries: tuple[ExpectedChange, ...] = ()
    expect: Expectation | None = None
    slowdowns: tuple[ExpectedSlowdown, ...] = ()

    def match(self, diff: Difference, *, loosening: bool = False) -> ExpectedChange | None:
        """The first entry that covers the difference, if any.

        `loosening`: the difference lies on a security observation that loosened; then only
        entries with `allow_loosening` cover it (`match(diff)` still finds the one that matched).
        """
        return next((e for e in self.entries if e.matches(diff) and (e.allow_loosening or not loosening)), None)

    def sha256(self) -> str:
        """The policy's hash, without `where` (FILE:LINE, for people): the same policy read from another folder
        hashes alike. comparison.json and the evidence pack record it."""
        canonical = json.dumps(_without_where(to_json(self)), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def slowdown_for(self, metric: str) -> ExpectedSlowdown | None:
        """The first declared slow-down whose glob covers the metric id, if any."""
        return next((s for s in self.slowdowns if s.matches(metric)), None)


def _without_where(value: JSON) -> JSON:
    if isinstance(value, dict):
        return {k: _without_where(v) for k, v in value.items() if k != "where"}
    if isinstance(value, list):
        return [_without_where(v) for v in value]
    return value


def parse_policy(
    entries: Sequence[Mapping[str, object] | ExpectedChange], source: str, *, text: str | None = None
) -> Policy:
    """A policy from `[[expected]]` tables already read from `source` (named in every error).

    `text` is the TOML they were read from, to name each entry's line; when not given and
    `source` is a readable file, it is read from there. Typed entries (a Profile's `expected`,
    checked when the profile was read) are taken as they are; with them, raw entries have no line.
    """
    raw = [e for e in entries if not isinstance(e, ExpectedChange)]
    if not raw:
        return Policy(tuple(e for e in entries if isinstance(e, ExpectedChange)))
    if len(raw) < len(entries):
        text = ""  # positions in the text no longer pair up with the entries
    elif text is None:
        text = _read(source)
    built = iter(_checked(lambda: build_policy_file({"expected": raw}, source=source, text=text or "")).expected)
    return Policy(tuple(e if isinstance(e, ExpectedChange) else next(built) for e in entries))


def load_policy(path: str | Path) -> Policy:
    """A policy from a TOML file of `[[expected]]` and `[[expected_slowdown]]` tables (and an optional `[expect]`)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise PolicyError(f"{path}: cannot read the policy file: {e.strerror or e}", hint="check the path") from e
    except UnicodeDecodeError as e:
        raise PolicyError(
            f"{path}: not UTF-8 text (byte {e.start}: {e.reason})", hint="a policy file is TOML, saved as UTF-8"
        ) from e
    parsed = _checked(lambda: parse_policy_file(text, str(path)))
    return Policy(parsed.expected, parsed.expect, parsed.slowdowns)


def _checked(parse: Callable[[], PolicyFile]) -> PolicyFile:
    """`parse()`, its ProfileError (every problem, by FILE:LINE and key) raised as a PolicyError."""
    try:
        return parse()
    except ProfileError as e:
        raise PolicyError(e.message, hint=e.hint, detail=e.detail) from None


def _read(source: str) -> str:
    """The text of `source` if it names a readable file (not `<embedded:...>`), else ""."""
    if source.startswith("<"):
        return ""
    try:
        return Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""
