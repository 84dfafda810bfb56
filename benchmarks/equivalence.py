"""Checks that validation outputs do not change across an optimisation.

    python benchmarks/equivalence.py snapshot DIR   # with the code before the change
    python benchmarks/equivalence.py compare DIR    # with the code after it

Runs `validate_file` under every builtin profile on a generated file (bad rows, duplicates),
on an adversarial hand-written file, and on `../shared/data/seed/*.csv` when present, and
compares every output file byte for byte and every count.
"""

from __future__ import annotations

import filecmp
import json
import sys
from pathlib import Path

from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.header import read_header
from healthpipe.dataops.profiles import load_profile
from healthpipe.dataops.validation import SplitPaths, validate_file
from healthpipe.domain.rules import BUILTIN_PROFILES
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


def main(argv: list[str]) -> int:
    mode, folder = argv[1], Path(argv[2])
    inputs = cases(folder / "inputs")
    if mode == "snapshot":
        run_all(inputs, folder / "reference")
        print(f"snapshot written to {folder / 'reference'}")
        return 0
    run_all(inputs, folder / "current")
    problems = compare(folder / "reference", folder / "current")
    print("\n".join(problems) if problems else "identical")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
