"""What an analyst returns: the result schema, provenance and usage."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DISCLAIMER = (
    "Automated analysis of wearable data for triage support only; not a diagnosis. "
    "Confirm findings clinically before acting on them."
)

RiskLevel = Literal["low", "moderate", "high", "critical"]
RISK_LEVELS: tuple[str, ...] = ("low", "moderate", "high", "critical")
MAX_ITEMS = 12
MAX_SUMMARY_CHARS = 2000


class InsightSet(BaseModel):
    """The result schema every analyst must produce (LLM output is validated against it)."""

    model_config = ConfigDict(extra="ignore")

    insights: list[str] = Field(
        min_length=1,
        max_length=MAX_ITEMS,
        description="Findings, one sentence each, quoting only numbers given in the facts.",
    )
    recommendations: list[str] = Field(
        min_length=1,
        max_length=MAX_ITEMS,
        description="Concrete next steps for a care team; no diagnoses, no drug doses.",
    )
    summary: str = Field(
        min_length=1,
        max_length=MAX_SUMMARY_CHARS,
        description="A two- or three-sentence executive summary.",
    )
    risk_level: RiskLevel = Field(description="Overall risk of the cohort in this file.")


class Usage(BaseModel):
    """Tokens spent (all attempts, including failed ones) and what they cost."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    estimated: bool = False  # True when the provider did not report token counts

    def model_post_init(self, context: Any, /) -> None:
        # always written whole inside a document (domain/documents/base.py dumps set fields)
        self.__pydantic_fields_set__.update(type(self).model_fields)

    def plus(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=round(self.cost_usd + other.cost_usd, 8),
            estimated=self.estimated or other.estimated,
        )


def empty_grounding() -> dict[str, Any]:
    return {"checked": 0, "dropped": []}


class AnalystReport(BaseModel):
    """An InsightSet with who wrote it, how, and at what cost.

    `provider`/`model` name the analyst whose text is in `result`. After a fallback they
    are the builtin analyst's, `fallback_reason` says why (a short code such as
    `access_denied`), `fallback_detail` gives the error, and `attempted` names the LLM
    that was tried.
    """

    result: InsightSet
    provider: str
    model: str
    fallback_reason: str | None = None
    fallback_detail: str | None = None
    attempted: str | None = None
    attempts: int = 0
    latency_ms: int = 0
    usage: Usage = Field(default_factory=Usage)
    grounding: dict[str, Any] = Field(default_factory=empty_grounding)
    disclaimer: str = DISCLAIMER
