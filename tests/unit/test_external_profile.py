"""External devices in profiles: an address instead of a command, lifecycle hooks, where the simulators listen."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from harness.errors import ProfileError
from harness.profile import HookSpec, parse_profile
from harness.rundir import RunDir
from harness.runner import check_variant
from harness.surroundings import Surroundings
from harness.targets.external import HookError, run_hook

EXTERNAL = """\
[device]
name = "bench"
ae_title = "BENCH"

[device.hooks.reset]
command = ["{python}", "revert.py", "--port", "{port}", "--pacs", "{pacs.host}:{pacs.port}"]
deadline = 120

[variants.baseline]
address = "192.0.2.10:104"

[variants.candidate]
address = "192.0.2.10:104"
tls = true
"""


def _problem(text: str, variant: str = "baseline") -> str:
    with pytest.raises(ProfileError) as info:
        check_variant(parse_profile(text, "/tmp/bench.toml"), variant)
    return info.value.one_line()


def test_an_external_profile_parses_with_its_hooks_and_simulator_addresses() -> None:
    profile = parse_profile(EXTERNAL, "/tmp/bench.toml")
    assert profile.external and profile.variant("baseline").backend == "external"
    assert profile.variant("candidate").host_port == ("192.0.2.10", 104)
    assert profile.device.hooks == {
        "reset": HookSpec("reset", ("{python}", "revert.py", "--port", "{port}", "--pacs", "{pacs.host}:{pacs.port}"),
                          120.0)
    }  # fmt: skip
    assert (profile.sim_listen, profile.sim_host, profile.sim_told) == ("127.0.0.1", "127.0.0.1", "127.0.0.1")
    anywhere = parse_profile('[simulators]\nlisten = "0.0.0.0"\n' + EXTERNAL, "/tmp/bench.toml")
    assert (anywhere.sim_host, anywhere.sim_told) == ("127.0.0.1", "127.0.0.1")
    told = parse_profile('[simulators]\nlisten = "0.0.0.0"\nadvertise = "192.0.2.1"\n' + EXTERNAL, "/tmp/bench.toml")
    assert (told.sim_host, told.sim_told) == ("127.0.0.1", "192.0.2.1")
    for variant in ("baseline", "candidate"):
        check_variant(profile, variant)
    assert not parse_profile(EXTERNAL.replace('address = "192.0.2.10:104"', 'command = ["dev"]'), "/x.toml").external


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (('address = "192.0.2.10:104"', 'address = "192.0.2.10"'), "variants.baseline.address"),
        (("deadline = 120", "deadline = 0"), "device.hooks.reset.deadline"),
        (("[device.hooks.reset]", "[device.hooks.revert]"), "device.hooks"),
    ],
)
def test_a_bad_external_key_is_named(change: tuple[str, str], says: str) -> None:
    with pytest.raises(ProfileError) as info:
        parse_profile(EXTERNAL.replace(*change, 1), "/tmp/bench.toml")
    assert says in info.value.one_line()


def test_what_an_external_variant_cannot_have_is_refused_before_anything_starts() -> None:
    assert "variants.baseline: command and address both given" in _problem(
        EXTERNAL.replace('address = "192.0.2.10:104"', 'address = "192.0.2.10:104"\ncommand = ["dev"]', 1)
    )
    assert "cannot tell an external device (variant 'baseline') is up" in _problem(
        EXTERNAL.replace('ae_title = "BENCH"', 'ae_title = "BENCH"\nready = "http:/health"')
    )
    assert "device.hooks.reset.command[3]: unknown placeholder {prot}" in _problem(EXTERNAL.replace("{port}", "{prot}"))
    assert "device.hooks.reset.command is empty" in _problem(EXTERNAL.replace('command = ["{python}", "revert.py", '
                                                                             '"--port", "{port}", "--pacs", '
                                                                             '"{pacs.host}:{pacs.port}"]',
                                                                             "command = []"))  # fmt: skip
    assert "device.port = 104 and variants.baseline.address both say" in _problem(
        EXTERNAL.replace('ae_title = "BENCH"', 'ae_title = "BENCH"\nport = 104')
    )
    assert "patchgate cannot restart an external one (variant 'baseline')" in _problem(
        EXTERNAL + "\n[robustness]\nenabled = true\n"
    )
    local = EXTERNAL.replace('address = "192.0.2.10:104"', 'command = ["dev", "--port", "{port}"]')
    assert "device.hooks apply to external devices, but variant 'baseline' has no address" in _problem(local)


def test_the_device_is_told_the_advertised_simulator_host_and_patchgate_reaches_them_on_loopback(
    tmp_path: Path,
) -> None:
    text = '[simulators]\nlisten = "0.0.0.0"\nadvertise = "192.0.2.1"\n[simulators.pacs]\nport = 11113\n' + EXTERNAL
    surroundings = Surroundings(parse_profile(text, "/tmp/bench.toml"), "candidate", RunDir(tmp_path / "run"), "t-1")
    try:
        device, pacs = surroundings.device_endpoint, surroundings.pacs_endpoint
        assert (device.host, device.port, device.tls) == ("192.0.2.10", 104, True)
        assert (pacs.host, pacs.port) == ("127.0.0.1", 11113)
        values = surroundings.placeholders(device, pacs)
        assert (values["pacs.host"], values["arr.host"], values["port"]) == ("192.0.2.1", "192.0.2.1", "104")
    finally:
        surroundings.stop()


def test_a_hook_that_fails_says_its_command_exit_code_and_output(tmp_path: Path) -> None:
    log = tmp_path / "hook-apply.log"
    hook = HookSpec("apply", ("{python}", "-c", "print('line 1'); print('no licence for {variant}'); exit(4)"))
    with pytest.raises(HookError) as info:
        run_hook(hook, {"python": sys.executable, "variant": "candidate"}, log, tmp_path / "device", "p: device.hooks")
    said = info.value.one_line()
    assert said.startswith(f"hook apply ({sys.executable} -c print('line 1'); print('no licence for candidate'); ")
    assert "exited with code 4; output tail: line 1 | no licence for candidate (hint: a harness" in said
    assert info.value.detail == "line 1\nno licence for candidate"
    missing = HookSpec("reset", ("/nonexistent/revert",))
    with pytest.raises(HookError, match=r"hook reset \(/nonexistent/revert\): cannot start '/nonexistent/revert'"):
        run_hook(missing, {}, log, tmp_path / "device", "p: device.hooks.reset")
    run_hook(HookSpec("health", (sys.executable, "-c", "print('ok')")), {}, log, tmp_path, "p")  # no error
    assert log.read_text(encoding="utf-8").count("--- hook ") == 3


def test_a_cancelled_run_stops_its_hook(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    written = f"{pid_file}.partial"  # renamed once whole: the cancel below must not race the write
    script = f"import os, time; open({written!r}, 'w').write(str(os.getpid())); os.rename({written!r}, "
    script += f"{str(pid_file)!r}); time.sleep(120)"
    hook = HookSpec("reset", (sys.executable, "-c", script), deadline=60)
    with pytest.raises(KeyboardInterrupt):
        run_hook(hook, {}, tmp_path / "hook.log", tmp_path, "p", cancelled=pid_file.exists)
    with pytest.raises(ProcessLookupError):  # stopped with its process group, not left sleeping
        os.kill(int(pid_file.read_text(encoding="utf-8")), 0)
