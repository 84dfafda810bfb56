# The sender identity (and, while the account is in the SES sandbox, each recipient) must be
# verified: AWS emails a link to every address created here.

locals {
  ses_identities = toset(concat([var.sender_email], var.verify_recipients ? var.recipient_emails : []))
}

resource "aws_sesv2_email_identity" "this" {
  for_each = local.ses_identities

  email_identity         = each.value
  configuration_set_name = each.value == var.sender_email ? aws_sesv2_configuration_set.this.configuration_set_name : null
  tags                   = local.tags
}

resource "aws_sesv2_configuration_set" "this" {
  configuration_set_name = local.names.config_set

  delivery_options {
    tls_policy = "REQUIRE"
  }

  reputation_options {
    reputation_metrics_enabled = true
  }

  sending_options {
    sending_enabled = true
  }

  suppression_options {
    suppressed_reasons = ["BOUNCE", "COMPLAINT"]
  }

  tags = local.tags
}

# Bounces, complaints and rejects are counted in CloudWatch (dimension: the configuration set).
resource "aws_sesv2_configuration_set_event_destination" "cloudwatch" {
  configuration_set_name = aws_sesv2_configuration_set.this.configuration_set_name
  event_destination_name = "cloudwatch"

  event_destination {
    enabled              = true
    matching_event_types = ["SEND", "DELIVERY", "BOUNCE", "COMPLAINT", "REJECT"]

    cloud_watch_destination {
      dimension_configuration {
        default_dimension_value = local.names.config_set
        dimension_name          = "ses:configuration-set"
        dimension_value_source  = "MESSAGE_TAG"
      }
    }
  }
}
