"""Issue 18 (2): analysing a file costs what the file costs, not what the history costs.

A 30-day series (`healthpipe generate --days 30`, one file per day, 50 participants) goes
through `healthpipe run` in one workspace, so file k is analysed with k - 1 days of history
in the participant-history store. The analyze stage's own timings (`timings` in each
analysis JSON: fetch, history load and merge, compute, history save, analyst) give its cost
per file. Ratios within one run (no absolute targets):

- file 30 / file 1 (target <= 1.5), and the mean of files 28-30 / files 1-3 (steadier on a
  shared machine);
- file 30 with its history / the same file in a fresh workspace (no history): what the
  history itself adds.

    python benchmarks/history_cost.py [--rows-per-day 20000] [--users 50] [--days 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HEALTHPIPE = [sys.executable, "-c", "from healthpipe.cli import main; main()"]
TARGET = 1.5
STAGE_PARTS = ("fetch_ms", "history_ms", "compute_ms", "history_save_ms", "analyst_ms")


def run(workspace: Path, files: list[Path]) -> list[dict[str, Any]]:
    """Analyses of `files`, in order, from one `healthpipe run`."""
    out = subprocess.run(
        [*HEALTHPIPE, "run", "--json", "--workspace", str(workspace), *map(str, files)],
        check=False,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"healthpipe run failed ({out.returncode}): {out.stderr.strip()}")
    analyses = []
    for item in json.loads(out.stdout)["files"]:
        path = workspace / "bucket" / "analyzed" / f"{item['dataset_id']}.json"
        analyses.append(json.loads(path.read_text()))
    return analyses


def stage_ms(analysis: dict[str, Any]) -> int:
    timings = analysis["timings"]
    return sum(int(timings.get(part, 0)) for part in STAGE_PARTS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-per-day", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="history-cost-") as tmp:
        root = Path(tmp)
        subprocess.run(
            [*HEALTHPIPE, "generate", "--out", str(root / "day.csv"), "--rows",
             str(args.rows_per_day), "--users", str(args.users), "--days", str(args.days),
             "--end", "2026-01-31T12:00:00", "--seed", "18"],
            check=True, capture_output=True,
        )  # fmt: skip
        files = sorted(root.glob("day-*.csv"))
        series = run(root / "series", files)
        fresh = run(root / "fresh", files[-1:])[0]
    costs = [stage_ms(a) for a in series]
    print(f"{len(files)} files, {args.rows_per_day} rows, {args.users} participants each")
    print("file  stage ms  history load+merge ms  history save ms  participants with history")
    for k, a in enumerate(series, 1):
        with_history = sum(1 for u in a["users"]["top"] if u.get("has_history"))
        t = a["timings"]
        print(
            f"{k:4d}  {costs[k - 1]:8d}  {t.get('history_ms', 0):21d}  "
            f"{t.get('history_save_ms', 0):15d}  {with_history}"
        )
    last_first = costs[-1] / max(costs[0], 1)
    tail_head = statistics.fmean(costs[-3:]) / max(statistics.fmean(costs[:3]), 1)
    own = costs[-1] / max(stage_ms(fresh), 1)
    verdict = "MET" if last_first <= TARGET and tail_head <= TARGET else "NOT MET"
    print(f"file {len(files)} / file 1: {last_first:.2f}  (target <= {TARGET})")
    print(f"files {len(files) - 2}-{len(files)} / files 1-3: {tail_head:.2f}")
    print(f"file {len(files)} with history / without: {own:.2f}")
    print(verdict)
    return 0 if verdict == "MET" else 1


if __name__ == "__main__":
    raise SystemExit(main())
