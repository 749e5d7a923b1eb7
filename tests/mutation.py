"""Mutation tests' shared baseline: one profile holding every variant, one baseline run, a candidate run per variant."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from harness.demo import table_span, without_expect
from harness.model import Comparison
from harness.profile import Profile
from harness.runner import RunRequest, run_variant
from harness.validation import compare_runs, policy_for, read_runs

__all__ = ["SharedBaseline", "variant_table", "with_variants"]


def variant_table(text: str, name: str) -> str:
    """The body of profile `text`'s `[variants.NAME]` table (up to the next table)."""
    span = table_span(text, f"variants.{name}")
    assert span is not None, f"no [variants.{name}] table"
    return text[span[0] : span[1]]


def with_variants(text: str, tables: Mapping[str, str]) -> str:
    """Profile `text` without its [expect] (a mutation is not held to the shipped verdict) and with a
    `[variants.NAME]` table for each of `tables`."""
    return without_expect(text) + "".join(f"\n[variants.{name}]\n{body.strip()}\n" for name, body in tables.items())


class SharedBaseline:
    """One baseline run of `profile`, compared with a candidate run of any of its variants.

    A behaviour-changing variant needs no noise floor (one baseline replica); running the baseline once per
    module (tox runs `--dist loadscope`: one worker per module) instead of once per variant halves the runs.
    Every run gets one worklist date. (Not xdist_group: with xdist 3.8, `--dist loadgroup` spread a group's
    cases over both workers; loadscope keeps a module on one.)
    """

    def __init__(self, profile: Profile, folder: Path) -> None:
        self.profile = profile
        self.date = time.strftime("%Y%m%d", time.gmtime())
        self.baseline = folder / "baseline-1"
        run_variant(RunRequest(self.profile, "baseline", "baseline", 1, self.baseline, self.date))

    def compare(self, variant: str, folder: Path) -> Comparison:
        """Run `variant` as the candidate into `folder` and compare it with the baseline."""
        candidate = folder / "candidate-1"
        run_variant(RunRequest(self.profile, variant, "candidate", 1, candidate, self.date))
        records = read_runs([self.baseline, candidate])
        return compare_runs(records[:1], records[1], policy_for(self.profile), folder / "out").comparison
