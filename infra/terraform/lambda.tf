# The functions (the pipeline's three, the chunked ingest's six, the grouped analysis's four), from the
# `healthpipe package` zip(s). Environment per the contract:
# HEALTHPIPE_RUNTIME=aws, HEALTHPIPE_<FIELD> for each Settings field the function reads
# (healthpipe.lambdas.FUNCTIONS[f].settings; tests/infra checks the lists are equal), and the
# Powertools variables.

locals {
  # Settings field => value, for every field any function reads.
  setting_values = {
    bucket                = aws_s3_bucket.data.bucket
    kms_key_id            = aws_kms_key.this.arn
    ledger_table          = aws_dynamodb_table.ledger.name
    analyses_table        = aws_dynamodb_table.analyses.name
    event_bus_name        = aws_cloudwatch_event_bus.this.name
    analysis_ttl_days     = tostring(var.analysis_ttl_days)
    rules                 = var.rules_profile
    duckdb_threads        = "0"
    top_users             = tostring(var.top_users)
    episode_gap_minutes   = tostring(var.episode_gap_minutes)
    activity_steps_above  = tostring(var.activity_steps_above)
    baseline_window_days  = tostring(var.baseline_window_days)
    pseudonym_secret      = local.pseudonym_secret
    analyst               = var.analyst
    bedrock_model_id      = local.bedrock_model_id
    bedrock_region        = local.bedrock_region
    llm_timeout_seconds   = tostring(var.llm_timeout_seconds)
    mailer                = "ses"
    email_from            = var.sender_email
    email_to              = join(",", var.recipient_emails)
    ses_configuration_set = aws_sesv2_configuration_set.this.configuration_set_name
    alert_min_severity    = var.alert_min_severity
    digest_only           = tostring(var.digest_only)
    chunked_threshold_mb  = tostring(var.chunked_threshold_mb)
    chunked_gzip_ratio    = tostring(var.chunked_gzip_ratio)
  }

  # A claim outlives the invocation that holds it: lease = timeout + 60 s. The chunked
  # ingest's claim is held by the execution, from Plan to Assemble: its timeout + 60 s; the
  # grouped analysis's from Prepare to Merge, likewise.
  lease_seconds = {
    for f in local.functions : f => tostring(
      contains(["chunk_plan", "chunk_assemble"], f) ? var.chunked_timeout_seconds + 60 :
      contains(["analyze_prepare", "analyze_merge"], f) ? var.grouped_analyze_timeout_seconds + 60 : var.lambda_timeout_seconds[f] + 60
    )
  }

  # Must equal healthpipe.lambdas.FUNCTIONS[f].settings.
  function_settings = {
    ingestor = ["bucket", "kms_key_id", "ledger_table", "event_bus_name", "lease_seconds", "rules", "duckdb_threads", "chunked_threshold_mb", "chunked_gzip_ratio"]
    analyzer = [
      "bucket", "kms_key_id", "ledger_table", "event_bus_name", "lease_seconds",
      "analyses_table", "analysis_ttl_days", "pseudonym_secret", "top_users",
      "duckdb_threads", "episode_gap_minutes", "activity_steps_above", "baseline_window_days",
      "analyst", "bedrock_model_id", "bedrock_region", "llm_timeout_seconds",
    ]
    notifier = [
      "bucket", "kms_key_id", "ledger_table", "event_bus_name", "lease_seconds",
      "analyses_table", "analysis_ttl_days", "pseudonym_secret", "top_users",
      "mailer", "email_from", "email_to", "ses_configuration_set", "alert_min_severity", "digest_only",
    ]
    chunk_plan     = ["bucket", "kms_key_id", "ledger_table", "event_bus_name", "lease_seconds", "rules", "duckdb_threads"]
    chunk_map      = ["bucket", "kms_key_id", "duckdb_threads"]
    chunk_reduce   = ["bucket", "kms_key_id", "duckdb_threads"]
    chunk_split    = ["bucket", "kms_key_id", "duckdb_threads"]
    chunk_assemble = ["bucket", "kms_key_id", "ledger_table", "event_bus_name", "lease_seconds", "duckdb_threads"]
    chunk_release  = ["bucket", "ledger_table"]
    analyze_prepare = [
      "bucket", "kms_key_id", "ledger_table", "event_bus_name", "lease_seconds",
      "analyses_table", "analysis_ttl_days", "pseudonym_secret", "top_users",
      "duckdb_threads", "baseline_window_days",
    ]
    analyze_group = ["bucket", "kms_key_id", "duckdb_threads", "top_users", "episode_gap_minutes", "activity_steps_above"]
    analyze_merge = [
      "bucket", "kms_key_id", "ledger_table", "event_bus_name", "lease_seconds",
      "analyses_table", "analysis_ttl_days", "pseudonym_secret", "top_users",
      "duckdb_threads", "episode_gap_minutes", "activity_steps_above", "baseline_window_days",
      "analyst", "bedrock_model_id", "bedrock_region", "llm_timeout_seconds",
    ]
    analyze_release = ["bucket", "ledger_table"]
  }

  base_environment = {
    HEALTHPIPE_RUNTIME           = "aws"
    POWERTOOLS_METRICS_NAMESPACE = "healthpipe"
    POWERTOOLS_LOG_LEVEL         = "INFO"
    POWERTOOLS_TRACE_DISABLED    = tostring(!var.tracing_enabled)
  }

  function_environment = {
    for f in local.functions : f => merge(
      local.base_environment,
      { POWERTOOLS_SERVICE_NAME = "healthpipe-${f}" },
      {
        for field in local.function_settings[f] :
        "HEALTHPIPE_${upper(field)}" => merge(local.setting_values, { lease_seconds = local.lease_seconds[f] })[field]
      },
    )
  }
}

