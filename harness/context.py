"""The suite context: where the device and simulators of one run listen, as endpoints.json in the run directory."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import RunDirError
from harness.model import Endpoint, to_json

__all__ = ["ENDPOINTS", "SuiteContext"]

ENDPOINTS = "endpoints.json"


@dataclass(frozen=True)
class SuiteContext:
    """Everything a suite case needs to reach the device: written by the runner, read by the plugin."""

    run_dir: str
    device: Endpoint
    pacs: Endpoint
    pacs_storage: str  # where the PACS simulator files what it receives (C-MOVE destination)
    modality_ae_title: str
    services: tuple[str, ...]
    corpus_seed: int
    pki_dir: str = ""  # this run's test PKI (simulators.pki layout); "" when the run has none
    audit_log: str = ""  # JSON lines the audit record repository simulator writes; "" when none runs
    # Valid credentials the device knows, by identity kind (username, passcode, kerberos, saml, jwt).
    identity: Mapping[str, str] = field(default_factory=dict)
    inventory: str = ""  # inventory.json of a containerised device; "" for a process

    def write(self) -> Path:
        path = Path(self.run_dir) / ENDPOINTS
        path.write_text(json.dumps(to_json(self), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, run_dir: Path) -> SuiteContext:
        path = run_dir / ENDPOINTS
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                run_dir=str(run_dir),
                device=Endpoint.from_json(d["device"]),
                pacs=Endpoint.from_json(d["pacs"]),
                pacs_storage=str(d["pacs_storage"]),
                modality_ae_title=str(d["modality_ae_title"]),
                services=tuple(d["services"]),
                corpus_seed=int(d["corpus_seed"]),
                pki_dir=str(d.get("pki_dir", "")),
                audit_log=str(d.get("audit_log", "")),
                identity={str(k): str(v) for k, v in d.get("identity", {}).items()},
                inventory=str(d.get("inventory", "")),
            )
        except FileNotFoundError:
            raise RunDirError(
                f"{path}: missing", hint="suites run inside `patchgate run`, which writes the endpoints"
            ) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise RunDirError(f"{path}: invalid endpoints file: {exc}", hint="rerun with `patchgate run`") from None
