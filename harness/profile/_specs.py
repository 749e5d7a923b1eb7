"""The profile's records: each TOML key is a dataclass field whose metadata says its meaning, default and range."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from harness.errors import ProfileError
from harness.model import JSON, Difference, DiffKind, Verdict
from harness.profile._schema import key

__all__ = [
    "ACTION_KINDS",
    "ACTION_NAMES",
    "COMMITMENT_REPORTS",
    "HOOK_NAMES",
    "IDENTITY_KINDS",
    "INITIATES",
    "METRICS",
    "METRIC_SERVICES",
    "RESOURCE_METRICS",
    "SERVICES",
    "WORKFLOW_METRICS",
    "WORKFLOW_NEEDS",
    "ActionSpec",
    "DeviceSpec",
    "Expectation",
    "ExpectedChange",
    "ExpectedSlowdown",
    "HookSpec",
    "PacsSpec",
    "PerformanceSpec",
    "PolicyFile",
    "Profile",
    "RisSpec",
    "RobustnessSpec",
    "SimulatorSpec",
    "VariantSpec",
    "workflow_metrics",
]

# The DICOM services a profile may declare; suites for undeclared services are not applicable.
# The workflow ones (worklist, MPPS, storage commitment SCP) only when declared: not in the default.
SERVICES = ("echo", "store", "find", "move", "get", "mwl", "mpps", "commitment")
ARCHIVE_SERVICES = SERVICES[:5]
# The kinds of user identity credential a device may know (PS3.7 D.3.3.7).
IDENTITY_KINDS = ("username", "passcode", "kerberos", "saml", "jwt")
# The corpus sizes a profile may choose (simulators.corpus.CORPUS_SIZES; not imported: compare reads profiles).
CORPUS_IDENTITIES = ("fixed", "per-run")
CORPUS_SIZES = ("small", "clinical")

# What a device may start on its own (a modality, a router); suites for the rest of a role are not applicable.
INITIATES = ("mwl", "mpps", "store", "commitment", "forward")
# A container device's restart policy (docker's names; "unless-stopped" is "always" for a run that stops it itself).
RESTART_POLICIES = ("no", "on-failure", "always")
# The actions a profile may declare under [device.actions.NAME]: what a suite can ask the device to do.
ACTION_NAMES = (
    "query_worklist", "start_procedure", "acquire", "complete", "discontinue",
    "commit", "commit_result", "forward", "scenario", "reset",
)  # fmt: skip
ACTION_KINDS = ("command", "http", "dicom", "prompt")
# The DIMSE messages a `dicom` action sends to the device.
ACTION_MESSAGES = ("C-ECHO", "C-STORE")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
# Seconds an action may take when the profile does not say: a person at a console needs longer.
DEFAULT_DEADLINE = {"prompt": 600.0}
_DEADLINE = 60.0

# The performance phase's metrics (docs/design/load-and-attack.md 3, 5.1): every one is time per unit, lower is
# better, and needs the device to declare a service; suites/performance measures each. WORKFLOW_METRICS below
# are the ones a device that initiates is measured by.
METRIC_SERVICES: Mapping[str, str] = {
    "association.setup": "echo",  # A-ASSOCIATE-RQ -> AC with the suites' full proposal
    "echo.latency": "echo",  # C-ECHO on an open association
    "store.study": "store",  # one study on one association
    "store.study.parallel": "store",  # the study over `parallel` associations
    "find.patient": "find",  # C-FIND per level on an open association
    "find.study": "find",
    "find.series": "find",
    "find.image": "find",
    "move.first": "move",  # C-MOVE-RQ -> first / last object at the PACS simulator
    "move.last": "move",
    "get.first": "get",  # C-GET-RQ -> first / last C-STORE received by the suites
    "get.last": "get",
}
METRICS = tuple(METRIC_SERVICES)
# workflow.<action> (design 5.1): the device's declared action started -> the first request it causes at the
# run's simulators (their arrival logs). Measured only for a device that initiates the role and declares the
# action (and WORKFLOW_NEEDS): metric -> (action, role).
WORKFLOW_METRICS: Mapping[str, tuple[str, str]] = {
    "workflow.acquire": ("acquire", "store"),  # -> the first C-STORE-RQ from the device at the PACS simulator
    "workflow.start_procedure": ("start_procedure", "mpps"),  # -> the first MPPS N-CREATE-RQ at the RIS simulator
    "workflow.complete": ("complete", "mpps"),  # -> the first MPPS N-SET-RQ COMPLETED at the RIS simulator
}
# The actions a workflow metric's block does first, untimed, and cannot do without: a step is started and ended
# once, so each block needs a console that forgot it (`reset`), and `complete` a step in progress. Not declared:
# no metric (every block after the first would be refused). workflow.acquire resets and starts when declared.
WORKFLOW_NEEDS: Mapping[str, tuple[str, ...]] = {
    "workflow.start_procedure": ("reset",),
    "workflow.complete": ("reset", "start_procedure"),
}
# Read by the harness from the device's processes or container (design 5.3, 6); compared when selected.
RESOURCE_METRICS = ("memory.steady", "memory.peak", "memory.growth", "cpu.per_operation")
RESOURCE_SOURCES = ("auto", "proc", "cgroup", "engine", "none")

# An external device's lifecycle hooks (harness.targets.external): commands patchgate runs, never the device's own.
HOOK_NAMES = ("reset", "apply", "health", "collect")

_AE_TITLE = dict(
    pattern=r"[\x20-\x5b\x5d-\x7e]{1,16}", pattern_hint="an AE title: 1-16 printable ASCII characters, no backslash"
)
_PORT = dict(minimum=0, maximum=65535)


@dataclass(frozen=True)
class ActionSpec:
    """Something the device can be made to do: a command, an HTTP request, a DICOM message, or an operator prompt."""

    # The keys only one kind takes; the first of each is required for that kind.
    BY_KIND: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "command": ("command", "where", "ok_exit"),
        "http": ("url", "method", "headers", "body", "ok_status"),
        "dicom": ("message", "items", "calling_ae"),
        "prompt": ("text",),
    }

    name: str
    kind: str = field(
        metadata=key(
            'how the action is done: "command" (a process), "http" (a request to the device\'s API), '
            '"dicom" (a DIMSE message to the device), "prompt" (an operator at a console)',
            choices=ACTION_KINDS,
        )
    )
    description: str = field(default="", metadata=key("what the action makes the device do, for reports"))
    deadline: float | None = field(
        default=None,
        metadata=key(
            f"seconds the action may take before it counts as timed out; absent: {_DEADLINE:g}, "
            f"a prompt {DEFAULT_DEADLINE['prompt']:g}",
            above=0,
            maximum=3600,
        ),
    )
    settle: float = field(
        default=2.0,
        metadata=key(
            "seconds suites wait for the action's effects at the simulators once it returned", minimum=0, maximum=600
        ),
    )
    record: bool = field(
        default=False,
        metadata=key("also observe the (redacted) answer, for actions whose answer is the behaviour"),
    )
    command: tuple[str, ...] = field(default=(), metadata=key("command: argv template ({placeholders})"))
    where: str = field(
        default="host",
        metadata=key(
            'command: "host" (beside patchgate) or "device" (inside the device\'s container; a local device: '
            "in its folder on this host)",
            choices=("host", "device"),
        ),
    )
    ok_exit: tuple[int, ...] = field(
        default=(0,), metadata=key("command: the exit codes that mean done", minimum=0, maximum=255)
    )
    url: str = field(
        default="",
        metadata=key(
            "http: the URL template (placeholders are percent-encoded)",
            pattern=r"https?://\S+",
            pattern_hint="an http:// or https:// URL",
        ),
    )
    method: str = field(default="POST", metadata=key("http: the request method", choices=HTTP_METHODS))
    headers: Mapping[str, str] = field(default_factory=dict, metadata=key("http: request headers (templates)"))
    body: JSON = field(
        default=None,
        metadata=key(
            "http: a JSON body (a TOML table or array); placeholders are filled in its strings only; a string that is "
            'exactly "{instances}" becomes that JSON array',
            json=True,
        ),
    )
    ok_status: tuple[int, ...] = field(
        default=(200, 201, 202, 204), metadata=key("http: the statuses that mean done", minimum=100, maximum=599)
    )
    message: str = field(default="", metadata=key("dicom: the message sent to the device", choices=ACTION_MESSAGES))
    items: tuple[str, ...] = field(default=(), metadata=key("dicom C-STORE: corpus item keys (e.g. CT-explicit)"))
    calling_ae: str = field(
        default="{modality.ae_title}", metadata=key("dicom: the calling AE title (a template)", nonblank=True)
    )
    text: str = field(default="", metadata=key("prompt: what the operator must do (a template)", nonblank=True))

    @property
    def timeout(self) -> float:
        """The deadline in seconds: the profile's, or the kind's default."""
        return self.deadline if self.deadline is not None else DEFAULT_DEADLINE.get(self.kind, _DEADLINE)

    def templates(self, where: str) -> dict[str, str]:
        """Every template of the action by where it is (`where`.url, `where`.body.a[0], ...), for check_templates."""
        out = {f"{where}.command[{i}]": arg for i, arg in enumerate(self.command)}
        out |= {f"{where}.headers.{k}": v for k, v in self.headers.items()}
        own = ("url", "text", *(("calling_ae",) if self.kind == "dicom" else ()))
        out |= {f"{where}.{name}": getattr(self, name) for name in own if getattr(self, name)}
        out |= {f"{where}.body{path}": text for path, text in _strings(self.body)}
        return out

    def to_json(self) -> dict[str, JSON]:
        d: dict[str, JSON] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            d[f.name] = (
                list(value) if isinstance(value, tuple) else dict(value) if isinstance(value, Mapping) else value
            )
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> ActionSpec:
        """From the suites' context (endpoints.json), where to_json wrote it."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) and k != "body" else v for k, v in d.items() if k in known}
        return cls(**values)  # type: ignore[arg-type]


