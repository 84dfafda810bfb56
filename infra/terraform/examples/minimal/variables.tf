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
  description = "Bedrock model or inference profile of the analyst. Empty: Nova Lite through the region's geography profile (us., eu., apac., ...)."
  type        = string
  default     = ""
}

variable "lambda_package_dir" {
  description = "Folder of the three zips written by `healthpipe package --arch <architecture> --out <folder>`."
  type        = string
  default     = "../../../../dist"
}

variable "architecture" {
  description = "Lambda architecture the packages were built for (arm64 or x86_64)."
  type        = string
  default     = "arm64"
}

variable "force_destroy" {
  description = "Allow `terraform destroy` to delete non-empty buckets and tables (for trials)."
  type        = bool
  default     = false
}
