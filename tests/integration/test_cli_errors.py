"""The CLI's one error path: a failure that is not a verdict is one escaped line on stderr and exit 2, or 130 on a signal."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.model import CaseRecord, Manifest, RunStatus
from harness.rundir import RunDir
from tests.conftest import ROOT, CliResult, run_cli, start_cli
from tests.factories import make_case, make_manifest

RED = "\x1b[31mred\x1b[0m\x07"  # recolours the terminal and rings its bell if printed as it is
PROFILE = ROOT / "devices" / "reference" / "profile.toml"


def _write_run(path: Path, manifest: Manifest, cases: list[CaseRecord]) -> Path:
    run = RunDir(path)
    run.prepare()
    writer = run.case_writer()
    for case in cases:
        writer.write(case)
    writer.close()
    run.write_manifest(manifest)
    return path


CASES = [make_case("storage/test_store.py::test_ct", status=0)]


@pytest.fixture
def runs(tmp_path: Path) -> list[str]:
    """`--baseline B1 --baseline B2 --candidate C`: three completed runs that agree (UNCHANGED)."""
    cases = CASES
    b1 = _write_run(tmp_path / "b1", make_manifest("baseline", 1), cases)
    b2 = _write_run(tmp_path / "b2", make_manifest("baseline", 2), cases)
    c = _write_run(tmp_path / "c", make_manifest("candidate", 1), cases)
    return ["--baseline", str(b1), "--baseline", str(b2), "--candidate", str(c)]


def _errors(result: CliResult) -> list[str]:
    """stderr's lines but the live progress of the runs."""
    return [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("  running: ")]


def _assert_one_line(result: CliResult, start: str, *fragments: str) -> str:
    assert result.code == 2, (result.code, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = _errors(result)
    assert len(lines) == 1 and lines[0].startswith(start), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


# --- bad input -------------------------------------------------------------------------------------------------


def test_policy_file_that_is_not_utf8(tmp_path: Path, runs: list[str]) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_bytes(b'\xff\xfe[[expected]]\ncase = "*"\n')
    result = run_cli("compare", *runs, "--policy", str(policy), "--out", str(tmp_path / "cmp"))
    _assert_one_line(result, "patchgate: error: ", str(policy), "UTF-8", "hint: ")


@contextlib.contextmanager
def _read_only(directory: Path) -> Iterator[Path]:
    """`directory`, unwritable: a read-only tmpfs as root (root writes through 0555), mode 0555 otherwise."""
    directory.mkdir()
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            yield directory
        finally:
            directory.chmod(0o755)
        return
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if mount.returncode != 0:
        message = f"cannot mount a read-only tmpfs as root: {mount.stderr.strip()}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: not a skip)")
        pytest.skip(message)
    try:
        yield directory
    finally:
        done = subprocess.run(["umount", str(directory)], capture_output=True, timeout=30, check=False)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(directory)], capture_output=True, timeout=30, check=False)


def _out(tmp_path: Path, kind: str, stack: contextlib.ExitStack) -> Path:
    if kind in ("file", "under-file"):
        (tmp_path / "taken").write_text("a file, not a directory\n")
        return tmp_path / "taken" if kind == "file" else tmp_path / "taken" / "out"
    read_only = stack.enter_context(_read_only(tmp_path / "ro"))
    return read_only if kind == "read-only" else read_only / "out"


@pytest.mark.parametrize("kind", ["file", "under-file", "read-only", "under-read-only"])
@pytest.mark.parametrize("command", ["validate", "run", "compare"])
def test_out_that_cannot_be_written(tmp_path: Path, runs: list[str], command: str, kind: str) -> None:
    args = {
        "validate": ["validate", "--demo"],
        "run": ["run", "--profile", str(PROFILE), "--variant", "baseline"],
        "compare": ["compare", *runs],
    }[command]
    with contextlib.ExitStack() as stack:
        out = _out(tmp_path, kind, stack)
        result = run_cli(*args, "--out", str(out), timeout=120)
        line = _assert_one_line(result, "patchgate: error: ", str(out), "hint: ")
        assert result.stdout == "", "a bad --out must fail before any run starts"
    if kind == "file":
        assert "not a directory" in line
    if "read-only" in kind:
        assert "read-only" in line.lower()


def test_an_unexpected_error_is_an_internal_error_on_one_line(tmp_path: Path, runs: list[str]) -> None:
    out = tmp_path / "cmp"
    (out / "report.html").mkdir(parents=True)  # a directory where a report file goes: an OSError nobody expects
    result = run_cli("compare", *runs, "--out", str(out))
    _assert_one_line(result, "patchgate: internal error: ", "report.html", "(run with --debug for the traceback)")


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(tmp_path: Path, runs: list[str], where: str) -> None:
    out = tmp_path / "cmp"
    (out / "report.html").mkdir(parents=True)
    args = ["compare", *runs, "--out", str(out)]
    result = run_cli(*(["--debug", *args] if where == "before" else [*args, "--debug"]))
    assert result.code == 2, result.stderr
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("patchgate: internal error: "), result.stderr


def test_debug_shows_the_traceback_of_an_expected_error_too(tmp_path: Path) -> None:
    result = run_cli("--debug", "compare", "--baseline", str(tmp_path / "nope"), "--candidate", str(tmp_path / "no"),
                     "--out", str(tmp_path / "cmp"))  # fmt: skip
    assert result.code == 2, result.stderr
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("patchgate: error: "), result.stderr


# --- control characters ------------------------------------------------------------------------------------------