def _strings(value: JSON, path: str = "") -> list[tuple[str, str]]:
    """(path, text) of each string leaf of a JSON value, keys excluded: placeholders fill leaves only."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, Mapping):
        return [leaf for k, v in value.items() for leaf in _strings(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _strings(v, f"{path}[{i}]")]
    return []


@dataclass(frozen=True)
class HookSpec:
    """A command patchgate runs around an external device's runs (revert a snapshot, install the patch, ...)."""

    name: str
    command: tuple[str, ...] = field(
        metadata=key("argv template ({placeholders}), run on this host in the run's device folder", nonblank=True)
    )
    deadline: float = field(
        default=300.0,
        metadata=key("seconds the command may take before it is killed and the run fails", above=0, maximum=86400),
    )


@dataclass(frozen=True)
class DeviceSpec:
    """The device under test as its conformance statement describes it, in miniature."""

    name: str = field(metadata=key("the device's name, for reports"))
    ae_title: str = field(metadata=key("the device's AE title (the called AE title)", **_AE_TITLE))
    host: str = field(
        default="127.0.0.1",
        metadata=key(
            "where a local device listens",
            pattern=r"127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|::1",
            pattern_hint="a loopback address (the local backend only serves 127.0.0.0/8)",
        ),
    )
    port: int = field(default=0, metadata=key("the device's DICOM port; 0: a free port per run", **_PORT))
    services: tuple[str, ...] = field(
        default=ARCHIVE_SERVICES,
        metadata=key(
            "the DICOM services the device declares; suites for the others are not applicable", choices=SERVICES
        ),
    )
    start_timeout: float = field(
        default=20.0, metadata=key("seconds the device may take to answer C-ECHO after starting", above=0, maximum=3600)
    )
    stop_timeout: float = field(
        default=5.0, metadata=key("seconds the device may take to stop before it is killed", above=0, maximum=600)
    )
    network: str = field(
        default="bridge",
        metadata=key(
            'containers: "bridge" (a network and a shared namespace made per run) or "host" (the host\'s loopback)',
            choices=("bridge", "host"),
        ),
    )
    probe: tuple[str, ...] = field(
        default=(), metadata=key("containers: a command whose output goes into the inventory (e.g. a version)")
    )
    restart: str = field(
        default="no",
        metadata=key(
            "containers: the engine's restart policy, as the device is deployed; an input of the robustness corpus "
            'that makes it exit then reads "restarted" (not "exited")',
            choices=RESTART_POLICIES,
        ),
    )
    memory_limit: str = field(
        default="",
        metadata=key(
            'containers: the engine\'s memory limit ("512m", "2g"); "": none',
            pattern=r"|[1-9][0-9]*[bkmg]?",
            pattern_hint='a whole number of bytes, with an optional unit b, k, m or g ("512m")',
        ),
    )
    identity: Mapping[str, str] = field(
        default_factory=dict,
        metadata=key(
            "valid user identity credentials the device knows, by kind; all but the username are secrets",
            keys=IDENTITY_KINDS,
        ),
    )
    # Literal values, not {placeholders}: a placeholder is a value the harness makes (a port, a path, an
    # AE title), never a secret; a secret is what the profile's author writes in (a password in `command`).
    secrets: tuple[str, ...] = field(
        default=(),
        metadata=key(
            'values replaced by "***" wherever a run records them (the device command in manifest.json, '
            "comparison.json, the reports); the identity credentials are secrets without being listed",
            pattern=r"(?!\{[a-z_][a-z0-9_.]*\}$)[\s\S]*\S[\s\S]*",
            pattern_hint="a secret's literal value (not blank, not a {placeholder}: placeholders are never secret)",
        ),
    )

    initiates: tuple[str, ...] = field(
        default=(),
        metadata=key(
            "what the device starts on its own (a modality: mwl, mpps, store, commitment; a router: forward); "
            "suites for the others are not applicable",
            choices=INITIATES,
        ),
    )
    ready: str = field(
        default="echo",
        metadata=key(
            'when the started device counts as up: "echo" (it answers C-ECHO), "tcp" (its DICOM port accepts), '
            '"http:/PATH" (GET on {http_port} answers below 500), "log:TEXT" (its log shows TEXT), '
            '"none" (at once: a device that never listens, such as a scripted modality)',
            pattern=r"echo|tcp|none|http:/(?!/)\S*|log:.*\S.*",
            pattern_hint="echo, tcp, none, http:/PATH or log:TEXT",
        ),
    )
    actions: Mapping[str, ActionSpec] = field(
        default_factory=dict,
        metadata=key(
            "what suites can make the device do, by name; cases that need another are not applicable", keys=ACTION_NAMES
        ),
    )
    hooks: Mapping[str, HookSpec] = field(
        default_factory=dict,
        metadata=key(
            "external devices (a variant with `address`): `reset` runs before each baseline and "
            "`apply` before the candidate (validate only), `health` once the device answers C-ECHO, `collect` after "
            "the suites; a hook that fails or times out makes the run a harness failure (INCONCLUSIVE)",
            keys=HOOK_NAMES,
        ),
    )

    @property
    def secret_values(self) -> tuple[str, ...]:
        """What to redact from a run's records: the declared secrets and every identity credential but the username."""
        credentials = (value for kind, value in sorted(self.identity.items()) if kind != "username")
        return tuple(dict.fromkeys(v for v in (*self.secrets, *credentials) if v))


