"""Benchmark of false alarms: N validations in a row of a clean patch, per installation or setting, and their verdicts.

A clean patch (the reference device's `clean-rebuild`) changes nothing, so every validation must
end UNCHANGED; any other verdict is a false alarm, and the cases it regressed say where the noise
came from. Variants (one `patchgate validate` command line each, `--out` added) run interleaved,
one validation of each per round with the order rotated, so a noisy minute hits them all. The
headline per variant: false alarms of N, and the 95 % upper bound on the false-alarm rate
(exact for 0 of N: 1 - 0.05^(1/N), about 3/N, the rule of three).

    python scripts/bench_false_alarms.py \\
        --variant "before=/tmp/venv-before/bin/patchgate validate --demo clean-rebuild" \\
        --variant "after=.venv/bin/patchgate validate --demo clean-rebuild" [--rounds 20] [--markdown docs/benchmarks.md]

Exits 1 if any validation ended other than UNCHANGED (or did not finish), so a rerun can be scripted.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import platform
import shlex
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from _docs import rewrite_section  # scripts/ is on sys.path when a script runs
from bench_demo import Variant, rotated
from bench_demo import _run as run_timed  # one timed `--out` run, the same as the demo benchmark's

__all__ = ["BEGIN_MARKER", "END_MARKER", "Validation", "main", "measure", "render_markdown", "upper_bound"]

BEGIN_MARKER = "<!-- bench_false_alarms:begin -->"
END_MARKER = "<!-- bench_false_alarms:end -->"
_COMPARISON = "comparison.json"  # harness/rundir.py's name for the comparison in a validation's output


@dataclass(frozen=True)
class Validation:
    """One validation: its verdict ("" when it wrote no comparison), exit code, regressed cases and wall time."""

    variant: str
    round: int
    verdict: str
    exit_code: int
    regressed: tuple[str, ...]
    seconds: float


def upper_bound(alarms: int, n: int) -> float:
    """One-sided 95 % upper bound on the false-alarm rate (Clopper-Pearson) for `alarms` of `n`."""
    if alarms >= n:
        return 1.0
    lo, hi = alarms / n, 1.0
    for _ in range(60):  # bisection on P(X <= alarms | p) = 0.05
        mid = (lo + hi) / 2
        tail = sum(_binom(n, k) * mid**k * (1 - mid) ** (n - k) for k in range(alarms + 1))
        lo, hi = (mid, hi) if tail > 0.05 else (lo, mid)
    return hi


def _binom(n: int, k: int) -> float:
    out = 1.0
    for i in range(k):
        out = out * (n - i) / (i + 1)
    return out


def _validate(variant: Variant, round_no: int, timeout: float, scratch: Path) -> Validation:
    sample = run_timed(variant, round_no, timeout, scratch)  # into scratch / NAME-ROUND, as bench_demo names it
    out = scratch / f"{variant.name.replace(' ', '_').replace(',', '')}-{round_no}"
    try:
        comparison = json.loads((out / _COMPARISON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Validation(variant.name, round_no, "", sample.exit_code, (), sample.seconds)
    regressed = tuple(sorted(c["case"] for c in comparison.get("cases", []) if c.get("status") == "regressed"))
    verdict = str(comparison.get("verdict", ""))
    return Validation(variant.name, round_no, verdict, sample.exit_code, regressed, sample.seconds)


def measure(variants: Sequence[Variant], rounds: int, timeout: float) -> list[Validation]:
    """Every variant once per round, interleaved, the order rotated each round."""
    done: list[Validation] = []
    with tempfile.TemporaryDirectory(prefix="bench-false-alarms-") as scratch:
        for r in range(rounds):
            for v in rotated(variants, r):
                one = _validate(v, r + 1, timeout, Path(scratch))
                print(
                    f"round {r + 1}: {v.name}: {one.verdict or 'no comparison'} (exit {one.exit_code}, "
                    f"{one.seconds:.0f} s, load {os.getloadavg()[0]:.1f})"
                    + (f" regressed: {', '.join(one.regressed)}" if one.regressed else ""),
                    flush=True,
                )
                done.append(one)
    return done


def _alarm(v: Validation) -> bool:
    return v.verdict != "UNCHANGED"


def render_markdown(variants: Sequence[Variant], done: Sequence[Validation], rounds: int, load: tuple[str, str]) -> str:
    """The section for docs/benchmarks.md: false alarms per variant, the cases they named, how it was measured."""
    lines = ["## False alarms of a clean patch (`scripts/bench_false_alarms.py`)", ""]
    rows = ["| variant | validations | UNCHANGED | false alarms | 95 % upper bound | median wall s | command |"]
    rows.append("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    named: list[str] = []
    for v in variants:
        mine = [d for d in done if d.variant == v.name]
        alarms = sum(_alarm(d) for d in mine)
        bound = upper_bound(alarms, len(mine))
        lines.append(f"- **{v.name}: {alarms} false alarm(s) in {len(mine)}** validations (rate <= {bound:.0%}, 95 %)")
        wall = sorted(d.seconds for d in mine)[len(mine) // 2]
        command = " ".join(Path(v.argv[0]).name if i == 0 else a for i, a in enumerate(v.argv))
        rows.append(
            f"| {v.name} | {len(mine)} | {len(mine) - alarms} | {alarms} | {bound:.0%} | {wall:.0f} | `{command}` |"
        )
        cases = collections.Counter(c for d in mine for c in d.regressed)
        odd = collections.Counter(d.verdict or f"no comparison (exit {d.exit_code})" for d in mine if _alarm(d))
        if odd:
            named.append(f"- {v.name}: " + ", ".join(f"{n}x {what}" for what, n in odd.most_common()))
            named += [f"  - regressed {n}x: `{case}`" for case, n in cases.most_common()]
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines += ["", *rows, ""]
    if named:
        lines += ["What the false alarms named:", "", *named, ""]
    lines += [
        f"{rounds} rounds, one validation of each variant per round, the order rotated each round; each a fresh "
        "process and output folder (2 baseline replicas and the candidate, run concurrently). A false alarm is any "
        "verdict other than UNCHANGED. The bound is one-sided Clopper-Pearson "
        f"(0 of {rounds}: {upper_bound(0, rounds):.0%}).",
        "",
        f"- machine: {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, Python {platform.python_version()}",
        f"- load average (1 min) before / after: {load[0]} / {load[1]}",
        f"- date: {when}",
        "- command: `python scripts/bench_false_alarms.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]) + "`",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--variant", action="append", type=Variant.parse, required=True, help="NAME=COMMAND ...")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds one validation may take")
    parser.add_argument("--markdown", type=Path, help="rewrite this benchmark's section of this file")
    args = parser.parse_args(argv)
    if args.rounds < 1 or not args.timeout > 0:
        parser.error("--rounds must be at least 1 and --timeout positive")
    before = f"{os.getloadavg()[0]:.2f}"
    done = measure(args.variant, args.rounds, args.timeout)
    section = render_markdown(args.variant, done, args.rounds, (before, f"{os.getloadavg()[0]:.2f}"))
    print(section)
    if args.markdown:
        rewrite_section(args.markdown, BEGIN_MARKER, END_MARKER, section)
    return 1 if any(_alarm(d) for d in done) else 0


if __name__ == "__main__":
    sys.exit(main())
