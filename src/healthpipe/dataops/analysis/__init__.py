"""The analysis of a processed file in DuckDB SQL (`facts.analyze_parquet`)."""

from __future__ import annotations

from healthpipe.dataops.analysis.common import AnalysisLimits
from healthpipe.dataops.analysis.facts import analyze_parquet
from healthpipe.dataops.analysis.readings import CONFLICTING_REASON

__all__ = ["CONFLICTING_REASON", "AnalysisLimits", "analyze_parquet"]
