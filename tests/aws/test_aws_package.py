"""`healthpipe package`: the zip holds every handler and imports from a clean directory.

Built once per session for THIS machine's architecture and THIS interpreter's Python (the
default target is Lambda's python3.12; here the interpreter is the one running the tests),
from manylinux wheels on PyPI.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from healthpipe.cli import app
from healthpipe.lambdas import FUNCTIONS
from healthpipe.packaging import RUNTIME_PROVIDED, UNZIPPED_LIMIT

BOTO_RUNTIME = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
HERE_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[
    platform.machine().lower()
]
HERE_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class Built:
    zip_path: Path
    printed: str


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """`healthpipe package --arch <here> --python-version <here> --out <tmp>`, run once."""
    out = tmp_path_factory.mktemp("dist")
    result = CliRunner().invoke(
        app,
        ["package", "--arch", HERE_ARCH, "--python-version", HERE_PYTHON, "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    [zip_path] = sorted(out.glob("*.zip"))
    yield Built(zip_path, result.output)


def runtime_boto(tmp: Path) -> Path:
    """What the Lambda runtime provides: boto3 and its dependencies, and nothing else."""
    import importlib

    folder = tmp / "runtime"
    folder.mkdir()
    for name in BOTO_RUNTIME:
        module = importlib.import_module(name)
        source = Path(module.__file__ or "")
        source = source.parent if source.name == "__init__.py" else source
        (folder / source.name).symlink_to(source)
    return folder


IMPORT_PROBE = textwrap.dedent(
    """
    import importlib, json, sys
    sys.path[:0] = [PACKAGE, RUNTIME]
    from healthpipe.lambdas import FUNCTIONS
    loaded = {}
    for spec in FUNCTIONS.values():
        module = importlib.import_module(spec.handler.rsplit(".", 1)[0])
        assert callable(module.handler)
        for path in module._function.stages.values():
            importlib.import_module(path.split(":")[0])
        for adapter in spec.adapters:
            importlib.import_module(adapter)
        loaded[spec.name] = module.__file__
    import healthpipe.bootstrap, healthpipe.lambdas.logging_setup
    import duckdb, matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot
    assert duckdb.sql("SELECT 40 + 2").fetchall() == [(42,)]
    import boto3, healthpipe
    print(json.dumps({"handlers": loaded, "healthpipe": healthpipe.__file__,
                      "duckdb": duckdb.__file__, "boto3": boto3.__file__}))
    """
)


def test_package_is_under_the_limit_without_boto3(built: Built) -> None:
    assert built.zip_path.name == f"healthpipe-lambda-{HERE_ARCH}-py{HERE_PYTHON}.zip"
    printed = dict(re.findall(r"(\w+): ([\d.]+) MB unzipped", built.printed))
    assert set(printed) == set(FUNCTIONS)
    assert all(0 < float(mb) < UNZIPPED_LIMIT / 1024 / 1024 for mb in printed.values())
    with zipfile.ZipFile(built.zip_path) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
    assert abs(unzipped / 1024 / 1024 - float(printed["ingestor"])) < 0.1
    with zipfile.ZipFile(built.zip_path) as archive:
        names = archive.namelist()
    top = {name.split("/")[0].split("-")[0].lower() for name in names}
    assert not top & RUNTIME_PROVIDED
    assert {"healthpipe", "duckdb", "aws_lambda_powertools", "pydantic"} <= top
    assert "healthpipe/lambdas/ingestor.py" in names
    assert not any("__pycache__" in name for name in names)


def test_each_handler_imports_from_the_unpacked_zip_alone(built: Built, tmp_path: Path) -> None:
    # GIVEN the zip unpacked into a clean directory, plus boto3 as the runtime provides it
    package = tmp_path / "task"
    with zipfile.ZipFile(built.zip_path) as archive:
        archive.extractall(package)
    runtime = runtime_boto(tmp_path)
    probe = IMPORT_PROBE.replace("PACKAGE", repr(str(package))).replace(
        "RUNTIME", repr(str(runtime))
    )
    # WHEN each handler is imported by an isolated interpreter without site-packages
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # THEN everything came from the package (and boto3 from the runtime stand-in)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(found["handlers"]) == set(FUNCTIONS)
    for path in [*found["handlers"].values(), found["healthpipe"], found["duckdb"]]:
        assert path.startswith(str(package))
    assert found["boto3"].startswith(str(runtime))


def test_package_refuses_an_unknown_architecture(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["package", "--arch", "sparc", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert not list(tmp_path.glob("*.zip"))
