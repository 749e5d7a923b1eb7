"""The frozen records passed between stages; each stage reads only the previous stage's JSON.

Run side: Endpoint, CorpusInfo, Manifest, Observation, CaseRecord, RunRecord.
Compare side: Difference, CaseComparison, SecurityChange, MetricComparison (with Interval and
Spread), InputReactions (with Reaction), Comparison, with the closed enums DiffKind, Classification,
CaseStatus, Direction, PerfDecision and Verdict.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from simulators.endpoint import JSON, Endpoint

__all__ = [
    "JSON",
    "CaseComparison",
    "CaseRecord",
    "CaseStatus",
    "Classification",
    "Comparison",
    "CorpusInfo",
    "DiffKind",
    "Difference",
    "Direction",
    "Endpoint",
    "ImageInfo",
    "InputReactions",
    "Interval",
    "Manifest",
    "MetricComparison",
    "Observation",
    "Outcome",
    "PerfDecision",
    "PerfSetup",
    "Reaction",
    "Revival",
    "RobustnessSetup",
    "RunRecord",
    "RunSetup",
    "RunStatus",
    "Security",
    "SecurityChange",
    "Spread",
    "Verdict",
    "to_json",
]


class Outcome(enum.StrEnum):
    """How one suite case ended in one run."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    # The device's profile does not declare the service the case exercises.
    NOT_APPLICABLE = "not_applicable"


class Security(enum.StrEnum):
    """What an observation means for the device's security posture, so a change reads as tightened or loosened.

    EXPOSURE: more of it is looser (a TLS version accepted, a port listening, an AE admitted).
    PROTECTION: less of it is looser (a refusal, an audit message sent, a client certificate required).
    """

    NONE = ""
    EXPOSURE = "exposure"
    PROTECTION = "protection"


class Direction(enum.StrEnum):
    """Which way a security-tagged observation moved between baseline and candidate."""

    TIGHTENED = "tightened"
    LOOSENED = "loosened"
    CHANGED = "changed"  # it changed, but its kind of value says nothing of the direction
    UNCHANGED = "unchanged"
    NOISY = "noisy"  # the baseline replicas disagree, so no direction can be told


class RunStatus(enum.StrEnum):
    """How a whole run ended; anything but COMPLETED makes a comparison INCONCLUSIVE."""

    COMPLETED = "completed"
    DEVICE_FAILED = "device_failed"  # never started or never answered C-ECHO
    DEVICE_CRASHED = "device_crashed"  # exited while the suites ran
    SUITE_ERROR = "suite_error"  # the suites could not be collected or run
    # The harness failed its part (a simulator died or stopped answering, the disk filled): never the device's fault.
    HARNESS_FAILED = "harness_failed"
    INTERRUPTED = "interrupted"


class DiffKind(enum.StrEnum):
    """The closed set of ways one observed behaviour can differ between two runs."""

    VALUE_CHANGED = "value_changed"
    MISSING = "missing"  # in the baseline, not in the candidate
    EXTRA = "extra"  # in the candidate, not in the baseline
    STATUS_CHANGED = "status_changed"  # a case outcome or a DICOM status
    COUNT_CHANGED = "count_changed"  # a list got longer or shorter
    ORDER_CHANGED = "order_changed"  # same items, other order
    TIMING_CHANGED = "timing_changed"


class Classification(enum.StrEnum):
    """What a difference means once noise and the expected-change policy are applied."""

    REGRESSED = "regressed"
    EXPECTED = "expected"
    NOISE = "noise"


class CaseStatus(enum.StrEnum):
    """One case's result in a comparison."""

    UNCHANGED = "unchanged"
    CHANGED_AS_EXPECTED = "changed_as_expected"
    REGRESSED = "regressed"
    NOT_APPLICABLE = "not_applicable"


class Verdict(enum.StrEnum):
    """The answer a CI pipeline gates on."""

    UNCHANGED = "UNCHANGED"
    CHANGED_AS_EXPECTED = "CHANGED_AS_EXPECTED"
    REGRESSED = "REGRESSED"
    INCONCLUSIVE = "INCONCLUSIVE"

    @property
    def exit_code(self) -> int:
        return {"UNCHANGED": 0, "CHANGED_AS_EXPECTED": 0, "REGRESSED": 1, "INCONCLUSIVE": 2}[self.value]


