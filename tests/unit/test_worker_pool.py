"""Process pools whose workers end with the process that started them (a pool's workers
otherwise wait on their call queue forever once that process is SIGKILLed), and every pool
of the product made that way."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from healthpipe.dataops.worker_pool import PARENT_POLL_SECONDS
from healthpipe.owners import pid_alive

SRC = Path(__file__).resolve().parents[2] / "src" / "healthpipe"
MAKES_A_POOL = re.compile(r"ProcessPoolExecutor\(|multiprocessing\.Pool\(|\.Process\(")

# A parent that starts a pool of two workers (spawned or forked), has each report its pid
# and then sit idle in the pool, prints them and waits to be killed.
PARENT = """
import multiprocessing, os, sys, time
from healthpipe.dataops.worker_pool import worker_pool

def pid():
    time.sleep(0.3)  # both workers take one task each
    return os.getpid()

if __name__ == "__main__":
    pool = worker_pool(2, multiprocessing.get_context(sys.argv[1]))
    pids = sorted({f.result() for f in [pool.submit(pid) for _ in range(2)]})
    print(" ".join(map(str, pids)), flush=True)
    time.sleep(600)
"""


def alive(pid: int) -> bool:
    """Running: not gone, and not a zombie waiting for whoever adopted it to reap it."""
    if not pid_alive(pid):
        return False
    state = Path(f"/proc/{pid}/stat")
    return not (state.exists() and state.read_text().split(") ", 1)[1].startswith("Z"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for zombies")
@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_the_workers_end_soon_after_their_parent_is_killed(tmp_path: Path, method: str) -> None:
    script = tmp_path / "parent.py"
    script.write_text(PARENT, encoding="utf-8")
    parent = subprocess.Popen(
        [sys.executable, str(script), method], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        workers = [int(p) for p in parent.stdout.readline().split()]
        assert len(workers) == 2 and parent.pid not in workers
        assert all(alive(w) for w in workers)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 20 * PARENT_POLL_SECONDS
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [w for w in workers if alive(w)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == []


def test_every_process_pool_of_the_product_is_a_worker_pool() -> None:
    made_elsewhere = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.name != "worker_pool.py" and MAKES_A_POOL.search(path.read_text())
    ]
    assert made_elsewhere == []
