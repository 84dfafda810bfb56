"""Grounding: every number an analyst writes must be a number of the facts it was given,
and of the same vital.

A number matches a fact when one rounds to the other ("140" and "140.2" both match the fact
140.24, and "140.2397" matches it too; "2,500" matches 2,499.25 because a round number
with two or more significant digits is read at the precision of its last non-zero digit).
A percentage matches a fact, or the share of two numbers quoted in the same text ("928 of
951 readings (97.6%)"). Numbers inside words and labels (SpO2, NEWS2, P01) are not numbers;
numbers written as words ("two hundred and thirty") are (`numbers.py`).

A number said of a vital ("mean heart rate 230 bpm", see `numbers.said_of`) must match a
fact of that vital (under `metrics.heart_rate`, an episode of metric `heart_rate`, …) or a
fact of no vital in particular (a count, a share); matching only another vital's facts
makes it `misattributed` (230 was a systolic value).

An insight or recommendation quoting an unsupported or misattributed number is dropped and
recorded. The whole output is rejected (`ok` is False) when the summary is unsupported,
when a list would become empty, or when more than `max_dropped_share` of the texts are
dropped. `check_llm_output` first applies the meaning guard (`sanitize.py`, `meaning.py`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from healthpipe.analysts.meaning import guard_text, review_reasons, risk_floor
from healthpipe.analysts.numbers import NO_METRIC, Quoted, key_metrics, quoted_numbers
from healthpipe.analysts.sanitize import strip_markup
from healthpipe.domain.documents import Brief
from healthpipe.domain.insights import InsightSet

__all__ = [
    "Fact",
    "GroundingResult",
    "Quoted",
    "check_grounding",
    "check_llm_output",
    "fact_numbers",
    "quoted_numbers",
    "removed_statements",
    "unsupported_numbers",
]

EMBEDDED_NUMBER = re.compile(r"\d+(?:\.\d+)?")
MAX_DROPPED_SHARE = 0.5
EPSILON = 1e-9
LABEL_KEYS = ("metric", "vital", "kind", "parameter", "category")
FIELDS = ("insights", "recommendations")
NUMBER_REASONS = frozenset({"unsupported_number", "misattributed_number"})


@dataclass(frozen=True)
class Fact:
    value: float
    tolerance: float  # a float fact given as 1.54 also supports a quoted 1.5422
    metrics: frozenset[str] = NO_METRIC  # the vital(s) the fact is of (empty: none)


@dataclass
class GroundingResult:
    result: InsightSet | None
    checked: int
    numbers: int
    dropped: list[dict[str, Any]] = field(default_factory=list)
    ok: bool = True
    problem: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # risk, stripped (LLM output only)

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "checked": self.checked,
            "numbers": self.numbers,
            "dropped": self.dropped,
            "removed": len(self.dropped),
            **self.extra,
        }
        if self.problem:
            out["problem"] = self.problem
        return out


def removed_statements(grounding: dict[str, Any]) -> int:
    """Statements removed from what a reader was about to see, the LLM's included after a
    fallback."""
    own = len(grounding.get("dropped") or [])
    llm = grounding.get("llm") or {}
    return own + len(llm.get("dropped") or [])


def _float_tolerance(value: float) -> float:
    """Half a unit of the last decimal a float fact was given with (1.54 -> 0.005)."""
    text = repr(value)
    if "e" in text or "." not in text:
        return 0.0
    return 0.5 * 10.0 ** -len(text.split(".", 1)[1]) + EPSILON


def fact_numbers(facts: Any) -> list[Fact]:
    """Every number in the facts (values, numbers inside keys and strings), each with the
    vital(s) its place names: a key on its path ("heart_rate", "low_spo2"), a label of its
    object ({"metric": "systolic_bp", "peak_value": 230}), or, inside a string, the vital
    the string says it of ("blood pressure 209/121 mmHg", as in a quoted text)."""
    found: dict[tuple[float, frozenset[str]], float] = {(0.0, NO_METRIC): 0.0}
    # "0 in crisis" states an absence, not a figure

    def add(value: float, tolerance: float, scope: frozenset[str]) -> None:
        key = (value, scope)
        found[key] = max(found.get(key, 0.0), tolerance)

    def walk(node: Any, scope: frozenset[str]) -> None:
        if isinstance(node, bool) or node is None:
            return
        if isinstance(node, int):
            add(abs(float(node)), 0.0, scope)
        elif isinstance(node, float):
            add(abs(node), _float_tolerance(node), scope)
        elif isinstance(node, str):
            quoted = quoted_numbers(node)  # "blood pressure 209/121 mmHg": of BP only
            for q in quoted:
                add(q.value, 0.0, scope | q.metrics)
            starts = {q.start for q in quoted}
            for match in EMBEDDED_NUMBER.finditer(node):
                if match.start() not in starts:
                    add(float(match.group(0)), 0.0, scope)
        elif isinstance(node, dict):
            labels = [node[k] for k in LABEL_KEYS if isinstance(node.get(k), str)]
            inner = scope.union(*(key_metrics(label) for label in labels))
            for key, value in node.items():
                child = inner | key_metrics(str(key))
                walk(str(key), child)
                walk(value, child)
        elif isinstance(node, list | tuple):
            for value in node:
                walk(value, scope)

    walk(facts, NO_METRIC)
    return [Fact(v, t, m) for (v, m), t in sorted(found.items(), key=lambda kv: kv[0][0])]


def _near(quoted: Quoted, facts: Iterable[Fact]) -> bool:
    """The fact rounds to the quoted number, or the quoted number rounds to the fact."""
    return any(abs(quoted.value - f.value) <= max(quoted.tolerance, f.tolerance) for f in facts)


def _check_numbers(text: str, facts: list[Fact]) -> tuple[int, list[str], list[str]]:
    """(numbers checked, unsupported ones, misattributed ones as "230 (heart_rate)")."""
    quoted = quoted_numbers(text)
    plain = [q.value for q in quoted if not q.percent]
    shares = [Fact(100.0 * a / b, 0.0) for a in plain for b in plain if b > 0 and a <= b]
    bad: list[str] = []
    misattributed: list[str] = []
    for q in quoted:
        if q.percent and _near(q, shares):
            continue
        if not q.metrics:
            if not _near(q, facts):
                bad.append(q.text)
            continue
        fitting = [f for f in facts if not f.metrics or f.metrics & q.metrics]
        if _near(q, fitting):
            continue
        if _near(q, facts):
            misattributed.append(f"{q.text} ({'/'.join(sorted(q.metrics))})")
        else:
            bad.append(q.text)
    return len(quoted), bad, misattributed


def unsupported_numbers(text: str, facts: list[Fact]) -> tuple[int, list[str]]:
    """(how many numbers were checked, the ones no fact of their vital supports)."""
    count, bad, misattributed = _check_numbers(text, facts)
    return count, bad + [m.split(" (", 1)[0] for m in misattributed]


def _drop_record(field_name: str, text: str, bad: list[str], wrong: list[str]) -> dict[str, Any]:
    record: dict[str, Any] = {
        "field": field_name,
        "text": text,
        "reason": "unsupported_number" if bad else "misattributed_number",
        "unsupported": bad + [m.split(" (", 1)[0] for m in wrong],
    }
    if wrong:
        record["misattributed"] = wrong
    return record


def _ground(
    texts: dict[str, list[str]],
    summary: str,
    facts: dict[str, Any],
    *,
    checked: int,
    dropped: list[dict[str, Any]],
    max_dropped_share: float,
) -> tuple[dict[str, list[str]], int, str | None]:
    """Drop the texts quoting unsupported numbers; (kept texts, numbers checked, problem)."""
    numbers = fact_numbers(facts)
    quoted_total = 0
    kept: dict[str, list[str]] = {name: [] for name in FIELDS}
    for field_name in FIELDS:
        for text in texts[field_name]:
            count, bad, wrong = _check_numbers(text, numbers)
            quoted_total += count
            if bad or wrong:
                dropped.append(_drop_record(field_name, text, bad, wrong))
            else:
                kept[field_name].append(text)
    count, bad, wrong = _check_numbers(summary, numbers)
    quoted_total += count
    texts_dropped = sum(1 for d in dropped if d["field"] in FIELDS and d.get("whole", True))
    problem = None
    if bad or wrong:
        dropped.append(_drop_record("summary", summary, bad, wrong))
        problem = "the summary quotes unsupported numbers"
    elif not summary:
        problem = "no statement of the summary is left after removing unsafe ones"
    elif not kept["insights"] or not kept["recommendations"]:
        problem = "no insight or no recommendation is left after dropping unsupported ones"
    elif texts_dropped > max_dropped_share * checked:
        unsafe = any(d["reason"] not in NUMBER_REASONS for d in dropped)
        what = "were removed as unsafe or ungrounded" if unsafe else "quote unsupported numbers"
        problem = f"{texts_dropped} of {checked} texts {what}"
    return kept, quoted_total, problem


def check_grounding(
    result: InsightSet, facts: dict[str, Any], *, max_dropped_share: float = MAX_DROPPED_SHARE
) -> GroundingResult:
    """The number check alone (the builtin analyst's text)."""
    texts = {name: list(getattr(result, name)) for name in FIELDS}
    checked = sum(len(v) for v in texts.values()) + 1
    dropped: list[dict[str, Any]] = []
    kept, quoted, problem = _ground(
        texts,
        result.summary,
        facts,
        checked=checked,
        dropped=dropped,
        max_dropped_share=max_dropped_share,
    )
    if problem:
        return GroundingResult(None, checked, quoted, dropped, ok=False, problem=problem)
    return GroundingResult(result.model_copy(update=kept), checked, quoted, dropped)


def check_llm_output(
    result: InsightSet,
    facts: dict[str, Any],
    brief: Brief,
    *,
    max_dropped_share: float = MAX_DROPPED_SHARE,
) -> GroundingResult:
    """A model's output made safe to show: URLs and markup stripped, risk raised to the
    computed one, unsafe statements removed (`meaning.py`), then the number check."""
    review = review_reasons(brief)
    dropped: list[dict[str, Any]] = []
    stripped: dict[str, int] = {}
    texts: dict[str, list[str]] = {name: [] for name in FIELDS}

    def clean(field_name: str, text: str) -> str:
        plain = strip_markup(text)
        for kind, n in plain.kinds.items():
            stripped[kind] = stripped.get(kind, 0) + n
        guarded = guard_text(field_name, plain.text, review=review)
        for i, record in enumerate(guarded.removed):
            record["whole"] = i == 0 and not guarded.kept  # one text, counted once
        dropped.extend(guarded.removed)
        if not guarded.kept and not guarded.removed and field_name != "summary":
            dropped.append(
                {"field": field_name, "text": "", "reason": "empty_after_stripping", "whole": True}
            )
        return guarded.kept

    for field_name in FIELDS:
        for text in getattr(result, field_name):
            kept_text = clean(field_name, text)
            if kept_text:
                texts[field_name].append(kept_text)
    summary = clean("summary", result.summary)
    checked = len(result.insights) + len(result.recommendations) + 1
    kept, quoted, problem = _ground(
        texts, summary, facts, checked=checked, dropped=dropped,
        max_dropped_share=max_dropped_share,
    )  # fmt: skip
    risk, risk_record = risk_floor(result.risk_level, brief)
    extra: dict[str, Any] = {"risk": risk_record, "stripped": stripped}
    for record in dropped:
        record.pop("whole", None)
    if problem:
        return GroundingResult(None, checked, quoted, dropped, False, problem, extra)
    safe = result.model_copy(update={**kept, "summary": summary, "risk_level": risk})
    return GroundingResult(safe, checked, quoted, dropped, extra=extra)
