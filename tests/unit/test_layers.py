"""The layers hold: no module imports itself back, and the import-linter contracts catch a wrong import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("harness", "simulators", "suites")
SIMULATORS_CONTRACT = "simulators-below"  # its id in pyproject.toml's [tool.importlinter]
PERF_CLIENT_CONTRACT = "perf-client-below-runner"


def test_every_folder_of_modules_is_a_package() -> None:
    # grimp, and so every contract, skips a folder without __init__.py: its imports would go unchecked.
    folders = {p.parent for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    missing = sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").is_file())
    assert not missing, f"folders of modules without __init__.py: {missing}"


def test_no_module_imports_itself_back() -> None:
    # The acyclic_siblings contract cannot see a package's __init__ and its own modules importing each other.
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    cycles: dict[frozenset[str], tuple[str, ...]] = {}
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None:
                cycles.setdefault(frozenset(back), (module, *back))
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in sorted(cycles.values()))


def _copy(tmp_path: Path) -> Path:
    """The three packages and pyproject.toml (with the contracts) in a fresh folder."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def _lint_imports(project: Path, contract: str = SIMULATORS_CONTRACT) -> subprocess.CompletedProcess[str]:
    # A child process: lint-imports finds the packages on its cwd, not the ones this process imported.
    command = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(command), "--no-cache", "--no-logo", "--contract", contract],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_simulators_contract_holds_and_bites(tmp_path: Path) -> None:
    project = _copy(tmp_path)
    kept = _lint_imports(project)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "simulators import neither harness nor suites KEPT" in kept.stdout

    module = next(p for p in sorted((project / "simulators").glob("*.py")) if p.name != "__init__.py")
    with module.open("a", encoding="utf-8") as f:
        f.write("\nfrom harness import errors\n")
    broken = _lint_imports(project)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "simulators import neither harness nor suites BROKEN" in broken.stdout
    assert f"simulators.{module.stem} -> harness.errors" in broken.stdout


def test_the_perf_client_contract_holds_and_bites(tmp_path: Path) -> None:
    # The plugin loads harness.perf.client into the suites process: the runner must not come with it.
    project = _copy(tmp_path)
    kept = _lint_imports(project, PERF_CLIENT_CONTRACT)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "the turn client uses records only, not the machinery KEPT" in kept.stdout

    with (project / "harness" / "perf" / "client.py").open("a", encoding="utf-8") as f:
        f.write("\nfrom harness import runner\n")
    broken = _lint_imports(project, PERF_CLIENT_CONTRACT)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "the turn client uses records only, not the machinery BROKEN" in broken.stdout
    assert "harness.perf.client -> harness.runner" in broken.stdout


def test_test_modules_have_unique_names() -> None:
    """tests/ has no __init__.py, so pytest imports each test module by its basename: two files of one name in
    different folders collect alone but not together ("import file mismatch"), as the whole suite runs in CI."""
    names: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        names.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    assert {n: p for n, p in names.items() if len(p) > 1} == {}
