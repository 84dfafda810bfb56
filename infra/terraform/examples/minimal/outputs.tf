output "data_bucket_name" {
  description = "Upload CSV files here, under raw/."
  value       = module.healthpipe.data_bucket_name
}

output "upload_command" {
  description = "Command that starts a run."
  value       = module.healthpipe.upload_command
}

output "ses_identity_arns" {
  description = "SES identities to verify (click the link AWS emails to each)."
  value       = module.healthpipe.ses_identity_arns
}

output "dashboard_url" {
  description = "CloudWatch dashboard."
  value       = module.healthpipe.dashboard_url
}

output "alerts_topic_arn" {
  description = "Alert topic (confirm the email subscription)."
  value       = module.healthpipe.alerts_topic_arn
}

output "dead_letter_queue_urls" {
  description = "Dead-letter queues."
  value       = module.healthpipe.dead_letter_queue_urls
}
