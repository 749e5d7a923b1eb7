"""Performance comparison: per metric, the candidate against every baseline replica, by round-paired bootstrap.

The statistics of docs/design/load-and-attack.md section 7. Every metric is time (or bytes) per unit, lower is
better; R(C, B) is a ratio of medians, its bounds come from resampling whole rounds, the same rounds for every run
(harness.compare._bootstrap). A metric regresses only when the candidate is slower beyond the threshold than *each*
baseline replica at the confidence (the slowest replica sets the bar); replicas that differ significantly by more
than the threshold make it `noisy`, never regressed. `memory.growth` is a difference of least-squares slopes.

The API takes plain mappings (run name -> round -> values), so the conductor's stopping rule (`settled`) and the
comparison of run directories (`compare_performance`) use the same code.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.compare.policy import Policy
from harness.errors import RunDirError
from harness.model import Interval, MetricComparison, PerfDecision, Spread
from harness.profile import ExpectedSlowdown

# harness.compare._bootstrap (numpy: 0.1-0.2 s to import) is imported where a metric is compared or drawn: a
# comparison without performance metrics (`patchgate compare` of most suites) does not load numpy for nothing.
if TYPE_CHECKING:
    from harness.compare._bootstrap import Replicates

__all__ = [
    "GROWTH",
    "MIN_DECIDING_ROUNDS",
    "PerfSettings",
    "Points",
    "Rounds",
    "RunSamples",
    "StoppingRule",
    "compare_growth",
    "compare_metric",
    "compare_performance",
    "decide",
    "parse_samples",
    "read_samples",
    "settled",
    "spread",
    "unit_of",
]

GROWTH = "memory.growth"
# A bound beyond the threshold from fewer paired rounds is not trusted: n rounds give at most n^n resamples, and
# the percentile bounds of so small a bootstrap are too narrow (3 rounds under load once read a clean find.study
# 1.36x [1.13, 1.62]). The profile's default min_rounds is this, so only a smaller min_rounds or a budget that
# ends a metric early meets it: the metric is then undecided, a warning, not a regression.
MIN_DECIDING_ROUNDS = 6
# One run's (x, y) points of memory.growth by pairing key: cumulative associations, rss at rest (bytes).
Points = Mapping[int, Sequence[tuple[float, float]]]
# Spread.quantiles are taken at these probabilities; Spread.points holds at most this many values.
_QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
_POINTS = 200
_SAMPLE_HINT = (
    'a perf/samples.jsonl line is one JSON object: {"metric": "find.study", "round": 3, "values": [0.0053, ...], ...} '
    "(the run directory was edited or corrupted; rerun that variant)"
)
_ZERO = Interval(0.0, 0.0)
# One run's kept values: round number -> the values measured in that round (all its blocks).
Rounds = Mapping[int, Sequence[float]]


@dataclass(frozen=True)
class PerfSettings:
    """The keys of the profile's [performance] table that the comparison reads (design 3), with its defaults."""

    threshold: float = 0.10
    thresholds: Mapping[str, float] = field(default_factory=dict)  # metric glob -> threshold, first match wins
    confidence: float = 0.95
    memory_threshold: float = 0.20
    memory_growth_limit: float = 65536.0
    cpu_threshold: float = 0.20
    bootstrap: int = 2000

    @classmethod
    def of(cls, spec: object) -> PerfSettings:
        """The settings of a [performance] spec record (any object with these attribute names; others default)."""
        names: tuple[str, ...] = ("threshold", "thresholds", "confidence", "memory_threshold", "memory_growth_limit")
        names = (*names, "cpu_threshold", "bootstrap")
        return cls(**{n: getattr(spec, n) for n in names if hasattr(spec, n)})

    def threshold_for(self, metric: str) -> float:
        """t: the first `thresholds` glob that covers the metric, else memory_threshold for memory.*, cpu_threshold for
        cpu.*, else threshold."""
        for pattern, value in self.thresholds.items():
            if _glob(pattern).fullmatch(metric):
                return float(value)
        if metric.startswith("memory."):
            return self.memory_threshold
        return self.cpu_threshold if metric.startswith("cpu.") else self.threshold


