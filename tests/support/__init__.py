"""Helpers shared by the test tiers (importable as `support`: pytest's `pythonpath`).

`support.readings` writes processed-readings Parquet files the analysis reads;
`support.twins` holds the Python twins and reference SQL the tests hold the coded rules to
(used by tests only, so they live here, not in `src/`). The moto helpers stay in
`tests/aws/moto_env.py`.
"""
