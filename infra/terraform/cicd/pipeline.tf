resource "aws_codepipeline" "this" {
  name          = var.name_prefix
  role_arn      = aws_iam_role.pipeline.arn
  pipeline_type = "V2"

  artifact_store {
    location = aws_s3_bucket.artifacts.bucket
    type     = "S3"

    encryption_key {
      id   = var.state_kms_key_arn
      type = "KMS"
    }
  }

  stage {
    name = "Source"

    action {
      name             = "Source"
      category         = "Source"
      owner            = "AWS"
      provider         = "CodeStarSourceConnection"
      version          = "1"
      output_artifacts = ["source"]

      configuration = {
        ConnectionArn        = local.connection_arn
        FullRepositoryId     = var.repository_id
        BranchName           = var.branch
        OutputArtifactFormat = "CODE_ZIP"
        DetectChanges        = "true"
      }
    }
  }

  stage {
    name = "CI"

    action {
      name             = "TestScanPackage"
      category         = "Build"
      owner            = "AWS"
      provider         = "CodeBuild"
      version          = "1"
      input_artifacts  = ["source"]
      output_artifacts = ["package"]

      configuration = {
        ProjectName = aws_codebuild_project.ci.name
      }
    }
  }

  # terraform plan -out tfplan: the saved plan (+ its text and SHA-256) is the "plan"
  # artifact; PLAN_SUMMARY and PLAN_SHA256 are exported under the namespace "Plan".
  stage {
    name = "Plan"

    action {
      name             = "TerraformPlan"
      category         = "Build"
      owner            = "AWS"
      provider         = "CodeBuild"
      version          = "1"
      namespace        = "Plan"
      input_artifacts  = ["source", "package"]
      output_artifacts = ["plan"]

      configuration = {
        ProjectName   = aws_codebuild_project.plan.name
        PrimarySource = "source"
      }
    }
  }

  # The approver sees the plan's summary and hash (the whole plan: plan.txt in the plan
  # artifact, and the plan build's log).
  stage {
    name = "Approve"

    action {
      name     = "ApprovePlan"
      category = "Approval"
      owner    = "AWS"
      provider = "Manual"
      version  = "1"

      configuration = {
        NotificationArn    = aws_sns_topic.approvals.arn
        CustomData         = "${local.app_deploy_root}: #{Plan.PLAN_SUMMARY} Saved plan sha256 #{Plan.PLAN_SHA256}. Approve to apply exactly this plan."
        ExternalEntityLink = "https://${var.region}.console.aws.amazon.com/codesuite/codebuild/projects/${local.plan_project}/history?region=${var.region}"
      }
    }
  }

  # terraform apply of the approved saved plan; the build refuses a plan whose SHA-256 is not
  # the one shown to the approver, and Terraform refuses a plan made stale by another change.
  stage {
    name = "Deploy"

    action {
      name            = "TerraformApply"
      category        = "Build"
      owner           = "AWS"
      provider        = "CodeBuild"
      version         = "1"
      input_artifacts = ["source", "package", "plan"]

      configuration = {
        ProjectName   = aws_codebuild_project.deploy.name
        PrimarySource = "source"
        EnvironmentVariables = jsonencode([
          { name = "APPROVED_PLAN_SHA256", value = "#{Plan.PLAN_SHA256}", type = "PLAINTEXT" },
        ])
      }
    }
  }
}
