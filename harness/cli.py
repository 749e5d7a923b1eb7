"""The `patchgate` command: validate, run, compare, plan, variants, devices, sweep, images."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

# Only what the signal handler and the error path need, so both are ready within Python's own start-up.
from harness import __version__
from harness.cancel import cancel_runs
from harness.errors import HarnessError, RunDirError, printable

if TYPE_CHECKING:
    from harness.profile import Profile

__all__ = ["main"]

_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
_PERFORMANCE_HELP = "run the performance phase after the suites, whatever the profile's [performance] enabled says"
_ROBUSTNESS_HELP = "run the robustness corpus after the suites, whatever the profile's [robustness] enabled says"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="patchgate",
        description="Prove a security patch did not change what a DICOM device does.",
    )
    parser.add_argument("--version", action="version", version=f"patchgate {__version__}")
    parser.add_argument("--debug", action="store_true", help="on an error, show its traceback too")
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
    v.add_argument("--performance", action="store_true", help=_PERFORMANCE_HELP)
    v.add_argument("--robustness", action="store_true", help=_ROBUSTNESS_HELP)
    v.add_argument(
        "--report-templates",
        type=Path,
        metavar="DIR",
        help="templates overriding report.html's (blocks logo, signoff, ...)",
    )
    v.add_argument(
        "--force",
        action="store_true",
        help="replace a previous validation in --out (only patchgate's own outputs are removed)",
    )
    _output_options(v)

    r = sub.add_parser("run", help="run one variant of a device into a run directory")
    r.add_argument("--profile", type=Path, required=True)
    r.add_argument("--variant", required=True, help="variant name in the profile (baseline, candidate, ...)")
    r.add_argument("--role", choices=("baseline", "candidate"), help="default: the variant name if it is one of these")
    r.add_argument("--replica", type=int, default=1)
    r.add_argument("--out", type=Path, required=True, help="run directory to create")
    r.add_argument("--performance", action="store_true", help=_PERFORMANCE_HELP)
    r.add_argument("--robustness", action="store_true", help=_ROBUSTNESS_HELP)
    r.add_argument(
        "--worklist-date",
        metavar="YYYYMMDD",
        default="",
        help="the RIS simulator's worklist date (default: today, UTC); a validation's runs need one date",
    )

    c = sub.add_parser("compare", help="compare run directories, write reports, exit with the verdict")
    c.add_argument("--baseline", type=Path, action="append", required=True, help="baseline run directory (repeat)")
    c.add_argument("--candidate", type=Path, required=True, help="candidate run directory")
    c.add_argument("--profile", type=Path, help="profile whose expected-change policy applies")
    c.add_argument("--policy", type=Path, action="append", default=[], help="expected-change policy TOML (repeat)")
    c.add_argument("--out", type=Path, required=True, help="where comparison.json and the reports go")
    c.add_argument(
        "--allow-mixed",
        action="store_true",
        help="compare runs of another device, corpus or profile anyway: warnings, not INCONCLUSIVE",
    )
    c.add_argument(
        "--report-templates",
        type=Path,
        metavar="DIR",
        help="templates overriding report.html's (blocks logo, signoff, ...)",
    )
    _output_options(c)

    p = sub.add_parser(
        "plan",
        help="print the run and compare jobs of a validation of each profile, as JSON for a CI matrix",
        description="Print, as JSON, the jobs that give validate's verdict for each profile on separate CI agents: "
        "a `patchgate run` per baseline replica and candidate, each into its own directory, then a `patchgate "
        "compare` per device. --format github: one line, {runs: {include: [...]}, compares: {include: [...]}}, "
        "two strategy.matrix values for fromJSON; --format gitlab: a child pipeline for trigger:include:artifact. "
        "docs/scaling.md shows both workflows.",
    )
    p.add_argument("profiles", nargs="+", type=str, metavar="PROFILE", help="device profile TOML (relative paths)")
    p.add_argument("--replicas", type=int, default=2, help="baseline replicas per device (default 2, at least 2)")
    p.add_argument(
        "--out", default="patchgate-plan", help="where the jobs write, a folder per device (default: patchgate-plan)"
    )
    p.add_argument("--format", choices=("github", "gitlab"), default="github", help="default: github")
    p.add_argument("--policy", action="append", default=[], help="extra expected-change policy TOML (repeat)")
    p.add_argument("--gitlab-tag", action="append", default=[], help="runner tag of the GitLab jobs (repeat)")
    p.add_argument("--performance", action="store_true", help=_PERFORMANCE_HELP)
    p.add_argument("--robustness", action="store_true", help=_ROBUSTNESS_HELP)
    p.add_argument(
        "--worklist-date", metavar="YYYYMMDD", default="", help="every run's worklist date (default: today, UTC)"
    )

    sub.add_parser("variants", help="list the reference device's and the reference modality's variants")
    sub.add_parser("devices", help="list the device profiles shipped with patchgate (paths for --profile)")
    sub.add_parser(
        "sweep", help="remove the containers and networks of runs whose harness process is gone (after a kill)"
    )

    i = sub.add_parser("images", help="container images: build the simulator and device images offline")
    i.add_argument("action", choices=("build",))
    i.add_argument("--force", action="store_true", help="rebuild even when an image is up to date")
    i.add_argument(
        "--only", action="append", default=[], help="base, simulators, orthanc, dcmtk or orthanc-security (repeat)"
    )
    e = sub.add_parser(
        "verify", help="check an output directory against its signed evidence.json (exit 0 intact, 1 not)"
    )
    e.add_argument("dir", type=Path, metavar="DIR", help="output directory of validate or compare")
    e.add_argument("--key", type=Path, metavar="PUB.pem", help="trusted public key (default: evidence.pub in DIR)")
    k = sub.add_parser("pack", help="one .tar.gz of an output directory whose evidence pack verifies")
    k.add_argument("dir", type=Path, metavar="DIR", help="output directory of validate or compare")
    k.add_argument("-o", "--output", type=Path, metavar="FILE.tar.gz", help="default: DIR.tar.gz beside DIR")
    for command in (v, c):
        command.add_argument(
            "--signing-key",
            type=Path,
            metavar="FILE",
            help="Ed25519 private key (PEM PKCS8) signing evidence.json (default: a new key for this run)",
        )
    for command in sub.choices.values():  # after the subcommand too; SUPPRESS keeps a --debug given before it
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def _output_options(command: argparse.ArgumentParser) -> None:
    """How much a verdict's command prints on stdout; errors and progress go to stderr whatever is chosen."""
    said = command.add_mutually_exclusive_group()
    said.add_argument("-q", "--quiet", action="store_true", help="print only the VERDICT line (and errors)")
    said.add_argument(
        "-v", "--verbose", action="store_true", help="list every regressed case instead of grouping them by test"
    )
    said.add_argument(
        "--json",
        action="store_true",
        help="print the verdict, its reasons and the counts as one JSON document, and nothing else, on stdout",
    )


