"""The DuckDB limits every stage's engine runs with: memory, threads, a spill folder."""

from __future__ import annotations

from pathlib import Path

from healthpipe.dataops.engine import EngineLimits
from healthpipe.stages.settings import EngineSettings


def engine_limits(engine: EngineSettings, workdir: Path) -> EngineLimits:
    return EngineLimits(
        memory_limit_mb=engine.memory_limit_mb,
        threads=engine.threads,
        temp_dir=workdir / "duckdb-tmp",
    )
