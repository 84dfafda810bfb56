"""Validation rules as data: named profiles of per-field ranges and row-level checks."""

from __future__ import annotations

import tomllib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from healthpipe.constants import REQUIRED_COLUMNS, VITAL_COLUMNS
from healthpipe.errors import ConfigError

BUILTIN_PROFILES = ("plausible", "seed")  # shipped as domain/profiles/<name>.toml


class FieldRange(BaseModel):
    """Inclusive bounds for one numeric field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float
    max: float
    integer: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> FieldRange:
        if self.min > self.max:
            raise ValueError(f"min {self.min} > max {self.max}")
        return self


class RuleProfile(BaseModel):
    """A complete validation profile.

    `bp_order`: `le` rejects diastolic > systolic (seed); `lt` rejects diastolic >= systolic.
    `timestamp`: `nonempty` only requires a value (seed); `iso8601` requires a parseable time
    (and, with `max_future_hours`, one not further in the future than that).
    `conflicting_readings`: a repeat of an earlier reading (same user and instant) whose vital
    values differ from the first reading's is `conflicting_reading`, not `duplicate_reading`
    (seed: off, as the original system had no such notion).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    required: tuple[str, ...] = REQUIRED_COLUMNS
    ranges: dict[str, FieldRange]
    bp_order: Literal["le", "lt"] = "le"
    timestamp: Literal["nonempty", "iso8601"] = "nonempty"
    reject_duplicates: bool = True
    conflicting_readings: bool = True
    max_user_id_length: int | None = Field(default=None, ge=1)
    max_future_hours: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _complete(self) -> RuleProfile:
        missing = [col for col in REQUIRED_COLUMNS if col not in self.required]
        if missing:
            raise ValueError(f"required must include {', '.join(missing)}")
        unknown = [name for name in self.ranges if name not in VITAL_COLUMNS]
        if unknown:
            raise ValueError(f"ranges for unknown fields: {', '.join(unknown)}")
        absent = [name for name in VITAL_COLUMNS if name not in self.ranges]
        if absent:
            raise ValueError(f"ranges missing for: {', '.join(absent)}")
        return self


def parse_profile(text: str, *, name: str, source: str) -> RuleProfile:
    """The profile written in TOML `text`; `name` when it names none; `source` (a profile
    name or a path) in the ConfigError that an invalid profile raises."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot read rules file {source}: {exc}") from exc
    data.setdefault("name", name)
    try:
        return RuleProfile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        where = f"{where}: " if where else ""
        raise ConfigError(f"invalid rules file {source}: {where}{message}") from exc


def bp_reason(profile: RuleProfile) -> str:
    """The reason named for a diastolic/systolic order violation under `profile`."""
    return "dbp_gt_sbp" if profile.bp_order == "le" else "dbp_ge_sbp"