@dataclass(frozen=True)
class CorpusInfo:
    """The synthetic corpus a run used: same seed, same bytes, same hash."""

    seed: int
    sha256: str
    uid_root: str  # UIDs under this root come from the corpus, not the device
    items: int
    size: str = "small"  # the profile's [corpus] size; manifests written before it existed were all small
    # With [corpus] identity = "per-run": the run's identity tag, and its UIDs and PatientID prefixes mapped back to
    # the fixed corpus's (normalisation applies them); `sha256` stays the fixed corpus's. Absent keys: fixed.
    identity: str = ""
    uids: Mapping[str, str] = field(default_factory=dict)
    prefixes: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, JSON]:
        d: dict[str, JSON] = {"seed": self.seed, "sha256": self.sha256, "uid_root": self.uid_root}
        d |= {"items": self.items, "size": self.size}
        if self.identity:
            d |= {"identity": self.identity, "uids": dict(self.uids), "prefixes": dict(self.prefixes)}
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> CorpusInfo:
        uids, prefixes = d.get("uids") or {}, d.get("prefixes") or {}
        assert isinstance(uids, Mapping) and isinstance(prefixes, Mapping)
        return cls(
            int(d["seed"]),
            str(d["sha256"]),
            str(d["uid_root"]),
            int(d["items"]),
            str(d.get("size", "small")),
            str(d.get("identity", "")),
            {str(k): str(v) for k, v in uids.items()},
            {str(k): str(v) for k, v in prefixes.items()},
        )


@dataclass(frozen=True)
class ImageInfo:
    """A container image as the engine named it when the run used it."""

    name: str
    id: str = ""
    digests: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> ImageInfo:
        labels = d.get("labels") or {}
        return cls(
            str(d["name"]),
            str(d.get("id", "")),
            tuple(str(x) for x in d.get("digests") or ()),
            {str(k): str(v) for k, v in labels.items()},
        )


@dataclass(frozen=True)
class RunSetup:
    """How a variant ran, for the audit trail: its backend, command, image, network and peak memory.

    Stored as the manifest's "extra" object; a key a backend does not know stays out of the JSON.
    """

    description: str = ""
    backend: str = ""  # "local" or "docker"; "" when the run never got that far
    command: tuple[str, ...] | None = None  # None: a container ran its image's own CMD
    tls: bool | None = None
    image: ImageInfo | None = None
    network: Mapping[str, JSON] | None = None  # the docker backend's network: mode, name, pod
    simulators_image: ImageInfo | None = None
    memory_peak_bytes: Mapping[str, int | None] | None = None  # device, pacs

    def to_json(self) -> dict[str, JSON]:
        d: dict[str, JSON] = {"description": self.description}
        for f in dataclasses.fields(self)[1:]:
            value = getattr(self, f.name)
            if f.name == "command" and self.backend:
                d[f.name] = to_json(value)  # null is meaningful here: the image's own CMD
            elif value is not None and value != "":
                d[f.name] = to_json(value)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> RunSetup:
        image, simulators, command, peaks = d.get("image"), d.get("simulators_image"), d.get("command"), None
        if isinstance(d.get("memory_peak_bytes"), Mapping):
            peaks = {str(k): (int(v) if isinstance(v, int) else None) for k, v in d["memory_peak_bytes"].items()}
        return cls(
            description=str(d.get("description") or ""),
            backend=str(d.get("backend") or ""),
            command=tuple(str(a) for a in command) if isinstance(command, list) else None,
            tls=d["tls"] if isinstance(d.get("tls"), bool) else None,
            image=ImageInfo.from_json(image) if isinstance(image, Mapping) else None,
            network=dict(d["network"]) if isinstance(d.get("network"), Mapping) else None,
            simulators_image=ImageInfo.from_json(simulators) if isinstance(simulators, Mapping) else None,
            memory_peak_bytes=peaks,
        )


