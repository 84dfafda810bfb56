# The smallest deployment: healthpipe with defaults, one sender and one recipient.
#   healthpipe package --arch arm64 --out dist/     (three zips, one per function)
#   terraform init && terraform apply -var-file=terraform.tfvars

provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}

module "healthpipe" {
  source = "../../"

  name_prefix        = var.name_prefix
  region             = var.region
  tags               = var.tags
  sender_email       = var.sender_email
  recipient_emails   = var.recipient_emails
  alarm_email        = var.alarm_email
  bedrock_model_id   = var.bedrock_model_id
  lambda_package_dir = var.lambda_package_dir
  architecture       = var.architecture
  force_destroy      = var.force_destroy
}
