terraform {
  required_version = ">= 1.10.0"

  # Partial configuration: `terraform init -backend-config=backend.hcl` (see backend.hcl.example).
  # The bucket comes from ./bootstrap; S3-native locking (a .tflock object) needs Terraform >= 1.10.
  backend "s3" {
    key          = "healthpipe/cicd.tfstate"
    encrypt      = true
    use_lockfile = true
  }

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}