@dataclass(frozen=True)
class VariantSpec:
    """How to start one variant of the device (the baseline as shipped, or the patched candidate)."""

    ONE_OF: ClassVar[tuple[str, ...]] = ("command", "image", "address")

    name: str
    command: tuple[str, ...] = field(
        default=(), metadata=key("argv template: the process (local) or the container's command (docker)")
    )
    env: Mapping[str, str] = field(default_factory=dict, metadata=key("environment variables (templates)"))
    description: str = field(default="", metadata=key("what this variant is, for reports"))
    image: str = field(default="", metadata=key("a container image: the docker backend runs the variant in it"))
    tls: bool = field(default=False, metadata=key("the variant requires DICOM TLS: suites and simulators speak TLS"))
    address: str = field(
        default="",
        metadata=key(
            'an external device patchgate does not start (a bench console, a VM): "host:port" where it answers DICOM',
            pattern=r"[A-Za-z0-9.-]+:[0-9]{1,5}|\[[0-9A-Fa-f:.]+\]:[0-9]{1,5}",
            pattern_hint='"host:port" or "[ipv6]:port", e.g. "192.0.2.10:104"',
        ),
    )
    files: Mapping[str, str] = field(
        default_factory=dict,
        metadata=key(
            "containers: configuration templates (relative to the profile) rendered per run, by container path",
            file=True,
            key_pattern="/.*",
            key_hint="an absolute container path (/etc/...)",
        ),
    )

    @property
    def backend(self) -> str:
        return "external" if self.address else "docker" if self.image else "local"

    @property
    def host_port(self) -> tuple[str, int]:
        """`address` split: (host, port); the brackets of an IPv6 host dropped."""
        host, _, port = self.address.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True)
