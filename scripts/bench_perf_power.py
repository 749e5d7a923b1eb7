"""Benchmark of the performance gate's power: N validations of a slowed variant, and how often each metric was caught.

A performance variant of the reference device (`slow-store`, `slow-find`, `leak`) changes its metrics
by a known amount; the question is how often a validation within the profile's budget shows it.
Each variant's command (one `patchgate validate` command line, `--out` added) runs N times, the
variants interleaved with the order rotated per round. Per metric the decisions are counted: caught
means shown slower than every baseline at 95 % (`regressed`, `expected` or `slower`), `regressed`
alone means beyond the threshold too.

    python scripts/bench_perf_power.py --variant "slow-find=.venv/bin/patchgate validate --demo slow-find" \\
        [--variant "slow-store=.venv/bin/patchgate validate --demo slow-store"] [--rounds 5] [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from _docs import rewrite_section  # scripts/ is on sys.path when a script runs
from bench_demo import ROOT, Variant, rotated

from harness.demo import DEMO_BUDGET, DEMO_MAX_ROUNDS, demo_text

__all__ = ["BEGIN_MARKER", "CAUGHT", "END_MARKER", "Validation", "main", "measure", "render_markdown"]

BEGIN_MARKER = "<!-- bench_perf_power:begin -->"
END_MARKER = "<!-- bench_perf_power:end -->"
# Decisions that show the candidate slower than every baseline at 95 % (harness.model.PerfDecision values).
CAUGHT = frozenset({"regressed", "expected", "slower"})


@dataclass(frozen=True)
class Validation:
    """One validation: its verdict ("" when it wrote no comparison), each metric's decision, its wall time."""

    variant: str
    round: int
    verdict: str
    decisions: dict[str, str]
    seconds: float
    settings: str = ""  # the candidate run's [performance] budget and max_rounds, as its manifest says
    rounds: dict[str, int] = field(default_factory=dict)  # metric -> the candidate's kept rounds
    stopped: dict[str, str] = field(default_factory=dict)  # metric -> why its sampling stopped


def _validate(variant: Variant, round_no: int, timeout: float, scratch: Path) -> Validation:
    out = scratch / f"{variant.name}-{round_no}"
    start = time.monotonic()
    with contextlib.suppress(subprocess.TimeoutExpired):  # a validation past the timeout has no comparison
        subprocess.run([*variant.argv, "--out", str(out)], cwd=ROOT, capture_output=True, timeout=timeout, check=False)
    seconds = time.monotonic() - start
    try:
        comparison = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Validation(variant.name, round_no, "", {}, seconds)
    metrics = comparison.get("performance", [])
    decisions = {str(m["metric"]): str(m["decision"]) for m in metrics}
    rounds = {
        str(m["metric"]): int(s["rounds"])
        for m in metrics
        for s in m.get("spreads", [])
        if s["run"].startswith("candidate")
    }
    stopped = {str(m["metric"]): str(m.get("stopped", "")) for m in metrics}
    verdict = str(comparison.get("verdict", ""))
    return Validation(variant.name, round_no, verdict, decisions, seconds, _settings(out), rounds, stopped)


def _settings(out: Path) -> str:
    """'budget 150 s, up to 40 rounds' from a candidate run's manifest ("" when it has none)."""
    for manifest in sorted(out.glob("runs/candidate*/manifest.json")):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            spec = json.loads(manifest.read_text(encoding="utf-8"))["performance"]["spec"]
            return f"budget {float(spec['budget']):g} s, up to {int(spec['max_rounds'])} rounds"
    return ""


def measure(variants: Sequence[Variant], rounds: int, timeout: float) -> list[Validation]:
    """Every variant `rounds` times, interleaved, the order rotated each round."""
    done: list[Validation] = []
    with tempfile.TemporaryDirectory(prefix="bench-perf-power-") as scratch:
        for r in range(rounds):
            for variant in rotated(variants, r):
                v = _validate(variant, r + 1, timeout, Path(scratch))
                caught = sorted(m for m, d in v.decisions.items() if d in CAUGHT)
                print(f"round {r + 1}: {v.variant}: {v.verdict or 'no verdict'}, caught {caught}, {v.seconds:.0f} s")
                done.append(v)
    return done


def _settings_of(done: Sequence[Validation]) -> list[tuple[str, set[str]]]:
    names = list(dict.fromkeys(v.variant for v in done))
    return [(name, {v.settings for v in done if v.variant == name and v.settings}) for name in names]


