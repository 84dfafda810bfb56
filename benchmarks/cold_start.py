"""Cold import time of each Lambda function, from its unpacked deployment artifact.

For each function's zip (`healthpipe package`), unpacked into a clean folder, a fresh
interpreter of the target Python (`-I -S`: no site-packages, no user paths) with only the
artifact and a stand-in for what the Lambda runtime provides (boto3 and its dependencies,
byte-compiled as the runtime's are) on its path measures

- `handler import`: importing the handler module (what Lambda's init phase does; the
  figure the targets are for), and
- `first invoke`: what the first invocation does before its work starts: parse a sample
  event (the pydantic event models), configure Powertools logging, read the settings and
  build the ports (one boto3 session, every client: botocore's service models; fake
  credentials, no network), import the stages (DuckDB; jinja2 and matplotlib in the
  notifier).

Each function is measured in `--runs` fresh interpreters (after one unmeasured run that
warms the disk cache, as a Lambda's code is read from a local disk too); the table gives the
minimum and the median, wall and CPU time. On a shared machine the minimum is the run least
disturbed by other work and the CPU time is what load distorts least; the verdict (MET / NOT
MET, targets of issue 14 for the handler import: ingestor and analyzer <= 0.6 s, notifier
<= 1.5 s) is taken on the median wall time. The artifact's files are checked after the runs:
an import that wrote a `.pyc` (missing or unusable bytecode, which on Lambda's read-only
/var/task would be compiled again on every cold start) fails the benchmark.

    python benchmarks/cold_start.py                       # builds the zips (needs PyPI)
    python benchmarks/cold_start.py --dist dist/          # measures zips already built
    python benchmarks/cold_start.py --no-compile          # the same without .pyc, to compare

The zips must be built for this machine's architecture and a Python present here
(`python3.12` by default).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from healthpipe import constants as c
from healthpipe.lambdas import FUNCTIONS
from healthpipe.packaging import (
    PackageSpec,
    build_package,
    compile_tree,
    pip_command,
    target_python,
    zip_name,
)

TARGETS_S = {"ingestor": 0.6, "analyzer": 0.6, "notifier": 1.5}
RUNTIME_PACKAGES = ["boto3"]
HERE_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[
    platform.machine().lower()
]
# What the first invocation of each function receives (no real object or dataset behind it:
# only the parsing runs).
SAMPLE_EVENTS: dict[str, dict[str, Any]] = {
    "ingestor": {
        "source": "aws.s3",
        "detail-type": c.OBJECT_CREATED,
        "detail": {
            "bucket": {"name": "bucket"},
            "object": {"key": "raw/sample.csv", "size": 1000, "version-id": "v1"},
        },
    },
    "analyzer": {
        "source": c.SOURCE_INGESTOR,
        "detail-type": c.PROCESSING_COMPLETE,
        "detail": {"status": "success", "dataset_id": "d1"},
    },
    "notifier": {
        "source": c.SOURCE_ANALYZER,
        "detail-type": c.ANALYSIS_COMPLETE,
        "detail": {"status": "success", "dataset_id": "d1"},
    },
}
# The settings each function reads in Lambda (fake names; building clients calls no AWS).
PROBE_ENV = {
    "AWS_ACCESS_KEY_ID": "cold-start-probe",
    "AWS_SECRET_ACCESS_KEY": "cold-start-probe",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "HEALTHPIPE_BUCKET": "bucket",
    "HEALTHPIPE_LEDGER_TABLE": "ledger",
    "HEALTHPIPE_EVENT_BUS_NAME": "bus",
    "HEALTHPIPE_ANALYSES_TABLE": "analyses",
    "HEALTHPIPE_PSEUDONYM_SECRET": "cold-start-probe-secret-0123456789abcdef",
    "POWERTOOLS_TRACE_DISABLED": "true",
}
FUNCTION_ENV = {
    "ingestor": {},
    "analyzer": {"HEALTHPIPE_ANALYST": "bedrock"},
    "notifier": {"HEALTHPIPE_MAILER": "ses", "HEALTHPIPE_EMAIL_FROM": "a@example.com"},
}

PROBE = """
import sys, time
started, cpu_started = time.perf_counter(), time.process_time()
sys.path[:0] = [{package!r}, {runtime!r}]
import importlib, io, json
from pathlib import Path
handler = importlib.import_module({handler!r})
handler_wall, handler_cpu = time.perf_counter() - started, time.process_time() - cpu_started
function = handler._function
function.workdir = Path({workdir!r})
function._log_stream = io.StringIO()
work = function.parse(json.loads({event!r}))
function.logger()
function.ports()
for path in function.stages.values():
    importlib.import_module(path.split(":")[0])
