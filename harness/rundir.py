"""The run directory: the one place that names its files and reads and writes them.

A run directory is self-contained: `manifest.json` (what ran, how it ended), `observations.jsonl`
(one line per finished case, appended; fsynced every SYNC_EVERY s), `endpoints.json` (where the suites find the
device and simulators), `progress.json` (cases collected), `junit.xml`, `allure-results/`,
`logs/`, the simulators' records, `actions/` + `actions.jsonl` (device actions: the channel
between suites and harness, and what each did), and `perf/` (the performance phase: the turn
channel, samples, rounds, resources). Nothing else in patchgate spells these names.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from harness.context import SuiteContext
from harness.errors import RunDirError
from harness.model import CaseRecord, Manifest, RunRecord, to_json

__all__ = [
    "LOCK_NAME",
    "MIN_FREE_BYTES",
    "OUTPUTS",
    "SYNC_EVERY",
    "CaseWriter",
    "OutDir",
    "RunDir",
    "claim_ticket",
    "free_bytes",
    "next_ticket",
    "read_run",
    "storage_error",
    "write_json_atomic",
    "writer_lock",
]

_Record = TypeVar("_Record")
# A run needs room for its records, logs and what the PACS simulator receives (about 2 MB for the demo,
# more for a clinical corpus); below this at the start it is refused, and a run that ends with less than
# _LOW_WATER left cannot be trusted (a simulator may have failed to store what it received).
MIN_FREE_BYTES = 64 * 1024 * 1024
SYNC_EVERY = 0.5  # s between two fsyncs of observations.jsonl: what a power cut can take of a run
LOCK_NAME = ".lock"  # the writer lock's file (writer_lock)
_LOW_WATER = 1024 * 1024


def _load(path: Path, parse: Callable[[Any], _Record], what: str, *, missing: str, invalid: str) -> _Record:
    """A JSON file of the run as a record; RunDirError naming the file when it is missing, unreadable or wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise TypeError(f"a JSON object was expected, not {type(data).__name__}")
        return parse(data)
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing", hint=missing) from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # a directory, not UTF-8, bad JSON
        raise RunDirError(f"{path}: {what}: {exc}", hint=invalid) from None


def storage_error(exc: OSError, where: Path) -> RunDirError:
    """A failed write as one line: a full disk and a read-only filesystem are said in words, naming the folder."""
    if exc.errno == errno.ENOSPC:
        return RunDirError(f"no space left on {where}", hint="free some space or choose another --out")
    if exc.errno == errno.EROFS:
        return RunDirError(f"{where}: read-only filesystem", hint="choose a writable --out")
    return RunDirError(f"{where}: cannot write: {exc.strerror or exc}", hint="check the --out directory")


def free_bytes(directory: Path) -> int:
    """Bytes free to this user where `directory` (or its nearest existing parent) lives."""
    for place in (directory, *directory.parents):
        if place.exists():
            return shutil.disk_usage(place).free
    return 0


def write_json_atomic(path: Path, data: object, mode: int = 0o644, *, sync: bool = True) -> Path:
    """Write JSON so a reader sees the old file or the new one, never half of one; no temporary is left behind.

    `sync=False` skips the fsync: still atomic for every reader, only not kept through a power cut (the
    performance phase's turn files, where an fsync on a busy disk would be idle time between blocks).
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        os.fchmod(fd, mode)  # an old temporary with looser bits keeps them otherwise
        with open(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise storage_error(exc, path.parent) from None
    return path


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """The numbered lines of `path`, each with its newline (a last one may lack it); none when it does not exist.
    A failing read is a RunDirError naming the file."""
    try:
        with path.open("rb") as handle:
            yield from enumerate(handle, start=1)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise RunDirError(f"{path}: cannot read: {exc.strerror or exc}", hint="rerun that variant") from None


# A case line decoded straight into its CaseRecord, in C: json.loads then from_json took twice as long, a third
# of reading a 10,000-case run (docs/benchmarks.md).
_DECODE = msgspec.json.Decoder(CaseRecord).decode


def _case(raw: bytes) -> CaseRecord:
    """One line as its CaseRecord. A line the typed decoder refuses goes through json and from_json, as every line
    did: their errors are the reader's, and what they accept that it does not (NaN, 1e400, a lone surrogate, a
    number where a string belongs) still reads as it did. What both accept, they read alike (tests/unit/test_rundir.py)."""
    try:
        return _DECODE(raw)
    except (msgspec.MsgspecError, RecursionError):  # json's limit is the interpreter's stack, not msgspec's
        return CaseRecord.from_json(json.loads(raw.decode("utf-8")))


_CLAIMS = 10_000  # tickets tried before giving up on claiming one (only another writer racing could use them up)


def claim_ticket(folder: Path, path_of: Callable[[int], Path], data: bytes, first: int) -> int:
    """The first free ticket from `first` whose request file `path_of(ticket)` now holds `data`.

    Claimed by creating the file exclusively (a hard link of a written temporary), so several suites
    processes can share a channel and its reader never sees half a request. RunDirError when it cannot.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".request.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)  # no fsync: the link makes it visible whole; it need not outlive a power cut
        finally:
            os.close(fd)
        try:
            for ticket in range(first, first + _CLAIMS):
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, path_of(ticket))
                    return ticket
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
    except OSError as exc:
        raise storage_error(exc, folder) from None
    raise storage_error(OSError(f"no free ticket after {_CLAIMS} tries"), folder)


