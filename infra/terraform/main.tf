# healthpipe on AWS: S3 -> EventBridge -> three Lambda functions (ingestor, analyzer, notifier)
# -> DynamoDB + S3 + SES (uploads at or above chunked_threshold_mb: a Step Functions state
# machine over five more functions, stepfunctions.tf and state_machines.tf), with KMS everywhere, a dead-letter queue on every hop, alarms and a
# dashboard. Names follow the shared contract: <prefix>-ledger, <prefix>-analyses,
# <prefix>-bus, <prefix>-<function>-dlq, <prefix>-alerts.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  tags = merge(var.tags, { "healthpipe:deployment" = var.name_prefix })

  # Function => handler; must equal healthpipe.lambdas.FUNCTIONS (tests/infra checks it).
  handlers = {
    ingestor = "healthpipe.lambdas.ingestor.handler"
    analyzer = "healthpipe.lambdas.analyzer.handler"
    notifier = "healthpipe.lambdas.notifier.handler"
    # the chunked ingest of large files: the states of the state machine (stepfunctions.tf)
    chunk_plan     = "healthpipe.lambdas.chunk_plan.handler"
    chunk_map      = "healthpipe.lambdas.chunk_map.handler"
    chunk_reduce   = "healthpipe.lambdas.chunk_reduce.handler"
    chunk_split    = "healthpipe.lambdas.chunk_split.handler"
    chunk_assemble = "healthpipe.lambdas.chunk_assemble.handler"
    chunk_release  = "healthpipe.lambdas.chunk_release.handler"
    # the grouped analysis of large processed files: the states of its state machine (grouped_analyze.tf)
    analyze_prepare = "healthpipe.lambdas.analyze_prepare.handler"
    analyze_group   = "healthpipe.lambdas.analyze_group.handler"
    analyze_merge   = "healthpipe.lambdas.analyze_merge.handler"
    analyze_release = "healthpipe.lambdas.analyze_release.handler"
  }
  functions = toset(keys(local.handlers))
  # The Lambda runtime (python3.12); the packages are built and byte-compiled for it.
  python_version = "3.12"

  # Bucket names carry the account and region (global namespace). S3 allows 63 characters: a
  # longer name keeps its first 54 and ends with 8 hex characters of its SHA-1, so it stays
  # unique and still starts with the prefix (the deploy role's <prefix>-* scope).
  bucket_names_full = {
    data      = "${var.name_prefix}-data-${local.account_id}-${local.region}"
    artifacts = "${var.name_prefix}-artifacts-${local.account_id}-${local.region}"
    logs      = "${var.name_prefix}-access-logs-${local.account_id}-${local.region}"
  }
  bucket_names = { for k, n in local.bucket_names_full : k => length(n) <= 63 ? n : "${substr(n, 0, 54)}-${substr(sha1(n), 0, 8)}" }

  names = {
    data_bucket      = local.bucket_names.data
    artifacts_bucket = local.bucket_names.artifacts
    logs_bucket      = local.bucket_names.logs
    ledger_table     = "${var.name_prefix}-ledger"
    analyses_table   = "${var.name_prefix}-analyses"
    bus              = "${var.name_prefix}-bus"
    alerts_topic     = "${var.name_prefix}-alerts"
    alerts_dlq       = "${var.name_prefix}-alerts-dlq"
    scheduler_dlq    = "${var.name_prefix}-scheduler-dlq"
    analyze_queue    = "${var.name_prefix}-analyze-queue"
    config_set       = "${var.name_prefix}-reports"
  }

  function_names = { for f in local.functions : f => "${var.name_prefix}-${f}" }
  # The zips `healthpipe package` writes (healthpipe.packaging.zip_name; tests/infra checks it).
  packages = { for f in local.functions : f => "${var.lambda_package_dir}/healthpipe-${f}-${var.architecture}-py${local.python_version}.zip" }
}

resource "random_password" "pseudonym_secret" {
  length  = 48
  special = false
}

locals {
  pseudonym_secret = var.pseudonym_secret != "" ? var.pseudonym_secret : random_password.pseudonym_secret.result
}
