"""A plain-polars ingest: healthpipe's `plausible` rules and its three outputs, written the
way a data engineer would write them with polars (issue 17, "Peers"), to measure against.

    python benchmarks/peers/polars_ingest.py INPUT.csv OUT_DIR

Outputs in OUT_DIR: `processed.csv` (valid rows: trimmed cells, formula-guarded text),
`processed.parquet` (source_row, event_time as an instant, event_time_text, user_id, vitals
as doubles), `rejected.csv` (source_row, reject_reason with every reason `;`-joined, the
cells formula-guarded, raw_line). The rules are the profile's (`domain/profiles/
plausible.toml`): blank / ISO-8601 / not more than 24 h ahead for event_time, blank / at
most 128 characters for user_id, plain decimal numbers in range for the vitals (steps
whole), diastolic < systolic, and repeats of a reading (same user and instant) after the
first: `conflicting_reading` when its vitals differ from the first's, else
`duplicate_reading`.

Written as a careful engineer would: the CSV is scanned lazily as text (no inference), the
per-row checks are expressions evaluated in one pass, duplicates are found with a hash
(`is_duplicated`) and only the few repeated rows are ranked, and the outputs are written
from the collected frame. Not covered (polars has no per-record reject channel): malformed
CSV records make polars fail the file, where healthpipe rejects each such record on its own.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

REQUIRED = (
    "event_time",
    "user_id",
    "heart_rate",
    "spo2",
    "steps",
    "temp_c",
    "systolic_bp",
    "diastolic_bp",
)
VITALS = REQUIRED[2:]
RANGES: dict[str, tuple[float, float, bool]] = {
    "heart_rate": (20.0, 300.0, False),
    "spo2": (50.0, 100.0, False),
    "steps": (0.0, 100000.0, True),
    "temp_c": (30.0, 44.0, False),
    "systolic_bp": (50.0, 300.0, False),
    "diastolic_bp": (20.0, 200.0, False),
}
MAX_USER_ID = 128
MAX_FUTURE = timedelta(hours=24)
NUMBER_RE = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
ISO8601_RE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)?)?$"
)
FORMULA_TRIGGERS = (
    "=+-@\t\r\u207a\u207c\u208a\u208c\u2a75\u2a76\ufb29"
    "\ufe62\ufe63\ufe66\ufe6b\uff0b\uff0d\uff1d\uff20\u2212"
)
BLANKS = " \t\n\r"
# The shapes of an ISO-8601 time once ' ' is 'T' and 'z' is 'Z': with an offset (converted
# to UTC), or without one (taken as UTC).
ZONED = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M%#z")
NAIVE = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")


def trimmed(col: str) -> pl.Expr:
    return pl.col(col).str.strip_chars(" ")


def blank(col: str) -> pl.Expr:
    return pl.col(col).is_null() | (pl.col(col).str.strip_chars(BLANKS) == "")


def instant(col: str = "event_time") -> pl.Expr:
    """The UTC instant of an ISO-8601 text, null when it does not parse."""
    text = trimmed(col).str.replace(" ", "T", literal=True).str.replace("z$", "Z")
    text = text.str.replace("Z$", "+00:00")
    zoned = [text.str.to_datetime(f, strict=False, time_zone="UTC", time_unit="us") for f in ZONED]
    naive = [
        text.str.to_datetime(f, strict=False, time_unit="us").dt.replace_time_zone("UTC")
        for f in NAIVE
    ]
    return pl.coalesce(*zoned, *naive)


def reason(condition: pl.Expr, name: str) -> pl.Expr:
    return pl.when(condition).then(pl.lit(name)).otherwise(None)


def vital_reason(col: str) -> pl.Expr:
    low, high, whole = RANGES[col]
    value = trimmed(col).cast(pl.Float64, strict=False)
    bad = ~trimmed(col).str.contains(NUMBER_RE) | ~value.is_between(low, high) | value.is_null()
    if whole:
        bad = bad | (value != value.floor())
    return (
        pl.when(blank(col))
        .then(pl.lit(f"missing_{col}"))
        .when(bad.fill_null(True))
        .then(pl.lit(f"invalid_{col}"))
        .otherwise(None)
    )


def row_reasons(now: datetime) -> pl.Expr:
    parsed = pl.col("__instant")
    iso = trimmed("event_time").str.contains(ISO8601_RE)
    late = parsed > pl.lit(now + MAX_FUTURE).dt.replace_time_zone("UTC")
    bad_time = (~iso | parsed.is_null() | late).fill_null(True)
    checks = [
        pl.when(blank("event_time"))
        .then(pl.lit("missing_event_time"))
        .when(bad_time)
        .then(pl.lit("invalid_event_time"))
        .otherwise(None),
        pl.when(blank("user_id"))
        .then(pl.lit("missing_user_id"))
        .when(trimmed("user_id").str.len_chars() > MAX_USER_ID)
        .then(pl.lit("invalid_user_id"))
        .otherwise(None),
        *[vital_reason(c) for c in VITALS],
    ]
    sbp, dbp = (trimmed(c) for c in ("systolic_bp", "diastolic_bp"))
    both = sbp.str.contains(NUMBER_RE) & dbp.str.contains(NUMBER_RE)
    order = both & (dbp.cast(pl.Float64, strict=False) >= sbp.cast(pl.Float64, strict=False))
    checks.append(reason(order.fill_null(False), "dbp_ge_sbp"))
    return pl.concat_str(checks, separator=";", ignore_nulls=True)


def guarded(expr: pl.Expr) -> pl.Expr:
    """The formula-injection guard: a leading `'` before a text a spreadsheet could run."""
    trigger = expr.str.slice(0, 1).is_in(list(FORMULA_TRIGGERS))
    risky = trigger & ~expr.str.contains(NUMBER_RE)
    return pl.when(risky.fill_null(False)).then(pl.lit("'") + expr).otherwise(expr)


def identity() -> list[pl.Expr]:
    """A reading's identity: user and instant (the text when the time does not parse)."""
    return [
        trimmed("user_id").alias("__k_user"),
        pl.col("__instant").alias("__k_instant"),
        pl.when(pl.col("__instant").is_null()).then(trimmed("event_time")).alias("__k_text"),
    ]


