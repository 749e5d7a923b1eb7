"""The external backend: a device patchgate does not start (a bench console, a VM), reached at its address."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from harness.errors import TargetError
from harness.launch.base import Launched, LaunchSpec, log_tail, read_log, wait_ready
from harness.launch.process import ProcessLauncher, stop_group
from harness.launch.readiness import EchoOnce
from harness.launch.resources import ResourceProbe
from harness.model import RunSetup
from harness.placeholders import render
from harness.profile import HookSpec

__all__ = ["ExternalBackend", "ExternalDevice", "HookError", "run_hook"]

# Seconds a hook's process group gets between SIGTERM and SIGKILL once its deadline passed.
_HOOK_GRACE = 5.0
# Seconds an external device that answered before the suites may take to answer again after them (a loaded
# bench is slow, not gone): only then is it taken as gone.
_GONE_AFTER = 10.0


class HookError(TargetError):
    """A lifecycle hook failed or timed out: the harness's setup of the device, never the device's behaviour
    (a TargetError: the device was not made ready; the runner records it as the harness's failure)."""


class ExternalDevice:
    """The device as patchgate sees it: an address it answers at; nothing to stop, kill or measure."""

    noun = "external device "
    exit_code: int | None = None
    memory_peak: int | None = None

    def __init__(self, spec: LaunchSpec) -> None:
        self.spec = spec
        self.answered = False  # set once it passed its readiness probe: from then on alive() asks it again
        spec.log.parent.mkdir(parents=True, exist_ok=True)
        spec.log.touch()

    def alive(self) -> bool:
        """True until it answered its readiness probe once (it is being waited for); after that, whether it
        answers it again within _GONE_AFTER s: no process to poll, and a device gone during the suites must
        read as a crash (INCONCLUSIVE), not as the cases it failed (REGRESSED)."""
        if not self.answered:
            return True
        end = time.monotonic() + _GONE_AFTER
        while True:
            why = self.spec.ready.probe(self)
            if not why:
                return True
            if time.monotonic() >= end:
                with contextlib.suppress(OSError), self.spec.log.open("a", encoding="utf-8") as log:
                    log.write(f"--- no longer answers {self.spec.ready.describe()}: {why} ---\n")
                return False
            time.sleep(0.5)

    def log_text(self) -> str:
        return read_log(self.spec.log)

    def pause(self, seconds: float) -> None:
        time.sleep(seconds)

    def kill(self) -> None:
        pass  # patchgate never stops a device it did not start

    def stop(self) -> None:
        pass

    def resources(self) -> ResourceProbe | None:
        return None  # its processes are on another machine


class ExternalBackend:
    """Simulators and suites as local processes; the device is only waited for (C-ECHO within its start timeout)."""

    name = "external"
    echo: EchoOnce | None = None

    def __init__(self, lifeline: Mapping[str, str]) -> None:
        self.helpers = self.suites = ProcessLauncher(lifeline)

    def device(self, spec: LaunchSpec, files: Mapping[Path, str]) -> Launched:
        device = ExternalDevice(spec)
        with spec.log.open("a", encoding="utf-8") as log:
            log.write(f"--- not started by patchgate: waiting for {spec.ready.describe()} ---\n")
        wait_ready(device, interval=0.5)
        device.answered = True
        return device

    def describe(self, device: Launched) -> RunSetup:
        return RunSetup(backend="external", command=())  # the manifest's device_endpoint says where

    def inventory(self, device: Launched, probe: tuple[str, ...], port_names: Mapping[int, str]) -> Path | None:
        return None  # another machine: its packages and sockets are not patchgate's to list

    def inside(self, device: Launched) -> None:
        return None  # `where = "device"` commands run on this host, as a local device's do

    def bring_back(self) -> None:
        pass  # its processes write into the run directory itself

    def close(self) -> None:
        pass


def run_hook(
    hook: HookSpec,
    values: Mapping[str, str],
    log: Path,
    cwd: Path,
    where: str,
    cancelled: Callable[[], bool] = lambda: False,
) -> None:
    """Run `hook` (its placeholders filled from `values`) with its output in `log`, within its deadline;
    KeyboardInterrupt, the hook stopped, once `cancelled()`.

    HookError naming the hook, its command, its exit code (or the deadline) and its output's tail otherwise.
    Output goes to a file, not a pipe: a hook that leaves a device running in the background must not hold it open.
    """
    argv = [render(arg, values, f"{where}.command") for arg in hook.command]
    log.parent.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"--- hook {hook.name}: {' '.join(argv)} ---\n".encode())
        out.flush()
        start = len(log.read_bytes())
        try:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True
            )
        except OSError as exc:
            raise HookError(
                f"hook {hook.name} ({' '.join(argv)}): cannot start {argv[0]!r}: {exc.strerror}",
                hint=f"check {where}.command in the profile",
            ) from None
        try:
            code = _wait(process, hook.deadline, cancelled)
        except BaseException:  # a cancel (KeyboardInterrupt) must not leave the hook running
            stop_group(process, _HOOK_GRACE)
            raise
        if code is None:
            stop_group(process, _HOOK_GRACE)
    tail = log_tail(log.read_bytes()[start:].decode(errors="replace"), 20)
    if code == 0:
        return
    what = f"did not finish within {hook.deadline:g} s" if code is None else f"exited with code {code}"
    last = " | ".join(tail.splitlines()[-3:]) or "no output"
    raise HookError(
        f"hook {hook.name} ({' '.join(argv)}) {what}; output tail: {last}",
        hint=f"a harness/device-setup fault, not the device's behaviour: see {log}",
        detail=tail,
    )


def _wait(process: subprocess.Popen[bytes], deadline: float, cancelled: Callable[[], bool]) -> int | None:
    """The hook's exit code; None when `deadline` seconds passed first. Looks at `cancelled` twice a second."""
    end = time.monotonic() + deadline
    while True:
        try:
            return process.wait(max(0.0, min(0.5, end - time.monotonic())))
        except subprocess.TimeoutExpired:
            if cancelled():
                raise KeyboardInterrupt from None
            if time.monotonic() >= end:
                return None
