"""Shipping a run to an engine that cannot see this disk: when, what comes back, what is refused."""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ProfileError, TargetError
from harness.launch.shipping import RunVolume, _inside, engine_is_remote, tar_of
from harness.profile import parse_profile
from harness.runner import check_variant


@pytest.mark.parametrize(
    ("environ", "remote"),
    [
        ({}, False),
        ({"DOCKER_HOST": "unix:///var/run/docker.sock"}, False),
        ({"DOCKER_HOST": "unix:///run/docker.sock"}, False),
        ({"DOCKER_HOST": "tcp://bench-7:2376"}, True),
        ({"DOCKER_HOST": "ssh://qa@bench-7"}, True),
        ({"DOCKER_HOST": "unix:///tmp/engine2/sock"}, True),  # maybe another machine's, forwarded: ship
        ({"DOCKER_HOST": "unix:///tmp/engine2/sock", "PATCHGATE_ENGINE": "local"}, False),
        ({"PATCHGATE_ENGINE": "Remote"}, True),
    ],
)
def test_an_engine_is_remote_unless_it_is_the_local_socket(environ: dict[str, str], remote: bool) -> None:
    assert engine_is_remote(environ) is remote


def test_an_unknown_engine_setting_is_refused() -> None:
    with pytest.raises(TargetError, match="PATCHGATE_ENGINE='far' is neither 'local' nor 'remote'"):
        engine_is_remote({"PATCHGATE_ENGINE": "far"})


@pytest.mark.parametrize(
    ("name", "inside"),
    [("./a/b.json", "a/b.json"), ("a", "a"), (".", None), ("../x", None), ("/etc/passwd", None), ("a/../../b", None)],
)
def test_only_members_inside_the_run_come_back(name: str, inside: str | None) -> None:
    assert _inside(name) == inside


def test_archives_belong_to_the_owner_with_the_files_modes(tmp_path: Path) -> None:
    secret = tmp_path / "key.pem"
    secret.write_text("k")
    secret.chmod(0o600)
    data = tar_of([("pki", None, None), ("pki/key.pem", secret, None)], (1234, 567))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        folder, key = tar.getmembers()
    assert folder.isdir() and (folder.uid, folder.gid, folder.mode) == (1234, 567, 0o755)
    assert key.isfile() and (key.uid, key.gid, key.mode) == (1234, 567, 0o600)


class _Pod:
    """Below the network line: an engine's pod whose volume is a local folder (put_archive and get_archive)."""

    def __init__(self, folder: Path, mount: Path) -> None:
        self.folder, self.mount = folder, mount
        self.puts = 0

    def put_archive(self, path: str, data: bytes) -> bool:
        self.puts += 1
        target = self.folder / Path(path).relative_to(self.mount) if Path(path) != self.mount.parent else self.folder
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar.getmembers():
                name = member.name if Path(path) != self.mount.parent else "."
                if member.isdir():
                    (target / name).mkdir(parents=True, exist_ok=True)
                else:
                    handle = tar.extractfile(member)
                    assert handle is not None
                    with (target / name).open("wb") as out:  # as the engine does: created, then written
                        out.flush()
                        time.sleep(0.01)
                        out.write(handle.read())
        return True

    def exec_run(self, argv: list[str]) -> tuple[int, bytes]:
        inside = [self.folder / Path(arg).relative_to(self.mount) for arg in argv[4:]]
        if argv[:2] == ["sh", "-c"]:  # live files renamed into place, in (staged, final) pairs
            for staged, final in zip(inside[::2], inside[1::2], strict=True):
                staged.replace(final)
            return 0, b""
        assert argv[:2] == ["touch", "-c"], argv  # the heartbeat, touched in place
        target = self.folder / Path(argv[2]).relative_to(self.mount)
        if target.exists():
            os.utime(target)
        return 0, b""

    def get_archive(self, path: str) -> tuple[Any, dict[str, Any]]:
        import docker.errors

        folder = self.folder / Path(path.removesuffix("/.")).relative_to(self.mount)
        if not folder.exists():
            raise docker.errors.NotFound("no such folder")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(folder, arcname="." if folder.is_dir() else folder.name)  # as the engine names them
            tar.addfile(tarfile.TarInfo("../escaped"), io.BytesIO(b""))
        return iter([buffer.getvalue()]), {}


class _Client:
    class volumes:  # named as the SDK names it
        @staticmethod
        def create(name: str, labels: dict[str, str]) -> Any:
            return type("Volume", (), {"name": name, "remove": lambda self, force: None})()


def test_a_heartbeat_made_after_the_first_ship_is_still_copied_once(tmp_path: Path) -> None:
    run, remote = tmp_path / "run", tmp_path / "volume"
    run.mkdir()
    remote.mkdir()
    (run / "endpoints.json").write_text("context")  # shipped with the first copy, which has no heartbeat to take
    volume = RunVolume(_Client(), "r1", run, run / "heartbeat")
    pod = _Pod(remote, run)
    volume.attach(pod)
    try:
        # None here yet, so none there: touch -c makes none.
        assert (remote / "endpoints.json").exists() and not (remote / "heartbeat").exists()
        (run / "heartbeat").write_text("")
        volume.ship()
        assert (remote / "heartbeat").exists()
        puts = pod.puts
        volume.ship()
        assert pod.puts == puts
    finally:
        volume.close()