def reading_values() -> pl.Expr:
    """The vitals as numbers when they are (70 and 70.0 agree), else their text."""
    cells = [
        pl.coalesce(trimmed(c).cast(pl.Float64, strict=False).cast(pl.Utf8), trimmed(c)).fill_null(
            "\x00"
        )
        for c in VITALS
    ]
    return pl.concat_str(cells, separator="\x1f")


def repeats(df: pl.DataFrame) -> pl.DataFrame:
    """source_row and reason of every reading repeating an earlier one's identity."""
    keys = ["__k_user", "__k_instant", "__k_text"]
    candidate = ~blank("user_id") & ~blank("event_time")
    few = (
        df.lazy()
        .filter(candidate)
        .with_columns(identity())
        .filter(pl.struct(keys).is_duplicated())
        .with_columns(reading_values().alias("__values"))
    )
    ranked = few.with_columns(
        pl.col("__values").first().over(keys, order_by="source_row").alias("__first"),
        pl.int_range(pl.len()).over(keys, order_by="source_row").alias("__n"),
    ).filter(pl.col("__n") > 0)
    conflict = pl.col("__values") != pl.col("__first")
    return ranked.select(
        "source_row",
        pl.when(conflict)
        .then(pl.lit("conflicting_reading"))
        .otherwise(pl.lit("duplicate_reading"))
        .alias("__repeat"),
    ).collect()


def process(source: Path, out_dir: Path, *, now: datetime | None = None) -> dict[str, Any]:
    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    out_dir.mkdir(parents=True, exist_ok=True)
    scan = pl.scan_csv(source, infer_schema=False, raise_if_empty=True)
    columns = scan.collect_schema().names()
    extras = [c for c in columns if c not in REQUIRED]
    staged = (
        scan.with_row_index("source_row", offset=1)
        .with_columns(instant().alias("__instant"))
        .with_columns(row_reasons(now).alias("__reasons"))
        .collect()
    )
    staged = staged.join(repeats(staged), on="source_row", how="left", maintain_order="left")
    repeat = pl.col("__repeat")
    reasons = (
        pl.when(repeat.is_null())
        .then(pl.col("__reasons"))
        .when(pl.col("__reasons") == "")
        .then(repeat)
        .otherwise(pl.col("__reasons") + ";" + repeat)
    )
    staged = staged.with_columns(reasons.alias("reject_reason"))
    valid = staged.filter(pl.col("reject_reason") == "")
    text = [guarded(trimmed(c)).alias(c) for c in ("event_time", "user_id")]
    vitals = [trimmed(c).alias(c) for c in VITALS]
    valid.select(*text, *vitals, *[guarded(pl.col(c)).alias(c) for c in extras]).write_csv(
        out_dir / "processed.csv"
    )
    valid.select(
        pl.col("source_row").cast(pl.Int64),
        pl.col("__instant").alias("event_time"),
        trimmed("event_time").alias("event_time_text"),
        trimmed("user_id").alias("user_id"),
        *[trimmed(c).cast(pl.Float64).alias(c) for c in VITALS],
        *extras,
    ).write_parquet(out_dir / "processed.parquet", compression="zstd")
    rejected = staged.filter(pl.col("reject_reason") != "")
    rejected.select(
        pl.col("source_row").cast(pl.Int64),
        "reject_reason",
        *[guarded(pl.col(c).replace("", None)).alias(c) for c in [*REQUIRED, *extras]],
        pl.lit(None, pl.Utf8).alias("raw_line"),
    ).write_csv(out_dir / "rejected.csv")
    counts = (
        rejected.select(pl.col("reject_reason").str.split(";").explode().value_counts(sort=True))
        .unnest("reject_reason")
        .rows()
    )
    return {
        "rows_input": staged.height,
        "rows_valid": valid.height,
        "rows_rejected": rejected.height,
        "reasons": {str(k): int(v) for k, v in counts},
    }


if __name__ == "__main__":
    print(json.dumps(process(Path(sys.argv[1]), Path(sys.argv[2]))))
