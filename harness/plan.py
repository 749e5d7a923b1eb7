"""A validation split into jobs for CI agents: a `patchgate run` per replica and candidate, then a `compare` per device."""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from harness.errors import HarnessError, ProfileError

__all__ = [
    "FORMATS",
    "CompareJob",
    "Plan",
    "RunJob",
    "github_document",
    "gitlab_document",
    "make_plan",
    "render",
    "worklist_date",
]

FORMATS = ("github", "gitlab")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")  # no "." in a key: artifact pattern KEY.* then matches one device's runs only


@dataclass(frozen=True)
class RunJob:
    """One `patchgate run` on an agent: one variant, role and replica of a device into its own run directory."""

    name: str  # KEY.LABEL (reference-profile.baseline-1): the job's and its artifact's name
    key: str  # the device's key in the plan (its profile path made a name), unique in the plan
    device: str
    profile: str  # as given to plan: a path relative to the directory every job runs in
    variant: str
    role: str
    replica: int
    out: str
    argv: tuple[str, ...]  # after `patchgate`

    @property
    def args(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True)
class CompareJob:
    """The `patchgate compare` of one device, once its run jobs are done: `validate`'s comparison and verdict."""

    name: str  # KEY
    device: str
    profile: str
    out: str  # the reports; the runs are in OUT/runs/LABEL, validate's layout
    runs: tuple[str, ...]  # the RunJob names whose run directories it reads
    argv: tuple[str, ...]

    @property
    def args(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True)
class Plan:
    """Every job of a validation of each profile: runs first (any order, any agent), then the compares."""

    root: str
    runs: tuple[RunJob, ...]
    compares: tuple[CompareJob, ...]
    warnings: tuple[str, ...] = ()  # where the plan's verdict may not be validate's, one line each


@dataclass(frozen=True)
class _Device:
    path: str
    name: str
    performance: bool


def make_plan(
    profiles: Sequence[str],
    *,
    replicas: int = 2,
    root: str = "patchgate-plan",
    policy: Sequence[str] = (),
    performance: bool = False,
    robustness: bool = False,
    date: str = "",
) -> Plan:
    """The jobs that give, run on separate agents, the verdict `patchgate validate` gives for each profile.

    Each profile is loaded and checked as `validate` checks it before starting anything (its baseline and
    candidate variants, their templates and actions, its policy files and `policy`), so a bad one fails
    here, before any agent is spent. Paths stay as given: the jobs run them from the same directory.
    Every run serves the worklist of `date` (YYYYMMDD; "": today, UTC), as validate's runs share one.
    """
    from harness.profile import load_profile
    from harness.runner import check_variant
    from harness.validation import policy_for

    if replicas < 2:
        raise HarnessError(
            f"--replicas {replicas}: a plan needs at least 2 baseline replicas",
            hint="compare measures noise as the differences between baseline replicas; 2 is validate's default",
        )
    if not profiles:
        raise HarnessError("no profile given", hint="patchgate plan PROFILE... (patchgate devices lists shipped ones)")
    date = worklist_date(date) if date else time.strftime("%Y%m%d", time.gmtime())
    extra = [Path(p) for p in policy]
    devices: list[_Device] = []
    for given in profiles:
        if not Path(given).is_file():
            raise ProfileError(
                f"{given}: profile not found",
                hint="give each profile's path relative to the directory the jobs run in; patchgate devices lists "
                "the shipped ones",
            )
        profile = load_profile(given)
        for variant in ("baseline", "candidate"):  # the loader has refused a profile without either
            check_variant(profile, variant)
            backend = profile.variant(variant).backend
            if backend not in ("local", "docker"):
                # A device patchgate does not start is one box: its runs in parallel on separate agents would all
                # reach it as it is (no reset, no patch between them) and pass a patch never applied.
                raise ProfileError(
                    f"{given}: variants.{variant} is an {backend} device (patchgate does not start it): its runs "
                    "cannot go to separate agents",
                    hint=f"validate it from one agent: patchgate validate --profile {given}",
                )
        policy_for(profile, extra)  # a bad policy file fails here, not in the compare job after the runs
        devices.append(_Device(given, profile.device.name, performance or profile.performance.enabled))
    keys = _keys([d.path for d in devices])
    phases = [*(["--performance"] if performance else []), *(["--robustness"] if robustness else [])]
    base = PurePosixPath(root)
    runs: list[RunJob] = []
    compares: list[CompareJob] = []
    for device, key in zip(devices, keys, strict=True):
        out = base / key
        jobs = []
        for role, n in [("baseline", n) for n in range(1, replicas + 1)] + [("candidate", 1)]:
            run_out = str(out / "runs" / f"{role}-{n}")
            argv = ("run", "--profile", device.path, "--variant", role, "--role", role, "--replica", str(n))
            jobs.append(
                RunJob(f"{key}.{role}-{n}", key, device.name, device.path, role, role, n, run_out,
                       (*argv, "--out", run_out, "--worklist-date", date, *phases))
            )  # fmt: skip
        runs += jobs
        compare = ["compare", "--profile", device.path]
        for job in jobs[:-1]:
            compare += ["--baseline", job.out]
        compare += ["--candidate", jobs[-1].out, "--out", str(out)]
        for p in policy:
            compare += ["--policy", p]
        names = tuple(j.name for j in jobs)
        compares.append(CompareJob(key, device.name, device.path, str(out), names, tuple(compare)))
    warnings = tuple(
        f"{d.path}: its performance phase runs on separate agents, each measuring alone: the baselines' noise "
        "then includes the agents' differences, and validate's interleaved rounds are lost; for a performance "
        "verdict, validate on one machine"
        for d in devices
        if d.performance
    )
    return Plan(root, tuple(runs), tuple(compares), warnings)


