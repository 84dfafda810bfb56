variable "name_prefix" {
  description = "Prefix of every resource name (tables, bus, queues, functions, buckets get <prefix>-...). Lowercase letters, digits and hyphens."
  type        = string
  default     = "healthpipe"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-24 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "AWS region to deploy into (the provider region; Bedrock and SES must be available there)."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like an AWS region, e.g. us-east-1."
  }
}

variable "tags" {
  description = "Tags added to every resource that supports them."
  type        = map(string)
  default     = {}
}

variable "sender_email" {
  description = "From address of the reports. Created as an SES email identity: click the verification link AWS sends to it."
  type        = string

  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.sender_email))
    error_message = "sender_email must be an email address."
  }
}

variable "recipient_emails" {
  description = "Who receives the reports. While the SES account is in the sandbox every recipient must be a verified identity (see verify_recipients)."
  type        = list(string)

  validation {
    condition     = length(var.recipient_emails) > 0 && alltrue([for e in var.recipient_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "recipient_emails must be a non-empty list of email addresses."
  }
}

variable "verify_recipients" {
  description = "Create an SES email identity for each recipient (needed while the SES account is in the sandbox)."
  type        = bool
  default     = true
}

variable "alarm_email" {
  description = "Email subscribed to the alert topic (alarms and pipeline failure events). Empty: no subscription."
  type        = string
  default     = ""

  validation {
    condition     = var.alarm_email == "" || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be empty or an email address."
  }
}

variable "bedrock_model_id" {
  description = "Bedrock model id or inference profile id of the analyzer. Empty (default): Amazon Nova Lite through the cross-region inference profile of the deployment region's geography (us. in us-*, eu. in eu-*, apac. in ap-*, ca. in ca-*, us-gov. in us-gov-*). A profile must belong to the region's geography (checked at plan); a bare model id is refused where the model is only offered through a profile (local.bedrock_on_demand_regions). Enable access to the model in the Bedrock console first."
  type        = string
  default     = ""

  validation {
    condition     = var.bedrock_model_id == "" || can(regex("^((us|eu|apac|jp|au|ca|us-gov|global)\\.)?[a-z0-9-]+\\.[a-zA-Z0-9.:_-]+$", var.bedrock_model_id))
    error_message = "bedrock_model_id must be empty or a Bedrock model id such as amazon.nova-lite-v1:0, optionally with an inference profile prefix (us., eu., apac., jp., au., ca., us-gov., global.)."
  }
}

variable "bedrock_region" {
  description = "Region of the Bedrock endpoint. Empty: the deployment region."
  type        = string
  default     = ""
}

variable "analyst" {
  description = "Who writes the insights: bedrock (LLM, falls back to builtin on any failure) or builtin (deterministic, no LLM)."
  type        = string
  default     = "bedrock"

  validation {
    condition     = contains(["bedrock", "builtin"], var.analyst)
    error_message = "analyst must be bedrock or builtin."
  }
}

variable "rules_profile" {
  description = "Validation rules profile: `plausible` (default) or `seed` (the original system's ranges), or a rules file bundled with the package."
  type        = string
  default     = "plausible"

  validation {
    condition     = length(trimspace(var.rules_profile)) > 0
    error_message = "rules_profile must not be empty."
  }
}

variable "alert_min_severity" {
  description = "Lowest anomaly severity that triggers an immediate alert email (low, medium, high, never)."
  type        = string
  default     = "high"

  validation {
    condition     = contains(["low", "medium", "high", "never"], var.alert_min_severity)
    error_message = "alert_min_severity must be low, medium, high or never."
  }
}

variable "digest_only" {
  description = "Send only the scheduled daily digest, no email per file."
  type        = bool
  default     = false
}

variable "digest_schedule" {
  description = "EventBridge Scheduler expression of the daily digest."
  type        = string
  default     = "cron(0 7 * * ? *)"

  validation {
    condition     = can(regex("^(cron|rate|at)\\(.+\\)$", var.digest_schedule))
    error_message = "digest_schedule must be a cron(...), rate(...) or at(...) expression."
  }
}

variable "digest_timezone" {
  description = "Time zone of the digest schedule (IANA name)."
  type        = string
  default     = "UTC"
}

variable "log_retention_days" {
  description = "Retention of the Lambda log groups, in days (a value CloudWatch Logs accepts)."
  type        = number
  default     = 90

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

variable "data_retention" {
  description = "Days objects are kept under each bucket prefix before they expire (raw uploads, outputs, reports)."
  type = object({
    raw       = optional(number, 30)
    processed = optional(number, 90)
    rejected  = optional(number, 90)
    manifests = optional(number, 400)
    analyzed  = optional(number, 400)
    reports   = optional(number, 400)
    work      = optional(number, 7) # the chunked ingest's intermediate files
  })
  default = {}

  validation {
    condition     = alltrue([for days in values(var.data_retention) : days >= 1])
    error_message = "Every data_retention value must be at least 1 day."
  }
}

variable "analysis_ttl_days" {
  description = "Days the analysis items stay in DynamoDB (TTL)."
  type        = number
  default     = 400

  validation {
    condition     = var.analysis_ttl_days >= 1
    error_message = "analysis_ttl_days must be at least 1."
  }
}

variable "architecture" {
  description = "Lambda instruction set; build the packages for the same one (`healthpipe package --arch ...`). arm64 (Graviton) costs about 20% less per GB-second."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "lambda_memory_mb" {
  description = "Memory of each function in MB. 1769 MB is one full vCPU: the ingestor and the analyzer run DuckDB, which uses every core it gets."
  type = object({
    ingestor        = optional(number, 1769)
    analyzer        = optional(number, 1769)
    notifier        = optional(number, 1024)
    chunk_plan      = optional(number, 1769)
    chunk_map       = optional(number, 1769)
    chunk_reduce    = optional(number, 1769)
    chunk_split     = optional(number, 1769)
    chunk_assemble  = optional(number, 1769)
    chunk_release   = optional(number, 256)
    analyze_prepare = optional(number, 1769)
    analyze_group   = optional(number, 1769)
    analyze_merge   = optional(number, 1769)
    analyze_release = optional(number, 256)
  })
  default = {}

  validation {
    condition     = alltrue([for mb in values(var.lambda_memory_mb) : mb >= 128 && mb <= 10240])
    error_message = "Lambda memory must be between 128 and 10240 MB."
  }
}

variable "lambda_timeout_seconds" {
  description = "Timeout of each function in seconds."
  type = object({
    ingestor        = optional(number, 300)
    analyzer        = optional(number, 300)
    notifier        = optional(number, 120)
    chunk_plan      = optional(number, 900)
    chunk_map       = optional(number, 300)
    chunk_reduce    = optional(number, 900)
    chunk_split     = optional(number, 300)
    chunk_assemble  = optional(number, 900)
    chunk_release   = optional(number, 60)
    analyze_prepare = optional(number, 900)
    analyze_group   = optional(number, 900)
    analyze_merge   = optional(number, 900)
    analyze_release = optional(number, 60)
  })
  default = {}

  validation {
    condition     = alltrue([for s in values(var.lambda_timeout_seconds) : s >= 10 && s <= 900])
    error_message = "Lambda timeouts must be between 10 and 900 seconds."
  }
}

variable "lambda_ephemeral_storage_mb" {
  description = "Size of each function's /tmp in MB (DuckDB spills there; the ingestor holds the download and its outputs)."
  type = object({
    ingestor   = optional(number, 2048)
    analyzer   = optional(number, 2048)
    notifier   = optional(number, 512)
    chunk_plan = optional(number, 512)
    chunk_map  = optional(number, 2048)
    # one bucket: every chunk's records of it that may repeat (0.43-0.57 x the CSV over all
    # buckets, measured at 2M and 10M rows) plus DuckDB's spill (+16 % for a 10M-row bucket
    # at 256 MB; the Lambda's DuckDB has 60 % of 1769 MB, spilling less); output < 1 MB. A 30 GB file (Assemble's /tmp bound) in the 16
    # default chunked_buckets: about 1.1 GB + spill. Raise it with fewer buckets.
    chunk_reduce    = optional(number, 4096)
    chunk_split     = optional(number, 4096)
    chunk_assemble  = optional(number, 10240)
    chunk_release   = optional(number, 512)
    analyze_prepare = optional(number, 10240)
    analyze_group   = optional(number, 4096)
    analyze_merge   = optional(number, 10240)
    analyze_release = optional(number, 512)
  })
  default = {}

  validation {
    condition     = alltrue([for mb in values(var.lambda_ephemeral_storage_mb) : mb >= 512 && mb <= 10240])
    error_message = "Lambda ephemeral storage must be between 512 and 10240 MB."
  }
}

variable "lambda_reserved_concurrency" {
  description = "Reserved (and capped) concurrent executions per function; null (default) uses the account's unreserved pool. New accounts often have a quota of 10, and AWS keeps 10 unreserved: reserve nothing there. The analyzer's Bedrock load is bounded by analyzer_max_concurrency instead."
  type = object({
    ingestor        = optional(number)
    analyzer        = optional(number)
    notifier        = optional(number)
    chunk_plan      = optional(number)
    chunk_map       = optional(number)
    chunk_reduce    = optional(number)
    chunk_split     = optional(number)
    chunk_assemble  = optional(number)
    chunk_release   = optional(number)
    analyze_prepare = optional(number)
    analyze_group   = optional(number)
    analyze_merge   = optional(number)
    analyze_release = optional(number)
  })
  default = {}

  validation {
    condition     = alltrue([for n in values(var.lambda_reserved_concurrency) : n == null ? true : n >= 0])
    error_message = "Reserved concurrency must be null or 0 and more."
  }
}

variable "analyzer_max_concurrency" {
  description = "Most analyzer invocations the SQS event source runs at once (scaling_config.maximum_concurrency): bounds the Bedrock calls without reserving account concurrency."
  type        = number
  default     = 2

  validation {
    condition     = var.analyzer_max_concurrency >= 2 && var.analyzer_max_concurrency <= 1000
    error_message = "analyzer_max_concurrency must be between 2 and 1000 (the event source mapping's limits)."
  }
}

variable "tracing_enabled" {
  description = "X-Ray tracing of the functions (Lambda tracing_config Active and the Powertools Tracer). false: PassThrough and POWERTOOLS_TRACE_DISABLED=true."
  type        = bool
  default     = true
}

variable "lambda_package_dir" {
  description = "Folder holding the three deployment zips written by `healthpipe package --arch <architecture> --out <folder>`: healthpipe-<function>-<architecture>-py3.12.zip."
  type        = string

  validation {
    condition     = length(trimspace(var.lambda_package_dir)) > 0
    error_message = "lambda_package_dir must be the folder of the packages."
  }
}

variable "pseudonym_secret" {
  description = "Secret key of the user-id pseudonyms in reports and the analysis store. Empty: a random 48-character secret is generated (kept in the Terraform state)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "top_users" {
  description = "How many most-affected users a report lists."
  type        = number
  default     = 25

  validation {
    condition     = var.top_users >= 1 && var.top_users <= 500
    error_message = "top_users must be between 1 and 500."
  }
}

variable "baseline_window_days" {
  description = "Reading days before a file that form each participant's baseline and trends (docs/baselines.md); the history store keeps no more."
  type        = number
  default     = 28

  validation {
    condition     = var.baseline_window_days >= 1 && var.baseline_window_days <= 366
    error_message = "baseline_window_days must be between 1 and 366."
  }
}

variable "episode_gap_minutes" {
  description = "An episode is broken where consecutive abnormal readings are more than this many minutes apart (docs/clinical-rules.md)."
  type        = number
  default     = 120

  validation {
    condition     = var.episode_gap_minutes >= 1 && var.episode_gap_minutes <= 10080
    error_message = "episode_gap_minutes must be between 1 and 10080 (one week)."
  }
}

variable "activity_steps_above" {
  description = "A reading with more steps than this (or the participant's reading just before it, within 10 minutes) is during activity (docs/clinical-rules.md)."
  type        = number
  default     = 1000

  validation {
    condition     = var.activity_steps_above >= 0 && var.activity_steps_above <= 100000
    error_message = "activity_steps_above must be between 0 and 100000."
  }
}

variable "llm_timeout_seconds" {
  description = "Timeout of one Bedrock call, in seconds."
  type        = number
  default     = 30

  validation {
    condition     = var.llm_timeout_seconds > 0 && var.llm_timeout_seconds < 900
    error_message = "llm_timeout_seconds must be between 0 and 900."
  }
}

variable "reject_ratio_threshold" {
  description = "Alarm when the share of rejected rows in a file is above this ratio (0-1)."
  type        = number
  default     = 0.2

  validation {
    condition     = var.reject_ratio_threshold > 0 && var.reject_ratio_threshold <= 1
    error_message = "reject_ratio_threshold must be in (0, 1]."
  }
}

variable "event_retry" {
  description = "EventBridge delivery retries of every rule target before the event goes to the target's dead-letter queue."
  type = object({
    maximum_event_age_in_seconds = optional(number, 3600)
    maximum_retry_attempts       = optional(number, 8)
  })
  default = {}

  validation {
    condition     = var.event_retry.maximum_event_age_in_seconds >= 60 && var.event_retry.maximum_event_age_in_seconds <= 86400 && var.event_retry.maximum_retry_attempts >= 0 && var.event_retry.maximum_retry_attempts <= 185
    error_message = "event_retry: event age 60-86400 seconds, retry attempts 0-185."
  }
}

variable "archive_retention_days" {
  description = "Days the custom bus archive keeps events for replay (0 = forever)."
  type        = number
  default     = 30

  validation {
    condition     = var.archive_retention_days >= 0
    error_message = "archive_retention_days must be 0 or more."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete non-empty buckets (data, artifacts, access logs). Keep false in production."
  type        = bool
  default     = false
}

# --- the chunked ingest of large files (stepfunctions.tf; docs/deploy.md "Large files") -----
variable "chunked_threshold_mb" {
  description = "Uploads of this many MiB and more go to the chunked-ingest state machine, smaller ones to the ingestor (EventBridge numeric matching on detail.object.size). At most 953 MiB (1.0e9 bytes, the limit of EventBridge numeric matching when this was set; it is now 5.0e9, beyond which an upload is refused, see docs/deploy.md, Large files)."
  type        = number
  default     = 900

  validation {
    condition     = var.chunked_threshold_mb >= 1 && var.chunked_threshold_mb * 1048576 <= 1000000000
    error_message = "chunked_threshold_mb must be between 1 and 953 (1.0e9 bytes)."
  }
}

variable "chunked_gzip_ratio" {
  description = "How many times larger than the upload a gzip upload's CSV is assumed to be (uncompressed / compressed), for routing: a .gz upload of chunked_threshold_mb / chunked_gzip_ratio MiB and more goes to the chunked-ingest state machine (EventBridge sees the compressed size only). The product's vitals CSVs compress 4.2-5.2 times (docs/deploy.md \"Large files\"); keep it at or above what your files reach."
  type        = number
  default     = 8

  validation {
    condition     = var.chunked_gzip_ratio >= 1 && var.chunked_gzip_ratio <= 100
    error_message = "chunked_gzip_ratio must be between 1 and 100."
  }
}

variable "chunked_chunk_mb" {
  description = "Size of one chunk in MiB (each Map item validates one): the plan cuts the file at the first record start after every chunk_mb."
  type        = number
  default     = 256

  validation {
    condition     = var.chunked_chunk_mb >= 8 && var.chunked_chunk_mb <= 2048
    error_message = "chunked_chunk_mb must be between 8 and 2048."
  }
}

variable "chunked_max_concurrency" {
  description = "Most chunks each Distributed Map runs at once (MaxConcurrency): bounds the Lambda concurrency a large file takes."
  type        = number
  default     = 10

  validation {
    condition     = var.chunked_max_concurrency >= 1 && var.chunked_max_concurrency <= 1000
    error_message = "chunked_max_concurrency must be between 1 and 1000."
  }
}

variable "chunked_buckets" {
  description = "Hash buckets of Reduce's Map (docs/scaling.md, steps 2-3): Map A writes each chunk's records that may repeat another in this many buckets by the hash of their identity, and one Map item per bucket finds the repeats, so no Lambda reads every chunk's staging data."
  type        = number
  default     = 16

  validation {
    condition     = var.chunked_buckets >= 1 && var.chunked_buckets <= 1000
    error_message = "chunked_buckets must be between 1 and 1000."
  }
}

variable "chunked_task_max_attempts" {
  description = "Retries of each state (each Map item on its own) after an error other than PermanentError, with backoff."
  type        = number
  default     = 3

  validation {
    condition     = var.chunked_task_max_attempts >= 0 && var.chunked_task_max_attempts <= 10
    error_message = "chunked_task_max_attempts must be between 0 and 10."
  }
}

variable "chunked_timeout_seconds" {
  description = "Longest run of one chunked-ingest execution (the state machine's TimeoutSeconds); the ledger claim Plan takes lasts this + 60 s."
  type        = number
  default     = 14400

  validation {
    condition     = var.chunked_timeout_seconds >= 900 && var.chunked_timeout_seconds <= 86400
    error_message = "chunked_timeout_seconds must be between 900 and 86400."
  }
}

# --- the grouped analysis of large processed files (grouped_analyze.tf; docs/deploy.md "Large files") --
variable "grouped_analyze_threshold_rows" {
  description = "Processed files of this many valid rows and more (Data Processing Complete's detail.rows.valid) are analysed in groups of participants by the grouped-analysis state machine, smaller ones by the analyzer (EventBridge numeric matching). The local runtime's analyze_group_rows default."
  type        = number
  default     = 2000000

  validation {
    condition     = var.grouped_analyze_threshold_rows >= 1 && var.grouped_analyze_threshold_rows <= 1000000000
    error_message = "grouped_analyze_threshold_rows must be between 1 and 1e9 (EventBridge numeric matching stops at 1.0e9)."
  }
}

variable "grouped_analyze_group_rows" {
  description = "Most readings of one group of participants (each Map item analyses one group; a participant with more is a group alone)."
  type        = number
  default     = 2000000

  validation {
    condition     = var.grouped_analyze_group_rows >= 1000
    error_message = "grouped_analyze_group_rows must be at least 1000."
  }
}

variable "grouped_analyze_max_concurrency" {
  description = "Most groups the grouped analysis's Distributed Map analyses at once (MaxConcurrency)."
  type        = number
  default     = 10

  validation {
    condition     = var.grouped_analyze_max_concurrency >= 1 && var.grouped_analyze_max_concurrency <= 1000
    error_message = "grouped_analyze_max_concurrency must be between 1 and 1000."
  }
}

variable "grouped_analyze_task_max_attempts" {
  description = "Retries of each state of the grouped analysis (each group on its own) after an error other than PermanentError, with backoff."
  type        = number
  default     = 3

  validation {
    condition     = var.grouped_analyze_task_max_attempts >= 0 && var.grouped_analyze_task_max_attempts <= 10
    error_message = "grouped_analyze_task_max_attempts must be between 0 and 10."
  }
}

variable "grouped_analyze_timeout_seconds" {
  description = "Longest run of one grouped-analysis execution (the state machine's TimeoutSeconds); the ledger claim Prepare takes lasts this + 60 s."
  type        = number
  default     = 14400

  validation {
    condition     = var.grouped_analyze_timeout_seconds >= 900 && var.grouped_analyze_timeout_seconds <= 86400
    error_message = "grouped_analyze_timeout_seconds must be between 900 and 86400."
  }
}
