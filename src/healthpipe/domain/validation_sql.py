"""Turns a RuleProfile into DuckDB SQL expressions (pure string building, no I/O).

Every check yields a reason or NULL; a row's reasons are all the non-NULL ones, in a fixed
order, so that a row failing several rules carries every reason.
"""

from __future__ import annotations

from healthpipe.constants import VITAL_COLUMNS
from healthpipe.domain.rules import FieldRange, RuleProfile, bp_reason

# A plain decimal number: no NaN/inf words, no hex, no digit separators.
NUMBER_RE = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
# ISO-8601 / RFC 3339 date or date-time with optional fraction and offset.
ISO8601_RE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)?)?$"
)
# Spreadsheet formula triggers (OWASP CSV injection): = + - @ tab CR.
FORMULA_START_RE = r"^[=+\-@\t\r]"
FORMULA_START_CHARS = "('=', '+', '-', '@', chr(9), chr(13))"
DUPLICATE_REASON = "duplicate_reading"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _num(value: float) -> str:
    return repr(float(value))


# Characters a blank cell may consist of: space, tab, LF, CR.
BLANK_CHARS_SQL = "(' ' || chr(9) || chr(10) || chr(13))"


def is_blank(col: str) -> str:
    return f"({col} IS NULL OR trim({col}, {BLANK_CHARS_SQL}) = '')"


def is_number(col: str) -> str:
    return f"regexp_full_match(trim({col}), {quote_literal(NUMBER_RE)})"


def as_double(col: str) -> str:
    return f"TRY_CAST(trim({col}) AS DOUBLE)"


def numeric_check(field: str, rng: FieldRange) -> str:
    col = quote_ident(field)
    value = as_double(col)
    bad = f"NOT {is_number(col)} OR NOT ({value} BETWEEN {_num(rng.min)} AND {_num(rng.max)})"
    if rng.integer:
        bad += f" OR {value} <> floor({value})"
    return f"CASE WHEN {is_blank(col)} THEN 'missing_{field}' WHEN {bad} THEN 'invalid_{field}' END"


def parsed_time_sql() -> str:
    """The instant of a row's event_time, NULL when it does not parse."""
    return f"TRY_CAST(trim({quote_ident('event_time')}) AS TIMESTAMPTZ)"


def event_time_check(profile: RuleProfile, now_iso: str, parsed: str | None = None) -> str:
    """`parsed`: a column already holding `parsed_time_sql()`, to parse each value once."""
    col = quote_ident("event_time")
    checks = [f"WHEN {is_blank(col)} THEN 'missing_event_time'"]
    if profile.timestamp == "iso8601":
        parsed = parsed or parsed_time_sql()
        bad = f"NOT regexp_full_match(trim({col}), {quote_literal(ISO8601_RE)}) OR {parsed} IS NULL"
        if profile.max_future_hours is not None:
            limit = (
                f"(CAST({quote_literal(now_iso)} AS TIMESTAMPTZ)"
                f" + INTERVAL ({_num(profile.max_future_hours * 3600)}) SECOND)"
            )
            bad += f" OR {parsed} > {limit}"
        checks.append(f"WHEN {bad} THEN 'invalid_event_time'")
    return "CASE " + " ".join(checks) + " END"


def user_id_check(profile: RuleProfile) -> str:
    col = quote_ident("user_id")
    checks = [f"WHEN {is_blank(col)} THEN 'missing_user_id'"]
    if profile.max_user_id_length is not None:
        checks.append(
            f"WHEN length(trim({col})) > {profile.max_user_id_length} THEN 'invalid_user_id'"
        )
    return "CASE " + " ".join(checks) + " END"


def bp_order_check(profile: RuleProfile) -> str:
    sbp, dbp = quote_ident("systolic_bp"), quote_ident("diastolic_bp")
    op = ">" if profile.bp_order == "le" else ">="
    both = f"{is_number(sbp)} AND {is_number(dbp)}"
    return (
        f"CASE WHEN NOT {is_blank(sbp)} AND NOT {is_blank(dbp)} AND {both} "
        f"AND {as_double(dbp)} {op} {as_double(sbp)} THEN {quote_literal(bp_reason(profile))} END"
    )


