"""The performance comparison of run directories: their perf/ files and manifests into compare_performance."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.compare.performance import GROWTH, PerfSettings, RunSamples, compare_performance, read_samples
from harness.compare.policy import Policy
from harness.errors import RunDirError
from harness.model import MetricComparison, PerfSetup, RunRecord
from harness.perf.records import parse_rounds, read_resources, stopped
from harness.profile import PerformanceSpec
from harness.rundir import RunDir

__all__ = ["run_performance", "spec_of"]


def spec_of(setup: PerfSetup | None) -> PerformanceSpec:
    """The [performance] spec a run recorded (keys of another patchgate version left out); defaults without one."""
    if setup is None:
        return PerformanceSpec()
    names = {f.name for f in dataclasses.fields(PerformanceSpec)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in setup.spec.items() if k in names}
    return PerformanceSpec(**values)  # type: ignore[arg-type]


def run_performance(
    baselines: Sequence[RunRecord], candidate: RunRecord, policy: Policy
) -> tuple[tuple[MetricComparison, ...], bool]:
    """Every metric compared, and whether [performance] strict applies; ((), False) when no run measured any.

    The settings, warm-up rounds and resource metrics come from the runs' manifests (the candidate's first), so
    `patchgate compare` redoes what `validate` did; the bootstrap is seeded with the corpus seed, as the
    conductor's stopping rule was.
    """
    runs = [*baselines, candidate]
    folders = [RunDir(Path(r.directory)) for r in runs]
    if not any(f.perf_samples.is_file() for f in folders):
        return (), False
    setup = next((r.manifest.performance for r in (candidate, *baselines) if r.manifest.performance), None)
    spec = spec_of(setup)
    warmup = setup.warmup_rounds if setup is not None else spec.warmup_rounds
    resources = spec.resource_metrics()
    samples = []
    for run, folder in zip(runs, folders, strict=True):
        label = f"{run.manifest.role}-{run.manifest.replica}"
        read = read_samples(folder.perf_samples, run=label, warmup_rounds=warmup)
        samples.append(_with_resources(read, folder, resources, warmup))
    seed = candidate.manifest.corpus.seed if candidate.manifest.corpus else 0
    comparisons = compare_performance(
        samples[:-1], samples[-1], policy, PerfSettings.of(spec), seed=seed,
        stopped=_stopped(folders[-1]), interleaved=setup is None or setup.conductor == "interleaved",
    )  # fmt: skip
    return comparisons, spec.strict


def _with_resources(samples: RunSamples, folder: RunDir, metrics: Sequence[str], warmup: int) -> RunSamples:
    """The run's memory.steady / memory.peak values and memory.growth points (resources.jsonl), as selected."""
    if not metrics or not folder.perf_resources.is_file():
        return samples
    resources = read_resources(folder.perf_resources, folder.perf_rounds)
    memory: Mapping[str, Mapping[int, tuple[float, ...]]] = {
        m: v for m, v in resources.values(warmup).items() if m in metrics
    }
    growth = resources.growth(warmup) if GROWTH in metrics else {}
    return dataclasses.replace(samples, values={**samples.values, **memory}, growth=growth)


def _stopped(folder: RunDir) -> dict[str, str]:
    """Why each metric's sampling stopped (every run's rounds.jsonl holds the validation-wide "finished" lines)."""
    try:
        data = folder.perf_rounds.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise RunDirError(
            f"{folder.perf_rounds}: cannot read: {exc.strerror or exc}", hint="rerun that variant"
        ) from None
    return stopped(parse_rounds(data, str(folder.perf_rounds)))
