"""The `patchgate` command: validate, run, compare, variants."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from harness import __version__
from harness.errors import HarnessError
from harness.model import Comparison, RunStatus, Verdict

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="patchgate",
        description="Prove a security patch did not change what a DICOM device does.",
    )
    parser.add_argument("--version", action="version", version=f"patchgate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="run baseline twice and candidate once, compare, report, exit with the verdict")
    source = v.add_mutually_exclusive_group(required=True)
    source.add_argument("--profile", type=Path, help="device profile TOML")
    source.add_argument(
        "--demo",
        nargs="?",
        const="clean-rebuild",
        metavar="VARIANT",
        help="the embedded reference device; VARIANT is the patch (default: a clean patch; 'regression' changes several behaviours)",
    )
    v.add_argument("--out", type=Path, default=Path("patchgate-out"), help="output directory (default: patchgate-out)")
    v.add_argument("--replicas", type=int, default=2, help="baseline replicas used to measure noise (default 2)")
    v.add_argument("--serial", action="store_true", help="run baselines and candidate one after the other")
    v.add_argument("--policy", type=Path, action="append", default=[], help="extra expected-change policy TOML")
    v.add_argument(
        "--report-templates",
        type=Path,
        metavar="DIR",
        help="templates overriding report.html's (blocks logo, signoff, ...)",
    )

    r = sub.add_parser("run", help="run one variant of a device into a run directory")
    r.add_argument("--profile", type=Path, required=True)
    r.add_argument("--variant", required=True, help="variant name in the profile (baseline, candidate, ...)")
    r.add_argument("--role", choices=("baseline", "candidate"), help="default: the variant name if it is one of these")
    r.add_argument("--replica", type=int, default=1)
    r.add_argument("--out", type=Path, required=True, help="run directory to create")

    c = sub.add_parser("compare", help="compare run directories, write reports, exit with the verdict")
    c.add_argument("--baseline", type=Path, action="append", required=True, help="baseline run directory (repeat)")
    c.add_argument("--candidate", type=Path, required=True, help="candidate run directory")
    c.add_argument("--profile", type=Path, help="profile whose expected-change policy applies")
    c.add_argument("--policy", type=Path, action="append", default=[], help="expected-change policy TOML (repeat)")
    c.add_argument("--out", type=Path, required=True, help="where comparison.json and the reports go")
    c.add_argument(
        "--report-templates",
        type=Path,
        metavar="DIR",
        help="templates overriding report.html's (blocks logo, signoff, ...)",
    )

    sub.add_parser("variants", help="list the reference device's variants")
    sub.add_parser(
        "sweep", help="remove the containers and networks of runs whose harness process is gone (after a kill)"
    )

    i = sub.add_parser("images", help="container images: build the simulator and device images offline")
    i.add_argument("action", choices=("build",))
    i.add_argument("--force", action="store_true", help="rebuild even when an image is up to date")
    i.add_argument(
        "--only", action="append", default=[], help="base, simulators, orthanc, dcmtk or orthanc-security (repeat)"
    )
    return parser


def _finish(validation_comparison: object, reports: dict[str, Path], started: float) -> int:
    from harness.report.terminal import summary_table

    assert isinstance(validation_comparison, Comparison)
    print(summary_table(validation_comparison))
    for name, path in sorted(reports.items()):
        print(f"  {name:<12} {path}")
    print(f"  took {time.monotonic() - started:.1f} s")
    verdict = validation_comparison.verdict
    if verdict is Verdict.INCONCLUSIVE:
        reason = validation_comparison.reasons[0] if validation_comparison.reasons else "see the report"
        print(f"patchgate: error: INCONCLUSIVE: {reason}", file=sys.stderr)
    return verdict.exit_code


def _validate(args: argparse.Namespace, started: float) -> int:
    from harness.demo import REGRESSION_ALIAS, demo_profile
    from harness.profile import load_profile
    from harness.validation import ProgressLine, run_validation

    if args.demo is not None:
        profile = demo_profile(candidate=args.demo)
        changes = " (behaviour changes)" if args.demo == REGRESSION_ALIAS else ""
        title = f"reference device, patch {args.demo!r}{changes}"
    else:
        profile = load_profile(args.profile)
        title = f"{profile.device.name} from {args.profile}"
    if args.replicas < 1:
        raise HarnessError("--replicas must be at least 1", hint="2 (the default) measures noise")
    _check_report_templates(args)
    print(f"patchgate {__version__}: validating {title}; output in {args.out}")
    result = run_validation(
        profile,
        args.out,
        replicas=args.replicas,
        concurrent=not args.serial,
        policy_files=args.policy,
        progress=ProgressLine(),
        report_templates=args.report_templates,
    )
    return _finish(result.comparison, result.reports, started)


def _run(args: argparse.Namespace) -> int:
    from harness.profile import load_profile
    from harness.runner import RunRequest, run_variant
    from harness.validation import ProgressLine

    profile = load_profile(args.profile)
    profile.variant(args.variant)
    role = args.role or (args.variant if args.variant in ("baseline", "candidate") else "candidate")
    progress = ProgressLine()
    manifest = run_variant(RunRequest(profile, args.variant, role, args.replica, args.out), progress)
    progress.done()
    print(f"{manifest.run_id}: {manifest.status.value}, {manifest.cases_collected} cases, {args.out}")
    if manifest.status is not RunStatus.COMPLETED:
        raise HarnessError(f"{args.out}: run {manifest.status.value}: {manifest.status_detail}")
    return 0


def _compare(args: argparse.Namespace, started: float) -> int:
    from harness.profile import load_profile
    from harness.rundir import read_run
    from harness.validation import compare_runs, policy_for

    profile = load_profile(args.profile) if args.profile else None
    policy = policy_for(profile, args.policy)
    _check_report_templates(args)
    baselines = [read_run(d) for d in args.baseline]
    candidate = read_run(args.candidate)
    result = compare_runs(baselines, candidate, policy, args.out, report_templates=args.report_templates)
    return _finish(result.comparison, result.reports, started)


def _check_report_templates(args: argparse.Namespace) -> None:
    """A bad --report-templates fails before any run, not after minutes of them."""
    if args.report_templates is not None:
        from harness.report.html import check_templates

        check_templates(args.report_templates)


def _sweep() -> int:
    from harness.launch.engine import docker_client, sweep

    removed = sweep(docker_client())
    for name in removed:
        print(f"removed {name}")
    print(f"{len(removed)} container(s) and network(s) of killed runs removed")
    return 0


def _variants() -> int:
    from harness.demo import known_variants

    for name, description in sorted(known_variants().items()):
        print(f"  {name:<16} {description}")
    return 0


def _on_signal(signum: int, frame: object) -> None:
    # Every run stops its containers and processes in its own `finally`; tell the worker threads too.
    from harness.runner import cancel_runs

    cancel_runs()
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.monotonic()
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, _on_signal)
    try:
        if args.command == "validate":
            return _validate(args, started)
        if args.command == "run":
            return _run(args)
        if args.command == "compare":
            return _compare(args, started)
        if args.command == "images":
            from harness.images import main as images_main

            return images_main([*(["--force"] if args.force else []), *(f"--only={o}" for o in args.only)])
        if args.command == "sweep":
            return _sweep()
        return _variants()
    except HarnessError as exc:
        print(f"patchgate: error: {exc.one_line()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        from harness.runner import cancel_runs

        cancel_runs()
        print("patchgate: interrupted; the runs' containers and processes were stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
