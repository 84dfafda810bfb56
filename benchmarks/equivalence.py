"""Checks that outputs do not change across a refactoring or an optimisation.

    python benchmarks/equivalence.py snapshot DIR   # with the code before the change
    python benchmarks/equivalence.py compare DIR    # with the code after it

Validation: runs `validate_file` under every builtin profile on a generated file (bad rows,
duplicates), on an adversarial hand-written file, and on `../shared/data/seed/*.csv` when
present, and compares every output file byte for byte and every count.

Pipeline: runs the whole local pipeline (ingest -> analyze -> notify to the outbox) with the
clock fixed at `FIXED_NOW` and a fixed pseudonym key on the seed sample and on a generated
100,000-row file, then compares byte for byte the manifest, the analysis JSON, the anomalies
Parquet, the stored summary, the saved report HTML and, of each email, its subject, text,
HTML and images. Only truly volatile values are normalised (`VOLATILE`): durations in
`timings` and `analyst.latency_ms`, `created_epoch` (wall clock of the store write), the local
object version id (the raw copy's mtime) and the correlation id made from it, and the email
headers `Date` and `Message-ID`.
"""

from __future__ import annotations

import email
import email.policy
import filecmp
import json
import re
import sys
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.header import read_header
from healthpipe.domain.rules import BUILTIN_PROFILES

# the snapshot runs the code before a change: both layouts import
try:
    from healthpipe.dataops.profiles import load_profile
except ImportError:  # before the profiles moved out of domain/rules.py
    from healthpipe.domain.rules import load_profile  # type: ignore[attr-defined,no-redef]
try:
    from healthpipe.dataops.validation import SplitPaths, validate_file
except ImportError:  # before dataops/validation/
    from healthpipe.dataops.validate import SplitPaths, validate_file  # type: ignore[no-redef]
from healthpipe.errors import InputError
from healthpipe.synthetic import SyntheticSpec, generate_csv

NOW = "2026-11-25T12:00:00+00:00"
SEED_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "seed"

ADVERSARIAL = (
    "Event_Time , USER_ID,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp,note\n"
    "2026-11-01T00:00:00Z,u1,70,98,100,36.6,120,80,ok\n"
    "2026-11-01T00:00:00Z,u1,70,98,100,36.6,120,80,dup\n"
    "2026-11-01 00:00:00+00:00,u1,71,98,100,36.6,120,80,dup other spelling\n"
    " 2026-11-01T00:01:00Z , u1 , 72 , 98 , 100 , 36.6 , 120 , 80 ,spaces\n"
    "2026-11-01T00:02:00Z,u1,nan,98,100,36.6,120,80,nan\n"
    "2026-11-01T00:03:00Z,u1,inf,98,100,36.6,120,80,inf\n"
    "2026-11-01T00:04:00Z,u1,-inf,98,100,36.6,120,80,-inf\n"
    "2026-11-01T00:05:00Z,u1,Infinity,98,100,36.6,120,80,Infinity\n"
    "2026-11-01T00:06:00Z,u1,0x50,98,100,36.6,120,80,hex\n"
    "2026-11-01T00:07:00Z,u1,1_000,98,100,36.6,120,80,underscore\n"
    "2026-11-01T00:08:00Z,u1,1e2,98,1e3,36.6,120,80,exponent\n"
    "2026-11-01T00:09:00Z,u1,.5e2,98,100.0,36.6,120,80,leading dot\n"
    "2026-11-01T00:10:00Z,u1,70.,98,100.5,36.6,120,80,fraction steps\n"
    "2026-11-01T00:11:00Z,u1,+70,98,-0,36.6,120,80,signs\n"
    "2026-11-01T00:12:00Z,u1,7 0,98,100,36.6,120,80,inner space\n"
    "2026-11-01T00:13:00Z,u1,,,,,,,all missing\n"
    "2026-11-01T00:14:00Z,,70,98,100,36.6,120,120,missing user equal bp\n"
    "2026-11-01T00:15:00Z,u2,70,98,100,36.6,120,121,dbp above\n"
    "tomorrow,u2,70,98,100,36.6,120,80,bad time\n"
    "2026-11-01,u2,70,98,100,36.6,120,80,date only\n"
    "2026-11-01T25:00:00Z,u2,70,98,100,36.6,120,80,hour 25\n"
    "2030-01-01T00:00:00Z,u2,70,98,100,36.6,120,80,future\n"
    "2026-11-01T00:16:00+0530,u2,70,98,100,36.6,120,80,offset\n"
    "2026-11-01T00:17:00Z,=cmd|' /C calc'!A0,70,98,100,36.6,120,80,formula user\n"
    "2026-11-01T00:18:00Z,u2,70,98,100,36.6,120,80,@SUM(1)\n"
    "2026-11-01T00:19:00Z,u2,-70,98,100,36.6,120,80,negative\n"
    '2026-11-01T00:20:00Z,u2,70,98,100,36.6,120,80,"multi\nline"\n'
    "2026-11-01T00:21:00Z,u2,70,98,100,36.6,120,80\n"
    "2026-11-01T00:22:00Z,u2,70,98,100,36.6,120,80,x,extra\n"
    "2026-11-01T00:23:00Z,u2,70,98,100,36.6,120,80,after malformed\n"
    "2026-11-01T00:25:00Z,u2,1.5,98,100,36.6,120,80,low hr\n"
    "2026-11-01T00:26:00Z,u2,70,98,100,36.6,120,80,\t tab note\n"
    "2026-11-01T00:27:00Z," + "x" * 200 + ",70,98,100,36.6,120,80,long user\n"
    "2026-11-01T00:28:00Z,u3,70,98,100,1e400,120,80,overflow\n"
    "2026-11-01T00:29:00Z,u3,70,98,100,36.6,120,80,\n"
)


