"""The size guard of the ingestor: refuse, before downloading it, a file this function cannot take.

The rules come from docs/scaling.md ("Choosing a Lambda for a file size"): the ingestor's
`/tmp` must hold about 2.5 x the CSV (the input, the processed CSV, the Parquet, DuckDB's
spill), and a stage runs at about 9 MB/s of CSV on one full vCPU (Lambda gives one vCPU at
1769 MB of memory, proportionally less below), with a 2.5 x time margin. A `.csv.gz` is
counted at `GZIP_EXPANSION` times its size. `Capacity` is pure; `capacity_now` reads the
function's limits (memory from the Lambda environment, free `/tmp`, remaining time).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MB = 1024 * 1024
DISK_FACTOR = 2.5
TIME_MARGIN = 2.5
RATE_PER_VCPU = 9 * MB  # bytes of CSV per second on one full vCPU
FULL_VCPU_MB = 1769
GZIP_EXPANSION = 5
LARGE_FILE_PATH = "docs/scaling.md#files-larger-than-one-lambda-can-take"
MEMORY_ENV = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"


@dataclass(frozen=True)
class Capacity:
    """What one invocation can hold: free bytes in its work dir, memory, seconds left."""

    tmp_free_bytes: int
    memory_mb: int | None
    remaining_seconds: float | None

    def rate(self) -> float:
        share = min(1.0, (self.memory_mb or FULL_VCPU_MB) / FULL_VCPU_MB)
        return RATE_PER_VCPU * share

    def refusal(self, key: str, size: int | None) -> str | None:
        """Why `key` of `size` bytes cannot be ingested here (None: it can, or unknown)."""
        if size is None:
            return None
        csv_bytes = size * (GZIP_EXPANSION if key.lower().endswith(".gz") else 1)
        disk = size + (DISK_FACTOR - 1) * csv_bytes
        seconds = TIME_MARGIN * csv_bytes / self.rate()
        limits = []
        if disk > self.tmp_free_bytes:
            limits.append(
                f"needs about {disk / MB:.0f} MB of /tmp, {self.tmp_free_bytes / MB:.0f} MB free"
            )
        if self.remaining_seconds is not None and seconds > self.remaining_seconds:
            limits.append(
                f"needs about {seconds:.0f} s at {self.memory_mb or '?'} MB of memory, "
                f"{self.remaining_seconds:.0f} s left before the timeout"
            )
        if not limits:
            return None
        return (
            f"file too large for this function ({size / MB:.1f} MB; "
            + "; ".join(limits)
            + f"): raise its memory, timeout or ephemeral storage, or use the large-file path "
            f"({LARGE_FILE_PATH})"
        )


def capacity_now(workdir: Path, context: Any) -> Capacity:
    """The limits of this invocation: free space under `workdir`, memory, time left."""
    workdir.mkdir(parents=True, exist_ok=True)
    memory = os.environ.get(MEMORY_ENV, "")
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return Capacity(
        tmp_free_bytes=shutil.disk_usage(workdir).free,
        memory_mb=int(memory) if memory.isdigit() else None,
        remaining_seconds=remaining() / 1000 if callable(remaining) else None,
    )
