resource "aws_codebuild_project" "ci" {
  name           = local.ci_project
  description    = "healthpipe CI: lint, type-check, tests (incl. infra cross-checks), checkov, Lambda package"
  service_role   = aws_iam_role.ci.arn
  encryption_key = var.state_kms_key_arn
  build_timeout  = 60

  source {
    type      = "CODEPIPELINE"
    buildspec = "infra/terraform/cicd/buildspec-ci.yml"
  }

  artifacts {
    type = "CODEPIPELINE"
  }

  environment {
    compute_type    = "BUILD_GENERAL1_MEDIUM"
    image           = var.codebuild_image
    type            = "LINUX_CONTAINER"
    privileged_mode = false

    environment_variable {
      name  = "LAMBDA_ARCH"
      value = var.lambda_architecture
    }
  }

  logs_config {
    cloudwatch_logs {
      group_name = aws_cloudwatch_log_group.build[local.ci_project].name
    }
  }
}

locals {
  # The environment of both Terraform builds (plan and apply must see the same inputs: the
  # saved plan is applied only if nothing changed). The packages are copied to one fixed
  # folder because each build unpacks its artifacts under a different random path, and the
  # plan records lambda_package_dir.
  terraform_environment = {
    TF_VERSION                = var.terraform_version
    TF_ROOT                   = local.app_deploy_root
    TF_STATE_BUCKET           = var.state_bucket
    TF_STATE_KEY              = var.app_state_key
    TF_STATE_KMS_KEY          = var.state_kms_key_arn
    PACKAGE_DIR               = local.package_dir
    TF_VAR_lambda_package_dir = local.package_dir
    TF_VAR_name_prefix        = var.name_prefix
    TF_VAR_region             = var.region
    TF_VAR_architecture       = var.lambda_architecture
    TF_VAR_sender_email       = var.deployment.sender_email
    TF_VAR_recipient_emails   = jsonencode(var.deployment.recipient_emails)
    TF_VAR_alarm_email        = var.deployment.alarm_email
    TF_VAR_bedrock_model_id   = var.deployment.bedrock_model_id
  }
}

# `terraform plan -out tfplan`: the saved plan, its text and its SHA-256 are the "plan"
# artifact; the summary line and the hash are exported to the approval action.
resource "aws_codebuild_project" "plan" {
  name           = local.plan_project
  description    = "healthpipe plan: terraform init/plan of ${local.app_deploy_root} with the CI packages; saves the plan for approval"
  service_role   = aws_iam_role.deploy.arn
  encryption_key = var.state_kms_key_arn
  build_timeout  = 30

  source {
    type      = "CODEPIPELINE"
    buildspec = "infra/terraform/cicd/buildspec-plan.yml"
  }

  artifacts {
    type = "CODEPIPELINE"
  }

  environment {
    compute_type    = "BUILD_GENERAL1_SMALL"
    image           = var.codebuild_image
    type            = "LINUX_CONTAINER"
    privileged_mode = false

    dynamic "environment_variable" {
      for_each = local.terraform_environment
      content {
        name  = environment_variable.key
        value = environment_variable.value
      }
    }
  }

  logs_config {
    cloudwatch_logs {
      group_name = aws_cloudwatch_log_group.build[local.plan_project].name
    }
  }
}

# `terraform apply tfplan` of the approved plan, after checking its SHA-256 is the one the
# approver saw.
resource "aws_codebuild_project" "deploy" {
  name           = local.deploy_project
  description    = "healthpipe deploy: terraform apply of the approved saved plan of ${local.app_deploy_root}"
  service_role   = aws_iam_role.deploy.arn
  encryption_key = var.state_kms_key_arn
  build_timeout  = 60

  source {
    type      = "CODEPIPELINE"
    buildspec = "infra/terraform/cicd/buildspec-apply.yml"
  }

  artifacts {
    type = "CODEPIPELINE"
  }

  environment {
    compute_type    = "BUILD_GENERAL1_SMALL"
    image           = var.codebuild_image
    type            = "LINUX_CONTAINER"
    privileged_mode = false

    dynamic "environment_variable" {
      for_each = local.terraform_environment
      content {
        name  = environment_variable.key
        value = environment_variable.value
      }
    }
  }

  logs_config {
    cloudwatch_logs {
      group_name = aws_cloudwatch_log_group.build[local.deploy_project].name
    }
  }
}
