# Routing. The patterns are the ones in healthpipe.routing.ROUTES (a test holds them equal);
# the ingest rule additionally names this deployment's data bucket.
#
# S3 delivers "Object Created" only to the DEFAULT bus, so the ingest rule lives there;
# pipeline events (sources health.data.*) are published to the custom bus and routed there.

resource "aws_cloudwatch_event_bus" "this" {
  name = local.names.bus
  tags = local.tags
}

locals {
  # route target => rule. `target` is a function name or "alerts" (the SNS topic).
  routes = {
    ingest = {
      name   = "raw-object-created"
      bus    = "default"
      target = "ingestor"
      pattern = {
        source        = ["aws.s3"]
        "detail-type" = ["Object Created"]
        detail = {
          object = {
            key = [
              { wildcard = "raw/*.csv" },
              { wildcard = "raw/*.csv.gz" },
              { wildcard = "raw/*.CSV" },
              { wildcard = "raw/*.CSV.GZ" },
            ]
          }
        }
      }
    }
    analyze = {
      name   = "processing-complete"
      bus    = "custom"
      target = "analyzer"
      pattern = {
        source        = ["health.data.ingestor"]
        "detail-type" = ["Data Processing Complete"]
        detail        = { status = ["success"] }
      }
    }
    notify = {
      name   = "analysis-complete"
      bus    = "custom"
      target = "notifier"
      pattern = {
        source        = ["health.data.analyzer"]
        "detail-type" = ["Data Analysis Complete"]
      }
    }
    digest = {
      name   = "digest-requested"
      bus    = "custom"
      target = "notifier"
      pattern = {
        source        = ["health.data.scheduler"]
        "detail-type" = ["Digest Requested"]
      }
    }
    alert = {
      name   = "pipeline-failed"
      bus    = "custom"
      target = "alerts"
      pattern = {
        source        = ["health.data.ingestor", "health.data.analyzer", "health.data.notifier"]
        "detail-type" = ["Data Processing Failed", "Data Analysis Failed"]
      }
    }
  }

  # Only this deployment's bucket triggers the ingestor, and only uploads below the chunked
  # threshold (the two additions to the ROUTES pattern); larger ones start the chunked-ingest
  # state machine (stepfunctions.tf `chunked_pattern`): every upload matches exactly one of
  # the two. The size is that of the CSV the engine reads, but S3's event gives the object's
  # size only: a gzip upload (the route's keys ending in .gz) is judged by its compressed
  # size against the threshold divided by chunked_gzip_ratio (docs/deploy.md "Large files").
  upload_keys = {
    plain = [for k in local.routes.ingest.pattern.detail.object.key : k if !endswith(lower(k.wildcard), ".gz")]
    gzip  = [for k in local.routes.ingest.pattern.detail.object.key : k if endswith(lower(k.wildcard), ".gz")]
  }
  upload_thresholds = {
    plain = local.chunked_threshold_bytes
    gzip  = local.chunked_gzip_threshold_bytes
  }
  # route => the ingest route's pattern with this bucket and, per kind of key, its size bound
  upload_size_patterns = {
    for route, operator in { ingest = "<", chunked = ">=" } : route => merge(local.routes.ingest.pattern, {
      detail = merge(local.routes.ingest.pattern.detail, {
        bucket = { name = [local.names.data_bucket] }
        object = {
          "$or" = [for kind in ["plain", "gzip"] : { key = local.upload_keys[kind], size = [{ numeric = [operator, local.upload_thresholds[kind]] }] }]
        }
      })
    })
  }
  ingest_pattern = local.upload_size_patterns.ingest

  # Every raw upload of this bucket, whatever its size: the archive keeps them all for replay
  # (a replayed upload is routed by size again).
  uploads_pattern = merge(local.routes.ingest.pattern, {
    detail = merge(local.routes.ingest.pattern.detail, { bucket = { name = [local.names.data_bucket] } })
  })

  # The analyzer takes processed files below the grouped-analysis threshold (and an event
  # without row counts); larger ones start the grouped-analysis state machine
  # (grouped_analyze.tf, the same pattern with ">=").
  analyze_pattern = merge(local.routes.analyze.pattern, {
    detail = merge(local.routes.analyze.pattern.detail, {
      rows = { valid = [{ numeric = ["<", var.grouped_analyze_threshold_rows] }, { exists = false }] }
    })
  })

  route_patterns = merge(
    { for route, r in local.routes : route => jsonencode(r.pattern) if r.bus != "default" },
    { ingest = jsonencode(local.ingest_pattern), analyze = jsonencode(local.analyze_pattern) },
  )

  route_dlq = { for route, r in local.routes : route => r.target }
  # Targets EventBridge invokes directly; the analyzer is fed through its SQS queue.
  queued_targets   = ["analyzer"]
  function_routes  = { for route, r in local.routes : route => r if r.target != "alerts" && !contains(local.queued_targets, r.target) }
  bus_name_of_rule = { for route, r in local.routes : route => r.bus == "default" ? "default" : aws_cloudwatch_event_bus.this.name }
}

