"""Numbers in a text, and the vital each one is said of.

A quoted number is written in digits ("230", "2,500", "97.6 %") or in words ("two hundred
and thirty", "thirty-seven point five", "eighty-five percent"). A lone "one" is not read as
a number (it is a pronoun or an article as often: "no one", "at least one of"), nor are
ordinals.

A number is said of a vital when
1. it is half of a blood-pressure pair ("170/121": systolic / diastolic), or
2. a unit follows it ("bpm" heart rate, "°C" temperature, "mmHg" blood pressure, "steps"),
   unless a count noun follows ("12 readings", "4.2 % of readings": counts and shares of the
   whole file), or
3. a vital is named at most `MENTION_WINDOW` characters before it in the same clause
   ("mean heart rate 230", "SpO2 fell to 85 %").
Otherwise it is said of no vital in particular.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEART, SPO2, TEMP = "heart_rate", "spo2", "temp_c"
SBP, DBP, STEPS = "systolic_bp", "diastolic_bp", "steps"
BP = frozenset({SBP, DBP})
NO_METRIC: frozenset[str] = frozenset()
MENTION_WINDOW = 32

DIGITS = re.compile(r"(?<![A-Za-z0-9_.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(\s?%|\s?per ?cent\b)?")
TEXT_MENTIONS: tuple[tuple[re.Pattern[str], frozenset[str]], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), metrics)
    for pattern, metrics in (
        (r"heart[\s-]?rates?|\bHR\b|pulse|\bbpm\b|tachycardi\w*|bradycardi\w*", frozenset({HEART})),
        (r"SpO2|SpO₂|oxygen|saturation|desaturat\w*|hypox\w*", frozenset({SPO2})),
        (
            r"temperatures?|\btemp\b|°\s?C\b|fever\w*|febrile|hypotherm\w*|pyrex\w*",
            frozenset({TEMP}),
        ),
        (r"systolic|\bSBP\b|hypotens\w*", frozenset({SBP})),
        (r"diastolic|\bDBP\b", frozenset({DBP})),
        (r"blood[\s-]pressures?|\bBP\b|mmHg|hypertens\w*", BP),
        (r"\bsteps?\b|step count|activity", frozenset({STEPS})),
    )
)
UNIT_AFTER = re.compile(
    r"\s?(?:(?P<bpm>bpm|beats)|(?P<temp>°\s?C|ºC|degrees)|(?P<mmhg>mmHg)|(?P<steps>steps))\b",
    re.IGNORECASE,
)
COUNT_AFTER = re.compile(
    r"\s?(?:%\s*|per ?cent\s+)?(?:of\s+(?:the\s+|all\s+)?)?(?:\w+\s+)?"
    r"(?:readings?|findings?|participants?|episodes?|records?|rows?|times|minutes?|hours?|"
    r"days?|measurements?|values?|files?|anomal\w+|people|users?)\b",
    re.IGNORECASE,
)
CLAUSE_BREAK = re.compile(r"[.;:!?\n]\s|[;!?\n]")

UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_WORD = "|".join([*UNITS, *SCALES])
WORDS = re.compile(
    rf"(?<![\w-])(?:{_WORD})(?:(?:[\s-]+|\s+and\s+)(?:{_WORD}))*"
    rf"(?:\s+point(?:\s+(?:{'|'.join(list(UNITS)[:10])}))+)?"
    r"(?:\s?(?:%|per ?cent\b))?(?![\w-])",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Quoted:
    text: str
    value: float
    tolerance: float
    percent: bool
    metrics: frozenset[str] = NO_METRIC  # the vital(s) the number is said of
    start: int = -1  # where it starts in the text


EPSILON = 1e-9


def tolerance(integer: str, decimals: str | None) -> float:
    """Half a unit of the last significant digit written ("2,500" is read to the hundred)."""
    if decimals:
        return 0.5 * 10.0 ** -len(decimals) + EPSILON
    digits = integer.replace(",", "").lstrip("0")
    trailing = len(digits) - len(digits.rstrip("0"))
    significant = len(digits) - trailing
    if trailing and significant >= 2:
        return 0.5 * 10.0**trailing + EPSILON
    return 0.5 + EPSILON


def words_value(words: str) -> tuple[float, str | None] | None:
    """("two hundred and thirty" -> 230), ("thirty-seven point five" -> 37.5, "5")."""
    whole, _, fraction = words.lower().partition(" point ")
    names = [t for t in re.split(r"[\s-]+", whole) if t and t != "and"]
    if not names or names == ["one"]:
        return None
    total = current = 0
    for word in names:
        if word in UNITS:
            current += UNITS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        else:
            total += max(current, 1) * SCALES[word]
            current = 0
    decimals = "".join(str(UNITS[t]) for t in fraction.split() if t in UNITS) or None
    value = float(f"{total + current}.{decimals}") if decimals else float(total + current)
    return value, decimals


def mentioned_metrics(text: str, before: int) -> frozenset[str]:
    """The vital named last before position `before`, within the window and the clause."""
    start = max(0, before - MENTION_WINDOW)
    window = text[start:before]
    breaks = list(CLAUSE_BREAK.finditer(window))
    if breaks:
        window = window[breaks[-1].end() :]
        start = before - len(window)
    best: tuple[int, frozenset[str]] | None = None
    for pattern, metrics in TEXT_MENTIONS:
        for match in pattern.finditer(window):
            if best is None or match.end() > best[0]:
                best = (match.end(), metrics)
    return best[1] if best else NO_METRIC


def said_of(text: str, start: int, end: int) -> frozenset[str]:
    """The vital(s) the number at text[start:end] is said of (empty: none in particular)."""
    if re.match(r"/\s?\d", text[end:]):
        return frozenset({SBP})
    if re.search(r"\d\s?/\s?$", text[:start]):
        return frozenset({DBP})
    after = text[end:]
    unit = UNIT_AFTER.match(after)
    if unit:
        kind = unit.lastgroup
        return {
            "bpm": frozenset({HEART}),
            "temp": frozenset({TEMP}),
            "mmhg": BP,
            "steps": frozenset({STEPS}),
        }[str(kind)]
    if COUNT_AFTER.match(after):
        return NO_METRIC
    return mentioned_metrics(text, start)


def quoted_numbers(text: str) -> list[Quoted]:
    """Every number quoted in `text`, in digits or in words, with the vital it is said of."""
    found: list[tuple[int, Quoted]] = []
    for match in DIGITS.finditer(text):
        integer, decimals, percent = match.group(1), match.group(2), match.group(3)
        value = float(integer.replace(",", "") + (f".{decimals}" if decimals else ""))
        metrics = said_of(text, match.start(), match.end(1) if not decimals else match.end(2))
        quoted = Quoted(
            match.group(0).strip(),
            value,
            tolerance(integer, decimals),
            bool(percent),
            metrics,
            match.start(),
        )
        found.append((match.start(), quoted))
    for match in WORDS.finditer(text):
        words = match.group(0)
        percent = bool(re.search(r"%|per ?cent$", words, re.IGNORECASE))
        number = re.sub(r"\s?(?:%|per ?cent)$", "", words, flags=re.IGNORECASE)
        parsed = words_value(number)
        if parsed is None:
            continue
        value, decimals = parsed
        integer = str(int(value))
        metrics = said_of(text, match.start(), match.start() + len(number))
        found.append(
            (
                match.start(),
                Quoted(
                    words.strip(),
                    value,
                    tolerance(integer, decimals),
                    percent,
                    metrics,
                    match.start(),
                ),
            )
        )
    return [q for _, q in sorted(found, key=lambda item: item[0])]


def key_metrics(key: str) -> frozenset[str]:
    """The vital(s) a fact's key or label names ("heart_rate", "low_spo2", "bp_mmhg")."""
    parts = [t for t in re.split(r"[^a-z0-9]+", key.lower()) if t]
    found: set[str] = set()
    for part in parts:
        if part in {"heart", "hr", "pulse"} or part.startswith(("tachy", "brady")):
            found.add(HEART)
        elif part in {"spo2", "oxygen"} or part.startswith(("satur", "desat", "hypox")):
            found.add(SPO2)
        elif part.startswith(("temp", "fever", "hypotherm", "pyrex", "febrile")):
            found.add(TEMP)
        elif part.startswith(("systolic", "hypotens")) or part == "sbp":
            found.add(SBP)
        elif part.startswith("diastolic") or part == "dbp":
            found.add(DBP)
        elif part in {"bp", "mmhg"} or part.startswith("hypertens"):
            found.update(BP)
        elif part in {"steps", "step"} or part.startswith("activ"):
            found.add(STEPS)
    if "blood" in parts and "pressure" in parts:
        found.update(BP)
    return frozenset(found)
