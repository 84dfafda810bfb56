"""The meaning guard: an LLM may word the findings, never change what they mean.

Grounding (`grounding.py`) checks numbers; this module checks meaning, one sentence (a
"statement") at a time, for every LLM analyst:

- `risk_level` is never lower than the computed one (the builtin analyst's rule over the
  same brief): a lower level is raised and the raise recorded;
- while the brief holds something to review, a statement of normality or reassurance ("all
  normal", "risk is low", "no concerns", "continue routine monitoring", …) is removed, and
  its record says what was to review (`review_reasons`): a high-severity finding, a
  medium-severity one (the code's own rule rates such a file "moderate", not "low", and the
  builtin analyst asks to review the listed findings), a flagged trend across uploads
  (which the level does not count: "low" beside it is not "all clear"), or no valid
  reading at all (nothing was assessed). Only a file whose computed level is low and that
  has no flagged trend may be called reassuring;
- a statement naming a diagnosis or a medication is removed, whatever the findings.

The term lists are below (and in docs/analysts.md). Category names the facts use
(tachycardia, bradycardia, low SpO2, fever, stage 1/2 hypertension, hypertensive crisis)
are findings, not diagnoses, and pass. Matching is case-insensitive on word boundaries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from healthpipe.domain.documents import Brief
from healthpipe.domain.insights import RISK_LEVELS, RiskLevel

# Statements of normality or reassurance: removed while something needs review
# (`review_reasons`).
REASSURANCE_TERMS: tuple[str, ...] = (
    r"all (?:readings |values |vitals |results |participants )?(?:are |were |look |looked )?"
    r"(?:normal|fine|healthy|stable|good|ok|okay)",
    r"(?:everything|everyone|all participants|the cohort|the group|vital signs|vitals)"
    r" (?:is|are|was|were|look|looks|looked|appear|appears|appeared|remain|remained|seem|seems)"
    r" (?:\w+ )?(?:normal|fine|healthy|stable|good|well|reassuring|unremarkable)",
    r"(?:is|are|was|were|remain|remains|remained|look|looks|appear|appears|seem|seems)"
    r" (?:entirely |completely |essentially |largely |generally |broadly )?"
    r"(?:normal|healthy|reassuring|unremarkable|benign)",
    r"within (?:the )?normal (?:limits|range|ranges|bands?|parameters)",
    r"(?:otherwise|generally|essentially|broadly) (?:normal|healthy|well|fine)",
    r"in good health",
    r"healthy",
    r"reassur\w*",
    r"unremarkable",
    r"nothing (?:to worry|of concern|concerning|alarming|abnormal|unusual|significant)",
    r"no (?:cause|reason|need) for (?:concern|alarm|worry|action|review)",
    r"no (?:significant |major |serious |clinically significant |real |immediate |urgent )?"
    r"(?:concerns?|issues|problems|abnormalit\w+|red flags)",
    r"no (?:urgent |immediate |further |specific |clinical |additional |special )?"
    r"(?:action|intervention|follow[- ]up|escalation|treatment)s?\b",
    r"(?:nothing|none) (?:requires?|needs?|warrants?) (?:attention|action|review)",
    r"not (?:clinically )?(?:concerning|worrying|alarming|significant)",
    r"(?:routine|standard|usual) (?:monitoring|care|follow[- ]up)"
    r"(?: (?:is|are|remains?) (?:sufficient|adequate|appropriate|enough))?",
    r"continue (?:as|with) (?:before|usual|normal)",
    r"low[- ]risk",
    r"(?:risk|concern) (?:is|was|remains) low",
    r"(?:look|looks|looked) (?:good|fine|ok|okay)",
    r"all clear",
)

# Diagnoses (conditions a wearable reading cannot establish) and the act of diagnosing.
DIAGNOSIS_TERMS: tuple[str, ...] = (
    r"diagnos(?:e|ed|es|ing)",
    r"diagnosis (?:of|is|was)",
    r"atrial fibrillation",
    r"a[- ]?fib",
    r"atrial flutter",
    r"arrhythmi\w*",
    r"ventricular (?:tachycardia|fibrillation)",
    r"heart block",
    r"myocardial infarction",
    r"heart attack",
    r"angina",
    r"isch(?:a)?emi\w*",
    r"cardiomyopath\w*",
    r"heart failure",
    r"cardiac arrest",
    r"(?:endo|peri|myo)carditis",
    r"stroke",
    r"transient ischaemic attack",
    r"(?:pulmonary )?embolism",
    r"thrombos[ie]s",
    r"deep vein thrombosis",
    r"seps[ie]s",
    r"septic\w*",
    r"septicaemia|septicemia",
    r"infections?",
    r"pneumonia",
    r"covid(?:-?19)?",
    r"influenza",
    r"copd",
    r"asthma\w*",
    r"(?:sleep )?apno?ea",
    r"diabet\w*",
    r"(?:hyper|hypo)thyroid\w*",
    r"thyroid (?:disease|disorder|storm)",
    r"an(?:a)?emi[ac]",
    r"dehydrat\w*",
    r"shock",
    r"(?:renal|kidney) (?:failure|disease|injury)",
    r"cancer",
    r"dementia",
    r"panic (?:attack|disorder)",
    r"anxiety disorder",
    r"pre-?eclampsia",
)

# Medications, drug classes, doses and the act of prescribing or administering them.
MEDICATION_TERMS: tuple[str, ...] = (
    r"medications?",
    r"medicines?",
    r"drugs?",
    r"prescri\w+",
    r"doses?",
    r"dosages?",
    r"dosing",
    r"\d+(?:\.\d+)?\s?(?:mg|mcg|µg|ml|units?)\b",
    r"milligrams?",
    r"tablets?",
    r"pills?",
    r"administer\w*",
    r"(?:start|starting|begin|initiate|commence|give|giving) (?:\w+ )?"
    r"(?:treatment|therapy|therapies)",
    r"anticoagula\w*",
    r"blood thinners?",
    r"antibiotics?",
    r"antihypertensives?",
    r"antipyretics?",
    r"antiarrhythmics?",
    r"beta[- ]?blockers?",
    r"ace inhibitors?",
    r"calcium channel blockers?",
    r"diuretics?",
    r"statins?",
    r"aspirin",
    r"heparin",
    r"warfarin",
    r"apixaban|rivaroxaban|dabigatran|edoxaban",
    r"clopidogrel",
    r"metoprolol|bisoprolol|atenolol|propranolol",
    r"amlodipine|lisinopril|ramipril|losartan",
    r"furosemide|hydrochlorothiazide",
    r"digoxin|amiodarone|adenosine",
    r"insulin|metformin",
    r"paracetamol|acetaminophen|ibuprofen|nsaids?",
    r"opioids?|morphine",
    r"(?:cortico)?steroids?|prednisol?one",
    r"salbutamol|albuterol|bronchodilators?|inhalers?",
    r"nitroglycerin|\bgtn\b",
    r"(?:supplemental|supplementary) oxygen|oxygen therapy",
    r"sedatives?|antidepressants?",
)


def _compile(terms: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"(?<![\w-])(?:" + "|".join(terms) + r")(?![\w-])", re.IGNORECASE)


REASSURANCE = _compile(REASSURANCE_TERMS)
DIAGNOSIS = _compile(DIAGNOSIS_TERMS)
MEDICATION = _compile(MEDICATION_TERMS)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


def split_statements(text: str) -> list[str]:
    """A text's sentences ("statements"); a text without a sentence end is one statement."""
    return [s.strip() for s in SENTENCE_END.split(text) if s.strip()]


