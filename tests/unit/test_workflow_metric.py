"""workflow.<action>: the value from an arrival log, the block's failures, and which devices have the metric."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from harness.context import SuiteContext
from harness.model import Endpoint
from harness.profile import METRICS, WORKFLOW_METRICS, PerformanceSpec, workflow_metrics
from simulators._arrivals import Arrival
from simulators._journal import append_json_line
from simulators.loadgen import first_arrival_seconds, workflow_block
from suites.performance.test_performance import _params

START = 1_764_495_000_000_000_000


def _arrival(t_ns: int, message: str = "C-STORE-RQ", direction: str = "received", mpps_status: str = "") -> Arrival:
    return Arrival(t_ns, direction, message, 1, "REFMOD", mpps_status=mpps_status)


def test_the_value_is_the_first_matching_request_at_or_after_the_start() -> None:
    arrivals = [
        _arrival(START - 5),  # an earlier block's
        _arrival(START + 900_000_000),
        _arrival(START + 100_000_000, "N-ACTION-RQ"),  # not a message of the role
        _arrival(START + 200_000_000, direction="sent"),  # the simulator's own C-STORE (a C-MOVE sub-operation)
        _arrival(START + 400_000_000),  # out of file order: the earliest stamp counts
    ]
    assert first_arrival_seconds(arrivals, START, ("C-STORE-RQ",)) == pytest.approx(0.4)
    assert first_arrival_seconds([_arrival(START)], START, ("C-STORE-RQ",)) == 0.0
    assert first_arrival_seconds(arrivals[:4], START - 10, ("N-CREATE-RQ",)) is None


def test_an_mpps_status_narrows_the_message_and_a_bare_name_takes_any() -> None:
    arrivals = [
        _arrival(START + 100_000_000, "N-SET-RQ", mpps_status="IN PROGRESS"),  # an update of the step
        _arrival(START + 300_000_000, "N-SET-RQ", mpps_status="COMPLETED"),
        _arrival(START + 200_000_000, "N-CREATE-RQ", mpps_status="IN PROGRESS"),
    ]
    assert [a.kind for a in arrivals] == ["N-SET-RQ IN PROGRESS", "N-SET-RQ COMPLETED", "N-CREATE-RQ IN PROGRESS"]
    assert first_arrival_seconds(arrivals, START, ("N-SET-RQ COMPLETED",)) == pytest.approx(0.3)
    assert first_arrival_seconds(arrivals, START, ("N-SET-RQ",)) == pytest.approx(0.1)
    assert first_arrival_seconds(arrivals, START, ("N-CREATE-RQ",)) == pytest.approx(0.2)
    assert first_arrival_seconds(arrivals[:2], START, ("N-SET-RQ DISCONTINUED",)) is None
    # A line written before the field existed, or of a request without one, reads as "" and its bare name
    plain = Arrival.from_json({"t_ns": START, "direction": "received", "message": "C-STORE-RQ", "association": 1,
                               "peer_ae": "X"})  # fmt: skip
    assert (plain.mpps_status, plain.kind) == ("", "C-STORE-RQ")


def _line(t_ns: int) -> dict[str, Any]:
    return {"t_ns": t_ns, "direction": "received", "message": "C-STORE-RQ", "association": 1, "peer_ae": "REFMOD"}


def test_a_block_times_an_action_to_its_first_arrival(tmp_path: Path) -> None:
    log = tmp_path / "pacs.jsonl"
    append_json_line(log, _line(START))  # before the block: never its arrival

    def act() -> str:
        append_json_line(log, _line(time.time_ns() + 50_000_000))  # as if the device sent 50 ms after it started
        return ""

    block = workflow_block("workflow.acquire", act, log, ("C-STORE-RQ",), wait=5)
    assert (block.ops, block.failed, block.associations, dict(block.statuses)) == (1, 0, 0, {"arrived": 1})
    assert 0.05 <= block.values[0] < 5


def test_a_failed_action_or_no_arrival_is_a_failed_op_without_a_value(tmp_path: Path) -> None:
    log = tmp_path / "pacs.jsonl"
    append_json_line(log, _line(START))
    refused = workflow_block("workflow.acquire", lambda: "failed", log, ("C-STORE-RQ",))
    assert (refused.values, refused.ops, refused.failed, dict(refused.statuses)) == ((), 0, 1, {"failed": 1})
    # Done, but nothing came: the wait is bounded (here 0 s past the return)
    silent = workflow_block("workflow.acquire", lambda: "", tmp_path / "missing.jsonl", ("C-STORE-RQ",), wait=0)
    assert (silent.values, silent.ops, silent.failed, dict(silent.statuses)) == ((), 0, 1, {"no-arrival": 1})


def test_only_a_device_that_initiates_the_role_and_declares_the_action_has_the_metric() -> None:
    spec = PerformanceSpec(enabled=True)
    assert spec.selected(("echo",)) == ("association.setup", "echo.latency")
    assert spec.selected(("echo",), ("store",), ("reset",)) == ("association.setup", "echo.latency")
    assert spec.selected(("echo",), ("mwl",), ("acquire",)) == ("association.setup", "echo.latency")
    assert spec.selected(("echo",), ("mwl", "store"), ("acquire",)) == (
        "association.setup",
        "echo.latency",
        "workflow.acquire",
    )
    assert PerformanceSpec(metrics=("workflow.*",)).selected(("echo",), ("store",), ("acquire",)) == (
        "workflow.acquire",
    )
    assert PerformanceSpec(metrics=("echo.*",)).selected(("echo",), ("store",), ("acquire",)) == ("echo.latency",)


def test_the_mpps_metrics_need_a_reset_and_complete_a_started_step() -> None:
    workflow = PerformanceSpec(metrics=("workflow.*",))
    every = ("reset", "start_procedure", "acquire", "complete")
    assert workflow.selected((), ("mwl", "mpps", "store"), every) == (
        "workflow.acquire",
        "workflow.start_procedure",
        "workflow.complete",
    )
    assert workflow.selected((), ("mpps",), every) == ("workflow.start_procedure", "workflow.complete")
    # A step starts and ends once: without a reset, a second block would be refused, so no metric
    assert workflow.selected((), ("mpps",), ("start_procedure", "complete")) == ()
    assert workflow.selected((), ("mpps",), ("reset", "complete")) == ()  # nothing to complete
    assert workflow.selected((), ("mpps",), ("reset", "start_procedure")) == ("workflow.start_procedure",)
    assert workflow.selected((), ("store",), every) == ("workflow.acquire",)  # MPPS not initiated
    assert workflow_metrics(("store",), ("acquire",)) == ("workflow.acquire",)  # acquire needs no reset


def _context(initiates: tuple[str, ...], actions: tuple[str, ...], phase: bool = True) -> SuiteContext:
    device = Endpoint("DEV", "127.0.0.1", 11112)
    return SuiteContext(
        run_dir="/nonexistent",
        device=device,
        pacs=device,
        pacs_storage="/nonexistent",
        modality_ae_title="PGSUITES",
        services=("echo",),
        corpus_seed=1,
        initiates=initiates,
        actions={a: {} for a in actions},
        performance={"metrics": []} if phase else {},
    )


def test_an_archive_keeps_its_cases_and_a_modality_gains_its_workflow_case() -> None:
    def ids(context: SuiteContext | None) -> list[str]:
        return [str(p.id) for p in _params(context)]

    assert ids(_context((), ())) == list(METRICS)  # an archive: the cases of today, no more
    assert ids(_context(("store",), ("reset",))) == list(METRICS)
    assert ids(_context(("mwl", "store"), ("acquire",))) == [*METRICS, "workflow.acquire"]
    modality = _context(("mwl", "mpps", "store"), ("reset", "start_procedure", "acquire", "complete"))
    assert ids(modality) == [*METRICS, "workflow.acquire", "workflow.start_procedure", "workflow.complete"]
    assert ids(_context(("mpps",), ("start_procedure", "complete"))) == list(METRICS)  # no reset: no MPPS metric
    # Without the phase: the cases of before the MPPS metrics (acquire's not applicable, as it was)
    unmeasured = _context(("mwl", "mpps", "store"), ("reset", "start_procedure", "acquire", "complete"), phase=False)
    assert ids(unmeasured) == [*METRICS, "workflow.acquire"]
    assert ids(_context((), (), phase=False)) == list(METRICS)
    assert ids(None) == [*METRICS, *WORKFLOW_METRICS]  # collected without a run: every case
