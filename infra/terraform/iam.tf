# One role per function. Its policy is the union, over the adapters the function uses
# (healthpipe.lambdas.FUNCTIONS[f].adapters), of the statements below tagged with that
# adapter; each adapter's actions are exactly the module's IAM_ACTIONS (tests/infra checks
# both). "platform" statements are what Lambda itself needs for the function: writing its own
# log group and sending failed async invocations to its own dead-letter queue.
# Resources are scoped: bucket prefixes, table + index ARNs, the bus, the model, the SES
# identities, the key.

locals {
  data_bucket_arn = aws_s3_bucket.data.arn

  # Which prefixes each stage reads and writes (stages/ingest.py, analyze.py, notify.py, digest.py).
  s3_prefixes = {
    ingestor = { read = ["raw/"], write = ["processed/", "rejected/", "manifests/"] }
    analyzer = { read = ["manifests/", "processed/"], write = ["analyzed/"] }
    notifier = { read = ["analyzed/", "reports/"], write = ["reports/"] }
  }

  bedrock_profile = can(regex("^(us|eu|apac|us-gov|global)\\.", var.bedrock_model_id))
  bedrock_model   = local.bedrock_profile ? join(".", slice(split(".", var.bedrock_model_id), 1, length(split(".", var.bedrock_model_id)))) : var.bedrock_model_id
  bedrock_region  = var.bedrock_region != "" ? var.bedrock_region : local.region
  # A cross-region inference profile may route to the model in any region of its geography.
  bedrock_resources = local.bedrock_profile ? [
    "arn:${local.partition}:bedrock:${local.bedrock_region}:${local.account_id}:inference-profile/${var.bedrock_model_id}",
    "arn:${local.partition}:bedrock:*::foundation-model/${local.bedrock_model}",
    ] : [
    "arn:${local.partition}:bedrock:${local.bedrock_region}::foundation-model/${var.bedrock_model_id}",
  ]

  ses_resources = concat(
    [for identity in aws_sesv2_email_identity.this : identity.arn],
    [aws_sesv2_configuration_set.this.arn],
  )

  # adapter => statements (minus the per-function S3 prefixes, added below)
  adapter_statements = {
    ledger = [{
      sid       = "LedgerTable"
      actions   = ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
      resources = [aws_dynamodb_table.ledger.arn]
    }]
    analysis_store = [{
      sid       = "AnalysesTable"
      actions   = ["dynamodb:BatchWriteItem", "dynamodb:GetItem", "dynamodb:Query"]
      resources = [aws_dynamodb_table.analyses.arn, "${aws_dynamodb_table.analyses.arn}/index/*"]
    }]
    event_bus = [{
      sid       = "PublishToPipelineBus"
      actions   = ["events:PutEvents"]
      resources = [aws_cloudwatch_event_bus.this.arn]
    }]
    mailer = [{
      sid       = "SendReportEmail"
      actions   = ["ses:SendRawEmail"]
      resources = local.ses_resources
    }]
    bedrock_analyst = [{
      sid       = "InvokeAnalystModel"
      actions   = ["bedrock:InvokeModel"]
      resources = local.bedrock_resources
    }]
    metrics = [] # EMF: metrics are log lines, no API call
    s3      = [] # per function, with its prefixes: s3_statements
  }

  # Must equal healthpipe.lambdas.FUNCTIONS[f].adapters (module names under healthpipe.adapters.aws).
  function_adapters = {
    ingestor = ["s3", "ledger", "event_bus", "metrics"]
    analyzer = ["s3", "ledger", "analysis_store", "event_bus", "bedrock_analyst", "metrics"]
    notifier = ["s3", "ledger", "analysis_store", "mailer", "metrics"]
  }

  s3_statements = {
    for f, p in local.s3_prefixes : f => [
      {
        sid       = "ReadObjects"
        actions   = ["s3:GetObject"]
        resources = [for prefix in p.read : "${local.data_bucket_arn}/${prefix}*"]
      },
      {
        sid       = "WriteObjects"
        actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
        resources = [for prefix in p.write : "${local.data_bucket_arn}/${prefix}*"]
      },
      {
        # Also makes a missing key a 404 (not a 403) for GetObject.
        sid       = "ListDataBucket"
        actions   = ["s3:ListBucket"]
        resources = [local.data_bucket_arn]
      },
      {
        sid       = "UseDataKey"
        actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
        resources = [aws_kms_key.this.arn]
      },
    ]
  }

  platform_statements = {
    for f in local.functions : f => [
      {
        sid       = "WriteOwnLogs"
        actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        resources = ["${aws_cloudwatch_log_group.function[f].arn}:*"]
      },
      {
        sid       = "DeadLetterFailedInvocations"
        actions   = ["sqs:SendMessage"]
        resources = [aws_sqs_queue.dlq[f].arn]
      },
    ]
  }

  # function => [{adapter, sid, actions, resources}]
  function_statements = {
    for f in local.functions : f => concat(
      [for s in local.s3_statements[f] : merge(s, { adapter = "s3" }) if contains(local.function_adapters[f], "s3")],
      flatten([
        for adapter in local.function_adapters[f] : [
          for s in local.adapter_statements[adapter] : merge(s, { adapter = adapter })
        ]
      ]),
      [for s in local.platform_statements[f] : merge(s, { adapter = "platform" })],
    )
  }
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    sid     = "LambdaAssumes"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = local.functions

  name                 = "${var.name_prefix}-${each.key}"
  description          = "healthpipe ${each.key} Lambda: only what its adapters call"
  assume_role_policy   = data.aws_iam_policy_document.lambda_assume.json
  max_session_duration = 3600
  tags                 = local.tags
}

data "aws_iam_policy_document" "function" {
  for_each = local.functions

  dynamic "statement" {
    for_each = [for s in local.function_statements[each.key] : s if length(s.resources) > 0]
    content {
      sid       = statement.value.sid
      effect    = "Allow"
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions

  name   = "${var.name_prefix}-${each.key}"
  role   = aws_iam_role.function[each.key].id
  policy = data.aws_iam_policy_document.function[each.key].json
}

# --- EventBridge Scheduler (daily digest) -----------------------------------------------
data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    sid     = "SchedulerAssumes"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${var.name_prefix}-scheduler"
  description        = "healthpipe digest schedule: publish Digest Requested to the bus"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "PublishDigestRequested"
    actions   = ["events:PutEvents"]
    resources = [aws_cloudwatch_event_bus.this.arn]
  }

  statement {
    sid       = "DeadLetterUndelivered"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq["scheduler"].arn]
  }

  statement {
    sid       = "UseKeyForScheduleAndQueue"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "${var.name_prefix}-scheduler"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}
