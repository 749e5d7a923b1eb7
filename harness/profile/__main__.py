"""`python -m harness.profile --schema`: print the profile format as JSON Schema (docs/profile.schema.json)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from harness.profile._load import profile_json_schema


def schema_text() -> str:
    """The schema as docs/profile.schema.json holds it."""
    return json.dumps(profile_json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.profile", description=__doc__)
    parser.add_argument("--schema", action="store_true", required=True, help="print the profile JSON Schema")
    parser.parse_args(argv)
    sys.stdout.write(schema_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
