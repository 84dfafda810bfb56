"""The layer table is a checked contract: `lint-imports` passes on the tree, fails when a
scratch copy breaks a layer, and docs/architecture.md holds the table the contracts give."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A copy of src/healthpipe and pyproject.toml that a test may break."""
    shutil.copytree(
        ROOT / "src" / "healthpipe",
        tmp_path / "src" / "healthpipe",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def add_import(root: Path, module: str, line: str) -> None:
    path = root / "src" / Path(*module.split(".")).with_suffix(".py")
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


def test_every_import_contract_holds_on_the_tree() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


BREAKS = [
    # (module, the import added to it, the contract it breaks, the import as reported)
    (
        "healthpipe.stages.notify",
        "import healthpipe.bootstrap",
        "Layers: each imports only the layers below it",
        "healthpipe.stages.notify -> healthpipe.bootstrap",
    ),
    (
        "healthpipe.domain.clinical",
        "import duckdb",
        "duckdb: only dataops and adapters import it",
        "healthpipe.domain.clinical -> duckdb",
    ),
    (
        "healthpipe.domain.rules",
        "from pathlib import Path",
        "Domain: pure logic, no I/O",
        "healthpipe.domain.rules -> pathlib",
    ),
    (
        # analyze's parts are not in the independence list above (they import analyze)
        "healthpipe.stages.grouped_merge",
        "from healthpipe.stages import notify",
        "Stages: analyze's parts (phases, history, groups) import no other stage",
        "healthpipe.stages.grouped_merge -> healthpipe.stages.notify",
    ),
    (
        "healthpipe.stages.analyze",
        "from healthpipe.stages import ingest",
        "Stages: no stage imports another",
        "healthpipe.stages.analyze -> healthpipe.stages.ingest",
    ),
    (
        "healthpipe.adapters.local.event_bus",
        "import healthpipe.adapters.aws.s3",
        "Adapters: each runtime's adapters stand alone",
        "healthpipe.adapters.local.event_bus -> healthpipe.adapters.aws.s3",
    ),
    (
        "healthpipe.adapters.local.event_bus",
        "import healthpipe.routing",
        "Adapters: implement ports, never call stages or reports",
        "healthpipe.adapters.local.event_bus -> healthpipe.routing",
    ),
    (
        "healthpipe.adapters.llm.openai_compat",
        "import healthpipe.analysts.llm",
        "Adapters: implement ports, never call stages or reports",
        "healthpipe.adapters.llm.openai_compat -> healthpipe.analysts.llm",
    ),
    (
        "healthpipe.report.browse",
        "from healthpipe.ports import ObjectStore",
        "Report: builds documents, stores nothing",
        "healthpipe.report.browse -> healthpipe.ports",
    ),
    (
        "healthpipe.stages.base",
        "import boto3",
        "boto3: only adapters.aws imports it",
        "healthpipe.stages.base -> boto3",
    ),
]


def test_each_import_that_breaks_a_layer_fails_naming_its_contract(scratch: Path) -> None:
    # GIVEN a copy of the tree with one forbidden import per contract (one run checks all)
    for module, line, _, _ in BREAKS:
        add_import(scratch, module, line)
    # WHEN the contracts are checked
    result = lint_imports(scratch)
    # THEN the check fails and names every broken contract and the import that broke it
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{len({contract for _, _, contract, _ in BREAKS})} broken" in result.stdout
    broken = result.stdout.split("Broken contracts", 1)[1]
    for _, _, contract, edge in BREAKS:
        assert contract in broken
        assert edge in broken


def test_the_doc_layer_table_is_the_one_the_contracts_give() -> None:
    spec = importlib.util.spec_from_file_location("layers_doc", ROOT / "scripts/layers_doc.py")
    assert spec is not None and spec.loader is not None
    layers_doc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(layers_doc)
    found = layers_doc.contracts()
    listed = {m for layer in layers_doc.layers(found) for m in layer}
    # every top-level module and package of healthpipe sits in a layer
    package = ROOT / "src" / "healthpipe"
    tops = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    tops |= {p.name for p in package.iterdir() if (p / "__init__.py").exists()}
    assert tops == listed
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert layers_doc.with_section(doc, found) == doc, "run scripts/layers_doc.py"
