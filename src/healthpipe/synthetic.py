"""Synthetic vitals: realistic per-user series with injected clinical episodes and bad rows.

Generated in DuckDB from a hash of (row, seed), so the output is identical for the same
arguments (and the same `end`) on any machine and any thread count, and 10 million rows take
seconds. The readings end at `end` (default: now, to the minute), one per user per minute, so a
file of any size passes rules that refuse readings in the future. `rows` is the exact number of
data rows written: the bad rows and repeated readings are among them, never added.

A daily series (`daily_specs`) is one spec per day, the last ending at `end` and each earlier
one a day before, with its own seed; a `Drift` moves one user's vital linearly over the
series' last days (`user_003:heart_rate:+15:14`: +15 bpm reached on the last day, starting 14
days before), as a per-file `Offset` added to that user's readings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from healthpipe.dataops.engine import EngineLimits, connect
from healthpipe.domain.validation_sql import quote_literal

# a drift's vital (CSV column) -> the generator's column it moves
DRIFT_COLUMNS = {
    "heart_rate": "hr",
    "spo2": "spo2",
    "temp_c": "temp",
    "systolic_bp": "sbp",
    "diastolic_bp": "dbp",
}


@dataclass(frozen=True)
class Offset:
    """An amount added to one user's readings of one vital in one file."""

    user: int
    metric: str
    amount: float


@dataclass(frozen=True)
class Drift:
    """One user's vital moving by `change` over the last `days` days of a daily series."""

    user: int
    metric: str
    change: float
    days: int

    def amount(self, day: int, total: int) -> float:
        """The offset on day `day` (0 = first) of `total`: 0 until `days` days before the
        last day, then linear up to `change` on the last day."""
        done = (day - (total - 1 - self.days)) / self.days
        return self.change * min(1.0, max(0.0, done))


def parse_drift(text: str) -> Drift:
    """`USER:VITAL:CHANGE:DAYS`, e.g. `user_003:heart_rate:+15:14` (USER as written in the
    file, `user_003`, or its number); ValueError with the reason otherwise."""
    parts = text.split(":")
    if len(parts) != 4:
        raise ValueError(f"drift {text!r}: expected USER:VITAL:CHANGE:DAYS")
    user, metric, change, days = parts
    digits = user.removeprefix("user_")
    if not digits.isdigit():
        raise ValueError(f"drift {text!r}: USER is user_NNN or a number")
    if metric not in DRIFT_COLUMNS:
        raise ValueError(f"drift {text!r}: VITAL is one of {', '.join(DRIFT_COLUMNS)}")
    try:
        amount, span = float(change), int(days)
    except ValueError:
        raise ValueError(f"drift {text!r}: CHANGE is a number, DAYS a whole number") from None
    if span < 1:
        raise ValueError(f"drift {text!r}: DAYS must be at least 1")
    return Drift(int(digits), metric, amount, span)


@dataclass(frozen=True)
class SyntheticSpec:
    """`duplicate_rate` defaults to a tenth of `bad_row_rate` (so `bad_row_rate=0` writes a
    clean file); `end` is the time of the last reading (naive = UTC; default now)."""

    rows: int = 5000
    users: int = 20
    seed: int = 42
    bad_row_rate: float = 0.02
    duplicate_rate: float | None = None
    anomalies: bool = True
    end: datetime | None = None
    offsets: tuple[Offset, ...] = ()

    @property
    def repeat_rate(self) -> float:
        return self.bad_row_rate / 10 if self.duplicate_rate is None else self.duplicate_rate

    def start(self) -> datetime:
        """The first reading's time: the last one (row rows-1) falls on `end` or just before."""
        end = self.end or datetime.now(UTC).replace(second=0, microsecond=0)
        if end.tzinfo is not None:
            end = end.astimezone(UTC).replace(tzinfo=None)
        last = self.rows - 1
        minutes, user = last // self.users, last % self.users
        return end.replace(microsecond=0) - timedelta(minutes=minutes, seconds=user)


def daily_specs(
    spec: SyntheticSpec, days: int, drifts: tuple[Drift, ...] = ()
) -> list[SyntheticSpec]:
    """One spec per day, oldest first: day k ends `days - 1 - k` days before `spec.end` (now
    by default, read once), has seed `spec.seed + k` and the drifts' offsets of that day."""
    end = spec.end or datetime.now(UTC).replace(second=0, microsecond=0)
    return [
        replace(
            spec,
            seed=spec.seed + k,
            end=end - timedelta(days=days - 1 - k),
            offsets=spec.offsets
            + tuple(Offset(d.user, d.metric, d.amount(k, days)) for d in drifts),
        )
        for k in range(days)
    ]


def _offset_sql(spec: SyntheticSpec, metric: str, user: str) -> str:
    """` + CASE WHEN user = … THEN amount … END` for the offsets of `metric` (or nothing)."""
    cases = " ".join(
        f"WHEN {user} = {o.user} THEN {o.amount!r}"
        for o in spec.offsets
        if o.metric == metric and o.amount
    )
    return f" + CASE {cases} ELSE 0 END" if cases else ""


def _u(expr: str, salt: int, seed: int) -> str:
    """A uniform number in [0, 1) from a deterministic hash."""
    return f"((hash({expr}, {seed}, {salt}) % 1000003) / 1000003.0)"


def _normal(expr: str, salt: int, seed: int) -> str:
    """A standard normal draw (Box-Muller over two hashes)."""
    u1 = f"greatest({_u(expr, salt, seed)}, 1e-9)"
    u2 = _u(expr, salt + 1, seed)
    return f"(sqrt(-2 * ln({u1})) * cos(2 * pi() * {u2}))"


