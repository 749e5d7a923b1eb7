"""`python -m simulators.attack`: run the robustness corpus against a loopback device, one line per input."""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from collections.abc import Sequence

from simulators.attack import CORPUS_VERSION, corpus_sha256, inputs
from simulators.attack.run import probe, run_input
from simulators.attack.wire import AttackError, Negotiated, loopback
from simulators.endpoint import Endpoint


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.attack", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="the device's address: 127.0.0.0/8 or ::1 only")
    parser.add_argument("--port", type=int, help="the device's DICOM port")
    parser.add_argument("--ae-title", default="ANY-SCP", help="the device's AE title (called AE; default ANY-SCP)")
    parser.add_argument("--calling", default="PGATTACK", help="our AE title (calling AE; default PGATTACK)")
    parser.add_argument("--only", action="append", default=[], metavar="GLOB", help="input ids to run (repeatable)")
    parser.add_argument("--seed", type=int, default=1422, help="corpus seed (default 1422)")
    parser.add_argument("--deadline", type=float, default=8.0, help="seconds to wait for a reaction (default 8)")
    parser.add_argument("--health-timeout", type=float, default=6.0, help="seconds per C-ECHO try after (default 6)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    parser.add_argument("--list", action="store_true", help="list the inputs and the corpus hash; send nothing")
    args = parser.parse_args(argv)
    chosen = [i for i in inputs(args.seed) if not args.only or any(fnmatch.fnmatchcase(i.id, g) for g in args.only)]
    if args.list:
        for i in chosen:
            print(f"{i.id:<30} {i.layer:<5} {i.phase:<10} {i.service:<5} {i.description}")
        print(f"corpus version {CORPUS_VERSION}, seed {args.seed}, sha256 {corpus_sha256(args.seed)}")
        return 0
    if args.port is None:
        parser.error("--port is required (or --list)")
    if not loopback(args.host):
        parser.error(f"--host {args.host}: only 127.0.0.0/8 or ::1 (the corpus is never sent off this machine)")
    if not chosen:
        parser.error(f"--only {' '.join(args.only)}: no input id matches (see --list)")
    endpoint = Endpoint(args.ae_title, args.host, args.port)
    try:
        got = probe(endpoint, deadline=args.deadline, calling=args.calling)
    except AttackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not isinstance(got, Negotiated):
        print(
            f"error: {endpoint.host}:{endpoint.port} refused a valid C-ECHO association: {got.detail}", file=sys.stderr
        )
        return 2
    print(f"# {args.ae_title}@{args.host}:{args.port}: maximum length {got.max_length}, seed {args.seed}", flush=True)
    unhealthy = 0
    for item in chosen:
        try:
            outcome = run_input(
                item, endpoint, negotiated=got, deadline=args.deadline, health_timeout=args.health_timeout
            )
        except AttackError as exc:
            print(f"error: {item.id}: {exc}", file=sys.stderr)
            return 2
        unhealthy += outcome.health is not None and not outcome.health.ok
        print(json.dumps(outcome.to_json()) if args.json else outcome.line(), flush=True)
    return 1 if unhealthy else 0


if __name__ == "__main__":
    sys.exit(main())
