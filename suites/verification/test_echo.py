"""Verification: the device answers C-ECHO with Success."""

from __future__ import annotations

import pytest

from harness.model import Endpoint
from harness.plugin import Observe
from simulators.modality import Modality


@pytest.mark.service("echo")
def test_echo(device: Endpoint, modality: Modality, observe: Observe) -> None:
    result = modality.echo(device)
    observe("echo", result.summary())
    assert result.accepted, f"association not accepted: {result.error}"
    assert result.status == 0x0000, f"C-ECHO status {result.status!r}"
