"""AWS runtime tests: a moto server over HTTP with the Terraform's resources and names."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import moto_env
import pytest
from lambda_harness import HANDLERS

from healthpipe.adapters.aws.s3 import S3ObjectStore
from healthpipe.synthetic import SyntheticSpec, generate_csv


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    yield from moto_env.moto_server()


@pytest.fixture
def aws(moto_endpoint: str) -> dict[str, Any]:
    """Clients on a freshly reset moto server (its backends are shared in this process)."""
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass
    return moto_env.clients(moto_endpoint)


@pytest.fixture
def stack(
    aws: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[moto_env.Stack]:
    """The deployed stack, and the environment a Lambda function would see."""
    deployed = moto_env.create_stack(aws)
    for name, value in {
        **deployed.env(),
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": moto_env.REGION,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "POWERTOOLS_METRICS_NAMESPACE": "healthpipe",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, module in HANDLERS.items():
        module._function.reset()  # a new container: ports and logger built on first call
        # its own /tmp: each invocation clears what it finds there (other test runs too)
        module._function.workdir = tmp_path / f"lambda-{name}"
    yield deployed
    for module in HANDLERS.values():
        module._function.reset()
        module._function.workdir = None


@pytest.fixture
def sample_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The seed sample (../shared), or a generated file of the same shape when absent."""
    try:
        seed: Path = request.getfixturevalue("seed_dir")
        return seed / "sample_data.csv"
    except pytest.skip.Exception:
        path = tmp_path / "sample_data.csv"
        generate_csv(SyntheticSpec(rows=1000, users=10, seed=11), path)
        return path


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys the S3 adapter downloads (the real download still runs)."""
    seen: list[str] = []
    real = S3ObjectStore._download

    def spy(self: S3ObjectStore, key: str, workdir: Path, version_id: str | None) -> Any:
        seen.append(key)
        return real(self, key, workdir, version_id)

    monkeypatch.setattr(S3ObjectStore, "_download", spy)
    return seen
