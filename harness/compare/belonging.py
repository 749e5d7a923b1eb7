"""Whether baseline replicas and a candidate belong in one comparison: one device, corpus and profile, distinct runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.model import CorpusInfo, Manifest, PerfSetup, RunRecord

__all__ = ["mismatches"]

_HASH = 12  # hex digits of a sha256 quoted in a reason


@dataclass(frozen=True)
class _Given:
    """A run as it was handed to compare: its place (`baseline #2`, `candidate`) and record."""

    place: str
    run: RunRecord

    @property
    def label(self) -> str:
        return f"{self.run.directory or self.run.manifest.run_id} ({self.place})"


def mismatches(baselines: Sequence[RunRecord], candidate: RunRecord) -> tuple[str, ...]:
    """Why these runs do not belong together, one line each naming the run directories and values; () if they do.

    The profile is compared by its sha256, not its path: `validate` runs every variant from
    one profile, and the split `patchgate run` flow passes the same file to each run; the
    file's bytes (variants, corpus seed, simulators, policy) are what must match, while a
    checkout path differs between CI agents.
    """
    given = [_Given(f"baseline #{i}", b) for i, b in enumerate(baselines, start=1)]
    given.append(_Given("candidate", candidate))
    lines = _repeated(given, lambda g: g.run.manifest.run_id, "run id {!r}")
    lines += _roles(given)
    distinct = _distinct(given[:-1])
    lines += _repeated([g for g in distinct if g.run.manifest.role == "baseline"], _replica, "baseline replica {}")
    lines += _differing(given, "device", lambda m: m.device, lambda m: f"is {m.device!r}")
    lines += _differing(given, "profile", lambda m: m.profile_sha256, _profile)
    lines += _differing(given, "corpus", lambda m: _corpus_key(m.corpus), lambda m: _corpus(m.corpus))
    lines += _differing(given[:-1], "baseline variant", lambda m: m.variant, lambda m: f"ran {m.variant!r}")
    lines += _differing(given, "performance phase", _performance_key, _performance)
    lines += _differing(given, "robustness corpus", _robustness_key, _robustness)
    hint = " (give every run one date: `patchgate run --worklist-date YYYYMMDD`)"
    lines += [line + hint for line in _differing(given, "worklist date", lambda m: m.worklist_date, _worklist)]
    return tuple(lines)


def _worklist(m: Manifest) -> str:
    """A RIS serves the worklist of its run's date: runs of other days differ for that alone."""
    if not m.worklist_date:
        return "ran no RIS"
    return f"had its worklist scheduled on {m.worklist_date}"


def _roles(given: Sequence[_Given]) -> list[str]:
    wanted = [(g, "baseline", g.place) for g in given[:-1]] + [(given[-1], "candidate", "the candidate")]
    return [
        f"{g.run.directory or g.run.manifest.run_id} is a {g.run.manifest.role!r} run, given as {place}"
        for g, role, place in wanted
        if g.run.manifest.role != role
    ]


def _distinct(given: Sequence[_Given]) -> list[_Given]:
    """The first of each run id: a run given twice is reported once, as such, not again as a repeated replica."""
    seen: set[str] = set()
    first = []
    for g in given:
        if g.run.manifest.run_id not in seen:
            seen.add(g.run.manifest.run_id)
            first.append(g)
    return first


def _replica(g: _Given) -> str:
    return str(g.run.manifest.replica)


def _repeated(given: Sequence[_Given], key: Callable[[_Given], str], what: str) -> list[str]:
    """`WHAT given N times: a (place), b (place)` for each key shared by several runs."""
    groups: dict[str, list[_Given]] = {}
    for g in given:
        groups.setdefault(key(g), []).append(g)
    return [
        f"{what.format(k)} given {len(group)} times: {', '.join(g.label for g in group)}"
        for k, group in groups.items()
        if len(group) > 1
    ]


def _differing(
    given: Sequence[_Given], what: str, key: Callable[[Manifest], object], say: Callable[[Manifest], str]
) -> list[str]:
    """`WHAT differs: run says, first run says` for each run whose `key` is not the first run's."""
    if not given:
        return []
    first = given[0]
    told = f"{first.label} {say(first.run.manifest)}"
    return [
        f"{what} differs: {g.label} {say(g.run.manifest)}, {told}"
        for g in given[1:]
        if key(g.run.manifest) != key(first.run.manifest)
    ]


def _profile(m: Manifest) -> str:
    return f"ran {m.profile_path} (sha256 {m.profile_sha256[:_HASH]})"


def _corpus_key(corpus: CorpusInfo | None) -> tuple[int, str, str] | None:
    """Seed, size and bytes; uid_root and items follow from the generator, whose output the sha256 covers."""
    return (corpus.seed, corpus.size, corpus.sha256) if corpus else None


def _corpus(corpus: CorpusInfo | None) -> str:
    if corpus is None:
        return "used no corpus"
    size = "" if corpus.size == "small" else f", size {corpus.size!r}"  # small: as manifests before sizes said
    return f"used seed {corpus.seed}{size} (sha256 {corpus.sha256[:_HASH]})"


def _performance_key(m: Manifest) -> tuple[object, ...] | None:
    """What must match for performance samples to be compared: the metrics, thresholds, study and warm-up."""
    perf: PerfSetup | None = m.performance
    if perf is None:
        return None
    keys = ("metrics", "threshold", "thresholds", "memory_threshold", "study", "parallel", "block", "warmup_rounds")
    return tuple(repr(perf.spec.get(k)) for k in keys)


def _performance(m: Manifest) -> str:
    if m.performance is None:
        return "ran no performance phase"
    spec = m.performance.spec
    return (
        f"measured {spec.get('metrics')} (threshold {spec.get('threshold')}, study {spec.get('study')!r}, "
        f"warm-up {spec.get('warmup_rounds')} rounds)"
    )


def _robustness_key(m: Manifest) -> tuple[object, ...] | None:
    """What must match for reactions to be compared: the corpus (version and bytes) and the inputs sent."""
    setup = m.robustness
    return None if setup is None else (setup.corpus_version, setup.corpus_sha256, setup.inputs)


def _robustness(m: Manifest) -> str:
    setup = m.robustness
    if setup is None:
        return "ran no robustness phase"
    return (
        f"sent {len(setup.inputs)} inputs of corpus version {setup.corpus_version} "
        f"(sha256 {setup.corpus_sha256[:_HASH]})"
    )
