"""`healthpipe package`: one Lambda deployment zip per function, from manylinux wheels.

Each function (`healthpipe.lambdas.FUNCTIONS`) gets its own zip,
`healthpipe-<function>-<arch>-py<version>.zip`, holding healthpipe and only the
distributions its code imports (`function_requirements`: the third-party imports reachable
from its handler, stages and adapters, found by reading the code, function-level imports
included). The ingestor and the analyzer carry no matplotlib, numpy, Pillow or fontTools:
only the notifier draws charts.

Dependencies are installed for the Lambda runtime's platform and Python (`pip install
--platform manylinux2014_<arch> --platform manylinux_2_28_<arch> --only-binary=:all:
--python-version 3.12 --implementation cp --target …`). boto3, botocore and s3transfer are
left out: the runtime provides them. Everything is byte-compiled for the target Python
(unchecked-hash `.pyc`: valid whatever the file times in the zip, never re-checked on a
read-only /var/task), which roughly halves the cold import of a handler. The zips are
reproducible (sorted entries, fixed timestamps), so a hash changes only when the content
does. A function's code package may not exceed 250 MB unzipped.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import healthpipe
from healthpipe.errors import HealthpipeError
from healthpipe.lambdas import FUNCTIONS

Arch = Literal["x86_64", "arm64"]
UNZIPPED_LIMIT = 250 * 1024 * 1024
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})
LAMBDA_EXTRAS = ("aws",)
PLATFORM_ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")
# Distribution => the top-level module it is imported as, where the two differ.
IMPORT_NAMES = {
    "pillow": "PIL",
    "pydantic-settings": "pydantic_settings",
    "aws-lambda-powertools": "aws_lambda_powertools",
}
# Extras a function's distributions are installed with (the Powertools Tracer needs the
# X-Ray SDK).
EXTRAS = {"aws-lambda-powertools": "tracer"}


class PackagingError(HealthpipeError):
    """The deployment package could not be built, or is too large."""


@dataclass(frozen=True)
class PackageSpec:
    arch: Arch = "arm64"
    python_version: str = "3.12"
    out: Path = Path("dist")
    compile: bool = True
    python: str | None = None  # interpreter of the target version (default: found on PATH)


@dataclass(frozen=True)
class BuiltFunction:
    function: str
    zip_path: Path
    unzipped_bytes: int
    zipped_bytes: int
    requirements: tuple[str, ...]


@dataclass(frozen=True)
class BuiltPackage:
    functions: dict[str, BuiltFunction]
    compiled: bool
    notes: list[str] = field(default_factory=list)


def dist_name(requirement: str) -> str:
    match = NAME.match(requirement.strip())
    if not match:
        raise PackagingError(f"unreadable requirement: {requirement!r}")
    return match.group(0).lower().replace("_", "-")


def import_name(requirement: str) -> str:
    dist = dist_name(requirement)
    return IMPORT_NAMES.get(dist, dist.replace("-", "_"))


def _declared_requirements() -> tuple[list[str], dict[str, list[str]]]:
    """(dependencies, optional-dependencies) from the checkout's pyproject, else metadata."""
    pyproject = Path(healthpipe.__file__).resolve().parents[2] / "pyproject.toml"
    if pyproject.is_file():
        project = tomllib.loads(pyproject.read_text())["project"]
        return list(project["dependencies"]), dict(project.get("optional-dependencies", {}))
    core: list[str] = []
    extras: dict[str, list[str]] = {}
    for line in importlib.metadata.requires("healthpipe") or []:
        requirement, _, marker = line.partition(";")
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
        if extra:
            extras.setdefault(extra.group(1), []).append(requirement.strip())
        else:
            core.append(requirement.strip())
    return core, extras


def lambda_requirements() -> list[str]:
    """Every declared requirement a Lambda function could need (the runtime's boto3 aside)."""
    core, extras = _declared_requirements()
    wanted = core + [r for extra in LAMBDA_EXTRAS for r in extras.get(extra, [])]
    skip = RUNTIME_PROVIDED | {"healthpipe"}
    return sorted({r for r in wanted if dist_name(r) not in skip})


