"""The chunked engine: one file validated and split in chunks, with outputs identical to the
single-file path (`dataops.validation`), so that one machine can use all its cores and a
file larger than one Lambda can take can be split on AWS (docs/scaling.md).

The steps are functions over local files, called by both executors (`local`: a process
pool; the AWS one: Step Functions with a Distributed Map over the plan's chunks):

- `plan.plan_file`: one streaming pass, the hash and the cut points (`ChunkPlan`);
- `chunk_validate.stage_chunk` (map): a chunk parsed and checked with the single path's SQL
  into a staging Parquet file, and its malformed records;
- `buckets.write_key_buckets` (map, too): a chunk's records that may repeat another, by hash
  bucket; `buckets.bucket_repeats` (reduce, per bucket): the records repeating an earlier
  one, across chunks; `buckets.chunk_repeats`: a chunk's share of them;
- `split.split_chunk`: a chunk's parts of the three outputs, its repeats excluded;
- `assemble.assemble`: the parts put together in order, and the counts.
"""

from __future__ import annotations

from healthpipe.dataops.chunked.local import validate_chunked

__all__ = ["validate_chunked"]
