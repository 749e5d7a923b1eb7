"""harness.plan: the jobs `patchgate plan` prints, its errors, and the CI examples that consume them."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cli import _parser, main
from harness.errors import HarnessError
from harness.plan import CompareJob, RunJob, github_document, gitlab_document, make_plan, render
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples" / "ci"
CLEAN = "devices/reference/profile.toml"
MODALITY = "devices/reference-modality/regression.toml"


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the jobs run from the checkout's root, as the paths given to plan say


def _subcommands() -> set[str]:
    (sub,) = (a for a in _parser()._actions if a.dest == "command")
    assert isinstance(sub.choices, dict)
    return set(sub.choices)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    said = capsys.readouterr()
    return code, said.out, said.err


def test_a_plan_holds_validates_runs_then_one_compare_per_device() -> None:
    plan = make_plan([CLEAN, MODALITY], replicas=3, root="out", date="20261130")
    assert [j.name for j in plan.runs] == [
        f"{key}.{label}"
        for key in ("reference-profile", "reference-modality-regression")
        for label in ("baseline-1", "baseline-2", "baseline-3", "candidate-1")
    ]
    first = plan.runs[0]
    assert first.argv == (
        "run", "--profile", CLEAN, "--variant", "baseline", "--role", "baseline", "--replica", "1",
        "--out", "out/reference-profile/runs/baseline-1", "--worklist-date", "20261130",
    )  # fmt: skip
    assert {j.argv[-2:] for j in plan.runs} == {("--worklist-date", "20261130")}  # one date, as validate's runs
    assert [(j.device, j.role, j.replica) for j in plan.runs[4:]] == [
        ("reference-modality", "baseline", 1), ("reference-modality", "baseline", 2),
        ("reference-modality", "baseline", 3), ("reference-modality", "candidate", 1),
    ]  # fmt: skip
    compare = plan.compares[1]
    assert compare.argv == (
        "compare", "--profile", MODALITY,
        "--baseline", "out/reference-modality-regression/runs/baseline-1",
        "--baseline", "out/reference-modality-regression/runs/baseline-2",
        "--baseline", "out/reference-modality-regression/runs/baseline-3",
        "--candidate", "out/reference-modality-regression/runs/candidate-1",
        "--out", "out/reference-modality-regression",
    )  # fmt: skip
    assert compare.runs == tuple(j.name for j in plan.runs[4:])
    assert plan.warnings == ()


def test_policy_and_phases_reach_the_jobs_and_performance_is_warned_of() -> None:
    with pytest.raises(HarnessError, match="no profile given"):
        make_plan([])
    with pytest.raises(HarnessError, match=r"store-warning\.toml"):  # a profile is no policy file: refused here
        make_plan([CLEAN], policy=["devices/reference/store-warning.toml"])
    policy_file = "devices/reference/fixes-crash-policy.toml"
    plan = make_plan([CLEAN], policy=[policy_file], performance=True, robustness=True)
    assert plan.runs[0].argv[-2:] == ("--performance", "--robustness")
    assert plan.compares[0].argv[-2:] == ("--policy", policy_file)
    (warning,) = plan.warnings
    assert warning.startswith(f"{CLEAN}: its performance phase runs on separate agents")


def test_keys_take_as_many_path_parts_as_uniqueness_needs_and_args_quote(tmp_path: Path) -> None:
    text = (ROOT / CLEAN).read_text()
    paths = [tmp_path / "a" / "x" / "profile.toml", tmp_path / "b" / "x" / "profile.toml", tmp_path / "my dev.toml",
             tmp_path / "my-dev.toml"]  # fmt: skip
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    plan = make_plan([str(p) for p in paths])
    tail = tmp_path.name
    clash = f"{tail}-my-dev"  # "my dev" and "my-dev" differ only in a character a key cannot hold
    assert [c.name for c in plan.compares] == ["a-x-profile", "b-x-profile", f"{clash}-3", f"{clash}-4"]
    jobs: list[RunJob | CompareJob] = [*plan.runs, *plan.compares]
    for job in jobs:
        assert shlex.split(job.args) == list(job.argv)
    assert f"'{paths[2]}'" in plan.runs[-4].args
    odd = tmp_path / "é" / "ü.toml"  # no character a key can hold
    odd.parent.mkdir()
    odd.write_text(text)
    assert [c.name for c in make_plan([str(odd)]).compares] == ["profile"]


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["nope.toml"], ["nope.toml: profile not found", "patchgate devices"]),
        ([CLEAN, "--replicas", "1"], ["--replicas 1: a plan needs at least 2", "noise"]),
        ([CLEAN, f"./{CLEAN}"], [f"./{CLEAN}: given twice (as {CLEAN})"]),
        ([CLEAN, "--policy", "nope-policy.toml"], ["nope-policy.toml"]),
        ([CLEAN, "--worklist-date", "20261131"], ["--worklist-date '20261131': not a date as YYYYMMDD"]),
    ],
)
def test_bad_input_is_one_line_naming_it(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragments: list[str]
) -> None:
    code, out, err = _cli(capsys, "plan", *argv)
    assert (code, out) == (2, "")
    assert err.startswith("patchgate: error: ") and len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err


def test_today_is_the_plans_date_and_run_refuses_a_bad_one(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    before = time.strftime("%Y%m%d", time.gmtime())
    dates = {j.argv[-1] for j in make_plan([CLEAN]).runs}
    assert dates <= {before, time.strftime("%Y%m%d", time.gmtime())} and len(dates) == 1
    out = tmp_path / "run"
    code, _, err = _cli(capsys, "run", "--profile", CLEAN, "--variant", "baseline", "--out", str(out),
                        "--worklist-date", "2026-11-30")  # fmt: skip
    assert code == 2 and "--worklist-date '2026-11-30': not a date as YYYYMMDD" in err and "hint:" in err
    assert not out.exists()  # refused before anything started


def test_a_profile_without_a_candidate_is_refused_naming_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    profile = tmp_path / "only-baseline.toml"
    text = (ROOT / CLEAN).read_text()
    profile.write_text(text[: text.index("[variants.candidate]")])
    code, out, err = _cli(capsys, "plan", CLEAN, str(profile))
    assert (code, out) == (2, "")
    assert f"{profile}:" in err and "variants.candidate" in err and "hint:" in err, err


def test_a_device_patchgate_does_not_start_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    external = "devices/reference-external/profile.toml"  # the external target's (wip/external, issue 14 item 1)
    if not (ROOT / external).is_file():
        pytest.skip(f"{external} is not in this checkout yet")
    code, out, err = _cli(capsys, "plan", CLEAN, external)
    assert (code, out) == (2, "")
    assert f"{external}: variants.baseline is an external device" in err, err
    assert f"patchgate validate --profile {external}" in err


def test_github_form_is_one_line_and_each_compare_downloads_exactly_its_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _cli(capsys, "plan", CLEAN, MODALITY)
    assert code == 0 and len(out.splitlines()) == 1
    document = json.loads(out)
    assert set(document) == {"runs", "compares"} and all(set(v) == {"include"} for v in document.values())
    runs, compares = document["runs"]["include"], document["compares"]["include"]
    artifacts = [r["name"] for r in runs] + [f"{c['name']}-reports" for c in compares]  # the example's uploads
    for compare in compares:
        assert fnmatch.filter(artifacts, compare["download"]) == compare["runs"]
        assert compare["out"].startswith(compare["root"] + "/")
    for run in runs:
        assert run["out"].startswith(run["upload"] + "/")
        assert run["args"] == shlex.join(run["argv"])


def test_gitlab_form_is_a_child_pipeline_whose_compares_need_their_runs() -> None:
    plan = make_plan([CLEAN, MODALITY])
    text = render(plan, "gitlab", tags=["docker-host"])
    pipeline: dict[str, Any] = yaml.safe_load(text)  # GitLab reads it as YAML
    assert pipeline == json.loads(text) == gitlab_document(plan, ["docker-host"])
    assert pipeline["stages"] == ["patchgate-run", "patchgate-compare"]
    assert pipeline[".patchgate"]["tags"] == ["docker-host"]
    for run in plan.runs:
        job = pipeline[run.name]
        assert (job["stage"], job["script"], job["artifacts"]["paths"]) == (
            "patchgate-run", [f"patchgate {run.args}"], [f"{run.out}/"],
        )  # fmt: skip
    for compare in plan.compares:
        job = pipeline[f"{compare.name}.compare"]
        assert job["stage"] == "patchgate-compare" and job["script"] == [f"patchgate {compare.args}"]
        assert job["when"] == "always"  # after a failed run too: compare judges it INCONCLUSIVE
        assert [n["job"] for n in job["needs"]] == list(compare.runs)
    jobs = [k for k in pipeline if k not in ("stages", "variables", ".patchgate")]
    assert len(jobs) == len(plan.runs) + len(plan.compares)
    assert all(pipeline[k]["extends"] == ".patchgate" for k in jobs)


def _patchgate_commands(script: str) -> list[str]:
    return re.findall(r"(?:^|[\s$(])patchgate (\S+)", script)


def test_github_matrix_workflow_runs_what_the_plan_prints() -> None:
    workflow = yaml.safe_load((EXAMPLES / "github-actions-matrix.yml").read_text())
    jobs = workflow["jobs"]
    assert set(jobs) == {"plan", "run", "compare"}
    scripts = {name: [s["run"] for s in job["steps"] if "run" in s] for name, job in jobs.items()}
    (planning,) = [s for s in scripts["plan"] if "patchgate plan" in s]
    printed = shlex.split(planning.split("$(", 1)[1].split(")", 1)[0].replace("$PROFILES", f"{CLEAN} {MODALITY}"))
    args = _parser().parse_args(printed[1:])
    assert (args.command, args.format, args.out) == ("plan", "github", "$PLAN")
    assert jobs["plan"]["outputs"]["plan"] == "${{ steps.plan.outputs.plan }}"
    document = github_document(make_plan([CLEAN, MODALITY], root=workflow["env"]["PLAN"]))
    assert "!cancelled()" in jobs["compare"]["if"]  # after a failed run too: compare judges it INCONCLUSIVE
    for name, part in (("run", "runs"), ("compare", "compares")):
        job = jobs[name]
        assert job["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.plan).%s }}".replace("%s", part)
        assert "patchgate ${{ matrix.args }}" in scripts[name]  # the exact command the plan printed for the job
        used = set(re.findall(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", json.dumps(job)))
        for entry in document[part]["include"]:
            assert used <= set(entry), f"{name} job uses matrix keys the plan does not print: {used - set(entry)}"
    commands = {c for runs in scripts.values() for s in runs for c in _patchgate_commands(s)}
    assert commands - {"${{"} <= _subcommands() and {"plan", "images", "sweep", "verify", "pack"} <= commands
    upload = next(s for s in jobs["run"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    download = next(s for s in jobs["compare"]["steps"] if s.get("uses", "").startswith("actions/download-artifact"))
    assert (upload["with"]["name"], upload["with"]["path"]) == ("${{ matrix.name }}", "${{ matrix.upload }}")
    assert download["with"] == {
        "pattern": "${{ matrix.download }}",
        "path": "${{ matrix.root }}",
        "merge-multiple": True,
    }


def test_gitlab_matrix_pipeline_triggers_the_child_the_plan_writes() -> None:
    config = yaml.safe_load((EXAMPLES / "gitlab-ci-matrix.yml").read_text())
    script = config["patchgate-plan"]["script"]
    (line,) = [s for s in script if "patchgate plan" in s]
    command, target = line.split(" > ")
    args = _parser().parse_args(shlex.split(command.replace("$PROFILES", CLEAN))[1:])
    assert (args.command, args.format) == ("plan", "gitlab")
    assert config["patchgate-plan"]["artifacts"]["paths"] == [target]
    (include,) = config["patchgate"]["trigger"]["include"]
    assert include == {"artifact": target, "job": "patchgate-plan"}
    assert config["patchgate"]["trigger"]["strategy"] == "depend"  # the child's verdicts fail this pipeline
    assert {"PATCHGATE", "PATCHGATE_IMAGE"} <= set(config["variables"])  # what the child's jobs read
    assert {c for s in script for c in _patchgate_commands(s)} <= _subcommands()


def test_plan_is_listed_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert re.search(r"^\s+plan\s+print the run and compare jobs", capsys.readouterr().out, re.M)
