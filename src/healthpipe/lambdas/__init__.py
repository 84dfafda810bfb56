"""The Lambda functions of the AWS runtime, described for packaging and for Terraform.

Importing this package creates no client and reads no environment. Each function's
`adapters` are the modules under `healthpipe.adapters.aws` whose calls it makes (its IAM
policy is the union of their `IAM_ACTIONS`); `settings` are the `Settings` fields it reads,
each from the environment variable `HEALTHPIPE_<FIELD>`.
"""

from __future__ import annotations

from dataclasses import dataclass

AWS = "healthpipe.adapters.aws."


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    handler: str
    adapters: tuple[str, ...]
    settings: tuple[str, ...]


COMMON_SETTINGS = ("bucket", "kms_key_id", "ledger_table", "event_bus_name", "lease_seconds")
CLAIMING = (f"{AWS}s3", f"{AWS}ledger", f"{AWS}event_bus", f"{AWS}metrics")
ANALYSIS_SETTINGS = ("analyses_table", "analysis_ttl_days", "pseudonym_secret", "top_users")
# the analyzer, and the grouped analysis's Merge, which concludes an analysis as it does
ANALYZER_ADAPTERS = (
    f"{AWS}s3",
    f"{AWS}ledger",
    f"{AWS}analysis_store",
    f"{AWS}event_bus",
    f"{AWS}metrics",
    f"{AWS}bedrock_completion",
)
ANALYZER_SETTINGS = (
    *COMMON_SETTINGS,
    *ANALYSIS_SETTINGS,
    "duckdb_threads",
    "episode_gap_minutes",
    "activity_steps_above",
    "baseline_window_days",
    "analyst",
    "bedrock_model_id",
    "bedrock_region",
    "llm_timeout_seconds",
)

FUNCTIONS: dict[str, FunctionSpec] = {
    "ingestor": FunctionSpec(
        name="ingestor",
        handler="healthpipe.lambdas.ingestor.handler",
        adapters=(f"{AWS}s3", f"{AWS}ledger", f"{AWS}event_bus", f"{AWS}metrics"),
        # the chunked rule's thresholds: the uploads it takes are left to it
        settings=(
            *COMMON_SETTINGS,
            "rules",
            "duckdb_threads",
            "chunked_threshold_mb",
            "chunked_gzip_ratio",
        ),
    ),
    "analyzer": FunctionSpec(
        name="analyzer",
        handler="healthpipe.lambdas.analyzer.handler",
        adapters=ANALYZER_ADAPTERS,
        settings=ANALYZER_SETTINGS,
    ),
    "notifier": FunctionSpec(
        name="notifier",
        handler="healthpipe.lambdas.notifier.handler",
        adapters=(
            f"{AWS}s3",
            f"{AWS}ledger",
            f"{AWS}analysis_store",
            f"{AWS}mailer",
            f"{AWS}metrics",
        ),
        settings=(
            *COMMON_SETTINGS,
            *ANALYSIS_SETTINGS,
            "mailer",
            "email_from",
            "email_to",
            "ses_configuration_set",
            "alert_min_severity",
            "digest_only",
        ),
    ),
    # The chunked ingest of large files: the states of the Step Functions state machine
    # (infra/terraform/stepfunctions.tf). Plan claims the content (and records the rules
    # profile every chunk is checked with); Assemble completes the claim and publishes the
    # events; the steps between only read and write the bucket; Release gives the claim up
    # after a failure.
    "chunk_plan": FunctionSpec(
        name="chunk_plan",
        handler="healthpipe.lambdas.chunk_plan.handler",
        adapters=CLAIMING,
        settings=(*COMMON_SETTINGS, "rules", "duckdb_threads"),
    ),
    **{
        name: FunctionSpec(
            name=name,
            handler=f"healthpipe.lambdas.{name}.handler",
            adapters=(f"{AWS}s3", f"{AWS}metrics"),
            settings=("bucket", "kms_key_id", "duckdb_threads"),
        )
        for name in ("chunk_map", "chunk_reduce", "chunk_split")
    },
    "chunk_assemble": FunctionSpec(
        name="chunk_assemble",
        handler="healthpipe.lambdas.chunk_assemble.handler",
        adapters=CLAIMING,
        settings=(*COMMON_SETTINGS, "duckdb_threads"),
    ),
    # The failure branch: gives up the failed execution's claim (the ledger table; after a
    # failed Plan, the claim Plan recorded in the bucket under work/executions/, read only).
    "chunk_release": FunctionSpec(
        name="chunk_release",
        handler="healthpipe.lambdas.chunk_release.handler",
        adapters=(f"{AWS}s3", f"{AWS}ledger", f"{AWS}metrics"),
        settings=("bucket", "ledger_table"),
    ),
    # The analysis of large processed files in groups of participants: the states of the
    # grouped-analysis state machine (infra/terraform/grouped_analyze.tf). Prepare claims the
    # analysis and writes the groups; each Map item analyses one group (S3 only); Merge
    # merges, stores and publishes as the analyzer does; Release gives the claim up.
    "analyze_prepare": FunctionSpec(
        name="analyze_prepare",
        handler="healthpipe.lambdas.analyze_prepare.handler",
        adapters=(
            f"{AWS}s3",
            f"{AWS}ledger",
            f"{AWS}analysis_store",
            f"{AWS}event_bus",
            f"{AWS}metrics",
        ),
        settings=(*COMMON_SETTINGS, *ANALYSIS_SETTINGS, "duckdb_threads", "baseline_window_days"),
    ),
    "analyze_group": FunctionSpec(
        name="analyze_group",
        handler="healthpipe.lambdas.analyze_group.handler",
        adapters=(f"{AWS}s3", f"{AWS}metrics"),
        settings=(
            "bucket",
            "kms_key_id",
            "duckdb_threads",
            "top_users",
            "episode_gap_minutes",
            "activity_steps_above",
        ),
    ),
    "analyze_merge": FunctionSpec(
        name="analyze_merge",
        handler="healthpipe.lambdas.analyze_merge.handler",
        adapters=ANALYZER_ADAPTERS,
        settings=ANALYZER_SETTINGS,
    ),
    "analyze_release": FunctionSpec(
        name="analyze_release",
        handler="healthpipe.lambdas.analyze_release.handler",
        adapters=(f"{AWS}ledger", f"{AWS}metrics"),
        settings=("bucket", "ledger_table"),
    ),
}

__all__ = ["FUNCTIONS", "FunctionSpec"]
