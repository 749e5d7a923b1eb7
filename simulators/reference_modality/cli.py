"""The reference modality's command line: run it (DICOM listener + control API), or `ctl` to make a running one act."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pynetdicom import evt

from simulators._lifeline import stop_signals, wait_until_stopped
from simulators._net import LOOPBACK, format_address, parse_destination
from simulators.commitment_scu import CommitmentListener
from simulators.endpoint import Endpoint
from simulators.reference_modality.behaviour import DESCRIPTIONS, VARIANTS
from simulators.reference_modality.console import Console, Peers
from simulators.reference_modality.control import OPERATIONS, ControlServer, call
from simulators.reference_modality.procedure import now

__all__ = ["main"]

_LOG = logging.getLogger("simulators.reference_modality")
_PROG = "python -m simulators.reference_modality"
_DATE = re.compile(r"\d{8}")
_AE = re.compile(r"[\x20-\x5b\x5d-\x7e]{1,16}")
_CTL = ("worklist", "reset", "show", *OPERATIONS)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Run the reference modality in one variant until SIGTERM/SIGINT "
        f"(`{_PROG} ctl --help`: make a running one act).",
    )
    parser.add_argument("--variant", required=True, help=f"one of: {', '.join(VARIANTS)}")
    parser.add_argument("--ae-title", required=True, help="its AE title: the calling AE and the station it is")
    parser.add_argument("--host", default=LOOPBACK, help="address its DICOM listener binds (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="DICOM port: C-ECHO and commitment reports (0: any)")
    parser.add_argument("--http-port", type=int, required=True, help="control API port on 127.0.0.1 (0: any)")
    parser.add_argument("--ris", required=True, metavar="AE=HOST:PORT", help="the RIS: worklist and MPPS SCP")
    parser.add_argument("--pacs", required=True, metavar="AE=HOST:PORT", help="the PACS: storage and commitment SCP")
    parser.add_argument("--state", type=Path, required=True, help="folder for its state (state.json)")
    parser.add_argument(
        "--modality", default="", help="the modality it is (e.g. CT); default: each step's scheduled one"
    )
    parser.add_argument("--date", default="", help="the worklist date it asks for, YYYYMMDD (default: today, UTC)")
    parser.add_argument(
        "--service-ae", default="", help="a C-ECHO from this calling AE title resets the console (a service tool)"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds for each DICOM wait (default 10)")
    return parser


def _ctl_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{_PROG} ctl", description="Make a running reference modality act through its control API."
    )
    parser.add_argument("--control", required=True, metavar="URL", help="its control API, http://127.0.0.1:PORT")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the answer (default 60)")
    parser.add_argument("operation", choices=_CTL, help="what to do")
    parser.add_argument("sps_id", nargs="?", default="", help="the Scheduled Procedure Step ID (for step operations)")
    return parser


def _endpoint(parser: argparse.ArgumentParser, option: str, text: str) -> Endpoint:
    try:
        ae_title, (host, port) = parse_destination(text)
    except ValueError as exc:
        parser.error(f"{option}: {exc}")
    return Endpoint(ae_title, host, port)


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Every bad argument named, with what is expected, before anything listens."""
    if args.variant not in VARIANTS:
        parser.error(f"--variant {args.variant!r} is unknown; known: {', '.join(VARIANTS)}")
    for option, value in (("--ae-title", args.ae_title), ("--service-ae", args.service_ae or "X")):
        if not _AE.fullmatch(value):
            parser.error(f"{option} {value!r}: an AE title is 1-16 printable ASCII characters, no backslash")
    for option, port in (("--port", args.port), ("--http-port", args.http_port)):
        if not 0 <= port <= 65535:
            parser.error(f"{option} {port}: a port is 0-65535")
    if args.date and not _DATE.fullmatch(args.date):
        parser.error(f"--date {args.date!r}: expected YYYYMMDD")
    if not 0 < args.timeout <= 600:
        parser.error(f"--timeout {args.timeout:g}: expected 0 < seconds <= 600")


def serve(argv: Sequence[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _check(parser, args)
    peers = Peers(ris=_endpoint(parser, "--ris", args.ris), pacs=_endpoint(parser, "--pacs", args.pacs))
    behaviour = VARIANTS[args.variant]
    try:
        args.state.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"--state {args.state}: {exc.strerror or exc}")
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    _LOG.info("reference modality, variant %s: %s", args.variant, DESCRIPTIONS[args.variant])
    stop = stop_signals()  # before listening, so an early SIGTERM is not lost
    listener = CommitmentListener(
        args.ae_title,
        host=args.host,
        port=args.port,
        accept_scp_role=behaviour.accept_report_role,
        timeout=args.timeout,
    )
    date = args.date
    console = Console(
        ae_title=args.ae_title,
        peers=peers,
        behaviour=behaviour,
        listener=listener,
        state_dir=args.state,
        modality=args.modality.strip().upper(),
        date=(lambda: date) if date else (lambda: now().date),
        timeout=args.timeout,
    )
    try:
        control = ControlServer(console, LOOPBACK, args.http_port).start()  # first: up once C-ECHO answers
    except OSError as exc:
        print(f"{_PROG}: cannot listen on {LOOPBACK}:{args.http_port} (control API): {exc}", file=sys.stderr)
        return 1
    try:
        try:
            listener.start()
        except OSError as exc:
            print(f"{_PROG}: cannot listen on {args.host}:{args.port} (DICOM): {exc}", file=sys.stderr)
            return 1
        service_ae = args.service_ae

        def on_echo(event: Any) -> int:
            if service_ae and str(event.assoc.requestor.ae_title).strip() == service_ae:
                _LOG.info("C-ECHO from the service AE %s: console reset", service_ae)
                console.reset()
            return 0x0000

        listener.bind(evt.EVT_C_ECHO, on_echo)
        try:
            # For whoever started it with port 0: simulators._net.parse_listening reads this line.
            print(
                f"listening dicom={format_address(args.host, listener.port)} "
                f"http={format_address(LOOPBACK, control.port)}",
                flush=True,
            )
            wait_until_stopped(stop, _LOG)
        finally:
            listener.stop()
    finally:
        control.stop()
    return 0


def ctl(argv: Sequence[str]) -> int:
    """0 when the modality did it (2xx), 1 when it answered otherwise, 2 when it could not be asked."""
    parser = _ctl_parser()
    args = parser.parse_args(argv)
    step = args.operation in OPERATIONS or args.operation == "show"
    if step and not args.sps_id:
        parser.error(
            f"{args.operation} needs the Scheduled Procedure Step ID, e.g. `ctl ... {args.operation} PGSPS0001`"
        )
    if not step and args.sps_id:
        parser.error(f"{args.operation} takes no Scheduled Procedure Step ID")
    if args.operation == "show":
        method, path = "GET", f"/procedures/{args.sps_id}"
    elif step:
        method, path = "POST", f"/procedures/{args.sps_id}/{args.operation}"
    else:
        method, path = "POST", f"/{args.operation}"
    try:
        status, answer = call(args.control, method, path, args.timeout)
    except ValueError as exc:
        parser.error(str(exc))
    except OSError as exc:
        print(f"{_PROG} ctl: no answer from {args.control}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(answer, indent=1, ensure_ascii=False))
    return 0 if 200 <= status < 300 else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["ctl"]:
        return ctl(args[1:])
    return serve(args)
