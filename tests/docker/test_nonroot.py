"""A vendor image that runs as a non-root user: it still reads the run's TLS key and writes its storage."""

from __future__ import annotations

import io
import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from harness.errors import TargetError
from harness.images import ORTHANC_IMAGE
from harness.launch.ownership import image_owner, parse_passwd
from harness.model import Outcome, RunStatus
from harness.rundir import RunDir
from tests.conftest import ROOT, run_cli
from tests.docker.conftest import TEST_LABEL

NONROOT_IMAGE = "patchgate-test/orthanc-nonroot:1.10"


@pytest.fixture(scope="module")
def nonroot_image(docker_client: Any, images: dict[str, str]) -> str:
    """Orthanc as Debian packages it, run as its own `orthanc` user, the way a hardened vendor image would."""
    dockerfile = f"FROM {ORTHANC_IMAGE}\nUSER orthanc\n".encode()
    image, _ = docker_client.images.build(
        fileobj=io.BytesIO(dockerfile), tag=NONROOT_IMAGE, labels={TEST_LABEL: "1"}, rm=True, network_mode="none"
    )
    return str(image.id)


def _uid_gid(docker_client: Any, image: str, user: str) -> tuple[int, int]:
    out = docker_client.containers.run(image, ["sh", "-c", f"id -u {user}; id -g {user}"], remove=True)
    uid, gid = out.decode().split()
    return int(uid), int(gid)


def test_the_image_user_is_resolved_from_the_image_itself(docker_client: Any, nonroot_image: str) -> None:
    orthanc = _uid_gid(docker_client, ORTHANC_IMAGE, "orthanc")
    assert orthanc[0] != 0
    assert image_owner(docker_client, ORTHANC_IMAGE) is None  # no USER: root
    assert image_owner(docker_client, NONROOT_IMAGE) == orthanc  # USER orthanc, looked up in its /etc/passwd
    assert image_owner(docker_client, ORTHANC_IMAGE, "1234:56") == (1234, 56)
    assert image_owner(docker_client, ORTHANC_IMAGE, str(orthanc[0])) == orthanc  # the primary group from passwd
    assert image_owner(docker_client, ORTHANC_IMAGE, "4321") == (4321, 0)  # no entry: root's group, as the engine
    assert image_owner(docker_client, ORTHANC_IMAGE, "orthanc:root") == (orthanc[0], 0)
    assert image_owner(docker_client, ORTHANC_IMAGE, "root") is None
    with pytest.raises(TargetError, match="'ghost', which its /etc/passwd does not name"):
        image_owner(docker_client, ORTHANC_IMAGE, "ghost")
    assert parse_passwd("a:x:1:2::/:/bin/sh\nbroken\nb:x:nan:3::/:\n") == {"a": (1, 2)}


def test_a_non_root_image_requiring_tls_runs_every_suite(
    docker_client: Any, nonroot_image: str, tmp_path: Path
) -> None:
    """Without the hand-over the device cannot read its 0600 key and never answers; here every case runs."""
    profile = tmp_path / "nonroot.toml"
    template = ROOT / "devices" / "orthanc" / "orthanc-tls.json"
    profile.write_text(
        textwrap.dedent(
            f"""\
            [device]
            name = "orthanc-nonroot"
            ae_title = "ORTHANC"
            services = ["echo", "store", "find", "move", "get"]
            start_timeout = 60

            [simulators.pacs]
            ae_title = "PGPACS"

            [modality]
            ae_title = "PGMODALITY"

            [variants.baseline]
            image = "{NONROOT_IMAGE}"
            command = ["Orthanc", "/etc/patchgate/orthanc.json"]
            files = {{ "/etc/patchgate/orthanc.json" = "{template}" }}
            tls = true

            [variants.candidate]
            image = "{NONROOT_IMAGE}"
            command = ["Orthanc", "/etc/patchgate/orthanc.json"]
            files = {{ "/etc/patchgate/orthanc.json" = "{template}" }}
            tls = true
            """
        )
    )
    run_dir = tmp_path / "run"
    result = run_cli("run", "--profile", str(profile), "--variant", "baseline", "--out", str(run_dir))
    manifest = RunDir(run_dir).read_manifest()
    assert manifest.status is RunStatus.COMPLETED, (manifest.status_detail, result.stderr)
    cases = RunDir(run_dir).read_cases()
    stored = [c for c in cases if c.case.startswith("storage/")]
    assert stored and all(c.outcome is Outcome.PASSED for c in stored), [(c.case, c.outcome) for c in stored]
    assert manifest.extra.tls is True and json.loads(RunDir(run_dir).manifest.read_text())["extra"]["tls"] is True
    # What the device wrote is its own; the copy of the key it read was handed to it, the original untouched.
    orthanc = _uid_gid(docker_client, ORTHANC_IMAGE, "orthanc")
    written = [p for p in (run_dir / "device" / "orthanc-storage").rglob("*") if p.is_file()]
    assert written and {(p.stat().st_uid, p.stat().st_gid) for p in written} == {orthanc}
    handed = sorted(p.name for p in (run_dir / "for-device").rglob("*.pem"))
    assert handed == ["ca.pem", "server-key.pem", "server.pem"], handed  # never the CA's or the clients' keys
    keys = sorted((run_dir / "for-device").rglob("server-key.pem"))
    if os.geteuid() == 0:
        assert (keys[0].stat().st_uid, keys[0].stat().st_gid) == orthanc
    else:  # no chown without root: the throwaway copy is made readable instead
        assert keys[0].stat().st_mode & 0o004
    original = run_dir / "pki" / "server-key.pem"
    assert original.stat().st_uid == os.geteuid() and original.stat().st_mode & 0o077 == 0