resource "aws_cloudwatch_event_rule" "this" {
  for_each = local.routes

  name           = "${var.name_prefix}-${each.value.name}"
  description    = "healthpipe route ${each.key}: ${each.value.name} -> ${each.value.target}"
  event_bus_name = local.bus_name_of_rule[each.key]
  event_pattern  = local.route_patterns[each.key]
  tags           = local.tags
}

resource "aws_cloudwatch_event_target" "this" {
  for_each = local.routes

  rule           = aws_cloudwatch_event_rule.this[each.key].name
  event_bus_name = local.bus_name_of_rule[each.key]
  target_id      = each.value.target
  arn            = each.value.target == "alerts" ? aws_sns_topic.alerts.arn : contains(local.queued_targets, each.value.target) ? aws_sqs_queue.analyze.arn : aws_lambda_function.this[each.value.target].arn

  retry_policy {
    maximum_event_age_in_seconds = var.event_retry.maximum_event_age_in_seconds
    maximum_retry_attempts       = var.event_retry.maximum_retry_attempts
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq[local.route_dlq[each.key]].arn
  }
}

resource "aws_lambda_permission" "events" {
  for_each = local.function_routes

  statement_id  = "AllowEventBridge-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this[each.value.target].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.this[each.key].arn
}

# Replay: every pipeline event on the custom bus, and this bucket's raw uploads on the default bus.
resource "aws_cloudwatch_event_archive" "pipeline" {
  name             = "${var.name_prefix}-pipeline"
  description      = "healthpipe pipeline events, for replay"
  event_source_arn = aws_cloudwatch_event_bus.this.arn
  retention_days   = var.archive_retention_days
}

resource "aws_cloudwatch_event_archive" "uploads" {
  name             = "${var.name_prefix}-uploads"
  description      = "raw uploads to the healthpipe data bucket, for replay"
  event_source_arn = "arn:${local.partition}:events:${local.region}:${local.account_id}:event-bus/default"
  event_pattern    = jsonencode(local.uploads_pattern)
  retention_days   = var.archive_retention_days
}

# --- daily digest -----------------------------------------------------------------------
locals {
  # The detail of the scheduled Digest Requested event (stages/digest.py reads window_seconds;
  # the window ends at the event's time). Scheduler fills in <aws.scheduler.scheduled-time>.
  digest_detail = {
    schema_version = "1"
    correlation_id = "digest@<aws.scheduler.scheduled-time>"
    dataset_id     = null
    status         = "requested"
    window_seconds = 86400
  }
}

resource "aws_scheduler_schedule" "digest" {
  name                         = "${var.name_prefix}-daily-digest"
  description                  = "Publishes Digest Requested (source health.data.scheduler) to the healthpipe bus"
  schedule_expression          = var.digest_schedule
  schedule_expression_timezone = var.digest_timezone
  kms_key_arn                  = aws_kms_key.this.arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_cloudwatch_event_bus.this.arn
    role_arn = aws_iam_role.scheduler.arn
    input    = jsonencode(local.digest_detail)

    eventbridge_parameters {
      detail_type = "Digest Requested"
      source      = "health.data.scheduler"
    }

    retry_policy {
      maximum_event_age_in_seconds = var.event_retry.maximum_event_age_in_seconds
      maximum_retry_attempts       = var.event_retry.maximum_retry_attempts
    }

    dead_letter_config {
      arn = aws_sqs_queue.dlq["scheduler"].arn
    }
  }
}