def synthetic_sql(spec: SyntheticSpec) -> str:
    s = spec.seed
    start = spec.start().strftime("%Y-%m-%d %H:%M:%S")
    # row i repeats row i-1's reading (same user and time) when it is drawn as a repeat;
    # every value below derives from j, the row whose reading is written
    repeat = f"(i > 0 AND {_u('i', 31, s)} < {spec.repeat_rate})"
    minute = f"(j // {spec.users})"
    user = f"(j % {spec.users})"
    # episodes: a 40-minute window in every ~6 hours, for a subset of users, per type
    window = f"(({minute} + {user} * 37) % 360)"
    episode = "0" if not spec.anomalies else f"({window} < 40)"
    kind = f"({user} % 6)"

    def drift(metric: str) -> str:
        return _offset_sql(spec, metric, user)

    base = (
        f"SELECT i, {user} AS u, {minute} AS m, "
        f"TIMESTAMP {quote_literal(start)} + to_minutes(CAST({minute} AS BIGINT)) "
        f"+ to_seconds(CAST({user} AS BIGINT)) AS t, "
        f"(68 + ({user} % 9) * 2 + 6 * {_normal('j', 1, s)}{drift('heart_rate')}) AS hr, "
        f"(97.6 + 1.1 * {_normal('j', 3, s)}{drift('spo2')}) AS spo2, "
        f"(36.7 + 0.3 * {_normal('j', 5, s)}{drift('temp_c')}) AS temp, "
        f"(119 + ({user} % 5) * 2 + 6 * {_normal('j', 7, s)}{drift('systolic_bp')}) AS sbp, "
        f"(72 + ({user} % 4) + 4 * {_normal('j', 9, s)}{drift('diastolic_bp')}) AS dbp, "
        f"greatest(0, 400 + 300 * {_normal('j', 11, s)}) AS steps, "
        f"{episode} AS ep, {kind} AS kind, {repeat} AS rep "
        f"FROM (SELECT i, CASE WHEN {repeat} THEN i - 1 ELSE i END AS j "
        f"FROM range({spec.rows}) r(i))"
    )
    shaped = (
        "SELECT i, u, t, rep, "
        "CASE WHEN ep AND kind = 0 THEN hr + 65 WHEN ep AND kind = 1 THEN hr - 30 "
        "ELSE hr END AS hr, "
        "CASE WHEN ep AND kind = 2 THEN spo2 - 9 ELSE least(spo2, 100) END AS spo2, "
        "CASE WHEN ep AND kind = 3 THEN temp + 2.6 ELSE temp END AS temp, "
        "CASE WHEN ep AND kind = 4 THEN sbp + 75 WHEN ep AND kind = 5 THEN sbp - 35 ELSE sbp END "
        "AS sbp, CASE WHEN ep AND kind = 4 THEN dbp + 45 ELSE dbp END AS dbp, steps "
        f"FROM ({base})"
    )
    text = (
        "SELECT i, rep, strftime(t, '%Y-%m-%dT%H:%M:%SZ') AS event_time, "
        "printf('user_%03d', u) AS user_id, "
        "CAST(round(hr) AS INTEGER)::VARCHAR AS heart_rate, "
        "CAST(round(least(spo2, 100)) AS INTEGER)::VARCHAR AS spo2, "
        "CAST(round(steps) AS INTEGER)::VARCHAR AS steps, "
        "printf('%.1f', temp) AS temp_c, CAST(round(sbp) AS INTEGER)::VARCHAR AS systolic_bp, "
        "CAST(round(least(dbp, sbp - 15)) AS INTEGER)::VARCHAR AS diastolic_bp "
        f"FROM ({shaped})"
    )
    bad = _u("i", 21, s)
    variant = f"CAST(floor({_u('i', 23, s)} * 8) AS INTEGER)"
    broken = (
        f"SELECT i, CASE WHEN b AND v = 0 THEN 'not-a-time' ELSE event_time END AS event_time, "
        "CASE WHEN b AND v = 1 THEN '' ELSE user_id END AS user_id, "
        "CASE WHEN b AND v = 2 THEN 'abc' WHEN b AND v = 6 THEN '' "
        'WHEN b AND v = 7 THEN \'=HYPERLINK("http://x","y")\' '
        "ELSE heart_rate END AS heart_rate, "
        "CASE WHEN b AND v = 3 THEN '120' ELSE spo2 END AS spo2, steps, "
        "CASE WHEN b AND v = 4 THEN 'NaN' ELSE temp_c END AS temp_c, systolic_bp, "
        "CASE WHEN b AND v = 5 THEN CAST(CAST(systolic_bp AS INTEGER) + 10 AS VARCHAR) "
        "ELSE diastolic_bp END AS diastolic_bp "
        f"FROM (SELECT *, NOT rep AND {bad} < {spec.bad_row_rate} AS b, {variant} AS v "
        f"FROM ({text}))"
    )
    columns = "event_time, user_id, heart_rate, spo2, steps, temp_c, systolic_bp, diastolic_bp"
    return f"SELECT {columns} FROM ({broken}) ORDER BY i"


def generate_csv(spec: SyntheticSpec, out: Path, *, limits: EngineLimits | None = None) -> Path:
    """Write exactly `spec.rows` data rows to `out` (.csv or .csv.gz)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    con = connect(limits or EngineLimits(memory_limit_mb=512))
    try:
        con.execute("SET preserve_insertion_order = true")
        options = "FORMAT csv, HEADER true"
        if out.name.endswith(".gz"):
            options += ", COMPRESSION gzip"
        con.execute(f"COPY ({synthetic_sql(spec)}) TO {quote_literal(str(out))} ({options})")
    finally:
        con.close()
    return out
