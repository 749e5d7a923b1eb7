"""Comparison of run records: check they belong together, normalise, diff, mask noise, apply policy, weigh security."""

from harness.compare.belonging import mismatches
from harness.compare.diff import diff_cases, format_side
from harness.compare.engine import compare
from harness.compare.noise import NoiseMask, measure_noise
from harness.compare.normalise import normalise_run
from harness.compare.policy import ExpectedChange, Policy, load_policy, parse_policy
from harness.compare.security import describe

__all__ = [
    "ExpectedChange",
    "NoiseMask",
    "Policy",
    "compare",
    "describe",
    "diff_cases",
    "format_side",
    "load_policy",
    "measure_noise",
    "mismatches",
    "normalise_run",
    "parse_policy",
]
