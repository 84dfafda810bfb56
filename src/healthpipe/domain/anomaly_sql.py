"""SQL for the clinical and baseline anomaly rules, generated from the domain tables.

Every band lookup is on the value rounded half-up to the chart's resolution (`chart_sql`, the
same arithmetic as `clinical.chart_value`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from healthpipe.domain import baseline as bl
from healthpipe.domain import clinical as cl
from healthpipe.domain.validation_sql import quote_ident, quote_literal

BASELINE_METRICS = ("heart_rate", "spo2", "temp_c", "systolic_bp", "diastolic_bp")
BP_METRICS = ("blood_pressure", "systolic_bp", "diastolic_bp")


def chart_sql(metric: str, col: str) -> str:
    """`col` rounded half-up to the chart's resolution of `metric` (as `clinical.chart_value`:
    floor(v · scale + 0.5 + ε) / scale, evaluated in the same order on DOUBLEs)."""
    scale = cl.CHART_SCALE[metric]
    eps = repr(cl.ROUNDING_EPSILON)
    if scale == 1:
        return f"floor({col} + CAST(0.5 AS DOUBLE) + CAST({eps} AS DOUBLE))"
    return f"(floor({col} * {scale} + CAST(0.5 AS DOUBLE) + CAST({eps} AS DOUBLE)) / {scale})"


def _band_case(param: cl.News2Parameter, col: str, pick: str) -> str:
    charted = chart_sql(param.metric, col)
    arms = []
    for band in param.bands[:-1]:
        value = str(band.score) if pick == "score" else _kind(band.kind)
        arms.append(f"WHEN {charted} <= {band.upper!r} THEN {value}")
    last = param.bands[-1]
    final = str(last.score) if pick == "score" else _kind(last.kind)
    return "CASE " + " ".join(arms) + f" ELSE {final} END"


def _kind(kind: str | None) -> str:
    return "NULL" if kind is None else quote_literal(kind)


def news2_score_sql(metric: str, col: str | None = None) -> str:
    return _band_case(cl.NEWS2_BY_METRIC[metric], col or quote_ident(metric), "score")


def news2_kind_sql(metric: str, col: str | None = None) -> str:
    return _band_case(cl.NEWS2_BY_METRIC[metric], col or quote_ident(metric), "kind")


def red_score_sql() -> str:
    """Whether one NEWS2 parameter of a reading scores 3 (a red score)."""
    return (
        "(" + " OR ".join(f"({news2_score_sql(p.metric)}) = 3" for p in cl.NEWS2_PARAMETERS) + ")"
    )


def outside_normal_sql(metric: str, col: str | None = None) -> str:
    """`clinical.outside_normal_band` in SQL (NULL for a missing value)."""
    c = col or quote_ident(metric)
    if metric == "diastolic_bp":
        return f"({chart_sql(metric, c)} >= {cl.STAGE_1_DIASTOLIC_FROM})"
    if metric not in cl.NEWS2_BY_METRIC:
        return "FALSE"
    news2 = f"(({news2_score_sql(metric, c)}) > 0)"
    if metric == "systolic_bp":
        return f"({chart_sql(metric, c)} >= {cl.STAGE_1_SYSTOLIC_FROM} OR {news2})"
    return news2


def partial_news2_sql() -> str:
    return " + ".join(f"({news2_score_sql(p.metric)})" for p in cl.NEWS2_PARAMETERS)


def _bp_case(sbp: str, dbp: str, out: Callable[[cl.BpCategory], str]) -> str:
    s = chart_sql("systolic_bp", quote_ident(sbp))
    d = chart_sql("diastolic_bp", quote_ident(dbp))
    return (
        f"CASE WHEN {s} > {cl.CRISIS_SYSTOLIC_ABOVE} OR {d} > {cl.CRISIS_DIASTOLIC_ABOVE} "
        f"THEN {out(cl.BP_CRISIS)} "
        f"WHEN {s} >= {cl.STAGE_2_SYSTOLIC_FROM} OR {d} >= {cl.STAGE_2_DIASTOLIC_FROM} "
        f"THEN {out(cl.BP_STAGE_2)} "
        f"WHEN {s} >= {cl.STAGE_1_SYSTOLIC_FROM} OR {d} >= {cl.STAGE_1_DIASTOLIC_FROM} "
        f"THEN {out(cl.BP_STAGE_1)} "
        f"WHEN {s} >= {cl.ELEVATED_SYSTOLIC_FROM} THEN {out(cl.BP_ELEVATED)} "
        f"ELSE {out(cl.BP_NORMAL)} END"
    )


def bp_category_sql(sbp: str = "systolic_bp", dbp: str = "diastolic_bp") -> str:
    return _bp_case(sbp, dbp, lambda c: quote_literal(c.name))


def bp_trigger_sql(category: str, sbp: str = "systolic_bp", dbp: str = "diastolic_bp") -> str:
    """Which part of the pair (`sbp`, `dbp`: SQL expressions) reaches `category` (an
    expression naming the ACC/AHA category): 'systolic', 'diastolic' or 'both'; NULL below
    stage 1 (`clinical.bp_trigger`)."""
    s = chart_sql("systolic_bp", sbp)
    d = chart_sql("diastolic_bp", dbp)
    arms = []
    for name, (s_limit, d_limit, inclusive) in cl.BP_TRIGGER_LIMITS.items():
        op = ">=" if inclusive else ">"
        by_s, by_d = f"{s} {op} {s_limit}", f"{d} {op} {d_limit}"
        arms.append(
            f"WHEN {quote_literal(name)} THEN CASE WHEN {by_s} AND {by_d} THEN 'both' "
            f"WHEN {by_s} THEN 'systolic' ELSE 'diastolic' END"
        )
    return f"CASE {category} {' '.join(arms)} END"


def quantiles_from_counts_sql(
    counts: str, keys: tuple[str, ...], quantiles: tuple[float, ...], *, min_count: int = 1
) -> str:
    """quantile_cont of `x` per group of `keys`, from `counts` (columns *keys, x, n: one row
    per distinct non-null x of a group, n its number of readings).

    Rank (n - 1)·q, interpolated between its neighbours as DuckDB's quantile_cont does for
    DOUBLE (lo·(1 - d) + hi·d): a median (q = 0.5, halves are exact) equals `median(x)` over
    the readings themselves bit for bit; other quantiles agree to the last bit or two (a
    DuckDB build may fuse the multiply-add). A grouping spills to disk where the holistic
    aggregate holds every value in memory. Groups of fewer than `min_count` values are left
    out. Returns *keys, q, lo, hi, d and value.
    """
    k = ", ".join(keys)
    on = " AND ".join(f"{{a}}.{key} = qr.{key}" for key in keys)
    qs = "[" + ", ".join(repr(q) for q in quantiles) + "]"
    d = "(qr.rank - floor(qr.rank))"
    return (
        f"WITH q_cum AS (SELECT {k}, x, sum(n) OVER w - n AS first_i, sum(n) OVER w AS end_i "
        f"FROM {counts} WINDOW w AS (PARTITION BY {k} ORDER BY x)), "
        f"q_rank AS (SELECT {k}, q, (total - 1) * q AS rank FROM (SELECT {k}, "
        f"sum(n) AS total FROM {counts} GROUP BY {k} HAVING sum(n) >= {int(min_count)}), "
        f"unnest(CAST({qs} AS DOUBLE[])) u(q)) "
        f"SELECT {', '.join(f'qr.{key}' for key in keys)}, qr.q, a.x AS lo, b.x AS hi, "
        f"{d} AS d, CASE WHEN {d} = 0 THEN a.x ELSE a.x * (1.0 - {d}) + b.x * {d} END AS value "
        f"FROM q_rank qr JOIN q_cum a ON {on.format(a='a')} AND floor(qr.rank) >= a.first_i "
        f"AND floor(qr.rank) < a.end_i JOIN q_cum b ON {on.format(a='b')} "
        "AND ceil(qr.rank) >= b.first_i AND ceil(qr.rank) < b.end_i"
    )


def baselines_sql(counts: str) -> str:
    """Per (metric, user_id): the median, the MAD and the mean absolute deviation (about the
    median) of the user's values, for users with at least MIN_READINGS values; from
    `counts` (metric, user_id, x, n)."""
    keys = ("metric", "user_id")
    medians = quantiles_from_counts_sql(counts, keys, (0.5,), min_count=bl.MIN_READINGS)
    deviations = (
        "(SELECT c.metric, c.user_id, abs(c.x - m.med) AS x, sum(c.n) AS n "
        f"FROM {counts} c JOIN (SELECT metric, user_id, value AS med FROM ({medians})) m "
        "ON c.metric = m.metric AND c.user_id = m.user_id "
        "GROUP BY c.metric, c.user_id, abs(c.x - m.med))"
    )
    mads = quantiles_from_counts_sql(deviations, keys, (0.5,))
    means = (
        "SELECT metric, user_id, sum(x * n) / sum(n) AS meanad "
        f"FROM {deviations} GROUP BY metric, user_id"
    )
    return (
        f"SELECT m.metric, m.user_id, m.value AS med, d.value AS mad, a.meanad FROM "
        f"({medians}) m JOIN ({mads}) d ON d.metric = m.metric AND d.user_id = m.user_id "
        f"JOIN ({means}) a ON a.metric = m.metric AND a.user_id = m.user_id"
    )


def modified_z_sql(metric: str, col: str | None = None) -> str:
    """`baseline.modified_z` over the user's baseline columns (`baseline_column`): MAD form
    when MAD > 0, else the MeanAD form; the spread floored at the measuring resolution."""
    c = col or quote_ident(metric)
    med = baseline_column("med", metric)
    mad = baseline_column("mad", metric)
    meanad = baseline_column("meanad", metric)
    res = repr(cl.RESOLUTION[metric])
    return (
        f"CASE WHEN {mad} > 0 THEN {bl.CONSISTENCY!r} * ({c} - {med}) / greatest({mad}, {res}) "
        f"ELSE ({c} - {med}) / ({bl.MEANAD_CONSISTENCY!r} * greatest({meanad}, {res})) END"
    )


@dataclass(frozen=True)
class AnomalyItem:
    """One (metric, rule) a reading can be flagged for; `column` holds the reported value;
    `bands` the (kind, severity) of each band of the rule, None for a band that flags
    nothing (a NEWS2 score of 0, a kind the BP categories report, a normal BP)."""

    metric: str
    rule: str
    column: str
    bands: tuple[tuple[str, int] | None, ...]


def _news2_bands(param: cl.News2Parameter) -> tuple[tuple[str, int] | None, ...]:
    return tuple(
        (b.kind, b.score)
        if b.kind and b.score > 0 and b.kind not in cl.NEWS2_KINDS_COVERED_BY_BP
        else None
        for b in param.bands
    )


def _anomaly_items() -> tuple[AnomalyItem, ...]:
    items = [AnomalyItem(p.metric, "news2", p.metric, _news2_bands(p)) for p in cl.NEWS2_PARAMETERS]
    bp = tuple((c.name, int(c.severity)) if c.severity > 0 else None for c in cl.BP_CATEGORIES)
    items.append(AnomalyItem("blood_pressure", "acc_aha", "systolic_bp", bp))
    deviation = (("baseline_deviation", 1), ("baseline_deviation", 2))  # low, strong
    items += [AnomalyItem(m, "baseline", m, deviation) for m in BASELINE_METRICS]
    return tuple(sorted(items, key=lambda i: (i.metric, i.rule)))


# In the order anomalies are listed for one reading (metric, rule).
ANOMALY_ITEMS = _anomaly_items()
BAND_BITS = 3  # band numbers 1..7 of an item, 0: not flagged
SLOTS = 1 << BAND_BITS
if max(len(i.bands) for i in ANOMALY_ITEMS) >= SLOTS:
    raise ValueError("an anomaly rule has more bands than its code holds")


def _band_number(item: AnomalyItem, index: int) -> int:
    return index + 1 if item.bands[index] else 0


def _item_band_sql(item: AnomalyItem) -> str:
    """The number of the flagging band a reading falls in for `item`, 0 for none."""
    col = quote_ident(item.column)
    if item.rule == "news2":
        param = cl.NEWS2_BY_METRIC[item.metric]
        charted = chart_sql(item.metric, col)
        arms = [
            f"WHEN {charted} <= {band.upper!r} THEN {_band_number(item, i)}"
            for i, band in enumerate(param.bands[:-1])
        ]  # a missing value flags nothing; NaN falls in the last band, as in news2_score_sql
        arms.append(f"WHEN {col} IS NOT NULL THEN {_band_number(item, len(param.bands) - 1)}")
        return "CASE " + " ".join(arms) + " ELSE 0 END"
    if item.rule == "acc_aha":
        index = {c.name: i for i, c in enumerate(cl.BP_CATEGORIES)}
        return _bp_case(
            "systolic_bp", "diastolic_bp", lambda c: str(_band_number(item, index[c.name]))
        )
    z = modified_z_sql(item.metric, col)
    return (
        f"CASE WHEN abs({z}) > {bl.STRONG_THRESHOLD!r} AND {outside_normal_sql(item.metric, col)} "
        f"THEN 2 WHEN abs({z}) > {bl.THRESHOLD!r} THEN 1 ELSE 0 END"
    )


BASELINE_STATS = ("med", "mad", "meanad")


def baseline_column(stat: str, metric: str) -> str:
    """The column of a user's baseline `stat` (med, mad or meanad) of `metric`."""
    return quote_ident(f"{stat}_{metric}")


