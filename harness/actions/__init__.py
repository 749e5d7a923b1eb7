"""Device actions: what a suite can make the device do (command, http, dicom, prompt), done and recorded."""

from harness.actions.broker import HARNESS_KINDS, ActionBroker
from harness.actions.check import check_actions
from harness.actions.client import ActionClient
from harness.actions.result import DONE, ERROR, FAILED, OUTCOMES, TIMEOUT, ActionError, ActionResult

__all__ = [
    "DONE",
    "ERROR",
    "FAILED",
    "HARNESS_KINDS",
    "OUTCOMES",
    "TIMEOUT",
    "ActionBroker",
    "ActionClient",
    "ActionError",
    "ActionResult",
    "check_actions",
]
