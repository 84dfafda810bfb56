# The grouped analysis of large processed files (issue 17; docs/deploy.md "Large files"): a
# Data Processing Complete event of at least grouped_analyze_threshold_rows valid rows starts
# this state machine instead of the analyzer. Prepare (claim, lake, split in groups of
# participants, histories), a Distributed Map over the groups (each analysed as the local
# executor analyses it), Merge (the facts merged, the analysis stored, Data Analysis
# Complete); a failure releases the claim (Release) and publishes Data Analysis Failed. The
# functions are aws_lambda_function.this["analyze_*"] (lambda.tf: same packaging, IAM per
# function in iam.tf). The definition is statemachine/grouped_analyze.asl.json.tftpl,
# validated by asl-validator in CI (make asl).

locals {
  grouped_analyze_name = "${var.name_prefix}-grouped-analyze"
  grouped_analyze_arn  = "arn:${local.partition}:states:${local.region}:${local.account_id}:stateMachine:${local.grouped_analyze_name}"
  # Every group is needed: a Map with a failed group fails (and the execution publishes
  # Data Analysis Failed) instead of merging an analysis with participants missing.
  grouped_analyze_tolerated_failure_percentage = 0

  # template variable => the function its state invokes
  grouped_analyze_functions = {
    analyze_prepare_function_arn = "analyze_prepare"
    analyze_group_function_arn   = "analyze_group"
    analyze_merge_function_arn   = "analyze_merge"
    analyze_release_function_arn = "analyze_release"
  }

  grouped_analyze_definition = templatefile("${path.module}/statemachine/grouped_analyze.asl.json.tftpl", merge(
    { for name, f in local.grouped_analyze_functions : name => aws_lambda_function.this[f].arn },
    {
      event_bus_name               = aws_cloudwatch_event_bus.this.name
      group_rows                   = var.grouped_analyze_group_rows
      max_concurrency              = var.grouped_analyze_max_concurrency
      tolerated_failure_percentage = local.grouped_analyze_tolerated_failure_percentage
      task_max_attempts            = var.grouped_analyze_task_max_attempts
      timeout_seconds              = var.grouped_analyze_timeout_seconds
    },
  ))

  # The analyze route's pattern for processed files of at least the threshold's valid rows
  # (the analyze rule, events.tf, takes the others: `local.analyze_pattern`).
  grouped_analyze_pattern = merge(local.routes.analyze.pattern, {
    detail = merge(local.routes.analyze.pattern.detail, {
      rows = { valid = [{ numeric = [">=", var.grouped_analyze_threshold_rows] }] }
    })
  })
}

resource "aws_cloudwatch_log_group" "grouped_analyze" {
  #checkov:skip=CKV_AWS_338:Retention is the log_retention_days variable (default 90 days): execution data is not logged, only states and errors
  name              = "/aws/vendedlogs/states/${local.grouped_analyze_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_sfn_state_machine" "grouped_analyze" {
  #checkov:skip=CKV_AWS_285:Execution data is not logged on purpose: inputs and outputs name object keys and dataset ids; every state's errors are logged (level ERROR)
  name       = local.grouped_analyze_name
  type       = "STANDARD"
  role_arn   = aws_iam_role.grouped_analyze.arn
  definition = local.grouped_analyze_definition

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.grouped_analyze.arn}:*"
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

  depends_on = [aws_iam_role_policy.grouped_analyze]
}

# --- the state machine's role ------------------------------------------------------------
resource "aws_iam_role" "grouped_analyze" {
  name                 = "${var.name_prefix}-grouped-analyze"
  description          = "healthpipe grouped-analysis state machine: invoke its four functions, read the group list, publish failures"
  assume_role_policy   = data.aws_iam_policy_document.states_assume.json
  max_session_duration = 3600
  tags                 = local.tags
}