def anomaly_code_sql() -> str:
    """Every anomaly of one reading in one BIGINT: the band number (0: not flagged) of item i
    of ANOMALY_ITEMS in bits BAND_BITS·i and up. Over a row of the vitals and the user's
    baseline columns (`baseline_column`), NULL when the user has none."""
    return " | ".join(
        f"(CAST(coalesce({_item_band_sql(item)}, 0) AS BIGINT) << {BAND_BITS * i})"
        for i, item in enumerate(ANOMALY_ITEMS)
    )


def item_band_sql(code: str, item: str) -> str:
    """The band number of anomaly item number `item` in an `anomaly_code_sql` value."""
    return f"CAST(({code} >> ({BAND_BITS} * {item})) & {SLOTS - 1} AS INTEGER)"


def item_values_sql() -> str:
    """The reported value of each item, as a list in ANOMALY_ITEMS order."""
    return "[" + ", ".join(quote_ident(i.column) for i in ANOMALY_ITEMS) + "]"


def _lookup(values: list[str], index: str, as_type: str | None = None) -> str:
    """Item `index` (from 0) of the SQL list of `values`; with `as_type` (an ENUM of the
    values), the list is typed so that the result is the ENUM's value, not a new string per
    row."""
    listed = "[" + ", ".join(values) + "]"
    if as_type is not None:
        listed = f"CAST({listed} AS {as_type}[])"
    return f"{listed}[{index} + 1]"


