"""The RIS simulator (MWL + MPPS SCP): scheduled items, worklist matching, MPPS rules, request journal, server.

    python -m simulators.ris --port 0 --out DIR [--ae-title PGRIS] [--station-ae AE] [--date YYYYMMDD] [--seed N]

prints `listening dicom=HOST:PORT` (simulators._net.parse_listening reads it) and serves until
SIGTERM/SIGINT, journalling every request to DIR/requests.jsonl.
"""

from simulators.ris.cli import main
from simulators.ris.journal import REQUESTS, RequestLine, read_requests
from simulators.ris.server import RisConfig, RisQuirks, RisSimulator
from simulators.ris.worklist import OTHER_STATION, ScheduledItem, scheduled_items, write_wl_folder

__all__ = [
    "OTHER_STATION",
    "REQUESTS",
    "RequestLine",
    "RisConfig",
    "RisQuirks",
    "RisSimulator",
    "ScheduledItem",
    "main",
    "read_requests",
    "scheduled_items",
    "write_wl_folder",
]
