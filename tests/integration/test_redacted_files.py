"""After a run no file of its run directory quotes a secret: the device's log, its rendered configuration, endpoints."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli

SECRET = "S3cr3t-leaky-7f2c"
PASSCODE = "pc-5be1a9d0"

# A device that prints its secret to its log and gets it in a configuration file, as real ones do.
PROFILE = f"""
[device]
name = "leaky"
ae_title = "LEAKY"
services = ["echo"]
secrets = ["{SECRET}"]

[device.identity]
username = "pgoperator"
passcode = "{PASSCODE}"

[variants.baseline]
command = ["sh", "-c", "echo starting with password {SECRET}; exec \\"$0\\" -m simulators.reference --variant clean --ae-title {{ae_title}} --port {{port}} --storage {{workdir}}/storage", "{{python}}"]
files = {{ "/etc/leaky.cfg" = "leaky.cfg.in" }}

[variants.candidate]
command = ["{{python}}", "-m", "simulators.reference", "--variant", "clean", "--ae-title", "{{ae_title}}", "--port", "{{port}}", "--storage", "{{workdir}}/storage"]
"""


def test_no_file_of_a_finished_run_quotes_a_secret(tmp_path: Path) -> None:
    (tmp_path / "leaky.cfg.in").write_text(f"password = {SECRET}\nport = {{port}}\n", encoding="utf-8")
    profile = tmp_path / "leaky.toml"
    profile.write_text(PROFILE, encoding="utf-8")
    out = tmp_path / "run"
    result = run_cli("run", "--profile", str(profile), "--variant", "baseline", "--out", str(out))
    assert result.code in (0, 1), result.stderr
    log = out / "logs" / "device.log"
    assert "starting with password ***" in log.read_text(encoding="utf-8")  # the line is kept, the secret masked
    rendered = [p for p in (out / "device" / "files").iterdir()]
    assert rendered and all("password = ***" in p.read_text(encoding="utf-8") for p in rendered)
    leaks = []
    for path in out.rglob("*"):
        if path.is_file() and "storage" not in path.parts:
            data = path.read_bytes()
            leaks += [f"{path.relative_to(out)}: {s}" for s in (SECRET, PASSCODE) if s.encode() in data]
    assert not leaks, leaks
