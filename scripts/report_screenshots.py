"""The docs' screenshots of report.html: the first screen of the clean and the regression demo, by headless Chromium.

Runs `patchgate validate --demo` and `--demo regression` into WORKDIR/clean and WORKDIR/regression (a fixed
directory, /tmp/patchgate-screenshots, so the paths the reports show are the same at every rerun), or takes
finished output directories, screenshots each report.html at 1280x900 and writes docs/images/report-clean.png and
report-regression.png, then prints their sizes. Rerun it after changing the report's look:

    .venv/bin/python scripts/report_screenshots.py
    .venv/bin/python scripts/report_screenshots.py --clean /tmp/demo --regression /tmp/regression
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.chromium: the same screenshot the tests take

from harness.rundir import OutDir  # noqa: E402
from tests.chromium import SIZE, ChromiumError, find_chromium, png_size, screenshot  # noqa: E402

__all__ = ["DEMOS", "IMAGES", "LIMIT", "WORKDIR", "main", "validate"]

IMAGES = ROOT / "docs" / "images"
# Name of the screenshot -> the arguments after `--demo` (none: the clean patch) and the exit code of its verdict.
DEMOS: dict[str, tuple[tuple[str, ...], int]] = {"clean": ((), 0), "regression": (("regression",), 1)}
WORKDIR = Path(tempfile.gettempdir()) / "patchgate-screenshots"
LIMIT = 300_000  # bytes: a screenshot larger than this bloats the repository; the docs test holds it
_TIMEOUT = 600.0  # seconds for one demo validation (about 20 s on an idle machine)


def validate(name: str, cwd: Path) -> Path:
    """The demo `name` validated into `cwd`/`name`, replacing the output of an earlier run there."""
    demo, code = DEMOS[name]
    command = ["validate", "--demo", *demo, "--out", name, "--force", "--quiet"]
    done = subprocess.run(
        [sys.executable, "-m", "harness", *command], cwd=cwd, capture_output=True, text=True, timeout=_TIMEOUT
    )
    if done.returncode != code:
        raise SystemExit(
            f"report_screenshots: `patchgate {' '.join(command)}` exited {done.returncode}, not {code}:\n"
            f"{done.stderr[-2000:]}"
        )
    return cwd / name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", type=Path, help="a finished `validate --demo` output directory (default: run it)")
    parser.add_argument("--regression", type=Path, help="a finished `validate --demo regression` output directory")
    parser.add_argument("--workdir", type=Path, default=WORKDIR, help=f"where demos run (default {WORKDIR})")
    parser.add_argument("--images", type=Path, default=IMAGES, help=f"where the PNGs go (default {IMAGES})")
    args = parser.parse_args(argv)
    try:
        chromium = find_chromium()  # before minutes of demos, not after
    except ChromiumError as e:
        print(f"report_screenshots: {e}", file=sys.stderr)
        return 2
    given = {"clean": args.clean, "regression": args.regression}
    too_large = False
    for name in DEMOS:
        if given[name] is None:
            args.workdir.mkdir(parents=True, exist_ok=True)
        out = given[name] or validate(name, args.workdir)
        report = OutDir(out).html
        if not report.is_file():
            print(f"report_screenshots: {report}: no report.html (is {out} a validate output?)", file=sys.stderr)
            return 2
        png = args.images / f"report-{name}.png"
        try:
            screenshot(report, png, size=SIZE, chromium=chromium)
        except ChromiumError as e:
            print(f"report_screenshots: {e}", file=sys.stderr)
            return 2
        width, height = png_size(png.read_bytes())
        size = png.stat().st_size
        too_large |= size > LIMIT
        shown = png.relative_to(ROOT) if png.is_relative_to(ROOT) else png
        print(
            f"{shown}: {width}x{height} px, {size:,} bytes{' (over the limit)' if size > LIMIT else ''} from {report}"
        )
    if too_large:
        print(f"report_screenshots: a screenshot is over {LIMIT:,} bytes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
