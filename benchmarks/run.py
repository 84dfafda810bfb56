"""Benchmark harness: our ingest, analyze, notify and `healthpipe run` against the original
system's ingest and analyzer (original), its ingest alone (baseline), a plain-polars ingest of
the same rules and outputs (polars), and a DuckDB copy into ingest's two output formats, CSV
and Parquet (outputs floor), on the same generated files, of two shapes: `realistic`
(`healthpipe.synthetic`) and `uniform` (the original's own style, `uniform.py`).

    .venv/bin/python benchmarks/run.py [--sizes 1k,100k,2m,10m] [--shapes realistic,uniform]
        [--tasks ...] [--out benchmarks/out/results.json] [--workdir /tmp/healthpipe-bench]

Every measured task runs in its own process (its peak RSS is its own); the fastest of
`--repeat` runs counts. Prints a table and the targets of issue 17 as MET / NOT MET, and
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


def chunked(source: Path, work: Path) -> dict[str, Measurement]:
    """The ingest stage on the chunked engine with 1 worker and with one per core (each in a
    fresh workspace: the ledger ingests a content once)."""
    out = {}
    for label_, workers in (("chunked_1", 1), ("chunked_n", os.cpu_count() or 1)):
        ws = fresh(work / f"ws-{label_}")
        out[label_] = task(
            "ingest_chunked", str(source), str(ws), str(work / f"{label_}.json"), str(workers)
        )
    return out


def whole_run(source: Path, work: Path) -> Measurement:
    ws = fresh(work / "ws-run")
    cli = Path(sys.executable).with_name("healthpipe")
    argv = [str(cli), "run", str(source), "--workspace", str(ws), "--json"]
    return command("run", argv)


SHAPES = {"realistic": "generate", "uniform": "generate_uniform"}
# The tasks, in the order they run in each round; `pipeline` is ingest, analyze and notify.
TASKS = ("floor", "outputs_floor", "original", "polars", "pipeline", "run", "chunked")
DEFAULT_TASKS = ("outputs_floor", "original", "polars", "pipeline", "run")
# The original holds the whole file in memory (about 10 GB at 10M rows): up to --baseline-max.
IN_MEMORY = ("original",)


def key_for(rows: int, shape: str) -> str:
    """The results key of one file: '2m' for the realistic shape, '2m uniform' otherwise."""
    return label(rows) if shape == "realistic" else f"{label(rows)} {shape}"


def round_of(
    rows: int, shape_work: Path, source: Path, tasks: tuple[str, ...], args: argparse.Namespace
) -> dict[str, Measurement]:
    """One measurement of each asked task on `source`."""
    out: dict[str, Measurement] = {}
    for name in tasks:
        if name in IN_MEMORY and rows > args.baseline_max:
            continue
        if name == "pipeline":
            out |= pipeline(source, shape_work)
        elif name == "run":
            out["run"] = whole_run(source, shape_work)
        elif name == "chunked":
            out |= chunked(source, shape_work)
        elif name == "floor":
            out["floor"] = task("floor", str(source), str(shape_work / "floor.csv"))
        else:
            out[name] = task(name, str(source), str(shape_work / name))
    return out


def measure_size(rows: int, args: argparse.Namespace, shape: str = "realistic") -> dict[str, Any]:
    work = args.workdir / label(rows) / shape
    work.mkdir(parents=True, exist_ok=True)
    source = work / f"vitals-{label(rows)}-{shape}-seed{SEED}.csv"
    if not source.exists():
        gen = task(SHAPES[shape], str(rows), str(users_for(rows)), str(SEED), str(source))
        print(f"  generated {source.name} in {gen.seconds:.1f} s", flush=True)
    n = repeats_for(rows, args.repeat)
    runs: dict[str, list[Measurement]] = {}
    for _ in range(n):
        for name, m in round_of(rows, work, source, args.tasks, args).items():
            runs.setdefault(name, []).append(m)
    first = runs.get("ingest") or []
    result: dict[str, Any] = {
        "shape": shape,
        "rows_requested": rows,
        "bytes": source.stat().st_size,
        "repeats": n,
        "rows": first[0].info.get("rows") if first else None,
    }
    input_rows = (result["rows"] or {}).get("input") or rows
    for name in IN_MEMORY:
        if name in args.tasks and name not in runs:
            result[name] = {"skipped": f"runs only up to {label(args.baseline_max)} rows"}
    for name, measured in runs.items():
        if "skipped" in measured[0].info:
            result[name] = {"skipped": measured[0].info["skipped"]}
            continue
        m = best(measured)
        result[name] = m.to_dict() | {
            "rows_per_s": round(input_rows / m.seconds) if m.seconds else None,
            "all_seconds": [round(x.seconds, 3) for x in measured],
            "max_peak_rss_mb": round(max(x.peak_rss_mb for x in measured), 1),
        }
    if "original" in result and "ingest_seconds" in result["original"]:
        result["baseline"] = {"seconds": result["original"]["ingest_seconds"]}
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
        "baseline_over_ingest": div(sec("baseline"), ingest),
        "polars_over_ingest": div(sec("polars"), ingest),
        "ingest_over_outputs_floor": div(ingest, sec("outputs_floor")),
        "analyze_over_ingest": div(sec("analyze"), ingest),
        "original_over_run": div(sec("original"), sec("run")),
        "run_over_ingest": div(sec("run"), ingest),
        "chunked_1_over_ingest": div(sec("chunked_1"), ingest),
        "chunked_n_over_ingest": div(sec("chunked_n"), ingest),
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
    parser.add_argument("--shapes", default="realistic,uniform", help=", ".join(SHAPES))
    parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS), help=", ".join(TASKS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/results.json"))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/healthpipe-bench"))
    parser.add_argument("--repeat", type=int, default=None, help="runs per task (best counts)")
    parser.add_argument("--baseline-max", type=parse_size, default=parse_size("2m"))
    args = parser.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    args.tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    unknown = [s for s in shapes if s not in SHAPES] + [t for t in args.tasks if t not in TASKS]
    if unknown:
        parser.error(f"unknown shape or task: {', '.join(unknown)}")
    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine(), "seed": SEED, "sizes": {}}
    for rows in sizes:
        for shape in shapes:
            print(f"size {key_for(rows, shape)} …", flush=True)
            results["sizes"][key_for(rows, shape)] = measure_size(rows, args, shape)
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
