"""What an analyst returns: the result schema, provenance and usage."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DISCLAIMER = (
    "Automated analysis of wearable data for triage support only; not a diagnosis. "
    "Confirm findings clinically before acting on them."
)

RiskLevel = Literal["low", "moderate", "high", "critical"]


class InsightSet(BaseModel):
    """The result schema every analyst must produce (LLM output is validated against it)."""

    model_config = ConfigDict(extra="ignore")

    insights: list[str] = Field(min_length=1, max_length=12)
    recommendations: list[str] = Field(min_length=1, max_length=12)
    summary: str = Field(min_length=1, max_length=2000)
    risk_level: RiskLevel


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class AnalystReport(BaseModel):
    """An InsightSet with who wrote it, how, and at what cost."""

    result: InsightSet
    provider: str
    model: str
    fallback_reason: str | None = None
    latency_ms: int = 0
    usage: Usage = Field(default_factory=Usage)
    grounding: dict[str, Any] = Field(default_factory=lambda: {"checked": 0, "dropped": []})
    disclaimer: str = DISCLAIMER

    def provenance(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "fallback_reason": self.fallback_reason,
            "latency_ms": self.latency_ms,
        }
