"""Access control: each service asked by an unknown calling AE, and with a wrong called AE title.

Either answer is legitimate (a PACS may be open or locked down); what matters is that it
does not change silently with a patch, so each case records who was let in to do what.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import pytest

from harness.model import Endpoint
from harness.plugin import Observe
from simulators.corpus import CorpusItem
from simulators.modality import Modality
from simulators.status import refused
from suites._support import SERVICES, ask

INTRUDER = "PGINTRUDER"
WRONG_CALLED = "NOTTHEDEVICE"


def _admitted(verdict: Mapping[str, Any]) -> bool:
    """Let in and served: the association accepted and no status that refuses (a Failure, by its DIMSE meaning).

    A warning (0xB000 coercion, 0xB007, 0x0107) was served; a refusal in the 0x01xx range (0x0122
    SOP class not supported, 0x0124 not authorised) was not. Counting by number range got both wrong.
    """
    statuses = verdict.get("statuses", [verdict.get("status")])
    return bool(verdict["association"]) and not any(s is not None and refused(s) for s in statuses)


def _verdict(result: Any) -> dict[str, Any]:
    """Let in or not, and what the device answered: the parts of a result that access control shapes."""
    summary = result.summary()
    admitted = bool(summary.get("accepted"))
    if "instances" in summary:  # a store: admitted only if the object was taken
        statuses = [i["status"] for i in summary["instances"]]
        return {"association": admitted, "statuses": statuses}
    return {"association": admitted, "status": summary.get("status")}


@pytest.mark.parametrize("service", SERVICES)
def test_unknown_calling_ae(
    service: str,
    device: Endpoint,
    pacs: Endpoint,
    corpus: Mapping[str, CorpusItem],
    observe: Observe,
    make_modality: Callable[[str], Modality],
) -> None:
    result = ask(service, make_modality(INTRUDER), device, corpus["CT-explicit"], pacs)
    verdict = _verdict(result)
    observe("access", verdict)
    observe("admitted", _admitted(verdict), security="exposure")
    assert result.accepted or result.error, "a refusal must say why"


@pytest.mark.parametrize("service", SERVICES)
def test_wrong_called_ae(
    service: str,
    device: Endpoint,
    pacs: Endpoint,
    modality: Modality,
    corpus: Mapping[str, CorpusItem],
    observe: Observe,
) -> None:
    result = ask(service, modality, replace(device, ae_title=WRONG_CALLED), corpus["CT-explicit"], pacs)
    verdict = _verdict(result)
    observe("access", verdict)
    observe("admitted", _admitted(verdict), security="exposure")
    assert result.accepted or result.error, "a refusal must say why"
