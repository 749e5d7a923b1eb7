"""The suite context: where the device and simulators of one run listen, as the suites read it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.model import JSON, Endpoint

__all__ = ["SuiteContext"]


@dataclass(frozen=True)
class SuiteContext:
    """Everything a suite case needs to reach the device: written by the runner, read by the plugin (RunDir)."""

    run_dir: str
    device: Endpoint
    pacs: Endpoint
    pacs_storage: str  # where the PACS simulator files what it receives (C-MOVE destination)
    modality_ae_title: str
    services: tuple[str, ...]
    corpus_seed: int
    corpus_size: str = "small"  # simulators.corpus.CORPUS_SIZES; absent from contexts written before it existed
    corpus_sha256: str = ""  # the hash of the corpus this run sends, which the suites' must have; "" not checked
    corpus_identity: str = ""  # the run's identity tag ([corpus] identity = "per-run", simulators.corpus); "": fixed
    pki_dir: str = ""  # this run's test PKI (simulators.pki layout); "" when the run has none
    audit_log: str = ""  # JSON lines the audit record repository simulator writes; "" when none runs
    # Valid credentials the device knows, by identity kind (username, passcode, kerberos, saml, jwt).
    identity: Mapping[str, str] = field(default_factory=dict)
    inventory: str = ""  # inventory.json of a containerised device; "" for a process
    initiates: tuple[str, ...] = ()  # what the device starts on its own (DeviceSpec.initiates)
    # The device actions the profile declares (name -> ActionSpec.to_json()), the run's placeholder values
    # they are filled with, and the secrets masked in what they record (endpoints.json is 0600).
    actions: Mapping[str, JSON] = field(default_factory=dict)
    placeholders: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    ris: Endpoint | None = None  # the RIS simulator (MWL + MPPS SCP); None when the run starts none
    ris_requests: str = ""  # its request journal (simulators.ris.read_requests); "" when none runs
    commitment_log: str = ""  # the PACS simulator's storage commitment journal (simulators.commitment.read_journal)
    worklist_date: str = ""  # YYYYMMDD the run's worklist is scheduled on (one per validation); "" before it existed
    # A reserved port where the suites take storage commitment reports on a new association ({modality.port}); 0: none.
    modality_port: int = 0
    # The [performance] table when the phase runs (PerformanceSpec as JSON, plus "metrics": the selected metric
    # ids, "turn_timeout": seconds a turn may wait, "arrivals": the PACS simulator's arrival log, "ris_arrivals":
    # the RIS simulator's when one runs); {}: off.
    performance: Mapping[str, JSON] = field(default_factory=dict)
    # The [robustness] table when the phase runs (RobustnessSpec as JSON, plus "inputs": the selected input ids,
    # "window_timeout": seconds an attack window request may wait, a revival included); {}: off.
    robustness: Mapping[str, JSON] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: Mapping[str, JSON], run_dir: str) -> SuiteContext:
        """From endpoints.json; `run_dir` is where it was read (the run directory may have moved)."""
        return cls(
            run_dir=run_dir,
            device=Endpoint.from_json(d["device"]),
            pacs=Endpoint.from_json(d["pacs"]),
            pacs_storage=str(d["pacs_storage"]),
            modality_ae_title=str(d["modality_ae_title"]),
            services=tuple(d["services"]),
            corpus_seed=int(d["corpus_seed"]),
            corpus_size=str(d.get("corpus_size", "small")),
            corpus_sha256=str(d.get("corpus_sha256", "")),
            corpus_identity=str(d.get("corpus_identity", "")),
            pki_dir=str(d.get("pki_dir", "")),
            audit_log=str(d.get("audit_log", "")),
            identity={str(k): str(v) for k, v in d.get("identity", {}).items()},
            inventory=str(d.get("inventory", "")),
            initiates=tuple(str(i) for i in d.get("initiates", ())),
            actions={str(k): v for k, v in d.get("actions", {}).items()},
            placeholders={str(k): str(v) for k, v in d.get("placeholders", {}).items()},
            secrets=tuple(str(s) for s in d.get("secrets", ())),
            ris=Endpoint.from_json(d["ris"]) if isinstance(d.get("ris"), Mapping) else None,
            ris_requests=str(d.get("ris_requests", "")),
            commitment_log=str(d.get("commitment_log", "")),
            worklist_date=str(d.get("worklist_date", "")),
            modality_port=int(d.get("modality_port", 0)),
            performance=dict(d.get("performance") or {}),
            robustness=dict(d.get("robustness") or {}),
        )
