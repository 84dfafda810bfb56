# Least privilege for the pipeline and its two builds. The CI build touches no AWS resource
# but its own logs and artifacts. The deploy build runs `terraform apply` of the application:
# it may manage only resources named <name_prefix>-* (and the KMS key Terraform creates), read
# and write only its own state object and lock file, and pass roles only to Lambda and
# EventBridge Scheduler. Read actions use service prefixes (Get*/List*/Describe*) because the
# AWS provider's reads change between provider versions; every write action is listed.

locals {
  p      = var.name_prefix
  arn    = "arn:${local.partition}"
  region = var.region
  acct   = local.account_id

  artifact_objects = "${aws_s3_bucket.artifacts.arn}/*"
  build_log_arns   = [for group in aws_cloudwatch_log_group.build : "${group.arn}:*"]
  glue_database    = replace(var.name_prefix, "-", "_")
  state_objects = [
    "${local.arn}:s3:::${var.state_bucket}/${var.app_state_key}",
    "${local.arn}:s3:::${var.state_bucket}/${var.app_state_key}.tflock",
  ]
}

# --- CodePipeline -----------------------------------------------------------------------------
data "aws_iam_policy_document" "pipeline_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["codepipeline.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.acct]
    }
  }
}

resource "aws_iam_role" "pipeline" {
  name               = "${local.p}-pipeline"
  assume_role_policy = data.aws_iam_policy_document.pipeline_assume.json
}

data "aws_iam_policy_document" "pipeline" {
  statement {
    sid       = "Artifacts"
    actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"]
    resources = [local.artifact_objects]
  }
  statement {
    sid       = "ArtifactBucket"
    actions   = ["s3:GetBucketVersioning", "s3:GetBucketLocation", "s3:ListBucket"]
    resources = [aws_s3_bucket.artifacts.arn]
  }
  statement {
    sid       = "ArtifactKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:DescribeKey"]
    resources = [var.state_kms_key_arn]
  }
  statement {
    sid       = "Source"
    actions   = ["codestar-connections:UseConnection", "codeconnections:UseConnection"]
    resources = [local.connection_arn]
  }
  statement {
    sid       = "Builds"
    actions   = ["codebuild:StartBuild", "codebuild:BatchGetBuilds"]
    resources = [aws_codebuild_project.ci.arn, aws_codebuild_project.plan.arn, aws_codebuild_project.deploy.arn]
  }
  statement {
    sid       = "ApprovalNotice"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.approvals.arn]
  }
}

resource "aws_iam_role_policy" "pipeline" {
  name   = "${local.p}-pipeline"
  role   = aws_iam_role.pipeline.id
  policy = data.aws_iam_policy_document.pipeline.json
}

# --- CodeBuild (both builds) --------------------------------------------------------------------
data "aws_iam_policy_document" "codebuild_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["codebuild.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.acct]
    }
  }
}

resource "aws_iam_role" "ci" {
  name               = "${local.p}-ci-build"
  assume_role_policy = data.aws_iam_policy_document.codebuild_assume.json
}

data "aws_iam_policy_document" "ci" {
  statement {
    sid       = "BuildLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.build[local.ci_project].arn}:*"]
  }
  statement {
    sid       = "Artifacts"
    actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"]
    resources = [local.artifact_objects]
  }
  statement {
    sid       = "ArtifactKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:DescribeKey"]
    resources = [var.state_kms_key_arn]
  }
}

resource "aws_iam_role_policy" "ci" {
  name   = "${local.p}-ci-build"
  role   = aws_iam_role.ci.id
  policy = data.aws_iam_policy_document.ci.json
}

resource "aws_iam_role" "deploy" {
  name               = "${local.p}-deploy-build"
  assume_role_policy = data.aws_iam_policy_document.codebuild_assume.json
}

