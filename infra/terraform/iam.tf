# One role per function. Its policy is the union, over the adapters the function uses
# (function_adapters = healthpipe.lambdas.FUNCTIONS[f].adapters), of each adapter's statements
# (adapter_statements: the actions are exactly the module's IAM_ACTIONS), plus the two
# platform statements Lambda itself needs. Resources are scoped per function: bucket
# prefixes, table + index ARNs, the bus, the model, the SES identities, the key, its own log
# group and queue. tests/infra/test_infra_iam.py holds all of this against the code.

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

  # adapter => the statements its calls need. The actions are the module's IAM_ACTIONS;
  # `scope` names the resources (function_resources below) the statement applies to.
  adapter_statements = {
    s3 = [
      { sid = "ReadObjects", actions = ["s3:GetObject"], scope = "s3_read" },
      { sid = "WriteObjects", actions = ["s3:PutObject", "s3:AbortMultipartUpload"], scope = "s3_write" },
      { sid = "ListDataBucket", actions = ["s3:ListBucket"], scope = "data_bucket" }, # and: a missing key is a 404, not a 403
      { sid = "UseDataKey", actions = ["kms:Decrypt", "kms:GenerateDataKey"], scope = "kms_key" },
    ]
    ledger = [
      { sid = "LedgerTable", actions = ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"], scope = "ledger_table" },
    ]
    analysis_store = [
      { sid = "AnalysesTable", actions = ["dynamodb:BatchWriteItem", "dynamodb:GetItem", "dynamodb:Query"], scope = "analyses_table" },
    ]
    event_bus = [
      { sid = "PublishToPipelineBus", actions = ["events:PutEvents"], scope = "event_bus" },
    ]
    mailer = [
      { sid = "SendReportEmail", actions = ["ses:SendRawEmail"], scope = "ses" },
    ]
    bedrock_analyst = [
      { sid = "InvokeAnalystModel", actions = ["bedrock:InvokeModel"], scope = "bedrock_model" },
    ]
    metrics = [] # EMF: metrics are log lines, no API call
  }

  # What Lambda itself needs for every function (not an adapter's call): writing the
  # function's own log group, and sending a failed async invocation to its own queue (the
  # queue's key is used through UseDataKey, which every function has via the s3 adapter).
  platform_statements = [
    { sid = "WriteOwnLogs", actions = ["logs:CreateLogStream", "logs:PutLogEvents"], scope = "own_log_group" },
    { sid = "DeadLetterFailedInvocations", actions = ["sqs:SendMessage"], scope = "own_dlq" },
  ]

  # Must equal healthpipe.lambdas.FUNCTIONS[f].adapters (module names under healthpipe.adapters.aws).
  function_adapters = {
    ingestor = ["s3", "ledger", "event_bus", "metrics"]
    analyzer = ["s3", "ledger", "analysis_store", "event_bus", "bedrock_analyst", "metrics"]
    notifier = ["s3", "ledger", "analysis_store", "mailer", "metrics"]
  }

  # scope => resources, per function.
  function_resources = {
    for f in local.functions : f => {
      s3_read        = [for prefix in local.s3_prefixes[f].read : "${local.data_bucket_arn}/${prefix}*"]
      s3_write       = [for prefix in local.s3_prefixes[f].write : "${local.data_bucket_arn}/${prefix}*"]
      data_bucket    = [local.data_bucket_arn]
      kms_key        = [aws_kms_key.this.arn]
      ledger_table   = [aws_dynamodb_table.ledger.arn]
      analyses_table = [aws_dynamodb_table.analyses.arn, "${aws_dynamodb_table.analyses.arn}/index/*"]
      event_bus      = [aws_cloudwatch_event_bus.this.arn]
      ses            = local.ses_resources
      bedrock_model  = local.bedrock_resources
      own_log_group  = ["${aws_cloudwatch_log_group.function[f].arn}:*"]
      own_dlq        = [aws_sqs_queue.dlq[f].arn]
    }
  }

  # function => [{sid, actions, resources}]: its adapters' statements, then the platform's.
  function_statements = {
    for f in local.functions : f => [
      for s in concat(flatten([for adapter in local.function_adapters[f] : local.adapter_statements[adapter]]), local.platform_statements) : {
        sid       = s.sid
        actions   = s.actions
        resources = local.function_resources[f][s.scope]
      }
    ]
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
    for_each = local.function_statements[each.key]
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