def cases(base: Path) -> list[Path]:
    base.mkdir(parents=True, exist_ok=True)
    generated = base / "generated.csv"
    if not generated.exists():
        generate_csv(SyntheticSpec(rows=60_000, users=30, seed=5, duplicate_rate=0.01), generated)
    adversarial = base / "adversarial.csv"
    adversarial.write_text(ADVERSARIAL, encoding="utf-8")
    seeds = sorted(SEED_DIR.glob("*.csv")) if SEED_DIR.is_dir() else []
    return [generated, adversarial, *seeds]


def run_all(inputs: list[Path], out_dir: Path) -> dict[str, object]:
    summary: dict[str, object] = {}
    for path in inputs:
        for name in BUILTIN_PROFILES:
            tag = f"{path.stem}.{name}"
            target = out_dir / tag
            target.mkdir(parents=True, exist_ok=True)
            split = SplitPaths(
                target / "processed.csv", target / "processed.parquet", target / "rejected.csv"
            )
            try:
                result = validate_file(
                    path,
                    read_header(path),
                    load_profile(name),
                    split,
                    now_iso=NOW,
                    limits=EngineLimits(memory_limit_mb=256, temp_dir=target / "tmp"),
                )
                summary[tag] = result.__dict__
            except InputError as exc:
                summary[tag] = {"error": str(exc)}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
    return summary


def parquet_rows(path: Path) -> list[tuple[object, ...]]:
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(f"SELECT * FROM read_parquet('{path}')").fetchall()
    finally:
        con.close()


def compare(reference: Path, current: Path) -> list[str]:
    problems = []
    ref = json.loads((reference / "summary.json").read_text())
    cur = json.loads((current / "summary.json").read_text())
    if ref != cur:
        problems.append(f"summaries differ:\n{json.dumps(ref)}\n{json.dumps(cur)}")
    for tag in ref:
        for name in ("processed.csv", "rejected.csv"):
            a, b = reference / tag / name, current / tag / name
            if a.exists() != b.exists() or (a.exists() and not filecmp.cmp(a, b, shallow=False)):
                problems.append(f"{tag}/{name} differs")
        a, b = reference / tag / "processed.parquet", current / tag / "processed.parquet"
        if a.exists() != b.exists() or (a.exists() and parquet_rows(a) != parquet_rows(b)):
            problems.append(f"{tag}/processed.parquet differs")
    return problems


# --------------------------------------------------------------------------- whole pipeline
FIXED_NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PIPELINE_ROWS = 100_000
PSEUDONYM_KEY = "0" * 64
VOLATILE = (
    "timings.*",
    "analyst.latency_ms",
    "created_epoch",
    "source.version_id / correlation_id (the local object version is the raw copy's mtime)",
    "email headers Date, Message-ID; MIME boundaries",
)


def pipeline_cases(base: Path) -> list[Path]:
    base.mkdir(parents=True, exist_ok=True)
    generated = base / "pipeline-100k.csv"
    if not generated.exists():
        end = datetime(2026, 11, 25, 11, 0)
        generate_csv(SyntheticSpec(rows=PIPELINE_ROWS, users=50, seed=1, end=end), generated)
    seeds = sorted(SEED_DIR.glob("*.csv")) if SEED_DIR.is_dir() else []
    return [*seeds, generated]


def _fix_clock() -> None:
    """Every `utc_now` the stages imported returns `FIXED_NOW`."""
    from healthpipe import events

    real = events.utc_now
    for name, module in list(sys.modules.items()):
        if name.startswith("healthpipe") and getattr(module, "utc_now", None) is real:
            module.utc_now = lambda: FIXED_NOW  # type: ignore[attr-defined]


