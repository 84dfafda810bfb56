"""The one spreadsheet formula-injection policy: CSV cells, CSV column names and report text.

OWASP's CSV injection guidance: a cell a spreadsheet may run as a formula starts with `=`,
`+`, `-`, `@`, a tab or a carriage return; put a `'` before it, so the spreadsheet shows it as
text. Our rule, in Python (`guard_formula`) and in DuckDB SQL (`guard_formula_sql`), the same:

- A text starting with one of FORMULA_TRIGGERS gets a leading `'`: the six characters above
  and their look-alikes (every character whose compatibility form, NFKC, is `=`, `+`, `-` or
  `@`, such as the fullwidth `＝` that some spreadsheets take for `=`, and the minus sign
  U+2212).
- Except a plain decimal number (NUMBER_RE: `-5`, `+1`, `-0.5`, `1e3`): a spreadsheet reads
  it as that number, never as a formula, and a vital or a negative value stays as written.
  `-5abc`, `+ 1`, `-5+A1` are not plain numbers, so they are guarded.

Only the first character counts: a leading space makes a cell text in every spreadsheet.
The table of tricky cells in `tests/unit/test_formula_policy.py` holds both forms to it, and
docs/reports.md says it in words.
"""

from __future__ import annotations

import re

# A plain decimal number: optional sign, digits with an optional fraction (or a fraction
# alone), an optional exponent. Also what validation accepts as a number.
NUMBER_RE = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_NUMBER = re.compile(NUMBER_RE)

# `=`, `+`, `-`, `@`, tab, CR, then every character whose NFKC form starts with one of the
# first four (a test recomputes the list from the Unicode tables), then U+2212 MINUS SIGN.
FORMULA_TRIGGERS = (
    "=+-@\t\r"
    "\u207a\u207c\u208a\u208c\u2a75\u2a76\ufb29"
    "\ufe62\ufe63\ufe66\ufe6b\uff0b\uff0d\uff1d\uff20"
    "\u2212"
)
GUARD = "'"


def needs_guard(text: str) -> bool:
    """True when a spreadsheet could run `text` as a formula (see the module's rule)."""
    return text[:1] != "" and text[0] in FORMULA_TRIGGERS and not _NUMBER.fullmatch(text)


def guard_formula(text: str) -> str:
    """`text` with a leading `'` when it needs one, else `text` itself."""
    return GUARD + text if needs_guard(text) else text


def _sql_literal(value: str) -> str:
    """`value` as a DuckDB string literal, its tab and CR spelled chr(9) and chr(13)."""
    parts: list[str] = []
    for ch in value:
        if ch in "\t\r":
            parts.append(f"chr({ord(ch)})")
        elif parts and parts[-1].startswith("'"):
            parts[-1] = parts[-1][:-1] + ch.replace("'", "''") + "'"
        else:
            parts.append("'" + ch.replace("'", "''") + "'")
    return "(" + " || ".join(parts) + ")"


# A string, tested with contains(): DuckDB plans `x IN (n values)` (and list_contains on a
# constant list) as a join, and that join let whole vectors of a COPY leave file order.
FORMULA_TRIGGERS_SQL = _sql_literal(FORMULA_TRIGGERS)


def guard_formula_sql(expr: str) -> str:
    """The SQL form of `guard_formula` for the text expression `expr`."""
    first = f"left({expr}, 1)"
    return (
        f"CASE WHEN {first} <> '' AND contains({FORMULA_TRIGGERS_SQL}, {first}) "
        f"AND NOT regexp_full_match({expr}, '{NUMBER_RE}') "
        f"THEN '{GUARD}{GUARD}' || {expr} ELSE {expr} END"
    )


def unguard_formula_sql(expr: str) -> str:
    """The SQL inverse of `guard_formula_sql`: a cell as it was before the guard."""
    return (
        f"CASE WHEN left({expr}, 1) = '{GUARD}{GUARD}' AND length({expr}) > 1 "
        f"AND contains({FORMULA_TRIGGERS_SQL}, substr({expr}, 2, 1)) THEN substr({expr}, 2) "
        f"ELSE {expr} END"
    )
