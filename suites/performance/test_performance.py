"""One case per performance metric: blocks of timed operations, each in a turn the harness grants (design 5.2).

The values go to perf/samples.jsonl, never to observations.jsonl (every number differs from run to run):
a case observes only the functional side, the statuses the device answered and whether blocks failed.
A case whose every block failed fails, so a device that refuses C-FIND is a functional regression.

A workflow metric (`workflow.<action>`) has a case only for a device that initiates its role and declares
its action and what its block needs (harness.profile.workflow_metrics, read from the run's context at
collection), so a device that initiates nothing keeps its cases. Its block: the device forgets earlier
procedures (`reset`) and starts the step (`start_procedure`) when it declares them (the start only after a
reset, and not when the start is what is timed), untimed; then one value, from the action's start to the
first request it causes at the run's simulators (their arrival logs): the first C-STORE-RQ at the PACS
(acquire), the first MPPS N-CREATE-RQ (start_procedure) or N-SET-RQ COMPLETED (complete) at the RIS.
From the start, not the return: the reference modality's actions answer once their effects reached the
simulators, so its return comes after the arrival. The harness's share (a command action's ticket and
process start) is in every run's value alike, paired by round.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from pynetdicom.presentation import PresentationContext, build_context

from harness.actions import DONE
from harness.context import SuiteContext
from harness.model import Endpoint
from harness.perf.client import Turns
from harness.plugin import Act, ActionResult, Observe, not_applicable
from harness.profile import METRIC_SERVICES, METRICS, WORKFLOW_METRICS, workflow_metrics
from harness.rundir import RunDir
from simulators._net import VERIFICATION, qr_sop_class
from simulators.corpus import CorpusItem
from simulators.loadgen import (
    Block,
    association_block,
    echo_op,
    find_op,
    joined,
    latency_block,
    retrieve_block,
    study_block,
    workflow_block,
)
from simulators.loadgen import store_contexts as storage_contexts
from simulators.modality import Modality, Model
from simulators.ris.worklist import scheduled_items
from simulators.session import Session, echo_contexts
from suites._support import query

# Operations per block when [performance] block says nothing (design 5.1). For store.study* an operation is
# one copy of the study, each its own value: one 60 ms store per round made its median hostage to one hiccup.
BLOCK = {"association.setup": 10, "echo.latency": 20, "find.": 10, "store.": 3}
_MAX_CONTEXTS = 128  # PS3.8 9.3.2.2: presentation context ids are odd numbers 1..255
# find.<level>: the query level, the information model, and the stored corpus's keys that select one item.
_FIND: Mapping[str, tuple[str, Model, tuple[str, ...]]] = {
    "find.patient": ("PATIENT", "patient", ("PatientID",)),
    "find.study": ("STUDY", "study", ("StudyInstanceUID",)),
    "find.series": ("SERIES", "study", ("StudyInstanceUID", "SeriesInstanceUID")),
    "find.image": ("IMAGE", "study", ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")),
}
# One block of a metric; `round` seeds the new UIDs of a stored study copy.
Measure = Callable[[int], Block]
# workflow.*: the worklist item acted on (the one suites/workflow/test_images acquires); per metric, the
# performance table's key of the arrival log read and the messages (simulators.loadgen.first_arrival_seconds)
# that are the first request the action causes there; seconds to wait for it after the action.
_WORKFLOW_ITEM = "SPS-3"
_FIRST: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "workflow.acquire": ("arrivals", ("C-STORE-RQ",)),  # the PACS simulator's
    "workflow.start_procedure": ("ris_arrivals", ("N-CREATE-RQ",)),
    "workflow.complete": ("ris_arrivals", ("N-SET-RQ COMPLETED",)),  # not an N-SET that only updates the step
}
_ARRIVAL_WAIT = 10.0
# Untimed before each workflow block when the device declares `reset`: a fresh console, then the step in progress
# (when declared, and unless the start is the action timed). Without a reset the step is not started: a second
# start of one step would be refused (workflow.start_procedure and .complete need a reset: WORKFLOW_NEEDS).
_SETUP = ("reset", "start_procedure")
# The workflow metrics whose (not applicable) case a run without the phase has too: workflow.acquire's, as
# before the others existed. The others' cases are only in runs with the phase, so a workflow device's runs
# without it keep their case list (a case more would be a case compared against earlier runs without it).
_WITHOUT_PHASE = ("workflow.acquire",)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.name == "test_metric":
        metafunc.parametrize("metric", _params(_context(metafunc.config)))


def _context(config: pytest.Config) -> SuiteContext | None:
    run_dir = config.getoption("--patchgate-run", None)
    return RunDir(Path(run_dir)).read_context() if run_dir else None


def _params(context: SuiteContext | None) -> list[Any]:
    """Every service metric; the workflow metrics the run's device is measured by (all without a run), the
    ones after workflow.acquire only in a run with the phase (_WITHOUT_PHASE)."""
    served = [
        pytest.param(m, marks=[pytest.mark.performance(m), pytest.mark.service(METRIC_SERVICES[m])], id=m)
        for m in METRICS
    ]
    measured = (
        WORKFLOW_METRICS
        if context is None
        else [
            m
            for m in workflow_metrics(context.initiates, context.actions)
            if context.performance or m in _WITHOUT_PHASE
        ]
    )
    workflow = [
        pytest.param(
            m, marks=[pytest.mark.performance(m), pytest.mark.initiates(role), pytest.mark.action(action)], id=m
        )
        for m, (action, role) in WORKFLOW_METRICS.items()
        if m in measured
    ]
    return served + workflow


def _study(corpus: Mapping[str, CorpusItem], key: str) -> list[CorpusItem]:
    """The study stored by store.study* and retrieved by move.* / get.*: `key`'s, or ("auto") the one of most bytes."""
    studies: dict[str, list[CorpusItem]] = {}
    for item in corpus.values():
        studies.setdefault(item.study_instance_uid, []).append(item)
    if key != "auto":
        if key not in corpus:
            pytest.fail(f"[performance] study = {key!r} is no corpus item key; keys: {', '.join(sorted(corpus))}")
        return studies[corpus[key].study_instance_uid]

    def size(items: Sequence[CorpusItem]) -> int:
        return sum(len(getattr(i.dataset, "PixelData", b"") or b"") for i in items)

    return max(studies.values(), key=size)


