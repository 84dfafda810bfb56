# CodePipeline for healthpipe: source (CodeStar connection) -> CI build (tests, ruff, mypy,
# checkov, packages) -> plan build (terraform plan -out of infra/terraform/examples/minimal
# with the packages; the saved plan is an artifact) -> manual approval showing the plan
# summary -> deploy build (terraform apply of exactly that saved plan). State: S3 + native
# locking.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id      = data.aws_caller_identity.current.account_id
  partition       = data.aws_partition.current.partition
  connection_arn  = var.connection_arn != "" ? var.connection_arn : aws_codestarconnections_connection.this[0].arn
  artifacts_full  = "${var.name_prefix}-pipeline-${local.account_id}-${var.region}"
  artifacts_name  = length(local.artifacts_full) <= 63 ? local.artifacts_full : "${substr(local.artifacts_full, 0, 54)}-${substr(sha1(local.artifacts_full), 0, 8)}"
  ci_project      = "${var.name_prefix}-ci"
  plan_project    = "${var.name_prefix}-plan"
  deploy_project  = "${var.name_prefix}-deploy"
  app_deploy_root = "infra/terraform/examples/minimal"
  # The zips `healthpipe package` writes into dist/ (one per function), and the fixed folder
  # both Terraform builds copy them to.
  package_files = [for f in ["ingestor", "analyzer", "notifier", "chunk_plan", "chunk_map", "chunk_reduce", "chunk_split", "chunk_assemble", "chunk_release", "analyze_prepare", "analyze_group", "analyze_merge", "analyze_release"] : "dist/healthpipe-${f}-${var.lambda_architecture}-py3.12.zip"]
  package_dir   = "/tmp/healthpipe-packages"
}

resource "aws_codestarconnections_connection" "this" {
  count = var.connection_arn == "" ? 1 : 0

  name          = "${var.name_prefix}-source"
  provider_type = var.connection_provider
}

# --- pipeline artifacts ---------------------------------------------------------------------
resource "aws_s3_bucket" "artifacts" {
  #checkov:skip=CKV_AWS_144:Pipeline artifacts are rebuilt from source; no cross-region copy needed
  #checkov:skip=CKV2_AWS_62:Nothing consumes events from the artifacts bucket
  bucket = local.artifacts_name
}

resource "aws_s3_bucket_versioning" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.state_kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  bucket                  = aws_s3_bucket.artifacts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_logging" "artifacts" {
  bucket        = aws_s3_bucket.artifacts.id
  target_bucket = var.access_logs_bucket
  target_prefix = "pipeline/"
}

resource "aws_s3_bucket_lifecycle_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  rule {
    id     = "expire-artifacts"
    status = "Enabled"
    filter {}
    expiration {
      days = 30
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.artifacts]
}

data "aws_iam_policy_document" "artifacts" {
  statement {
    sid    = "DenyInsecureTransport"
    effect = "Deny"
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.artifacts.arn, "${aws_s3_bucket.artifacts.arn}/*"]
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "artifacts" {
  bucket     = aws_s3_bucket.artifacts.id
  policy     = data.aws_iam_policy_document.artifacts.json
  depends_on = [aws_s3_bucket_public_access_block.artifacts]
}

# --- approval notifications -----------------------------------------------------------------
resource "aws_sns_topic" "approvals" {
  name              = "${var.name_prefix}-deploy-approvals"
  kms_master_key_id = var.state_kms_key_arn
}

resource "aws_sns_topic_subscription" "approvals" {
  count = var.approval_email == "" ? 0 : 1

  topic_arn = aws_sns_topic.approvals.arn
  protocol  = "email"
  endpoint  = var.approval_email
}

# --- build logs -----------------------------------------------------------------------------
resource "aws_cloudwatch_log_group" "build" {
  for_each = toset([local.ci_project, local.plan_project, local.deploy_project])
  #checkov:skip=CKV_AWS_338:Build logs hold test and plan output, kept for log_retention_days (default 90), not a year

  name              = "/aws/codebuild/${each.value}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.state_kms_key_arn
}