def _normalise(doc: Any) -> Any:
    if isinstance(doc, dict):
        out = {}
        for key, value in doc.items():
            if key in ("timings", "latency_ms", "created_epoch", "version_id"):
                value = "<volatile>"
            elif key == "correlation_id" and isinstance(value, str):
                value = re.sub(r"@[0-9a-f]+-[0-9a-f]+$", "@<version>", value)
            out[key] = _normalise(value)
        return out
    if isinstance(doc, list):
        return [_normalise(v) for v in doc]
    return doc


def _json_file(path: Path, target: Path) -> None:
    """The document normalised, keys in their written order, with the original indent."""
    text = path.read_text()
    indent = 2 if text.startswith('{\n  "') else 1
    target.write_text(json.dumps(_normalise(json.loads(text)), indent=indent, default=str))


def _email_parts(path: Path, target: Path) -> None:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    target.mkdir(parents=True, exist_ok=True)
    headers = [f"{k}: {v}" for k, v in message.items() if k not in ("Date", "Message-ID")]
    (target / "headers.txt").write_text("\n".join(h for h in headers if "boundary" not in h))
    for index, part in enumerate(message.walk()):
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        (target / f"{index:02d}-{part.get_content_type().replace('/', '_')}").write_bytes(payload)


def run_pipeline(inputs: list[Path], out_dir: Path) -> None:
    import shutil
    import sqlite3

    from healthpipe.bootstrap import build_local
    from healthpipe.config import load_settings
    from healthpipe.orchestration.runs import run_files

    workspace = out_dir / "workspace"
    shutil.rmtree(workspace, ignore_errors=True)
    workspace.mkdir(parents=True)
    (workspace / "pseudonym.key").write_text(PSEUDONYM_KEY)
    runtime = build_local(load_settings({"workspace": workspace}))
    _fix_clock()
    try:
        outcomes = run_files(runtime, inputs)
    finally:
        runtime.close()
    bucket, saved = workspace / "bucket", out_dir / "pipeline"
    shutil.rmtree(saved, ignore_errors=True)
    for outcome in outcomes:
        dataset = str(outcome.dataset_id)
        target = saved / dataset
        target.mkdir(parents=True)
        _json_file(bucket / "manifests" / f"{dataset}.json", target / "manifest.json")
        _json_file(bucket / "analyzed" / f"{dataset}.json", target / "analysis.json")
        shutil.copy(bucket / "analyzed" / f"{dataset}_anomalies.parquet", target)
        shutil.copy(bucket / "reports" / f"{dataset}.html", target / "report-saved.html")
        for eml in sorted((workspace / "outbox").glob(f"*-{dataset}.eml")):
            _email_parts(eml, target / eml.stem.rsplit("-", 1)[0])
        with sqlite3.connect(workspace / "healthpipe.db") as db:
            (summary,) = db.execute(
                "SELECT summary FROM analyses WHERE dataset_id = ?", (dataset,)
            ).fetchone()
            items = [
                r[0]
                for r in db.execute(
                    "SELECT item FROM flagged WHERE dataset_id = ? ORDER BY item_key", (dataset,)
                )
            ]
        normalised = json.dumps(_normalise(json.loads(summary)), default=str)
        (target / "summary.json").write_text(normalised)
        (target / "flagged.jsonl").write_text("".join(f"{i}\n" for i in items))
    shutil.rmtree(workspace)


def compare_pipeline(reference: Path, current: Path) -> list[str]:
    problems = []
    ref = {p.relative_to(reference) for p in reference.rglob("*") if p.is_file()}
    cur = {p.relative_to(current) for p in current.rglob("*") if p.is_file()}
    problems += [f"pipeline/{p}: missing" for p in sorted(ref - cur)]
    problems += [f"pipeline/{p}: new" for p in sorted(cur - ref)]
    for path in sorted(ref & cur):
        if not filecmp.cmp(reference / path, current / path, shallow=False):
            problems.append(f"pipeline/{path} differs")
    if not ref:
        problems.append("pipeline: no reference outputs")
    return problems


def main(argv: list[str]) -> int:
    mode, folder = argv[1], Path(argv[2])
    inputs = cases(folder / "inputs")
    pipeline_inputs = pipeline_cases(folder / "inputs")
    if mode == "snapshot":
        run_all(inputs, folder / "reference")
        run_pipeline(pipeline_inputs, folder / "reference")
        print(f"snapshot written to {folder / 'reference'}")
        return 0
    run_all(inputs, folder / "current")
    run_pipeline(pipeline_inputs, folder / "current")
    problems = compare(folder / "reference", folder / "current")
    problems += compare_pipeline(folder / "reference" / "pipeline", folder / "current" / "pipeline")
    print("\n".join(problems) if problems else "identical")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
