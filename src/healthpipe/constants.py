"""Names shared by code, infrastructure and docs: event names, key prefixes, env var names.

Terraform and the cross-check tests read these; change them together.
"""

from __future__ import annotations

SCHEMA_VERSION = "1"

# Event sources and detail-types (kept from the original system).
SOURCE_INGESTOR = "health.data.ingestor"
SOURCE_ANALYZER = "health.data.analyzer"
SOURCE_NOTIFIER = "health.data.notifier"
SOURCE_SCHEDULER = "health.data.scheduler"

PROCESSING_COMPLETE = "Data Processing Complete"
PROCESSING_FAILED = "Data Processing Failed"
ANALYSIS_COMPLETE = "Data Analysis Complete"
ANALYSIS_FAILED = "Data Analysis Failed"
REPORT_SENT = "Report Sent"
DIGEST_REQUESTED = "Digest Requested"
OBJECT_CREATED = "Object Created"

# Bucket key prefixes.
RAW_PREFIX = "raw/"
PROCESSED_PREFIX = "processed/"
REJECTED_PREFIX = "rejected/"
MANIFESTS_PREFIX = "manifests/"
ANALYZED_PREFIX = "analyzed/"
REPORTS_PREFIX = "reports/"
# the chunked ingest's intermediate files (plan, staged chunks, parts), per dataset
WORK_PREFIX = "work/"

ACCEPTED_SUFFIXES = (".csv", ".csv.gz")

REQUIRED_COLUMNS = (
    "event_time",
    "user_id",
    "heart_rate",
    "spo2",
    "steps",
    "temp_c",
    "systolic_bp",
    "diastolic_bp",
)
VITAL_COLUMNS = ("heart_rate", "spo2", "steps", "temp_c", "systolic_bp", "diastolic_bp")

METRICS_NAMESPACE = "healthpipe"

# Environment variables (the only ones the code reads).
ENV_PREFIX = "HEALTHPIPE_"
ENV_RUNTIME = "HEALTHPIPE_RUNTIME"
ENV_CONFIG = "HEALTHPIPE_CONFIG"
