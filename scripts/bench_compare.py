"""Benchmark of `patchgate compare` (compare plus every report) on synthetic run directories of growing size.

For each size (106 / 1,000 / 10,000 cases by default) the script writes two baseline replicas and a
candidate as run directories (tests/synthetic.py: seeded, in the shapes of tests/factories.py, about
2 % of the cases regressed), then runs `patchgate compare` on them once per variant and round, each
a fresh process, interleaved with the order rotated each round. Measured per run: the wall time from
process start to exit, the peak RSS of that process (`os.wait4`'s rusage: RUSAGE_CHILDREN would give
the largest of all children so far, not this one's; the runs are written by a process of their own, since a child's
peak counts the memory of the process it was forked from), the sizes of report.html and comparison.json,
and (once per variant and size, with --pdf) the pages and bytes of report.html printed to PDF by
headless Chromium. Every run must exit 1 (REGRESSED). First it waits, at most --settle seconds, for a quiet disk
(scripts/_machine.quiet_disk: these VMs create files several times slower for minutes after many were deleted).

    python scripts/bench_compare.py --variant "before=/tmp/venv-10f/bin/patchgate" \\
        --variant "after=.venv/bin/patchgate" [--cases 106,1000,10000] [--rounds 3] [--pdf] \\
        [--markdown docs/benchmarks.md] [--settle 300]

Exits 1 if a run did not exit 1, or the last variant misses a target at the largest size
(≤ 5 s, ≤ 250 MiB, time per case ≤ 1.2x that at 1,000 cases, report ≤ 2 MB and ≤ 100 pages).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import multiprocessing
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from _docs import rewrite_section  # scripts/ is on sys.path when a script runs
from _machine import create, disk, quiet_disk, speed, yardstick
from _timed import timed
from bench_demo import rotated

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.synthetic: the same records the golden comparison tests use

from harness.model import CaseRecord, RunRecord  # noqa: E402
from harness.rundir import RunDir  # noqa: E402
from tests.synthetic import synthetic  # noqa: E402

__all__ = ["BEGIN_MARKER", "END_MARKER", "Sample", "Variant", "main", "measure", "render_markdown", "write_runs"]

BEGIN_MARKER = "<!-- bench_compare:begin -->"
END_MARKER = "<!-- bench_compare:end -->"
EXPECTED_EXIT = 1  # the synthetic candidate regresses
TARGET_SECONDS, TARGET_MIB, TARGET_LINEAR = 5.0, 250.0, 1.2
TARGET_REPORT_BYTES, TARGET_PAGES = 2_000_000, 100
_POLICY = """[[expected]]
case = "tls/*"
path = "accepted"
reason = "TLS 1.0 switched off"
ticket = "SEC-12"
"""


@dataclass(frozen=True)
class Variant:
    """One installation's `patchgate` executable: `name=PATH` on the command line of this script."""

    name: str
    patchgate: str

    @classmethod
    def parse(cls, text: str) -> Variant:
        name, sep, path = text.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise argparse.ArgumentTypeError(f"--variant {text!r}: expected NAME=PATH-TO-patchgate")
        return cls(name.strip(), path.strip())


@dataclass(frozen=True)
class Sample:
    """One `patchgate compare` run."""

    variant: str
    cases: int
    round: int
    seconds: float
    cpu: float  # user + system seconds of the process: less swayed than wall time by a busy machine
    peak_mib: float
    exit_code: int
    html_bytes: int
    json_bytes: int
    pdf_pages: int | None = None
    pdf_bytes: int | None = None
    files: int = 0  # the files compare wrote under --out
    bare_create: float = 0.0  # seconds a bare loop took to create files of the same names and sizes, same round


def write_runs(cases: int, folder: Path) -> tuple[list[Path], Path, Path]:
    """The synthetic runs of `cases` cases as run directories under `folder`, and a policy file."""
    s = synthetic(cases)
    paths = [_write_run(run, folder / run.manifest.run_id) for run in (*s.baselines, s.candidate)]
    policy = folder / "policy.toml"
    policy.write_text(_POLICY, encoding="utf-8")
    return paths[:-1], paths[-1], policy


def _written_apart(cases: int, folder: Path, timeout: float) -> tuple[list[Path], Path, Path]:
    """`write_runs` in a process of its own. A child's peak RSS (ru_maxrss) includes this process's RSS when it
    was forked: built here, the synthetic runs of 10,000 cases (about 300 MiB) counted in every compare."""
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(write_runs, cases, folder).result(timeout=timeout)


def _write_run(run: RunRecord, path: Path) -> Path:
    directory = RunDir(path)
    directory.prepare()
    directory.write_manifest(run.manifest)
    # As CaseWriter writes each line, without its fsync per case (30,000 of them would time the disk).
    directory.observations.write_text("".join(_line(c) for c in run.cases), encoding="utf-8")
    return path