def _module_imports(path: Path) -> tuple[set[str], set[str]]:
    """(healthpipe modules, other top-level modules) a source file imports, anywhere in it.

    Each file is parsed once per process (while unchanged): a build scans every function's
    code two or three times, mostly the same modules."""
    own, other = _parsed_imports(path, path.stat().st_mtime_ns)
    return set(own), set(other)


@functools.cache
def _parsed_imports(path: Path, mtime_ns: int) -> tuple[frozenset[str], frozenset[str]]:
    own: set[str] = set()
    other: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            (own if name.split(".")[0] == "healthpipe" else other).add(name)
    return frozenset(own), frozenset(name.split(".")[0] for name in other)


def code_imports(function: str) -> set[str]:
    """Top-level third-party modules reachable from the function's handler, stages,
    adapters and bootstrap, following healthpipe imports (function-level ones included)."""
    spec = FUNCTIONS[function]
    handler = spec.handler.rsplit(".", 1)[0]
    stages = importlib.import_module(handler)._function.stages.values()
    queue = [handler, *(path.split(":")[0] for path in stages), *spec.adapters]
    queue.append("healthpipe.bootstrap")
    seen: set[str] = set()
    third_party: set[str] = set()
    while queue:
        name = queue.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            found = importlib.util.find_spec(name)
        except (ImportError, AttributeError, ValueError):  # `from module import name`
            continue
        if found is None or not found.origin or not found.origin.endswith(".py"):
            continue
        own, other = _module_imports(Path(found.origin))
        queue.extend(own)
        third_party |= other - set(sys.stdlib_module_names)
    return third_party


def function_requirements(function: str) -> list[str]:
    """The declared requirements whose modules the function's code imports, with extras."""
    imported = code_imports(function)
    out = []
    for requirement in lambda_requirements():
        if import_name(requirement) in imported:
            dist = dist_name(requirement)
            extra = EXTRAS.get(dist)
            out.append(requirement.replace(dist, f"{dist}[{extra}]", 1) if extra else requirement)
    return out


def _platform_args(spec: PackageSpec) -> list[str]:
    machine = PLATFORM_ARCH[spec.arch]
    return [
        "--platform",
        f"manylinux2014_{machine}",
        "--platform",
        f"manylinux_2_28_{machine}",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        spec.python_version,
    ]


def pip_download_command(spec: PackageSpec, wheelhouse: Path, requirements: list[str]) -> list[str]:
    """Fetch every wheel the functions need once (the only step that uses the index)."""
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        *_platform_args(spec),
        "--dest",
        str(wheelhouse),
        *requirements,
    ]


def pip_command(
    spec: PackageSpec, target: Path, requirements: list[str], wheelhouse: Path | None = None
) -> list[str]:
    """Install for the Lambda platform into `target` (from `wheelhouse` only, when given)."""
    source = ["--no-index", "--find-links", str(wheelhouse)] if wheelhouse else []
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        *_platform_args(spec),
        *source,
        "--target",
        str(target),
        *requirements,
    ]


def _require_pip() -> None:
    if importlib.util.find_spec("pip") is None:
        raise PackagingError(
            "pip is not installed for this Python: `pip install 'healthpipe[aws]'` brings it"
        )


def _pip(command: list[str]) -> None:
    _require_pip()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PackagingError(f"pip {command[3]} failed: {done.stderr.strip()[-2000:]}")


