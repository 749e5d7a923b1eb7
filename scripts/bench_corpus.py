"""Benchmark of the synthetic corpus: generation time, hashing (encoding) time and peak memory, per corpus size.

Every run of the suites makes the corpus once, and the runner makes it once more per
validation for the manifest's hash, so these are costs each validation pays. Each
measurement is a fresh process (peak RSS is the process's own), sizes interleaved in
rounds; medians are reported, because absolute times on these machines swing.

    python scripts/bench_corpus.py [--rounds 3] [--seed 1422]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Sequence

# Run in the child: one generation and one hash, timed, with the process's peak RSS.
_CHILD = """
import json, resource, sys, time
from simulators import corpus
seed, size = int(sys.argv[1]), sys.argv[2]
t0 = time.perf_counter()
items = corpus.generate(seed, corpus_size=size)
t1 = time.perf_counter()
digest = corpus.corpus_hash(items)
t2 = time.perf_counter()
print(json.dumps({
    "items": len(items), "generate": t1 - t0, "hash": t2 - t1, "sha256": digest,
    "megabytes": sum(len(corpus.encode(i)) for i in items) / 1e6,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def _measure(seed: int, size: str) -> dict[str, float | int | str]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(seed), size], capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"corpus size {size!r} failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    result: dict[str, float | int | str] = json.loads(done.stdout)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="measurements per size (default 3)")
    parser.add_argument("--seed", type=int, default=1422)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    sizes = ("small", "clinical")
    results: dict[str, list[dict[str, float | int | str]]] = {s: [] for s in sizes}
    for round_number in range(args.rounds):
        order = sizes if round_number % 2 == 0 else tuple(reversed(sizes))
        for size in order:
            results[size].append(_measure(args.seed, size))
    print(f"corpus seed {args.seed}, {args.rounds} round(s), medians:")
    print("| size | items | MB (Part 10) | generate s | hash s | peak RSS MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for size in sizes:
        rows = results[size]
        hashes = {r["sha256"] for r in rows}
        if len(hashes) != 1:  # the same seed must give the same bytes in every process
            raise SystemExit(f"corpus size {size!r}: {len(hashes)} different hashes over {len(rows)} rounds")

        def median(name: str, rows: list[dict[str, float | int | str]] = rows) -> float:
            return statistics.median(float(r[name]) for r in rows)

        print(
            f"| {size} | {rows[0]['items']} | {median('megabytes'):.1f} | {median('generate'):.2f} "
            f"| {median('hash'):.2f} | {median('peak_rss_mb'):.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