class SimulatorSpec:
    """A simulated peer the device talks to: its AE title and port (PacsSpec and RisSpec add their own keys)."""

    name: str = ""
    ae_title: str = field(default="PGPACS", metadata=key("the simulator's AE title", **_AE_TITLE))
    port: int = field(default=0, metadata=key("the simulator's port; 0: a free port per run", **_PORT))


# Where the PACS simulator sends storage commitment reports (simulators.commitment.MODES; not imported:
# compare reads profiles).
COMMITMENT_REPORTS = ("auto", "same", "new")


@dataclass(frozen=True)
class PacsSpec(SimulatorSpec):
    """The PACS simulator: the device's C-MOVE destination and storage commitment SCP."""

    name: str = "pacs"
    commitment_report: str = field(
        default="auto",
        metadata=key(
            'where storage commitment reports go: "same" association, a "new" one to the device (its AE title, '
            'host and port), or "auto" (same if the requester keeps it open commitment_delay s, else new)',
            choices=COMMITMENT_REPORTS,
        ),
    )
    commitment_delay: float = field(
        default=0.2,
        metadata=key("seconds between the N-ACTION response and the report", minimum=0, maximum=600),
    )


@dataclass(frozen=True)
class RisSpec(SimulatorSpec):
    """The RIS simulator (MWL + MPPS SCP): it schedules the worklist items for the device's AE title."""

    name: str = "ris"
    ae_title: str = field(default="PGRIS", metadata=key("the simulator's AE title", **_AE_TITLE))


