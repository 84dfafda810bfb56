"""Cold import time of each Lambda function, from its unpacked deployment artifact.

For each function's zip (`healthpipe package`), unpacked into a clean folder, a fresh
interpreter of the target Python (`-I -S`: no site-packages, no user paths) with only the
artifact and a stand-in for what the Lambda runtime provides (boto3 and its dependencies) on
its path imports

- `handler`: the handler module (what Lambda's init phase does), and
- `first call`: the handler, its stages, its adapters, bootstrap and settings: everything the
  first invocation imports before its work starts.

Each figure is the median of `--runs` fresh interpreters, after one unmeasured run that
warms the disk cache (a Lambda's code is read from a local disk too), wall and CPU time (the
CPU time is what a loaded machine distorts least). Targets (issue 14), for the handler
import: ingestor and analyzer <= 0.6 s, notifier <= 1.5 s.

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

from healthpipe.lambdas import FUNCTIONS
from healthpipe.packaging import PackageSpec, build_package, target_python, zip_name

TARGETS_S = {"ingestor": 0.6, "analyzer": 0.6, "notifier": 1.5}
RUNTIME_PACKAGES = ("boto3",)
HERE_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[
    platform.machine().lower()
]

PROBE = """
import sys, time
started = time.perf_counter()
cpu_started = time.process_time()
sys.path[:0] = [{package!r}, {runtime!r}]
import importlib
handler = importlib.import_module({handler!r})
after_handler = time.perf_counter()
cpu_handler = time.process_time() - cpu_started
if {first_call!r}:
    for path in handler._function.stages.values():
        importlib.import_module(path.split(":")[0])
    for adapter in {adapters!r}:
        importlib.import_module(adapter)
    import healthpipe.bootstrap, healthpipe.config, healthpipe.lambdas.logging_setup
done = time.perf_counter()
print(after_handler - started, done - started, cpu_handler, time.process_time() - cpu_started)
"""


def runtime_stand_in(python: str, folder: Path) -> Path:
    """boto3 and its dependencies for the target Python (what the Lambda runtime provides)."""
    target = folder / "runtime"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--python-version",
            python_version_of(python),
            "--target",
            str(target),
            *RUNTIME_PACKAGES,
        ],
        check=True,
    )
    return target


def python_version_of(python: str) -> str:
    done = subprocess.run(
        [python, "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def measure(
    python: str, package: Path, runtime: Path, function: str, runs: int, flags: list[str]
) -> dict[str, float]:
    spec = FUNCTIONS[function]
    probe = PROBE.format(
        package=str(package),
        runtime=str(runtime),
        handler=spec.handler.rsplit(".", 1)[0],
        first_call=True,
        adapters=list(spec.adapters),
    )
    handler_s: list[float] = []
    first_s: list[float] = []
    cpu_s: list[float] = []
    cpu_handler_s: list[float] = []
    for attempt in range(runs + 1):
        done = subprocess.run(
            [python, "-I", "-S", *flags, "-c", probe],
            capture_output=True,
            text=True,
            check=False,
            cwd=package.parent,
            env={"PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg", "HOME": str(package.parent)},
        )
        if done.returncode != 0:
            raise SystemExit(f"{function}: import failed:\n{done.stderr[-3000:]}")
        if attempt == 0:
            continue  # warms the disk cache
        handler_t, first_t, cpu_handler_t, cpu_t = (float(x) for x in done.stdout.split())
        cpu_handler_s.append(cpu_handler_t)
        handler_s.append(handler_t)
        first_s.append(first_t)
        cpu_s.append(cpu_t)
    return {
        "handler_s": statistics.median(handler_s),
        "first_call_s": statistics.median(first_s),
        "first_call_cpu_s": statistics.median(cpu_s),
        "handler_cpu_s": statistics.median(cpu_handler_s),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, help="folder of zips already built")
    parser.add_argument("--python-version", default="3.12")
    parser.add_argument("--python", help="interpreter of that version (default: found on PATH)")
    parser.add_argument("--runs", type=int, default=5)
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
        runtime = runtime_stand_in(python, tmp)
        results: dict[str, dict[str, float]] = {}
        for function in FUNCTIONS:
            artifact = dist / zip_name(spec, function)
            package = tmp / function / "task"
            with zipfile.ZipFile(artifact) as archive:
                archive.extractall(package)
            if args.strip_pyc:
                for cache in list(package.rglob("__pycache__")):
                    shutil.rmtree(cache)
            flags = ["-B"] if args.strip_pyc else []
            results[function] = measure(python, package, runtime, function, args.runs, flags)
            results[function]["unzipped_mb"] = round(
                sum(p.stat().st_size for p in package.rglob("*") if p.is_file()) / 2**20, 1
            )
    if args.json:
        print(json.dumps(results))
        return 0
    print(
        f"cold import, median of {args.runs} fresh python{args.python_version} -I -S "
        f"({platform.machine()}, "
        f"{'no .pyc' if args.no_compile or args.strip_pyc else 'with the .pyc'})"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs (wall times grow with load; CPU less)")
    print(
        f"{'function':<10} {'unzipped':>9} {'handler':>9} {'(cpu)':>8} {'first call':>11} "
        f"{'(cpu)':>8} {'target':>7}"
    )
    for function, r in results.items():
        ok = "ok" if r["handler_s"] <= TARGETS_S[function] else "OVER"
        print(
            f"{function:<10} {r['unzipped_mb']:>7.1f}MB {r['handler_s']:>8.3f}s "
            f"{r['handler_cpu_s']:>7.3f}s {r['first_call_s']:>10.3f}s "
            f"{r['first_call_cpu_s']:>7.3f}s {TARGETS_S[function]:>6.1f}s {ok}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