@dataclass(frozen=True)
class PerfSetup:
    """How a run's performance phase ran (docs/design/load-and-attack.md 4): what compare needs to redo its statistics.

    `spec` is the profile's [performance] table as it applied (with --performance); `metrics` the conductor's
    summary per metric (rounds, why it stopped, who took part: harness.perf.conductor.MetricSummary).
    """

    spec: Mapping[str, JSON]
    conductor: str  # "interleaved" (the runs of a validation took turns) or "alone"
    resources: str = ""  # the device resource probe's source ("proc", "cgroup-v1", "engine"); "": none read
    metrics: tuple[Mapping[str, JSON], ...] = ()
    left_out: tuple[str, ...] = ()  # runs the barrier left out (they reached the phase too late)
    problems: tuple[str, ...] = ()  # the desk's or the sampler's failure, said in the report

    @property
    def warmup_rounds(self) -> int:
        value = self.spec.get("warmup_rounds", 1)
        return value if isinstance(value, int) and not isinstance(value, bool) else 1

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> PerfSetup:
        return cls(
            spec=dict(d.get("spec") or {}),
            conductor=str(d.get("conductor", "")),
            resources=str(d.get("resources", "")),
            metrics=tuple(dict(m) for m in d.get("metrics") or ()),
            left_out=tuple(str(r) for r in d.get("left_out") or ()),
            problems=tuple(str(p) for p in d.get("problems") or ()),
        )


@dataclass(frozen=True)
class Revival:
    """The device restarted by the harness after a robustness input it exited on or stopped answering after."""

    input: str
    reaction: str  # "exited" | "unresponsive"
    detail: str  # "exit code 70", "signal 11", "no C-ECHO answer"

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> Revival:
        return cls(input=str(d["input"]), reaction=str(d["reaction"]), detail=str(d.get("detail", "")))


@dataclass(frozen=True)
class RobustnessSetup:
    """How a run's robustness phase ran (docs/design/load-and-attack.md 4, 8.6): its corpus, the revivals, and
    why it stopped before its last input ("" when it did not): revivals exhausted, or a device left down."""

    corpus_version: str
    corpus_sha256: str
    inputs: tuple[str, ...]  # the input ids the profile's globs selected, in corpus order
    revivals: tuple[Revival, ...] = ()
    stopped: str = ""
    # Input id -> its one-line description from the corpus, for the reports (not compared: the hash covers the corpus).
    descriptions: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> RobustnessSetup:
        return cls(
            corpus_version=str(d.get("corpus_version", "")),
            corpus_sha256=str(d.get("corpus_sha256", "")),
            inputs=tuple(str(i) for i in d.get("inputs") or ()),
            revivals=tuple(Revival.from_json(r) for r in d.get("revivals") or ()),
            stopped=str(d.get("stopped", "")),
            descriptions={str(k): str(v) for k, v in (d.get("descriptions") or {}).items()},
        )


