# The chunked ingest of large files (issue 17; docs/deploy.md "Large files"): an upload at or
# above chunked_threshold_mb starts this state machine instead of the ingestor. Plan, a
# Distributed Map over the plan's chunks (stage), a Distributed Map over the hash buckets
# (repeats across chunks), Reduce (row offsets), a second Distributed Map over the chunks
# (split), Assemble; a failure releases the claim (Release) and publishes the failure. The
# functions are aws_lambda_function.this["chunk_*"] (lambda.tf: same packaging, IAM per
# function in iam.tf). The definition is
# statemachine/chunked_ingest.asl.json.tftpl, validated by asl-validator in CI (make asl).

locals {
  chunked_threshold_bytes = var.chunked_threshold_mb * 1048576
  chunked_name            = "${var.name_prefix}-chunked-ingest"
  chunked_arn             = "arn:${local.partition}:states:${local.region}:${local.account_id}:stateMachine:${local.chunked_name}"
  # Every chunk is needed: a Map with a failed chunk fails (and the execution publishes
  # Data Processing Failed) instead of assembling a file with a chunk missing.
  chunked_tolerated_failure_percentage = 0

  # template variable => the function its state invokes
  chunked_functions = {
    plan_function_arn     = "chunk_plan"
    map_function_arn      = "chunk_map"
    reduce_function_arn   = "chunk_reduce"
    split_function_arn    = "chunk_split"
    assemble_function_arn = "chunk_assemble"
    release_function_arn  = "chunk_release"
  }

  chunked_definition = templatefile("${path.module}/statemachine/chunked_ingest.asl.json.tftpl", merge(
    { for name, f in local.chunked_functions : name => aws_lambda_function.this[f].arn },
    {
      event_bus_name               = aws_cloudwatch_event_bus.this.name
      chunk_bytes                  = var.chunked_chunk_mb * 1048576
      buckets                      = var.chunked_buckets
      max_concurrency              = var.chunked_max_concurrency
      tolerated_failure_percentage = local.chunked_tolerated_failure_percentage
      task_max_attempts            = var.chunked_task_max_attempts
      timeout_seconds              = var.chunked_timeout_seconds
    },
  ))

  # A gzip upload's threshold, on its compressed size (a conservative compression ratio:
  # a gzip that compresses less goes to the state machine below the threshold, harmless).
  chunked_gzip_threshold_bytes = floor(local.chunked_threshold_bytes / var.chunked_gzip_ratio)

  # The ingest route's pattern (this bucket's raw uploads) for uploads at or above the
  # threshold (events.tf `upload_size_patterns`: the ingestor's with ">=").
  chunked_pattern = local.upload_size_patterns.chunked
}

resource "aws_cloudwatch_log_group" "chunked" {
  #checkov:skip=CKV_AWS_338:Retention is the log_retention_days variable (default 90 days): execution data is not logged, only states and errors
  name              = "/aws/vendedlogs/states/${local.chunked_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_sfn_state_machine" "chunked" {
  #checkov:skip=CKV_AWS_285:Execution data is not logged on purpose: inputs and outputs name the uploads' object keys; every state's errors are logged (level ERROR)
  name       = local.chunked_name
  type       = "STANDARD"
  role_arn   = aws_iam_role.chunked.arn
  definition = local.chunked_definition

  # Errors of every state, without execution data (inputs and outputs carry object keys and
  # counts only, but logs need none of them).
  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.chunked.arn}:*"
    include_execution_data = false
    level                  = "ERROR"
  }

  tracing_configuration {
    enabled = var.tracing_enabled
  }

  encryption_configuration {
    type                              = "CUSTOMER_MANAGED_KMS_KEY"
    kms_key_id                        = aws_kms_key.this.arn
    kms_data_key_reuse_period_seconds = 300
  }

  tags = local.tags

  depends_on = [aws_iam_role_policy.chunked]
}

