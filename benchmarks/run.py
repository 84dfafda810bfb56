"""Benchmark harness: our ingest, analyze, notify and `healthpipe run` against the original
algorithm (baseline), a DuckDB copy (floor) and a DuckDB copy into ingest's two output formats,
CSV and Parquet (outputs floor), on the same generated files.

    .venv/bin/python benchmarks/run.py [--sizes 1k,100k,2m,10m]
        [--out benchmarks/out/results.json] [--workdir /tmp/healthpipe-bench]

Every measured task runs in its own process (its peak RSS is its own); the fastest of
`--repeat` runs counts. Prints a table and the targets of issue 7 as MET / NOT MET, and
writes everything to the JSON file. Docs: docs/scaling.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import Measurement, command, task
from targets import evaluate, format_table

SEED = 20261125
SUFFIXES = {"k": 1_000, "m": 1_000_000}


def parse_size(text: str) -> int:
    text = text.strip().lower()
    factor = SUFFIXES.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in SUFFIXES else text
    return int(float(number) * factor)


def label(rows: int) -> str:
    for suffix, factor in (("m", 1_000_000), ("k", 1_000)):
        if rows >= factor and rows % factor == 0:
            return f"{rows // factor}{suffix}"
    return str(rows)


def users_for(rows: int) -> int:
    """About one reading a minute per user over a week at most: 20..1000 users."""
    return max(20, min(1000, rows // 10_000))


def best(runs: list[Measurement]) -> Measurement:
    return min(runs, key=lambda m: m.seconds)


def repeats_for(rows: int, asked: int | None) -> int:
    if asked is not None:
        return asked
    return 3 if rows <= 100_000 else 2 if rows <= 2_000_000 else 1


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def pipeline(source: Path, work: Path) -> dict[str, Measurement]:
    """ingest, then analyze and notify on its outputs, in one fresh workspace."""
    ws = fresh(work / "ws")
    ingest = task("ingest", str(source), str(ws), str(work / "ingested.json"))
    analyze = task("analyze", str(ws), str(work / "ingested.json"), str(work / "analyzed.json"))
    notify = task("notify", str(ws), str(work / "analyzed.json"))
    return {"ingest": ingest, "analyze": analyze, "notify": notify}


def whole_run(source: Path, work: Path) -> Measurement:
    ws = fresh(work / "ws-run")
    cli = Path(sys.executable).with_name("healthpipe")
    argv = [str(cli), "run", str(source), "--workspace", str(ws), "--json"]
    return command("run", argv)


def measure_size(rows: int, args: argparse.Namespace) -> dict[str, Any]:
    work = args.workdir / label(rows)
    work.mkdir(parents=True, exist_ok=True)
    source = work / f"vitals-{label(rows)}-seed{SEED}.csv"
    if not source.exists():
        gen = task("generate", str(rows), str(users_for(rows)), str(SEED), str(source))
        print(f"  generated {source.name} in {gen.seconds:.1f} s", flush=True)
    n = repeats_for(rows, args.repeat)
    runs: dict[str, list[Measurement]] = {k: [] for k in ("ingest", "analyze", "notify")}
    runs |= {"run": [], "floor": [], "outputs_floor": [], "baseline": []}
    for _ in range(n):
        runs["floor"].append(task("floor", str(source), str(work / "floor.csv")))
        runs["outputs_floor"].append(task("outputs_floor", str(source), str(work / "floor2")))
        for name, m in pipeline(source, work).items():
            runs[name].append(m)
        if rows <= args.baseline_max:
            runs["baseline"].append(task("baseline", str(source), str(work / "baseline")))
        runs["run"].append(whole_run(source, work))
    result: dict[str, Any] = {
        "rows_requested": rows,
        "bytes": source.stat().st_size,
        "repeats": n,
        "rows": runs["ingest"][0].info.get("rows"),
    }
    input_rows = (result["rows"] or {}).get("input") or rows
    for name, measured in runs.items():
        if not measured:
            result[name] = {"skipped": f"baseline runs only up to {label(args.baseline_max)} rows"}
            continue
        m = best(measured)
        result[name] = m.to_dict() | {
            "rows_per_s": round(input_rows / m.seconds) if m.seconds else None,
            "all_seconds": [round(x.seconds, 3) for x in measured],
            "max_peak_rss_mb": round(max(x.peak_rss_mb for x in measured), 1),
        }
    for name in ("floor", "outputs_floor", "baseline"):
        for f in ("bytes", "rows_input", "rows_valid", "rows_rejected"):
            result[name].pop(f, None)
    result["ratios"] = ratios(result)
    return result


def ratios(r: dict[str, Any]) -> dict[str, float | None]:
    def sec(name: str) -> float | None:
        value = r.get(name, {}).get("seconds")
        return float(value) if value else None

    def div(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a and b else None

    ingest = sec("ingest")
    return {
        "ingest_over_baseline": div(ingest, sec("baseline")),
        "baseline_over_ingest": div(sec("baseline"), ingest),
        "ingest_over_floor": div(ingest, sec("floor")),
        "outputs_floor_over_floor": div(sec("outputs_floor"), sec("floor")),
        "ingest_over_outputs_floor": div(ingest, sec("outputs_floor")),
        "analyze_over_ingest": div(sec("analyze"), ingest),
        "run_over_ingest": div(sec("run"), ingest),
    }


def machine() -> dict[str, Any]:
    import duckdb

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1k,100k,2m,10m")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/results.json"))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/healthpipe-bench"))
    parser.add_argument("--repeat", type=int, default=None, help="runs per task (best counts)")
    parser.add_argument("--baseline-max", type=parse_size, default=parse_size("2m"))
    args = parser.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine(), "seed": SEED, "sizes": {}}
    for rows in sizes:
        print(f"size {label(rows)} …", flush=True)
        results["sizes"][label(rows)] = measure_size(rows, args)
    results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    results["targets"] = evaluate(results["sizes"])
    results["elapsed_seconds"] = round(time.perf_counter() - started, 1)
    print(format_table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"results: {args.out}  (harness took {results['elapsed_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