def workflow_metrics(initiates: Collection[str], actions: Collection[str]) -> tuple[str, ...]:
    """The WORKFLOW_METRICS a device is measured by: it initiates the role, declares the action and its needs."""
    return tuple(
        m
        for m, (action, role) in WORKFLOW_METRICS.items()
        if role in initiates and action in actions and all(n in actions for n in WORKFLOW_NEEDS.get(m, ()))
    )


@dataclass(frozen=True)
class PerformanceSpec:
    """The performance phase (docs/design/load-and-attack.md 3): off unless enabled here or by --performance."""

    enabled: bool = field(
        default=False, metadata=key("the phase runs after the functional suites (also: --performance)")
    )
    metrics: tuple[str, ...] = field(
        default=("*",),
        metadata=key(
            "globs (only * is special) over the metric ids "
            f"({', '.join((*METRICS, *WORKFLOW_METRICS, *RESOURCE_METRICS))}); metrics of services (or, for "
            "workflow.*, initiated roles and actions) the device does not declare drop out",
            nonblank=True,
        ),
    )
    budget: float = field(
        default=150.0,
        metadata=key("seconds of wall time for the whole phase of a validation (all runs)", minimum=10, maximum=3600),
    )
    threshold: float = field(
        default=0.10,
        metadata=key(
            "a metric slower than every baseline by more than this fraction (at `confidence`) is regressed",
            minimum=0.01,
            maximum=10,
        ),
    )
    thresholds: Mapping[str, float] = field(
        default_factory=dict,
        metadata=key("per-metric thresholds, by metric glob (first match wins)", minimum=0.01, maximum=10),
    )
    confidence: float = field(
        default=0.95, metadata=key("one-sided confidence of the bootstrap bounds", minimum=0.8, maximum=0.999)
    )
    min_rounds: int = field(
        default=6, metadata=key("rounds kept before a metric may stop early", minimum=3, maximum=100)
    )
    max_rounds: int = field(
        default=200,
        metadata=key(
            "rounds after which a metric stops (at least min_rounds + warmup_rounds)", minimum=3, maximum=1000
        ),
    )
    warmup_rounds: int = field(
        default=1, metadata=key("first rounds recorded but left out of every statistic", minimum=0, maximum=10)
    )
    block: Mapping[str, int] = field(
        default_factory=dict,
        metadata=key(
            "operations per block by metric glob (defaults: association.setup 10, echo 20, find 10; store.study*: 3 "
            "copies of the study, each its own value)",
            minimum=1,
            maximum=1000,
        ),
    )
    parallel: int = field(default=4, metadata=key("associations of store.study.parallel", minimum=2, maximum=16))
    study: str = field(
        default="auto",
        metadata=key(
            'the corpus study key stored by store.study*; "auto": the study with the most bytes', nonblank=True
        ),
    )
    memory_threshold: float = field(
        default=0.20,
        metadata=key("memory.steady and memory.peak regress beyond this fraction", minimum=0.01, maximum=10),
    )
    memory_growth_limit: int = field(
        default=65536,
        metadata=key("bytes per association the candidate's memory may grow by more than the baselines'", minimum=0),
    )
    cpu_threshold: float = field(
        default=0.20,
        metadata=key(
            "cpu.per_operation (the device's CPU per operation) regresses beyond this fraction",
            minimum=0.01,
            maximum=10,
        ),
    )
    resources: str = field(
        default="auto",
        metadata=key(
            'how device resources are read: "auto" (the backend\'s own probe), or "none" (not read); '
            '"proc", "cgroup" and "engine" ask for that probe (only "auto" and "none" are honoured yet)',
            choices=RESOURCE_SOURCES,
        ),
    )
    strict: bool = field(default=False, metadata=key("noisy or undecided metrics make the verdict INCONCLUSIVE"))
    bootstrap: int = field(default=2000, metadata=key("bootstrap resamples", minimum=200, maximum=20000))
    barrier_timeout: float = field(
        default=300.0,
        metadata=key("seconds a run waits for the other runs to reach the phase", minimum=0, maximum=3600),
    )

    def selected(
        self, services: Collection[str], initiates: Collection[str] = (), actions: Collection[str] = ()
    ) -> tuple[str, ...]:
        """The measured metrics the globs cover whose service the device declares, in METRICS order; then the
        WORKFLOW_METRICS whose role the device initiates and whose action it declares."""
        served = tuple(m for m in METRICS if METRIC_SERVICES[m] in services and self.covers(m))
        return served + tuple(m for m in workflow_metrics(initiates, actions) if self.covers(m))

    def resource_metrics(self) -> tuple[str, ...]:
        """The resource metrics the globs cover; none when resources are not read."""
        return () if self.resources == "none" else tuple(m for m in RESOURCE_METRICS if self.covers(m))

    def covers(self, metric: str) -> bool:
        return any(_glob(p).fullmatch(metric) for p in self.metrics)

    def block_for(self, metric: str, default: int) -> int:
        """Operations per block of a latency metric: the first `block` glob that covers it, else `default`."""
        return next((n for p, n in self.block.items() if _glob(p).fullmatch(metric)), default)