@dataclass(frozen=True)
class RunSamples:
    """One run's kept performance values (warm-up rounds left out), as read from its perf/ files."""

    run: str  # "baseline-1", "candidate-1"
    values: Mapping[str, Mapping[int, tuple[float, ...]]]  # metric -> round -> values, in file order of metrics
    rates: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # metric -> "images/s", "MB/s" -> median
    growth: Points = field(default_factory=dict)  # memory.growth's points (from resources.jsonl), by block number


def unit_of(metric: str) -> str:
    """The unit a metric's values are in."""
    if metric.startswith("store.study"):
        return "s/study"
    if metric == GROWTH:
        return "bytes/association"
    if metric.startswith("memory."):
        return "bytes"
    if metric.startswith("cpu."):
        return "s CPU/op"
    return "s/op"


def parse_samples(data: bytes, source: str, *, run: str, warmup_rounds: int = 1) -> RunSamples:
    """samples.jsonl (design 4) as per-metric, per-round values, rounds below `warmup_rounds` left out.

    A last line without its newline is a write cut short (a killed run) and is left out, like observations.jsonl;
    any other bad line is a RunDirError naming `source`:LINE. Rounds count from 0, so warm-up round 0 is dropped
    by the default `warmup_rounds = 1`.
    """
    whole = data.rpartition(b"\n")[0]
    values: dict[str, dict[int, list[float]]] = {}
    volumes: dict[str, list[tuple[float, int, int]]] = {}  # metric -> (seconds, bytes, images) per kept block
    for number, raw in enumerate(whole.split(b"\n") if whole else (), start=1):
        if not raw.strip():
            continue
        where = f"{source}:{number}"
        try:
            line = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise RunDirError(f"{where}: not a JSON line ({exc})", hint=_SAMPLE_HINT) from None
        metric, round_, block = _block(line, where)
        if round_ < warmup_rounds:
            continue
        values.setdefault(metric, {}).setdefault(round_, []).extend(block)
        volumes.setdefault(metric, []).append((sum(block), _count(line, "bytes", where), _count(line, "images", where)))
    rates = {metric: r for metric, blocks in volumes.items() if (r := _rates(blocks))}
    kept = {m: {k: tuple(v) for k, v in sorted(by_round.items())} for m, by_round in values.items()}
    return RunSamples(run, kept, rates)


def read_samples(path: str | Path, *, run: str, warmup_rounds: int = 1) -> RunSamples:
    """A run's perf/samples.jsonl read and parsed (parse_samples); a missing file is a run that measured nothing."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return RunSamples(run, {})
    except OSError as exc:
        raise RunDirError(f"{path}: cannot read: {exc.strerror or exc}", hint="rerun that variant") from None
    return parse_samples(data, str(path), run=run, warmup_rounds=warmup_rounds)


def _block(line: Any, where: str) -> tuple[str, int, list[float]]:
    """(metric, round, values) of one parsed line, or a RunDirError saying which key is wrong."""
    if not isinstance(line, dict):
        raise RunDirError(f"{where}: expected a JSON object, got {type(line).__name__}", hint=_SAMPLE_HINT)
    metric, round_, values = line.get("metric"), line.get("round"), line.get("values")
    if not isinstance(metric, str) or not metric:
        raise RunDirError(f"{where}: metric: expected a metric id, got {metric!r}", hint=_SAMPLE_HINT)
    if isinstance(round_, bool) or not isinstance(round_, int) or round_ < 0:
        raise RunDirError(f"{where}: round: expected an integer ≥ 0, got {round_!r}", hint=_SAMPLE_HINT)
    if not isinstance(values, list) or not all(_finite(v) for v in values):
        raise RunDirError(f"{where}: values: expected an array of finite numbers ≥ 0", hint=_SAMPLE_HINT)
    return metric, round_, [float(v) for v in values]


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _count(line: Mapping[str, Any], name: str, where: str) -> int:
    value = line.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RunDirError(f"{where}: {name}: expected an integer ≥ 0, got {value!r}", hint=_SAMPLE_HINT)
    return value


def _rates(blocks: Sequence[tuple[float, int, int]]) -> dict[str, float]:
    """Median images/s and MB/s over the blocks that moved any (store.*), for reports."""
    out: dict[str, float] = {}
    for name, index, scale in (("images/s", 2, 1.0), ("MB/s", 1, 1e-6)):
        per_block = [b[index] * scale / b[0] for b in blocks if b[index] and b[0] > 0]
        if per_block:
            out[name] = float(statistics.median(per_block))
    return out


def spread(run: str, rounds: Rounds) -> Spread:
    """What the report draws of one run's values: seven quantiles and ≤ 200 points at evenly spaced probabilities."""
    from harness.compare import _bootstrap as bootstrap

    values = [v for k in sorted(rounds) for v in rounds[k]]
    if not values:
        return Spread(run, 0, 0, (), ())
    quantiles, points = bootstrap.quantiles(values, _QUANTILES, _POINTS)
    return Spread(run, len(values), len(rounds), quantiles, points)