data "aws_iam_policy_document" "deploy" {
  #checkov:skip=CKV_AWS_109:The deploy role manages the application's key policies and roles by design; every resource is limited to <prefix>-* names
  #checkov:skip=CKV_AWS_111:Writes are limited to <prefix>-* resources; kms:CreateKey and the SES identities have no nameable ARN before creation
  #checkov:skip=CKV_AWS_356:Only calls with no resource-level permission (sts:GetCallerIdentity, kms:CreateKey, kms:ListAliases, logs:DescribeLogGroups) use "*"
  #checkov:skip=CKV_AWS_110:The deploy role must create roles and pass them to Lambda/Scheduler (PassRole limited to <prefix>-* roles and those two services)
  #checkov:skip=CKV_AWS_107:No credentials are exposed; iam:PassRole is the flagged action and is limited to <prefix>-* roles and two services
  statement {
    sid       = "BuildLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.build[local.plan_project].arn}:*", "${aws_cloudwatch_log_group.build[local.deploy_project].arn}:*"]
  }
  statement {
    sid       = "Artifacts"
    actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"]
    resources = [local.artifact_objects]
  }
  statement {
    sid       = "StateObjectAndLock"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = local.state_objects
  }
  statement {
    sid       = "StateBucket"
    actions   = ["s3:ListBucket"]
    resources = ["${local.arn}:s3:::${var.state_bucket}"]
  }
  statement {
    sid       = "PipelineKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:DescribeKey"]
    resources = [var.state_kms_key_arn]
  }
  statement {
    sid = "UnscopedReads"
    actions = [
      "sts:GetCallerIdentity",
      "kms:CreateKey",
      "kms:ListAliases",
      "logs:DescribeLogGroups",
    ]
    resources = ["*"]
  }
  statement {
    sid = "AppBuckets"
    actions = [
      "s3:CreateBucket", "s3:DeleteBucket", "s3:DeleteBucketPolicy", "s3:Get*", "s3:List*",
      "s3:PutBucketLogging", "s3:PutBucketNotification", "s3:PutBucketOwnershipControls",
      "s3:PutBucketPolicy", "s3:PutBucketPublicAccessBlock", "s3:PutBucketTagging",
      "s3:PutBucketVersioning", "s3:PutEncryptionConfiguration", "s3:PutLifecycleConfiguration",
      "s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObject", "s3:DeleteObjectVersion",
    ]
    resources = ["${local.arn}:s3:::${local.p}-*"]
  }
  statement {
    sid = "AppKey"
    actions = [
      "kms:Describe*", "kms:Get*", "kms:List*", "kms:PutKeyPolicy", "kms:EnableKeyRotation",
      "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CreateGrant",
      "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:UpdateKeyDescription",
      "kms:RotateKeyOnDemand",
    ]
    resources = ["${local.arn}:kms:${local.region}:${local.acct}:key/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/healthpipe:deployment"
      values   = [local.p]
    }
  }
  # While the key is being created it has no tags yet: the tags in the request identify it.
  statement {
    sid       = "AppKeyCreation"
    actions   = ["kms:TagResource", "kms:PutKeyPolicy"]
    resources = ["${local.arn}:kms:${local.region}:${local.acct}:key/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/healthpipe:deployment"
      values   = [local.p]
    }
  }
  statement {
    sid       = "AppKeyAlias"
    actions   = ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"]
    resources = ["${local.arn}:kms:${local.region}:${local.acct}:alias/${local.p}", "${local.arn}:kms:${local.region}:${local.acct}:key/*"]
  }
  statement {
    sid = "AppRoles"
    actions = [
      "iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:TagRole", "iam:UntagRole",
      "iam:UpdateRole", "iam:UpdateRoleDescription", "iam:UpdateAssumeRolePolicy",
      "iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy", "iam:ListRolePolicies",
      "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole",
    ]
    resources = ["${local.arn}:iam::${local.acct}:role/${local.p}-*"]
  }
  statement {
    sid       = "PassAppRoles"
    actions   = ["iam:PassRole"]
    resources = ["${local.arn}:iam::${local.acct}:role/${local.p}-*"]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["lambda.amazonaws.com", "scheduler.amazonaws.com"]
    }
  }
  statement {
    sid = "AppFunctions"
    actions = [
      "lambda:CreateFunction", "lambda:DeleteFunction", "lambda:Get*", "lambda:List*",
      "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration",
      "lambda:PutFunctionConcurrency", "lambda:DeleteFunctionConcurrency",
      "lambda:AddPermission", "lambda:RemovePermission", "lambda:PutFunctionEventInvokeConfig",
      "lambda:UpdateFunctionEventInvokeConfig", "lambda:DeleteFunctionEventInvokeConfig",
      "lambda:TagResource", "lambda:UntagResource",
    ]
    resources = ["${local.arn}:lambda:${local.region}:${local.acct}:function:${local.p}-*"]
  }
  # CreateEventSourceMapping and ListEventSourceMappings take no resource ARN, and a mapping's
  # ARN is a generated UUID: every mapping call is limited to <prefix>-* functions instead.
  statement {
    sid = "AppEventSourceMappings"
    actions = [
      "lambda:CreateEventSourceMapping", "lambda:GetEventSourceMapping",
      "lambda:UpdateEventSourceMapping", "lambda:DeleteEventSourceMapping",
      "lambda:ListEventSourceMappings",
    ]
    resources = ["*"]
    condition {
      test     = "ArnLike"
      variable = "lambda:FunctionArn"
      values   = ["${local.arn}:lambda:${local.region}:${local.acct}:function:${local.p}-*"]
    }
  }
  statement {
    sid = "AppCatalog"
    actions = [
      "glue:CreateDatabase", "glue:DeleteDatabase", "glue:GetDatabase", "glue:UpdateDatabase",
      "glue:CreateTable", "glue:DeleteTable", "glue:GetTable", "glue:UpdateTable",
      "glue:GetTags", "glue:TagResource", "glue:UntagResource",
    ]
    resources = [
      "${local.arn}:glue:${local.region}:${local.acct}:catalog",
      "${local.arn}:glue:${local.region}:${local.acct}:database/${local.glue_database}",
      "${local.arn}:glue:${local.region}:${local.acct}:table/${local.glue_database}/*",
    ]
  }
  statement {
    sid = "AppWorkgroup"
    actions = [
      "athena:CreateWorkGroup", "athena:DeleteWorkGroup", "athena:GetWorkGroup",
      "athena:UpdateWorkGroup", "athena:ListTagsForResource", "athena:TagResource",
      "athena:UntagResource",
    ]
    resources = ["${local.arn}:athena:${local.region}:${local.acct}:workgroup/${local.p}"]
  }
  statement {
    sid = "AppEvents"
    actions = [
      "events:CreateEventBus", "events:DeleteEventBus", "events:Describe*", "events:List*",
      "events:PutRule", "events:DeleteRule", "events:PutTargets", "events:RemoveTargets",
      "events:CreateArchive", "events:DeleteArchive", "events:UpdateArchive",
      "events:TagResource", "events:UntagResource",
    ]
    resources = [
      "${local.arn}:events:${local.region}:${local.acct}:event-bus/${local.p}-*",
      "${local.arn}:events:${local.region}:${local.acct}:event-bus/default",
      "${local.arn}:events:${local.region}:${local.acct}:rule/${local.p}-*",
      "${local.arn}:events:${local.region}:${local.acct}:rule/${local.p}-bus/${local.p}-*",
      "${local.arn}:events:${local.region}:${local.acct}:archive/${local.p}-*",
    ]
  }
  statement {
    sid = "AppSchedule"
    actions = [
      "scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule",
      "scheduler:GetSchedule",
    ]
    resources = ["${local.arn}:scheduler:${local.region}:${local.acct}:schedule/default/${local.p}-*"]
  }
  statement {
    sid = "AppQueues"
    actions = [
      "sqs:CreateQueue", "sqs:DeleteQueue", "sqs:GetQueueAttributes", "sqs:SetQueueAttributes",
      "sqs:GetQueueUrl", "sqs:ListQueueTags", "sqs:TagQueue", "sqs:UntagQueue",
    ]
    resources = ["${local.arn}:sqs:${local.region}:${local.acct}:${local.p}-*"]
  }
  statement {
    sid = "AppTopic"
    actions = [
      "sns:CreateTopic", "sns:DeleteTopic", "sns:GetTopicAttributes", "sns:SetTopicAttributes",
      "sns:Subscribe", "sns:Unsubscribe", "sns:GetSubscriptionAttributes",
      "sns:SetSubscriptionAttributes", "sns:ListTagsForResource", "sns:TagResource",
      "sns:UntagResource",
    ]
    resources = ["${local.arn}:sns:${local.region}:${local.acct}:${local.p}-*"]
  }
  statement {
    sid = "AppTables"
    actions = [
      "dynamodb:CreateTable", "dynamodb:DeleteTable", "dynamodb:UpdateTable",
      "dynamodb:Describe*", "dynamodb:List*", "dynamodb:UpdateContinuousBackups",
      "dynamodb:UpdateTimeToLive", "dynamodb:TagResource", "dynamodb:UntagResource",
    ]
    resources = ["${local.arn}:dynamodb:${local.region}:${local.acct}:table/${local.p}-*"]
  }
  statement {
    sid = "AppLogGroups"
    actions = [
      "logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy",
      "logs:AssociateKmsKey", "logs:DisassociateKmsKey", "logs:TagResource",
      "logs:UntagResource", "logs:ListTagsForResource", "logs:ListTagsLogGroup",
      "logs:TagLogGroup",
    ]
    resources = ["${local.arn}:logs:${local.region}:${local.acct}:log-group:/aws/lambda/${local.p}-*"]
  }
  statement {
    sid = "AppAlarmsAndDashboard"
    actions = [
      "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms",
      "cloudwatch:ListTagsForResource", "cloudwatch:TagResource", "cloudwatch:UntagResource",
      "cloudwatch:PutDashboard", "cloudwatch:GetDashboard", "cloudwatch:DeleteDashboards",
    ]
    resources = [
      "${local.arn}:cloudwatch:${local.region}:${local.acct}:alarm:${local.p}-*",
      "${local.arn}:cloudwatch::${local.acct}:dashboard/${local.p}",
    ]
  }
  statement {
    sid = "AppEmail"
    actions = [
      "ses:CreateEmailIdentity", "ses:DeleteEmailIdentity", "ses:GetEmailIdentity",
      "ses:PutEmailIdentityConfigurationSetAttributes", "ses:CreateConfigurationSet",
      "ses:DeleteConfigurationSet", "ses:GetConfigurationSet",
      "ses:PutConfigurationSetDeliveryOptions", "ses:PutConfigurationSetReputationOptions",
      "ses:PutConfigurationSetSendingOptions", "ses:PutConfigurationSetSuppressionOptions",
      "ses:CreateConfigurationSetEventDestination", "ses:UpdateConfigurationSetEventDestination",
      "ses:DeleteConfigurationSetEventDestination", "ses:GetConfigurationSetEventDestinations",
      "ses:TagResource", "ses:UntagResource", "ses:ListTagsForResource",
    ]
    resources = [
      "${local.arn}:ses:${local.region}:${local.acct}:identity/*",
      "${local.arn}:ses:${local.region}:${local.acct}:configuration-set/${local.p}-*",
    ]
  }
}

resource "aws_iam_role_policy" "deploy" {
  name   = "${local.p}-deploy-build"
  role   = aws_iam_role.deploy.id
  policy = data.aws_iam_policy_document.deploy.json
}
