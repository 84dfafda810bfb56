"""The documents of the chunked ingest on AWS (the Step Functions state machine of
infra/terraform/statemachine, docs/deploy.md): what Plan hands to every later state, and what
each state leaves in S3 for the next. The chunk documents themselves (`Chunk`, `ChunkPlan`,
`StagedChunk`, `ChunkSplit`) are the chunked engine's (`chunk_plan`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from healthpipe.domain.documents.base import Complete, JsonObject
from healthpipe.domain.documents.chunk_plan import Chunk


class ChunkJob(Complete):
    """One upload's run through the state machine. `outcome`: `planned` (the chunks are in
    `chunks_key`), `skipped` (these bytes were ingested before, or are being ingested by
    another execution), `rejected` (the file cannot be used: its manifest and Data Processing
    Failed are written). `claim_owner` (the execution) holds the ledger claim from Plan to
    Assemble; `now_iso` is the one instant every chunk is validated against."""

    schema_version: int = 1
    outcome: Literal["planned", "skipped", "rejected"]
    bucket: str
    source_key: str
    source_version: str | None = None
    correlation_id: str
    dataset_id: str | None = None
    sha256: str | None = None
    size: int = Field(default=0, ge=0)
    claim_owner: str = ""
    ingested_at: str = ""
    now_iso: str = ""
    rules_profile: str = ""
    work_prefix: str = ""
    data_key: str = ""  # the object the chunks' byte ranges refer to (source or its copy)
    header_bytes: int = Field(default=0, ge=0)
    plan_key: str = ""
    chunks_key: str = ""  # a JSON array of `Chunk`: the Distributed Map's ItemReader
    chunks: int = Field(default=0, ge=0)
    # Reduce's hash buckets of the duplicate identities: a JSON array of {"bucket": b}
    buckets: int = Field(default=1, ge=1)
    buckets_key: str = ""


class PlanRequest(Complete):
    """The input of Plan: the S3 Object Created event that started the execution, the
    execution's id (the owner of the ledger claim) and the chunk size in bytes (Terraform's
    `chunked_chunk_mb` x 1 MiB)."""

    event: JsonObject
    execution: str
    chunk_bytes: int = Field(ge=1)
    buckets: int = Field(default=1, ge=1, le=1000)  # Terraform's `chunked_buckets`


class JobStep(Complete):
    """The input of Assemble."""

    job: ChunkJob


class ReduceStep(Complete):
    """The input of Reduce: with `bucket`, one item of the Map over the hash buckets (that
    bucket's repeats); without, the row offsets once every bucket is done."""

    job: ChunkJob
    bucket: int | None = Field(default=None, ge=0)


class BucketRepeats(Complete):
    """Reduce's result for one bucket: the repeats it found (in work/, for Split)."""

    bucket: int = Field(ge=0)
    repeats: int = Field(ge=0)


class ReleaseRequest(Complete):
    """The input of Release (the failure branch): the job and the id of the execution that
    failed, the only owner whose claim it may give up. No job: Plan failed (the claim it
    recorded for the execution under work/, if any, is released)."""

    job: ChunkJob | None = None
    execution: str


class Released(Complete):
    """Release's result: whether this execution's in-progress claim on the upload was
    given up (False: none to give up, e.g. Plan had not claimed, or another owner's)."""

    outcome: Literal["released", "not_held"]
    dataset_id: str | None = None


class ChunkStep(Complete):
    """The input of one Map item (stage or split): the job and its chunk."""

    job: ChunkJob
    chunk: Chunk


class RowOffsets(Complete):
    """Reduce's result: the parsed records before each chunk, in chunk order."""

    rows_before: list[int]


class Assembled(Complete):
    """Assemble's result (the state machine's output)."""

    outcome: Literal["done"]
    dataset_id: str
    manifest_key: str
    rows_input: int = Field(ge=0)
    rows_valid: int = Field(ge=0)
    rows_rejected: int = Field(ge=0)
