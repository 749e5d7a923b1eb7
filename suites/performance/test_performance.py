"""One case per performance metric: blocks of timed operations, each in a turn the harness grants (design 5.2).

The values go to perf/samples.jsonl, never to observations.jsonl (every number differs from run to run):
a case observes only the functional side, the statuses the device answered and whether blocks failed.
A case whose every block failed fails, so a device that refuses C-FIND is a functional regression.
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

from harness.context import SuiteContext
from harness.model import Endpoint
from harness.perf.client import Turns
from harness.plugin import Observe
from harness.profile import METRIC_SERVICES, METRICS
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
)
from simulators.loadgen import store_contexts as storage_contexts
from simulators.modality import Modality, Model, StoreResult
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


def _params() -> list[Any]:
    return [
        pytest.param(m, marks=[pytest.mark.performance(m), pytest.mark.service(METRIC_SERVICES[m])], id=m)
        for m in METRICS
    ]


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


def _pick(metric: str, blocks: tuple[Block, Block]) -> Block:
    """This case's block of a retrieve (which times first and last object in one operation)."""
    return blocks[0] if metric.endswith(".first") else blocks[1]


def _covers(pattern: str, metric: str) -> bool:
    """A [performance] block glob (only * is special, as in the profile) covers the metric id."""
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), metric) is not None


@pytest.mark.parametrize("metric", _params())
def test_metric(
    metric: str,
    patchgate_context: SuiteContext,
    perf_turn: Turns,
    device: Endpoint,
    pacs: Endpoint,
    modality: Modality,
    corpus: Mapping[str, CorpusItem],
    stored_corpus: StoreResult,
    observe: Observe,
) -> None:
    measure = _measure(metric, patchgate_context.performance, patchgate_context, device, pacs, modality, corpus)
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
