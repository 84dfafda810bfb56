"""Neutralising untrusted strings (file names, ids, model output) before they reach a report.

HTML escaping is Jinja2's job (autoescape); this module handles what escaping does not:
control characters, unbounded length, and cells a spreadsheet would run as a formula when a
reader pastes the text part into one (the one policy of `domain/formula.py`).
"""

from __future__ import annotations

import re
import unicodedata

from healthpipe.domain.formula import guard_formula

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile(r"\s+")


def neutralise(value: object, limit: int = 300) -> str:
    """One line, no control/bidi characters, at most `limit` chars, no formula trigger."""
    text = unicodedata.normalize("NFC", str(value))
    text = _CONTROL.sub(" ", text)
    text = _SPACES.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return guard_formula(text)


def neutralise_all(values: list[object], limit: int = 1000, count: int = 20) -> list[str]:
    return [neutralise(v, limit) for v in values[:count] if str(v).strip()]
