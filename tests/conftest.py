"""Shared fixtures. Tests that read ../shared skip cleanly when it is absent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from healthpipe.bootstrap import LocalRuntime, build_local
from healthpipe.config import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
SHARED_SEED = REPO.parent / "shared" / "data" / "seed"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's HEALTHPIPE_* settings or a healthpipe.toml in the cwd."""
    import os

    for name in list(os.environ):
        if name.startswith("HEALTHPIPE_") and name != "HEALTHPIPE_REQUIRE_BROWSER":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _healthpipe_logger_as_imported() -> None:
    """Every test starts with the `healthpipe` logger as importing it leaves it: an
    in-process CLI call (`logs.configure`) or handler (`configure_logging`) gives it a
    handler and turns `propagate` off, and that outlives the test. pytest attaches its
    capture handler to the loggers that do not propagate when a phase starts, so a later
    test that turns `propagate` back on saw each record twice (once on each handler)."""
    import logging

    from healthpipe.lambdas.logging_setup import MARK

    logger = logging.getLogger("healthpipe")
    ours = [h for h in logger.handlers if getattr(h, "_healthpipe", False) or getattr(h, MARK, 0)]
    for handler in ours:
        logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


# Fixed-date test data (the seed sample, hand-written rows) is dated 2023-2025. Validation may
# not see "now" before this instant, so that such readings are never "in the future" when the
# suite runs with the clock shifted back (CI runs the `clock` e2e tests under faketime at
# 2024-01-01); with today's clock or a later one nothing changes.
DATA_NOT_BEFORE = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clock_after_fixed_test_data(monkeypatch: pytest.MonkeyPatch) -> None:
    import healthpipe.stages.ingest as ingest

    monkeypatch.setattr(ingest, "utc_now", lambda: max(datetime.now(UTC), DATA_NOT_BEFORE))


@pytest.fixture
def seed_dir() -> Path:
    if not SHARED_SEED.is_dir():
        pytest.skip("../shared/data/seed is not available in this checkout")
    return SHARED_SEED


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path / "ws"


@pytest.fixture
def settings(workspace: Path) -> Settings:
    return load_settings({"workspace": workspace, "retry_base_seconds": 0.0})


@pytest.fixture
def runtime(settings: Settings) -> Iterator[LocalRuntime]:
    rt = build_local(settings)
    yield rt
    rt.close()
