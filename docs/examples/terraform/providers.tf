# The AWS provider pointed at `nfwlab serve` on this machine: dummy credentials, no account lookups.
# On AWS, delete this file's `endpoints` block and the test credentials; nothing else changes.
terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "endpoint" {
  description = "The lab's AWS endpoint (nfwlab serve)"
  type        = string
  default     = "http://127.0.0.1:4566"
}

provider "aws" {
  region                      = "ap-northeast-1"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true

  endpoints {
    ec2             = var.endpoint
    networkfirewall = var.endpoint
    sts             = var.endpoint
  }
}
