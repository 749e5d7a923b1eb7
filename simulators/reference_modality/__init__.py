"""The reference modality: an embedded device that initiates IHE Scheduled Workflow, in variants that stand for patches.

    python -m simulators.reference_modality --variant clean --ae-title REFMOD --port 11113 --http-port 8042 \\
        --ris PGRIS=127.0.0.1:11114 --pacs PGPACS=127.0.0.1:11112 --state /tmp/refmod [--date YYYYMMDD]
    python -m simulators.reference_modality ctl --control http://127.0.0.1:8042 acquire PGSPS0003

It listens for C-ECHO and for storage commitment reports on a new association (Push Model, SCP
role accepted), and takes orders on an HTTP control API (`control`); the `console` queries the
RIS's worklist, reports MPPS, sends images made from the corpus (`procedure`) to the PACS and
asks it for storage commitment. `behaviour.VARIANTS` holds what each variant does differently.
"""

from simulators.reference_modality.behaviour import DESCRIPTIONS, PERFORMANCE_METRICS, VARIANTS, Behaviour
from simulators.reference_modality.cli import main
from simulators.reference_modality.console import STATE, Console, ConsoleError, Peers

__all__ = [
    "DESCRIPTIONS",
    "PERFORMANCE_METRICS",
    "STATE",
    "VARIANTS",
    "Behaviour",
    "Console",
    "ConsoleError",
    "Peers",
    "main",
]
