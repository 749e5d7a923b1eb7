"""The pytest plugin: `--patchgate-run DIR` points the suites at a run, `observe` records, one JSON line per case."""

from __future__ import annotations

import gc
import json
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Protocol

import pytest

from harness.actions import ActionClient, ActionResult
from harness.context import SuiteContext
from harness.model import JSON, CaseRecord, Observation, Outcome, Security
from harness.perf.client import Turns
from harness.robust.client import Windows
from harness.rundir import CaseWriter, RunDir
from simulators._lifeline import Lifeline

__all__ = ["Act", "ActionResult", "Observe", "not_applicable"]

_CONTEXT = pytest.StashKey[SuiteContext]()
_OBSERVED = pytest.StashKey[list[Observation]]()
_LIFELINE = pytest.StashKey[Lifeline]()
_ACTIONS = pytest.StashKey[ActionClient]()
_NOT_APPLICABLE = "not applicable: "
_PHASE_OFF = "the performance phase is off (enable [performance] in the profile, or pass --performance)"
_ROBUSTNESS_OFF = "the robustness phase is off (enable [robustness] in the profile, or pass --robustness)"
_ORPHANED = 75  # no harness is left to read it; distinct from pytest's own 0-5 for a person reading the log


def not_applicable(reason: str) -> NoReturn:
    """End the current case as not applicable (not skipped): what it needs, the profile does not declare."""
    pytest.skip(_NOT_APPLICABLE + reason)


class Observe(Protocol):
    """`observe(name, value, security=..., tags=...)`: record one observation of the current case."""

    def __call__(
        self, name: str, value: JSON, security: Security | str = Security.NONE, tags: Sequence[str] = ()
    ) -> None: ...


class Act(Protocol):
    """`device_action(name, {"item.sps_id": ...})`: make the device do a declared action; its result, recorded."""

    def __call__(self, name: str, values: Mapping[str, str] | None = None) -> ActionResult: ...


@dataclass
class _Pending:
    """A case while its setup, call and teardown reports arrive."""

    outcome: Outcome = Outcome.PASSED
    duration: float = 0.0
    message: str = ""
    observations: list[Observation] = field(default_factory=list)
    service: str = ""