@dataclass(frozen=True)
class _Evidence:
    """One metric's point estimates and bootstrap replicates: candidate / each baseline, and baselines pairwise."""

    ratio: float  # candidate / pooled baselines
    pooled: Replicates
    against: tuple[Replicates, ...]  # candidate / each baseline
    noise: float
    noise_replicates: Replicates | None  # the pair of replicas that differ most
    kind: str = "ratio"  # or "difference" (memory.growth)
    rounds: int = MIN_DECIDING_ROUNDS  # the pairing keys in common (each run's own, fewest, when unpaired)


@dataclass(frozen=True)
class _Judged:
    decision: PerfDecision
    low: float  # L_min
    high: float  # U_max
    noise: Interval
    few: bool = False  # beyond the threshold, from fewer than MIN_DECIDING_ROUNDS rounds: undecided


def _ratio_evidence(
    baselines: Mapping[str, Rounds],
    candidate: Rounds,
    *,
    metric: str,
    seed: int,
    resamples: int,
    pairing: str = "rounds",
) -> _Evidence | None:
    """The replicates of every ratio, or None when a median is 0 (too coarse to compare).

    Rounds are paired when every run has them; runs with no round in common (of different validations) are
    resampled each on its own rounds, which is wider. The baselines pooled ("p") hold every replica's values of a
    round together: each replica weighs the same when their blocks are the same size, as the conductor makes them.
    """
    from harness.compare import _bootstrap as bootstrap

    base = [f"b{i}" for i in range(len(baselines))]
    runs = {**dict(zip(base, baselines.values(), strict=True)), "c": candidate}
    pooled = {k: [v for b in base for v in runs[b].get(k, ())] for k in sorted(set().union(*runs.values()))}
    runs["p"] = {k: values for k, values in pooled.items() if values}
    common = sorted(set.intersection(*(set(r) for r in runs.values())))
    rng = bootstrap.generator(metric, seed)
    if pairing == "values":
        flat = {n: [v for k in sorted(r) for v in r[k]] for n, r in runs.items()}
        reps = bootstrap.iid_median_replicates(flat, rng, resamples)
    elif common:
        reps = bootstrap.median_replicates(runs, common, rng, resamples)
    else:
        reps = {n: bootstrap.median_replicates({n: r}, sorted(r), rng, resamples)[n] for n, r in runs.items()}
    paired = bool(common) and pairing == "rounds"
    keys = {n: common if paired else sorted(r) for n, r in runs.items()}
    medians = {n: _median(r, keys[n]) for n, r in runs.items()}
    if min(medians.values()) <= 0:
        return None
    divided = bootstrap.divided
    against = tuple(divided(reps["c"], reps[b]) for b in base)
    noise, noise_reps = 1.0, None
    for i, j in itertools.combinations(base, 2):  # the pair of replicas that differ most sets the noise floor
        point = medians[j] / medians[i]
        if noise_reps is None or abs(math.log(point)) > abs(math.log(noise)):
            noise, noise_reps = point, divided(reps[j], reps[i])
    rounds = len(common) if paired else min(len(keys[n]) for n in runs)
    return _Evidence(
        medians["c"] / medians["p"], divided(reps["c"], reps["p"]), against, noise, noise_reps, rounds=rounds
    )


