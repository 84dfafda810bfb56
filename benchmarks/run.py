"""Benchmark harness: our ingest, analyze, notify and `healthpipe run` against the original
system's ingest and analyzer (original), its ingest alone (baseline), a plain-polars ingest of
the same rules and outputs (polars), and a DuckDB copy into ingest's two output formats, CSV
and Parquet (outputs floor), on the same generated files, of two shapes: `realistic`
(`healthpipe.synthetic`) and `uniform` (the original's own style, `uniform.py`).

    .venv/bin/python benchmarks/run.py [--sizes 1k,100k,2m,10m] [--shapes realistic,uniform]
        [--tasks ...] [--out benchmarks/out/results.json] [--workdir /tmp/healthpipe-bench]
        [--repeat N] [--baseline-max 2m] [--polars-max 10m] [--timeout 900] [--drop-inputs]

Every measured task runs in its own process (its peak RSS is its own, or its largest
worker's); the fastest of `--repeat` runs counts. Prints a table and the targets of issue 17
as MET / NOT MET, and writes everything to the JSON file. Docs: docs/scaling.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure
from measure import Measurement, TaskFailed, command, task
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
    """ingest, then analyze and notify on its outputs, in one fresh workspace (a stage that
    fails or times out ends the chain: what came before it is kept)."""
    ws = fresh(work / "ws")
    steps = (
        ("ingest", (str(source), str(ws), str(work / "ingested.json"))),
        ("analyze", (str(ws), str(work / "ingested.json"), str(work / "analyzed.json"))),
        ("notify", (str(ws), str(work / "analyzed.json"))),
    )
    out: dict[str, Measurement] = {}
    for name, args in steps:
        out[name] = attempt(name, lambda name=name, args=args: task(name, *args))
        if "failed" in out[name].info:
            break
    return out


def attempt(name: str, measured: Callable[[], Measurement]) -> Measurement:
    """The measurement, or a `failed` one saying why (the harness goes on with the rest).
    Each is printed as it ends, so a long run shows its figures before the table."""
    try:
        m = measured()
    except TaskFailed as exc:
        print(f"  {name}: {exc}", flush=True)
        return Measurement(name, 0.0, 0.0, 0.0, {"failed": str(exc)[:500]})
    cpu = "" if m.cpu_seconds is None else f", {m.cpu_seconds:.2f} CPU-s"
    print(f"  {name}: {m.seconds:.2f} s{cpu}, peak RSS {m.peak_rss_mb:.0f} MB", flush=True)
    return m


def chunked(source: Path, work: Path) -> dict[str, Measurement]:
    """The ingest stage on the chunked engine with 1 worker and with one per core (each in a
    fresh workspace: the ledger ingests a content once)."""
    out = {}
    for label_, workers in (("chunked_1", 1), ("chunked_n", os.cpu_count() or 1)):
        ws = fresh(work / f"ws-{label_}")
        args = (str(source), str(ws), str(work / f"{label_}.json"), str(workers))
        out[label_] = attempt(label_, lambda args=args: task("ingest_chunked", *args))
        shutil.rmtree(ws, ignore_errors=True)
    return out


def whole_run(source: Path, work: Path) -> Measurement:
    ws = fresh(work / "ws-run")
    cli = Path(sys.executable).with_name("healthpipe")
    argv = [str(cli), "run", str(source), "--workspace", str(ws), "--json"]
    return attempt("run", lambda: command("run", argv))


SHAPES = {"realistic": "generate", "uniform": "generate_uniform"}
# The tasks, in the order they run in each round; `pipeline` is ingest, analyze and notify.
TASKS = ("floor", "outputs_floor", "original", "polars", "pipeline", "run", "chunked")
DEFAULT_TASKS = ("outputs_floor", "original", "polars", "pipeline", "run")
# Peers that hold the whole file in memory run only up to a size (their option): the
# original decodes it into one list of dicts (about 1 GB per million rows: 2 GB at 2M, 10 GB
# at 10M); polars collects every row with its reasons before it writes (several GB at 10M).
IN_MEMORY = {"original": "baseline_max", "polars": "polars_max"}
# Inputs of this size and more (50M rows: 2.6 GB) have their workspaces and outputs deleted
# after each round, so that a run of the harness leaves only the input (`--drop-inputs`
# deletes that too) and the disk holds one task's files at a time.
BIG_INPUT_BYTES = 1 << 30


def key_for(rows: int, shape: str) -> str:
    """The results key of one file: '2m' for the realistic shape, '2m uniform' otherwise."""
    return label(rows) if shape == "realistic" else f"{label(rows)} {shape}"


def round_of(
    rows: int, shape_work: Path, source: Path, tasks: tuple[str, ...], args: argparse.Namespace
) -> dict[str, Measurement]:
    """One measurement of each asked task on `source`."""
    out: dict[str, Measurement] = {}
    big = source.stat().st_size >= BIG_INPUT_BYTES
    skipped = in_memory_skips(rows, args)
    for name in tasks:
        if name in skipped:
            continue
        if name == "pipeline":
            out |= pipeline(source, shape_work)
        elif name == "run":
            out["run"] = whole_run(source, shape_work)
        elif name == "chunked":
            out |= chunked(source, shape_work)
        elif name == "floor":
            dest = str(shape_work / "floor.csv")
            out["floor"] = attempt(name, lambda dest=dest: task("floor", str(source), dest))
        else:
            dest = str(shape_work / name)
            out[name] = attempt(name, lambda name=name, dest=dest: task(name, str(source), dest))
        if big:
            clean(shape_work, keep=source)
    return out


def in_memory_skips(rows: int, args: argparse.Namespace) -> dict[str, dict[str, str]]:
    """The asked peers that hold the whole file in memory and are not run at `rows`, each
    with the reason the results give."""
    out = {}
    for name, option in IN_MEMORY.items():
        limit = getattr(args, option)
        if name in args.tasks and rows > limit:
            flag = "--" + option.replace("_", "-")
            out[name] = {
                "skipped": f"holds the whole file in memory: runs only up to {label(limit)} "
                f"rows ({flag})"
            }
    return out


def clean(work: Path, keep: Path) -> None:
    """Delete everything under `work` but the input `keep`: workspaces, outputs, events."""
    for entry in work.iterdir():
        if entry == keep:
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


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
    result |= in_memory_skips(rows, args)
    for name, all_runs in runs.items():
        measured = [m for m in all_runs if "failed" not in m.info]
        if not measured:
            result[name] = {"failed": all_runs[0].info["failed"]}
            continue
        if "skipped" in measured[0].info:
            result[name] = {"skipped": measured[0].info["skipped"]}
            continue
        m = best(measured)
        result[name] = m.to_dict() | {
            "rows_per_s": round(input_rows / m.seconds) if m.seconds else None,
            "all_seconds": [round(x.seconds, 3) for x in measured],
            "max_peak_rss_mb": round(max(x.peak_rss_mb for x in measured), 1),
        }
        if len(measured) < len(all_runs):
            result[name]["failed_runs"] = len(all_runs) - len(measured)
    if args.drop_inputs:
        source.unlink(missing_ok=True)
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


# What the measured processes import; one unmeasured process imports them first, so that
# with `bytecode_env` the first measured run does not pay for compiling them.
WARM_IMPORTS = (
    "healthpipe.cli, healthpipe.stages.ingest, healthpipe.stages.analyze, "
    "healthpipe.stages.notify, healthpipe.report.render, healthpipe.report.charts, "
    "matplotlib.figure, matplotlib.backends.backend_agg, PIL.PngImagePlugin, duckdb"
)


def bytecode(args: argparse.Namespace) -> str:
    """Give the measured processes byte-compiled modules (`measure.bytecode_env`) unless
    `--source-imports`; say which way they import."""
    if args.source_imports:
        return "as this environment: " + (
            "compiled from source in every process"
            if "PYTHONDONTWRITEBYTECODE" in os.environ
            else "bytecode"
        )
    env = measure.bytecode_env(args.workdir / "pycache", os.environ)
    if env is None:
        return "bytecode beside the sources"
    measure.ENV = env
    measure.run_process([sys.executable, "-c", f"import {WARM_IMPORTS}"], timeout=300)
    return f"bytecode under {env['PYTHONPYCACHEPREFIX']} (PYTHONDONTWRITEBYTECODE was set)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1k,100k,2m,10m")
    parser.add_argument("--shapes", default="realistic,uniform", help=", ".join(SHAPES))
    parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS), help=", ".join(TASKS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/results.json"))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/healthpipe-bench"))
    parser.add_argument("--repeat", type=int, default=None, help="runs per task (best counts)")
    parser.add_argument("--baseline-max", type=parse_size, default=parse_size("2m"))
    parser.add_argument("--polars-max", type=parse_size, default=parse_size("10m"))
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds one task may take (then killed)"
    )
    parser.add_argument(
        "--drop-inputs", action="store_true", help="delete each generated input once measured"
    )
    parser.add_argument(
        "--source-imports",
        action="store_true",
        help="import as this environment does, even when that compiles every module anew",
    )
    args = parser.parse_args(argv)
    measure.TIMEOUT = args.timeout
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    args.tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    unknown = [s for s in shapes if s not in SHAPES] + [t for t in args.tasks if t not in TASKS]
    if unknown:
        parser.error(f"unknown shape or task: {', '.join(unknown)}")
    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine(), "seed": SEED, "sizes": {}}
    results["machine"]["imports"] = bytecode(args)
    for rows in sizes:
        for shape in shapes:
            print(f"size {key_for(rows, shape)} …", flush=True)
            results["sizes"][key_for(rows, shape)] = measure_size(rows, args, shape)
    results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    results["targets"] = evaluate(results["sizes"], results["machine"]["cpus"])
    results["elapsed_seconds"] = round(time.perf_counter() - started, 1)
    print(format_table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"results: {args.out}  (harness took {results['elapsed_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
