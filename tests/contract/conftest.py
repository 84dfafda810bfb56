"""Contract suites: each port's behaviour on the local adapter AND the AWS adapter (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import moto_env
import pytest

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
