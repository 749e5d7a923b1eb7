"""The worklist query a device makes at its console (IHE RAD-5): the keys and values it asks the RIS, and the answers."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.plugin import Observe
from suites.workflow._procedure import Procedure, mwl_query


@pytest.mark.initiates("mwl")
@pytest.mark.action("query_worklist")
def test_worklist_query(procedure: Callable[[str], Procedure], observe: Observe) -> None:
    """Modality Worklist C-FIND (PS3.4 K.6.1.2; IHE RAD TF-2 4.5): what was asked, of whom, and answered.

    `mwl.query.keys` are the identifier's keywords (SPS items nested as `Seq>Key`), `mwl.query.values`
    the matching values (the run's worklist date as `<worklist-date>`), `mwl.query.kind` whether it
    is a broad query (station, modality, date) or a patient-based one (IHE RAD TF-2 4.5.4.1.2).
    One list entry per C-FIND the device sent.
    """
    proc = procedure("SPS-1")  # for the journal marks only: the query is about no item
    result = proc.act("query_worklist", item=False)
    queries = [mwl_query(line, proc.worklist_date) for line in proc.wait_find(result.settle)]
    for name in ("keys", "values", "kind", "answers"):
        key = "mwl.answers" if name == "answers" else f"mwl.query.{name}"
        observe(key, [q[name] for q in queries])
    observe("mwl.association", [{k: q[k] for k in ("calling_ae", "called_ae", "status")} for q in queries])
    assert queries, f"the device's query_worklist action sent no MWL C-FIND to the RIS within {result.settle:g} s"
    failed = [q["status"] for q in queries if q["status"] != "0x0000"]
    assert not failed, f"the RIS refused the device's worklist query: {failed} (see mwl.query.keys / values)"