def test_the_containers_records_come_back_and_the_harnesss_own_changes_win(tmp_path: Path) -> None:
    run, remote = tmp_path / "run", tmp_path / "volume"
    run.mkdir()
    remote.mkdir()
    (run / "endpoints.json").write_text("context")
    (run / "manifest.json").write_text("ours, shipped")
    (run / "heartbeat").write_text("")
    volume = RunVolume(_Client(), "r1", run, run / "heartbeat")
    pod = _Pod(remote, run)
    volume.attach(pod)
    try:
        assert (remote / "endpoints.json").read_text() == "context" and (remote / "heartbeat").exists()
        puts = pod.puts
        volume.ship()
        assert pod.puts == puts  # nothing changed, and the heartbeat is touched there, never copied again
        # The containers write records and touch a shipped file; the harness changes another meanwhile.
        (remote / "observations.jsonl").write_text("case 1\n")
        (remote / "endpoints.json").write_text("rewritten inside")
        (remote / "manifest.json").write_text("theirs")
        (run / "manifest.json").write_text("ours, changed since")
        (remote / "heartbeat").write_text("stale")
        assert volume.bring_back() == 2
        assert (run / "observations.jsonl").read_text() == "case 1\n"
        assert (run / "endpoints.json").read_text() == "rewritten inside"
        assert (run / "manifest.json").read_text() == "ours, changed since"
        assert (run / "heartbeat").read_text() == ""
        assert not (tmp_path / "escaped").exists()
        # One file, as the progress is copied while the suites run.
        (remote / "observations.jsonl").write_text("case 1\ncase 2\n")
        assert volume._pull(run / "observations.jsonl", folder=False) == 1
        assert (run / "observations.jsonl").read_text() == "case 1\ncase 2\n"
    finally:
        volume.close()


def test_live_channels_are_relayed_both_ways_and_a_shared_log_is_merged(tmp_path: Path) -> None:
    run, remote = tmp_path / "run", tmp_path / "volume"
    (run / "robustness" / "windows").mkdir(parents=True)
    remote.mkdir()
    (run / "heartbeat").write_text("")
    windows = run / "robustness" / "windows"
    volume = RunVolume(_Client(), "r1", run, run / "heartbeat", live=[windows], merged=[run / "actions.jsonl"])
    pod = _Pod(remote, run)
    volume.attach(pod)
    try:
        staged = remote / "robustness" / "windows" / ".request.tmp"  # the suites' way (claim_ticket): whole
        staged.write_text("{}")
        staged.replace(staged.with_name("0001.request.json"))
        (remote / "actions.jsonl").write_text('{"by": "suites"}\n')
        (run / "actions.jsonl").write_text('{"by": "harness"}\n')
        deadline = time.monotonic() + 10
        while not (windows / "0001.request.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (windows / "0001.request.json").read_text() == "{}"  # the suites' request, here
        (windows / "0001.result.json").write_text('{"ok": true}')
        answer, seen = remote / "robustness" / "windows" / "0001.result.json", None
        while seen is None and time.monotonic() < deadline:  # polled as a suites process polls: read when it is there
            with contextlib.suppress(FileNotFoundError):
                seen = answer.read_text()
            time.sleep(0.001)
        assert seen == '{"ok": true}'  # the answer, and never half of it
        assert not list(answer.parent.glob(".*")) and not list(windows.glob(".*"))  # no staged copy left either side
        assert not (run / "actions.jsonl").read_text().count("suites")  # not relayed: merged at the end
        volume.bring_back()
        assert (run / "actions.jsonl").read_text().splitlines() == ['{"by": "harness"}', '{"by": "suites"}']
    finally:
        volume.close()


PROFILE = """\
[device]
name = "dev"
ae_title = "DEV"

[variants.baseline]
image = "dev:1"

[variants.candidate]
image = "dev:2"
"""


def test_a_remote_engine_refuses_the_performance_phase_and_host_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHGATE_ENGINE", "remote")
    monkeypatch.setenv("DOCKER_HOST", "tcp://bench-7:2376")
    check_variant(parse_profile(PROFILE, "/tmp/dev.toml"), "baseline")  # functional suites: shipped
    check_variant(parse_profile(PROFILE + "\n[robustness]\nenabled = true\n", "/tmp/dev.toml"), "baseline")  # relayed
    phased = parse_profile(PROFILE + "\n[performance]\nenabled = true\n", "/tmp/dev.toml")
    with pytest.raises(ProfileError, match=r"Docker engine at tcp://bench-7:2376.*the performance phase") as info:
        check_variant(phased, "candidate")
    assert "PATCHGATE_ENGINE=local" in info.value.hint
    hosted = parse_profile(PROFILE.replace('ae_title = "DEV"', 'ae_title = "DEV"\nnetwork = "host"'), "/tmp/dev.toml")
    with pytest.raises(ProfileError, match=r'device\.network = "host" with the Docker engine at tcp://bench-7:2376'):
        check_variant(hosted, "baseline")
    monkeypatch.setenv("PATCHGATE_ENGINE", "local")
    check_variant(phased, "candidate")
    check_variant(hosted, "baseline")