def _prune(root: Path) -> None:
    """Drop what the runtime provides and bytecode caches (compiled again below)."""
    for entry in list(root.iterdir()):
        stem = entry.name.split("-")[0].lower().replace("_", "-")
        if stem in RUNTIME_PROVIDED:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for cache in list(root.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    bin_dir = root / "bin"  # console scripts of dependencies: not used by Lambda
    if bin_dir.is_dir():
        shutil.rmtree(bin_dir)


def _copy_healthpipe(root: Path) -> None:
    source = Path(healthpipe.__file__).resolve().parent
    shutil.copytree(
        source, root / "healthpipe", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )


COMPILE_SCRIPT = (
    "import compileall, py_compile, sys\n"
    "ok = compileall.compile_dir(sys.argv[1], quiet=2, workers=0, "
    "invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)\n"
)


def _runs_as(python: str, version: str) -> bool:
    try:
        done = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except OSError:
        return False
    return done.returncode == 0 and done.stdout.strip() == version


def target_python(version: str, given: str | None = None) -> str | None:
    """A working interpreter of the target version: `given`, this one, or `python<version>`
    on PATH (a version-manager shim that does not run is no interpreter)."""
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [given] if given else []
    candidates += [sys.executable] if here == version else []
    candidates += [found] if (found := shutil.which(f"python{version}")) else []
    return next((python for python in candidates if _runs_as(python, version)), None)


def compile_tree(root: Path, version: str, python: str | None = None) -> bool:
    """Byte-compile every module for the target Python (False: no such interpreter here).

    Files that do not compile (test data in some wheels) are left as source."""
    interpreter = target_python(version, python)
    if interpreter is None:
        return False
    done = subprocess.run(
        [interpreter, "-c", COMPILE_SCRIPT, str(root)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise PackagingError(f"byte-compiling failed: {done.stderr.strip()[-2000:]}")
    return True


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def write_zip(root: Path, zip_path: Path) -> None:
    """A reproducible zip: sorted entries, fixed timestamps and permissions."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = zip_path.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), ZIP_TIME)
            info.external_attr = (0o755 if path.stat().st_mode & 0o111 else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with path.open("rb") as src, archive.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
    tmp.replace(zip_path)


def zip_name(spec: PackageSpec, function: str) -> str:
    """`healthpipe-<function>-<arch>-py<version>.zip` (infra/terraform/main.tf reads it)."""
    return f"healthpipe-{function}-{spec.arch}-py{spec.python_version}.zip"


def build_function(
    spec: PackageSpec, function: str, work: Path, wheelhouse: Path
) -> tuple[BuiltFunction, bool]:
    root = work / function
    root.mkdir()
    requirements = function_requirements(function)
    _pip(pip_command(spec, root, requirements, wheelhouse))
    _prune(root)
    _copy_healthpipe(root)
    compiled = spec.compile and compile_tree(root, spec.python_version, spec.python)
    unzipped = tree_size(root)
    if unzipped >= UNZIPPED_LIMIT:
        raise PackagingError(
            f"{function} package is {unzipped / 1e6:.1f} MB unzipped; Lambda allows under 250 MB"
        )
    zip_path = spec.out / zip_name(spec, function)
    write_zip(root, zip_path)
    built = BuiltFunction(
        function, zip_path, unzipped, zip_path.stat().st_size, tuple(requirements)
    )
    return built, compiled


def build_package(spec: PackageSpec, *, workdir: Path | None = None) -> BuiltPackage:
    """Download the wheels once, then install, prune, compile, check the size limit and zip,
    for each function; raises PackagingError on failure. A function whose requirements are
    those of one already built gets a copy of its zip (the zip holds the whole healthpipe
    package and those requirements, nothing else of the function): the chunked ingest's five
    functions cost one build, not five."""
    functions: dict[str, BuiltFunction] = {}
    by_requirements: dict[tuple[str, ...], BuiltFunction] = {}
    notes: list[str] = []
    compiled_all = True
    _require_pip()  # before any work: without pip nothing can be built
    wanted = sorted({r for f in FUNCTIONS for r in function_requirements(f)})
    with tempfile.TemporaryDirectory(dir=workdir, prefix="healthpipe-package-") as tmp:
        wheelhouse = Path(tmp) / "wheels"
        _pip(pip_download_command(spec, wheelhouse, wanted))
        for function in FUNCTIONS:
            same = by_requirements.get(tuple(function_requirements(function)))
            if same is not None:
                zip_path = spec.out / zip_name(spec, function)
                shutil.copyfile(same.zip_path, zip_path)
                functions[function] = replace(same, function=function, zip_path=zip_path)
                continue
            functions[function], compiled = build_function(spec, function, Path(tmp), wheelhouse)
            by_requirements[functions[function].requirements] = functions[function]
            compiled_all = compiled_all and compiled
    if spec.compile and not compiled_all:
        notes.append(
            f"no working python{spec.python_version} here: the packages hold source only "
            f"(slower cold starts); pass --python PATH of a Python {spec.python_version}"
        )
    return BuiltPackage(functions, spec.compile and compiled_all, notes)


__all__ = [
    "BuiltFunction",
    "BuiltPackage",
    "PackageSpec",
    "PackagingError",
    "build_package",
    "function_requirements",
    "zip_name",
]
