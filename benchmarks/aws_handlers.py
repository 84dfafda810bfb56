"""The AWS executors' Lambda handlers at scale: each invocation's CPU, peak RSS and /tmp.

    python benchmarks/aws_handlers.py run CSV OUT_JSON [--memory-mb 1769] [--group-rows N]
    python benchmarks/aws_handlers.py assemble-parquet PROCESSED_PARQUET COPIES [MEMORY_MB]

Starts a moto server (127.0.0.1, in its own process, so its CPU is not the handlers'),
creates the stack the tests create (tests/aws/moto_env.py), uploads CSV to raw/, and walks
the chunked-ingest definition and then the grouped-analysis definition as Terraform renders
them with its defaults (256 MiB chunks, 16 buckets, groups of 2M readings), with the tests'
walker (tests/aws/test_aws_chunked.py `Walker`: the order is the rendered ASL's, not a list
here). Each Lambda invocation runs in a fresh subprocess (a cold container) with
AWS_LAMBDA_FUNCTION_MEMORY_SIZE as configured, and reports its wall, CPU (user + sys of the
process, its threads and children: interpreter start and imports included), peak RSS and
the largest size its work directory (its `/tmp`) reached, polled every 0.2 s. Writes one
JSON record per invocation to OUT_JSON (and prints a table).

A benchmark, not a test: it asserts nothing and moto keeps every object in its memory
(a 10M-row file: ~0.5 GB of CSV plus the outputs). Do not run it at 50M rows.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TESTS_AWS = ROOT / "tests" / "aws"
MB = 1024.0 * 1024.0
TICK = os.sysconf("SC_CLK_TCK")
SERVER = (
    "import sys, time; sys.path.insert(0, {tests!r}); import moto_env\n"
    "server = moto_env.moto_server(); print(next(server), flush=True)\n"
    "while True: time.sleep(3600)\n"
)


# --- one invocation, in its own process -----------------------------------------------------
def _tree_bytes(root: Path) -> int:
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # removed while we walk
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def invoke(request_path: str) -> None:
    """Child: run one handler on the payload in `request_path`, write its result and costs."""
    request = json.loads(Path(request_path).read_text())
    workdir = Path(request["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)
    peak = [0]
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.2):
            peak[0] = max(peak[0], _tree_bytes(workdir))

    import importlib

    from healthpipe.lambdas import FUNCTIONS

    started = time.perf_counter()
    spec = FUNCTIONS[request["function"]]
    module = importlib.import_module(spec.handler.rsplit(".", 1)[0])
    module._function.workdir = workdir
    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    outcome: dict[str, Any]
    try:
        outcome = {"result": module.handler(request["payload"])}
    except Exception as error:  # the walker's Catch decides, as the state machine's
        outcome = {"error": type(error).__name__, "cause": str(error)[:300]}
    stop.set()
    watcher.join()
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    outcome |= {
        "wall_s": time.perf_counter() - started,
        "cpu_s": own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime,
        "peak_rss_mb": max(own.ru_maxrss, children.ru_maxrss) / 1024.0,
        "tmp_peak_mb": peak[0] / MB,
    }
    Path(request["out"]).write_text(json.dumps(outcome, default=str))


# --- the walk -----------------------------------------------------------------------------
def _cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def run(csv: Path, out: Path, memory_mb: int, group_rows: int) -> None:
    sys.path.insert(0, str(TESTS_AWS))
    import boto3.s3.transfer
    import moto_env
    from test_aws_chunked import Walker, _asl

    from healthpipe import constants as c
    from healthpipe.events import object_created

    work = out.parent / f"{out.stem}.work"
    work.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER.format(tests=str(TESTS_AWS))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    endpoint = server.stdout.readline().strip()
    records: list[dict[str, Any]] = []
    try:
        aws = moto_env.clients(endpoint)
        stack = moto_env.create_stack(aws)
        env = {
            **os.environ,
            **stack.env(),
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": moto_env.REGION,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "POWERTOOLS_METRICS_NAMESPACE": "healthpipe",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
        log = (work / "handlers.log").open("a")

        class Measured(Walker):  # type: ignore[misc]
            def invoke(self, arn: str, payload: dict[str, Any]) -> Any:
                name = arn.rsplit(":", 1)[-1].removeprefix("healthpipe-")
                n = len(records)
                request = work / f"{n:03d}-{name}.json"
                result = work / f"{n:03d}-{name}.out.json"
                request.write_text(
                    json.dumps(
                        {
                            "function": name,
                            "payload": payload,
                            "workdir": str(work / f"tmp-{n:03d}-{name}"),
                            "out": str(result),
                        }
                    )
                )
                moto_before = _cpu_of(server.pid)
                subprocess.run(
                    [sys.executable, __file__, "invoke", str(request)],
                    env=env,
                    stdout=log,
                    stderr=log,
                    check=True,
                )
                outcome = json.loads(result.read_text())
                record = {"function": name, "moto_cpu_s": _cpu_of(server.pid) - moto_before}
                record |= {k: v for k, v in outcome.items() if k != "result"}
                records.append(record)
                print(json.dumps(record), flush=True)
                if "error" in outcome:
                    raise RuntimeError(f"{name}: {outcome['error']}: {outcome.get('cause')}")
                return outcome["result"]

        key = f"raw/{csv.name}"
        started = time.perf_counter()
        aws["s3"].upload_file(
            str(csv),
            stack.bucket,
            key,
            Config=boto3.s3.transfer.TransferConfig(multipart_chunksize=64 * 1024 * 1024),
        )
        version = aws["s3"].head_object(Bucket=stack.bucket, Key=key)["VersionId"]
        print(json.dumps({"upload_s": time.perf_counter() - started}), flush=True)
        moto_env.receive(aws["sqs"], stack.queues["ingestor"])  # the single path's, unused
        asl = _asl()
        chunked = asl.render(
            asl.STATEMACHINE / "chunked_ingest.asl.json.tftpl",
            {"chunk_bytes": str(256 * 1048576), "buckets": "16"},
        )
        event = object_created(stack.bucket, key, version, csv.stat().st_size).to_dict()
        arn = "arn:aws:states:us-east-1:123456789012:execution:healthpipe-chunked-ingest:b1"
        walked = Measured(aws["s3"], aws["events"]).run(chunked, event, {"Execution": {"Id": arn}})
        assert walked["state"] == "Assemble", walked
        (complete,) = [
            e
            for e in moto_env.receive(aws["sqs"], stack.queues["analyzer"])
            if e["detail-type"] == c.PROCESSING_COMPLETE
        ]
        grouped = asl.render(
            asl.STATEMACHINE / "grouped_analyze.asl.json.tftpl", {"group_rows": str(group_rows)}
        )
        arn = "arn:aws:states:us-east-1:123456789012:execution:healthpipe-grouped-analyze:b1"
        context = {"Execution": {"Id": arn, "Input": complete}}
        walked = Measured(aws["s3"], aws["events"]).run(grouped, complete, context)
        assert walked["state"] == "Merge", walked
    finally:
        server.terminate()
        server.wait()
        out.write_text(json.dumps({"csv": str(csv), "invocations": records}, indent=1))
    print(f"{'function':16} {'wall s':>8} {'CPU s':>8} {'moto CPU':>8} {'RSS MB':>8} {'tmp MB':>8}")
    for r in records:
        print(
            f"{r['function']:16} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} {r['moto_cpu_s']:8.1f}"
            f" {r['peak_rss_mb']:8.0f} {r['tmp_peak_mb']:8.0f}"
        )


# --- Assemble's Parquet rewrite at any size, on local files (no moto) -----------------------
def assemble_parquet(part: Path, copies: int, memory_mb: int) -> None:
    """Assemble's one step that grows with the file, `merge_parquet_parts` (the Parquet parts
    read in order and written as one file), on `copies` links of one processed Parquet file
    (a 10M-row file five times: the 50M-row file's parts), with the DuckDB limits the
    Lambda's settings give (60 % of its memory, a thread per core). Prints CPU, peak RSS and
    the work directory's size (parts are links: the output's size)."""
    from healthpipe.bootstrap import DUCKDB_SHARE_OF_LAMBDA_MEMORY
    from healthpipe.dataops.engine import EngineLimits
    from healthpipe.dataops.parquet_parts import merge_parquet_parts

    work = part.parent / f"assemble-{copies}"
    work.mkdir(exist_ok=True)
    parts = []
    for index in range(copies):
        link = work / f"p{index}.parquet"
        if not link.exists():
            os.link(part, link)
        parts.append(link)
    limits = EngineLimits(int(memory_mb * DUCKDB_SHARE_OF_LAMBDA_MEMORY), 0, work / "tmp")
    started = time.perf_counter()
    facts = merge_parquet_parts(parts, work / "processed.parquet", limits=limits)
    own = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "rows": facts.rows,
                "wall_s": time.perf_counter() - started,
                "cpu_s": own.ru_utime + own.ru_stime,
                "peak_rss_mb": own.ru_maxrss / 1024.0,
                "output_mb": (work / "processed.parquet").stat().st_size / MB,
            }
        )
    )
    (work / "processed.parquet").unlink()


def main(argv: list[str]) -> None:
    if argv[:1] == ["invoke"]:
        invoke(argv[1])
        return
    if argv[:1] == ["assemble-parquet"]:
        assemble_parquet(Path(argv[1]), int(argv[2]), int(argv[3]) if argv[3:] else 1769)
        return
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=["run"])
    parser.add_argument("csv", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--memory-mb", type=int, default=1769)
    parser.add_argument("--group-rows", type=int, default=2_000_000)
    args = parser.parse_args(argv)
    run(args.csv, args.out, args.memory_mb, args.group_rows)


if __name__ == "__main__":
    main(sys.argv[1:])
