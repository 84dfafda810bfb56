variable "name_prefix" {
  description = "Prefix of the pipeline's resources, and of the application deployment it manages (the deploy role may only touch resources named <prefix>-*)."
  type        = string
  default     = "healthpipe"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-24 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "AWS region of the pipeline and of the deployment."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like an AWS region, e.g. us-east-1."
  }
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = { project = "healthpipe" }
}

variable "repository_id" {
  description = "Source repository as owner/name (GitHub, GitHub Enterprise, GitLab or Bitbucket through a CodeStar connection)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.repository_id))
    error_message = "repository_id must be owner/name."
  }
}

variable "branch" {
  description = "Branch whose pushes run the pipeline."
  type        = string
  default     = "main"
}

variable "connection_arn" {
  description = "ARN of an existing CodeStar (CodeConnections) connection. Empty: one is created (PENDING until you complete the handshake in the console)."
  type        = string
  default     = ""

  validation {
    condition     = var.connection_arn == "" || can(regex("^arn:aws[a-z-]*:(codestar-connections|codeconnections):", var.connection_arn))
    error_message = "connection_arn must be empty or a CodeStar/CodeConnections connection ARN."
  }
}

variable "connection_provider" {
  description = "Provider of the created connection (GitHub, GitHubEnterpriseServer, Bitbucket, GitLab)."
  type        = string
  default     = "GitHub"

  validation {
    condition     = contains(["GitHub", "GitHubEnterpriseServer", "Bitbucket", "GitLab"], var.connection_provider)
    error_message = "connection_provider must be GitHub, GitHubEnterpriseServer, Bitbucket or GitLab."
  }
}

variable "state_bucket" {
  description = "Bucket holding the Terraform state (from ./bootstrap)."
  type        = string
}

variable "state_kms_key_arn" {
  description = "KMS key of the state bucket (from ./bootstrap)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.state_kms_key_arn))
    error_message = "state_kms_key_arn must be a KMS key ARN."
  }
}

variable "app_state_key" {
  description = "State object key of the application deployment."
  type        = string
  default     = "healthpipe/app.tfstate"
}

variable "terraform_version" {
  description = "Terraform version the deploy build downloads (checksum-verified)."
  type        = string
  default     = "1.10.5"

  validation {
    condition     = can(regex("^1\\.(1[0-9]|[2-9][0-9])\\.[0-9]+$", var.terraform_version))
    error_message = "terraform_version must be 1.10.0 or later (S3 native state locking)."
  }
}

variable "lambda_architecture" {
  description = "Architecture the packages are built for and the functions run on."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.lambda_architecture)
    error_message = "lambda_architecture must be x86_64 or arm64."
  }
}

variable "deployment" {
  description = "Inputs of the application deployment (infra/terraform/examples/minimal), passed to the deploy build as TF_VAR_*."
  type = object({
    sender_email     = string
    recipient_emails = list(string)
    alarm_email      = optional(string, "")
    bedrock_model_id = optional(string, "")
  })
}

variable "approval_email" {
  description = "Email notified when a deployment waits for manual approval (empty: none)."
  type        = string
  default     = ""
}

variable "codebuild_image" {
  description = "CodeBuild image (needs Python 3.12)."
  type        = string
  default     = "aws/codebuild/standard:7.0"
}

variable "log_retention_days" {
  description = "Retention of the build logs, in days."
  type        = number
  default     = 90

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts."
  }
}

variable "access_logs_bucket" {
  description = "Bucket receiving the artifact bucket's access logs (from ./bootstrap)."
  type        = string
}
