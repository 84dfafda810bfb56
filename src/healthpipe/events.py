"""Pipeline events: what one stage tells the next, with the same shape on every runtime."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from healthpipe import constants as c


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Event:
    """One EventBridge-style event: `source`, `detail_type` and a JSON `detail`."""

    source: str
    detail_type: str
    detail: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: str = field(default_factory=lambda: utc_now().isoformat(timespec="seconds"))

    @property
    def dataset_id(self) -> str | None:
        value = self.detail.get("dataset_id")
        return str(value) if value is not None else None

    @property
    def correlation_id(self) -> str | None:
        value = self.detail.get("correlation_id")
        return str(value) if value is not None else None

    def to_dict(self) -> dict[str, Any]:
        """The EventBridge envelope shape (as a rule target receives it)."""
        return {
            "id": self.id,
            "source": self.source,
            "detail-type": self.detail_type,
            "time": self.time,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        return cls(
            source=str(data["source"]),
            detail_type=str(data["detail-type"]),
            detail=dict(data.get("detail") or {}),
            id=str(data.get("id") or uuid.uuid4()),
            time=str(data.get("time") or utc_now().isoformat(timespec="seconds")),
        )


def object_created(bucket: str, key: str, version_id: str | None, size: int | None) -> Event:
    """The event S3 sends to EventBridge when an object lands (the shape the ingestor reads)."""
    obj: dict[str, Any] = {"key": key}
    if version_id:
        obj["version-id"] = version_id
    if size is not None:
        obj["size"] = size
    return Event(
        source="aws.s3",
        detail_type=c.OBJECT_CREATED,
        detail={"version": "0", "bucket": {"name": bucket}, "object": obj},
    )


def object_of(event: Event) -> tuple[str, str, str | None]:
    """(bucket, key, version id) of an S3 'Object Created' event (keys may be URL-encoded)."""
    detail = event.detail
    bucket = str(detail.get("bucket", {}).get("name", ""))
    obj = detail.get("object", {})
    key = str(obj.get("key", ""))
    if "%" in key or "+" in key:
        key = unquote_plus(key)
    version = obj.get("version-id") or obj.get("versionId")
    return bucket, key, str(version) if version else None
