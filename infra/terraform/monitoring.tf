# Alarms (all notify the alert topic) and a dashboard of the pipeline's metrics.
# Pipeline metrics: namespace "healthpipe", one dimension "stage" (ingest, analyze, notify, digest).

locals {
  alarm_actions = [aws_sns_topic.alerts.arn]
  metrics_ns    = "healthpipe"

  # Pipeline metric alarms: name => metric, stage, statistic, threshold, description.
  pipeline_alarms = {
    reject-ratio = {
      metric      = "RejectRatio"
      stage       = "ingest"
      statistic   = "Maximum"
      threshold   = var.reject_ratio_threshold
      description = "A file had more than ${var.reject_ratio_threshold * 100}% of its rows rejected"
    }
    analyst-fallbacks = {
      metric      = "AnalystFallbacks"
      stage       = "analyze"
      statistic   = "Sum"
      threshold   = 0
      description = "The LLM analyst failed and the builtin analyst wrote the insights"
    }
    ingest-failures = {
      metric      = "StageFailures"
      stage       = "ingest"
      statistic   = "Sum"
      threshold   = 0
      description = "The ingest stage failed on a file"
    }
    analyze-failures = {
      metric      = "StageFailures"
      stage       = "analyze"
      statistic   = "Sum"
      threshold   = 0
      description = "The analyze stage failed on a dataset"
    }
    notify-failures = {
      metric      = "StageFailures"
      stage       = "notify"
      statistic   = "Sum"
      threshold   = 0
      description = "The notify stage failed to send a report"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "errors" {
  for_each = local.functions

  alarm_name          = "${var.name_prefix}-${each.key}-errors"
  alarm_description   = "healthpipe ${each.key}: invocations failed"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.this[each.key].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "throttles" {
  for_each = local.functions

  alarm_name          = "${var.name_prefix}-${each.key}-throttles"
  alarm_description   = "healthpipe ${each.key}: invocations throttled"
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = aws_lambda_function.this[each.key].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "duration" {
  for_each = local.functions

  alarm_name          = "${var.name_prefix}-${each.key}-duration-near-timeout"
  alarm_description   = "healthpipe ${each.key}: an invocation used more than 80% of its timeout"
  namespace           = "AWS/Lambda"
  metric_name         = "Duration"
  dimensions          = { FunctionName = aws_lambda_function.this[each.key].function_name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.lambda_timeout_seconds[each.key] * 1000 * 0.8
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "dlq" {
  for_each = aws_sqs_queue.dlq

  alarm_name          = "${each.value.name}-messages"
  alarm_description   = "healthpipe: events or invocations dead-lettered in ${each.value.name} (see docs/operations.md to replay)"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "rule_failures" {
  for_each = aws_cloudwatch_event_rule.this

  alarm_name          = "${each.value.name}-failed-invocations"
  alarm_description   = "healthpipe: EventBridge could not deliver to the target of ${each.value.name}"
  namespace           = "AWS/Events"
  metric_name         = "FailedInvocations"
  dimensions          = merge({ RuleName = each.value.name }, local.routes[each.key].bus == "default" ? {} : { EventBusName = aws_cloudwatch_event_bus.this.name })
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "pipeline" {
  for_each = local.pipeline_alarms

  alarm_name          = "${var.name_prefix}-${each.key}"
  alarm_description   = "healthpipe: ${each.value.description}"
  namespace           = local.metrics_ns
  metric_name         = each.value.metric
  dimensions          = { stage = each.value.stage }
  statistic           = each.value.statistic
  period              = 300
  evaluation_periods  = 1
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name_prefix
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title = "Files and rows (ingest)", region = local.region, stat = "Sum", period = 300
          metrics = [
            [local.metrics_ns, "FilesIngested", "stage", "ingest"],
            [local.metrics_ns, "RowsInput", "stage", "ingest"],
            [local.metrics_ns, "RowsValid", "stage", "ingest"],
            [local.metrics_ns, "RowsRejected", "stage", "ingest"],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title   = "Reject ratio (ingest)", region = local.region, stat = "Maximum", period = 300
          metrics = [[local.metrics_ns, "RejectRatio", "stage", "ingest"]]
          annotations = {
            horizontal = [{ label = "alarm", value = var.reject_ratio_threshold }]
          }
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title = "Anomalies and episodes (analyze)", region = local.region, stat = "Sum", period = 300
          metrics = [
            [local.metrics_ns, "AnomaliesDetected", "stage", "analyze"],
            [local.metrics_ns, "EpisodesDetected", "stage", "analyze"],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title = "LLM tokens, cost, fallbacks (analyze)", region = local.region, stat = "Sum", period = 3600
          metrics = [
            [local.metrics_ns, "LLMInputTokens", "stage", "analyze"],
            [local.metrics_ns, "LLMOutputTokens", "stage", "analyze"],
            [local.metrics_ns, "LLMCostUSD", "stage", "analyze", { yAxis = "right" }],
            [local.metrics_ns, "AnalystFallbacks", "stage", "analyze", { yAxis = "right" }],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 12, width = 12, height = 6
        properties = {
          title = "Emails sent and stage failures", region = local.region, stat = "Sum", period = 300
          metrics = [
            [local.metrics_ns, "EmailsSent", "stage", "notify"],
            [local.metrics_ns, "EmailsSent", "stage", "digest"],
            [local.metrics_ns, "StageFailures", "stage", "ingest"],
            [local.metrics_ns, "StageFailures", "stage", "analyze"],
            [local.metrics_ns, "StageFailures", "stage", "notify"],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 12, width = 12, height = 6
        properties = {
          title = "Stage duration p90 (ms)", region = local.region, stat = "p90", period = 300
          metrics = [
            [local.metrics_ns, "StageDurationMs", "stage", "ingest"],
            [local.metrics_ns, "StageDurationMs", "stage", "analyze"],
            [local.metrics_ns, "StageDurationMs", "stage", "notify"],
            [local.metrics_ns, "StageDurationMs", "stage", "digest"],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 18, width = 12, height = 6
        properties = {
          title = "Lambda errors and throttles", region = local.region, stat = "Sum", period = 300
          metrics = concat(
            [for f in sort(tolist(local.functions)) : ["AWS/Lambda", "Errors", "FunctionName", local.function_names[f]]],
            [for f in sort(tolist(local.functions)) : ["AWS/Lambda", "Throttles", "FunctionName", local.function_names[f]]],
          )
        }
      },
      {
        type = "metric", x = 12, y = 18, width = 12, height = 6
        properties = {
          title   = "Dead-letter queues (messages visible)", region = local.region, stat = "Maximum", period = 300
          metrics = [for name in values(local.dlq_names) : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", name]]
        }
      },
    ]
  })
}
