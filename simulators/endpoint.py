"""Where a DICOM application entity listens, and the JSON value type: what simulators and harness both speak."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = ["JSON", "PROBE_AE_TITLE", "Endpoint"]

# A JSON value as json.loads returns it.
JSON: TypeAlias = Any

# The calling AE title of the harness's readiness and health C-ECHOs to the simulators (not a peer's request).
PROBE_AE_TITLE = "PGPROBE"


@dataclass(frozen=True)
class Endpoint:
    """Where one DICOM application entity listens."""

    ae_title: str
    host: str
    port: int
    tls: bool = False

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> Endpoint:
        return cls(str(d["ae_title"]), str(d["host"]), int(d["port"]), bool(d.get("tls", False)))