resource "aws_cloudwatch_log_group" "function" {
  for_each = local.functions
  #checkov:skip=CKV_AWS_338:Retention is the log_retention_days variable (default 90 days): logs hold ids, counts and timings only, kept no longer than operations need

  name              = "/aws/lambda/${local.function_names[each.key]}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_lambda_function" "this" {
  for_each = local.functions
  #checkov:skip=CKV_AWS_117:No VPC: the functions call only AWS APIs over TLS, and a VPC would add NAT/endpoints cost without reducing exposure
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile outside this module; the package is built and deployed by the pipeline's own CodeBuild
  #checkov:skip=CKV_AWS_116:Failed async invocations go to the function's SQS queue through an on-failure destination (aws_lambda_function_event_invoke_config), which supersedes the legacy DLQ

  function_name = local.function_names[each.key]
  description   = "healthpipe ${each.key}"
  role          = aws_iam_role.function[each.key].arn
  handler       = local.handlers[each.key]
  runtime       = "python${local.python_version}"
  architectures = [var.architecture]
  memory_size   = var.lambda_memory_mb[each.key]
  timeout       = var.lambda_timeout_seconds[each.key]
  kms_key_arn   = aws_kms_key.this.arn

  s3_bucket         = aws_s3_object.package[each.key].bucket
  s3_key            = aws_s3_object.package[each.key].key
  s3_object_version = aws_s3_object.package[each.key].version_id
  source_code_hash  = filebase64sha256(local.packages[each.key])

  # Nothing reserved by default (-1: the unreserved pool), so a new account with a quota of
  # 10 can deploy; the analyzer's Bedrock load is bounded by its SQS event source instead.
  reserved_concurrent_executions = coalesce(var.lambda_reserved_concurrency[each.key], -1)

  ephemeral_storage {
    size = var.lambda_ephemeral_storage_mb[each.key] # DuckDB spills to /tmp
  }

  tracing_config {
    mode = var.tracing_enabled ? "Active" : "PassThrough"
  }

  environment {
    variables = local.function_environment[each.key]
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = var.analyst != "bedrock" || local.bedrock_model_id != ".amazon.nova-lite-v1:0"
      error_message = "No default Bedrock inference profile for region ${local.bedrock_region}: set bedrock_model_id (a model or profile offered there) or analyst = \"builtin\"."
    }
    precondition {
      condition     = var.analyst != "bedrock" || local.bedrock_profile_fits_region
      error_message = "bedrock_model_id ${local.bedrock_model_id} is an inference profile of another geography than ${local.bedrock_region}: use the ${local.bedrock_geo}. profile (or global.)."
    }
    precondition {
      condition     = var.analyst != "bedrock" || local.bedrock_model_fits_region
      error_message = "${local.bedrock_model_id} is not offered on demand in ${local.bedrock_region}: use its inference profile ${local.bedrock_geo}.${local.bedrock_model_id}."
    }
  }

  depends_on = [aws_iam_role_policy.function]
}

# The analyzer reads its events from an SQS queue (the analyze rule's target): the event
# source runs at most analyzer_max_concurrency invocations at once, which bounds the Bedrock
# calls without reserving account concurrency. One message per invocation; a failed one is
# received again after the visibility timeout and, after maxReceiveCount, dead-lettered.
resource "aws_lambda_event_source_mapping" "analyze" {
  function_name    = aws_lambda_function.this["analyzer"].arn
  event_source_arn = aws_sqs_queue.analyze.arn
  batch_size       = 1
  enabled          = true

  scaling_config {
    maximum_concurrency = var.analyzer_max_concurrency
  }

  depends_on = [aws_iam_role_policy.function]
}

# Async invocations (EventBridge) that still fail after Lambda's own retries land in the
# function's dead-letter queue, with the request and the error.
resource "aws_lambda_function_event_invoke_config" "this" {
  for_each = local.functions

  function_name                = aws_lambda_function.this[each.key].function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 21600

  destination_config {
    on_failure {
      destination = aws_sqs_queue.dlq[each.key].arn
    }
  }
}