def duplicate_key_columns(profile: RuleProfile, parsed: str | None = None) -> list[str]:
    """The identity of a reading: user and instant (parsed when it parses, else the text).

    A text that does not parse never equals a parsed instant and instants compare by value,
    so this is the identity "user and the instant's UTC rendering, else the text".
    """
    user = f"trim({quote_ident('user_id')})"
    when = f"trim({quote_ident('event_time')})"
    if profile.timestamp != "iso8601":
        return [user, when]
    parsed = parsed or parsed_time_sql()
    return [user, parsed, f"CASE WHEN {parsed} IS NULL THEN {when} END"]


def duplicate_candidate_sql() -> str:
    """Rows that can repeat an earlier reading: user and time present (blank ones never do)."""
    user, when = quote_ident("user_id"), quote_ident("event_time")
    return f"NOT {is_blank(user)} AND NOT {is_blank(when)}"


def reason_checks(profile: RuleProfile, now_iso: str, parsed: str | None = None) -> list[str]:
    """The per-row checks in report order: fields, then cross-field. Duplicates, which need
    the whole file, come after these (see `duplicate_key_columns`)."""
    checks = [event_time_check(profile, now_iso, parsed), user_id_check(profile)]
    checks += [numeric_check(field, profile.ranges[field]) for field in VITAL_COLUMNS]
    checks.append(bp_order_check(profile))
    return checks


def prepared_text(field: str) -> str:
    return quote_ident(f"__hp_text_{field}__")


def prepared_value(field: str) -> str:
    return quote_ident(f"__hp_value_{field}__")


def prepared_columns_sql() -> str:
    """Each vital trimmed and cast once, for `row_surely_valid_sql` to refer to."""
    return ", ".join(
        f"trim({quote_ident(f)}) AS {prepared_text(f)}, "
        f"{as_double(quote_ident(f))} AS {prepared_value(f)}"
        for f in VITAL_COLUMNS
    )


def _surely_number_in(field: str, rng: FieldRange) -> str:
    """True only for a cell `numeric_check` passes: a cast and two string tests, no regex.

    DuckDB's cast also accepts nan/inf (outside every finite range), digit separators
    ('_') and surrounding tabs or line breaks (all below '+' and '.', which no number
    starts or ends below); such cells fall back to the full check.
    """
    text, value = prepared_text(field), prepared_value(field)
    ok = (
        f"{value} BETWEEN {_num(rng.min)} AND {_num(rng.max)} AND NOT contains({text}, '_') "
        f"AND ascii({text}) >= 43 AND right({text}, 1) >= '.'"
    )
    if rng.integer:
        ok += f" AND {value} = floor({value})"
    return ok


def row_surely_valid_sql(profile: RuleProfile, now_iso: str, parsed: str | None = None) -> str:
    """A cheap predicate that implies every per-row check passes (it may be false for a valid
    row: then the full checks decide). Needs the columns of `prepared_columns_sql`."""
    parts = [f"({check}) IS NULL" for check in reason_checks(profile, now_iso, parsed)[:2]]
    parts += [_surely_number_in(f, profile.ranges[f]) for f in VITAL_COLUMNS]
    sbp, dbp = prepared_value("systolic_bp"), prepared_value("diastolic_bp")
    parts.append(f"{dbp} {'<=' if profile.bp_order == 'le' else '<'} {sbp}")
    return " AND ".join(f"({p})" for p in parts)


def reasons_list_sql(profile: RuleProfile, now_iso: str, parsed: str | None = None) -> str:
    """A row's reasons in report order (empty when valid); the list is built only for rows
    the cheap predicate cannot clear. Needs the columns of `prepared_columns_sql`."""
    items = ",\n    ".join(reason_checks(profile, now_iso, parsed))
    full = f"list_filter([\n    {items}\n  ], lambda r: r IS NOT NULL)"
    fast = row_surely_valid_sql(profile, now_iso, parsed)
    return f"CASE WHEN {fast} THEN []::VARCHAR[] ELSE {full} END"


def safe_cell_sql(expr: str) -> str:
    """Neutralise a text cell a spreadsheet would run as a formula (numbers stay as they are)."""
    return (
        f"CASE WHEN left({expr}, 1) IN {FORMULA_START_CHARS} "
        f"AND NOT regexp_full_match({expr}, {quote_literal(NUMBER_RE)}) "
        f"THEN '''' || {expr} ELSE {expr} END"
    )
