"""`healthpipe package`: the Lambda deployment zip, built from manylinux wheels.

One zip holds the three handlers (`healthpipe.lambdas.FUNCTIONS`) and their dependencies,
installed for the Lambda runtime's platform and Python (`pip install --platform
manylinux2014_<arch> --platform manylinux_2_28_<arch> --only-binary=:all: --python-version
3.12 --implementation cp --target …`). boto3, botocore and s3transfer are left out: the
runtime provides them. CLI-only dependencies (typer, rich, watchdog) are left out too.
The zip is reproducible (sorted entries, fixed timestamps), so its hash changes only when
its content does. A function's code package may not exceed 250 MB unzipped.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import healthpipe
from healthpipe.errors import HealthpipeError
from healthpipe.lambdas import FUNCTIONS

Arch = Literal["x86_64", "arm64"]
UNZIPPED_LIMIT = 250 * 1024 * 1024
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})
CLI_ONLY = frozenset({"typer", "rich", "watchdog"})
LAMBDA_EXTRAS = ("aws",)
PLATFORM_ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


class PackagingError(HealthpipeError):
    """The deployment package could not be built, or is too large."""


@dataclass(frozen=True)
class PackageSpec:
    arch: Arch = "x86_64"
    python_version: str = "3.12"
    out: Path = Path("dist")


@dataclass(frozen=True)
class BuiltPackage:
    zip_path: Path
    unzipped_bytes: int
    zipped_bytes: int

    def sizes(self) -> dict[str, int]:
        """Unzipped size of each function's package (all three deploy this zip)."""
        return {name: self.unzipped_bytes for name in FUNCTIONS}


def dist_name(requirement: str) -> str:
    match = NAME.match(requirement.strip())
    if not match:
        raise PackagingError(f"unreadable requirement: {requirement!r}")
    return match.group(0).lower().replace("_", "-")


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
    core, extras = _declared_requirements()
    wanted = core + [r for extra in LAMBDA_EXTRAS for r in extras.get(extra, [])]
    skip = RUNTIME_PROVIDED | CLI_ONLY | {"healthpipe"}
    return sorted({r for r in wanted if dist_name(r) not in skip})


def pip_command(spec: PackageSpec, target: Path, requirements: list[str]) -> list[str]:
    machine = PLATFORM_ARCH[spec.arch]
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--platform",
        f"manylinux2014_{machine}",
        "--platform",
        f"manylinux_2_28_{machine}",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        spec.python_version,
        "--target",
        str(target),
        *requirements,
    ]


def _prune(root: Path) -> None:
    """Drop what the runtime provides and bytecode caches (rebuilt on the runtime)."""
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


def zip_name(spec: PackageSpec) -> str:
    return f"healthpipe-lambda-{spec.arch}-py{spec.python_version}.zip"


def build_package(spec: PackageSpec, *, workdir: Path | None = None) -> BuiltPackage:
    """Install, prune, check the size limit, and zip; raises PackagingError on failure."""
    with tempfile.TemporaryDirectory(dir=workdir, prefix="healthpipe-package-") as tmp:
        root = Path(tmp) / "package"
        root.mkdir()
        command = pip_command(spec, root, lambda_requirements())
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PackagingError(f"pip install failed: {done.stderr.strip()[-2000:]}")
        _prune(root)
        _copy_healthpipe(root)
        unzipped = tree_size(root)
        if unzipped >= UNZIPPED_LIMIT:
            raise PackagingError(
                f"package is {unzipped / 1e6:.1f} MB unzipped; Lambda allows under 250 MB"
            )
        zip_path = spec.out / zip_name(spec)
        write_zip(root, zip_path)
    return BuiltPackage(zip_path, unzipped, zip_path.stat().st_size)
