"""Write tests/weights.json, each test module's seconds in junit.xml files (CI's out/junit-tests.xml), for xdist's order."""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "tests" / "weights.json"


def module_seconds(junit: Path) -> dict[str, float]:
    """Test module path (tests/integration/test_cli.py) -> the seconds its cases took, setup included."""
    seconds: Counter[str] = Counter()
    for case in ET.parse(junit).iter("testcase"):
        dotted = case.get("classname", "")
        parts = dotted.split(".")
        # classname is the module's dotted path, and a test class's name after it when there is one
        module = parts if parts[-1].startswith("test_") else parts[:-1]
        seconds["/".join(module) + ".py"] += float(case.get("time") or 0)
    return {name: round(value, 1) for name, value in sorted(seconds.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "junit", type=Path, nargs="+", help="junit.xml of whole runs (py3: tox writes out/junit-tests.xml; docker)"
    )
    args = parser.parse_args(argv)
    weights: dict[str, float] = {}
    for junit in args.junit:
        try:
            weights.update(module_seconds(junit))
        except (OSError, ET.ParseError) as exc:
            print(f"error: {junit}: {exc}", file=sys.stderr)
            return 2
    weights = dict(sorted(weights.items()))
    WEIGHTS.write_text(json.dumps(weights, indent=1) + "\n", encoding="utf-8")
    print(f"{WEIGHTS.relative_to(ROOT)}: {len(weights)} modules, {sum(weights.values()):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