@dataclass(frozen=True)
class Manifest:
    """What a run directory holds: who ran what, against which device variant, and how it ended."""

    run_id: str
    role: str  # "baseline" or "candidate"
    replica: int  # 1, 2, ... among runs of the same role
    device: str
    variant: str
    profile_path: str
    profile_sha256: str
    versions: Mapping[str, str]
    corpus: CorpusInfo | None
    started: str  # ISO 8601, UTC
    finished: str
    timings: Mapping[str, float]  # seconds: device_start, suites, total
    status: RunStatus
    status_detail: str = ""
    cases_collected: int = 0
    device_endpoint: Endpoint | None = None
    extra: RunSetup = field(default_factory=RunSetup)
    performance: PerfSetup | None = None  # None: the phase was off (the key is then absent, as before it existed)
    robustness: RobustnessSetup | None = None  # likewise
    # YYYYMMDD the run's RIS simulator scheduled its worklist on: runs served other days' worklists differ for
    # that alone (compare.belonging); "": no RIS ran (the key is then absent).
    worklist_date: str = ""

    def to_json(self) -> dict[str, JSON]:
        optional = ("performance", "robustness", "worklist_date")
        d = {f.name: to_json(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name not in optional}
        for name in optional:
            if getattr(self, name):
                d[name] = to_json(getattr(self, name))
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> Manifest:
        corpus = d.get("corpus")
        endpoint = d.get("device_endpoint")
        return cls(
            run_id=str(d["run_id"]),
            role=str(d["role"]),
            replica=int(d["replica"]),
            device=str(d["device"]),
            variant=str(d["variant"]),
            profile_path=str(d["profile_path"]),
            profile_sha256=str(d["profile_sha256"]),
            versions=dict(d["versions"]),
            corpus=CorpusInfo.from_json(corpus) if corpus else None,
            started=str(d["started"]),
            finished=str(d["finished"]),
            timings={str(k): float(v) for k, v in dict(d["timings"]).items()},
            status=RunStatus(d["status"]),
            status_detail=str(d.get("status_detail", "")),
            cases_collected=int(d.get("cases_collected", 0)),
            device_endpoint=Endpoint.from_json(endpoint) if endpoint else None,
            extra=RunSetup.from_json(d.get("extra") or {}),
            performance=PerfSetup.from_json(d["performance"]) if isinstance(d.get("performance"), Mapping) else None,
            robustness=RobustnessSetup.from_json(d["robustness"]) if isinstance(d.get("robustness"), Mapping) else None,
            worklist_date=str(d.get("worklist_date", "")),
        )


@dataclass(frozen=True)
class Observation:
    """One named, observable behaviour of the device in one case (a JSON value).

    `tags` say what kind of record it is, so reports find it by meaning, not by case id or name.
    """

    # A class constant, not a field: the tag of a software inventory, {package: version}.
    INVENTORY = "inventory"

    name: str
    value: JSON
    security: Security = Security.NONE
    tags: tuple[str, ...] = ()

    def to_json(self) -> dict[str, JSON]:
        d: dict[str, JSON] = {"name": self.name, "value": self.value}
        if self.security:
            d["security"] = self.security.value
        if self.tags:  # only when set, so untagged lines stay as older runs wrote them
            d["tags"] = list(self.tags)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> Observation:
        tags = tuple(str(t) for t in d.get("tags", ()))
        return cls(str(d["name"]), d["value"], Security(d.get("security", "")), tags)


@dataclass(frozen=True)
class CaseRecord:
    """One suite case in one run: its outcome and what it observed. One line of observations.jsonl."""

    case: str  # stable id: the pytest node id relative to the suites root
    outcome: Outcome
    duration: float = 0.0
    message: str = ""  # why it failed or was skipped, one line
    observations: tuple[Observation, ...] = ()
    service: str = ""  # the case's `service` marker (echo, store, ...); "": none, or recorded before it was

    def observed(self) -> dict[str, JSON]:
        """Observations by name (a later observation of the same name wins)."""
        return {o.name: o.value for o in self.observations}

    def to_json(self) -> dict[str, JSON]:
        return {
            "case": self.case,
            "outcome": self.outcome.value,
            "duration": round(self.duration, 6),
            "message": self.message,
            "observations": [o.to_json() for o in self.observations],
            **({"service": self.service} if self.service else {}),  # only when marked: old lines read as they did
        }

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> CaseRecord:
        return cls(
            case=str(d["case"]),
            outcome=Outcome(d["outcome"]),
            duration=float(d.get("duration", 0.0)),
            message=str(d.get("message", "")),
            observations=tuple(Observation.from_json(o) for o in d.get("observations", [])),
            service=str(d.get("service", "")),
        )


@dataclass(frozen=True)
class RunRecord:
    """A run directory as read back from disk."""

    directory: str
    manifest: Manifest
    cases: tuple[CaseRecord, ...]

    def by_case(self) -> dict[str, CaseRecord]:
        return {c.case: c for c in self.cases}


@dataclass(frozen=True)
class Difference:
    """One difference between baseline and candidate, keyed by case and path.

    Paths start with the observation name, then `.key` for objects and `[i]` for
    lists (e.g. `retrieve.datasets[0].00100010.Value[0]`); a case outcome is `outcome`.
    """

    case: str
    path: str
    kind: DiffKind
    before: JSON
    after: JSON
    classification: Classification = Classification.REGRESSED
    reason: str = ""  # the policy entry's reason, or why it is noise
    ticket: str = ""  # the matching policy entry's ticket, for reports' links

    def to_json(self) -> dict[str, JSON]:
        d: dict[str, JSON] = {
            "case": self.case,
            "path": self.path,
            "kind": self.kind.value,
            "before": self.before,
            "after": self.after,
            "classification": self.classification.value,
            "reason": self.reason,
        }
        if self.ticket:  # only when declared with one: other differences read as they always did
            d["ticket"] = self.ticket
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> Difference:
        return cls(
            case=str(d["case"]),
            path=str(d["path"]),
            kind=DiffKind(d["kind"]),
            before=d.get("before"),
            after=d.get("after"),
            classification=Classification(d["classification"]),
            reason=str(d.get("reason", "")),
            ticket=str(d.get("ticket", "")),
        )


@dataclass(frozen=True)
class CaseComparison:
    """One suite case across the runs: outcomes and every difference, noise included."""

    case: str
    status: CaseStatus
    before: Outcome | None  # None: the case did not exist in the baseline
    after: Outcome | None
    differences: tuple[Difference, ...] = ()
    # Observation name -> the tags either run gave it (Observation.INVENTORY, ...), for the reports.
    tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Seconds the case took (CaseRecord.duration): in each baseline replica, in order (None: not in that
    # replica), and in the candidate (None: not in it). Reports' times; never part of the verdict.
    durations_before: tuple[float | None, ...] = ()
    duration_after: float | None = None
    service: str = ""  # the DICOM service the case exercises (its `service` marker); "": not recorded

    def to_json(self) -> dict[str, JSON]:
        d: dict[str, JSON] = {
            "case": self.case,
            "status": self.status.value,
            "before": self.before.value if self.before else None,
            "after": self.after.value if self.after else None,
            "differences": [to_json(x) for x in self.differences],
        }
        if self.tags:  # only when tagged: an untagged comparison reads as it always did
            d["tags"] = {name: list(tags) for name, tags in sorted(self.tags.items())}
        if self.durations_before or self.duration_after is not None:  # absent from comparisons made before
            d["durations"] = {"before": list(self.durations_before), "after": self.duration_after}
        if self.service:
            d["service"] = self.service
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> CaseComparison:
        durations = d.get("durations")
        durations = durations if isinstance(durations, Mapping) else {}
        return cls(
            case=str(d["case"]),
            status=CaseStatus(d["status"]),
            before=Outcome(d["before"]) if d.get("before") else None,
            after=Outcome(d["after"]) if d.get("after") else None,
            differences=tuple(Difference.from_json(x) for x in d.get("differences", [])),
            tags={str(k): tuple(str(t) for t in v) for k, v in (d.get("tags") or {}).items()},
            durations_before=tuple(_seconds(x) for x in durations.get("before") or ()),
            duration_after=_seconds(durations.get("after")),
            service=str(d.get("service", "")),
        )


@dataclass(frozen=True)
class SecurityChange:
    """One security-tagged observation of one case: its value before and after, and which way it moved.

    A list observation that both gained and lost items is two changes, one LOOSENED and
    one TIGHTENED, each holding its own items in `added` / `removed`. `absent` is
    "before" or "after" when the observation was not recorded on that side.
    """

    case: str
    name: str  # the observation's name
    security: Security
    before: JSON  # the first baseline replica's (normalised) value
    after: JSON  # the candidate's (normalised) value
    direction: Direction
    added: tuple[JSON, ...] = ()
    removed: tuple[JSON, ...] = ()
    expected: bool = False  # every difference on it is declared by the policy
    reason: str = ""  # the policy's reason, or why the policy does not cover it
    absent: str = ""

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> SecurityChange:
        return cls(
            case=str(d["case"]),
            name=str(d["name"]),
            security=Security(d["security"]),
            before=d.get("before"),
            after=d.get("after"),
            direction=Direction(d["direction"]),
            added=tuple(d.get("added", ())),
            removed=tuple(d.get("removed", ())),
            expected=bool(d.get("expected", False)),
            reason=str(d.get("reason", "")),
            absent=str(d.get("absent", "")),
        )


class PerfDecision(enum.StrEnum):
    """What the performance comparison decided for one metric (harness.compare.performance, in this order)."""

    NOISY = "noisy"  # the baseline replicas differ by more than the threshold: never regressed
    REGRESSED = "regressed"  # slower than every baseline replica beyond max(threshold, declared)
    EXPECTED = "expected"  # slower beyond the threshold, not shown slower than the declared slow-down
    SLOWER = "slower"  # slower than every baseline replica, not shown beyond the threshold
    FASTER = "faster"
    UNCHANGED = "unchanged"  # shown within the threshold
    UNDECIDED = "undecided"  # the interval reaches past the threshold: more samples needed
    MISSING = "missing"  # a run has no kept round for the metric


@dataclass(frozen=True)
class Interval:
    """Bootstrap bounds of a ratio (or, for memory.growth, of a difference): each bound one-sided at the confidence."""

    low: float
    high: float

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> Interval:
        return cls(float(d["low"]), float(d["high"]))


@dataclass(frozen=True)
class Spread:
    """One run's values of a metric as the report draws them, so reports never read raw samples."""

    run: str  # "baseline-1", "candidate-1"
    n: int  # values kept (warm-up rounds left out); 0: the run has none
    rounds: int
    quantiles: tuple[float, ...]  # at 0, .05, .25, .5, .75, .95, 1 (empty when n is 0)
    points: tuple[float, ...]  # at most 200 values at evenly spaced probabilities (all of them, sorted, when fewer)

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> Spread:
        return cls(
            str(d["run"]),
            int(d["n"]),
            int(d["rounds"]),
            tuple(float(x) for x in d.get("quantiles", ())),
            tuple(float(x) for x in d.get("points", ())),
        )


@dataclass(frozen=True)
class MetricComparison:
    """One performance metric: the candidate against each baseline replica, the replicas' own noise, the decision.

    Ratios are candidate / baseline of medians (time per unit: above 1 is slower); for memory.growth they are
    differences in bytes per association (candidate minus the largest baseline). A `missing` metric holds 0 for
    every number.
    """

    metric: str
    unit: str  # "s/op", "s/study", "bytes", "bytes/association", "s CPU/op"
    ratio: float  # candidate / pooled baselines
    interval: Interval
    per_baseline: tuple[Interval, ...]  # candidate / each replica: the decision's L_min and U_max
    noise: float  # the baseline replicas against each other (baseline-2 / baseline-1)
    noise_interval: Interval
    threshold: float  # t: slower by more than this fraction counts
    declared: float | None  # s: a declared slow-down's up_to
    decision: PerfDecision
    reason: str  # one line, e.g. "1.21x [1.16, 1.27] > 1.10x (baselines 1.02x)"
    spreads: tuple[Spread, ...]  # the baselines in order, the candidate last
    rates: Mapping[str, float] = field(default_factory=dict)  # "RUN images/s", "RUN MB/s": medians, for store.*
    interleaved: bool = True  # the runs took turns (a conductor), not measured one after another
    stopped: str = ""  # why sampling stopped: "decided" | "budget" | "max_rounds"
    declared_reason: str = ""  # the declared slow-down's reason and ticket, for the verdict

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> MetricComparison:
        declared = d.get("declared")
        return cls(
            metric=str(d["metric"]),
            unit=str(d["unit"]),
            ratio=float(d["ratio"]),
            interval=Interval.from_json(d["interval"]),
            per_baseline=tuple(Interval.from_json(x) for x in d.get("per_baseline", ())),
            noise=float(d["noise"]),
            noise_interval=Interval.from_json(d["noise_interval"]),
            threshold=float(d["threshold"]),
            declared=float(declared) if isinstance(declared, int | float) else None,
            decision=PerfDecision(d["decision"]),
            reason=str(d.get("reason", "")),
            spreads=tuple(Spread.from_json(x) for x in d.get("spreads", ())),
            rates={str(k): float(v) for k, v in (d.get("rates") or {}).items()},
            interleaved=bool(d.get("interleaved", True)),
            stopped=str(d.get("stopped", "")),
            declared_reason=str(d.get("declared_reason", "")),
        )


@dataclass(frozen=True)
class Reaction:
    """A robustness input's reaction in one run, as its case observed it (design 8.4): kind, when, detail."""

    kind: str  # "aborted", "exited", "not-sent", ...
    when: str = ""  # "immediate" | "delayed"; "" when not said
    detail: str = ""  # "A-ABORT source 0 reason 0", "exit code 70"

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> Reaction:
        return cls(str(d["kind"]), str(d.get("when", "")), str(d.get("detail", "")))


@dataclass(frozen=True)
class InputReactions:
    """One robustness input's reactions in every run, for the reports (a case's differences hold only what differs)."""

    case: str
    input: str  # the corpus input id
    description: str  # its one line from the corpus; "" when the runs did not record it
    before: tuple[Reaction | None, ...]  # each baseline replica's, in order; None: its case observed no reaction
    after: Reaction | None

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> InputReactions:
        def reaction(x: JSON) -> Reaction | None:
            return Reaction.from_json(x) if isinstance(x, Mapping) else None

        return cls(
            case=str(d["case"]),
            input=str(d["input"]),
            description=str(d.get("description", "")),
            before=tuple(reaction(x) for x in d.get("before") or ()),
            after=reaction(d.get("after")),
        )


@dataclass(frozen=True)
class Comparison:
    """Baseline replicas against one candidate: per-case results and the verdict."""

    device: str
    baseline: tuple[str, ...]  # run directories
    candidate: str
    verdict: Verdict
    reasons: tuple[str, ...]  # one line each: why this verdict
    cases: tuple[CaseComparison, ...]
    baseline_variant: str = ""
    candidate_variant: str = ""
    created: str = ""
    policy_sha256: str = ""  # the expected-change policy judged against (Policy.sha256); "": not recorded
    # One entry per security-tagged observation (two for a list that both gained and lost items).
    security: tuple[SecurityChange, ...] = ()
    # One entry per performance metric, when the runs measured any (perf/samples.jsonl).
    performance: tuple[MetricComparison, ...] = ()
    # One entry per robustness input a run reacted to, in corpus order (compare.robustness).
    robustness: tuple[InputReactions, ...] = ()

    def to_json(self) -> dict[str, JSON]:
        optional = ("policy_sha256", "performance", "robustness")
        d: dict[str, JSON] = {
            f.name: to_json(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name not in optional
        }
        for name in optional:  # only when there: a comparison without them reads and writes as it always did
            if getattr(self, name):
                d[name] = to_json(getattr(self, name))
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> Comparison:
        return cls(
            device=str(d["device"]),
            baseline=tuple(str(x) for x in d["baseline"]),
            candidate=str(d["candidate"]),
            verdict=Verdict(d["verdict"]),
            reasons=tuple(str(x) for x in d["reasons"]),
            cases=tuple(CaseComparison.from_json(x) for x in d["cases"]),
            baseline_variant=str(d.get("baseline_variant", "")),
            candidate_variant=str(d.get("candidate_variant", "")),
            created=str(d.get("created", "")),
            policy_sha256=str(d.get("policy_sha256", "")),
            security=tuple(SecurityChange.from_json(x) for x in d.get("security", [])),
            performance=tuple(MetricComparison.from_json(x) for x in d.get("performance", [])),
            robustness=tuple(InputReactions.from_json(x) for x in d.get("robustness", [])),
        )


def _seconds(value: JSON) -> float | None:
    """A duration read back: a number, else None (not recorded)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def to_json(obj: object) -> JSON:
    """Any record above (or a nesting of them) as plain JSON values; enums become their values."""
    if isinstance(obj, (RunSetup, CaseComparison, Comparison, Manifest, Difference, CorpusInfo)):
        return obj.to_json()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Mapping):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    return obj