class _Recorder:
    """Registered only with --patchgate-run on the controller: turns reports into case lines."""

    def __init__(self, writer: CaseWriter) -> None:
        self.writer = writer
        self.pending: dict[str, _Pending] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        pending = self.pending.setdefault(report.nodeid, _Pending())
        pending.duration += report.duration
        observed = getattr(report, "patchgate_observations", [])
        pending.observations = [Observation.from_json(o) for o in observed]
        pending.service = pending.service or str(getattr(report, "patchgate_service", ""))
        if report.skipped and pending.outcome is Outcome.PASSED:
            reason = _skip_reason(report)
            pending.outcome = Outcome.NOT_APPLICABLE if reason.startswith(_NOT_APPLICABLE) else Outcome.SKIPPED
            pending.message = reason
        elif report.failed:
            if report.when == "call":
                pending.outcome = Outcome.FAILED
            elif pending.outcome is not Outcome.FAILED:
                pending.outcome = Outcome.ERROR
            if not pending.message:
                pending.message = _failure_line(report)
        if report.when == "teardown":
            del self.pending[report.nodeid]
            self.writer.write(
                CaseRecord(
                    case=report.nodeid,
                    outcome=pending.outcome,
                    duration=pending.duration,
                    message=pending.message,
                    observations=tuple(pending.observations),
                    service=pending.service,
                )
            )

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.writer.close()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("patchgate", "patchgate: record DICOM observations for a run")
    group.addoption(
        "--patchgate-run",
        metavar="DIR",
        default=None,
        help="run directory written by `patchgate run` (endpoints.json in, observations.jsonl out)",
    )
    group.addoption(
        "--patchgate-allure",
        metavar="DIR",
        default=None,
        help="Allure results into DIR as --alluredir writes them, by a writer process (harness.suite_allure)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "service(name): the DICOM service a case exercises (echo, store, ...)")
    config.addinivalue_line("markers", "initiates(role): what the device must start itself (mwl, mpps, store, ...)")
    config.addinivalue_line("markers", "action(*names): the device actions a case triggers (query_worklist, ...)")
    config.addinivalue_line("markers", "shares_association: the case may use the module's shared_session")
    config.addinivalue_line("markers", "performance(metric): a performance phase case measuring one metric")
    config.addinivalue_line("markers", "robustness(input): a robustness phase case sending one corpus input")
    config.addinivalue_line("markers", "before_traffic: the case runs before the other functional cases")
    config.addinivalue_line(
        "markers", "after_traffic: the case runs after the other functional cases (over before_traffic)"
    )
    if allure_dir := config.getoption("--patchgate-allure"):
        if config.getoption("allure_report_dir", None):
            # Two listeners would report every case twice, into two folders or twice into one.
            raise pytest.UsageError("--patchgate-allure and --alluredir: give one (both write the same results)")
        from harness import suite_allure  # allure-pytest's internals, only where they are used

        suite_allure.start(config, Path(allure_dir))
    run_dir = config.getoption("--patchgate-run")
    if not run_dir:
        return
    run = RunDir(Path(run_dir))
    context = run.read_context()
    config.stash[_CONTEXT] = context
    config.stash[_LIFELINE] = Lifeline()
    # xdist workers send their reports to the controller, which alone writes the record.
    if not hasattr(config, "workerinput"):
        recorder = _Recorder(run.case_writer())
        config.pluginmanager.register(recorder, "patchgate-recorder")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    context = config.stash.get(_CONTEXT, None)
    if context is None:
        return
    for item in items:
        reason = _not_applicable(item, context)
        if reason:
            item.add_marker(pytest.mark.skip(reason=_NOT_APPLICABLE + reason))
    # The performance phase after every functional case, the robustness phase last (it may crash the device);
    # cases marked before_traffic first (audit windows: no other case's late messages to wait out), after_traffic
    # after the other functional cases (the audit cases, their messages long arrived); stable otherwise: the
    # runs take turns in the performance phase.
    items.sort(key=_phase_order)
    RunDir(Path(context.run_dir)).write_collected(len(items))
    # The imports and the collected cases live through the session: the collector need not walk them again
    # (nor pytest's forced collections at the end).
    gc.freeze()


def _phase_order(item: pytest.Item) -> int:
    if item.get_closest_marker("robustness") is not None:
        return 4
    if item.get_closest_marker("performance") is not None:
        return 3
    if item.get_closest_marker("after_traffic") is not None:
        return 2
    return 0 if item.get_closest_marker("before_traffic") is not None else 1


def _not_applicable(item: pytest.Item, context: SuiteContext) -> str:
    """Why the profile makes the case not applicable ("" when it applies): the performance phase off, an
    unmeasured metric, an undeclared service, role or action."""
    measures = tuple(str(m.args[0]) for m in item.iter_markers("performance"))
    if measures and not context.performance:
        return _PHASE_OFF
    sends = tuple(str(m.args[0]) for m in item.iter_markers("robustness"))
    if sends and not context.robustness:
        return _ROBUSTNESS_OFF
    for input_id in sends:
        if input_id not in context.robustness.get("inputs", ()):
            return f"the profile's [robustness] inputs do not cover {input_id!r}"
    for marker in item.iter_markers("service"):
        if (service := str(marker.args[0])) not in context.services:
            return f"the device's profile does not declare {service!r}"
    for marker in item.iter_markers("initiates"):
        if (role := str(marker.args[0])) not in context.initiates:
            return f"the device's profile does not declare that it initiates {role!r}"
    for marker in item.iter_markers("action"):
        for name in map(str, marker.args):
            if name not in context.actions:
                return f"the device's profile declares no action {name!r}"
    for metric in measures:
        if metric not in context.performance.get("metrics", ()):
            return f"the profile's [performance] metrics do not cover {metric!r}"
    return ""


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Orphaned by a killed harness, the suites stop before the next case instead of appending to its record.
    lifeline = item.config.stash.get(_LIFELINE, None)
    if lifeline is not None and (why := lifeline.gone()):
        pytest.exit(why, returncode=_ORPHANED)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    # Carried on the report (plain JSON) so it survives xdist's serialisation to the controller.
    observed = item.stash.get(_OBSERVED, [])
    report.patchgate_observations = [o.to_json() for o in observed]
    marker = item.get_closest_marker("service")  # the parameter's marker before the module's
    report.patchgate_service = str(marker.args[0]) if marker is not None and marker.args else ""
    return report


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "")


