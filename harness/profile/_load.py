"""Reading a profile or a policy file: TOML text to a record, with every problem reported at once by file, line and key."""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import ProfileError
from harness.profile._schema import build, json_schema
from harness.profile._specs import PolicyFile, Profile

__all__ = [
    "build_policy_file",
    "load_profile",
    "parse_policy_file",
    "parse_profile",
    "policy_json_schema",
    "profile_json_schema",
]


def _toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        where = f"{source}:{line[1]}" if line else source
        raise ProfileError(f"{where}: not valid TOML: {exc}", hint="fix the TOML syntax at that line") from None


def _base(source: str) -> Path:
    """The folder relative paths resolve against: the file's, or the working directory for `<embedded:...>`."""
    return Path(source).parent if not source.startswith("<") else Path.cwd()


def parse_profile(text: str, source: str) -> Profile:
    """Parse profile TOML text; `source` names it in errors. Relative paths resolve against its folder."""
    data = _toml(text, source)
    given = {"source": source, "sha256": hashlib.sha256(text.encode()).hexdigest()}
    profile: Profile = build(Profile, data, source=source, text=text, base=_base(source), given=given)
    return profile


def parse_policy_file(text: str, source: str) -> PolicyFile:
    """Parse a policy file's TOML text with the profile's schema machinery (a ProfileError names every problem)."""
    return build_policy_file(_toml(text, source), source=source, text=text)


def build_policy_file(data: Mapping[str, Any], *, source: str, text: str) -> PolicyFile:
    """A PolicyFile from TOML already parsed from `text` (which places each problem; "" when unknown)."""
    policy: PolicyFile = build(PolicyFile, data, source=source, text=text, base=_base(source), given={"source": source})
    return policy


def load_profile(path: str | Path) -> Profile:
    """Read and parse a profile file; every problem is a ProfileError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(f"{path}: profile not found", hint="pass --profile PATH to a device profile TOML") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read profile: {exc}", hint="is it a UTF-8 text file?") from None
    return parse_profile(text, str(path))


def profile_json_schema() -> dict[str, Any]:
    """The profile format as a JSON Schema, from the same field metadata the loader checks against."""
    return json_schema(Profile, title="patchgate device profile (TOML)")


def policy_json_schema() -> dict[str, Any]:
    """The policy-file format as a JSON Schema, from the same field metadata the loader checks against."""
    return json_schema(PolicyFile, title="patchgate expected-change policy (TOML)")