def test_control_characters_from_a_run_directory_are_escaped(tmp_path: Path, runs: list[str]) -> None:
    failed = make_manifest("candidate", 1, status=RunStatus.DEVICE_FAILED, status_detail=f"{RED}\nsecond line")
    candidate = _write_run(tmp_path / "failed", failed, CASES)
    result = run_cli("compare", *runs[:4], "--candidate", str(candidate), "--out", str(tmp_path / "cmp"))
    assert result.code == 2, result.stderr  # INCONCLUSIVE
    for stream in (result.stdout, result.stderr):
        assert "\x1b" not in stream and "\x07" not in stream, stream
    escaped = "\\x1b[31mred\\x1b[0m\\x07 | second line"
    assert escaped in result.stdout
    lines = _errors(result)
    assert len(lines) == 1 and lines[0].startswith("patchgate: error: INCONCLUSIVE: ") and escaped in lines[0], lines


def test_control_characters_in_case_ids_and_values_are_escaped(tmp_path: Path) -> None:
    case = f"storage/test_store.py::test_{RED}"
    before = [make_case(case, status=0, text="plain")]
    after = [make_case(case, status=0xA700, text=f"{RED}\u202egnp.exe")]
    args: list[str] = []
    for name, manifest, cases in (
        ("b1", make_manifest("baseline", 1), before),
        ("b2", make_manifest("baseline", 2), before),
        ("c", make_manifest("candidate", 1), after),
    ):
        args += ["--candidate" if name == "c" else "--baseline", str(_write_run(tmp_path / name, manifest, cases))]
    result = run_cli("compare", *args, "--out", str(tmp_path / "cmp"))
    assert result.code == 1, result.stderr  # REGRESSED
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\u202e" not in result.stdout
    assert "test_\\x1b[31mred\\x1b[0m\\x07" in result.stdout
    assert "\\u202e" in result.stdout


# --- signals ----------------------------------------------------------------------------------------------------


def _holding(out: Path) -> dict[int, str]:
    """pid -> command line of every live process that names `out` in its command line or works inside it."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            with contextlib.suppress(OSError):
                cwd = os.readlink(entry / "cwd")
                if cwd == str(out) or cwd.startswith(f"{out}/"):
                    found[int(entry.name)] = cmdline
            if str(out) in cmdline:
                found[int(entry.name)] = cmdline
    return found


def _devices_started(out: Path) -> bool:
    return any(RunDir(out / "runs" / run).log("device").exists() for run in ("baseline-1", "candidate-1"))


# Seconds after the start, or "running": once a device has been started (its log exists).
@pytest.mark.parametrize("delay", [0.05, 0.2, 0.5, 1.0, 2.0, 4.0, "running"])
def test_sigterm_early_in_validate(tmp_path: Path, delay: float | str) -> None:
    out = tmp_path / "out"
    proc = start_cli("validate", "--demo", "--replicas", "1", "--out", str(out))
    try:
        if isinstance(delay, float):
            time.sleep(delay)
        else:
            deadline = time.monotonic() + 90
            while not _devices_started(out) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _devices_started(out), "no device started within 90 s"
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    left = _holding(out)
    assert not left, f"left running after the harness exited: {left}"
    assert "Traceback" not in stdout + stderr, stderr
    lines = _errors(CliResult(proc.returncode, stdout, stderr))
    if proc.returncode == -signal.SIGTERM:
        # Python itself was still starting (~0.1-0.2 s): no patchgate code had run, so nothing had started either.
        assert not out.exists() and not lines, (stdout, stderr)
        return
    assert proc.returncode == 130, (proc.returncode, stdout, stderr)
    assert len(lines) == 1 and lines[0].startswith("patchgate: interrupted"), stderr


def test_sigterm_anywhere_in_start_up(tmp_path: Path) -> None:
    """A signal every 25 ms of the first second: wherever it lands (an import, a dataclass's exec), 130, one line."""
    seen: dict[float, int] = {}
    for step in range(40):
        delay = 0.1 + 0.025 * step
        out = tmp_path / f"out-{step}"
        proc = start_cli("validate", "--demo", "--out", str(out))
        try:
            time.sleep(delay)
            proc.send_signal(signal.SIGTERM)
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        seen[delay] = proc.returncode
        assert "Traceback" not in stderr, (delay, stderr)
        if proc.returncode != -signal.SIGTERM or out.exists():  # see test_sigterm_early_in_validate
            assert proc.returncode == 130, (delay, proc.returncode, stderr)
            assert _errors(CliResult(proc.returncode, stdout, stderr)) == [
                "patchgate: interrupted; the runs' containers and processes were stopped"
            ], (delay, stderr)
        assert not _holding(out), (delay, _holding(out))
    assert 130 in seen.values(), seen


def test_unknown_placeholder_is_refused_before_anything_starts(tmp_path: Path) -> None:
    """It used to start the runs and leave every manifest saying "completed" with 0 cases."""
    profile = tmp_path / "typo.toml"
    profile.write_text(
        '[device]\nname = "typo"\nae_title = "TYPO"\n\n'
        '[variants.baseline]\ncommand = ["{python}", "-m", "simulators.reference", "--port", "{prot}"]\n\n'
        '[variants.candidate]\ncommand = ["{python}", "-m", "simulators.reference", "--port", "{port}"]\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = run_cli("validate", "--profile", str(profile), "--out", str(out), timeout=60)
    assert result.code == 2, (result.code, result.stderr)
    assert "variants.baseline.command[4]: unknown placeholder {prot}" in result.stderr
    assert not list(out.glob("runs/*/manifest.json"))  # nothing ran, so nothing claims to have completed
