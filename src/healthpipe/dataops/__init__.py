"""Data work on local files with DuckDB: header checks, validation, statistics, anomalies."""
