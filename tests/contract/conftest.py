"""Contract suites: each port's behaviour on the local adapter AND the AWS adapter (moto)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "aws"))

import moto_env

from healthpipe.adapters.local.sqlite import Database

RUNTIMES = ["local", "aws"]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    yield from moto_env.moto_server()


@pytest.fixture(scope="session")
def aws(moto_endpoint: str) -> dict[str, Any]:
    return moto_env.clients(moto_endpoint)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "contract.db")
    yield database
    database.close()