def _per_band(pick: Callable[[tuple[str, int]], str]) -> list[str]:
    out = []
    for item in ANOMALY_ITEMS:
        slots = [None, *item.bands] + [None] * (SLOTS - 1 - len(item.bands))
        out += ["NULL" if band is None else pick(band) for band in slots]
    return out


def item_metric_sql(item: str, as_type: str | None = None) -> str:
    return _lookup([quote_literal(i.metric) for i in ANOMALY_ITEMS], item, as_type)


def item_rule_sql(item: str, as_type: str | None = None) -> str:
    return _lookup([quote_literal(i.rule) for i in ANOMALY_ITEMS], item, as_type)


def item_kind_sql(item: str, band: str, as_type: str | None = None) -> str:
    return _lookup(_per_band(lambda b: quote_literal(b[0])), f"{item} * {SLOTS} + {band}", as_type)


def item_severity_sql(item: str, band: str) -> str:
    return _lookup(_per_band(lambda b: str(b[1])), f"{item} * {SLOTS} + {band}")


def kinds() -> tuple[str, ...]:
    """Every kind an anomaly can have, in name order."""
    return tuple(sorted({b[0] for i in ANOMALY_ITEMS for b in i.bands if b}))


# Direction codes of `item_direction_code_sql`.
DIRECTION_CODES: dict[str, int] = {"low": 1, "high": 2}


