"""Runs one benchmark task in its own process and reads its wall time and peak RSS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TASKS = HERE / "tasks.py"


@dataclass
class Measurement:
    task: str
    seconds: float
    wall_seconds: float
    peak_rss_mb: float
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            **self.info,
        }


def run_process(argv: list[str], *, timeout: float) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB of that one child, stdout) of a command.

    The child is reaped with os.wait4, whose rusage is the child's own (ru_maxrss, KiB on
    Linux), unlike RUSAGE_CHILDREN, which keeps the largest child so far.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, text=True)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                raise RuntimeError(f"{' '.join(argv[1:4])} timed out after {timeout:.0f} s")
            time.sleep(0.01)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode not in (0, 2):
        raise RuntimeError(f"{' '.join(argv[1:4])} failed ({proc.returncode}): {stderr[-2000:]}")
    return wall, usage.ru_maxrss / 1024.0, stdout


def task(name: str, *args: str, timeout: float = 900.0) -> Measurement:
    wall, rss, out = run_process([sys.executable, str(TASKS), name, *args], timeout=timeout)
    line = out.strip().splitlines()[-1]
    info = json.loads(line)
    seconds = float(info.pop("seconds"))
    info.pop("task", None)
    info.pop("peak_rss_mb", None)
    return Measurement(name, seconds, wall, rss, info)


def command(name: str, argv: list[str], timeout: float = 900.0) -> Measurement:
    wall, rss, _ = run_process(argv, timeout=timeout)
    return Measurement(name, wall, wall, rss)