def _median(rounds: Rounds, keys: Iterable[int]) -> float:
    return float(statistics.median([v for k in keys for v in rounds[k]]))


def _judge(evidence: _Evidence, threshold: float, declared: float | None, confidence: float) -> _Judged:
    """The decision table of design 7.5, in its order, at one confidence."""
    from harness.compare import _bootstrap as bootstrap

    lo, hi = 1.0 - confidence, confidence
    low = min(bootstrap.percentile(r, lo) for r in evidence.against)
    high = max(bootstrap.percentile(r, hi) for r in evidence.against)
    if evidence.noise_replicates is None:
        noise = Interval(evidence.noise, evidence.noise)
    else:
        noise = Interval(
            bootstrap.percentile(evidence.noise_replicates, lo), bootstrap.percentile(evidence.noise_replicates, hi)
        )
    if evidence.kind == "difference":  # bytes per association: the threshold is the limit itself
        bar, allowed, zero = threshold, threshold * (1 + declared) if declared else threshold, 0.0
        noisy = noise.low > threshold or noise.high < -threshold
    else:
        bar, allowed, zero = 1 + threshold, 1 + max(threshold, declared or 0.0), 1.0
        noisy = noise.low > 1 + threshold or noise.high < 1 / (1 + threshold)
    if noisy:
        decision = PerfDecision.NOISY
    elif low > allowed:
        decision = PerfDecision.REGRESSED
    elif declared is not None and low > bar:
        decision = PerfDecision.EXPECTED
    elif low > zero:
        decision = PerfDecision.SLOWER
    elif high < zero:
        decision = PerfDecision.FASTER
    elif high <= bar:
        decision = PerfDecision.UNCHANGED
    else:
        decision = PerfDecision.UNDECIDED
    few = decision in (PerfDecision.REGRESSED, PerfDecision.EXPECTED) and evidence.rounds < MIN_DECIDING_ROUNDS
    return _Judged(PerfDecision.UNDECIDED if few else decision, low, high, noise, few)


def decide(
    baselines: Mapping[str, Rounds],
    candidate: Rounds,
    *,
    metric: str,
    threshold: float,
    confidence: float = 0.95,
    declared: float | None = None,
    resamples: int = 2000,
    seed: int = 0,
) -> PerfDecision:
    """The decision of design 7.5 for values in memory (the conductor's view), at `confidence`."""
    missing = _missing(baselines, candidate)
    if missing:
        return PerfDecision.MISSING
    evidence = _ratio_evidence(baselines, candidate, metric=metric, seed=seed, resamples=resamples)
    return PerfDecision.UNDECIDED if evidence is None else _judge(evidence, threshold, declared, confidence).decision


def settled(
    baselines: Mapping[str, Rounds],
    candidate: Rounds,
    *,
    metric: str,
    threshold: float,
    confidence: float = 0.95,
    early: float = 0.999,
    declared: float | None = None,
    resamples: int = 2000,
    seed: int = 0,
) -> PerfDecision | None:
    """The stopping rule of design 5.5: the decision that ends sampling now, or None to take another round.

    Stop on `unchanged` or `faster` at `confidence` (shown within the threshold), or on `regressed` at the stricter
    `early` confidence (Haybittle-Peto: repeated looks cannot inflate false alarms). Both from one set of replicates.
    """
    if _missing(baselines, candidate):
        return None
    evidence = _ratio_evidence(baselines, candidate, metric=metric, seed=seed, resamples=resamples)
    if evidence is None:
        return None
    now = _judge(evidence, threshold, declared, confidence).decision
    if now in (PerfDecision.UNCHANGED, PerfDecision.FASTER):
        return now
    strict = _judge(evidence, threshold, declared, early).decision
    return strict if strict is PerfDecision.REGRESSED else None


