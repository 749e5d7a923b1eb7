"""Reading a profile: TOML text to a Profile, with every problem reported at once by file, line and key."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Any

from harness.errors import ProfileError
from harness.profile._schema import build, json_schema
from harness.profile._specs import Profile

__all__ = ["load_profile", "parse_profile", "profile_json_schema"]


def parse_profile(text: str, source: str) -> Profile:
    """Parse profile TOML text; `source` names it in errors. Relative paths resolve against its folder."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        where = f"{source}:{line[1]}" if line else source
        raise ProfileError(f"{where}: not valid TOML: {exc}", hint="fix the TOML syntax at that line") from None
    base = Path(source).parent if not source.startswith("<") else Path.cwd()
    given = {"source": source, "sha256": hashlib.sha256(text.encode()).hexdigest()}
    profile: Profile = build(Profile, data, source=source, text=text, base=base, given=given)
    return profile


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
