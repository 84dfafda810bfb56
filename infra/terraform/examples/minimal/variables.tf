variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "healthpipe"
}

variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "us-east-1"
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = { project = "healthpipe" }
}

variable "sender_email" {
  description = "From address of the reports (verified in SES)."
  type        = string
}

variable "recipient_emails" {
  description = "Report recipients (verified in SES while in the sandbox)."
  type        = list(string)
}

variable "alarm_email" {
  description = "Email subscribed to alarms and failure events (empty: none)."
  type        = string
  default     = ""
}

variable "bedrock_model_id" {
  description = "Bedrock model or inference profile of the analyst."
  type        = string
  default     = "amazon.nova-lite-v1:0"
}

variable "lambda_package" {
  description = "Path of the zip built by `healthpipe package`."
  type        = string
  default     = "../../../../dist/healthpipe-lambda-x86_64-py3.12.zip"
}

variable "architecture" {
  description = "Lambda architecture the package was built for (x86_64 or arm64)."
  type        = string
  default     = "x86_64"
}

variable "force_destroy" {
  description = "Allow `terraform destroy` to delete non-empty buckets and tables (for trials)."
  type        = bool
  default     = false
}
