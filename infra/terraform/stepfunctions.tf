# The chunked ingest of large files (issue 17; docs/deploy.md "Large files"): an upload at or
# above chunked_threshold_mb starts this state machine instead of the ingestor. Plan, a
# Distributed Map over the plan's chunks (stage), a Distributed Map over the hash buckets
# (repeats across chunks), Reduce (row offsets), a second Distributed Map over the chunks
# (split), Assemble; a failure releases the claim (Release) and publishes the failure. The
# functions are aws_lambda_function.this["chunk_*"] (lambda.tf: same packaging, IAM per
# function in iam.tf). The definition is
# statemachine/chunked_ingest.asl.json.tftpl, validated by asl-validator in CI (make asl).
# Here what is its own; its log group, state machine, role, rule and alarms are
# state_machines.tf's (local.state_machines.chunked), deployed as the grouped analysis's.

locals {
  chunked_threshold_bytes = var.chunked_threshold_mb * 1048576
  chunked_name            = "${var.name_prefix}-chunked-ingest"
  chunked_arn             = "arn:${local.partition}:states:${local.region}:${local.account_id}:stateMachine:${local.chunked_name}"
  # Every chunk is needed: a Map with a failed chunk fails (and the execution publishes
  # Data Processing Failed) instead of assembling a file with a chunk missing.
  chunked_tolerated_failure_percentage = 0

  # template variable => the function its state invokes
  chunked_functions = {
    plan_function_arn     = "chunk_plan"
    map_function_arn      = "chunk_map"
    reduce_function_arn   = "chunk_reduce"
    split_function_arn    = "chunk_split"
    assemble_function_arn = "chunk_assemble"
    release_function_arn  = "chunk_release"
  }

  chunked_definition = templatefile("${path.module}/statemachine/chunked_ingest.asl.json.tftpl", merge(
    { for name, f in local.chunked_functions : name => aws_lambda_function.this[f].arn },
    {
      event_bus_name               = aws_cloudwatch_event_bus.this.name
      chunk_bytes                  = var.chunked_chunk_mb * 1048576
      buckets                      = var.chunked_buckets
      max_concurrency              = var.chunked_max_concurrency
      tolerated_failure_percentage = local.chunked_tolerated_failure_percentage
      task_max_attempts            = var.chunked_task_max_attempts
      timeout_seconds              = var.chunked_timeout_seconds
    },
  ))

  # A gzip upload's threshold, on its compressed size (a conservative compression ratio:
  # a gzip that compresses less goes to the state machine below the threshold, harmless).
  chunked_gzip_threshold_bytes = floor(local.chunked_threshold_bytes / var.chunked_gzip_ratio)

  # This bucket's raw uploads of a supported kind (.csv, .gz, any case) at or above their
  # threshold (events.tf `large_upload_pattern`; the ingestor leaves these to the state machine).
  chunked_pattern = local.large_upload_pattern
}
