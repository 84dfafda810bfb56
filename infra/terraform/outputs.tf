output "data_bucket_name" {
  description = "Bucket to upload CSV files to (under raw/); outputs land under processed/, rejected/, manifests/, analyzed/, reports/."
  value       = aws_s3_bucket.data.bucket
}

output "data_bucket_arn" {
  description = "ARN of the data bucket."
  value       = aws_s3_bucket.data.arn
}

output "upload_command" {
  description = "How to start a run: upload a file under raw/."
  value       = "healthpipe upload FILE.csv --bucket ${aws_s3_bucket.data.bucket}"
}

output "artifacts_bucket_name" {
  description = "Bucket holding the Lambda packages."
  value       = aws_s3_bucket.artifacts.bucket
}

output "access_logs_bucket_name" {
  description = "Bucket receiving the S3 server access logs of the data and artifacts buckets."
  value       = aws_s3_bucket.logs.bucket
}

output "kms_key_arn" {
  description = "ARN of the customer-managed key encrypting the data (pass it to `healthpipe upload --kms-key` if uploading with SSE-KMS explicitly)."
  value       = aws_kms_key.this.arn
}

output "kms_key_alias" {
  description = "Alias of the key."
  value       = aws_kms_alias.this.name
}

output "ledger_table_name" {
  description = "DynamoDB ledger (idempotency claims) table."
  value       = aws_dynamodb_table.ledger.name
}

output "analyses_table_name" {
  description = "DynamoDB analyses table (summaries, flagged users and episodes; GSIs by_user and by_day)."
  value       = aws_dynamodb_table.analyses.name
}

output "event_bus_name" {
  description = "Custom EventBridge bus of the pipeline events."
  value       = aws_cloudwatch_event_bus.this.name
}

output "event_bus_arn" {
  description = "ARN of the custom bus."
  value       = aws_cloudwatch_event_bus.this.arn
}

output "event_rule_arns" {
  description = "EventBridge rule ARN per route (ingest, analyze, notify, digest, alert)."
  value       = { for route, rule in aws_cloudwatch_event_rule.this : route => rule.arn }
}

output "event_archive_arns" {
  description = "Archives to replay from: pipeline events (custom bus) and raw uploads (default bus)."
  value = {
    pipeline = aws_cloudwatch_event_archive.pipeline.arn
    uploads  = aws_cloudwatch_event_archive.uploads.arn
  }
}

output "lambda_function_names" {
  description = "Function name per logical function (ingestor, analyzer, notifier)."
  value       = { for f, fn in aws_lambda_function.this : f => fn.function_name }
}

output "lambda_function_arns" {
  description = "Function ARN per logical function."
  value       = { for f, fn in aws_lambda_function.this : f => fn.arn }
}

output "lambda_role_arns" {
  description = "Execution role ARN per function (one role each)."
  value       = { for f, role in aws_iam_role.function : f => role.arn }
}

output "log_group_names" {
  description = "CloudWatch log group per function."
  value       = { for f, group in aws_cloudwatch_log_group.function : f => group.name }
}

output "dead_letter_queue_urls" {
  description = "Dead-letter queue URL per function (plus alerts and scheduler)."
  value       = { for name, queue in aws_sqs_queue.dlq : name => queue.url }
}

output "alerts_topic_arn" {
  description = "SNS topic of alarms and pipeline failure events."
  value       = aws_sns_topic.alerts.arn
}

output "ses_identity_arns" {
  description = "SES identities created (sender, and recipients while in the sandbox): each must be verified by clicking the link AWS emails."
  value       = { for email, identity in aws_sesv2_email_identity.this : email => identity.arn }
}

output "ses_configuration_set_name" {
  description = "SES configuration set used for the reports."
  value       = aws_sesv2_configuration_set.this.configuration_set_name
}

output "digest_schedule_arn" {
  description = "EventBridge Scheduler schedule of the daily digest."
  value       = aws_scheduler_schedule.digest.arn
}

output "dashboard_url" {
  description = "CloudWatch dashboard of the pipeline."
  value       = "https://${local.region}.console.aws.amazon.com/cloudwatch/home?region=${local.region}#dashboards:name=${aws_cloudwatch_dashboard.this.dashboard_name}"
}

output "grouped_analyze_state_machine_arn" {
  description = "ARN of the grouped-analysis state machine (processed files of grouped_analyze_threshold_rows valid rows and more): follow it with `aws stepfunctions list-executions --state-machine-arn <arn>`."
  value       = aws_sfn_state_machine.this["grouped_analyze"].arn
}