@dataclass(frozen=True)
class StoppingRule:
    """`settled` in the shape of harness.perf.conductor's `Decide`: "decided" when a metric may stop, else None.

    The conductor passes every run's kept, complete rounds by label; runs labelled "candidate..." are the
    candidate (exactly one), the others the baseline replicas.
    """

    settings: PerfSettings = field(default_factory=PerfSettings)
    policy: Policy = field(default_factory=Policy)
    seed: int = 0  # the corpus seed, as compare_performance gets it
    early: float = 0.999

    def __call__(self, metric: str, values: Mapping[str, Mapping[int, Sequence[float]]], /) -> str | None:
        candidates = [run for run in values if run.startswith("candidate")]
        baselines = {run: rounds for run, rounds in values.items() if not run.startswith("candidate")}
        if len(candidates) != 1 or not baselines:
            return None  # nothing to compare against: the budget or max_rounds ends the metric
        entry = self.policy.slowdown_for(metric)
        decision = settled(
            baselines, values[candidates[0]], metric=metric, threshold=self.settings.threshold_for(metric),
            confidence=self.settings.confidence, early=self.early, declared=entry.up_to if entry else None,
            resamples=self.settings.bootstrap, seed=self.seed,
        )  # fmt: skip
        return None if decision is None else "decided"


def _missing(
    baselines: Mapping[str, Rounds | Points], candidate: Rounds | Points, candidate_name: str = "candidate"
) -> list[str]:
    """The runs (by name) that have no kept round."""
    if not baselines:
        return ["baselines"]
    empty = [name for name, r in baselines.items() if not any(r.values())]
    return empty + ([candidate_name] if not any(candidate.values()) else [])


def compare_metric(
    metric: str,
    baselines: Mapping[str, Rounds],
    candidate: Rounds,
    *,
    candidate_name: str = "candidate-1",
    threshold: float = 0.10,
    declared: ExpectedSlowdown | None = None,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    rates: Mapping[str, float] | None = None,
    interleaved: bool = True,
    stopped: str = "",
    pairing: str = "rounds",
) -> MetricComparison:
    """One metric compared: ratios of medians with round-paired bootstrap bounds, the noise floor, the decision.

    `baselines` maps each replica's name to its rounds (in replica order); `seed` (the corpus seed) and the
    metric id seed the generator, so the same input gives the same floats on any machine. `pairing="values"`
    resamples each run's values one by one instead (the naive bootstrap): for contrast in tests and benchmarks
    only, since it takes the values of one slow minute for independent ones.
    """
    if pairing not in ("rounds", "values"):
        raise ValueError(f"pairing must be 'rounds' or 'values', not {pairing!r}")
    spreads = (*(spread(name, r) for name, r in baselines.items()), spread(candidate_name, candidate))
    up_to = declared.up_to if declared else None
    common = dict(
        metric=metric, unit=unit_of(metric), threshold=threshold, declared=up_to, spreads=spreads,
        rates=dict(rates or {}), interleaved=interleaved, stopped=stopped, declared_reason=_declared(declared),
    )  # fmt: skip
    if missing := _missing(baselines, candidate, candidate_name):
        return _empty(common, PerfDecision.MISSING, f"{common['metric']}: no kept round in {', '.join(missing)}")
    evidence = _ratio_evidence(baselines, candidate, metric=metric, seed=seed, resamples=resamples, pairing=pairing)
    if evidence is None:
        return _empty(
            common, PerfDecision.UNDECIDED, f"{metric}: a median is 0 {unit_of(metric)}: too coarse to compare"
        )
    return _compared(common, evidence, confidence, replicas=len(baselines))