@dataclass(frozen=True)
class RobustnessSpec:
    """The robustness phase (docs/design/load-and-attack.md 3, 8): off unless enabled here or by --robustness."""

    enabled: bool = field(
        default=False,
        metadata=key("the phase runs after the functional suites and the performance phase (also: --robustness)"),
    )
    inputs: tuple[str, ...] = field(
        default=("*",),
        metadata=key(
            'globs (only * is special) over the corpus input ids (docs/attack-corpus.md), e.g. "pdu.*"', nonblank=True
        ),
    )
    skip: tuple[str, ...] = field(
        default=(),
        metadata=key('globs over input ids taken out after `inputs` (e.g. "load.*" for a device on a shared network)'),
    )
    deadline: float = field(
        default=10.0, metadata=key("seconds to wait for the device's reaction to one input", minimum=1, maximum=120)
    )
    health_timeout: float = field(
        default=10.0,
        metadata=key("seconds for the C-ECHO health check after each input (3 tries)", minimum=1, maximum=120),
    )
    revive: bool = field(
        default=True,
        metadata=key("restart a device that exited or stopped answering during an input, and go on"),
    )
    max_revivals: int = field(
        default=10,
        metadata=key(
            "revivals per run; beyond them the remaining inputs are not run (INCONCLUSIVE)", minimum=0, maximum=100
        ),
    )
    budget: float = field(
        default=900.0,
        metadata=key(
            "seconds for one run's phase, from its first input; inputs not begun by then are not run (INCONCLUSIVE)",
            minimum=10,
            maximum=7200,
        ),
    )

    def covers(self, input_id: str) -> bool:
        return any(_glob(p).fullmatch(input_id) for p in self.inputs) and not any(
            _glob(p).fullmatch(input_id) for p in self.skip
        )


@dataclass(frozen=True)
class ExpectedChange:
    """One declared change: which case and path it covers, and why it is allowed."""

    case: str = field(metadata=key('a glob over case ids (only * is special); "*" for every case', nonblank=True))
    path: str = field(
        metadata=key('a glob over difference paths (only * is special); "*" for every path', nonblank=True)
    )
    reason: str = field(
        metadata=key("why the change is expected (what the patch does, the ticket)", nonblank=True, strip=True)
    )
    kind: DiffKind | None = field(default=None, metadata=key("the kind of difference it covers; absent: any kind"))
    ticket: str = field(default="", metadata=key("the ticket that asks for the change", strip=True))
    allow_loosening: bool = field(
        default=False, metadata=key("may also cover a difference on a security observation that loosened")
    )
    # Where it was declared, for people: "FILE:LINE", or "FILE, expected[N]" (0-based) when the line is unknown.
    where: str = field(default="", compare=False)

    def matches(self, diff: Difference) -> bool:
        return (
            (self.kind is None or self.kind is diff.kind)
            and _glob(self.case).fullmatch(diff.case) is not None
            and _glob(self.path).fullmatch(diff.path) is not None
        )


