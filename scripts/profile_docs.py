"""Rewrite docs/profiles.md's generated key references (between their markers) from the profile's spec dataclasses."""

from __future__ import annotations

import sys
from pathlib import Path

from _docs import rewrite_section  # scripts/ is on sys.path when a script runs

from harness.profile.__main__ import REFERENCES

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "profiles.md"


def main() -> int:
    for name, reference in REFERENCES.items():
        rewrite_section(GUIDE, f"<!-- {name}:begin -->", f"<!-- {name}:end -->", "\n" + reference())
    print(f"rewrote {', '.join(REFERENCES)} in {GUIDE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