def _failure_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = str(getattr(crash, "message", "") or report.longreprtext or "failed")
    return " ".join(text.split())[:500]


@pytest.fixture(scope="session")
def patchgate_context(request: pytest.FixtureRequest) -> SuiteContext:
    """Where this run's device and simulators listen."""
    context = request.config.stash.get(_CONTEXT, None)
    if context is None:
        raise pytest.UsageError(
            "suites need --patchgate-run DIR; run them with `patchgate run` or `patchgate validate`"
        )
    return context


@pytest.fixture
def observe(request: pytest.FixtureRequest) -> Observe:
    """Record a named observation of the device's behaviour (a JSON value) for this case.

    `security` marks what the value means for the security posture (see harness.model.Security),
    so the comparison can say whether a change tightened or loosened it. `tags` say what kind of
    record it is (e.g. `Observation.INVENTORY`), so reports find it without knowing the case.
    """
    observed: list[Observation] = []
    request.node.stash[_OBSERVED] = observed

    def record(name: str, value: JSON, security: Security | str = Security.NONE, tags: Sequence[str] = ()) -> None:
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"observation {name!r} is not JSON: {exc}") from None
        # A bare string would become one tag per character.
        if isinstance(tags, str) or not all(isinstance(t, str) and t for t in tags):
            raise TypeError(f"observation {name!r}: tags must be a sequence of non-empty strings, got {tags!r}")
        observed.append(Observation(name, value, Security(security), tuple(tags)))

    return record


@pytest.fixture
def device_action(request: pytest.FixtureRequest, patchgate_context: SuiteContext, observe: Observe) -> Act:
    """Make the device do an action its profile declares: `device_action("acquire", {"item.sps_id": "PGSPS0001"})`.

    http and dicom actions run here; command and prompt actions are done by the harness (the run
    directory's action channel). The result's summary is observed as `action.NAME`, so a patched
    device that now fails an action shows as a difference; `result.require()` fails the case.
    An action the profile does not declare makes the case not applicable.
    """
    config = request.config
    client = config.stash.get(_ACTIONS, None)
    if client is None:
        client = config.stash[_ACTIONS] = ActionClient(patchgate_context)

    def act(name: str, values: Mapping[str, str] | None = None) -> ActionResult:
        if not client.declares(name):
            pytest.skip(f"{_NOT_APPLICABLE}the device's profile declares no action {name!r}")
        result = client(name, values)
        observe(f"action.{name}", result.summary())
        if client.specs[name].record:  # the answer is the behaviour (a worklist the device found, a report)
            observe(f"action.{name}.answer", result.answer())
        return result

    return act


@pytest.fixture(scope="session")
def perf_turn(patchgate_context: SuiteContext) -> Turns:
    """Turns to measure in the performance phase: `while (turn := perf_turn.turn(metric)).go: ...`.

    Record the block's samples.jsonl line (`turn.record`) before `turn.done(ops, associations)`: the
    harness reads it then. Every wait is bounded (the barrier, the budget, a few stuck slots).
    """
    performance = patchgate_context.performance
    if not performance:
        not_applicable(_PHASE_OFF)
    return Turns(RunDir(Path(patchgate_context.run_dir)), timeout=float(str(performance["turn_timeout"])))


@pytest.fixture(scope="session")
def attack_windows(patchgate_context: SuiteContext) -> Windows:
    """The robustness phase's attack windows: `begin(input)` before sending it, `end(input)` after the health check
    (the answer says whether the device exited meanwhile), `revive(input, reaction, detail)` after an exit or a
    failed health check. Every wait is bounded; a `stop` in an answer means no more inputs are sent."""
    robustness = patchgate_context.robustness
    if not robustness:
        not_applicable(_ROBUSTNESS_OFF)
    return Windows(RunDir(Path(patchgate_context.run_dir)), timeout=float(str(robustness["window_timeout"])))