def worklist_date(text: str) -> str:
    """`text` if it is a date as YYYYMMDD, else a HarnessError naming --worklist-date.

    A validation's runs must share one: the reference RIS's worklist cases gave a false REGRESSED with a
    candidate served the next day's worklist (docs/scaling.md).
    """
    try:
        if re.fullmatch(r"[0-9]{8}", text):
            time.strptime(text, "%Y%m%d")
            return text
    except ValueError:
        pass
    raise HarnessError(
        f"--worklist-date {text!r}: not a date as YYYYMMDD",
        hint="e.g. 20261130; patchgate plan gives every run of a plan the same one",
    )


def _keys(paths: Sequence[str]) -> list[str]:
    """A unique name per profile path: its last parts (reference/profile.toml -> reference-profile), more if needed."""
    resolved = [Path(p).resolve() for p in paths]
    for n, r in enumerate(resolved):
        if r in resolved[:n]:
            raise ProfileError(
                f"{paths[n]}: given twice (as {paths[resolved.index(r)]})",
                hint="give each profile once; a plan validates each once",
            )
    parts = [PurePosixPath(Path(p).as_posix()).with_suffix("").parts for p in paths]
    depths = [2] * len(parts)
    while True:
        keys = [_slug(p[-d:]) for p, d in zip(parts, depths, strict=True)]
        clashing = [n for n, k in enumerate(keys) if keys.count(k) > 1]
        growing = [n for n in clashing if depths[n] < len(parts[n])]
        if not clashing or not growing:
            break
        for n in growing:  # only the clashing keys take another part
            depths[n] += 1
    # Left clashing: paths that differ only in characters a key cannot hold; their short key, numbered.
    return [f"{_slug(parts[n][-2:])}-{n + 1}" if n in clashing else k for n, k in enumerate(keys)]


def _slug(parts: Sequence[str]) -> str:
    """Path parts as one name an artifact, a job and a folder can all take."""
    return _UNSAFE.sub("-", "-".join(parts)).strip("-") or "profile"


def github_document(plan: Plan) -> dict[str, Any]:
    """Two GitHub Actions matrices: `runs` for the run jobs, `compares` for the compare jobs after them.

    Each is `{"include": [...]}`, for `strategy.matrix: ${{ fromJSON(needs.plan.outputs.plan).runs }}`. A run
    job uploads `upload` (the plan's root, which on a fresh agent holds only its own run) as artifact `name`;
    a compare job downloads pattern `download` into the root with merge-multiple, rebuilding OUT/runs/LABEL.
    """
    return {
        "runs": {
            "include": [
                {
                    "name": j.name,
                    "device": j.device,
                    "profile": j.profile,
                    "variant": j.variant,
                    "role": j.role,
                    "replica": j.replica,
                    "out": j.out,
                    "upload": plan.root,
                    "args": j.args,
                    "argv": list(j.argv),
                }
                for j in plan.runs
            ]
        },
        "compares": {
            "include": [
                {
                    "name": c.name,
                    "device": c.device,
                    "profile": c.profile,
                    "out": c.out,
                    "runs": list(c.runs),
                    "download": f"{c.name}.*",
                    "root": plan.root,
                    "args": c.args,
                    "argv": list(c.argv),
                }
                for c in plan.compares
            ]
        },
    }


def gitlab_document(plan: Plan, tags: Sequence[str] = ()) -> dict[str, Any]:
    """A GitLab child pipeline (JSON is YAML): a job per run, then a compare job per device that needs its runs.

    GitLab reads `parallel:matrix` only from static YAML, so a matrix computed at run time has to be a
    child pipeline (`trigger: include: artifact:`); in one generated anyway, a named job per run is plainer
    than a matrix: readable job names, and each compare job `needs` exactly its device's runs.
    """
    template: dict[str, Any] = {
        "image": "$PATCHGATE_IMAGE",
        "before_script": ['python -m pip install "$PATCHGATE"'],
        "after_script": ["patchgate sweep"],
    }
    if tags:
        template["tags"] = list(tags)
    document: dict[str, Any] = {
        "stages": ["patchgate-run", "patchgate-compare"],
        "variables": {"PATCHGATE_IMAGE": "python:3.11-slim-bookworm", "PATCHGATE": "patchgate[docker]"},
        ".patchgate": template,
    }
    for j in plan.runs:
        document[j.name] = {
            "extends": ".patchgate", "stage": "patchgate-run", "script": [f"patchgate {j.args}"],
            "artifacts": {"when": "always", "paths": [f"{j.out}/"]},
        }  # fmt: skip
    for c in plan.compares:
        document[f"{c.name}.compare"] = {
            "extends": ".patchgate", "stage": "patchgate-compare", "when": "always",  # failed runs: INCONCLUSIVE
            "needs": [{"job": r, "artifacts": True} for r in c.runs], "script": [f"patchgate {c.args}"],
            "artifacts": {"when": "always", "paths": [f"{c.out}/"], "reports": {"junit": f"{c.out}/junit.xml"}},
        }  # fmt: skip
    return document


def render(plan: Plan, fmt: str, *, tags: Sequence[str] = ()) -> str:
    """The plan as one line of JSON (GitHub: what `echo "plan=..." >> $GITHUB_OUTPUT` takes), or indented (GitLab)."""
    if fmt == "github":
        return json.dumps(github_document(plan), ensure_ascii=False, separators=(",", ":"))
    if fmt == "gitlab":
        return json.dumps(gitlab_document(plan, tags), ensure_ascii=False, indent=2)
    raise HarnessError(f"--format {fmt!r}: unknown", hint=f"one of {', '.join(FORMATS)}")