print(handler_wall, time.perf_counter() - started, handler_cpu, time.process_time() - cpu_started)
"""
FIGURES = ("handler_s", "first_invoke_s", "handler_cpu_s", "first_invoke_cpu_s")


def runtime_stand_in(spec: PackageSpec, python: str, target: Path) -> Path:
    """boto3 and its dependencies for the target Python, byte-compiled (what the Lambda
    runtime provides); kept in `target` and reused when already there."""
    if not (target / "boto3").is_dir():
        command = pip_command(spec, target, RUNTIME_PACKAGES)
        subprocess.run(command, check=True, capture_output=True, text=True)
        compile_tree(target, spec.python_version, python)
    return target


def files_of(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def written_at_import(before: dict[str, tuple[int, int]], root: Path) -> list[str]:
    """Files the imports created or rewrote in the artifact (bytecode that was not used)."""
    after = files_of(root)
    return sorted(name for name, stat in after.items() if before.get(name) != stat)


def measure(
    python: str, package: Path, runtime: Path, function: str, runs: int, flags: list[str]
) -> dict[str, list[float]]:
    spec = FUNCTIONS[function]
    workdir = package.parent / "tmp"
    probe = PROBE.format(
        package=str(package),
        runtime=str(runtime),
        handler=spec.handler.rsplit(".", 1)[0],
        workdir=str(workdir),
        event=json.dumps(SAMPLE_EVENTS[function]),
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "MPLBACKEND": "Agg",
        "HOME": str(package.parent),
        "AWS_LAMBDA_FUNCTION_NAME": f"healthpipe-{function}",
        **PROBE_ENV,
        **FUNCTION_ENV[function],
    }
    samples: dict[str, list[float]] = {name: [] for name in FIGURES}
    for attempt in range(runs + 1):
        done = subprocess.run(
            [python, "-I", "-S", *flags, "-c", probe],
            capture_output=True,
            text=True,
            check=False,
            cwd=package.parent,
            env=env,
        )
        if done.returncode != 0:
            raise SystemExit(f"{function}: import failed:\n{done.stderr[-3000:]}")
        if attempt == 0:
            continue  # warms the disk cache
        values = [float(x) for x in done.stdout.split()[-len(FIGURES) :]]
        for name, value in zip(FIGURES, values, strict=True):
            samples[name].append(value)
    return samples


def summary(samples: dict[str, list[float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, values in samples.items():
        out[f"{name}_min"] = min(values)
        out[f"{name}_median"] = statistics.median(values)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, help="folder of zips already built")
    parser.add_argument("--python-version", default="3.12")
    parser.add_argument("--python", help="interpreter of that version (default: found on PATH)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--runtime", type=Path, help="folder for the boto3 stand-in (kept, reused when there)"
    )
    parser.add_argument("--no-compile", action="store_true", help="build without .pyc")
    parser.add_argument(
        "--strip-pyc",
        action="store_true",
        help="delete the zips' .pyc and import with -B: every run compiles from source",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    python = target_python(args.python_version, args.python)
    if python is None:
        raise SystemExit(f"no python{args.python_version} here to import the artifacts with")
    spec = PackageSpec(arch=HERE_ARCH, python_version=args.python_version)  # type: ignore[arg-type]
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="healthpipe-cold-") as tmp_name:
        tmp = Path(tmp_name)
        dist = args.dist
        if dist is None:
            dist = tmp / "dist"
            build_package(
                PackageSpec(
                    spec.arch, spec.python_version, dist, not args.no_compile, python=python
                )
            )
        runtime = runtime_stand_in(spec, python, args.runtime or tmp / "runtime")
        for function in FUNCTIONS:
            package = tmp / function / "task"
            with zipfile.ZipFile(dist / zip_name(spec, function)) as archive:
                archive.extractall(package)
            unzipped = sum(p.stat().st_size for p in package.rglob("*") if p.is_file())
            if args.strip_pyc:
                for cache in list(package.rglob("__pycache__")):
                    shutil.rmtree(cache)
            flags = ["-B"] if args.strip_pyc else []
            before = files_of(package)
            results[function] = summary(
                measure(python, package, runtime, function, args.runs, flags)
            )
            written = written_at_import(before, package)
            if written and not (args.no_compile or args.strip_pyc):
                raise SystemExit(
                    f"{function}: importing wrote {len(written)} files into the artifact "
                    f"(its .pyc were not used), e.g. {written[:3]}"
                )
            results[function]["unzipped_mb"] = round(unzipped / 2**20, 1)
            results[function]["target_s"] = TARGETS_S[function]
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None
    if args.json:
        print(json.dumps({"functions": results, "load": [load_before, load_after]}))
        return 0
    print(
        f"cold start, {args.runs} fresh python{args.python_version} -I -S per function "
        f"({platform.machine()}, "
        f"{'no .pyc' if args.no_compile or args.strip_pyc else 'with the .pyc, none written'})"
    )
    if load_before and load_after:
        print(
            f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after, on "
            f"{os.cpu_count()} CPUs (wall times grow with load; CPU times less)"
        )
    print(
        f"{'':<19}{'handler import: wall':^22}{'cpu':^16}   {'first invoke: wall':^18}{'cpu':^16}"
    )
    print(
        f"{'function':<10}{'unzipped':>9}  {'min':>9}{'median':>9}  {'min':>7}{'median':>8}   "
        f"{'min':>8}{'median':>9}  {'min':>7}{'median':>8}  {'target':>6}  verdict"
    )
    for function, r in results.items():
        met = r["handler_s_median"] <= TARGETS_S[function]
        print(
            f"{function:<10}{r['unzipped_mb']:>7.1f}MB  "
            f"{r['handler_s_min']:>8.3f}s{r['handler_s_median']:>8.3f}s  "
            f"{r['handler_cpu_s_min']:>6.3f}s{r['handler_cpu_s_median']:>7.3f}s   "
            f"{r['first_invoke_s_min']:>7.3f}s{r['first_invoke_s_median']:>8.3f}s  "
            f"{r['first_invoke_cpu_s_min']:>6.3f}s{r['first_invoke_cpu_s_median']:>7.3f}s  "
            f"{TARGETS_S[function]:>5.1f}s  {'MET' if met else 'NOT MET'}"
        )
    print("verdict: the handler import's median wall time against its target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
