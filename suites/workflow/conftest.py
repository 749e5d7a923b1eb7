"""Fixtures of the workflow suites: the device's scheduled items, and a Procedure per case for one of them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from harness.context import SuiteContext
from harness.model import JSON
from harness.plugin import Act, not_applicable
from simulators.ris.worklist import ScheduledItem, scheduled_items
from suites._support import device_requests
from suites.workflow._procedure import Procedure


@pytest.fixture(scope="session")
def workflow_items(patchgate_context: SuiteContext) -> Mapping[str, ScheduledItem]:
    """The run's worklist items scheduled on the device's station, by key (SPS-1 ... SPS-6); the RIS serves the same."""
    context = patchgate_context
    if not context.worklist_date:
        not_applicable("the run records no worklist date (a run directory from before workflow suites existed)")
    station = context.device.ae_title.strip()
    items = scheduled_items(context.corpus_seed, context.worklist_date, station)
    return {item.key: item for item in items if item.station_ae == station}


@pytest.fixture
def procedure(
    patchgate_context: SuiteContext,
    workflow_items: Mapping[str, ScheduledItem],
    device_action: Act,
    commitment_journal: Callable[[], list[dict[str, JSON]]],
    pacs_storage: Path,
) -> Callable[[str], Procedure]:
    """`procedure("SPS-1")`: a Procedure for that item, with the journals marked and the PACS cleared from here on."""
    context = patchgate_context
    ris_requests = device_requests(Path(context.ris_requests)) if context.ris_requests else None

    def make(key: str) -> Procedure:
        if key not in workflow_items:
            raise KeyError(f"no worklist item {key!r} on station {context.device.ae_title}: {sorted(workflow_items)}")
        if "reset" in context.actions:
            device_action("reset")  # the device's own way to forget earlier cases; observed as action.reset
        return Procedure(
            workflow_items[key],
            device_action,
            station_ae=context.device.ae_title.strip(),
            worklist_date=context.worklist_date,
            ris_requests=ris_requests,
            commitment_journal=commitment_journal,
            pacs_storage=pacs_storage,
        )

    return make
