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

resource "aws_codebuild_project" "deploy" {
  name           = local.deploy_project
  description    = "healthpipe deploy: terraform init/plan/apply of ${local.app_deploy_root} with the CI package"
  service_role   = aws_iam_role.deploy.arn
  encryption_key = var.state_kms_key_arn
  build_timeout  = 60

  source {
    type      = "CODEPIPELINE"
    buildspec = "infra/terraform/cicd/buildspec-deploy.yml"
  }

  artifacts {
    type = "CODEPIPELINE"
  }

  environment {
    compute_type    = "BUILD_GENERAL1_SMALL"
    image           = var.codebuild_image
    type            = "LINUX_CONTAINER"
    privileged_mode = false

    environment_variable {
      name  = "TF_VERSION"
      value = var.terraform_version
    }
    environment_variable {
      name  = "TF_ROOT"
      value = local.app_deploy_root
    }
    environment_variable {
      name  = "TF_STATE_BUCKET"
      value = var.state_bucket
    }
    environment_variable {
      name  = "TF_STATE_KEY"
      value = var.app_state_key
    }
    environment_variable {
      name  = "TF_STATE_KMS_KEY"
      value = var.state_kms_key_arn
    }
    environment_variable {
      name  = "PACKAGE_FILE"
      value = local.package_file
    }
    environment_variable {
      name  = "TF_VAR_name_prefix"
      value = var.name_prefix
    }
    environment_variable {
      name  = "TF_VAR_region"
      value = var.region
    }
    environment_variable {
      name  = "TF_VAR_architecture"
      value = var.lambda_architecture
    }
    environment_variable {
      name  = "TF_VAR_sender_email"
      value = var.deployment.sender_email
    }
    environment_variable {
      name  = "TF_VAR_recipient_emails"
      value = jsonencode(var.deployment.recipient_emails)
    }
    environment_variable {
      name  = "TF_VAR_alarm_email"
      value = var.deployment.alarm_email
    }
    environment_variable {
      name  = "TF_VAR_bedrock_model_id"
      value = var.deployment.bedrock_model_id
    }
  }

  logs_config {
    cloudwatch_logs {
      group_name = aws_cloudwatch_log_group.build[local.deploy_project].name
    }
  }
}
