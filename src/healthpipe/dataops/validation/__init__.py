"""Validation and split of a vitals CSV file with DuckDB.

Malformed records are captured by DuckDB's reject tables, never dropped; every rule is
evaluated per row; every input record ends in exactly one of the two outputs, which keep
the file's order.

- `file`: the entry point (line endings, record sizes, which path splits the file);
- `staged`: the usual path, one parse into a staging Parquet file;
- `table`: the path for files whose malformed records form many runs;
- `common`: the SQL both paths share; `types`: what they take and return.
"""

from __future__ import annotations

from healthpipe.dataops.validation.file import validate_file
from healthpipe.dataops.validation.types import MALFORMED_REASON, SplitPaths, ValidationResult

__all__ = ["MALFORMED_REASON", "SplitPaths", "ValidationResult", "validate_file"]
