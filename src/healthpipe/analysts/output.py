"""Reading a model's answer into an InsightSet, tolerant of the usual small deviations.

Accepted: a tool-input object, or text holding one JSON object (possibly in a code fence or
after some prose); the object possibly wrapped in one outer key; keys in another case;
a single string where a list is expected; list items given as objects with a text field;
`risk_level` in another case or as "medium". Everything else is a `malformed_output`
(no JSON object) or `schema_invalid` (an object that does not fit) AnalystError.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from healthpipe.domain.insights import MAX_ITEMS, InsightSet
from healthpipe.ports import AnalystError

REQUIRED = ("insights", "recommendations", "summary", "risk_level")
ITEM_TEXT_KEYS = ("text", "insight", "recommendation", "description", "content")
RISK_SYNONYMS = {"medium": "moderate", "moderately high": "high", "severe": "critical"}


def extract_json_object(text: str) -> dict[str, Any]:
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.strip("`")
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else stripped
    try:
        value = json.loads(stripped)
    except ValueError:
        start = stripped.find("{")
        if start < 0:
            raise AnalystError("malformed_output", "the answer holds no JSON object") from None
        try:
            value, _ = json.JSONDecoder().raw_decode(stripped[start:])
        except ValueError as exc:
            raise AnalystError("malformed_output", f"invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise AnalystError(
            "malformed_output", f"expected a JSON object, got {type(value).__name__}"
        )
    return value


def _normal_key(key: str) -> str:
    return key.strip().lower().replace(" ", "_").replace("-", "_")


def _unwrap(data: dict[str, Any]) -> dict[str, Any]:
    for _ in range(2):
        keys = {_normal_key(k) for k in data}
        if keys & set(REQUIRED):
            return data
        nested = [v for v in data.values() if isinstance(v, dict)]
        if len(nested) != 1:
            return data
        data = nested[0]
    return data


def _text_items(value: Any) -> Any:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return value
    items = []
    for item in value:
        if isinstance(item, dict):
            item = next((item[k] for k in ITEM_TEXT_KEYS if isinstance(item.get(k), str)), item)
        if isinstance(item, str):
            item = " ".join(item.split())
            if not item:
                continue
        items.append(item)
    return items[:MAX_ITEMS]


def normalize(data: dict[str, Any]) -> dict[str, Any]:
    data = {_normal_key(k): v for k, v in _unwrap(data).items()}
    for key in ("insights", "recommendations"):
        if key in data:
            data[key] = _text_items(data[key])
    summary = data.get("summary")
    if isinstance(summary, list) and all(isinstance(s, str) for s in summary):
        data["summary"] = " ".join(summary)
    if isinstance(data.get("summary"), str):
        data["summary"] = " ".join(data["summary"].split())
    risk = data.get("risk_level")
    if isinstance(risk, str):
        risk = risk.strip().lower()
        data["risk_level"] = RISK_SYNONYMS.get(risk, risk)
    return data


def parse_insight_set(raw: dict[str, Any] | str) -> InsightSet:
    data = extract_json_object(raw) if isinstance(raw, str) else raw
    try:
        return InsightSet.model_validate(normalize(data))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'output'}: {e['msg']}" for e in exc.errors()
        )
        raise AnalystError("schema_invalid", problems) from None