def _say(args: argparse.Namespace, text: str) -> None:
    """A line about the work (not the verdict): stdout normally, stderr under --json, nowhere under --quiet."""
    if not args.quiet:
        print(text, file=sys.stderr if args.json else sys.stdout)


def _finish(validation_comparison: object, reports: dict[str, Path], started: float, args: argparse.Namespace) -> int:
    import json

    from harness.model import Comparison, Verdict
    from harness.report.terminal import colour_wanted, summary_document, summary_table

    assert isinstance(validation_comparison, Comparison)
    seconds = time.monotonic() - started
    colour = colour_wanted(sys.stdout, os.environ)
    if args.json:
        document = summary_document(validation_comparison)
        document.update(reports={k: str(v) for k, v in sorted(reports.items())}, seconds=round(seconds, 1))
        print(json.dumps(document, ensure_ascii=False, indent=2))
    elif args.quiet:
        print(summary_table(validation_comparison, colour=colour).splitlines()[-1])
    else:
        print(summary_table(validation_comparison, verbose=args.verbose, colour=colour))
        for name, path in sorted(reports.items()):
            print(f"  {name:<12} {printable(str(path))}")
        print(f"  took {seconds:.1f} s")
    verdict = validation_comparison.verdict
    if verdict is Verdict.INCONCLUSIVE:
        reason = validation_comparison.reasons[0] if validation_comparison.reasons else "see the report"
        print(f"patchgate: error: INCONCLUSIVE: {printable(reason)}", file=sys.stderr)
    return verdict.exit_code