@dataclass(frozen=True)
class ExpectedSlowdown:
    """One declared slow-down: which performance metrics may get slower, by how much, and why."""

    metric: str = field(
        metadata=key('a glob over performance metric ids (only * is special), e.g. "store.*"', nonblank=True)
    )
    up_to: float = field(
        metadata=key(
            "how much slower the candidate may be, as a fraction (0.15: 15 %); for memory.growth, named by its "
            "exact id, the fraction the growth limit is raised by",
            above=0,
            maximum=10,
        )
    )
    reason: str = field(
        metadata=key("why the slow-down is expected (what the patch does, the ticket)", nonblank=True, strip=True)
    )
    ticket: str = field(default="", metadata=key("the ticket that asks for the change", strip=True))
    # Where it was declared: "FILE:LINE", or "FILE, expected_slowdown[N]" (0-based) when the line is unknown.
    where: str = field(default="", compare=False)

    def matches(self, metric: str) -> bool:
        """Whether the entry covers `metric`; memory growth only when named exactly (a leak is no slow-down)."""
        if metric == "memory.growth":
            return self.metric == metric
        return _glob(self.metric).fullmatch(metric) is not None


_SLOWDOWNS = "the performance slow-downs the patch is expected to make"
_VERDICT_DOC = (
    "the verdict this file must give (a statement tests hold it to; the harness never changes its verdict for it)"
)


@dataclass(frozen=True)
class Expectation:
    """A policy file's expected verdict, and the validation it is the verdict of: a profile or a reference demo."""

    EXACTLY_ONE_OF: ClassVar[tuple[str, ...]] = ("profile", "demo")

    verdict: Verdict = field(metadata=key(_VERDICT_DOC))
    profile: str = field(
        default="", metadata=key("the profile validated with this policy (relative to the policy file)", file=True)
    )
    demo: str = field(
        default="",
        metadata=key(
            "the reference device's variant validated with this policy (patchgate validate --demo VARIANT --policy FILE)",
            pattern=r"[a-z0-9][a-z0-9-]*",
            pattern_hint="a reference variant name (patchgate variants lists them)",
        ),
    )


@dataclass(frozen=True)
class PolicyFile:
    """A policy file: [[expected]] tables, passed with --policy or named by a profile's `policy` key."""

    source: str
    expected: tuple[ExpectedChange, ...] = field(default=(), metadata=key("the changes the patch is expected to make"))
    slowdowns: tuple[ExpectedSlowdown, ...] = field(default=(), metadata=key(_SLOWDOWNS, toml="expected_slowdown"))
    expect: Expectation | None = field(
        default=None, metadata=key("the verdict validating with this policy must give, and of what")
    )


