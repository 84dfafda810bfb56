# healthpipe on AWS: S3 -> EventBridge -> three Lambda functions (ingestor, analyzer, notifier)
# -> DynamoDB + S3 + SES, with KMS everywhere, a dead-letter queue on every hop, alarms and a
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
  }
  functions = toset(keys(local.handlers))

  names = {
    data_bucket      = "${var.name_prefix}-data-${local.account_id}-${local.region}"
    artifacts_bucket = "${var.name_prefix}-artifacts-${local.account_id}-${local.region}"
    logs_bucket      = "${var.name_prefix}-access-logs-${local.account_id}-${local.region}"
    ledger_table     = "${var.name_prefix}-ledger"
    analyses_table   = "${var.name_prefix}-analyses"
    bus              = "${var.name_prefix}-bus"
    alerts_topic     = "${var.name_prefix}-alerts"
    alerts_dlq       = "${var.name_prefix}-alerts-dlq"
    scheduler_dlq    = "${var.name_prefix}-scheduler-dlq"
    config_set       = "${var.name_prefix}-reports"
  }

  function_names = { for f in local.functions : f => "${var.name_prefix}-${f}" }
  packages       = { for f in local.functions : f => lookup(var.lambda_packages, f, var.lambda_package) }
}

resource "random_password" "pseudonym_secret" {
  length  = 48
  special = false
}

locals {
  pseudonym_secret = var.pseudonym_secret != "" ? var.pseudonym_secret : random_password.pseudonym_secret.result
}
