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
    analyzer = { read = ["manifests/", "processed/", "rejected/"], write = ["analyzed/", "lake/"] }
    notifier = { read = ["analyzed/", "reports/"], write = ["reports/"] }
    # the chunked ingest (stages/chunked.py): its steps' files under work/; Plan and Map read
    # the upload (a gzip or mixed-line-ending file: Plan's plain copy in work/)
    chunk_plan     = { read = ["raw/"], write = ["work/", "manifests/"] }
    chunk_map      = { read = ["raw/", "work/"], write = ["work/"] }
    chunk_reduce   = { read = ["raw/", "work/"], write = ["work/"] }
    chunk_split    = { read = ["raw/", "work/"], write = ["work/"] }
    chunk_assemble = { read = ["raw/", "work/"], write = ["processed/", "rejected/", "manifests/"] }
    # the failure branch: after a failed Plan, the claim Plan recorded for the execution
    chunk_release = { read = ["work/executions/"], write = [] }
    # the grouped analysis (stages/grouped_analyze.py): its files under work/analyze/; Prepare
    # writes the lake as the analyzer does, Merge the analysis
    analyze_prepare = { read = ["manifests/", "processed/", "rejected/"], write = ["lake/", "work/analyze/"] }
    analyze_group   = { read = ["work/analyze/"], write = ["work/analyze/"] }
    analyze_merge   = { read = ["manifests/", "work/analyze/"], write = ["analyzed/"] }
    analyze_release = { read = [], write = [] } # the ledger only
  }

  # Bedrock. A cross-region inference profile id starts with its geography; the profile may
  # route a call to the model in any region of that geography, so the role is granted the
  # profile and the foundation model in those regions (region globs, same partition).
  bedrock_profile_regions = {
    us       = ["us-*"]
    "us-gov" = ["us-gov-*"]
    eu       = ["eu-*"]
    apac     = ["ap-*"]
    jp       = ["ap-northeast-*"]
    au       = ["ap-southeast-*"]
    ca       = ["ca-*"]
    global   = ["*"]
  }
  # The geography whose profile a region calls by default ("" : no profile there).
  bedrock_region = var.bedrock_region != "" ? var.bedrock_region : local.region
  bedrock_geo = (
    startswith(local.bedrock_region, "us-gov-") ? "us-gov" :
    startswith(local.bedrock_region, "us-") ? "us" :
    startswith(local.bedrock_region, "eu-") ? "eu" :
    startswith(local.bedrock_region, "ap-") ? "apac" :
    startswith(local.bedrock_region, "ca-") ? "ca" : ""
  )
  # Models only offered through inference profiles outside these regions (on-demand there).
  bedrock_on_demand_regions = {
    "amazon.nova-micro-v1:0"   = ["us-east-1"]
    "amazon.nova-lite-v1:0"    = ["us-east-1"]
    "amazon.nova-pro-v1:0"     = ["us-east-1"]
    "amazon.nova-premier-v1:0" = []
  }
  bedrock_model_id   = var.bedrock_model_id != "" ? var.bedrock_model_id : "${local.bedrock_geo}.amazon.nova-lite-v1:0"
  bedrock_geo_prefix = split(".", local.bedrock_model_id)[0]
  bedrock_profile    = contains(keys(local.bedrock_profile_regions), local.bedrock_geo_prefix)
  bedrock_model      = local.bedrock_profile ? join(".", slice(split(".", local.bedrock_model_id), 1, length(split(".", local.bedrock_model_id)))) : local.bedrock_model_id
  bedrock_resources = local.bedrock_profile ? concat(
    ["arn:${local.partition}:bedrock:${local.bedrock_region}:${local.account_id}:inference-profile/${local.bedrock_model_id}"],
    [for glob in local.bedrock_profile_regions[local.bedrock_geo_prefix] : "arn:${local.partition}:bedrock:${glob}::foundation-model/${local.bedrock_model}"],
    ) : [
    "arn:${local.partition}:bedrock:${local.bedrock_region}::foundation-model/${local.bedrock_model_id}",
  ]
  # The profile must belong to the region's geography (jp./au. are Asia Pacific profiles).
  bedrock_profile_fits_region = !local.bedrock_profile || local.bedrock_geo_prefix == "global" || (
    local.bedrock_geo_prefix == local.bedrock_geo ||
    (contains(["jp", "au"], local.bedrock_geo_prefix) && local.bedrock_geo == "apac")
  )
  bedrock_model_fits_region = local.bedrock_profile || !contains(keys(local.bedrock_on_demand_regions), local.bedrock_model_id) || contains(lookup(local.bedrock_on_demand_regions, local.bedrock_model_id, []), local.bedrock_region)

  # The sender identity and the configuration set: SendRawEmail is authorised against the
  # From identity, never against the recipients' identities (those exist only for the sandbox).
  ses_resources = [
    aws_sesv2_email_identity.this[var.sender_email].arn,
    aws_sesv2_configuration_set.this.arn,
  ]

  # adapter => the statements its calls need. The actions are the module's IAM_ACTIONS;
  # `scope` names the resources (function_resources below) the statement applies to;
  # `conditions` (optional) narrow it; `access = "write"` marks a statement a function whose
  # adapter use is read-only (read_only_adapters) does not get.
  adapter_statements = {
    s3 = [
      { sid = "ReadObjects", actions = ["s3:GetObject", "s3:GetObjectVersion"], scope = "s3_read" },
      { sid = "WriteObjects", actions = ["s3:PutObject", "s3:AbortMultipartUpload"], scope = "s3_write", access = "write" },
      # A missing key is a 404 rather than a 403 only with ListBucket; listing is limited to
      # the prefixes the function reads or writes.
      { sid = "ListDataBucket", actions = ["s3:ListBucket"], scope = "data_bucket", conditions = [{ test = "StringLike", variable = "s3:prefix", scope = "s3_list_prefixes" }] },
      # the bucket's key (SSE-KMS); the ledger table's too: one statement, granted once
      { sid = "UseDataKey", actions = ["kms:Decrypt", "kms:GenerateDataKey"], scope = "kms_key" },
    ]
    ledger = [
      { sid = "LedgerTable", actions = ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"], scope = "ledger_table" },
      # the table's key (SSE-KMS with the deployment's key): the s3 adapter's statement (same
      # sid), so a function using both gets it once (function_statements keeps one per sid)
      { sid = "UseDataKey", actions = ["kms:Decrypt", "kms:GenerateDataKey"], scope = "kms_key" },
    ]
    analysis_store = [
      { sid = "ReadAnalyses", actions = ["dynamodb:GetItem", "dynamodb:Query"], scope = "analyses_table" },
      { sid = "WriteAnalyses", actions = ["dynamodb:BatchWriteItem"], scope = "analyses_table", access = "write" },
    ]
    event_bus = [
      { sid = "PublishToPipelineBus", actions = ["events:PutEvents"], scope = "event_bus" },
    ]
    mailer = [
      { sid = "SendReportEmail", actions = ["ses:SendRawEmail"], scope = "ses" },
    ]
    bedrock_completion = [
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

  # Lambda's SQS event source polls the analyzer's queue with the function's role.
  event_source_statements = {
    ingestor = []
    analyzer = [
      { sid = "ReceiveAnalyzeQueue", actions = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"], scope = "own_queue" },
    ]
    notifier        = []
    chunk_plan      = []
    chunk_map       = []
    chunk_reduce    = []
    chunk_split     = []
    chunk_assemble  = []
    chunk_release   = []
    analyze_prepare = []
    analyze_group   = []
    analyze_merge   = []
    analyze_release = []
  }

  # The chunked ingest's record, per execution, of the claim Plan takes
  # (work/executions/<name>.json, stages/chunked.py forget_execution): the functions that end
  # an execution (Plan when it skips or rejects, Assemble, Release) delete it with every
  # version of it (ObjectStore.delete: DeleteObject, then ListObjectVersions and the versions
  # deleted), under work/executions/ only.
  execution_record_statements = {
    ingestor = []
    analyzer = []
    notifier = []
    chunk_plan = [
      { sid = "DeleteExecutionRecords", actions = ["s3:DeleteObject", "s3:DeleteObjectVersion"], scope = "execution_records" },
      { sid = "ListExecutionRecordVersions", actions = ["s3:ListBucketVersions"], scope = "data_bucket", conditions = [{ test = "StringLike", variable = "s3:prefix", scope = "execution_record_prefixes" }] },
    ]
    chunk_map    = []
    chunk_reduce = []
    chunk_split  = []
    chunk_assemble = [
      { sid = "DeleteExecutionRecords", actions = ["s3:DeleteObject", "s3:DeleteObjectVersion"], scope = "execution_records" },
      { sid = "ListExecutionRecordVersions", actions = ["s3:ListBucketVersions"], scope = "data_bucket", conditions = [{ test = "StringLike", variable = "s3:prefix", scope = "execution_record_prefixes" }] },
    ]
    chunk_release = [
      { sid = "DeleteExecutionRecords", actions = ["s3:DeleteObject", "s3:DeleteObjectVersion"], scope = "execution_records" },
      { sid = "ListExecutionRecordVersions", actions = ["s3:ListBucketVersions"], scope = "data_bucket", conditions = [{ test = "StringLike", variable = "s3:prefix", scope = "execution_record_prefixes" }] },
    ]
    analyze_prepare = []
    analyze_group   = []
    analyze_merge   = []
    analyze_release = []
  }

  # X-Ray accepts segments only on "*" (PutTraceSegments has no resource-level permission).
  tracing_statements = var.tracing_enabled ? [
    { sid = "WriteTraces", actions = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], scope = "xray" },
  ] : []

  # Must equal healthpipe.lambdas.FUNCTIONS[f].adapters (module names under healthpipe.adapters.aws).
  function_adapters = {
    ingestor = ["s3", "ledger", "event_bus", "metrics"]
    analyzer = ["s3", "ledger", "analysis_store", "event_bus", "bedrock_completion", "metrics"]
    notifier = ["s3", "ledger", "analysis_store", "mailer", "metrics"]
    # the chunked ingest: Plan claims, Assemble completes and publishes; the rest only S3
    chunk_plan     = ["s3", "ledger", "event_bus", "metrics"]
    chunk_map      = ["s3", "metrics"]
    chunk_reduce   = ["s3", "metrics"]
    chunk_split    = ["s3", "metrics"]
    chunk_assemble = ["s3", "ledger", "event_bus", "metrics"]
    chunk_release  = ["s3", "ledger", "metrics"] # the failure branch gives the claim up
    # the grouped analysis: Prepare claims (and replays), Merge completes, stores and publishes
    analyze_prepare = ["s3", "ledger", "analysis_store", "event_bus", "metrics"]
    analyze_group   = ["s3", "metrics"]
    analyze_merge   = ["s3", "ledger", "analysis_store", "event_bus", "bedrock_completion", "metrics"]
    analyze_release = ["ledger", "metrics"]
  }

  # Adapters a function only reads through (its stages call no write method of the port;
  # tests/infra/test_infra_iam.py checks the stages' code).
  read_only_adapters = {
    ingestor        = []
    analyzer        = []
    notifier        = ["analysis_store"]
    chunk_plan      = []
    chunk_map       = []
    chunk_reduce    = []
    chunk_split     = []
    chunk_assemble  = []
    chunk_release   = ["s3"] # reads what Plan recorded, writes nothing
    analyze_prepare = ["analysis_store"] # the histories, read
    analyze_group   = []
    analyze_merge   = []
    analyze_release = []
  }

  # scope => resources, per function.
  function_resources = {
    for f in local.functions : f => {
      s3_read          = [for prefix in local.s3_prefixes[f].read : "${local.data_bucket_arn}/${prefix}*"]
      s3_write         = [for prefix in local.s3_prefixes[f].write : "${local.data_bucket_arn}/${prefix}*"]
      s3_list_prefixes = [for prefix in distinct(concat(local.s3_prefixes[f].read, local.s3_prefixes[f].write)) : "${prefix}*"]
      data_bucket      = [local.data_bucket_arn]
      kms_key          = [aws_kms_key.this.arn]
      ledger_table     = [aws_dynamodb_table.ledger.arn]
      analyses_table   = [aws_dynamodb_table.analyses.arn, "${aws_dynamodb_table.analyses.arn}/index/*"]
      event_bus        = [aws_cloudwatch_event_bus.this.arn]
      ses              = local.ses_resources
      bedrock_model    = local.bedrock_resources
      own_log_group    = ["${aws_cloudwatch_log_group.function[f].arn}:*"]
      own_dlq          = [aws_sqs_queue.dlq[f].arn]
      own_queue        = [aws_sqs_queue.analyze.arn]
      xray             = ["*"]
      # Plan's records of its claims (execution_record_statements)
      execution_records         = ["${local.data_bucket_arn}/work/executions/*"]
      execution_record_prefixes = ["work/executions/*"]
    }
  }

  # function => its adapters' statements (without the writes of a read-only adapter), then
  # the platform's, the event source's, the execution records' and tracing's.
  function_grants = {
    for f in local.functions : f => concat(
      flatten([
        for adapter in local.function_adapters[f] : [
          for st in local.adapter_statements[adapter] : st if !contains(local.read_only_adapters[f], adapter) || try(st.access, "read") != "write"
        ]
      ]),
      local.platform_statements,
      local.event_source_statements[f],
      local.execution_record_statements[f],
      local.tracing_statements,
    )
  }

  # function => [{sid, actions, resources, conditions}]: its grants, each sid once (two
  # adapters needing the same permission share its statement, e.g. the key: granted once).
  function_statements = {
    for f in local.functions : f => [
      for i, s in local.function_grants[f] : {
        sid        = s.sid
        actions    = s.actions
        resources  = local.function_resources[f][s.scope]
        conditions = [for c in try(s.conditions, []) : { test = c.test, variable = c.variable, values = local.function_resources[f][c.scope] }]
      } if !contains([for earlier in slice(local.function_grants[f], 0, i) : earlier.sid], s.sid)
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

      dynamic "condition" {
        for_each = statement.value.conditions
        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
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