def _full_proposal(corpus: Mapping[str, CorpusItem]) -> list[PresentationContext]:
    """What the suites propose when they propose everything: Verification, Q/R and every stored (class, syntax)."""
    qr = [build_context(qr_sop_class(m, s)) for m in ("patient", "study") for s in ("find", "move", "get")]
    stored = storage_contexts(item.dataset for item in corpus.values())
    return [build_context(VERIFICATION), *qr, *stored][:_MAX_CONTEXTS]


def _measure(
    metric: str,
    performance: Mapping[str, Any],
    context: SuiteContext,
    device: Endpoint,
    pacs: Endpoint,
    modality: Modality,
    corpus: Mapping[str, CorpusItem],
) -> Measure:
    """How one block of `metric` is measured."""
    blocks = performance.get("block") or {}

    def ops(default: int) -> int:
        for pattern, n in blocks.items():
            if _covers(pattern, metric):
                return int(n)
        return default

    if metric == "association.setup":
        contexts = _full_proposal(corpus)
        n = ops(BLOCK[metric])
        return lambda _: association_block(device, contexts, n, modality=modality)
    if metric == "echo.latency":
        n = ops(BLOCK[metric])
        return lambda _: latency_block(
            metric, lambda: Session(device, echo_contexts(), modality=modality), echo_op(), n
        )
    if metric in _FIND:
        level, model, keys = _FIND[metric]
        item = next(iter(corpus.values()))
        identifier = query(level, **{k: str(item.dataset.get(k)) for k in keys})
        find = [build_context(qr_sop_class(model, "find"))]
        n = ops(BLOCK["find."])
        return lambda _: latency_block(
            metric, lambda: Session(device, find, modality=modality), find_op(identifier, model), n
        )
    study = _study(corpus, str(performance.get("study", "auto")))
    if metric.startswith("store.study"):
        datasets = [i.dataset for i in study]
        parallel = int(performance.get("parallel", 4)) if metric == "store.study.parallel" else 1
        seed = context.corpus_seed
        n = ops(BLOCK["store."])
        return lambda k: joined(
            [
                study_block(device, datasets, parallel, seed=seed, round=k * n + i, metric=metric, modality=modality)
                for i in range(n)
            ]
        )
    identifier = query("STUDY", StudyInstanceUID=study[0].study_instance_uid)
    if metric.startswith("get."):
        pairs = sorted({(i.sop_class_uid, i.transfer_syntax_uid) for i in study})
        return lambda _: _pick(metric, retrieve_block(device, identifier, "get", sop_classes=pairs, modality=modality))
    arrivals = Path(str(performance["arrivals"]))
    return lambda _: _pick(
        metric,
        retrieve_block(device, identifier, "move", destination=pacs.ae_title, arrivals=arrivals, modality=modality),
    )


