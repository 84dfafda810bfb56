"""Grounding: every number an analyst writes must be a number of the facts it was given.

A number matches a fact when the fact rounds to it at the precision written ("140" and
"140.2" both match 140.2397; "2,500" matches 2,499.25 because a round number with two or
more significant digits is read at the precision of its last non-zero digit). A percentage
matches a fact, or the share of two numbers quoted in the same text ("928 of 951 readings
(97.6%)"). Numbers inside words and labels (SpO2, NEWS2, P01) are not numbers.

An insight or recommendation quoting an unsupported number is dropped and recorded. The
whole output is rejected (`ok` is False) when the summary is unsupported, when a list
would become empty, or when more than `max_dropped_share` of the texts are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from healthpipe.domain.insights import InsightSet

NUMBER = re.compile(r"(?<![A-Za-z0-9_.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(\s?%)?")
EMBEDDED_NUMBER = re.compile(r"\d+(?:\.\d+)?")
MAX_DROPPED_SHARE = 0.5
EPSILON = 1e-9


@dataclass(frozen=True)
class Quoted:
    text: str
    value: float
    tolerance: float
    percent: bool


@dataclass
class GroundingResult:
    result: InsightSet | None
    checked: int
    numbers: int
    dropped: list[dict[str, Any]] = field(default_factory=list)
    ok: bool = True
    problem: str | None = None

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "checked": self.checked,
            "numbers": self.numbers,
            "dropped": self.dropped,
        }
        if self.problem:
            out["problem"] = self.problem
        return out


def _tolerance(integer: str, decimals: str | None) -> float:
    if decimals:
        return 0.5 * 10.0 ** -len(decimals) + EPSILON
    digits = integer.replace(",", "").lstrip("0")
    trailing = len(digits) - len(digits.rstrip("0"))
    significant = len(digits) - trailing
    if trailing and significant >= 2:
        return 0.5 * 10.0**trailing + EPSILON
    return 0.5 + EPSILON


def quoted_numbers(text: str) -> list[Quoted]:
    out = []
    for match in NUMBER.finditer(text):
        integer, decimals, percent = match.group(1), match.group(2), match.group(3)
        value = float(integer.replace(",", "") + (f".{decimals}" if decimals else ""))
        out.append(
            Quoted(match.group(0).strip(), value, _tolerance(integer, decimals), bool(percent))
        )
    return out


def fact_numbers(facts: Any) -> list[float]:
    """Every number in the facts: values, and numbers inside keys and strings."""
    found: set[float] = {0.0}  # "0 readings in crisis" states an absence, not a figure

    def walk(node: Any) -> None:
        if isinstance(node, bool) or node is None:
            return
        if isinstance(node, int | float):
            found.add(abs(float(node)))
        elif isinstance(node, str):
            found.update(float(n) for n in EMBEDDED_NUMBER.findall(node))
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(str(key))
                walk(value)
        elif isinstance(node, list | tuple):
            for value in node:
                walk(value)

    walk(facts)
    return sorted(found)


def _near(value: float, tolerance: float, candidates: Iterable[float]) -> bool:
    return any(abs(value - c) <= tolerance for c in candidates)


def unsupported_numbers(text: str, facts: list[float]) -> tuple[int, list[str]]:
    """(how many numbers were checked, the ones no fact supports)."""
    quoted = quoted_numbers(text)
    plain = [q.value for q in quoted if not q.percent]
    shares = [100.0 * a / b for a in plain for b in plain if b > 0 and a <= b]
    bad = []
    for q in quoted:
        if _near(q.value, q.tolerance, facts):
            continue
        if q.percent and _near(q.value, q.tolerance, shares):
            continue
        bad.append(q.text)
    return len(quoted), bad


def check_grounding(
    result: InsightSet, facts: dict[str, Any], *, max_dropped_share: float = MAX_DROPPED_SHARE
) -> GroundingResult:
    numbers = fact_numbers(facts)
    checked = 0
    quoted_total = 0
    dropped: list[dict[str, Any]] = []
    kept: dict[str, list[str]] = {"insights": [], "recommendations": []}
    for field_name in ("insights", "recommendations"):
        for text in getattr(result, field_name):
            checked += 1
            count, bad = unsupported_numbers(text, numbers)
            quoted_total += count
            if bad:
                dropped.append({"field": field_name, "text": text, "unsupported": bad})
            else:
                kept[field_name].append(text)
    checked += 1
    count, summary_bad = unsupported_numbers(result.summary, numbers)
    quoted_total += count
    problem = None
    if summary_bad:
        dropped.append({"field": "summary", "text": result.summary, "unsupported": summary_bad})
        problem = "the summary quotes unsupported numbers"
    elif not kept["insights"] or not kept["recommendations"]:
        problem = "no insight or no recommendation is left after dropping unsupported ones"
    elif len(dropped) > max_dropped_share * checked:
        problem = f"{len(dropped)} of {checked} texts quote unsupported numbers"
    if problem:
        return GroundingResult(None, checked, quoted_total, dropped, ok=False, problem=problem)
    grounded = result.model_copy(update=kept)
    return GroundingResult(grounded, checked, quoted_total, dropped)
