"""The RIS simulator's command line: parse, start, print the `listening` line, serve until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import datetime
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from simulators._lifeline import stop_signals, wait_until_stopped
from simulators._net import LOOPBACK, format_address
from simulators._server import ACSE_TIMEOUT, MAX_ASSOCIATIONS
from simulators.corpus import DEFAULT_SEED
from simulators.ris.server import RisConfig, RisQuirks, RisSimulator
from simulators.ris.worklist import read_wl_folder

__all__ = ["build_parser", "main"]

_LOG = logging.getLogger("simulators.ris")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.ris", description="Run the RIS simulator (MWL + MPPS SCP) until SIGTERM/SIGINT."
    )
    parser.add_argument("--ae-title", default="PGRIS", help="AE title to answer as (default PGRIS)")
    parser.add_argument("--host", default=LOOPBACK, help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="port to listen on (0: any free port)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the request journal (requests.jsonl)")
    parser.add_argument(
        "--station-ae", default="PGMODALITY", help="the device's AE title: where its items are scheduled"
    )
    parser.add_argument("--date", default="", help="worklist date YYYYMMDD (default: today, UTC)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"corpus seed for UIDs (default {DEFAULT_SEED})")
    parser.add_argument(
        "--worklist",
        type=Path,
        default=None,
        metavar="DIR",
        help="serve the .wl files of DIR instead of its own items (an MWL device the harness seeds: {worklist.dir})",
    )
    parser.add_argument(
        "--arrivals",
        type=Path,
        default=None,
        metavar="FILE",
        help="append one JSON line per request received (with its MPPS status) to FILE, stamped with "
        "time.time_ns() (simulators._arrivals; default: none)",
    )
    parser.add_argument("--mpps-reopen", action="store_true", help="quirk: accept N-SET of a completed step")
    parser.add_argument("--ignore-station-ae", action="store_true", help="quirk: ignore the Scheduled Station AE key")
    parser.add_argument("--pn-case-sensitive", action="store_true", help="quirk: match person names case-sensitively")
    parser.add_argument("--max-associations", type=int, default=MAX_ASSOCIATIONS, help="concurrent associations")
    parser.add_argument(
        "--acse-timeout", type=float, default=ACSE_TIMEOUT, help="seconds for an A-ASSOCIATE-RQ, and ACSE waits"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    date = args.date or datetime.datetime.now(datetime.UTC).strftime("%Y%m%d")
    try:
        worklist = read_wl_folder(args.worklist) if args.worklist is not None else ()
        config = RisConfig(
            ae_title=args.ae_title,
            host=args.host,
            port=args.port,
            out=args.out,
            date=date,
            station_ae=args.station_ae,
            seed=args.seed,
            quirks=RisQuirks(
                mpps_reopen=args.mpps_reopen,
                ignore_station_ae=args.ignore_station_ae,
                pn_case_insensitive=not args.pn_case_sensitive,
            ),
            maximum_associations=args.max_associations,
            worklist=worklist,
            acse_timeout=args.acse_timeout,
            arrivals=args.arrivals,
        )
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    stop = stop_signals()  # before starting, so an early SIGTERM is not lost
    try:
        ris = RisSimulator(config).start()
    except OSError as exc:
        print(f"simulators.ris: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    try:
        # For whoever started it with --port 0: parse_listening() reads this line.
        print(f"listening dicom={format_address(config.host, ris.port)}", flush=True)
        wait_until_stopped(stop, _LOG)
    finally:
        ris.stop()
    return 0