def _validate(args: argparse.Namespace, started: float) -> int:
    from harness.launch import forkserver

    forkserver.warm()  # its imports (a second) overlap ours, the profile's and the runs' set-up: the first run needs it
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
    profile = _with_phases(profile, args)
    if args.replicas < 1:
        raise HarnessError("--replicas must be at least 1", hint="2 (the default) measures noise")
    _check_report_templates(args)
    _output_dir(args.out)
    _check_previous(args.out, args.force)
    _say(args, f"patchgate {__version__}: validating {printable(title)}; output in {printable(str(args.out))}")
    result = run_validation(
        profile,
        args.out,
        replicas=args.replicas,
        concurrent=not args.serial,
        policy_files=args.policy,
        progress=None if args.quiet else ProgressLine(),
        report_templates=args.report_templates,
        replace_previous=args.force,
        signing_key=args.signing_key,
    )
    return _finish(result.comparison, result.reports, started, args)


def _run(args: argparse.Namespace) -> int:
    from harness.model import RunStatus
    from harness.plan import worklist_date
    from harness.profile import load_profile
    from harness.runner import RunRequest, run_variant
    from harness.validation import ProgressLine

    date = worklist_date(args.worklist_date) if args.worklist_date else ""
    profile = _with_phases(load_profile(args.profile), args)
    profile.variant(args.variant)
    _output_dir(args.out)
    role = args.role or (args.variant if args.variant in ("baseline", "candidate") else "candidate")
    progress = ProgressLine()
    manifest = run_variant(RunRequest(profile, args.variant, role, args.replica, args.out, date), progress)
    progress.done()
    print(printable(f"{manifest.run_id}: {manifest.status.value}, {manifest.cases_collected} cases, {args.out}"))
    if manifest.status is not RunStatus.COMPLETED:
        raise HarnessError(f"{args.out}: run {manifest.status.value}: {printable(manifest.status_detail)}")
    return 0


def _compare(args: argparse.Namespace, started: float) -> int:
    from harness.profile import load_profile
    from harness.validation import compare_runs, policy_for, read_runs

    profile = load_profile(args.profile) if args.profile else None
    policy = policy_for(profile, args.policy)
    _check_report_templates(args)
    _output_dir(args.out)
    *baselines, candidate = read_runs([*args.baseline, args.candidate])
    result = compare_runs(
        baselines,
        candidate,
        policy,
        args.out,
        report_templates=args.report_templates,
        allow_mixed=args.allow_mixed,
        signing_key=args.signing_key,
        ticket_url=profile.ticket_url if profile is not None else "",
    )
    return _finish(result.comparison, result.reports, started, args)


def _plan(args: argparse.Namespace) -> int:
    from harness.plan import make_plan, render

    plan = make_plan(
        args.profiles, replicas=args.replicas, root=args.out, policy=args.policy,
        performance=args.performance, robustness=args.robustness, date=args.worklist_date,
    )  # fmt: skip
    for warning in plan.warnings:
        print(f"patchgate: warning: {printable(warning)}", file=sys.stderr)
    print(render(plan, args.format, tags=args.gitlab_tag))
    return 0


def _with_phases(profile: Profile, args: argparse.Namespace) -> Profile:
    """The profile with its [performance] and [robustness] phases switched on by `--performance` / `--robustness`."""
    import dataclasses

    if args.performance:
        profile = dataclasses.replace(profile, performance=dataclasses.replace(profile.performance, enabled=True))
    if args.robustness:
        profile = dataclasses.replace(profile, robustness=dataclasses.replace(profile.robustness, enabled=True))
    return profile


