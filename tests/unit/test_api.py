"""harness.api refuses bad input before anything starts, with the error the guide names (no device needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import api


def test_validate_refuses_no_replicas_and_an_out_that_holds_a_validation(tmp_path: Path) -> None:
    with pytest.raises(api.HarnessError, match="replicas=0"):
        api.validate(api.demo(), tmp_path / "out", replicas=0)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "comparison.json").write_text("{}", encoding="utf-8")
    with pytest.raises(api.RunDirError, match="already holds a validation") as raised:
        api.validate(api.demo(), tmp_path / "out")
    assert "replace=True" in raised.value.hint


def test_run_names_the_known_variants_of_an_unknown_one(tmp_path: Path) -> None:
    with pytest.raises(api.ProfileError, match="no variant named 'patched'") as raised:
        api.run(api.demo(), "patched", tmp_path / "run")
    assert raised.value.hint == "variants in this profile: baseline, candidate"
    assert not (tmp_path / "run").exists()


def test_compare_needs_a_baseline_and_readable_runs(tmp_path: Path) -> None:
    with pytest.raises(api.HarnessError, match="at least one baseline"):
        api.compare([], tmp_path / "candidate", tmp_path / "out")
    with pytest.raises(api.RunDirError):
        api.compare([tmp_path / "baseline"], tmp_path / "candidate", tmp_path / "out")


def test_a_profile_path_is_loaded_and_checked(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[device]\nname = "x"\nae_title = "X"\nsevices = ["echo"]\n', encoding="utf-8")
    with pytest.raises(api.ProfileError, match="sevices: unknown key") as raised:
        api.validate(bad, tmp_path / "out")
    assert "did you mean 'services'" in str(raised.value) + raised.value.hint


def test_demo_names_its_variant_and_refuses_an_unknown_one() -> None:
    assert api.demo("store-warning").source == "<embedded:reference:store-warning>"
    with pytest.raises(api.ProfileError, match="unknown reference variant 'nope'"):
        api.demo("nope")
