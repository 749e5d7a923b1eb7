"""`python -m harness.profile --schema | --reference`: the profile format as JSON Schema, or as docs/profiles.md's key tables."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from harness.profile._load import profile_json_schema
from harness.profile._reference import policy_reference, profile_reference

# docs/profiles.md holds each reference between its markers (test_profile_docs.py keeps them current).
REFERENCES = {"profile-keys": profile_reference, "policy-keys": policy_reference}


def schema_text() -> str:
    """The schema as docs/profile.schema.json holds it."""
    return json.dumps(profile_json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.profile", description=__doc__)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--schema", action="store_true", help="print the profile JSON Schema")
    what.add_argument(
        "--reference", choices=sorted(REFERENCES), help="print a key reference of docs/profiles.md (Markdown)"
    )
    args = parser.parse_args(argv)
    sys.stdout.write(REFERENCES[args.reference]() if args.reference else schema_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
