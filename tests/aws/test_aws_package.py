"""`healthpipe package`: one zip per function, each with only what its code imports,
byte-compiled for the target Python, importing from a clean directory.

Built once per session for THIS machine's architecture and THIS interpreter's Python (the
default target is Lambda's python3.12 on arm64; here the interpreter is the one running the
tests, so the .pyc match it), from manylinux wheels on PyPI. Without the package index the
build tests skip, saying so.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import platform
import re
import socket
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest
from typer.testing import CliRunner

from healthpipe import packaging
from healthpipe.cli import app
from healthpipe.lambdas import FUNCTIONS
from healthpipe.packaging import (
    RUNTIME_PROVIDED,
    UNZIPPED_LIMIT,
    PackageSpec,
    function_requirements,
    zip_name,
)

BOTO_RUNTIME = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
HERE_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[
    platform.machine().lower()
]
HERE_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
# Building downloads the wheels once, installs and byte-compiles three trees: about 6 min on
# 2 shared cores (network and load dominate), beyond the suite's per-test default.
# One xdist worker takes the whole module (`--dist loadgroup`, as `make test` runs it).
pytestmark = [pytest.mark.timeout(1800), pytest.mark.xdist_group("aws_package")]
CHARTS_ONLY = ("matplotlib", "numpy", "PIL", "fontTools", "pillow", "contourpy", "kiwisolver")


def index_reachable() -> bool:
    """Whether pip's package index answers (PIP_INDEX_URL, else pypi.org)."""
    url = urlparse(os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple")
    try:
        with socket.create_connection((url.hostname or "pypi.org", url.port or 443), timeout=5):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class Built:
    out: Path
    printed: str

    def zip_of(self, function: str) -> Path:
        spec = PackageSpec(arch=HERE_ARCH, python_version=HERE_PYTHON)  # type: ignore[arg-type]
        return self.out / zip_name(spec, function)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Iterator[Built]:
    """`healthpipe package --arch <here> --python-version <here> --out <tmp>`, run once per
    session: under pytest-xdist the workers share the session's temporary root, and the
    first to take the lock builds while the others wait and read its zips."""
    if not index_reachable():
        pytest.skip("the package index (PyPI or PIP_INDEX_URL) is unreachable: cannot build")
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        shared = shared.parent
    out = shared / "aws-package-dist"
    printed = out / "printed.txt"
    with (shared / "aws-package.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not printed.is_file():
            out.mkdir(exist_ok=True)
            args = ["--arch", HERE_ARCH, "--python-version", HERE_PYTHON, "--out", str(out)]
            result = CliRunner().invoke(app, ["package", *args])
            assert result.exit_code == 0, result.output
            printed.write_text(result.output)
    yield Built(out, printed.read_text())


def names_in(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def top_levels(path: Path) -> set[str]:
    return {name.split("/")[0].split("-")[0] for name in names_in(path)}


def runtime_boto(tmp: Path) -> Path:
    """What the Lambda runtime provides: boto3 and its dependencies, and nothing else."""
    folder = tmp / "runtime"
    folder.mkdir()
    for name in BOTO_RUNTIME:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin, name
        source = Path(spec.origin)
        source = source.parent if source.name == "__init__.py" else source
        (folder / source.name).symlink_to(source)
    return folder


IMPORT_PROBE = textwrap.dedent(
    """
    import importlib, json, sys
    sys.path[:0] = [PACKAGE, RUNTIME]
    from healthpipe.lambdas import FUNCTIONS
    for name in THE_FUNCTIONS:
        spec = FUNCTIONS[name]
        module = importlib.import_module(spec.handler.rsplit(".", 1)[0])
        assert callable(module.handler)
        for path in module._function.stages.values():
            importlib.import_module(path.split(":")[0])
        for adapter in spec.adapters:
            importlib.import_module(adapter)
    import healthpipe.bootstrap, healthpipe.lambdas.logging_setup
    extra = {}
    if THE_FUNCTIONS == ["notifier"]:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot
        extra["matplotlib"] = matplotlib.__file__
    else:
        import duckdb
        assert duckdb.sql("SELECT 40 + 2").fetchall() == [(42,)]
        extra["duckdb"] = duckdb.__file__
    import boto3, healthpipe
    compiled = [m.__cached__ for m in list(sys.modules.values())
                if getattr(m, "__file__", "") and str(m.__file__).startswith(PACKAGE)
                and str(m.__file__).endswith(".py")]
    print(json.dumps({"handler": module.__file__, "healthpipe": healthpipe.__file__,
                      "boto3": boto3.__file__, "extra": extra, "cached": compiled,
                      "modules": sorted(sys.modules)}))
    """
)


def test_each_function_has_its_own_zip_under_the_limit_without_boto3(built: Built) -> None:
    printed = dict(re.findall(r"(\w+): ([\d.]+) MB unzipped", built.printed))
    assert set(printed) == set(FUNCTIONS)
    for function in FUNCTIONS:
        path = built.zip_of(function)
        assert path.name == f"healthpipe-{function}-{HERE_ARCH}-py{HERE_PYTHON}.zip"
        with zipfile.ZipFile(path) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
        assert abs(unzipped / 1024 / 1024 - float(printed[function])) < 0.1
        assert 0 < unzipped < UNZIPPED_LIMIT
        top = {t.lower() for t in top_levels(path)}
        assert not top & RUNTIME_PROVIDED
        assert {"healthpipe", "aws_lambda_powertools", "pydantic"} <= top
        assert f"healthpipe/lambdas/{function}.py" in names_in(path)


@pytest.mark.parametrize("function", ["ingestor", "analyzer"])
def test_ingestor_and_analyzer_carry_no_charting_libraries(built: Built, function: str) -> None:
    top = top_levels(built.zip_of(function))
    assert not top & set(CHARTS_ONLY), sorted(top & set(CHARTS_ONLY))
    assert "duckdb" in top
    notifier = top_levels(built.zip_of("notifier"))
    assert {"matplotlib", "numpy", "PIL"} <= notifier
    notifier_mb = built.zip_of("notifier").stat().st_size
    assert built.zip_of(function).stat().st_size < notifier_mb


def test_the_code_scan_finds_each_function_s_imports() -> None:
    assert not any("matplotlib" in r for r in function_requirements("ingestor"))
    assert not any("matplotlib" in r for r in function_requirements("analyzer"))
    assert any(r.startswith("matplotlib") for r in function_requirements("notifier"))
    assert any(r.startswith("duckdb") for r in function_requirements("ingestor"))


def test_every_module_is_byte_compiled_for_the_target_python_with_unchecked_hashes(
    built: Built,
) -> None:
    tag = f"cpython-{sys.version_info.major}{sys.version_info.minor}"
    for function in FUNCTIONS:
        names = set(names_in(built.zip_of(function)))
        sources = [n for n in names if n.startswith("healthpipe/") and n.endswith(".py")]
        assert sources
        for source in sources:
            folder, _, file = source.rpartition("/")
            cached = f"{folder}/__pycache__/{file[:-3]}.{tag}.pyc"
            assert cached in names, cached
        with zipfile.ZipFile(built.zip_of(function)) as archive:
            header = archive.read(f"healthpipe/lambdas/__pycache__/{function}.{tag}.pyc")[:16]
        flags = int.from_bytes(header[4:8], "little")
        assert flags == 0b01  # hash-based, source not checked (PEP 552)


# Every function but the notifier has the same requirements, so the same zip contents
# (`build_package` copies it, and the test checks it zip for zip): one probe imports all their
# handlers from it, in one interpreter that has nothing else on its path, so a module missing
# from the zip fails it whichever handler needs it. The notifier's zip is probed on its own.
SHARED_ZIP = [f for f in FUNCTIONS if f != "notifier"]
PROBES = [["notifier"], SHARED_ZIP]


@pytest.mark.parametrize("functions", PROBES, ids=["notifier", "the-others"])
def test_each_handler_imports_from_its_unpacked_zip_alone(
    built: Built, functions: list[str], tmp_path: Path
) -> None:
    # GIVEN the function's zip unpacked into a clean directory, plus boto3 as the runtime has it
    function = functions[0]
    package = tmp_path / "task"
    with zipfile.ZipFile(built.zip_of(function)) as archive:
        archive.extractall(package)
    for other in functions[1:]:  # the same contents, zip for zip
        same = built.zip_of(other).read_bytes() == built.zip_of(function).read_bytes()
        assert same, f"{other}'s zip differs from {function}'s: give it a probe of its own"
    runtime = runtime_boto(tmp_path)
    probe = (
        IMPORT_PROBE.replace("PACKAGE", repr(str(package)))
        .replace("RUNTIME", repr(str(runtime)))
        .replace("THE_FUNCTIONS", repr(functions))
    )
    # WHEN the handler and everything its first call loads are imported by an isolated
    # interpreter without site-packages
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # THEN everything came from the package (boto3 from the runtime stand-in), every module
    # of the package that was imported had its .pyc in the zip
    found = json.loads(done.stdout.strip().splitlines()[-1])
    for path in [found["handler"], found["healthpipe"], *found["extra"].values()]:
        assert path.startswith(str(package))
    assert found["boto3"].startswith(str(runtime))
    assert all(Path(cached).is_file() for cached in found["cached"])
    if function != "notifier":
        assert not any(m.split(".")[0] in CHARTS_ONLY for m in found["modules"])


def test_package_refuses_an_unknown_architecture(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["package", "--arch", "sparc", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert not list(tmp_path.glob("*.zip"))


def test_package_without_pip_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a Python without pip (a venv made with --without-pip and runtime deps only)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "pip" else real_find_spec(name, *a),
    )

    # (and a code scan that cannot happen: pip is looked for first, before any work)
    def scanned(function: str) -> set[str]:
        raise AssertionError(f"{function}'s code was scanned before pip was looked for")

    monkeypatch.setattr(packaging, "code_imports", scanned)
    # WHEN packaging THEN one line names what to install, and the exit code is not 0
    result = CliRunner().invoke(app, ["package", "--arch", HERE_ARCH, "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "pip is not installed" in result.output + result.stderr
    assert "Traceback" not in result.output + result.stderr