def compare_growth(
    baselines: Mapping[str, Points],
    candidate: Points,
    *,
    candidate_name: str = "candidate-1",
    limit: float = 65536.0,
    declared: ExpectedSlowdown | None = None,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    interleaved: bool = True,
    stopped: str = "",
) -> MetricComparison:
    """memory.growth: G_C - max_i G_Bi of least-squares slopes (bytes per association), by the same round bootstrap.

    Regressed when its lower bound exceeds `limit` (a declared slow-down naming memory.growth raises the limit by
    its `up_to` fraction); the replicas' own difference beyond ±limit makes it noisy.
    """
    from harness.compare import _bootstrap as bootstrap

    as_rounds = {
        name: {k: [p[1] for p in ps] for k, ps in r.items()}
        for name, r in {**baselines, candidate_name: candidate}.items()
    }
    spreads = tuple(spread(name, r) for name, r in as_rounds.items())
    up_to = declared.up_to if declared else None
    common = dict(
        metric=GROWTH, unit=unit_of(GROWTH), threshold=limit, declared=up_to, spreads=spreads, rates={},
        interleaved=interleaved, stopped=stopped, declared_reason=_declared(declared),
    )  # fmt: skip
    if missing := _missing(baselines, candidate, candidate_name):
        return _empty(common, PerfDecision.MISSING, f"{common['metric']}: no kept round in {', '.join(missing)}")
    runs: dict[str, Points] = {**{f"b{i}": r for i, r in enumerate(baselines.values())}, "c": candidate}
    keys = sorted(set.intersection(*(set(r) for r in runs.values())))
    points = {n: [p for k in keys for p in r[k]] for n, r in runs.items()}
    slopes = {n: bootstrap.slope(p) for n, p in points.items()}
    if not keys or not all(math.isfinite(s) for s in slopes.values()):
        return _empty(common, PerfDecision.UNDECIDED, f"{GROWTH}: fewer than two association counts to fit a slope on")
    reps = bootstrap.slope_replicates(runs, keys, bootstrap.generator(GROWTH, seed), resamples)
    base = [f"b{i}" for i in range(len(baselines))]
    worst = bootstrap.highest([reps[b] for b in base])
    noise, noise_reps = 0.0, None
    for i, j in itertools.combinations(base, 2):
        if noise_reps is None or abs(slopes[j] - slopes[i]) > abs(noise):
            noise, noise_reps = slopes[j] - slopes[i], reps[j] - reps[i]
    evidence = _Evidence(
        slopes["c"] - max(slopes[b] for b in base),
        reps["c"] - worst,
        tuple(reps["c"] - reps[b] for b in base),
        noise,
        noise_reps,
        kind="difference",
        rounds=len(keys),
    )
    return _compared(common, evidence, confidence, replicas=len(baselines))


def compare_performance(
    baselines: Sequence[RunSamples],
    candidate: RunSamples,
    policy: Policy,
    settings: PerfSettings | None = None,
    *,
    seed: int = 0,
    stopped: Mapping[str, str] | None = None,
    interleaved: bool = True,
) -> tuple[MetricComparison, ...]:
    """Every metric any run measured, in the order the runs measured them, each compared by compare_metric.

    `seed` is the corpus seed (with the metric id it seeds each bootstrap); `stopped` says per metric why
    sampling stopped (rounds.jsonl), `interleaved` whether the runs took turns.
    """
    settings = settings or PerfSettings()
    runs = [*baselines, candidate]
    metrics = list(dict.fromkeys(m for r in runs for m in r.values))
    if any(r.growth for r in runs) and GROWTH not in metrics:  # beside the other memory metrics
        memory = [i for i, m in enumerate(metrics) if m.startswith("memory.")]
        metrics.insert(memory[-1] + 1 if memory else len(metrics), GROWTH)
    out: list[MetricComparison] = []
    for metric in metrics:
        options: dict[str, Any] = dict(
            candidate_name=candidate.run, declared=policy.slowdown_for(metric), confidence=settings.confidence,
            resamples=settings.bootstrap, seed=seed, interleaved=interleaved, stopped=(stopped or {}).get(metric, ""),
        )  # fmt: skip
        if metric == GROWTH and any(r.growth for r in runs):
            growth = {b.run: b.growth for b in baselines}
            out.append(compare_growth(growth, candidate.growth, limit=settings.memory_growth_limit, **options))
            continue
        rates = {f"{r.run} {name}": value for r in runs for name, value in r.rates.get(metric, {}).items()}
        out.append(
            compare_metric(
                metric,
                {b.run: b.values.get(metric, {}) for b in baselines},
                candidate.values.get(metric, {}),
                threshold=settings.threshold_for(metric),
                rates=rates,
                **options,
            )
        )
    return tuple(out)


