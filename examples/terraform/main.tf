variable "kms_keys" {
  description = "Customer-managed KMS key ARN per region"
  type        = map(string)
}

data "aws_region" "current" {}

resource "aws_imagebuilder_distribution_configuration" "golden" {
  name = "golden-linux"

  distribution {
    region = data.aws_region.current.name
    ami_distribution_configuration {
      name       = "golden-{{ imagebuilder:buildDate }}"
      kms_key_id = var.kms_keys[data.aws_region.current.name]
      ami_tags   = { owner = "platform-team", cost-center = "cc-1234" }
    }
  }

  # Checkov looks only at the first distribution block; this one is unencrypted.
  distribution {
    region = "eu-west-1"
    ami_distribution_configuration {
      name     = "golden-{{ imagebuilder:buildDate }}"
      ami_tags = { owner = "platform-team", cost-center = "cc-1234" }
    }
  }

  tags = { owner = "platform-team", cost-center = "cc-1234" }
}

resource "aws_imagebuilder_distribution_configuration" "windows" {
  name = "windows-2022"

  distribution {
    region = "us-east-1"
    ami_distribution_configuration {
      name       = "win2022-{{ imagebuilder:buildDate }}"
      kms_key_id = var.kms_keys["us-east-1"]
      ami_tags   = { owner = "windows-team", cost-center = "cc-4000" }
    }
    fast_launch_configuration {
      enabled               = true
      max_parallel_launches = 4
      launch_template {
        launch_template_name = "fast-launch"
      }
    }
  }

  tags = { owner = "windows-team", cost-center = "cc-4000" }
}

resource "aws_imagebuilder_distribution_configuration" "containers" {
  name = "app-container"

  distribution {
    region = "us-east-1"
    container_distribution_configuration {
      target_repository {
        service         = "ECR"
        repository_name = "app"
      }
    }
  }

  tags = { owner = "app-team", cost-center = "cc-6000" }
}