def item_direction_code_sql(item: str, band: str) -> str:
    """'low' or 'high', the direction of the kind of (item, band) (`clinical.KINDS`), as a
    code of DIRECTION_CODES (a number sorts and groups faster
    than a string)."""
    return _lookup(
        _per_band(lambda b: str(DIRECTION_CODES[cl.KINDS[b[0]].direction])),
        f"{item} * {SLOTS} + {band}",
    )


def clinical_code_mask() -> int:
    """The bits of an `anomaly_code_sql` value that hold the clinical (not baseline) items."""
    return sum((SLOTS - 1) << (BAND_BITS * n) for n in clinical_items())


def heart_rate_items() -> tuple[int, ...]:
    """Numbers of the items about heart rate (activity context applies to them)."""
    return tuple(n for n, i in enumerate(ANOMALY_ITEMS) if i.metric == "heart_rate")


def bp_items() -> tuple[int, ...]:
    """Numbers of the items about blood pressure (their rows carry the pair)."""
    return tuple(n for n, i in enumerate(ANOMALY_ITEMS) if i.metric in BP_METRICS)


def clinical_items() -> tuple[int, ...]:
    """Numbers of the items episodes are made of (the clinical rules, not baselines)."""
    return tuple(n for n, i in enumerate(ANOMALY_ITEMS) if i.rule != "baseline")
