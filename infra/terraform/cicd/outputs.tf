output "pipeline_name" {
  description = "CodePipeline name."
  value       = aws_codepipeline.this.name
}

output "pipeline_url" {
  description = "Console URL of the pipeline."
  value       = "https://${var.region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/${aws_codepipeline.this.name}/view?region=${var.region}"
}

output "connection_arn" {
  description = "CodeStar connection of the source; a newly created one must be completed in the console (Developer Tools > Connections)."
  value       = local.connection_arn
}

output "artifacts_bucket_name" {
  description = "Pipeline artifacts bucket."
  value       = aws_s3_bucket.artifacts.bucket
}

output "codebuild_project_names" {
  description = "CI and deploy CodeBuild projects."
  value       = { ci = aws_codebuild_project.ci.name, deploy = aws_codebuild_project.deploy.name }
}

output "role_arns" {
  description = "Roles of the pipeline and of each build."
  value       = { pipeline = aws_iam_role.pipeline.arn, ci = aws_iam_role.ci.arn, deploy = aws_iam_role.deploy.arn }
}

output "approval_topic_arn" {
  description = "SNS topic notified when a deployment awaits approval."
  value       = aws_sns_topic.approvals.arn
}