def _workflow(metric: str, context: SuiteContext, act: Act) -> Measure:
    """How one block of a workflow metric is measured (see the module docstring)."""
    action, _ = WORKFLOW_METRICS[metric]
    if not context.worklist_date:
        not_applicable("the run records no worklist date (a run directory from before workflow suites existed)")
    station = context.device.ae_title.strip()
    items = {i.key: i for i in scheduled_items(context.corpus_seed, context.worklist_date, station)}
    values = items[_WORKFLOW_ITEM].placeholders()
    declared = _SETUP if "reset" in context.actions else ()
    setup = [
        (name, {} if name == "reset" else values) for name in declared if name in context.actions and name != action
    ]
    spec = context.actions[action]
    settle = float(str(spec.get("settle", 0))) if isinstance(spec, dict) else 0.0
    log, messages = _FIRST[metric]
    if log not in context.performance:  # a run directory from before the RIS simulator kept an arrival log
        not_applicable(f"the run records no {log} (the arrival log {metric} is read from)")
    arrivals = Path(str(context.performance[log]))

    def block(_: int) -> Block:
        for name, given in setup:
            if outcome := _outcome(act(name, given)):
                return Block(metric, (), 0, 1, associations=0, statuses={f"{name}: {outcome}": 1})
        return workflow_block(
            metric,
            lambda: _outcome(act(action, values)),
            arrivals,
            messages,
            wait=max(settle, _ARRIVAL_WAIT),
        )

    return block


def _outcome(result: ActionResult) -> str:
    """ "" when the action was done, else its outcome."""
    return "" if result.outcome == DONE else result.outcome


def _pick(metric: str, blocks: tuple[Block, Block]) -> Block:
    """This case's block of a retrieve (which times first and last object in one operation)."""
    return blocks[0] if metric.endswith(".first") else blocks[1]


def _covers(pattern: str, metric: str) -> bool:
    """A [performance] block glob (only * is special, as in the profile) covers the metric id."""
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), metric) is not None


def test_metric(
    metric: str, patchgate_context: SuiteContext, perf_turn: Turns, observe: Observe, request: pytest.FixtureRequest
) -> None:
    """Blocks of `metric` in the turns granted (parametrised by pytest_generate_tests)."""
    context = patchgate_context
    if metric in WORKFLOW_METRICS:
        measure = _workflow(metric, context, request.getfixturevalue("device_action"))
    else:  # a workflow device need not store: the corpus is stored for the service metrics only
        request.getfixturevalue("stored_corpus")
        fixtures = [request.getfixturevalue(name) for name in ("device", "pacs", "modality", "corpus")]
        measure = _measure(metric, context.performance, context, *fixtures)
    statuses: Counter[str] = Counter()
    blocks = failed_blocks = 0
    while (turn := perf_turn.turn(metric)).go:
        started = time.time_ns()
        try:
            block = measure(turn.round)
        except BaseException:
            turn.done(0, 0)  # the slot goes on to the next run; the failure is this case's
            raise
        turn.record(block.to_json(round=turn.round, slot=turn.slot, started_ns=started))  # before done: it is read then
        turn.done(block.ops, block.associations)
        blocks += 1
        failed_blocks += block.failed > 0
        statuses.update(block.statuses.keys())
    failures = "none" if not failed_blocks else "all" if failed_blocks == blocks else "some"
    # Which statuses the device answered and whether blocks failed; never how often or how fast.
    observe("perf.metric", {"metric": metric, "failures": failures, "statuses": sorted(statuses)})
    assert not blocks or failed_blocks < blocks, f"{metric}: every block failed; statuses {sorted(statuses)}"