def render_markdown(
    variants: Sequence[Variant],
    done: Sequence[Validation],
    rounds: int,
    loads: tuple[float, float],
    default_sampling: bool = False,
) -> str:
    """The docs/benchmarks.md section: per variant and metric, how often it was caught and regressed."""
    lines = [
        "## Power of the performance gate (`scripts/bench_perf_power.py`)",
        "",
        "| variant | metric | validations | caught (slower at 95 %) | regressed (beyond the threshold) | decisions "
        "| candidate rounds (median) | stopped by | median wall s |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: | --- | ---: |",
    ]
    for variant in variants:
        mine = [v for v in done if v.variant == variant.name]
        wall = statistics.median(v.seconds for v in mine) if mine else 0.0
        metrics = sorted({m for v in mine for m in v.decisions})
        for metric in metrics or ["(none)"]:
            seen = collections.Counter(v.decisions.get(metric, "missing") for v in mine)
            caught = sum(n for d, n in seen.items() if d in CAUGHT)
            counts = ", ".join(f"{d} {n}" for d, n in sorted(seen.items()))
            used = [v.rounds[metric] for v in mine if metric in v.rounds]
            kept = f"{statistics.median(used):.0f}" if used else "-"
            why = collections.Counter(v.stopped.get(metric) or "-" for v in mine)
            stops = ", ".join(f"{d} {n}" for d, n in sorted(why.items()))
            lines.append(
                f"| {variant.name} | `{metric}` | {len(mine)} | {caught} | {seen['regressed']} | {counts} | {kept} "
                f"| {stops} | {wall:.0f} |"
            )
    verdicts = collections.Counter((v.variant, v.verdict or "none") for v in done)
    lines += [
        "",
        f"{rounds} round(s), one validation of each variant per round, the order rotated; each a fresh process "
        "and output folder, with its profile's [performance] settings ("
        + "; ".join(f"{name}: {', '.join(sorted(found)) or 'not recorded'}" for name, found in _settings_of(done))
        + "). Verdicts: "
        + "; ".join(f"{name} {verdict} {n}" for (name, verdict), n in sorted(verdicts.items()))
        + ".",
        "",
        f"- machine: {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, Python {platform.python_version()}",
        f"- load average (1 min) at the start / end: {loads[0]:.2f} / {loads[1]:.2f}",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        "- command: `python scripts/bench_perf_power.py "
        + " ".join(f"--variant {shlex.quote(f'{v.name}={shlex.join(v.argv)}')}" for v in variants)
        + f" --rounds {rounds}{' --default-sampling' if default_sampling else ''}`",
        "",
    ]
    return "\n".join(lines)


def at_defaults(variant: Variant, folder: Path) -> Variant:
    """The variant with its `--demo NAME` swapped for that demo's profile at the [performance] defaults.

    A performance demo samples longer than a profile that leaves `budget` and `max_rounds` out (harness.demo);
    the issue asks what the default budget detects, so the profile is the demo's own text less those two lines.
    """
    argv = list(variant.argv)
    if "--demo" not in argv[:-1]:
        raise SystemExit(f"--default-sampling: variant {variant.name!r} has no `--demo VARIANT` to swap")
    at = argv.index("--demo")
    longer = f"max_rounds = {DEMO_MAX_ROUNDS}\nbudget = {DEMO_BUDGET}\n"
    text = demo_text(argv[at + 1])
    if longer not in text:
        raise SystemExit(f"--default-sampling: demo {argv[at + 1]!r} sets no longer sampling ({longer!r})")
    profile = folder / f"{argv[at + 1]}-defaults.toml"
    profile.write_text(text.replace(longer, ""), encoding="utf-8")
    argv[at : at + 2] = ["--profile", str(profile)]
    return Variant(variant.name, tuple(argv))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--variant", action="append", required=True, type=Variant.parse, help="NAME=COMMAND")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per validation")
    parser.add_argument("--markdown", type=Path, help="rewrite this file's bench_perf_power section")
    parser.add_argument(
        "--default-sampling",
        action="store_true",
        help="run each `--demo VARIANT` at the profile's [performance] defaults, not the demo's longer sampling",
    )
    args = parser.parse_args(argv)
    start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-perf-power-profiles-") as folder:
        variants = [at_defaults(v, Path(folder)) for v in args.variant] if args.default_sampling else args.variant
        done = measure(variants, args.rounds, args.timeout)
    section = render_markdown(args.variant, done, args.rounds, (start, os.getloadavg()[0]), args.default_sampling)
    print(section)
    if args.markdown:
        rewrite_section(args.markdown, BEGIN_MARKER, END_MARKER, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