def _line(case: CaseRecord) -> str:
    return json.dumps(case.to_json(), sort_keys=True, ensure_ascii=False) + "\n"


def _compare(
    variant: Variant, runs: tuple[list[Path], Path, Path], out: Path, timeout: float
) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds, peak RSS in MiB and exit code of one `patchgate compare` process."""
    baselines, candidate, policy = runs
    argv = [variant.patchgate, "compare", *(a for b in baselines for a in ("--baseline", str(b)))]
    argv += ["--candidate", str(candidate), "--policy", str(policy), "--out", str(out)]
    run = timed(argv, ROOT, timeout)
    return run.seconds, run.cpu, run.peak_mib, run.exit_code


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _pdf(html: Path, scratch: Path, timeout: float) -> tuple[int, int] | None:
    """Pages and bytes of `html` printed by headless Chromium (as tests/integration/test_report_browser.py runs it)."""
    binary = _chromium()
    if binary is None:
        return None
    pdf = scratch / "report.pdf"
    profile = scratch / "chromium-profile"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    flags += ["--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", "--no-pdf-header-footer"]
    try:
        subprocess.run(
            [binary, *flags, f"--print-to-pdf={pdf}", html.as_uri()],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    if not pdf.exists():
        return None
    data = pdf.read_bytes()
    pages = len(re.findall(rb"/Type\s*/Page(?![a-z])", data))
    pdf.unlink()
    return pages, len(data)


def measure(
    variants: Sequence[Variant], sizes: Sequence[int], rounds: int, timeout: float, *, pdf: bool, settle: float = 300.0
) -> tuple[list[Sample], str]:
    """Every variant on every size, `rounds` times, interleaved, the order rotated each round, started on a quiet
    disk (waiting at most `settle` s for one); and the sentence saying how quiet it was."""
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        scratch = Path(tmp)
        settled = disk(*quiet_disk(scratch / "probe", settle))
        print(settled, flush=True)
        for cases in sizes:
            runs = _written_apart(cases, scratch / f"runs-{cases}", timeout)
            for r in range(rounds):
                for variant in rotated(variants, r):
                    out = scratch / f"out-{cases}-{variant.name}-{r}".replace(" ", "_")
                    seconds, cpu, peak, code = _compare(variant, runs, out, timeout)
                    html, doc = out / "report.html", out / "comparison.json"
                    printed = _pdf(html, scratch, timeout) if pdf and r == 0 and html.exists() else None
                    files, bare = _bare_create(out, out.with_name(out.name + "-bare"))
                    sample = Sample(
                        variant.name,
                        cases,
                        r + 1,
                        seconds,
                        cpu,
                        peak,
                        code,
                        html.stat().st_size if html.exists() else 0,
                        doc.stat().st_size if doc.exists() else 0,
                        printed[0] if printed else None,
                        printed[1] if printed else None,
                        files,
                        bare,
                    )
                    samples.append(sample)
                    pages = f", {sample.pdf_pages} pages" if sample.pdf_pages is not None else ""
                    print(
                        f"{cases} cases, round {r + 1}, {variant.name}: {seconds:.2f} s ({cpu:.2f} s CPU), {peak:.0f} MiB, "
                        f"html {sample.html_bytes / 1e6:.2f} MB{pages}, exit {code}; {files} files, bare create {bare:.2f} s",
                        flush=True,
                    )
    return samples, settled


def _bare_create(out: Path, floor: Path) -> tuple[int, float]:
    """How many files `out` holds, and the seconds a bare loop (open, write, close) takes to create files of
    the same names and sizes under `floor`: what this disk charges for compare's files alone, this round.
    A comparison of 10,000 cases creates 10,847 files, whose cost on these VMs' disks varies several-fold from
    one minute to the next; compare's time less this one estimates the rest. Nothing is deleted until the end:
    ext4 skips inodes freed in the last minute or more when it allocates one (`recently_deleted`: a third of a
    compare's samples in a `perf` profile, written after 10,000 files had been removed), so a round that
    removed the last one's files would time that instead."""
    files = [(p.relative_to(out), p.stat().st_size) for p in out.rglob("*") if p.is_file()]
    start = time.monotonic()
    for parent in sorted({rel.parent for rel, _ in files}):
        (floor / parent).mkdir(parents=True, exist_ok=True)
    create((floor / rel, size) for rel, size in files)
    return len(files), time.monotonic() - start


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _row(samples: Sequence[Sample], per_case_1000: float | None) -> list[str]:
    seconds = _median([s.seconds for s in samples])
    per_case = seconds / samples[0].cases * 1000
    linear = f"{per_case / per_case_1000:.2f}" if per_case_1000 else ""
    printed = next((s for s in samples if s.pdf_pages is not None), None)
    return [
        samples[0].variant,
        f"{samples[0].cases:,}",
        f"{seconds:.2f}",
        f"{min(s.seconds for s in samples):.2f}-{max(s.seconds for s in samples):.2f}",
        f"{_median([s.cpu for s in samples]):.2f}",
        f"{per_case:.2f}",
        linear,
        f"{max(s.peak_mib for s in samples):.0f}",
        f"{samples[0].html_bytes / 1e6:.2f}",
        f"{samples[0].json_bytes / 1e6:.2f}",
        f"{printed.pdf_pages}" if printed else "",
        f"{printed.pdf_bytes / 1e6:.1f}" if printed and printed.pdf_bytes else "",
        f"{samples[0].files:,}",
        f"{_median([s.bare_create for s in samples]):.2f}",
        f"{_median([s.seconds - s.bare_create for s in samples]):.2f}",
    ]


def _groups(
    variants: Sequence[Variant], sizes: Sequence[int], samples: Sequence[Sample]
) -> dict[tuple[str, int], list[Sample]]:
    return {(v.name, n): [s for s in samples if s.variant == v.name and s.cases == n] for v in variants for n in sizes}


def misses(variants: Sequence[Variant], sizes: Sequence[int], samples: Sequence[Sample]) -> list[str]:
    """The targets the last variant misses at the largest size (and linearity against 1,000 cases)."""
    groups = _groups(variants, sizes, samples)
    last, largest = variants[-1].name, max(sizes)
    at = groups[(last, largest)]
    seconds, peak = _median([s.seconds for s in at]), max(s.peak_mib for s in at)
    found = []
    if seconds > TARGET_SECONDS:
        found.append(f"{seconds:.2f} s > {TARGET_SECONDS} s")
    if peak > TARGET_MIB:
        found.append(f"{peak:.0f} MiB > {TARGET_MIB:.0f} MiB")
    if at[0].html_bytes > TARGET_REPORT_BYTES:
        found.append(f"report.html {at[0].html_bytes / 1e6:.2f} MB > 2 MB")
    pages = next((s.pdf_pages for s in at if s.pdf_pages is not None), None)
    if pages is not None and pages > TARGET_PAGES:
        found.append(f"{pages} pages > {TARGET_PAGES}")
    if 1000 in sizes and largest > 1000:
        base = _median([s.seconds for s in groups[(last, 1000)]]) / 1000
        if seconds / largest > TARGET_LINEAR * base:
            found.append(f"time per case {seconds / largest / base:.2f}x that at 1,000 cases > {TARGET_LINEAR}x")
    return found


def _paired(first: Sequence[Sample], last: Sequence[Sample]) -> str:
    """The two variants' ratios in each round (wall and CPU), and their medians: a machine whose speed drifts
    during a sitting moves both runs of a round alike, and the medians of each variant less so."""
    by_round = {s.round: s for s in first}
    pairs = [(by_round[s.round], s) for s in last if s.round in by_round]  # (first's, last's) of each round
    walls = [new.seconds / old.seconds for old, new in pairs]
    cpus = [new.cpu / old.cpu for old, new in pairs if old.cpu > 0]
    return (
        ", ".join(f"{w:.2f}" for w in walls)
        + f" (median {_median(walls):.2f}x the wall time, {_median(cpus):.2f}x the CPU)"
    )


def render_markdown(
    variants: Sequence[Variant], sizes: Sequence[int], samples: Sequence[Sample], rounds: int, load: str
) -> str:
    """The section for docs/benchmarks.md: headline, table, and how it was measured."""
    groups = _groups(variants, sizes, samples)
    largest = max(sizes)
    lines = ["## `patchgate compare` at 106 / 1,000 / 10,000 cases (`scripts/bench_compare.py`)", ""]
    first, last = variants[0].name, variants[-1].name
    for v in variants:
        at = groups[(v.name, largest)]
        lines.append(
            f"- **{v.name}, {largest:,} cases: {_median([s.seconds for s in at]):.2f} s, "
            f"{max(s.peak_mib for s in at):.0f} MiB peak, report.html {at[0].html_bytes / 1e6:.2f} MB**; "
            f"creating its {at[0].files:,} files in a bare loop took {_median([s.bare_create for s in at]):.2f} s "
            f"in the same rounds (less that: {_median([s.seconds - s.bare_create for s in at]):.2f} s)"
        )
    if len(variants) > 1:
        a, b = groups[(first, largest)], groups[(last, largest)]
        ratio = _median([s.seconds for s in b]) / _median([s.seconds for s in a])
        lines.append(f"- {last} / {first} at {largest:,} cases: {ratio:.2f}x the wall time (medians, same rounds)")
        lines.append(f"- {last} / {first} at {largest:,} cases, round by round: {_paired(a, b)}")
    bad = [s for s in samples if s.exit_code != EXPECTED_EXIT]
    missed = misses(variants, sizes, samples)
    lines.append(f"- checks: {len(samples) - len(bad)} of {len(samples)} runs exited {EXPECTED_EXIT} (REGRESSED)")
    lines.append(
        f"- targets ({last}, {largest:,} cases: ≤ {TARGET_SECONDS:.0f} s, ≤ {TARGET_MIB:.0f} MiB, per case ≤ "
        f"{TARGET_LINEAR}x that at 1,000, report ≤ 2 MB and ≤ {TARGET_PAGES} pages): "
        + ("met" if not missed else "missed: " + "; ".join(missed))
        + ("" if any(s.pdf_pages is not None for s in samples) else " (pages not measured: --pdf)")
    )
    lines += [
        "",
        "| variant | cases | median s | min-max s | CPU s | ms per case | per case ÷ at 1,000 | peak RSS MiB "
        "| report.html MB | comparison.json MB | PDF pages | PDF MB | files | bare create s | less bare create s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for v in variants:
        base = groups.get((v.name, 1000))
        per_case_1000 = _median([s.seconds for s in base]) if base else None  # ms per case: seconds / 1000 * 1000
        for n in sizes:
            lines.append("| " + " | ".join(_row(groups[(v.name, n)], per_case_1000)) + " |")
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    commands = ", ".join(f"{v.name}: `{v.patchgate}`" for v in variants)
    lines += [
        "",
        f"{rounds} round(s) per size, the variants interleaved with the order rotated; each run a fresh "
        "`patchgate compare --baseline B1 --baseline B2 --candidate C --policy P --out O` process (reading "
        "the three run directories, comparing, writing comparison.json, junit.xml, report.html and "
        "allure-results), timed from start to exit; CPU (user + system) and peak RSS from `os.wait4`. Runs: tests/synthetic.py, seed 1422 "
        "(two baselines and a candidate, about 2 % of the cases regressed, 1 % expected, 1 % noisy, a sixth "
        "not applicable). Bare create: right after each compare, a loop of open, write and close makes files of the "
        "same names and sizes as the compare wrote in a fresh folder (its time is this disk's floor for those files, "
        'which moves several-fold between minutes on these VMs); "less bare create" is the median of each '
        "round's difference. PDF: report.html printed by headless Chromium (`--print-to-pdf`), first round only. "
        f"Variants: {commands}. Measured {when} on {platform.node() or 'this machine'} ({os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}), load average {load}.",
        "",
        "- command: `python scripts/bench_compare.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]) + "`",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--variant", action="append", type=Variant.parse, help="NAME=PATH-TO-patchgate (repeat)")
    parser.add_argument("--cases", default="106,1000,10000", help="comma-separated sizes (default 106,1000,10000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one run (or one PDF print) may take")
    parser.add_argument("--pdf", action="store_true", help="print each report.html to PDF once and count its pages")
    parser.add_argument("--markdown", type=Path, help="rewrite this benchmark's section of this file")
    parser.add_argument(
        "--settle",
        type=float,
        default=300.0,
        help="seconds to wait at most for a quiet disk first (default 300; 0: none)",
    )
    args = parser.parse_args(argv)
    variants = args.variant or [Variant("current", str(Path(sys.executable).parent / "patchgate"))]
    try:
        sizes = sorted({int(n) for n in args.cases.split(",")})
    except ValueError:
        parser.error(f"--cases {args.cases!r}: expected comma-separated numbers, e.g. 106,1000,10000")
    if args.rounds < 1 or not args.timeout > 0 or min(sizes) < 1:
        parser.error("--rounds and every size must be at least 1, --timeout positive")
    if args.pdf and _chromium() is None:
        parser.error("--pdf prints report.html with Chromium, which is not on PATH: apt-get install chromium")
    before, fast = os.getloadavg(), yardstick()
    samples, settled = measure(variants, sizes, args.rounds, args.timeout, pdf=args.pdf, settle=args.settle)
    after, slow = os.getloadavg(), yardstick()
    load = (
        f"{before[0]:.2f} at the start, {after[0]:.2f} at the end (1-minute). {speed(fast, slow)} {settled.rstrip('.')}"
    )
    section = render_markdown(variants, sizes, samples, args.rounds, load)
    print(section)
    if args.markdown:
        rewrite_section(args.markdown, BEGIN_MARKER, END_MARKER, section)
    return 0 if all(s.exit_code == EXPECTED_EXIT for s in samples) and not misses(variants, sizes, samples) else 1


if __name__ == "__main__":
    sys.exit(main())
