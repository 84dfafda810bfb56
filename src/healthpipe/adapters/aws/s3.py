"""S3 as the object store: streamed, hashed downloads and multipart uploads (SSE-KMS optional)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from healthpipe.adapters.aws.clients import error_code, translate
from healthpipe.errors import AdapterError, PermanentError
from healthpipe.ports import HASH_CHUNK, LocalObject, ObjectStore

IAM_ACTIONS: tuple[str, ...] = (
    "s3:GetObject",
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
        workdir.mkdir(parents=True, exist_ok=True)
        name = UNSAFE_NAME.sub("_", key.rsplit("/", 1)[-1]) or "object"
        target = workdir / name
        digest = hashlib.sha256()
        size = 0
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            with target.open("wb") as out:
                for chunk in response["Body"].iter_chunks(HASH_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                raise PermanentError(f"no such object: s3://{self.bucket}/{key}") from exc
            raise translate(exc, f"downloading s3://{self.bucket}/{key}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"downloading s3://{self.bucket}/{key}") from exc
        version = response.get("VersionId")
        return LocalObject(key, target, size, digest.hexdigest(), version or None)

    def _put_file(self, key: str, path: Path, content_type: str) -> str:
        if path.stat().st_size < self.transfer_config.multipart_threshold:
            with path.open("rb") as body:
                return self._put_object(key, body, content_type)
        extra = {"ContentType": content_type, **self._encryption()}
        try:
            self.client.upload_file(
                str(path), self.bucket, key, ExtraArgs=extra, Config=self.transfer_config
            )
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"uploading s3://{self.bucket}/{key}") from exc
        except S3UploadFailedError as exc:  # s3transfer wraps the ClientError in this
            raise translate_transfer(exc, f"uploading s3://{self.bucket}/{key}") from exc
        return str(head.get("VersionId") or "")

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


def translate_transfer(exc: S3UploadFailedError, doing: str) -> AdapterError:
    """The ClientError behind an S3UploadFailedError decides transient vs permanent."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ClientError | BotoCoreError):
        return translate(cause, doing)
    return PermanentError(f"{doing} failed ({exc})")
