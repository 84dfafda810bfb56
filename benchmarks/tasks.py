"""One measured task per process, so that each peak RSS is the task's own.

    python benchmarks/tasks.py TASK ARGS...   ->  prints one JSON line:
    {"task": ..., "seconds": ..., "peak_rss_mb": ..., ...}

Tasks: generate ROWS USERS SEED OUT | generate_uniform ROWS USERS SEED OUT |
floor IN OUT | outputs_floor IN OUT_STEM | baseline IN OUT_DIR | original IN OUT_DIR |
polars IN OUT_DIR |
ingest IN WORKSPACE EVENT_OUT | analyze WORKSPACE EVENT_IN EVENT_OUT |
notify WORKSPACE EVENT_IN | validate IN OUT_DIR MEMORY_MB
The timed span excludes interpreter start-up and imports (the `run` task in run.py times
the whole `healthpipe run` process instead).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MB = 1024.0  # ru_maxrss is in KiB on Linux


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MB


def _generate(rows: str, users: str, seed: str, out: str) -> dict[str, Any]:
    from healthpipe.synthetic import SyntheticSpec, generate_csv

    generate_csv(SyntheticSpec(rows=int(rows), users=int(users), seed=int(seed)), Path(out))
    return {"bytes": Path(out).stat().st_size}


def _generate_uniform(rows: str, users: str, seed: str, out: str) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from uniform import generate_uniform

    generate_uniform(int(rows), int(users), int(seed), Path(out))
    return {"bytes": Path(out).stat().st_size}


def _floor(source: str, out: str) -> dict[str, Any]:
    """DuckDB with its defaults reads the CSV and writes it back out unchanged."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(
            f"COPY (SELECT * FROM read_csv('{source}')) TO '{out}' (FORMAT csv, HEADER true)"
        )
    finally:
        con.close()
    return {}


def _outputs_floor(source: str, out_stem: str) -> dict[str, Any]:
    """The floor for ingest's output formats: DuckDB with its defaults reads the CSV and
    writes it back out unchanged twice, as CSV and as Parquet (no checks, no duplicates).
    A reference that shows what writing the two formats ingest must produce costs."""
    import duckdb

    con = duckdb.connect()
    try:
        for fmt, suffix in (("csv, HEADER true", "csv"), ("parquet", "parquet")):
            con.execute(
                f"COPY (SELECT * FROM read_csv('{source}')) TO '{out_stem}.{suffix}' (FORMAT {fmt})"
            )
    finally:
        con.close()
    return {}


def _baseline(source: str, out_dir: str) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from baseline_original import process

    return process(Path(source), Path(out_dir))


def _original(source: str, out_dir: str) -> dict[str, Any]:
    """The original system's ingest, then its analyzer over the processed CSV."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from baseline_original import ingest_and_analyze

    return ingest_and_analyze(Path(source), Path(out_dir))


def _polars(source: str, out_dir: str) -> dict[str, Any]:
    """The plain-polars peer (`peers/polars_ingest.py`); `skipped` without polars."""
    try:
        import polars  # noqa: F401
    except ImportError:
        return {"skipped": "polars is not installed (pip install -e '.[bench]')"}
    sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
    from polars_ingest import process

    return process(Path(source), Path(out_dir))


def _runtime(workspace: str, **settings: Any) -> Any:
    from healthpipe.bootstrap import build_local
    from healthpipe.config import load_settings

    return build_local(load_settings({"workspace": Path(workspace), **settings}))


def _stage_setup_ingest(source: str, workspace: str, **settings: Any) -> tuple[Any, Any]:
    from healthpipe.events import object_created
    from healthpipe.orchestration.runs import upload_raw

    runtime = _runtime(workspace, **settings)
    key = upload_raw(runtime, Path(source))
    target = runtime.store.path_for(key)
    event = object_created(
        runtime.store.bucket, key, runtime.store.version_of(target), target.stat().st_size
    )
    return runtime, event


def _save_event(events: list[Any], out: str) -> None:
    Path(out).write_text(json.dumps(events[0].to_dict()) if events else "{}")


def _load_event(path: str) -> Any:
    from healthpipe.events import Event

    return Event.from_dict(json.loads(Path(path).read_text()))


def _cpu() -> float:
    """CPU seconds (user + system) of this process and the children it waited for."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds (the span alone, without start-up and imports) and result."""
    started, cpu = time.perf_counter(), _cpu()
    result = fn()
    return time.perf_counter() - started, _cpu() - cpu, result


def _ingest(source: str, workspace: str, event_out: str) -> dict[str, Any]:
    from healthpipe.stages.ingest import ingest

    runtime, event = _stage_setup_ingest(source, workspace)
    seconds, _, result = _timed(lambda: ingest(event, runtime.ports))
    _save_event(result.events, event_out)
    runtime.close()
    out = {"seconds": seconds, "outcome": result.outcome, "rows": result.info.get("rows")}
    # above `chunked_threshold_mb` (50M rows) the stage runs the chunked engine's workers
    worker_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / MB
    return out | ({"workers_peak_rss_mb": round(worker_rss, 1)} if worker_rss else {})


def _ingest_chunked(source: str, workspace: str, event_out: str, workers: str) -> dict[str, Any]:
    """The ingest stage on the chunked engine (threshold 0) with `workers` processes; the
    largest worker's peak RSS is reported beside this process's."""
    from healthpipe.stages.ingest import ingest

    runtime, event = _stage_setup_ingest(
        source, workspace, chunked_threshold_mb=0, workers=int(workers)
    )
    seconds, _, result = _timed(lambda: ingest(event, runtime.ports))
    _save_event(result.events, event_out)
    runtime.close()
    worker_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / MB
    return {
        "seconds": seconds,
        "outcome": result.outcome,
        "rows": result.info.get("rows"),
        "workers": int(workers),
        "workers_peak_rss_mb": round(worker_rss, 1),
    }


def _analyze(workspace: str, event_in: str, event_out: str) -> dict[str, Any]:
    from healthpipe.stages.analyze import analyze

    runtime = _runtime(workspace)
    event = _load_event(event_in)
    seconds, cpu, result = _timed(lambda: analyze(event, runtime.ports))
    _save_event(result.events, event_out)
    runtime.close()
    return {
        "seconds": seconds,
        "span_cpu_seconds": round(cpu, 3),
        "outcome": result.outcome,
    }


def _notify(workspace: str, event_in: str) -> dict[str, Any]:
    from healthpipe.stages.notify import notify

    runtime = _runtime(workspace)
    event = _load_event(event_in)
    seconds, _, result = _timed(lambda: notify(event, runtime.ports))
    runtime.close()
    return {"seconds": seconds, "outcome": result.outcome}


TASKS: dict[str, Callable[..., dict[str, Any]]] = {
    "generate": _generate,
    "generate_uniform": _generate_uniform,
    "original": _original,
    "polars": _polars,
    "floor": _floor,
    "outputs_floor": _outputs_floor,
    "baseline": _baseline,
    "ingest": _ingest,
    "ingest_chunked": _ingest_chunked,
    "analyze": _analyze,
    "notify": _notify,
}


def main(argv: list[str]) -> int:
    name, args = argv[1], argv[2:]
    started = time.perf_counter()
    info = TASKS[name](*args)
    info.setdefault("seconds", time.perf_counter() - started)
    print(json.dumps({"task": name, **info, "peak_rss_mb": round(_peak_rss_mb(), 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
