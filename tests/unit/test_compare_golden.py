"""compare gives the recorded comparison.json, byte for byte, for every recorded comparison and the synthetic ones;
and the garbage collector it pauses is running again afterwards, whatever happened.

The goldens (tests/data/golden, see tests/golden.py) were recorded before compare was made
faster. Masked: `created` of a call that did not pass one (it is the clock's), a top-level
key the goldens do not have whose value is empty (a record field added later, at its default), and
the keys in ADDED_LATER, fields recorded since whose values their own tests hold.
"""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path

import pytest

from harness.compare.engine import collector_paused, compare
from harness.model import JSON, Comparison, Manifest
from harness.report import write_reports
from harness.report.json_report import JsonReporter
from tests.golden import CREATED, GOLDEN, SYNTHETIC, load_input, recorded
from tests.synthetic import synthetic

RECORDED = recorded()
# Top-level fields added after the goldens were recorded, never empty: policy_sha256 (the policy judged against,
# held by tests/unit/test_report_first_screen.py).
ADDED_LATER = frozenset({"policy_sha256"})


def _canonical(document: dict[str, JSON], golden: str) -> str:
    """`document` as the goldens were written, masked as the module docstring says."""
    kept = json.loads(golden)
    found = {k: v for k, v in document.items() if k in kept or (k not in ADDED_LATER and v not in ([], {}, None, ""))}
    return json.dumps(found, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _written(tmp_path: Path, comparison: Comparison, runs: list[Manifest]) -> dict[str, JSON]:
    """What the json report writes, read back (its layout may change; its content must not)."""
    path = JsonReporter().write(comparison, tmp_path, runs)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_every_recorded_comparison_is_there() -> None:
    assert len(RECORDED) >= 50  # the recording covered the verdict, security and report tests
    for path in RECORDED:
        assert path.with_name(path.name.replace(".input.", ".comparison.")).is_file(), path


@pytest.mark.parametrize("path", RECORDED, ids=[p.name.split(".")[0] for p in RECORDED])
def test_compare_gives_the_recorded_comparison_json(tmp_path: Path, path: Path) -> None:
    baselines, candidate, policy, keywords = load_input(path)
    golden = path.with_name(path.name.replace(".input.", ".comparison.")).read_text(encoding="utf-8")
    comparison = compare(baselines, candidate, policy, **keywords)
    document = _written(tmp_path, comparison, [r.manifest for r in (*baselines, candidate)])
    if "created" not in keywords:
        document["created"] = json.loads(golden)["created"]  # masked: the clock's
    assert _canonical(document, golden) == golden


@pytest.mark.parametrize("cases", SYNTHETIC)
def test_a_synthetic_comparison_gives_the_recorded_comparison_json(tmp_path: Path, cases: int) -> None:
    s = synthetic(cases)
    golden = (GOLDEN / f"synthetic-{cases}.comparison.json").read_text(encoding="utf-8")
    comparison = compare(s.baselines, s.candidate, s.policy, created=CREATED)
    document = _written(tmp_path, comparison, [r.manifest for r in (*s.baselines, s.candidate)])
    assert _canonical(document, golden) == golden
    assert {c["case"] for c in json.loads(golden)["cases"] if c["status"] == "regressed"} == s.regressed


def test_the_mask_hides_only_what_it_says() -> None:
    golden = json.dumps({"a": 1, "created": "x"}, sort_keys=True, indent=2) + "\n"
    assert _canonical({"a": 1, "created": "x", "performance": []}, golden) == golden  # a new field at its default
    assert _canonical({"a": 1, "created": "x", "performance": [1]}, golden) != golden  # ... but not with a value
    assert _canonical({"a": 2, "created": "x"}, golden) != golden


def test_the_collector_runs_again_after_compare_and_reports_even_when_they_raise(tmp_path: Path) -> None:
    s = synthetic(12)
    assert gc.isenabled()
    with pytest.raises(AttributeError):
        compare(s.baselines, None, s.policy)  # type: ignore[arg-type]
    assert gc.isenabled() and gc.get_freeze_count() == 0
    comparison = compare(s.baselines, s.candidate, s.policy, created=CREATED)
    assert gc.isenabled()
    with pytest.raises(AttributeError):
        write_reports(comparison, tmp_path, [None])  # type: ignore[list-item]  # a run without a manifest
    assert gc.isenabled() and gc.get_freeze_count() == 0


class _Node:
    """A weakly referenceable object for a reference cycle."""

    other: object = None


def _cycle() -> weakref.ref[_Node]:
    node = _Node()
    node.other = node
    return weakref.ref(node)


@pytest.mark.parametrize("lasting", [True, False])
def test_what_a_lasting_block_made_goes_to_the_oldest_generation_unwalked(lasting: bool) -> None:
    """lasting=True: the block's objects join the oldest generation, so a young collection neither walks nor frees
    them; otherwise they stay young and the next young collection frees their cycles."""
    gc.collect()
    with collector_paused(lasting=lasting):
        made = [[i] for i in range(1_000)]
        cycle = _cycle()
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert (id(made[0]) in oldest) is lasting and (id(made[-1]) in oldest) is lasting
    gc.collect(0)
    assert (cycle() is not None) is lasting
    gc.collect()
    assert cycle() is None and gc.isenabled() and gc.get_freeze_count() == 0


def test_a_collector_the_caller_switched_off_stays_off() -> None:
    s = synthetic(12)
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        compare(s.baselines, s.candidate, s.policy, created=CREATED)
        assert not gc.isenabled()
    finally:
        gc.enable()
