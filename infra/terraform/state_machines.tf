# The two Step Functions state machines, deployed alike: the chunked ingest of large uploads
# (stepfunctions.tf) and the grouped analysis of large processed files (grouped_analyze.tf).
# Each has its log group, its definition (errors logged without execution data, traced,
# encrypted with the key), its role, the EventBridge rule that starts it with a role of its
# own, and alarms on its failed executions and on the events its rule could not deliver.
# What differs is one entry of local.state_machines; the `moved` blocks at the end carry an
# existing deployment's per-machine addresses over (nothing is recreated).

locals {
  state_machines = {
    chunked = {
      name             = local.chunked_name
      arn              = local.chunked_arn
      definition       = local.chunked_definition
      function_arns    = [for f in values(local.chunked_functions) : aws_lambda_function.this[f].arn]
      role_description = "healthpipe chunked-ingest state machine: invoke its six functions, read the chunk and bucket lists, publish failures"
      invoke_sid       = "InvokeChunkFunctions"
      # the Distributed Maps' ItemReader: the plan's chunk and bucket lists
      # (work/<dataset>/chunks.json, buckets.json)
      lists_sid         = "ReadChunkLists"
      lists             = "${local.data_bucket_arn}/work/*"
      rule_name         = "${var.name_prefix}-raw-object-created-large"
      rule_description  = "healthpipe: raw uploads of chunked_threshold_mb and more -> the chunked-ingest state machine"
      bus               = "default"
      pattern           = jsonencode(local.chunked_pattern)
      start_name        = "${var.name_prefix}-chunked-start"
      start_description = "healthpipe: EventBridge starts the chunked-ingest state machine"
      start_sid         = "StartChunkedIngest"
      target_id         = "chunked-ingest"
      dlq               = "chunk_plan" # the queue of the state it starts
      executions        = "chunked-ingest executions"
      undelivered       = "the chunked-ingest state machine for a large upload"
    }
    grouped_analyze = {
      name             = local.grouped_analyze_name
      arn              = local.grouped_analyze_arn
      definition       = local.grouped_analyze_definition
      function_arns    = [for f in values(local.grouped_analyze_functions) : aws_lambda_function.this[f].arn]
      role_description = "healthpipe grouped-analysis state machine: invoke its four functions, read the group list, publish failures"
      invoke_sid       = "InvokeGroupedAnalyzeFunctions"
      # the Distributed Map's ItemReader: the group list (work/analyze/<dataset>/groups.json)
      lists_sid         = "ReadGroupLists"
      lists             = "${local.data_bucket_arn}/work/analyze/*"
      rule_name         = "${var.name_prefix}-processing-complete-large"
      rule_description  = "healthpipe: processed files of grouped_analyze_threshold_rows valid rows and more -> the grouped-analysis state machine"
      bus               = aws_cloudwatch_event_bus.this.name
      pattern           = jsonencode(local.grouped_analyze_pattern)
      start_name        = "${var.name_prefix}-grouped-analyze-start"
      start_description = "healthpipe: EventBridge starts the grouped-analysis state machine"
      start_sid         = "StartGroupedAnalyze"
      target_id         = "grouped-analyze"
      dlq               = "analyze_prepare" # the queue of the state it starts
      executions        = "grouped-analysis executions"
      undelivered       = "the grouped-analysis state machine for a large processed file"
    }
  }

  # "<machine>.<metric>" => the alarm on that metric of the machine's executions
  state_machine_execution_alarms = {
    for pair in setproduct(keys(local.state_machines), ["ExecutionsFailed", "ExecutionsTimedOut"]) :
    "${pair[0]}.${pair[1]}" => { machine = pair[0], metric = pair[1] }
  }
}

resource "aws_cloudwatch_log_group" "state_machine" {
  for_each = local.state_machines

  #checkov:skip=CKV_AWS_338:Retention is the log_retention_days variable (default 90 days): execution data is not logged, only states and errors
  name              = "/aws/vendedlogs/states/${each.value.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_sfn_state_machine" "this" {
  for_each = local.state_machines

  #checkov:skip=CKV_AWS_285:Execution data is not logged on purpose: inputs and outputs name object keys, dataset ids and counts; every state's errors are logged (level ERROR)
  name       = each.value.name
  type       = "STANDARD"
  role_arn   = aws_iam_role.state_machine[each.key].arn
  definition = each.value.definition

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.state_machine[each.key].arn}:*"
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

  depends_on = [aws_iam_role_policy.state_machine]
}

