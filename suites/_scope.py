"""A run's own objects among a C-FIND's matches, when each run has its own corpus identities."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace

from pydicom.dataset import Dataset

from simulators.corpus import CORPUS_PATIENT, UID_ROOT, CorpusItem
from simulators.modality import FindResult

__all__ = ["Scope"]

_LOG = logging.getLogger("suites.scope")
_UNIQUE_KEYS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


class Scope:
    """Which matches are the run's: with per-run identities, a device that keeps what earlier runs stored
    answers with their objects too, and those say nothing about this run's device ([corpus] identity).

    A match is another run's when it names a corpus patient or a corpus UID (under UID_ROOT) that this
    run's corpus does not have; what the device made itself, and matches naming nothing, stay. With the
    fixed identity (`identity` ""), every match stays: the suites observe what they always did.
    """

    def __init__(self, items: Iterable[CorpusItem], identity: str) -> None:
        self.identity = identity
        own = list(items)
        self._patients = {i.patient_id for i in own}
        self._uids = {u for i in own for u in (i.study_instance_uid, i.series_instance_uid, i.sop_instance_uid)}

    def own(self, result: FindResult) -> FindResult:
        """`result` with other runs' matches left out (and logged: how many)."""
        if not self.identity:
            return result
        kept = tuple(m for m in result.matches if not self._foreign(m))
        if len(kept) == len(result.matches):
            return result
        _LOG.info(
            "left out %d of %d matches: other runs' objects", len(result.matches) - len(kept), len(result.matches)
        )
        return replace(result, matches=kept)

    def _foreign(self, match: Dataset) -> bool:
        patient = str(match.get("PatientID", "") or "")
        if CORPUS_PATIENT.fullmatch(patient) and patient not in self._patients:
            return True
        for keyword in _UNIQUE_KEYS:
            uid = str(match.get(keyword, "") or "")
            if uid.startswith(UID_ROOT) and uid not in self._uids:
                return True
        return False