def next_ticket(folder: Path) -> int:
    """One past the highest ticket whose request is in `folder` (1 when none is)."""
    numbers = (name.split(".", 1)[0] for name in (p.name for p in folder.glob("*.request.json")))
    return 1 + max((int(n) for n in numbers if n.isdigit()), default=0)


@contextlib.contextmanager
def writer_lock(directory: Path) -> Iterator[None]:
    """Hold the directory's writer lock (an OS lock, so a crashed owner releases it); a second writer is refused."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle = (directory / LOCK_NAME).open("a+", encoding="utf-8")
    except OSError as exc:
        raise storage_error(exc, directory) from None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise RunDirError(
                f"{directory}: another patchgate ({owner}) is writing here",
                hint="wait for it to finish, or choose another --out",
            ) from None
        with contextlib.suppress(OSError):  # who holds it, for the message above; the lock itself is what counts
            handle.truncate(0)
            handle.write(f"pid {os.getpid()}\n")
            handle.flush()
        yield


class CaseWriter:
    """Appends one JSON line per finished case, so a killed run keeps every finished case; fsyncs at most every
    SYNC_EVERY s and at close, so a power cut takes at most that much.

    Each line is written whole at once: the kernel keeps it through the process's death. An fsync per case
    was 259 of them a run, idle time in the suites' main thread between two cases.
    A write that fails (a full disk) is undone to the last whole line, so the file never ends torn.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._synced = time.monotonic()

    def write(self, record: CaseRecord) -> None:
        line = (json.dumps(record.to_json(), sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
        size = os.fstat(self._fd).st_size
        try:
            written = os.write(self._fd, line)
            if written != len(line):
                raise OSError(errno.ENOSPC, "short write")
            if time.monotonic() - self._synced >= SYNC_EVERY:
                os.fsync(self._fd)
                self._synced = time.monotonic()
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, size)
            raise storage_error(exc, self.path.parent) from None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.fsync(self._fd)
        with contextlib.suppress(OSError):
            os.close(self._fd)


@dataclass(frozen=True)
class RunDir:
    """One variant's run directory."""

    path: Path

    # Files and folders, named here only.
    @property
    def manifest(self) -> Path:
        return self.path / "manifest.json"

    @property
    def observations(self) -> Path:
        return self.path / "observations.jsonl"

    @property
    def endpoints(self) -> Path:
        return self.path / "endpoints.json"

    @property
    def progress(self) -> Path:
        return self.path / "progress.json"

    @property
    def junit(self) -> Path:
        return self.path / "junit.xml"

    @property
    def allure(self) -> Path:
        return self.path / "allure-results"

    @property
    def pytest_ini(self) -> Path:
        return self.path / "pytest.ini"

    @property
    def heartbeat(self) -> Path:
        return self.path / "heartbeat"  # touched while the run lives (simulators._lifeline)

    @property
    def inventory(self) -> Path:
        return self.path / "inventory.json"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def log(self, role: str) -> Path:
        """`logs/ROLE.log`: device, pacs, ris, arr, pytest."""
        return self.logs / f"{role}.log"

    @property
    def error(self) -> Path:
        return self.logs / "error.txt"

    @property
    def swept(self) -> Path:
        return self.logs / "swept.txt"

    @property
    def pki(self) -> Path:
        return self.path / "pki"

    @property
    def device_pki(self) -> Path:
        return self.path / "pki-device"  # what a device container sees of the PKI

    @property
    def device_workdir(self) -> Path:
        return self.path / "device"

    @property
    def worklist_root(self) -> Path:
        """An MWL device's seeded worklist: a folder per called AE title of .wl files ({worklist.root})."""
        return self.device_workdir / "worklist"

    @property
    def pacs_storage(self) -> Path:
        return self.path / "simulators" / "pacs"

    @property
    def commitment_journal(self) -> Path:
        """The PACS simulator's storage commitment journal (simulators.commitment.COMMITMENT)."""
        return self.pacs_storage / "commitment.jsonl"

    @property
    def ris_dir(self) -> Path:
        return self.path / "simulators" / "ris"

    @property
    def ris_requests(self) -> Path:
        """The RIS simulator's request journal (simulators.ris.REQUESTS)."""
        return self.ris_dir / "requests.jsonl"

    @property
    def audit_records(self) -> Path:
        return self.path / "simulators" / "arr" / "audit.jsonl"

    @property
    def actions(self) -> Path:
        """The device-action channel: the suites write `TICKET.request.json`, the harness `TICKET.result.json`."""
        return self.path / "actions"

    def action_request(self, ticket: str) -> Path:
        return self.actions / f"{ticket}.request.json"

    def action_result(self, ticket: str) -> Path:
        return self.actions / f"{ticket}.result.json"

    @property
    def actions_log(self) -> Path:
        return self.path / "actions.jsonl"  # one line per device action done, redacted

    @property
    def perf(self) -> Path:
        """The performance phase's folder (docs/design/load-and-attack.md, section 4)."""
        return self.path / "perf"

    @property
    def turns(self) -> Path:
        """The turn channel: the suites write `NNNN.request.json` and `NNNN.done.json`, the harness `NNNN.grant.json`."""
        return self.perf / "turns"

    def turn_request(self, ticket: int) -> Path:
        return self.turns / f"{ticket:04d}.request.json"

    def turn_grant(self, ticket: int) -> Path:
        return self.turns / f"{ticket:04d}.grant.json"

    def turn_done(self, ticket: int) -> Path:
        return self.turns / f"{ticket:04d}.done.json"

    @property
    def turns_closed(self) -> Path:
        """Written when the run's desk stopped: a suites process asking afterwards gets a stop at once."""
        return self.turns / "closed"

    @property
    def perf_samples(self) -> Path:
        return self.perf / "samples.jsonl"  # one line per block (the suites append)

    @property
    def perf_rounds(self) -> Path:
        return self.perf / "rounds.jsonl"  # one line per grant, done, leave (the harness's desk appends)

    @property
    def perf_resources(self) -> Path:
        return self.perf / "resources.jsonl"  # the device resource sampler's lines

    def perf_arrivals(self, role: str) -> Path:
        """`perf/arrivals/ROLE.jsonl`: a simulator's --arrivals log (pacs, ris)."""
        return self.perf / "arrivals" / f"{role}.jsonl"

    @property
    def robustness(self) -> Path:
        """The robustness phase's folder (docs/design/load-and-attack.md, section 4)."""
        return self.path / "robustness"

    @property
    def windows(self) -> Path:
        """The attack window channel: the suites write `NNNN.request.json`, the harness `NNNN.result.json`."""
        return self.robustness / "windows"

    def window_request(self, ticket: int) -> Path:
        return self.windows / f"{ticket:04d}.request.json"

    def window_result(self, ticket: int) -> Path:
        return self.windows / f"{ticket:04d}.result.json"

    @property
    def windows_closed(self) -> Path:
        """Written when the harness stopped answering window requests: a suites process asking then is told at once."""
        return self.windows / "closed"

    @property
    def robustness_reactions(self) -> Path:
        return self.robustness / "reactions.jsonl"  # one line per input, as the wire and the health check saw it

    @property
    def robustness_device(self) -> Path:
        return self.robustness / "device.jsonl"  # the exits and revivals the harness saw (the harness appends)

    # Reads and writes.
    def holds_run(self) -> bool:
        return self.manifest.exists() or self.observations.exists()

    def prepare(self) -> None:
        """Make the directory for a new run; RunDirError when it already holds one or cannot be written."""
        if self.holds_run():
            raise RunDirError(f"{self.path}: already holds a run", hint="choose an empty --out directory")
        free = free_bytes(self.path)
        if free < MIN_FREE_BYTES:
            raise RunDirError(
                f"no space left on {self.path}: {free // 1024} KiB free, a run needs at least "
                f"{MIN_FREE_BYTES // 2**20} MiB",
                hint="free some space or choose another --out",
            )
        try:
            self.logs.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, self.path) from None

    def discard_partial(self) -> None:
        """Remove what a killed suites process left half-written: its Allure writer (harness.batch.Stream) writes
        `*.tmp`, then renames."""
        for partial in self.allure.glob("*.tmp") if self.allure.is_dir() else ():
            with contextlib.suppress(OSError):
                partial.unlink()

    def space_problem(self) -> str:
        """Why the run's disk can no longer be trusted to have kept everything ("" when it can)."""
        free = free_bytes(self.path)
        if free < _LOW_WATER:
            return f"no space left on {self.path} ({free // 1024} KiB free at the end of the run)"
        return ""

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """The writer lock: held while a run writes here, so a second writer is refused at once."""
        return writer_lock(self.path)

    def write_manifest(self, manifest: Manifest) -> Path:
        return write_json_atomic(self.manifest, to_json(manifest))

    def read_manifest(self) -> Manifest:
        if not self.path.is_dir():
            raise RunDirError(
                f"{self.path}: run directory not found", hint="pass a directory written by `patchgate run`"
            )
        return _load(
            self.manifest,
            Manifest.from_json,
            "not a valid manifest",
            missing="the run did not finish; rerun it with `patchgate run`",
            invalid="rerun the run; do not edit manifests",
        )

    def case_writer(self) -> CaseWriter:
        return CaseWriter(self.observations)

    def read_cases(self) -> tuple[CaseRecord, ...]:
        """Every case line in order; a corrupted line is an error naming the file and line number.

        A last line without its newline is a write cut short (a killed writer): it is left out and
        said by `torn_tail()`, and every whole line before it is kept.
        """
        return tuple(self.iter_cases())

    def iter_cases(self) -> Iterator[CaseRecord]:
        """`read_cases` one case at a time, so a reader can keep less than every parsed line at once.

        Read line by line: a copy of the whole file (three, with its split) was 40 MiB at 10,000 cases, and the
        allocator kept it after the last run was read (peak RSS, docs/benchmarks.md).
        """
        path = self.observations
        for number, raw in _lines(path):
            if not raw.endswith(b"\n"):
                return  # a write cut short: left out, said by torn_tail()
            if not raw.strip():
                continue
            try:
                case = _case(raw)
            except UnicodeDecodeError as exc:
                raise RunDirError(f"{path}:{number}: not UTF-8 ({exc})", hint="rerun that variant") from None
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
                raise RunDirError(
                    f"{path}:{number}: corrupted observation line ({type(exc).__name__}: {exc})",
                    hint="the run directory was edited or truncated; rerun that variant",
                ) from None
            yield case

    def torn_tail(self) -> int:
        """Bytes of a last line cut short (no newline): 0 when the file ends whole or does not exist."""
        try:
            data = self.observations.read_bytes()
        except OSError:
            return 0
        return len(data) - (data.rfind(b"\n") + 1)

    def cases_finished(self) -> int:
        """How many case lines are written so far (cheap: counts lines, parses nothing)."""
        try:
            with self.observations.open("rb") as handle:
                return sum(1 for _ in handle)
        except OSError:
            return 0

    def read(self) -> RunRecord:
        """The run as a RunRecord (manifest plus cases)."""
        return RunRecord(str(self.path), self.read_manifest(), self.read_cases())

    def quoting_secrets(self) -> list[Path]:
        """The run's text files that may quote a secret once it ended: logs, endpoints, rendered device files, actions."""
        rendered = self.device_workdir / "files"
        files = [self.endpoints, *sorted(self.logs.glob("*")), *sorted(rendered.glob("*")), self.actions_log]
        files += sorted(self.actions.glob("*.json"))  # action requests carry a suite's values, results an answer
        return [path for path in files if path.is_file()]

    def write_context(self, context: SuiteContext) -> Path:
        """endpoints.json, 0600: it holds the device's identity credentials."""
        return write_json_atomic(self.endpoints, to_json(context), mode=0o600)

    def read_context(self) -> SuiteContext:
        return _load(
            self.endpoints,
            lambda d: SuiteContext.from_json(d, str(self.path)),
            "invalid endpoints file",
            missing="suites run inside `patchgate run`, which writes the endpoints",
            invalid="rerun with `patchgate run`",
        )

    def action_tickets(self) -> list[str]:
        """The tickets of every action request written so far, in name order (a written temporary is not one)."""
        suffix = ".request.json"
        if not self.actions.is_dir():
            return []
        return sorted(p.name.removesuffix(suffix) for p in self.actions.glob(f"*{suffix}"))

    def append_action(self, line: dict[str, Any]) -> None:
        """One line into actions.jsonl in a single O_APPEND write: the harness and the suites both append."""
        self.append_line(self.actions_log, line)

    def append_line(self, path: Path, line: dict[str, Any]) -> None:
        """One JSON line into one of the run's .jsonl files in a single O_APPEND write (concurrent writers interleave whole lines)."""
        data = (json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:
            raise storage_error(exc, path.parent) from None

    def read_actions(self) -> list[dict[str, Any]]:
        """actions.jsonl's whole lines, in order (a torn last line is left out)."""
        return self.read_lines(self.actions_log)

    def read_lines(self, path: Path) -> list[dict[str, Any]]:
        """A .jsonl file's whole lines, in order (a torn last line is left out; no file: none)."""
        try:
            whole = path.read_bytes().rpartition(b"\n")[0]
        except FileNotFoundError:
            return []
        return [json.loads(raw) for raw in whole.split(b"\n") if raw.strip()]

    def write_collected(self, cases: int) -> None:
        """How many cases the suites collected (the plugin writes it; the runner's progress reads it)."""
        write_json_atomic(self.progress, {"collected": cases})

    def drop_unfinished_progress(self) -> None:
        """Remove the temporary of a `write_collected` that a signal cut short (the writer's process is gone).

        A SIGTERM kills the suites process wherever it is; between write and rename it leaves
        `progress.json.tmp` behind. Only the runner calls this, once that process has ended.
        """
        self.progress.with_name(self.progress.name + ".tmp").unlink(missing_ok=True)

    def collected(self) -> int:
        try:
            return int(json.loads(self.progress.read_text(encoding="utf-8"))["collected"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0


# What a validation writes into its --out; `OutDir.clear` removes these and nothing else.
OUTPUTS = (
    "runs",
    "comparison.json",
    "report.html",
    "junit.xml",
    "allure-results",
    "evidence.json",
    "evidence.pub",
    LOCK_NAME,
)


@dataclass(frozen=True)
class OutDir:
    """A validation's output directory: the comparison, its reports, and one run directory per variant run."""

    path: Path

    def run(self, label: str) -> RunDir:
        """`runs/LABEL` (baseline-1, baseline-2, candidate-1)."""
        return RunDir(self.path / "runs" / label)

    @property
    def comparison(self) -> Path:
        return self.path / "comparison.json"

    @property
    def html(self) -> Path:
        return self.path / "report.html"

    @property
    def junit(self) -> Path:
        return self.path / "junit.xml"

    @property
    def allure(self) -> Path:
        return self.path / "allure-results"

    @property
    def evidence(self) -> Path:
        """The signed manifest of every file here (harness.evidence)."""
        return self.path / "evidence.json"

    @property
    def evidence_key(self) -> Path:
        """The public half of the key that signed `evidence` (PEM)."""
        return self.path / "evidence.pub"

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """The writer lock of a validation or comparison writing here."""
        return writer_lock(self.path)

    def holds_validation(self) -> bool:
        """A comparison, or a run of a validation, is already here."""
        runs = self.path / "runs"
        return self.comparison.exists() or (runs.is_dir() and any(RunDir(r).holds_run() for r in runs.iterdir()))

    def clear(self) -> None:
        """Remove a previous validation's outputs (`validate --force`); call it holding `lock()`.

        Only what a validation writes is removed, and only when that is all the directory holds: an --out that
        also holds other files (a mistyped `--out .`) is refused whole, so --force never deletes anyone's work.
        """
        others = sorted(p.name for p in self.path.iterdir() if p.name not in OUTPUTS) if self.path.is_dir() else []
        if others:
            named = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
            raise RunDirError(
                f"--force: {self.path} holds more than a validation's outputs ({named}); nothing was removed",
                hint="--force replaces only patchgate's own outputs: give the validation an --out of its own",
            )
        for name in OUTPUTS:
            target = self.path / name
            try:
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                elif name != LOCK_NAME:  # the lock file is held open by this very validation
                    target.unlink(missing_ok=True)
            except OSError as exc:
                raise storage_error(exc, target) from None


def read_run(directory: str | Path) -> RunRecord:
    """A run directory as a RunRecord (manifest plus cases)."""
    return RunDir(Path(directory)).read()