# --- each state machine's role -------------------------------------------------------------
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

resource "aws_iam_role" "state_machine" {
  for_each = local.state_machines

  name                 = each.value.name
  description          = each.value.role_description
  assume_role_policy   = data.aws_iam_policy_document.states_assume.json
  max_session_duration = 3600
  tags                 = local.tags
}

data "aws_iam_policy_document" "state_machine" {
  for_each = local.state_machines

  statement {
    sid       = each.value.invoke_sid
    actions   = ["lambda:InvokeFunction"]
    resources = flatten([for arn in each.value.function_arns : [arn, "${arn}:*"]])
  }

  # The Distributed Maps' ItemReader reads the item lists the first state wrote.
  statement {
    sid       = each.value.lists_sid
    actions   = ["s3:GetObject"]
    resources = [each.value.lists]
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
    resources = [each.value.arn]
  }

  statement {
    sid       = "ManageMapChildren"
    actions   = ["states:DescribeExecution", "states:StopExecution"]
    resources = ["arn:${local.partition}:states:${local.region}:${local.account_id}:execution:${each.value.name}/*"]
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

resource "aws_iam_role_policy" "state_machine" {
  for_each = local.state_machines

  name   = each.value.name
  role   = aws_iam_role.state_machine[each.key].id
  policy = data.aws_iam_policy_document.state_machine[each.key].json
}

# --- routing: the rule that starts each one ---------------------------------------------------
resource "aws_cloudwatch_event_rule" "state_machine" {
  for_each = local.state_machines

  name           = each.value.rule_name
  description    = each.value.rule_description
  event_bus_name = each.value.bus
  event_pattern  = each.value.pattern
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

resource "aws_iam_role" "state_machine_start" {
  for_each = local.state_machines

  name               = each.value.start_name
  description        = each.value.start_description
  assume_role_policy = data.aws_iam_policy_document.events_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "state_machine_start" {
  for_each = local.state_machines

  statement {
    sid       = each.value.start_sid
    actions   = ["states:StartExecution"]
    resources = [aws_sfn_state_machine.this[each.key].arn]
  }
}

resource "aws_iam_role_policy" "state_machine_start" {
  for_each = local.state_machines

  name   = each.value.start_name
  role   = aws_iam_role.state_machine_start[each.key].id
  policy = data.aws_iam_policy_document.state_machine_start[each.key].json
}

resource "aws_cloudwatch_event_target" "state_machine" {
  for_each = local.state_machines

  rule           = aws_cloudwatch_event_rule.state_machine[each.key].name
  event_bus_name = each.value.bus
  target_id      = each.value.target_id
  arn            = aws_sfn_state_machine.this[each.key].arn
  role_arn       = aws_iam_role.state_machine_start[each.key].arn

  retry_policy {
    maximum_event_age_in_seconds = var.event_retry.maximum_event_age_in_seconds
    maximum_retry_attempts       = var.event_retry.maximum_retry_attempts
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq[each.value.dlq].arn
  }
}

# --- alarms ------------------------------------------------------------------------------
# An execution that failed or timed out (its failure states publish the failure event to the
# alert route too; this also catches a failure state that could not publish), and events
# EventBridge could not hand to the state machine.
resource "aws_cloudwatch_metric_alarm" "state_machine_executions" {
  for_each = local.state_machine_execution_alarms

  alarm_name          = "${local.state_machines[each.value.machine].name}-${lower(each.value.metric)}"
  alarm_description   = "healthpipe: ${local.state_machines[each.value.machine].executions} ${each.value.metric} (see the execution's history and docs/deploy.md \"Large files\")"
  namespace           = "AWS/States"
  metric_name         = each.value.metric
  dimensions          = { StateMachineArn = aws_sfn_state_machine.this[each.value.machine].arn }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "state_machine_rule_failures" {
  for_each = local.state_machines

  alarm_name          = "${each.value.rule_name}-failed-invocations"
  alarm_description   = "healthpipe: EventBridge could not start ${each.value.undelivered}"
  namespace           = "AWS/Events"
  metric_name         = "FailedInvocations"
  dimensions          = { RuleName = aws_cloudwatch_event_rule.state_machine[each.key].name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = local.tags
}

# --- the addresses these had, one resource per machine (before session 9) ------------------
moved {
  from = aws_cloudwatch_log_group.chunked
  to   = aws_cloudwatch_log_group.state_machine["chunked"]
}
moved {
  from = aws_cloudwatch_log_group.grouped_analyze
  to   = aws_cloudwatch_log_group.state_machine["grouped_analyze"]
}
moved {
  from = aws_sfn_state_machine.chunked
  to   = aws_sfn_state_machine.this["chunked"]
}
moved {
  from = aws_sfn_state_machine.grouped_analyze
  to   = aws_sfn_state_machine.this["grouped_analyze"]
}
moved {
  from = aws_iam_role.chunked
  to   = aws_iam_role.state_machine["chunked"]
}
moved {
  from = aws_iam_role.grouped_analyze
  to   = aws_iam_role.state_machine["grouped_analyze"]
}
moved {
  from = aws_iam_role_policy.chunked
  to   = aws_iam_role_policy.state_machine["chunked"]
}
moved {
  from = aws_iam_role_policy.grouped_analyze
  to   = aws_iam_role_policy.state_machine["grouped_analyze"]
}
moved {
  from = aws_cloudwatch_event_rule.chunked
  to   = aws_cloudwatch_event_rule.state_machine["chunked"]
}
moved {
  from = aws_cloudwatch_event_rule.grouped_analyze
  to   = aws_cloudwatch_event_rule.state_machine["grouped_analyze"]
}
moved {
  from = aws_iam_role.chunked_start
  to   = aws_iam_role.state_machine_start["chunked"]
}
moved {
  from = aws_iam_role.grouped_analyze_start
  to   = aws_iam_role.state_machine_start["grouped_analyze"]
}
moved {
  from = aws_iam_role_policy.chunked_start
  to   = aws_iam_role_policy.state_machine_start["chunked"]
}
moved {
  from = aws_iam_role_policy.grouped_analyze_start
  to   = aws_iam_role_policy.state_machine_start["grouped_analyze"]
}
moved {
  from = aws_cloudwatch_event_target.chunked
  to   = aws_cloudwatch_event_target.state_machine["chunked"]
}
moved {
  from = aws_cloudwatch_event_target.grouped_analyze
  to   = aws_cloudwatch_event_target.state_machine["grouped_analyze"]
}
moved {
  from = aws_cloudwatch_metric_alarm.chunked_executions["ExecutionsFailed"]
  to   = aws_cloudwatch_metric_alarm.state_machine_executions["chunked.ExecutionsFailed"]
}
moved {
  from = aws_cloudwatch_metric_alarm.chunked_executions["ExecutionsTimedOut"]
  to   = aws_cloudwatch_metric_alarm.state_machine_executions["chunked.ExecutionsTimedOut"]
}
moved {
  from = aws_cloudwatch_metric_alarm.grouped_analyze_executions["ExecutionsFailed"]
  to   = aws_cloudwatch_metric_alarm.state_machine_executions["grouped_analyze.ExecutionsFailed"]
}
moved {
  from = aws_cloudwatch_metric_alarm.grouped_analyze_executions["ExecutionsTimedOut"]
  to   = aws_cloudwatch_metric_alarm.state_machine_executions["grouped_analyze.ExecutionsTimedOut"]
}
moved {
  from = aws_cloudwatch_metric_alarm.chunked_rule_failures
  to   = aws_cloudwatch_metric_alarm.state_machine_rule_failures["chunked"]
}
moved {
  from = aws_cloudwatch_metric_alarm.grouped_analyze_rule_failures
  to   = aws_cloudwatch_metric_alarm.state_machine_rule_failures["grouped_analyze"]
}