def unsafe_reasons(statement: str, *, review: bool) -> dict[str, list[str]]:
    """Why `statement` must not reach a care team: reason -> the terms that matched
    (reassurance only while something needs `review`)."""
    found: dict[str, list[str]] = {}
    checks = [("diagnosis", DIAGNOSIS), ("medication", MEDICATION)]
    if review:
        checks.insert(0, ("reassurance", REASSURANCE))
    for reason, pattern in checks:
        terms = [m.group(0) for m in pattern.finditer(statement)]
        if terms:
            found[reason] = list(dict.fromkeys(t.lower() for t in terms))
    return found


def has_high_findings(brief: Brief) -> bool:
    """A high-severity finding exists (a NEWS2 parameter scoring 3, a crisis, …)."""
    severity = brief.anomalies.by_severity
    listed = brief.high_severity.participants
    return any(int(n or 0) > 0 for n in (severity.get("high"), severity.get("critical"), listed))


def review_reasons(brief: Brief) -> list[str]:
    """What in the brief needs review, in words (empty: nothing; a reassuring statement may
    then stay). From the builtin analyst's rule: any level above low (a high- or medium-
    severity finding; a file without valid readings), and the flagged trends it leaves out."""
    from healthpipe.analysts.builtin import risk_level

    reasons: list[str] = []
    if not brief.assessment.assessable:
        reasons.append("no valid readings")
    elif has_high_findings(brief):
        reasons.append("high-severity findings")
    elif risk_level(brief) != "low":
        reasons.append("medium-severity findings")
    if brief.trends:
        reasons.append("flagged trends")
    return reasons


def computed_risk(brief: Brief) -> RiskLevel:
    """The risk the facts give: the builtin analyst's rule, never below "high" with a high
    finding."""
    from healthpipe.analysts.builtin import risk_level

    computed: str = risk_level(brief)
    if computed not in RISK_LEVELS:  # e.g. a "not assessable" brief: no floor from it
        computed = "low"
    if has_high_findings(brief) and RISK_LEVELS.index(computed) < RISK_LEVELS.index("high"):
        computed = "high"
    return computed  # type: ignore[return-value]


def risk_floor(model: str, brief: Brief) -> tuple[RiskLevel, dict[str, Any]]:
    """The risk level to report (never below the computed one) and its record."""
    computed = computed_risk(brief)
    raised = RISK_LEVELS.index(model) < RISK_LEVELS.index(computed)
    reported: RiskLevel = computed if raised else model  # type: ignore[assignment]
    return reported, {"model": model, "computed": computed, "reported": reported, "raised": raised}


@dataclass
class MeaningCheck:
    """The statements of one text that may stay, and the removed ones with their reasons."""

    kept: str
    removed: list[dict[str, Any]] = field(default_factory=list)


def guard_text(field_name: str, text: str, *, review: list[str]) -> MeaningCheck:
    """`text` without its unsafe statements; `review` is `review_reasons` of the brief: a
    reassurance removed while it is not empty records them under "while"."""
    kept: list[str] = []
    removed: list[dict[str, Any]] = []
    for statement in split_statements(text):
        reasons = unsafe_reasons(statement, review=bool(review))
        if reasons:
            record: dict[str, Any] = {
                "field": field_name,
                "text": statement,
                "reason": next(iter(reasons)),
                "terms": reasons,
            }
            if "reassurance" in reasons:
                record["while"] = list(review)
            removed.append(record)
        else:
            kept.append(statement)
    return MeaningCheck(" ".join(kept), removed)
