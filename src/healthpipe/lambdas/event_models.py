"""Typed shapes of the events the functions receive (validated with pydantic).

- EventBridge envelope: `{"source", "detail-type", "detail", "id", "time", ...}`; for S3
  "Object Created" the detail holds `bucket.name`, `object.key` (URL-encoded, spaces as +,
  as Powertools' `S3EventBridgeNotificationObject.key` decodes it), `object.version-id`,
  `object.size`.
- Classic S3 notification: `{"Records": [{"eventSource": "aws:s3", "s3": {"bucket":
  {"name"}, "object": {"key" (URL-encoded, spaces as +), "versionId", "size"}}}, ...]}`.

Inside the pipeline an `Object Created` event carries its key URL-encoded, as S3 sends it in
both shapes (the ingest stage decodes it with `unquote_plus`; the local runtime encodes its
keys the same way). moto's EventBridge events carry the plain key instead; the tests encode
it as S3 does (tests/aws/moto_env.py `as_s3_sends_it`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from healthpipe import events
from healthpipe.events import Event


class EventBridgeEnvelope(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    source: str
    detail_type: str = Field(alias="detail-type")
    detail: dict[str, Any]
    id: str | None = None
    time: str | None = None

    def to_s3_event(self) -> Event:
        """An S3 `Object Created` event; its key stays URL-encoded, as S3 sent it."""
        return self.to_event()

    def to_event(self) -> Event:
        data: dict[str, Any] = {
            "source": self.source,
            "detail-type": self.detail_type,
            "detail": self.detail,
        }
        if self.id:
            data["id"] = self.id
        if self.time:
            data["time"] = self.time
        return Event.from_dict(data)


class S3Bucket(BaseModel):
    name: str


class S3Object(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str
    size: int | None = None
    versionId: str | None = None


class S3Entity(BaseModel):
    bucket: S3Bucket
    object: S3Object


class S3Record(BaseModel):
    model_config = ConfigDict(extra="ignore")

    eventSource: str = "aws:s3"
    eventName: str = ""
    s3: S3Entity

    def to_event(self) -> Event:
        """The pipeline's `Object Created` event; the key stays URL-encoded, as ingest expects."""
        obj = self.s3.object
        return events.object_created(self.s3.bucket.name, obj.key, obj.versionId, obj.size)


class S3Notification(BaseModel):
    Records: list[S3Record]


def is_s3_notification(raw: dict[str, Any]) -> bool:
    return isinstance(raw.get("Records"), list)