def _check_report_templates(args: argparse.Namespace) -> None:
    """A bad --report-templates fails before any run, not after minutes of them."""
    if args.report_templates is not None:
        from harness.report.html import check_templates

        check_templates(args.report_templates)


def _output_dir(path: Path) -> None:
    """Make `--out` and prove it writable, so a bad one fails at once on one line, not as a run's traceback."""
    from harness.rundir import storage_error

    for folder in (path, *path.parents):
        if folder.exists() and not folder.is_dir():
            what = "is a file" if folder == path else f"is under {printable(str(folder))}, a file"
            raise RunDirError(f"--out {path}: {what}, not a directory", hint="choose a directory path for --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise storage_error(exc, path) from None


def _check_previous(out: Path, force: bool) -> None:
    """A previous validation in --out: refused before any run starts, unless --force replaces it."""
    from harness.rundir import OutDir

    where = OutDir(out)
    with where.lock():  # one that is being written is "another patchgate is writing here", not a finished one
        held = where.holds_validation()
    if not force and held:
        raise RunDirError(
            f"--out {out}: already holds a validation",
            hint="--force replaces it (only patchgate's own outputs are removed), or choose another --out",
        )


def _sweep() -> int:
    from harness.launch.engine import docker_client, sweep

    removed = sweep(docker_client())
    for name in removed:
        print(f"removed {printable(name)}")
    print(f"{len(removed)} container(s) and network(s) of killed runs removed")
    return 0


def _devices() -> int:
    from harness.shipped import devices_root, shipped_profiles

    profiles = shipped_profiles()
    root = printable(str(devices_root()))
    print(f"device profiles shipped with patchgate, in {root} (patchgate validate --profile {root}/NAME):")
    width = max((len(p.name) for p in profiles), default=0)
    for p in profiles:
        said = f"{p.device}: {p.candidate}" if p.candidate else p.device
        print(f"  {printable(p.name):<{width}}  {printable(said)}")
    return 0


def _variants() -> int:
    from harness.demo import known_variants
    from simulators.reference_modality import DESCRIPTIONS as MODALITY_VARIANTS

    groups = (
        ("reference device (patchgate validate --demo VARIANT)", known_variants()),
        ("reference modality (devices/reference-modality/profile.toml, --variant VARIANT)", MODALITY_VARIANTS),
    )
    width = max(len(name) for _, variants in groups for name in variants)
    for n, (heading, variants) in enumerate(groups):
        print(f"{chr(10) if n else ''}{heading}:")
        for name, description in sorted(variants.items()):
            print(f"  {name:<{width}} {description}")
    return 0


class _Signalled(KeyboardInterrupt):
    """KeyboardInterrupt from a signal handler; caught as one by the runs.

    A subclass: CPython marks a KeyboardInterrupt (that very class) leaving an exec() of source text
    as unhandled, and `python -m` then ends by SIGINT even after we caught it; dataclasses build their
    methods that way, so a signal during almost any import did it (test_sigterm_anywhere_in_start_up).
    """


class _Interrupt:
    """SIGTERM, SIGHUP and Ctrl-C: cancel every run, and interrupt the main thread once.

    It imports nothing: a signal can land while a module is half imported, and an import of it
    from the handler then fails. A second signal does not interrupt the cleanup the first started.
    """

    def __init__(self) -> None:
        self.raised = False
        self.signalled = False  # a signal came, whether or not its exception reached main()

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.signalled = True
        cancel_runs()
        if not self.raised:
            self.raised = True
            raise _Signalled


def _quiet_unraisable(hook: Callable[[Any], object]) -> Callable[[Any], object]:
    """sys.unraisablehook that says nothing of our own interrupt: raised in a __del__ or a weakref
    callback, Python swallows it and prints a traceback; main() still ends the command with 130."""

    def unraisable(info: Any) -> object:
        if isinstance(info.exc_value, _Signalled):
            return None
        return hook(info)

    return unraisable


def _lines(text: str) -> str:
    """`text` with each line's control characters escaped; a profile's list of problems keeps its lines."""
    return "\n".join(printable(line) for line in text.splitlines())


def _dispatch(args: argparse.Namespace, started: float) -> int:
    if args.command == "validate":
        return _validate(args, started)
    if args.command == "run":
        return _run(args)
    if args.command == "compare":
        return _compare(args, started)
    if args.command == "plan":
        return _plan(args)
    if args.command == "images":
        from harness.images import main as images_main

        return images_main([*(["--force"] if args.force else []), *(f"--only={o}" for o in args.only)])
    if args.command == "sweep":
        return _sweep()
    if args.command == "devices":
        return _devices()
    if args.command in ("verify", "pack"):
        from harness.evidence import pack_main, verify_main

        return verify_main(args.dir, args.key) if args.command == "verify" else pack_main(args.dir, args.output)
    return _variants()


def _internal(exc: BaseException) -> str:
    """An unexpected exception as `Type: message at harness/file.py:LINE`, naming patchgate's own innermost frame."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if any(f"/{pkg}/" in f.filename for pkg in ("harness", "simulators", "suites"))]
    where = ""
    if ours or frames:
        frame = (ours or frames)[-1]
        name = frame.filename
        for pkg in ("harness", "simulators", "suites"):
            if f"/{pkg}/" in name:
                name = pkg + "/" + name.rsplit(f"/{pkg}/", 1)[1]
        where = f" at {name}:{frame.lineno}"
    return printable(f"{type(exc).__name__}: {exc}{where}")


def main(argv: Sequence[str] | None = None) -> int:
    """The `patchgate` command: a verdict's exit code (0, 1, 2), 2 for any other failure, 130 on a signal."""
    started = time.monotonic()
    interrupt = _Interrupt()
    for signum in _SIGNALS:  # first: a signal during start-up must end as one line and 130, never a traceback
        signal.signal(signum, interrupt)
    sys.unraisablehook = _quiet_unraisable(sys.unraisablehook)
    debug = False
    try:
        args = _parser().parse_args(argv)
        debug = bool(args.debug)
        code = _dispatch(args, started)
        if interrupt.signalled:  # its exception was swallowed (a __del__, a weakref callback): still a signal
            raise _Signalled
        return code
    except KeyboardInterrupt:  # a signal, or a run that saw the cancel: stop the others too
        return _interrupted(interrupt)
    except BrokenPipeError:  # `patchgate devices | head`: the reader left; the outputs on disk are whole
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own flush at exit fails too
        return 128 + signal.SIGPIPE
    except HarnessError as exc:
        interrupt.raised = True  # a signal now would cut the one line short
        if debug:
            traceback.print_exc()
            if exc.detail:
                print(exc.detail.rstrip("\n"), file=sys.stderr)
        print(f"patchgate: error: {_lines(exc.one_line())}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - exit 1 would read as REGRESSED: a harness fault is never a verdict
        if interrupt.signalled:  # the signal's KeyboardInterrupt became another error: a SyntaxError when it cut
            return _interrupted(interrupt)  # short the import of unicodedata that compiling a \N{...} escape needs
        interrupt.raised = True
        if debug:
            traceback.print_exc()
        then = "see the traceback above" if debug else "run with --debug for the traceback"
        print(f"patchgate: internal error: {_internal(exc)} ({then})", file=sys.stderr)
        return 2
    finally:
        _exit_on_late_signals()


def _interrupted(interrupt: _Interrupt) -> int:
    """A signal ended the command: stop every run's containers and processes, say so in one line, 130."""
    interrupt.raised = True
    cancel_runs()
    print("patchgate: interrupted; the runs' containers and processes were stopped", file=sys.stderr)
    return 130


def _exit_on_late_signals() -> None:
    """From here on (the answer is out) a signal ends the process with 130 at once: no exception is left
    to raise into the interpreter's own exit, where it would print a traceback."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    for signum in _SIGNALS:
        signal.signal(signum, _late_signal)


def _late_signal(signum: int, frame: FrameType | None) -> None:
    os.write(2, b"patchgate: interrupted after its work was done\n")
    os._exit(130)


if __name__ == "__main__":
    sys.exit(main())