@dataclass(frozen=True)
class Profile:
    """A device profile: the device, how to start each variant, what the patch may change.

    `source` is the file it came from (or `<embedded:...>`), `sha256` the hash of its text.
    """

    source: str
    sha256: str
    device: DeviceSpec = field(metadata=key("the device under test"))
    variants: Mapping[str, VariantSpec] = field(
        metadata=key("how to start each variant; a baseline and a candidate", required_keys=("baseline", "candidate"))
    )
    pacs: PacsSpec = field(
        default_factory=PacsSpec, metadata=key("the PACS simulator (always started)", toml="simulators.pacs")
    )
    ris: RisSpec | None = field(
        default=None,
        metadata=key(
            "the RIS simulator (MWL + MPPS SCP): started when declared, or when the device initiates mwl or mpps",
            toml="simulators.ris",
        ),
    )
    sim_listen: str = field(
        default="127.0.0.1",
        metadata=key(
            "the address the simulators bind (PACS, RIS, audit repository): a loopback or this host's address, or "
            '"0.0.0.0" for all; an external device must reach it',
            toml="simulators.listen",
            pattern=r"[0-9]{1,3}(\.[0-9]{1,3}){3}",
            pattern_hint='an IPv4 address, e.g. "127.0.0.1" or "0.0.0.0"',
        ),
    )
    sim_advertise: str = field(
        default="",
        metadata=key(
            "the host the device is told for the simulators ({pacs.host}, {ris.host}, {arr.host}); "
            '"": `listen` (127.0.0.1 when that is 0.0.0.0)',
            toml="simulators.advertise",
            pattern=r"|[A-Za-z0-9.-]+",
            pattern_hint='a host name or IPv4 address, e.g. "192.0.2.1"',
        ),
    )
    modality_ae_title: str = field(
        default="PGMODALITY",
        metadata=key("the modality simulator's (calling) AE title", toml="modality.ae_title", **_AE_TITLE),
    )
    corpus_seed: int = field(
        default=1422,
        metadata=key("the seed of the synthetic DICOM corpus", toml="corpus.seed", minimum=0, maximum=2**32 - 1),
    )
    corpus_size: str = field(
        default="small",
        metadata=key(
            'the corpus\'s object sizes: "small" (quick), or "clinical" (small plus a 512x512 CT stack, '
            "a 100-frame XA cine and a 3000x3000 DX)",
            toml="corpus.size",
            choices=CORPUS_SIZES,
        ),
    )
    corpus_identity: str = field(
        default="fixed",
        metadata=key(
            '"fixed": every run sends the same UIDs and patient ids; "per-run": each run its own, derived from '
            "its run id and mapped back when compared, for a device that keeps what earlier runs stored",
            toml="corpus.identity",
            choices=CORPUS_IDENTITIES,
        ),
    )
    suite_paths: tuple[str, ...] = field(
        default=(),
        metadata=key(
            "suite folders (relative to the profile); empty: the built-in suites", toml="suites.paths", path=True
        ),
    )
    suite_timeout: float = field(
        default=600.0,
        metadata=key("seconds the suites may run in one variant", toml="suites.timeout", above=0, maximum=86400),
    )
    performance: PerformanceSpec = field(
        default_factory=PerformanceSpec,
        metadata=key("the performance phase: timed DICOM operations in interleaved rounds, compared per metric"),
    )
    robustness: RobustnessSpec = field(
        default_factory=RobustnessSpec,
        metadata=key("the robustness phase: the seeded corpus of malformed input, the device's reaction to each"),
    )
    expected: tuple[ExpectedChange, ...] = field(default=(), metadata=key("the changes the patch is expected to make"))
    slowdowns: tuple[ExpectedSlowdown, ...] = field(default=(), metadata=key(_SLOWDOWNS, toml="expected_slowdown"))
    policy_files: tuple[str, ...] = field(
        default=(),
        metadata=key(
            "policy files of [[expected]] tables (relative to the profile)", toml="policy", path=True, one_or_many=True
        ),
    )
    ticket_url: str = field(
        default="",
        metadata=key(
            "the URL of a policy ticket, {ticket} replaced by the entry's `ticket`: reports link expected changes to it",
            toml="report.ticket_url",
            pattern=r"https?://\S*\{ticket\}\S*",
            pattern_hint="an http(s) URL with {ticket} in it, e.g. https://tracker.example/browse/{ticket}",
        ),
    )

    expect_verdict: Verdict | None = field(
        default=None, metadata=key(f"{_VERDICT_DOC}, validating this profile alone", toml="expect.verdict")
    )

    @property
    def external(self) -> bool:
        """Whether patchgate starts none of this device's variants: they are reached at their `address`."""
        return any(v.address for v in self.variants.values())

    @property
    def sim_host(self) -> str:
        """Where patchgate's own parts reach the simulators: the bound address, loopback when bound to all."""
        return "127.0.0.1" if self.sim_listen == "0.0.0.0" else self.sim_listen

    @property
    def sim_told(self) -> str:
        """The simulators' host as the device is told it (`advertise`, else where patchgate reaches them)."""
        return self.sim_advertise or self.sim_host

    @property
    def ris_simulator(self) -> RisSpec | None:
        """The RIS a run starts: the declared one, a default one for a device that queries or reports to one, or None."""
        if self.ris is not None:
            return self.ris
        return RisSpec() if {"mwl", "mpps"} & set(self.device.initiates) else None

    @property
    def simulators(self) -> Mapping[str, SimulatorSpec]:
        """The simulators a run starts, by name (pacs always, ris when ris_simulator says so)."""
        ris = self.ris_simulator
        return {"pacs": self.pacs, **({"ris": ris} if ris is not None else {})}

    def variant(self, name: str) -> VariantSpec:
        try:
            return self.variants[name]
        except KeyError:
            known = ", ".join(sorted(self.variants)) or "none"
            raise ProfileError(
                f"{self.source}: no variant named {name!r}",
                hint=f"variants in this profile: {known}",
            ) from None


@functools.lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str]:
    """A glob where only `*` is special: any run of characters, separators included."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)
