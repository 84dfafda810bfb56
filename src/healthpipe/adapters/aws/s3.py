"""S3 as the object store: streamed, hashed downloads and multipart uploads (SSE-KMS optional).

Every call is one the function's IAM role allows (infra/terraform/iam.tf, tested under
enforced IAM in tests/aws/test_aws_iam_e2e.py): uploads take their version id from the
PutObject / CompleteMultipartUpload response, never from a HeadObject that would need
s3:GetObject on the written prefix; a download of a given version uses GetObject with
`VersionId` (s3:GetObjectVersion).
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from healthpipe.adapters.aws.clients import error_code, translate
from healthpipe.errors import PermanentError
from healthpipe.ports import HASH_CHUNK, LocalObject, ObjectStore, sha256_chunks

IAM_ACTIONS: tuple[str, ...] = (
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:PutObject",
    "s3:AbortMultipartUpload",
    "s3:ListBucket",
    "kms:Decrypt",
    "kms:GenerateDataKey",
)

# What `healthpipe forget` needs on the bucket besides the reads and writes above: an
# operator's command, not a function's (docs/privacy.md#iam). The chunked ingest's functions
# that delete Plan's record have them under `work/executions/` only (`_delete_old_versions`).
ERASURE_IAM_ACTIONS: tuple[str, ...] = ("s3:ListBucketVersions", "s3:DeleteObjectVersion")
DELETE_BATCH = 1000

MULTIPART_THRESHOLD = 16 * 1024 * 1024
MULTIPART_CHUNK = 16 * 1024 * 1024
# S3's bounds on one part of a multipart upload: all but the last part >= 5 MiB, none > 5 GiB.
MIN_PART = 5 * 1024 * 1024
MAX_PART = 5 * 1024 * 1024 * 1024
NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
# `put_files`' uploads at once: under botocore's pool of 10 connections per client
PUT_FILES_THREADS = 8
UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def default_transfer_config() -> TransferConfig:
    return TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD,
        multipart_chunksize=MULTIPART_CHUNK,
        max_concurrency=4,
    )


class S3ObjectStore(ObjectStore):
    def __init__(
        self,
        bucket: str,
        client: Any,
        *,
        kms_key_id: str = "",
        transfer_config: TransferConfig | None = None,
    ) -> None:
        self.bucket = bucket
        self.client = client
        self.kms_key_id = kms_key_id
        self.transfer_config = transfer_config or default_transfer_config()

    def _encryption(self) -> dict[str, str]:
        if not self.kms_key_id:
            return {}
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}

    def _materialize(self, key: str, workdir: Path) -> LocalObject:
        return self._download(key, workdir, None)

    def _materialize_version(self, key: str, workdir: Path, version_id: str) -> LocalObject:
        return self._download(key, workdir, version_id)

    def _download(self, key: str, workdir: Path, version_id: str | None) -> LocalObject:
        workdir.mkdir(parents=True, exist_ok=True)
        name = UNSAFE_NAME.sub("_", key.rsplit("/", 1)[-1]) or "object"
        target = workdir / name
        try:
            versioned = {"VersionId": version_id} if version_id else {}
            response = self.client.get_object(Bucket=self.bucket, Key=key, **versioned)
            with target.open("wb") as out:
                sha256, size = sha256_chunks(response["Body"].iter_chunks(HASH_CHUNK), out.write)
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                raise PermanentError(f"no such object: s3://{self.bucket}/{key}") from exc
            raise translate(exc, f"downloading s3://{self.bucket}/{key}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"downloading s3://{self.bucket}/{key}") from exc
        version = response.get("VersionId") or version_id
        return LocalObject(key, target, size, sha256, version or None)

    def _put_file(self, key: str, path: Path, content_type: str) -> str:
        if path.stat().st_size < self.transfer_config.multipart_threshold:
            with path.open("rb") as body:
                return self._put_object(key, body, content_type)
        return self._put_multipart(key, path, content_type)

    def _put_files(
        self, files: list[tuple[str, Path]], content_type: str, consume: bool
    ) -> list[str]:
        """`PUT_FILES_THREADS` uploads at once (the client is thread-safe): the lake's
        parts, one small object per participant bucket and day, each a round trip. On a
        failure the uploads not started are cancelled, the running ones finish (each
        whole: PutObject, or a multipart upload aborted on error), then the first failed
        of the list is raised."""
        if len(files) < 2:
            return super()._put_files(files, content_type, consume)
        with ThreadPoolExecutor(
            min(PUT_FILES_THREADS, len(files)), thread_name_prefix="s3-put"
        ) as pool:
            futures = [pool.submit(self._put_file, key, path, content_type) for key, path in files]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            if any(future.exception() is not None for future in done):
                for future in futures:
                    future.cancel()
        # leaving the pool waited for the uploads that were running
        for future in futures:
            error = None if future.cancelled() else future.exception()
            if error is not None:
                raise error
        return [future.result() for future in futures]

    def _multipart(
        self, key: str, content_type: str, doing: str, send: Callable[[str], list[dict[str, Any]]]
    ) -> str:
        """Create a multipart upload, send its parts (`send(upload_id)` returns the Parts
        list), complete it; the version id comes from CompleteMultipartUpload. Any failure
        after the create aborts the upload (no orphaned parts) and is re-raised as is."""
        try:
            created = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ContentType=content_type, **self._encryption()
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, doing) from exc
        upload_id = created["UploadId"]
        try:
            parts = send(upload_id)
            done = self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            self._abort(key, upload_id)
            raise
        return str(done.get("VersionId") or "")

    def _put_multipart(self, key: str, path: Path, content_type: str) -> str:
        """Create, upload the parts (a few at a time), complete; the version id comes from
        CompleteMultipartUpload. A failure aborts the upload (no orphaned parts)."""
        doing = f"uploading s3://{self.bucket}/{key}"
        chunk = self.transfer_config.multipart_chunksize
        size = path.stat().st_size
        offsets = range(0, size, chunk)

        def send(upload_id: str) -> list[dict[str, Any]]:
            def upload_part(number: int, offset: int) -> dict[str, Any]:
                with path.open("rb") as source:
                    source.seek(offset)
                    body = source.read(chunk)
                part = self.client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
                )
                return {"PartNumber": number, "ETag": part["ETag"]}

            concurrency = int(getattr(self.transfer_config, "max_concurrency", 4))
            workers = max(1, min(concurrency, len(offsets)))
            with ThreadPoolExecutor(workers, thread_name_prefix="s3-part") as pool:
                return list(pool.map(upload_part, range(1, len(offsets) + 1), offsets))

        try:
            return self._multipart(key, content_type, doing, send)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, doing) from exc

    def _compose(self, key: str, parts: list[tuple[str, int]], content_type: str) -> str:
        """One multipart upload whose parts are server-side copies (`UploadPartCopy`) of the
        objects, so their bytes never pass through here. S3 takes a part under 5 MiB only as
        the last one: runs of small objects are downloaded and sent as one uploaded part
        (topped up to 5 MiB with a ranged read of the next large object, whose remainder is
        copied by range); at most about 10 MiB is held at a time. When everything fits in
        one small part it is a single PutObject. A failure aborts the upload."""
        doing = f"composing s3://{self.bucket}/{key}"
        plan = compose_plan([(part, skip, self._size(part)) for part, skip in parts])
        if not any(step.copy for step in plan) and len(plan) <= 1:
            data = b"".join(self._read_range(s.key, s.start, s.end) for p in plan for s in p.pieces)
            return self._put_object(key, data, content_type)

        def send(upload_id: str) -> list[dict[str, Any]]:
            return [
                {"PartNumber": number, "ETag": self._send_part(key, upload_id, number, step)}
                for number, step in enumerate(plan, start=1)
            ]

        try:
            return self._multipart(key, content_type, doing, send)
        except (ClientError, BotoCoreError) as exc:
            if isinstance(exc, ClientError) and error_code(exc) in NOT_FOUND:
                raise PermanentError(f"{doing}: a part is missing") from exc
            raise translate(exc, doing) from exc

    def _send_part(self, key: str, upload_id: str, number: int, step: PartStep) -> str:
        common = {"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": number}
        if step.copy:
            (piece,) = step.pieces
            copied = self.client.upload_part_copy(
                **common,
                CopySource={"Bucket": self.bucket, "Key": piece.key},
                CopySourceRange=f"bytes={piece.start}-{piece.end - 1}",
            )
            return str(copied["CopyPartResult"]["ETag"])
        body = b"".join(self._read_range(p.key, p.start, p.end) for p in step.pieces)
        return str(self.client.upload_part(**common, Body=body)["ETag"])

    def _size(self, part: str) -> int:
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=part)["ContentLength"])
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                raise PermanentError(f"no such object: s3://{self.bucket}/{part}") from exc
            raise translate(exc, f"checking s3://{self.bucket}/{part}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"checking s3://{self.bucket}/{part}") from exc

    def _read_range(self, part: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of an object (end exclusive)."""
        if end <= start:
            return b""
        try:
            response = self.client.get_object(
                Bucket=self.bucket, Key=part, Range=f"bytes={start}-{end - 1}"
            )
            return bytes(response["Body"].read())
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                raise PermanentError(f"no such object: s3://{self.bucket}/{part}") from exc
            raise translate(exc, f"reading s3://{self.bucket}/{part}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"reading s3://{self.bucket}/{part}") from exc

    def _read_range_into(
        self, key: str, start: int, end: int, write: Callable[[bytes], object]
    ) -> None:
        """One ranged GetObject, streamed in `HASH_CHUNK` pieces."""
        try:
            response = self.client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}"
            )
            for piece in response["Body"].iter_chunks(HASH_CHUNK):
                write(piece)
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                raise PermanentError(f"no such object: s3://{self.bucket}/{key}") from exc
            raise translate(exc, f"reading s3://{self.bucket}/{key}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"reading s3://{self.bucket}/{key}") from exc

    def _stream(self, key: str, version_id: str | None) -> Iterator[tuple[bytes, str | None]]:
        """One GetObject (of that version: s3:GetObjectVersion), its body read in
        `HASH_CHUNK` pieces as they arrive."""
        doing = f"reading s3://{self.bucket}/{key}"
        try:
            versioned = {"VersionId": version_id} if version_id else {}
            response = self.client.get_object(Bucket=self.bucket, Key=key, **versioned)
            version = response.get("VersionId") or version_id
            empty = True
            for piece in response["Body"].iter_chunks(HASH_CHUNK):
                empty = False
                yield piece, version
            if empty:
                yield b"", version
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                raise PermanentError(f"no such object: s3://{self.bucket}/{key}") from exc
            raise translate(exc, doing) from exc
        except BotoCoreError as exc:
            raise translate(exc, doing) from exc

    def _put_stream(self, key: str, blocks: Iterable[bytes], content_type: str) -> str:
        """Parts of `multipart_chunksize` bytes uploaded one after the other as `blocks`
        fill them (about one part held); an object smaller than one part is one PutObject.
        A failure aborts the upload."""
        doing = f"uploading s3://{self.bucket}/{key}"
        size = max(MIN_PART, int(self.transfer_config.multipart_chunksize))
        pieces = iter(blocks)
        buffer = bytearray()
        for block in pieces:  # the first part, or the whole object when it is small
            buffer += block
            if len(buffer) >= size:
                break
        if len(buffer) < size:
            return self._put_object(key, bytes(buffer), content_type)

        def send(upload_id: str) -> list[dict[str, Any]]:
            parts: list[dict[str, Any]] = []
            pending = buffer

            def upload(body: bytes) -> None:
                number = len(parts) + 1
                part = self.client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
                )
                parts.append({"PartNumber": number, "ETag": part["ETag"]})

            while len(pending) >= size:
                upload(bytes(pending[:size]))
                del pending[:size]
            for block in pieces:
                pending += block
                while len(pending) >= size:
                    upload(bytes(pending[:size]))
                    del pending[:size]
            if pending or not parts:
                upload(bytes(pending))
            return parts

        try:
            return self._multipart(key, content_type, doing, send)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, doing) from exc

    def _abort(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(ClientError, BotoCoreError):  # best effort: it failed already
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def _put_bytes(self, key: str, data: bytes, content_type: str) -> str:
        return self._put_object(key, data, content_type)

    def _put_object(self, key: str, body: Any, content_type: str) -> str:
        try:
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                **self._encryption(),
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"writing s3://{self.bucket}/{key}") from exc
        return str(response.get("VersionId") or "")

    def _get_bytes(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            return bytes(response["Body"].read())
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                raise PermanentError(f"no such object: s3://{self.bucket}/{key}") from exc
            raise translate(exc, f"reading s3://{self.bucket}/{key}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"reading s3://{self.bucket}/{key}") from exc

    def _exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                return False
            raise translate(exc, f"checking s3://{self.bucket}/{key}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"checking s3://{self.bucket}/{key}") from exc
        return True

    def _list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                keys.extend(str(item["Key"]) for item in page.get("Contents", []))
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"listing s3://{self.bucket}/{prefix}") from exc
        return keys

    def _delete(self, key: str) -> None:
        """`DeleteObject`, then every version left (the delete marker included)."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"deleting s3://{self.bucket}/{key}") from exc
        self._delete_old_versions(key, keep_latest=False)

    def _delete_old_versions(self, key: str, *, keep_latest: bool = True) -> int:
        """`ListObjectVersions` under the key, then `DeleteObjects` with `VersionId` for
        every version of exactly this key that is not the latest (delete markers too), at
        most 1,000 per call. Needs `ERASURE_IAM_ACTIONS` on the key: `healthpipe forget`'s
        operator has them on the bucket (`delete_old_versions`, `delete`); of the functions,
        only the chunked ingest's Plan, Assemble and Release, which `delete` Plan's record
        (`stages/chunked.forget_execution`), and only under `work/executions/`
        (infra/terraform/iam.tf `execution_record_statements`: `s3:ListBucketVersions` on the
        condition that `s3:prefix` is under it, hence the listing by `Prefix=key`)."""
        doing = f"deleting old versions of s3://{self.bucket}/{key}"
        old: list[dict[str, str]] = []
        try:
            pages = self.client.get_paginator("list_object_versions").paginate(
                Bucket=self.bucket, Prefix=key
            )
            for page in pages:
                for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                    if entry["Key"] == key and not (keep_latest and entry.get("IsLatest")):
                        old.append({"Key": key, "VersionId": str(entry["VersionId"])})
            for start in range(0, len(old), DELETE_BATCH):
                done = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": old[start : start + DELETE_BATCH], "Quiet": True},
                )
                if done.get("Errors"):
                    failed = done["Errors"][0]
                    raise PermanentError(f"{doing}: {failed.get('Code')} {failed.get('Message')}")
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, doing) from exc
        return len(old)


@dataclass(frozen=True)
class Piece:
    """Bytes [start, end) of the object `key`."""

    key: str
    start: int
    end: int


@dataclass(frozen=True)
class PartStep:
    """One part of the composed upload: a server-side copy of one piece, or an upload of
    the concatenated (small) pieces."""

    copy: bool
    pieces: tuple[Piece, ...]

    @property
    def size(self) -> int:
        return sum(p.end - p.start for p in self.pieces)


def compose_plan(
    parts: list[tuple[str, int, int]], min_part: int = MIN_PART, max_part: int = MAX_PART
) -> list[PartStep]:
    """The multipart parts that put `parts` (key, start, end: bytes [start, end) of each
    object) together in order: every part but
    the last >= `min_part`, none > `max_part`; a large object is copied (split in equal
    ranges above `max_part`), small ones are gathered into an uploaded part (topped up from
    the head of the next large object) that never holds more than 2 x `min_part`."""
    steps: list[PartStep] = []
    pending: list[Piece] = []
    held = 0

    def copy(key: str, start: int, end: int) -> None:
        count = -(-(end - start) // max_part)
        bounds = [start + (end - start) * i // count for i in range(count + 1)]
        steps.extend(PartStep(True, (Piece(key, a, b),)) for a, b in itertools.pairwise(bounds))

    for key, first, end in parts:
        size = end - first
        if size <= 0:
            continue
        if size < min_part:
            pending.append(Piece(key, first, end))
            held += size
            if held >= min_part:
                steps.append(PartStep(False, tuple(pending)))
                pending, held = [], 0
            continue
        start = first
        if pending:  # top the small ones up to min_part from this object's head
            start = first + min_part - held
            steps.append(PartStep(False, (*pending, Piece(key, first, start))))
            pending, held = [], 0
        if end - start >= min_part:
            copy(key, start, end)
        else:
            pending.append(Piece(key, start, end))
            held += end - start
    if pending:
        steps.append(PartStep(False, tuple(pending)))
    return steps
