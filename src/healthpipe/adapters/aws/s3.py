"""S3 as the object store: streamed, hashed downloads and multipart uploads (SSE-KMS optional).

Every call is one the function's IAM role allows (infra/terraform/iam.tf, tested under
enforced IAM in tests/aws/test_aws_iam_e2e.py): uploads take their version id from the
PutObject / CompleteMultipartUpload response, never from a HeadObject that would need
s3:GetObject on the written prefix; a download of a given version uses GetObject with
`VersionId` (s3:GetObjectVersion).
"""

from __future__ import annotations

import contextlib
import re
from concurrent.futures import ThreadPoolExecutor
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

MULTIPART_THRESHOLD = 16 * 1024 * 1024
MULTIPART_CHUNK = 16 * 1024 * 1024
NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
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

    def _put_multipart(self, key: str, path: Path, content_type: str) -> str:
        """Create, upload the parts (a few at a time), complete; the version id comes from
        CompleteMultipartUpload. A failure aborts the upload (no orphaned parts)."""
        doing = f"uploading s3://{self.bucket}/{key}"
        chunk = self.transfer_config.multipart_chunksize
        size = path.stat().st_size
        offsets = range(0, size, chunk)
        try:
            created = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ContentType=content_type, **self._encryption()
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, doing) from exc
        upload_id = created["UploadId"]

        def upload_part(number: int, offset: int) -> dict[str, Any]:
            with path.open("rb") as source:
                source.seek(offset)
                body = source.read(chunk)
            part = self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
            )
            return {"PartNumber": number, "ETag": part["ETag"]}

        try:
            concurrency = int(getattr(self.transfer_config, "max_concurrency", 4))
            workers = max(1, min(concurrency, len(offsets)))
            with ThreadPoolExecutor(workers, thread_name_prefix="s3-part") as pool:
                parts = list(pool.map(upload_part, range(1, len(offsets) + 1), offsets))
            done = self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except (ClientError, BotoCoreError) as exc:
            self._abort(key, upload_id)
            raise translate(exc, doing) from exc
        except BaseException:
            self._abort(key, upload_id)
            raise
        return str(done.get("VersionId") or "")

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
