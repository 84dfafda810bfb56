"""healthpipe: a pipeline for health-vitals CSV files, on AWS or on one machine."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
