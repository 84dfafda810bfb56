"""Grounding: every number an analyst writes must be a number of the facts it was given.

A number matches a fact when one rounds to the other ("140" and "140.2" both match the fact
140.24, and "140.2397" matches it too; "2,500" matches 2,499.25 because a round number
with two or more significant digits is read at the precision of its last non-zero digit).
A percentage matches a fact, or the share of two numbers quoted in the same text ("928 of
951 readings (97.6%)"). Numbers inside words and labels (SpO2, NEWS2, P01) are not numbers.

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


@dataclass(frozen=True)
class Fact:
    value: float
    tolerance: float  # a float fact given as 1.54 also supports a quoted 1.5422


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


def _float_tolerance(value: float) -> float:
    """Half a unit of the last decimal a float fact was given with (1.54 -> 0.005)."""
    text = repr(value)
    if "e" in text or "." not in text:
        return 0.0
    return 0.5 * 10.0 ** -len(text.split(".", 1)[1]) + EPSILON


def fact_numbers(facts: Any) -> list[Fact]:
    """Every number in the facts: values, and numbers inside keys and strings."""
    found: dict[float, float] = {0.0: 0.0}  # "0 in crisis" states an absence, not a figure

    def add(value: float, tolerance: float) -> None:
        found[value] = max(found.get(value, 0.0), tolerance)

    def walk(node: Any) -> None:
        if isinstance(node, bool) or node is None:
            return
        if isinstance(node, int):
            add(abs(float(node)), 0.0)
        elif isinstance(node, float):
            add(abs(node), _float_tolerance(node))
        elif isinstance(node, str):
            for number in EMBEDDED_NUMBER.findall(node):
                add(float(number), 0.0)
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(str(key))
                walk(value)
        elif isinstance(node, list | tuple):
            for value in node:
                walk(value)

    walk(facts)
    return [Fact(value, tolerance) for value, tolerance in sorted(found.items())]


def _near(quoted: Quoted, facts: Iterable[Fact]) -> bool:
    """The fact rounds to the quoted number, or the quoted number rounds to the fact."""
    return any(abs(quoted.value - f.value) <= max(quoted.tolerance, f.tolerance) for f in facts)


def unsupported_numbers(text: str, facts: list[Fact]) -> tuple[int, list[str]]:
    """(how many numbers were checked, the ones no fact supports)."""
    quoted = quoted_numbers(text)
    plain = [q.value for q in quoted if not q.percent]
    shares = [Fact(100.0 * a / b, 0.0) for a in plain for b in plain if b > 0 and a <= b]
    bad = []
    for q in quoted:
        if _near(q, facts) or (q.percent and _near(q, shares)):
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
