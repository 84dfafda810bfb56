# Dead-letter queues (one per function, one for the alert target, one for the scheduler) and
# the alert topic that receives alarms and pipeline failure events.

locals {
  dlq_names = merge(
    { for f in local.functions : f => "${var.name_prefix}-${f}-dlq" },
    { alerts = local.names.alerts_dlq, scheduler = local.names.scheduler_dlq },
  )
}

resource "aws_sqs_queue" "dlq" {
  for_each = local.dlq_names

  name                              = each.value
  message_retention_seconds         = 1209600
  kms_master_key_id                 = aws_kms_key.this.arn
  kms_data_key_reuse_period_seconds = 300
  tags                              = local.tags
}

# The analyze rule's target: the analyzer polls it (aws_lambda_event_source_mapping.analyze).
# Visibility timeout = 6 x the analyzer's timeout (AWS's advice for Lambda event sources); a
# message received analyze_max_receive_count times moves to the analyzer's dead-letter queue.
resource "aws_sqs_queue" "analyze" {
  name                              = local.names.analyze_queue
  visibility_timeout_seconds        = min(43200, var.lambda_timeout_seconds.analyzer * 6)
  message_retention_seconds         = 345600
  kms_master_key_id                 = aws_kms_key.this.arn
  kms_data_key_reuse_period_seconds = 300
  tags                              = local.tags

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq["analyzer"].arn
    maxReceiveCount     = 3
  })
}

data "aws_iam_policy_document" "analyze_queue" {
  statement {
    sid = "AnalyzeRuleDelivers"
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.analyze.arn]
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.this["analyze"].arn]
    }
  }

  statement {
    sid    = "DenyInsecureTransport"
    effect = "Deny"
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.analyze.arn]
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "analyze" {
  queue_url = aws_sqs_queue.analyze.id
  policy    = data.aws_iam_policy_document.analyze_queue.json
}

locals {
  # queue => ARNs of the EventBridge rules whose target dead-letters into it (none for the
  # scheduler queue: the schedule's role sends to it). A state machine's rule dead-letters
  # into the queue of the state it starts (state_machines.tf: Plan's, Prepare's).
  dlq_rule_arns = {
    for queue in keys(local.dlq_names) : queue => concat(
      [for route, rule in aws_cloudwatch_event_rule.this : rule.arn if local.route_dlq[route] == queue],
      [for machine, rule in aws_cloudwatch_event_rule.state_machine : rule.arn if local.state_machines[machine].dlq == queue],
    )
  }
}

data "aws_iam_policy_document" "dlq" {
  for_each = local.dlq_names

  dynamic "statement" {
    for_each = length(local.dlq_rule_arns[each.key]) > 0 ? [local.dlq_rule_arns[each.key]] : []
    content {
      sid = "EventBridgeDeadLetters"
      principals {
        type        = "Service"
        identifiers = ["events.amazonaws.com"]
      }
      actions   = ["sqs:SendMessage"]
      resources = [aws_sqs_queue.dlq[each.key].arn]
      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = statement.value
      }
    }
  }

  statement {
    sid    = "DenyInsecureTransport"
    effect = "Deny"
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.dlq[each.key].arn]
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "dlq" {
  for_each = local.dlq_names

  queue_url = aws_sqs_queue.dlq[each.key].id
  policy    = data.aws_iam_policy_document.dlq[each.key].json
}

resource "aws_sns_topic" "alerts" {
  name              = local.names.alerts_topic
  kms_master_key_id = aws_kms_key.this.arn
  tags              = local.tags
}

data "aws_iam_policy_document" "alerts" {
  statement {
    sid = "CloudWatchAlarmsPublish"
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid = "PipelineFailureEventsPublish"
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.this["alert"].arn]
    }
  }
}

resource "aws_sns_topic_policy" "alerts" {
  arn    = aws_sns_topic.alerts.arn
  policy = data.aws_iam_policy_document.alerts.json
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email == "" ? 0 : 1

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}
