"""Benchmark of `patchgate validate --demo` wall time: two installations side by side, and corpus sizes.

Each variant is one `patchgate` command line (an installation's executable and its arguments);
the variants run interleaved in rounds (A B C, A B C, ... with the order rotated each round),
each as a fresh process in a fresh output folder, bounded by a timeout. Measured: the wall time
from process start to exit, and the CPU time (user + system) of the process and every process it
waited for (the fork server's children through it): the part of a demo that does not depend on how
its concurrent runs happened to share the two cores. The headline is the ratio of medians against the first variant,
because absolute times on these machines swing from minute to minute. A run that does not end
with the expected exit code fails the benchmark (exit 1), so a rerun can be scripted.

    python scripts/bench_demo.py --variant "before=/tmp/venv-before/bin/patchgate validate --demo" \\
        --variant "after=.venv/bin/patchgate validate --demo" \\
        --variant "after, clinical=.venv/bin/patchgate validate --profile devices/reference/clinical.toml" \\
        [--rounds 5] [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from _docs import rewrite_section  # scripts/ is on sys.path when a script runs
from _machine import speed, yardstick
from _timed import timed

__all__ = ["BEGIN_MARKER", "END_MARKER", "Variant", "main", "measure", "render_markdown", "rotated"]

BEGIN_MARKER = "<!-- bench_demo:begin -->"
END_MARKER = "<!-- bench_demo:end -->"
ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


@dataclass(frozen=True)
class Variant:
    """One command line to time: `name=command ...` on the command line of this script."""

    name: str
    argv: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Variant:
        name, sep, command = text.partition("=")
        if not sep or not name.strip() or not command.strip():
            raise argparse.ArgumentTypeError(f"--variant {text!r}: expected NAME=COMMAND ...")
        return cls(name.strip(), tuple(shlex.split(command)))


@dataclass(frozen=True)
class Sample:
    """One timed run: its round, wall time, exit code and CPU time."""

    variant: str
    round: int
    seconds: float
    exit_code: int
    cpu: float = 0.0  # user + system seconds of the run's process tree (what it waited for)


def _run(variant: Variant, round_no: int, timeout: float, scratch: Path) -> Sample:
    out = scratch / f"{variant.name.replace(' ', '_').replace(',', '')}-{round_no}"
    run = timed([*variant.argv, "--out", str(out)], ROOT, timeout)
    return Sample(variant.name, round_no, run.seconds, run.exit_code, run.cpu)


def rotated(items: Sequence[T], r: int) -> list[T]:
    """`items` in round `r`'s order: each round starts one further on, so no variant always runs first."""
    return [items[(i + r) % len(items)] for i in range(len(items))]


def measure(variants: Sequence[Variant], rounds: int, timeout: float) -> list[Sample]:
    """Every variant `rounds` times, interleaved, the order rotated each round."""
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as scratch:
        for r in range(rounds):
            order = rotated(variants, r)
            for variant in order:
                sample = _run(variant, r + 1, timeout, Path(scratch))
                print(
                    f"round {r + 1}: {variant.name}: {sample.seconds:.1f} s, {sample.cpu:.1f} s CPU, "
                    f"exit {sample.exit_code}",
                    flush=True,
                )
                samples.append(sample)
    return samples


def render_markdown(
    variants: Sequence[Variant], samples: Sequence[Sample], expected_exit: int, rounds: int, machine: str = ""
) -> str:
    """The section for docs/benchmarks.md: headline ratios, a table, and how it was measured."""
    by_name = {v.name: [s for s in samples if s.variant == v.name] for v in variants}
    first = statistics.median(s.seconds for s in by_name[variants[0].name])
    first_cpu = statistics.median(s.cpu for s in by_name[variants[0].name])
    lines = ["## `patchgate validate --demo` wall time (`scripts/bench_demo.py`)", ""]
    for v in variants[1:]:
        median = statistics.median(s.seconds for s in by_name[v.name])
        cpu = statistics.median(s.cpu for s in by_name[v.name])
        lines.append(
            f"- **{v.name}: {median / first:.2f}x {variants[0].name}** (median {median:.1f} s vs {first:.1f} s; "
            f"CPU {cpu / first_cpu:.2f}x, {cpu:.1f} s vs {first_cpu:.1f} s)"
        )
    bad = [s for s in samples if s.exit_code != expected_exit]
    lines += [f"- checks: {len(samples) - len(bad)} of {len(samples)} runs exited {expected_exit}", ""]
    lines += [
        "| variant | median wall s | min | max | ratio | median CPU s | CPU ratio | command |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for v in variants:
        times = [s.seconds for s in by_name[v.name]]
        median, cpu = statistics.median(times), statistics.median(s.cpu for s in by_name[v.name])
        command = " ".join(Path(v.argv[0]).name if i == 0 else a for i, a in enumerate(v.argv))
        lines.append(
            f"| {v.name} | {median:.1f} | {min(times):.1f} | {max(times):.1f} | {median / first:.2f} | {cpu:.1f} "
            f"| {cpu / first_cpu:.2f} | `{command}` |"
        )
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines += [
        "",
        f"{rounds} rounds, the variants interleaved in each round with the order rotated; each run a fresh "
        "process and output folder, timed from start to exit (device start, 2 baseline replicas and 1 "
        "candidate, comparison, reports); CPU: user + system of the run and every process it waited for. Measured "
        f"{when} on {platform.node() or 'this machine'} ({os.cpu_count()} CPUs, Python {platform.python_version()})."
        + (f" {machine}" if machine else ""),
        "",
        "- command: `python scripts/bench_demo.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]) + "`",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--variant", action="append", type=Variant.parse, required=True, help="NAME=COMMAND ...")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one run may take")
    parser.add_argument("--expected-exit", type=int, default=0)
    parser.add_argument("--markdown", type=Path, help="rewrite this benchmark's section of this file")
    args = parser.parse_args(argv)
    if args.rounds < 1 or not args.timeout > 0:
        parser.error("--rounds must be at least 1 and --timeout positive")
    fast = yardstick()
    samples = measure(args.variant, args.rounds, args.timeout)
    section = render_markdown(args.variant, samples, args.expected_exit, args.rounds, speed(fast, yardstick()))
    print(section)
    if args.markdown:
        rewrite_section(args.markdown, BEGIN_MARKER, END_MARKER, section)
    return 0 if all(s.exit_code == args.expected_exit for s in samples) else 1


if __name__ == "__main__":
    sys.exit(main())