def _compared(common: Mapping[str, Any], evidence: _Evidence, confidence: float, *, replicas: int) -> MetricComparison:
    """The MetricComparison of judged evidence; `common` holds the fields that do not depend on it."""
    from harness.compare import _bootstrap as bootstrap

    judged = _judge(evidence, common["threshold"], common["declared"], confidence)

    def bounds(replicates: Replicates) -> Interval:
        return Interval(bootstrap.percentile(replicates, 1 - confidence), bootstrap.percentile(replicates, confidence))

    return MetricComparison(
        ratio=evidence.ratio,
        interval=bounds(evidence.pooled),
        per_baseline=tuple(bounds(r) for r in evidence.against),
        noise=evidence.noise,
        noise_interval=judged.noise,
        decision=judged.decision,
        reason=_reason(common["metric"], evidence, judged, common["threshold"], common["declared"], replicas),
        **common,
    )


def _empty(common: Mapping[str, Any], decision: PerfDecision, reason: str) -> MetricComparison:
    """A metric that could not be judged: every number 0 (JSON has no NaN), the reason says why."""
    return MetricComparison(
        ratio=0.0, interval=_ZERO, per_baseline=(), noise=0.0, noise_interval=_ZERO, decision=decision, reason=reason,
        **common,
    )  # fmt: skip


def _declared(entry: ExpectedSlowdown | None) -> str:
    if entry is None:
        return ""
    return f"{entry.reason} ({entry.ticket})" if entry.ticket else entry.reason


def _reason(
    metric: str, evidence: _Evidence, judged: _Judged, threshold: float, declared: float | None, replicas: int
) -> str:
    """One line: `store.study 1.21x [1.16, 1.27], threshold 1.10x, baselines 1.02x` and what was decided."""
    difference = evidence.kind == "difference"

    def show(value: float) -> str:
        return f"{value:+.0f}" if difference else f"{value:.2f}x"

    if difference:
        bar = f"limit {threshold:.0f} B/association"
        head = f"{metric} {show(evidence.ratio)} B/association [{show(judged.low)}, {show(judged.high)}]"
        over = f"declared up to {threshold * (1 + declared):.0f}" if declared else ""
    else:
        bar = f"threshold {1 + threshold:.2f}x"
        head = f"{metric} {show(evidence.ratio)} [{judged.low:.2f}, {judged.high:.2f}]"
        over = f"declared up to {1 + declared:.2f}x" if declared else ""
    floor = f"baselines {show(evidence.noise)}" if replicas > 1 else "one baseline: no noise floor"
    noisy = f"baselines differ {show(evidence.noise)} [{show(judged.noise.low)}, {show(judged.noise.high)}]"
    words = {
        PerfDecision.NOISY: [head, f"{noisy} beyond the {bar}: not judged"],
        PerfDecision.REGRESSED: [head, bar, over, floor],
        PerfDecision.EXPECTED: [head, bar, over, floor],
        PerfDecision.SLOWER: [head, f"slower than every baseline, not beyond the {bar}", floor],
        PerfDecision.FASTER: [head, "faster than every baseline", floor],
        PerfDecision.UNCHANGED: [head, f"within the {bar}", floor],
        PerfDecision.UNDECIDED: [
            head,
            (
                f"beyond the {bar} from only {evidence.rounds} rounds in common, too few to decide "
                f"(at least {MIN_DECIDING_ROUNDS}: raise performance.min_rounds or budget)"
            )
            if judged.few
            else f"the {bar} is not excluded: more samples needed (raise performance.budget)",
            floor,
        ],
    }[judged.decision]
    return ", ".join(w for w in words if w)


def _glob(pattern: str) -> re.Pattern[str]:
    """A metric glob where only `*` is special, as in policy entries."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)
