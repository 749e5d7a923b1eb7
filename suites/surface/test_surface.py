"""Exposed surface and software inventory of a containerised device: listening ports, packages, probe, labels.

The runner takes the inventory once the device answers (harness.inventory, written to
inventory.json); this case records it, so the comparison reads like "openssl 3.0.11 → 3.0.15;
tcp/{http} no longer listening". A newly listening port reads as a loosening (`exposure`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.context import SuiteContext
from harness.model import Observation
from harness.plugin import Observe

# The observation of harness.inventory that holds the installed software, {package: version}.
_SOFTWARE = "packages"


def test_inventory(patchgate_context: SuiteContext, observe: Observe) -> None:
    if not patchgate_context.inventory:
        pytest.skip("not applicable: the device runs as a process, not a container")
    data = json.loads(Path(patchgate_context.inventory).read_text(encoding="utf-8"))
    if "error" in data:
        pytest.fail(f"no inventory of the device container: {data['error']}")
    for name, value, security in data["observations"]:
        # Tagged, so report.html lists its changes under Software changes whatever this case is called.
        tags = (Observation.INVENTORY,) if name == _SOFTWARE else ()
        observe(name, value, security=security, tags=tags)
