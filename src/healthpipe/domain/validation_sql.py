"""Turns a RuleProfile into DuckDB SQL expressions (pure string building, no I/O).

Every check yields a reason or NULL; a row's reasons are all the non-NULL ones, in a fixed
order, so that a row failing several rules carries every reason.
"""

from __future__ import annotations

from healthpipe.constants import VITAL_COLUMNS
from healthpipe.domain.formula import NUMBER_RE
from healthpipe.domain.rules import FieldRange, RuleProfile, bp_reason

# NUMBER_RE (domain/formula.py): a plain decimal number, no NaN/inf words, no hex, no
# digit separators.
# ISO-8601 / RFC 3339 date or date-time with optional fraction and offset.
ISO8601_RE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)?)?$"
)
DUPLICATE_REASON = "duplicate_reading"
# A repeat of an earlier reading's user and instant with other vital values.
CONFLICT_REASON = "conflicting_reading"


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


def _future_limit(profile: RuleProfile, now_iso: str) -> str:
    hours = profile.max_future_hours or 0.0
    return (
        f"(CAST({quote_literal(now_iso)} AS TIMESTAMPTZ) + INTERVAL ({_num(hours * 3600)}) SECOND)"
    )


def event_time_check(profile: RuleProfile, now_iso: str, parsed: str | None = None) -> str:
    """`parsed`: a column already holding `parsed_time_sql()`, to parse each value once."""
    col = quote_ident("event_time")
    checks = [f"WHEN {is_blank(col)} THEN 'missing_event_time'"]
    if profile.timestamp == "iso8601":
        parsed = parsed or parsed_time_sql()
        bad = f"NOT regexp_full_match(trim({col}), {quote_literal(ISO8601_RE)}) OR {parsed} IS NULL"
        if profile.max_future_hours is not None:
            bad += f" OR {parsed} > {_future_limit(profile, now_iso)}"
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


def reading_values_sql() -> str:
    """A reading's vital values, to tell an exact repeat from a conflicting one: each as its
    number when it is one (70 and 70.0 agree), else its trimmed text (NULL when absent)."""
    cells = [
        f"coalesce(CAST({as_double(quote_ident(f))} AS VARCHAR), trim({quote_ident(f)}))"
        for f in VITAL_COLUMNS
    ]
    return "list_value(" + ", ".join(cells) + ")"


def repeat_reason_sql(profile: RuleProfile, conflict: str) -> str:
    """The reason of a repeated reading; `conflict`: true when its values differ from the
    first reading's."""
    dup = quote_literal(DUPLICATE_REASON)
    if not profile.conflicting_readings or conflict == "false":
        return dup
    return f"CASE WHEN {conflict} THEN {quote_literal(CONFLICT_REASON)} ELSE {dup} END"


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


# Shapes that a cell passing every check usually has; a cell of such a shape is judged by a
# cast and a comparison, any other goes through the full check (regexes on trimmed text).
PLAIN_DECIMAL_RE = r"[0-9]+(\.[0-9]+)?"
PLAIN_INTEGER_RE = r"[0-9]+"
PLAIN_INSTANT_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z"


def _plain_number_in(field: str, rng: FieldRange) -> str:
    """True only for a cell `numeric_check` passes: unsigned digits (a subset of NUMBER_RE,
    with nothing to trim) whose value is in range."""
    col = quote_ident(field)
    shape = PLAIN_INTEGER_RE if rng.integer else PLAIN_DECIMAL_RE
    return (
        f"regexp_full_match({col}, {quote_literal(shape)}) "
        f"AND TRY_CAST({col} AS DOUBLE) BETWEEN {_num(rng.min)} AND {_num(rng.max)}"
    )


def _plain_event_time(profile: RuleProfile, now_iso: str, parsed: str | None) -> str:
    col = quote_ident("event_time")
    if profile.timestamp != "iso8601":
        return f"ascii({col}) > 32"  # its first character is not blank, so it is not blank
    parsed = parsed or parsed_time_sql()
    ok = f"regexp_full_match({col}, {quote_literal(PLAIN_INSTANT_RE)}) AND {parsed} IS NOT NULL"
    if profile.max_future_hours is not None:
        ok += f" AND {parsed} <= {_future_limit(profile, now_iso)}"
    return ok


def row_surely_valid_sql(profile: RuleProfile, now_iso: str, parsed: str | None = None) -> str:
    """A cheap predicate that implies every per-row check passes (it may be false, or NULL,
    for a valid row: then the full checks decide). About a fifth of the full checks' cost."""
    user = quote_ident("user_id")
    user_ok = f"ascii({user}) > 32"
    if profile.max_user_id_length is not None:
        user_ok += f" AND length({user}) <= {profile.max_user_id_length}"
    sbp, dbp = (f"TRY_CAST({quote_ident(c)} AS DOUBLE)" for c in ("systolic_bp", "diastolic_bp"))
    parts = [_plain_event_time(profile, now_iso, parsed), user_ok]
    parts += [_plain_number_in(f, profile.ranges[f]) for f in VITAL_COLUMNS]
    parts.append(f"{dbp} {'<=' if profile.bp_order == 'le' else '<'} {sbp}")
    return " AND ".join(f"({p})" for p in parts)


def reasons_sql(profile: RuleProfile, now_iso: str, parsed: str | None = None) -> str:
    """A row's reasons in report order, joined by ';' ('' when valid); the full checks run
    only for rows the cheap predicate cannot clear."""
    items = ",\n    ".join(reason_checks(profile, now_iso, parsed))
    full = f"concat_ws(';',\n    {items}\n  )"
    fast = row_surely_valid_sql(profile, now_iso, parsed)
    return f"CASE WHEN {fast} THEN '' ELSE {full} END"
