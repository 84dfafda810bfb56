# The grouped analysis of large processed files (issue 17; docs/deploy.md "Large files"): a
# Data Processing Complete event of at least grouped_analyze_threshold_rows valid rows starts
# this state machine instead of the analyzer. Prepare (claim, lake, split in groups of
# participants, histories), a Distributed Map over the groups (each analysed as the local
# executor analyses it), Merge (the facts merged, the analysis stored, Data Analysis
# Complete); a failure releases the claim (Release) and publishes Data Analysis Failed. The
# functions are aws_lambda_function.this["analyze_*"] (lambda.tf: same packaging, IAM per
# function in iam.tf). The definition is statemachine/grouped_analyze.asl.json.tftpl,
# validated by asl-validator in CI (make asl). Here what is its own; its log group, state
# machine, role, rule and alarms are state_machines.tf's (local.state_machines.grouped_analyze).

locals {
  grouped_analyze_name = "${var.name_prefix}-grouped-analyze"
  grouped_analyze_arn  = "arn:${local.partition}:states:${local.region}:${local.account_id}:stateMachine:${local.grouped_analyze_name}"
  # Every group is needed: a Map with a failed group fails (and the execution publishes
  # Data Analysis Failed) instead of merging an analysis with participants missing.
  grouped_analyze_tolerated_failure_percentage = 0

  # template variable => the function its state invokes
  grouped_analyze_functions = {
    analyze_prepare_function_arn = "analyze_prepare"
    analyze_group_function_arn   = "analyze_group"
    analyze_merge_function_arn   = "analyze_merge"
    analyze_release_function_arn = "analyze_release"
  }

  grouped_analyze_definition = templatefile("${path.module}/statemachine/grouped_analyze.asl.json.tftpl", merge(
    { for name, f in local.grouped_analyze_functions : name => aws_lambda_function.this[f].arn },
    {
      event_bus_name               = aws_cloudwatch_event_bus.this.name
      group_rows                   = var.grouped_analyze_group_rows
      max_concurrency              = var.grouped_analyze_max_concurrency
      tolerated_failure_percentage = local.grouped_analyze_tolerated_failure_percentage
      task_max_attempts            = var.grouped_analyze_task_max_attempts
      timeout_seconds              = var.grouped_analyze_timeout_seconds
    },
  ))

  # The analyze route's pattern for processed files of at least the threshold's valid rows
  # (the analyze rule, events.tf, takes the others: `local.analyze_pattern`).
  grouped_analyze_pattern = merge(local.routes.analyze.pattern, {
    detail = merge(local.routes.analyze.pattern.detail, {
      rows = { valid = [{ numeric = [">=", var.grouped_analyze_threshold_rows] }] }
    })
  })
}
