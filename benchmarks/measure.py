"""Runs one benchmark task in its own process and reads its wall time and peak RSS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TASKS = HERE / "tasks.py"
# Seconds a measured process may take before it is killed (`run.py --timeout`).
TIMEOUT = 900.0
# The environment of every measured process (None: this process's own); `run.py` sets it,
# e.g. to give the children bytecode (`bytecode_env`).
ENV: dict[str, str] | None = None


def bytecode_env(prefix: Path, environ: Mapping[str, str]) -> dict[str, str] | None:
    """An environment in which imports use and write byte-compiled modules, or None when this
    one already does.

    An installed package has its `.pyc` (pip compiles them; the Lambda zips carry them, see
    `cold_start.py`). With PYTHONDONTWRITEBYTECODE set and no `.pyc` beside the sources, as
    in a venv built under that variable, every measured process would compile each module it
    imports from source again (about 1.3 CPU-seconds of a `healthpipe run`: 0.4 s for the
    CLI, 0.9 s for matplotlib). The children write and read their bytecode under `prefix`
    (PYTHONPYCACHEPREFIX), so nothing is written beside the sources. `environ` is the
    environment the children would otherwise get."""
    if "PYTHONDONTWRITEBYTECODE" not in environ:
        return None
    env = {k: v for k, v in environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(prefix)
    return env


@dataclass
class Measurement:
    task: str
    seconds: float
    wall_seconds: float
    peak_rss_mb: float
    info: dict[str, Any] = field(default_factory=dict)
    # user + system CPU seconds of the whole process tree (what load distorts least)
    cpu_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        cpu = {} if self.cpu_seconds is None else {"cpu_seconds": round(self.cpu_seconds, 3)}
        return {
            "seconds": round(self.seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            **cpu,
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            **self.info,
        }


class TaskFailed(RuntimeError):
    """A measured process failed or ran out of time (its whole process group is killed)."""


@dataclass
class Finished:
    wall: float
    peak_rss_mb: float
    cpu_seconds: float
    stdout: str


def run_process(argv: list[str], *, timeout: float) -> Finished:
    """Wall seconds, peak RSS in MB, CPU seconds and stdout of a command.

    The child is reaped with os.wait4, whose rusage is the child's own and that of the
    children it reaped (a worker pool's processes): ru_maxrss (KiB on Linux) is the largest
    of them, not a sum, unlike RUSAGE_CHILDREN here, which keeps the largest child so far.
    The child leads its own process group, so a timeout kills its workers too.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdout=out, stderr=err, text=True, env=ENV, start_new_session=True
        )
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if time.perf_counter() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                os.wait4(proc.pid, 0)
                raise TaskFailed(f"{' '.join(argv[1:4])} timed out after {timeout:.0f} s")
            time.sleep(0.01)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode not in (0, 2):
        raise TaskFailed(f"{' '.join(argv[1:4])} failed ({proc.returncode}): {stderr[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return Finished(wall, usage.ru_maxrss / 1024.0, cpu, stdout)


def task(name: str, *args: str, timeout: float | None = None) -> Measurement:
    done = run_process([sys.executable, str(TASKS), name, *args], timeout=timeout or TIMEOUT)
    line = done.stdout.strip().splitlines()[-1]
    info = json.loads(line)
    seconds = float(info.pop("seconds"))
    info.pop("task", None)
    info.pop("peak_rss_mb", None)
    return Measurement(name, seconds, done.wall, done.peak_rss_mb, info, done.cpu_seconds)


def command(name: str, argv: list[str], timeout: float | None = None) -> Measurement:
    done = run_process(argv, timeout=timeout or TIMEOUT)
    return Measurement(name, done.wall, done.wall, done.peak_rss_mb, {}, done.cpu_seconds)