data "aws_iam_policy_document" "grouped_analyze" {
  statement {
    sid       = "InvokeGroupedAnalyzeFunctions"
    actions   = ["lambda:InvokeFunction"]
    resources = flatten([for f in values(local.grouped_analyze_functions) : [aws_lambda_function.this[f].arn, "${aws_lambda_function.this[f].arn}:*"]])
  }

  # The Distributed Map's ItemReader reads the group list (work/analyze/<dataset>/groups.json).
  statement {
    sid       = "ReadGroupLists"
    actions   = ["s3:GetObject"]
    resources = ["${local.data_bucket_arn}/work/analyze/*"]
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
    resources = [local.grouped_analyze_arn]
  }

  statement {
    sid       = "ManageMapChildren"
    actions   = ["states:DescribeExecution", "states:StopExecution"]
    resources = ["arn:${local.partition}:states:${local.region}:${local.account_id}:execution:${local.grouped_analyze_name}/*"]
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

resource "aws_iam_role_policy" "grouped_analyze" {
  name   = "${var.name_prefix}-grouped-analyze"
  role   = aws_iam_role.grouped_analyze.id
  policy = data.aws_iam_policy_document.grouped_analyze.json
}

# --- routing: large processed files start an execution -------------------------------------
resource "aws_cloudwatch_event_rule" "grouped_analyze" {
  name           = "${var.name_prefix}-processing-complete-large"
  description    = "healthpipe: processed files of grouped_analyze_threshold_rows valid rows and more -> the grouped-analysis state machine"
  event_bus_name = aws_cloudwatch_event_bus.this.name
  event_pattern  = jsonencode(local.grouped_analyze_pattern)
  tags           = local.tags
}

resource "aws_iam_role" "grouped_analyze_start" {
  name               = "${var.name_prefix}-grouped-analyze-start"
  description        = "healthpipe: EventBridge starts the grouped-analysis state machine"
  assume_role_policy = data.aws_iam_policy_document.events_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "grouped_analyze_start" {
  statement {
    sid       = "StartGroupedAnalyze"
    actions   = ["states:StartExecution"]
    resources = [aws_sfn_state_machine.grouped_analyze.arn]
  }
}

resource "aws_iam_role_policy" "grouped_analyze_start" {
  name   = "${var.name_prefix}-grouped-analyze-start"
  role   = aws_iam_role.grouped_analyze_start.id
  policy = data.aws_iam_policy_document.grouped_analyze_start.json
}

resource "aws_cloudwatch_event_target" "grouped_analyze" {
  rule           = aws_cloudwatch_event_rule.grouped_analyze.name
  event_bus_name = aws_cloudwatch_event_bus.this.name
  target_id      = "grouped-analyze"
  arn            = aws_sfn_state_machine.grouped_analyze.arn
  role_arn       = aws_iam_role.grouped_analyze_start.arn

  retry_policy {
    maximum_event_age_in_seconds = var.event_retry.maximum_event_age_in_seconds
    maximum_retry_attempts       = var.event_retry.maximum_retry_attempts
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq["analyze_prepare"].arn
  }
}

# --- alarms ------------------------------------------------------------------------------
# An execution that failed or timed out (its failure states publish Data Analysis Failed to
# the alert route too; this also catches a failure state that could not publish), and large
# files EventBridge could not hand to the state machine.
resource "aws_cloudwatch_metric_alarm" "grouped_analyze_executions" {
  for_each = toset(["ExecutionsFailed", "ExecutionsTimedOut"])

  alarm_name          = "${var.name_prefix}-grouped-analyze-${lower(each.key)}"
  alarm_description   = "healthpipe: grouped-analysis executions ${each.key} (see the execution's history and docs/deploy.md \"Large files\")"
  namespace           = "AWS/States"
  metric_name         = each.key
  dimensions          = { StateMachineArn = aws_sfn_state_machine.grouped_analyze.arn }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "grouped_analyze_rule_failures" {
  alarm_name          = "${var.name_prefix}-processing-complete-large-failed-invocations"
  alarm_description   = "healthpipe: EventBridge could not start the grouped-analysis state machine for a large processed file"
  namespace           = "AWS/Events"
  metric_name         = "FailedInvocations"
  dimensions          = { RuleName = aws_cloudwatch_event_rule.grouped_analyze.name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = local.tags
}
