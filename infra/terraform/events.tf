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
            key = [{ prefix = "raw/" }]
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

  # Every object created under raw/ in this deployment's bucket reaches the ingestor, whatever
  # its name or size (the route's pattern with this bucket, no size): it ingests the supported
  # kinds (.csv, .csv.gz, any case) and rejects any other key with a failure record, so no
  # upload goes unrecorded. The large uploads of the supported kinds also match the rule of
  # the chunked-ingest state machine (stepfunctions.tf `chunked_pattern`), and the ingestor
  # leaves those to it (healthpipe.routing.taken_by_chunked_rule, with the same thresholds
  # from its settings): every upload is taken by exactly one. The size is that of the CSV
  # the engine reads, but S3's event gives the object's size only: a gzip upload (a key
  # ending in .gz, any case) is judged by its compressed size against the threshold divided
  # by chunked_gzip_ratio (docs/deploy.md "Large files"). EventBridge compares numbers up to
  # 5.0e9 only: a larger upload matches no numeric pattern, so it is the ingestor's alone,
  # which refuses it with Data Processing Failed.
  ingest_pattern = merge(local.routes.ingest.pattern, {
    detail = merge(local.routes.ingest.pattern.detail, { bucket = { name = [local.names.data_bucket] } })
  })

  # The supported kinds under raw/, in every case (EventBridge's wildcards are case-sensitive,
  # and a suffix ignoring case cannot also require the raw/ prefix): .csv (8 spellings) and
  # .gz (4; a .gz that is not a .csv.gz is rejected by the state machine's Plan).
  upload_keys = {
    plain = [for p in setproduct(["c", "C"], ["s", "S"], ["v", "V"]) : { wildcard = "raw/*.${join("", p)}" }]
    gzip  = [for p in setproduct(["g", "G"], ["z", "Z"]) : { wildcard = "raw/*.${join("", p)}" }]
  }
  upload_thresholds = {
    plain = local.chunked_threshold_bytes
    gzip  = local.chunked_gzip_threshold_bytes
  }
  # this bucket's uploads of a supported kind at or above its threshold
  large_upload_pattern = merge(local.routes.ingest.pattern, {
    detail = merge(local.routes.ingest.pattern.detail, {
      bucket = { name = [local.names.data_bucket] }
      object = {
        "$or" = [for kind in ["plain", "gzip"] : { key = local.upload_keys[kind], size = [{ numeric = [">=", local.upload_thresholds[kind]] }] }]
      }
    })
  })

  # Every raw upload of this bucket, whatever its size: the archive keeps them all for replay
  # (a replayed upload is routed again).
  uploads_pattern = local.ingest_pattern

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