# --- the state machine's role ------------------------------------------------------------
data "aws_iam_policy_document" "states_assume" {
  statement {
    sid     = "StepFunctionsAssumes"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["states.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "chunked" {
  name                 = "${var.name_prefix}-chunked-ingest"
  description          = "healthpipe chunked-ingest state machine: invoke its six functions, read the chunk and bucket lists, publish failures"
  assume_role_policy   = data.aws_iam_policy_document.states_assume.json
  max_session_duration = 3600
  tags                 = local.tags
}

data "aws_iam_policy_document" "chunked" {
  statement {
    sid       = "InvokeChunkFunctions"
    actions   = ["lambda:InvokeFunction"]
    resources = flatten([for f in values(local.chunked_functions) : [aws_lambda_function.this[f].arn, "${aws_lambda_function.this[f].arn}:*"]])
  }

  # The Distributed Maps' ItemReader reads the plan's chunk and bucket lists (work/<dataset>/chunks.json, buckets.json).
  statement {
    sid       = "ReadChunkLists"
    actions   = ["s3:GetObject"]
    resources = ["${local.data_bucket_arn}/work/*"]
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }

  statement {
    sid       = "PublishFailures"
    actions   = ["events:PutEvents"]
    resources = [aws_cloudwatch_event_bus.this.arn]
  }

  # A Distributed Map runs its items as child executions of this state machine.
  statement {
    sid       = "RunMapChildren"
    actions   = ["states:StartExecution"]
    resources = [local.chunked_arn]
  }

  statement {
    sid       = "ManageMapChildren"
    actions   = ["states:DescribeExecution", "states:StopExecution"]
    resources = ["arn:${local.partition}:states:${local.region}:${local.account_id}:execution:${local.chunked_name}/*"]
  }

  # Vended logs and X-Ray take no resource-level permission ("*" is the only resource).
  statement {
    sid = "DeliverLogs"
    actions = [
      "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
      "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "WriteTraces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "chunked" {
  name   = "${var.name_prefix}-chunked-ingest"
  role   = aws_iam_role.chunked.id
  policy = data.aws_iam_policy_document.chunked.json
}

# --- routing: large uploads start an execution ---------------------------------------------
resource "aws_cloudwatch_event_rule" "chunked" {
  name           = "${var.name_prefix}-raw-object-created-large"
  description    = "healthpipe: raw uploads of chunked_threshold_mb and more -> the chunked-ingest state machine"
  event_bus_name = "default"
  event_pattern  = jsonencode(local.chunked_pattern)
  tags           = local.tags
}

data "aws_iam_policy_document" "events_assume" {
  statement {
    sid     = "EventBridgeAssumes"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "chunked_start" {
  name               = "${var.name_prefix}-chunked-start"
  description        = "healthpipe: EventBridge starts the chunked-ingest state machine"
  assume_role_policy = data.aws_iam_policy_document.events_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "chunked_start" {
  statement {
    sid       = "StartChunkedIngest"
    actions   = ["states:StartExecution"]
    resources = [aws_sfn_state_machine.chunked.arn]
  }
}

resource "aws_iam_role_policy" "chunked_start" {
  name   = "${var.name_prefix}-chunked-start"
  role   = aws_iam_role.chunked_start.id
  policy = data.aws_iam_policy_document.chunked_start.json
}

resource "aws_cloudwatch_event_target" "chunked" {
  rule           = aws_cloudwatch_event_rule.chunked.name
  event_bus_name = "default"
  target_id      = "chunked-ingest"
  arn            = aws_sfn_state_machine.chunked.arn
  role_arn       = aws_iam_role.chunked_start.arn

  retry_policy {
    maximum_event_age_in_seconds = var.event_retry.maximum_event_age_in_seconds
    maximum_retry_attempts       = var.event_retry.maximum_retry_attempts
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq["chunk_plan"].arn
  }
}

# --- alarms ------------------------------------------------------------------------------
# An execution that failed or timed out (its failure states publish Data Processing Failed to
# the alert route too; this also catches a failure state that could not publish), and large
# uploads EventBridge could not hand to the state machine.
resource "aws_cloudwatch_metric_alarm" "chunked_executions" {
  for_each = toset(["ExecutionsFailed", "ExecutionsTimedOut"])

  alarm_name          = "${var.name_prefix}-chunked-ingest-${lower(each.key)}"
  alarm_description   = "healthpipe: chunked-ingest executions ${each.key} (see the execution's history and docs/deploy.md \"Large files\")"
  namespace           = "AWS/States"
  metric_name         = each.key
  dimensions          = { StateMachineArn = aws_sfn_state_machine.chunked.arn }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "chunked_rule_failures" {
  alarm_name          = "${var.name_prefix}-raw-object-created-large-failed-invocations"
  alarm_description   = "healthpipe: EventBridge could not start the chunked-ingest state machine for a large upload"
  namespace           = "AWS/Events"
  metric_name         = "FailedInvocations"
  dimensions          = { RuleName = aws_cloudwatch_event_rule.chunked.name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = local.tags
}
