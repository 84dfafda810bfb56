# Athena over the processed Parquet: a Glue table with partition projection on `dt` (no
# crawler, no MSCK REPAIR: the partitions are computed from the key layout
# processed/parquet/dt=YYYY-MM-DD/, healthpipe.domain.identity.PROCESSED_PARQUET_PREFIX), and
# a workgroup whose results are written SSE-KMS under athena-results/ of the data bucket.
# The lake (docs/lake.md): `lake_readings` over lake/readings/pb=NN/dt=YYYY-MM-DD/, the same
# rows partitioned by participant bucket and reading day (written by the analyzer), so one
# participant's history (`WHERE pb = 'NN'`) reads one bucket's files.

locals {
  glue_database  = replace(var.name_prefix, "-", "_")
  parquet_prefix = "processed/parquet/"
  lake_prefix    = "lake/readings/" # healthpipe.domain.identity.LAKE_READINGS_PREFIX
  # The columns of the processed Parquet (dataops/split_sql.py processed_parquet_cells);
  # tests/infra/test_infra_analytics.py holds them equal to a file the pipeline writes.
  processed_columns = [
    { name = "source_row", type = "bigint", comment = "1-based data-record number in the uploaded file" },
    { name = "event_time", type = "timestamp", comment = "reading time (UTC)" },
    { name = "event_time_text", type = "string", comment = "reading time as uploaded" },
    { name = "user_id", type = "string", comment = "participant id as uploaded" },
    { name = "heart_rate", type = "double", comment = "beats per minute" },
    { name = "spo2", type = "double", comment = "oxygen saturation, %" },
    { name = "steps", type = "double", comment = "steps" },
    { name = "temp_c", type = "double", comment = "body temperature, Celsius" },
    { name = "systolic_bp", type = "double", comment = "mmHg" },
    { name = "diastolic_bp", type = "double", comment = "mmHg" },
  ]
}

resource "aws_glue_catalog_database" "this" {
  name        = local.glue_database
  description = "healthpipe ${var.name_prefix}: processed vitals"
}

resource "aws_glue_catalog_table" "processed" {
  name          = "processed_vitals"
  database_name = aws_glue_catalog_database.this.name
  description   = "Valid rows of every ingested file (Parquet), partitioned by ingestion day"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    EXTERNAL                    = "TRUE"
    classification              = "parquet"
    "projection.enabled"        = "true"
    "projection.dt.type"        = "date"
    "projection.dt.format"      = "yyyy-MM-dd"
    "projection.dt.range"       = "2024-01-01,NOW"
    "projection.dt.interval"    = "1"
    "projection.dt.unit"        = "DAYS"
    "storage.location.template" = "s3://${aws_s3_bucket.data.bucket}/${local.parquet_prefix}dt=$${dt}/"
  }

  partition_keys {
    name    = "dt"
    type    = "string"
    comment = "ingestion day, YYYY-MM-DD"
  }

  storage_descriptor {
    location      = "s3://${aws_s3_bucket.data.bucket}/${local.parquet_prefix}"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
      parameters = {
        "serialization.format" = "1"
      }
    }

    dynamic "columns" {
      for_each = local.processed_columns
      content {
        name    = columns.value.name
        type    = columns.value.type
        comment = columns.value.comment
      }
    }
  }
}

resource "aws_glue_catalog_table" "lake_readings" {
  name          = "lake_readings"
  database_name = aws_glue_catalog_database.this.name
  description   = "Valid rows of every analysed file (Parquet), by participant bucket and reading day"
  table_type    = "EXTERNAL_TABLE"

  # projection.dt.range: reading days; validation takes readings up to 24 h ahead
  # (max_future_hours), hence +1 day; readings before 2020 stay in the lake but this
  # projection does not list them
  parameters = {
    EXTERNAL                    = "TRUE"
    classification              = "parquet"
    "projection.enabled"        = "true"
    "projection.pb.type"        = "integer"
    "projection.pb.range"       = "0,63"
    "projection.pb.digits"      = "2"
    "projection.dt.type"        = "date"
    "projection.dt.format"      = "yyyy-MM-dd"
    "projection.dt.range"       = "2020-01-01,NOW+1DAYS"
    "projection.dt.interval"    = "1"
    "projection.dt.unit"        = "DAYS"
    "storage.location.template" = "s3://${aws_s3_bucket.data.bucket}/${local.lake_prefix}pb=$${pb}/dt=$${dt}/"
  }

  partition_keys {
    name    = "pb"
    type    = "string"
    comment = "participant bucket 00-63 (identity.participant_bucket: of the pseudonym, not the id)"
  }

  partition_keys {
    name    = "dt"
    type    = "string"
    comment = "reading day (UTC date of event_time), YYYY-MM-DD"
  }

  storage_descriptor {
    location      = "s3://${aws_s3_bucket.data.bucket}/${local.lake_prefix}"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
      parameters = {
        "serialization.format" = "1"
      }
    }

    # the lake files hold the processed Parquet's columns (dataops/lake_write.py)
    dynamic "columns" {
      for_each = local.processed_columns
      content {
        name    = columns.value.name
        type    = columns.value.type
        comment = columns.value.comment
      }
    }
  }
}

resource "aws_athena_workgroup" "this" {
  name          = var.name_prefix
  description   = "healthpipe queries over the processed vitals (results encrypted with the data key)"
  force_destroy = var.force_destroy
  tags          = local.tags

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true

    result_configuration {
      output_location = "s3://${aws_s3_bucket.data.bucket}/athena-results/"

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = aws_kms_key.this.arn
      }
    }
  }
}
