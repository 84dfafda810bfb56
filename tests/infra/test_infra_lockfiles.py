"""Providers: every module constrains each provider to one major version, and every root
module (a directory Terraform is run in: it configures `provider "aws"`) commits the
`.terraform.lock.hcl` `terraform init` writes, naming exactly the providers of the root and
its local child modules, at a version every constraint allows, with h1:/zh: hashes in the
format and order Terraform writes them."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import hcl2
import pytest
from infra_terraform import TERRAFORM, attr, tf_files

ONE_MAJOR = re.compile(r"^~> (\d+)\.(\d+)$")
LOCK_HEADER = (
    '# This file is maintained automatically by "terraform init".\n'
    "# Manual edits may be lost in future updates.\n"
)


def _parse(path: Path) -> dict[str, object]:
    with path.open() as handle:
        parsed: dict[str, object] = hcl2.load(handle)
    return parsed


def required_providers(directory: Path) -> dict[str, str]:
    """provider name -> version constraint, over the directory's .tf files."""
    out: dict[str, str] = {}
    for path in sorted(directory.glob("*.tf")):
        for block in _parse(path).get("terraform", []):  # type: ignore[attr-defined]
            for required in block.get("required_providers", []):
                for name, spec in required.items():
                    if name.startswith("__"):
                        continue
                    spec = spec[0] if isinstance(spec, list) else spec
                    out[name] = attr(spec, "version")
    return out


def child_modules(directory: Path) -> list[Path]:
    children: list[Path] = []
    for path in sorted(directory.glob("*.tf")):
        for block in _parse(path).get("module", []):  # type: ignore[attr-defined]
            for call in block.values():
                source = attr(call, "source")
                if source.startswith("."):
                    children.append((directory / source).resolve())
    return children


def providers_of_configuration(root: Path) -> dict[str, set[str]]:
    """provider -> every constraint on it, in the root and its local child modules."""
    out: dict[str, set[str]] = {}
    for directory in [root, *child_modules(root)]:
        for name, constraint in required_providers(directory).items():
            out.setdefault(name, set()).add(constraint)
    return out


def root_modules() -> list[Path]:
    roots = {
        p.parent for p in tf_files(TERRAFORM) if re.search(r'^provider "aws"', p.read_text(), re.M)
    }
    return sorted(roots)


def parse_lock(path: Path) -> dict[str, dict[str, object]]:
    text = path.read_text()
    blocks = re.findall(
        r'provider "registry\.terraform\.io/hashicorp/([\w-]+)" \{\n'
        r'  version     = "([^"]+)"\n'
        r'  constraints = "([^"]+)"\n'
        r"  hashes = \[\n((?:    \"[^\"]+\",\n)+)  \]\n\}\n",
        text,
    )
    locked = {
        name: {
            "version": version,
            "constraints": constraints,
            "hashes": re.findall(r'"([^"]+)"', hashes),
        }
        for name, version, constraints, hashes in blocks
    }
    rebuilt = (
        LOCK_HEADER
        + "\n"
        + "\n".join(
            f'provider "registry.terraform.io/hashicorp/{name}" {{\n'
            f'  version     = "{spec["version"]}"\n'
            f'  constraints = "{spec["constraints"]}"\n'
            "  hashes = [\n"
            + "".join(f'    "{h}",\n' for h in spec["hashes"])  # type: ignore[attr-defined]
            + "  ]\n}\n"
            for name, spec in locked.items()
        )
    )
    assert rebuilt == text, f"{path}: not in the format terraform init writes"
    return locked


def allows(constraint: str, version: str) -> bool:
    match = ONE_MAJOR.match(constraint)
    assert match, constraint
    major, minor = int(match.group(1)), int(match.group(2))
    got = [int(part) for part in version.split(".")]
    return got[0] == major and got[1] >= minor


def test_the_root_modules_are_the_example_the_pipeline_and_its_bootstrap() -> None:
    names = [p.relative_to(TERRAFORM).as_posix() for p in root_modules()]
    assert names == ["cicd", "cicd/bootstrap", "examples/minimal"]


def test_every_provider_is_constrained_to_one_major_version() -> None:
    directories = {p.parent for p in tf_files(TERRAFORM)}
    found = 0
    for directory in sorted(directories):
        for name, constraint in required_providers(directory).items():
            found += 1
            assert ONE_MAJOR.match(constraint), (directory, name, constraint)
    assert found >= 5


@pytest.mark.parametrize("root", root_modules(), ids=lambda p: p.relative_to(TERRAFORM).as_posix())
def test_every_root_module_commits_a_lock_file_terraform_would_accept(root: Path) -> None:
    lock = root / ".terraform.lock.hcl"
    assert lock.is_file(), f"{lock} is missing"
    locked = parse_lock(lock)
    providers = providers_of_configuration(root)
    assert set(locked) == set(providers)
    for name, constraints in providers.items():
        spec = locked[name]
        assert spec["constraints"] in constraints, (name, spec["constraints"], constraints)
        for constraint in constraints:
            assert allows(constraint, str(spec["version"])), (name, constraint, spec["version"])
        hashes: list[str] = spec["hashes"]  # type: ignore[assignment]
        assert hashes == sorted(set(hashes))
        h1 = [h for h in hashes if h.startswith("h1:")]
        zh = [h for h in hashes if h.startswith("zh:")]
        assert h1 and zh and len(h1) + len(zh) == len(hashes)
        assert all(len(base64.b64decode(h[3:], validate=True)) == 32 for h in h1)
        assert all(re.fullmatch(r"zh:[0-9a-f]{64}", h) for h in zh)
        # one zip per platform the provider is released for (at least linux amd64/arm64,
        # darwin amd64/arm64, windows amd64)
        assert len(zh) >= 5


def test_the_same_provider_version_is_locked_in_every_root() -> None:
    versions: dict[str, set[str]] = {}
    for root in root_modules():
        for name, spec in parse_lock(root / ".terraform.lock.hcl").items():
            versions.setdefault(name, set()).add(str(spec["version"]))
    assert all(len(v) == 1 for v in versions.values()), versions
