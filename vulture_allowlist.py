# ruff: noqa
# type: ignore
"""Names vulture cannot see used (`make lint`: vulture src vulture_allowlist.py
--min-confidence 60). Never imported or run: each line only mentions a name, with the
reason it is alive. A name that is truly dead is removed from src/, not listed here.
"""

# --- read by a library, not by our code --------------------------------------------------
_.row_factory  # sqlite3 reads it on every fetch (adapters/local/sqlite.py)
_.external_attr  # zipfile writes it into the archive (packaging.py: file modes)
_.compress_type  # zipfile reads it per entry (packaging.py)
_._ordered  # pydantic model_validator (domain/rules.py)
_._split_recipients  # pydantic field_validator (config.py)
_.settings_customise_sources  # pydantic-settings hook (config.py)
dotenv_settings  # a parameter of that hook's fixed signature
file_secret_settings  # a parameter of that hook's fixed signature
_.collect_usage_pieces  # click override (commands/output.py PlainUsage)
_.display_type_rich  # Typer override (commands/output.py PlainArgument)
_.__class__  # PlainUsage makes Typer's arguments PlainArguments (commands/output.py)
_.on_any_event  # watchdog handler override (orchestration/watch.py)
frame  # a parameter of the signal-handler signature (commands/watch.py)

# --- registered by decorator or by name ----------------------------------------------------
generate  # Typer command (cli.py)
demo  # Typer command (cli.py)
main_options  # Typer callback (cli.py)
forget_command  # Typer command `forget` (commands/forget.py)
notify  # stage function named in routing.STAGE_FUNCTIONS (imported by path)

# --- checked against Terraform and the deployment by tests/infra -------------------------
IAM_ACTIONS  # each AWS adapter's actions; tests/infra holds iam.tf to them
REPORT_SENT  # event name the Terraform rules and tests/infra name
ENV_RUNTIME  # env var the Terraform functions set; tests/infra holds them to it

# --- API kept for tests and operators ------------------------------------------------------
_.reset  # LambdaFunction.reset: a new container, for the tests/aws fixtures
_.acquired  # ClaimResult.acquired: what the ledger contract suite asserts
_.flagged_for_user  # AnalysisStore: per-participant look-up (contract suite, erasure)
css_px  # report/charts: the point-to-pixel rule the layout and browser tests hold
news2_kind_sql  # the kind column of a NEWS2 band: reference SQL in tests/support/twins.py

ERASURE_IAM_ACTIONS  # adapters/aws/s3.py: the operator's extra S3 actions (docs/privacy.md)

# --- rules in Python that the SQL builders name as their definition ---------------------
modified_z  # domain/baseline.py: anomaly_sql.modified_z_sql computes it; tests compare
outside_normal_band  # domain/clinical.py: anomaly_sql.outside_normal_sql; tests compare

# --- fields of the typed documents (pydantic: written to and read from JSON) -------------
erased_at  # ErasureRecord (documents/erasure.py)
rows_removed
files_rewritten
erasures  # Manifest: erasures that removed rows of the dataset (stages/erase.py)
schema_version
fallback_detail  # AnalystReport -> AnalystProvenance (from_attributes), stored in the analysis JSON
attempted  # the same
ingested_at
processed_csv_key
mean
std
p05
p25
p75
p95
readings_with_red_score
with_clinical_finding
baseline_with_clinical_finding
heart_rate_during_activity
by_rule
end_time
worst_value
worst_time
flagged_pct
baseline_on_clinical
history_days  # ParticipantHistory (documents/history.py): days of history in the window
vitals_not_assessable
users_flagged
item_key
participants
participants_flagged
participants_at_risk
news2_score_5_or_more
news2_score_7_or_more
bp_stage_2_or_crisis
sentence
duration_minutes
shares_pct
during_activity
high_findings  # HighPerson (documents/brief.py): in the brief sent to the model

# --- report view models: read by the Jinja templates (report/templates/) -----------------
generated_at
flagged_text
more_participants
severity_colours
previous_period
quality_now
quality_before
trends
datasets_total
index_href
_.index_href
episodes_total
users_total
users_flagged
high_total
pseudonymised
charts_omitted
grade
more_reasons
meaning
not_counted
ge5
ge7
red_by_metric
vital
peak

# --- for the lake's participant-bucket partition, not written yet (docs/lake.md) ---------
participant_bucket  # domain/identity.py: pb= of issue 18's lake layout and the chunked engine
